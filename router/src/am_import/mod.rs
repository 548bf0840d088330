//! `import-alertmanager`: an Alertmanager configuration as the router's own. The route
//! tree becomes routes in routes (rules/ walks them as Alertmanager walks its tree),
//! with the inherited `receiver`, `group_by` and timers written out on every route; each
//! receiver's integrations the router has a plugin for become sinks (secrets in `.env`);
//! inhibit rules and time intervals keep their meaning. What has no counterpart is
//! listed with its place, and nothing is guessed.

mod model;
mod receivers;
mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use crate::diag::Diagnostic;
use crate::notify::matchers::{Matcher, Op};
use model::{AmConfig, AmRoute, InhibitRule};
use receivers::{Sink, Sinks};
use yaml::{list, q};

/// What an import writes, and what it could not convert.
#[derive(Debug)]
pub struct Imported {
    /// Files to write, relative to the output directory.
    pub files: Vec<(PathBuf, String)>,
    /// Secrets, for the `.env` beside router.yaml: (variable, value).
    pub env: Vec<(String, String)>,
    /// What was not converted: `file:line:col: what: why`.
    pub notes: Vec<String>,
}

/// Alertmanager's route defaults, which a route without its own inherits at the root.
const GROUP_WAIT: Duration = Duration::from_secs(30);
const GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
const REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Converts `text`, read from `source`. An error only when the file is not a
/// configuration Alertmanager would load (no YAML, no route, a bad duration or matcher).
/// `plugin_dirs`: where the router finds its plugins, when not in its defaults (a
/// `plugins` folder beside router.yaml, then the executable's folder).
pub fn convert(source: &Path, text: &str, plugin_dirs: &[PathBuf]) -> Result<Imported, Diagnostic> {
    let config: AmConfig =
        serde_saphyr::from_str(text).map_err(|e| Diagnostic::yaml(source, &e))?;
    let mut notes = Notes {
        file: source.to_path_buf(),
        list: Vec::new(),
    };
    let Some(root) = config.route else {
        return Err(Diagnostic::file(
            source,
            "no `route:`: Alertmanager needs a root route with a receiver",
        ));
    };
    if let Some(t) = &config.templates {
        notes.add(
            &t.referenced,
            "templates",
            "Go templates are not converted: the router's own templates (written under templates/) word the messages",
        );
    }
    if let Some(h) = &config.global.http_config {
        notes.add(
            &h.referenced,
            "global.http_config",
            "not converted: set each webhook's headers in router.yaml",
        );
    }
    for (key, value) in [
        (
            "global.smtp_auth_password_file",
            &config.global.smtp_auth_password_file,
        ),
        (
            "global.slack_api_url_file",
            &config.global.slack_api_url_file,
        ),
    ] {
        if let Some(v) = value {
            notes.add(&v.referenced, key, "not converted: put the secret in .env");
        }
    }
    let sinks = receivers::convert(&config.receivers, &config.global, &mut notes);
    let resolve_timeout = match &config.global.resolve_timeout {
        Some(t) => duration(source, t)?,
        None => RESOLVE_TIMEOUT,
    };

    let mut rules = String::new();
    rules.push_str(&format!(
        "# Imported from {} by `alert-router import-alertmanager`: Alertmanager's route tree\n\
         # as routes in routes (README, \"Rules\"), its inhibit rules and time intervals.\n",
        file_name(source)
    ));
    let intervals: Vec<&Spanned<serde_json::Value>> = config
        .time_intervals
        .iter()
        .chain(&config.mute_time_intervals)
        .collect();
    if !intervals.is_empty() {
        rules.push_str("time_intervals:\n");
        for interval in intervals {
            rules.push_str(&format!("  - {}\n", interval.value));
        }
    }
    if !config.inhibit_rules.is_empty() {
        rules.push_str("inhibit:\n");
        for rule in &config.inhibit_rules {
            rules.push_str(&inhibition(source, rule)?);
        }
    }
    rules.push_str("routes:\n");
    let mut tree = Tree {
        source,
        sinks: &sinks,
        resolve_timeout,
        names: BTreeMap::new(),
        out: String::new(),
        notes: &mut notes,
    };
    let inherited = Inherited {
        receiver: None,
        group_by: None,
        group_wait: GROUP_WAIT,
        group_interval: GROUP_INTERVAL,
        repeat_interval: REPEAT_INTERVAL,
    };
    tree.route(&root, &inherited, 1, true)?;
    rules.push_str(&tree.out);

    let mut files = vec![
        (
            PathBuf::from("router.yaml"),
            router_yaml(source, &sinks, plugin_dirs),
        ),
        (PathBuf::from("rules/alertmanager.yaml"), rules),
    ];
    files.extend(receivers::templates(&sinks));
    Ok(Imported {
        files,
        env: sinks
            .list
            .iter()
            .flat_map(|s| s.secrets.iter().cloned())
            .collect(),
        notes: notes.list,
    })
}

/// The notes of one import, each at its place in the source file.
pub(crate) struct Notes {
    file: PathBuf,
    list: Vec<String>,
}

impl Notes {
    pub(crate) fn add(&mut self, at: &serde_saphyr::Location, what: &str, why: &str) {
        self.list.push(format!(
            "{}:{}:{}: {what}: {why}",
            self.file.display(),
            at.line(),
            at.column()
        ));
    }
}

/// What a route inherits from its parent, as Alertmanager's routes do (its time
/// intervals are its own).
#[derive(Debug, Clone)]
struct Inherited {
    receiver: Option<String>,
    group_by: Option<Vec<String>>,
    group_wait: Duration,
    group_interval: Duration,
    repeat_interval: Duration,
}

/// The route tree as it is written out.
struct Tree<'a> {
    source: &'a Path,
    sinks: &'a Sinks,
    resolve_timeout: Duration,
    /// Route names given so far, and how often each base was used.
    names: BTreeMap<String, usize>,
    out: String,
    notes: &'a mut Notes,
}

impl Tree<'_> {
    /// Writes `route` at `depth` (1 for the root's list item), then its own routes.
    fn route(
        &mut self,
        spanned: &Spanned<AmRoute>,
        parent: &Inherited,
        depth: usize,
        is_root: bool,
    ) -> Result<(), Diagnostic> {
        let r = &spanned.value;
        let mut opts = parent.clone();
        if let Some(receiver) = &r.receiver {
            opts.receiver = Some(receiver.value.clone());
        }
        if let Some(g) = &r.group_by {
            opts.group_by = Some(g.clone());
        }
        for (slot, value) in [
            (&mut opts.group_wait, &r.group_wait),
            (&mut opts.group_interval, &r.group_interval),
            (&mut opts.repeat_interval, &r.repeat_interval),
        ] {
            if let Some(v) = value {
                *slot = duration(self.source, v)?;
            }
        }
        let receiver = opts.receiver.clone().unwrap_or_default();
        let name = self.name(&receiver);
        let pad = "  ".repeat(depth);
        let mut out = format!("{pad}- name: {name}\n");
        let matchers = self.matchers(r, &spanned.referenced)?;
        if !matchers.is_empty() {
            out.push_str(&format!(
                "{pad}  match:\n{pad}    matchers: {}\n",
                list(&matchers)
            ));
        }
        let (to, send_resolved) = match self.sinks.of_receiver(&receiver) {
            Some((sinks, send_resolved)) => (sinks, send_resolved),
            None => {
                let at = r
                    .receiver
                    .as_ref()
                    .map_or(spanned.referenced, |x| x.referenced);
                self.notes.add(
                    &at,
                    &format!("route `{name}`"),
                    &format!("no receiver named `{receiver}`: the route sends nowhere"),
                );
                (Vec::new(), true)
            }
        };
        out.push_str(&format!("{pad}  to: {}\n", list(&to)));
        let group_by: Vec<String> = match &opts.group_by {
            None => Vec::new(),
            Some(labels) if labels.iter().any(|l| l == "...") => vec!["labels.*".to_owned()],
            Some(labels) => labels.iter().map(|l| format!("labels.{l}")).collect(),
        };
        out.push_str(&format!("{pad}  group_by: {}\n", list(&group_by)));
        for (key, value) in [
            ("group_wait", opts.group_wait),
            ("group_interval", opts.group_interval),
            ("repeat_interval", opts.repeat_interval),
        ] {
            out.push_str(&format!("{pad}  {key}: {}\n", yaml::duration(value)));
        }
        out.push_str(&format!("{pad}  send_resolved: {send_resolved}\n"));
        if self.resolve_timeout != RESOLVE_TIMEOUT {
            out.push_str(&format!(
                "{pad}  resolve_timeout: {}\n",
                yaml::duration(self.resolve_timeout)
            ));
        }
        for (key, names) in [
            ("muted_during", &r.mute_time_intervals),
            ("active_during", &r.active_time_intervals),
        ] {
            if !names.is_empty() {
                let names: Vec<String> = names.iter().map(|n| n.value.clone()).collect();
                out.push_str(&format!("{pad}  {key}: {}\n", list(&names)));
            }
        }
        if r.continue_ && !is_root {
            out.push_str(&format!("{pad}  continue: true\n"));
        }
        if !r.routes.is_empty() {
            out.push_str(&format!("{pad}  routes:\n"));
        }
        self.out.push_str(&out);
        for child in &r.routes {
            self.route(child, &opts, depth + 2, false)?;
        }
        Ok(())
    }

    /// A unique route name from `base` (a receiver's name, made a valid name).
    fn name(&mut self, base: &str) -> String {
        let base = yaml::valid_name(base, "route");
        let used = self.names.entry(base.clone()).or_insert(0);
        *used += 1;
        if *used == 1 {
            base
        } else {
            let n = *used;
            self.name(&format!("{base}-{n}"))
        }
    }

    /// A route's `match`, `match_re` and `matchers`, as the router's matchers.
    fn matchers(
        &self,
        r: &AmRoute,
        at: &serde_saphyr::Location,
    ) -> Result<Vec<String>, Diagnostic> {
        let mut out = Vec::new();
        for (name, value) in &r.match_equal {
            out.push(label_matcher(self.source, at, name, Op::Equal, value)?);
        }
        for (name, value) in &r.match_re {
            out.push(label_matcher(self.source, at, name, Op::Regex, value)?);
        }
        for m in &r.matchers {
            out.push(parsed_matcher(self.source, m)?);
        }
        Ok(out)
    }
}

/// One inhibit rule as an `inhibit:` entry.
fn inhibition(source: &Path, spanned: &Spanned<InhibitRule>) -> Result<String, Diagnostic> {
    let rule = &spanned.value;
    let side = |equal: &BTreeMap<String, String>,
                re: &BTreeMap<String, String>,
                matchers: &[Spanned<String>]|
     -> Result<Vec<String>, Diagnostic> {
        let mut out = Vec::new();
        for (name, value) in equal {
            out.push(label_matcher(
                source,
                &spanned.referenced,
                name,
                Op::Equal,
                value,
            )?);
        }
        for (name, value) in re {
            out.push(label_matcher(
                source,
                &spanned.referenced,
                name,
                Op::Regex,
                value,
            )?);
        }
        for m in matchers {
            out.push(parsed_matcher(source, m)?);
        }
        Ok(out)
    };
    let source_matchers = side(
        &rule.source_match,
        &rule.source_match_re,
        &rule.source_matchers,
    )?;
    let target_matchers = side(
        &rule.target_match,
        &rule.target_match_re,
        &rule.target_matchers,
    )?;
    let equal: Vec<String> = rule.equal.iter().map(|l| format!("labels.{l}")).collect();
    let mut out = format!(
        "  - source: {{matchers: {}}}\n    target: {{matchers: {}}}\n",
        list(&source_matchers),
        list(&target_matchers)
    );
    if !equal.is_empty() {
        out.push_str(&format!("    equal: {}\n", list(&equal)));
    }
    Ok(out)
}

/// `matchers:` text as Alertmanager writes it (`team="db"`, `severity =~ warn|crit`)
/// as the router's matcher on that label (`labels.team="db"`).
fn parsed_matcher(source: &Path, m: &Spanned<String>) -> Result<String, Diagnostic> {
    Matcher::parse(&format!("labels.{}", m.value.trim()))
        .map(|m| m.to_string())
        .map_err(|e| at(source, &m.referenced, format!("matchers: {e}")))
}

/// `match:` / `match_re:`'s `name: value` (of the route or rule `place` starts) as the
/// router's matcher on that label.
fn label_matcher(
    source: &Path,
    place: &serde_saphyr::Location,
    name: &str,
    op: Op,
    value: &str,
) -> Result<String, Diagnostic> {
    Matcher::new(&format!("labels.{name}"), op, value)
        .map(|m| m.to_string())
        .map_err(|e| at(source, place, e.to_string()))
}

/// An Alertmanager duration (`30s`, `1h30m`, `1d`, `1w`).
fn duration(source: &Path, text: &Spanned<String>) -> Result<Duration, Diagnostic> {
    yaml::am_duration(&text.value).map_err(|e| at(source, &text.referenced, e))
}

fn at(source: &Path, loc: &serde_saphyr::Location, message: String) -> Diagnostic {
    Diagnostic::new(source, loc.line() as u32, loc.column() as u32, message)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// router.yaml: the API where Prometheus posts, the storage, the imported rules and
/// templates, and a sink per integration.
fn router_yaml(source: &Path, sinks: &Sinks, plugin_dirs: &[PathBuf]) -> String {
    let mut out = format!(
        "# Imported from {} by `alert-router import-alertmanager`. Point Prometheus at the\n\
         # router (alerting.alertmanagers: targets [\"127.0.0.1:9470\"]) and check it with\n\
         # `alert-router check`. Secrets are in the .env beside this file.\n\
         server:\n  listen: 127.0.0.1:9470\n  token: \"${{ALERT_ROUTER_TOKEN:-}}\"\n\
         storage:\n  path: data\n\
         rules: rules\n\
         templates: templates\n",
        file_name(source)
    );
    if !plugin_dirs.is_empty() {
        let dirs: Vec<String> = plugin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        out.push_str(&format!("plugins:\n  dirs: {}\n", list(&dirs)));
    }
    if sinks.list.is_empty() {
        out.push_str("sinks: {}\n");
        return out;
    }
    out.push_str("sinks:\n");
    for Sink {
        name,
        plugin,
        settings,
        receiver,
        ..
    } in &sinks.list
    {
        out.push_str(&format!(
            "  # receiver {}\n  {name}:\n    plugin: {plugin}\n    settings:\n",
            q(receiver)
        ));
        for (key, value) in settings {
            out.push_str(&format!("      {key}: {value}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
