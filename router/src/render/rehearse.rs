//! A rehearsal of sending: every template a sink would use, rendered with sample events
//! of the types it serves, so a template that fails on a valid event is reported before
//! one arrives.
//!
//! For each sink: its template named after a documented type gets that type's samples
//! (`samples.rs`); its `default.yaml` gets every documented type's and a custom event's;
//! a template a route names gets the samples of the types that route sends, as that
//! route's `set` leaves them. A failure is a warning, not an error: the samples are made
//! up, and a template may rightly count on what a deployment's producers always send (a
//! label, a field beyond the documented ones), so refusing to start or reload over it
//! could take a working router down. What fails without depending on data (an unknown
//! filter) is an error when the templates load.

use std::collections::HashSet;
use std::sync::Arc;

use time::OffsetDateTime;

use super::samples::{self, Sample};
use super::{TemplateId, Templates, context_with, event_value, group_of_one};
use crate::diag::{Diagnostic, Diagnostics};
use crate::event::format_time;

/// A template a route names (`template: loss`), for the sinks it sends to.
#[derive(Debug, Clone)]
pub struct Named {
    pub template: String,
    pub route: String,
    pub sinks: Vec<String>,
    /// What the route can send, as its `set` leaves it.
    pub samples: Vec<Sample>,
    /// The route groups (or delays to a window's summary): the template renders a
    /// group's notification, each sample as a group of one firing alert.
    pub grouped: bool,
}

/// Renders what each of `sinks` (name, plugin name) would use, and what `named` asks for;
/// returns each distinct failure once, at its place, naming the samples it failed with.
pub fn rehearse(templates: &Templates, sinks: &[(String, String)], named: &[Named]) -> Diagnostics {
    let documented = samples::documented();
    let custom = samples::custom(samples::CUSTOM_TYPE);
    let now = format_time(OffsetDateTime::now_utc());
    let mut tried: HashSet<(TemplateId, String, String, &'static str)> = HashSet::new();
    // Each failure once, in the order found, with the samples that hit it.
    let mut failed: Vec<(Diagnostic, Vec<Hit>)> = Vec::new();
    let mut render =
        |id: TemplateId, sink: &str, plugin: &str, route: &str, sample: &Sample, grouped: bool| {
            if !tried.insert((id, route.to_owned(), sample.kind.clone(), sample.variant)) {
                return;
            }
            let event = event_value(&Arc::new(sample.event.clone()));
            let mut ctx = context_with(event.clone(), route, sink, plugin, &now);
            if grouped {
                ctx = group_of_one(ctx, event, &now);
            }
            if let Err(e) = templates.render_json(id, &ctx) {
                let hit = (sample.kind.clone(), sample.variant);
                match failed.iter_mut().find(|(d, _)| d == e.diagnostic()) {
                    Some((_, hits)) => hits.push(hit),
                    None => failed.push((e.diagnostic().clone(), vec![hit])),
                }
            }
        };
    for (sink, plugin) in sinks {
        for sample in &documented {
            if let Some(id) = templates.find(sink, plugin, &sample.event.kind) {
                render(id, sink, plugin, REHEARSAL, sample, false);
            }
        }
        if let Some(id) = templates.find(sink, plugin, "default") {
            for sample in documented.iter().chain(&custom) {
                render(id, sink, plugin, REHEARSAL, sample, false);
            }
        }
    }
    for n in named {
        for (sink, plugin) in sinks.iter().filter(|(s, _)| n.sinks.contains(s)) {
            if let Some(id) = templates.resolve(sink, plugin, &n.template) {
                for sample in &n.samples {
                    render(id, sink, plugin, &n.route, sample, n.grouped);
                }
            }
        }
    }
    let mut out = Diagnostics::default();
    for (mut d, hit) in failed {
        let which = match named_samples(&hit).as_slice() {
            [one] => format!("sample: {one}"),
            many => format!("samples: {}", many.join(", ")),
        };
        let advice = if d.message.starts_with("undefined value") {
            "; guard a field events may lack with `is defined`"
        } else {
            ""
        };
        d.message = format!("{} ({which}{advice})", d.message);
        out.push(d);
    }
    out
}

/// The samples that hit a failure, for its message: a kind alone when both its variants
/// did (`trade_opened`), else with the variant (`trade_opened with required fields only`).
fn named_samples(hit: &[Hit]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, (kind, variant)) in hit.iter().enumerate() {
        if hit[..i].iter().any(|(k, _)| k == kind) {
            continue;
        }
        let variants = hit.iter().filter(|(k, _)| k == kind).count();
        out.push(if variants > 1 {
            kind.clone()
        } else {
            format!("{kind} with {variant}")
        });
    }
    out
}

/// A sample a template failed on: its kind and variant.
type Hit = (String, &'static str);

/// The `rule` a rehearsal renders with when no route names the template.
const REHEARSAL: &str = "check";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Markup;
    use crate::testing::TempDir;

    fn load(dir: &TempDir) -> Templates {
        Templates::load(&dir.0, &|_| Markup::None).unwrap_or_else(|e| panic!("{e}"))
    }

    fn warnings(t: &Templates, named: &[Named]) -> Vec<String> {
        rehearse(t, &[("console".into(), "console".into())], named)
            .0
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn an_unguarded_optional_field_fails_its_type_and_a_guarded_one_does_not() {
        let dir = TempDir::new("rehearse");
        dir.write(
            "console/trade_opened.yaml",
            "text: \"{{ event.symbol }} {% if event.stop_loss is defined %}{{ event.stop_loss|money }}{% endif %} {{ event.take_profit|money }}\"\n",
        )
        .write(
            "console/error.yaml",
            "text: \"{{ event.message }}{% if event.details is defined %} {{ event.details }}{% endif %}\"\n",
        );
        assert_eq!(
            warnings(&load(&dir), &[]),
            [format!(
                "{}:1:104: undefined value: event.take_profit (sample: trade_opened with required fields only; guard a field events may lack with `is defined`)",
                dir.path("console/trade_opened.yaml")
            )]
        );
    }

    #[test]
    fn a_default_template_meets_every_documented_type_and_a_custom_one() {
        let dir = TempDir::new("rehearse");
        dir.write(
            "console/default.yaml",
            "text: \"{{ event.type }}: {{ event.message }}\"\n",
        );
        let found = warnings(&load(&dir), &[]);
        assert_eq!(found.len(), 1, "one place, one warning: {found:#?}");
        let w = &found[0];
        assert!(
            w.ends_with(":1:29: undefined value: event.message (samples: trade_opened, trade_closed, daily_summary, portfolio_update, performance_metrics, alert, custom disk_full; guard a field events may lack with `is defined`)"),
            "error events have a message: {w}"
        );
    }

    #[test]
    fn a_template_a_route_names_gets_that_routes_samples() {
        let dir = TempDir::new("rehearse");
        dir.write(
            "console/loss.yaml",
            "text: \"{{ event.pnl|money }} {{ event.team }}\"\n",
        );
        let t = load(&dir);
        // Not named after a type, and no route names it: nothing renders it.
        assert!(warnings(&t, &[]).is_empty());
        let mut closed: Vec<Sample> = samples::documented()
            .into_iter()
            .filter(|s| s.event.kind == "trade_closed")
            .collect();
        let named = |samples: Vec<Sample>| Named {
            grouped: false,
            template: "loss".into(),
            route: "big-loss".into(),
            sinks: vec!["console".into()],
            samples,
        };
        let found = warnings(&t, &[named(closed.clone())]);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].contains("undefined value: event.team"),
            "{found:#?}"
        );
        // The route's `set` gives it.
        for s in &mut closed {
            s.event.data.insert("team".into(), serde_json::json!("ops"));
        }
        assert!(warnings(&t, &[named(closed)]).is_empty());
    }
}
