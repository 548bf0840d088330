//! Schedules (`schedules:` in rule files): events the router posts itself on a calendar,
//! such as the trading bot's daily summary at 23:59 exchange time. Each has a cron
//! expression, an IANA time zone, and the event to post, whose string values are
//! minijinja templates rendered with `state` (the state store's answers), `schedule`
//! (its name) and `now`; a string that is exactly one `{{ expression }}` keeps the
//! expression's type (a number stays a number). A run missed while the router was down is
//! made once at start, unless `catch_up: false`.

use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use serde::Deserialize;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use time::OffsetDateTime;

use super::cron::{self, Cron};
use crate::diag::{Diagnostic, Diagnostics};
use crate::event::Event;

/// The `source` of the events schedules post.
pub const SOURCE: &str = "schedule";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    name: Spanned<String>,
    cron: Spanned<String>,
    #[serde(default)]
    time_zone: Option<Spanned<String>>,
    #[serde(default = "yes")]
    catch_up: bool,
    event: Spanned<Value>,
}

fn yes() -> bool {
    true
}

/// A compiled schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub file: PathBuf,
    pub line: u32,
    pub cron: Cron,
    pub zone: TimeZone,
    pub zone_name: String,
    pub catch_up: bool,
    /// The event, its strings templates.
    pub event: Map<String, Value>,
}

/// Compiles the `schedules:` of one file; names are unique across files (`names`).
pub(crate) fn compile(
    file: &Path,
    raw: Vec<Spanned<RawSchedule>>,
    problems: &mut Diagnostics,
    names: &mut super::Names,
) -> Vec<Schedule> {
    let mut out = Vec::new();
    for spanned in raw {
        let loc = spanned.referenced;
        let r = spanned.value;
        let name = r.name.value.clone();
        let at = |l: &serde_saphyr::Location, m: String| {
            Diagnostic::new(
                file,
                l.line() as u32,
                l.column() as u32,
                format!("schedule `{name}`: {m}"),
            )
        };
        names.claim(file, &r.name, &format!("schedule `{name}`"), problems);
        let cron = match Cron::parse(&r.cron.value) {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push(at(&r.cron.referenced, format!("cron: {e}")));
                None
            }
        };
        let zone_name = r
            .time_zone
            .as_ref()
            .map_or("UTC", |z| z.value.as_str())
            .to_owned();
        let zone = match cron::zone(&zone_name) {
            Ok(z) => Some(z),
            Err(e) => {
                let place = r.time_zone.as_ref().map_or(loc, |z| z.referenced);
                problems.push(at(&place, format!("time_zone: {e}")));
                None
            }
        };
        let event = match r.event.value {
            Value::Object(map) => {
                if !map.get("type").is_some_and(Value::is_string) {
                    problems.push(at(
                        &r.event.referenced,
                        "event: needs a `type`, e.g. {type: daily_summary, ...}".into(),
                    ));
                }
                let env = minijinja::Environment::new();
                let mut bad = Vec::new();
                each_string(&Value::Object(map.clone()), &mut |s| {
                    if let Err(e) = env.template_from_str(s) {
                        bad.push(e.to_string());
                    }
                });
                for e in bad {
                    problems.push(at(&r.event.referenced, format!("event: {e}")));
                }
                Some(map)
            }
            _ => {
                problems.push(at(
                    &r.event.referenced,
                    "event: write the event to post as a map".into(),
                ));
                None
            }
        };
        if let (Some(cron), Some(zone), Some(event)) = (cron, zone, event) {
            out.push(Schedule {
                name,
                file: file.to_path_buf(),
                line: loc.line() as u32,
                cron,
                zone,
                zone_name,
                catch_up: r.catch_up,
                event,
            });
        }
    }
    out
}

fn each_string(value: &Value, f: &mut dyn FnMut(&str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| each_string(v, f)),
        Value::Object(map) => map.values().for_each(|v| each_string(v, f)),
        _ => {}
    }
}

impl Schedule {
    /// The run due at `now` given the last one (`None`: never ran), if any: the latest
    /// scheduled time after `last` and not after `now` (runs missed in between are made
    /// once, as one). Never ran: nothing is due before the first time after `since`.
    pub fn due(
        &self,
        last: Option<OffsetDateTime>,
        since: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let from = last.unwrap_or(since);
        let next = self.cron.next_after(from, &self.zone)?;
        if next > now {
            return None;
        }
        // Several missed: the latest stands for them all.
        self.cron
            .prev_at_or_before(now, &self.zone)
            .filter(|&p| p > from)
    }

    /// When it runs next after `last` (or `since`).
    pub fn next(
        &self,
        last: Option<OffsetDateTime>,
        since: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        self.cron.next_after(last.unwrap_or(since), &self.zone)
    }

    /// The event of the run at `at`, its templates rendered with `state`.
    pub fn event(&self, at: OffsetDateTime, state: &Map<String, Value>) -> Result<Event, String> {
        let env = minijinja::Environment::new();
        let now = crate::event::format_time(at);
        let ctx = minijinja::context! {
            state => minijinja::Value::from(minijinja::value::Serde(state)),
            schedule => &self.name,
            now => &now,
        };
        let mut value = Value::Object(self.event.clone());
        render_strings(&env, &ctx, &mut value)?;
        if let Value::Object(map) = &mut value {
            map.entry("time")
                .or_insert_with(|| Value::String(now.clone()));
            map.insert(
                "id".into(),
                Value::String(format!("schedule:{}:{now}", self.name)),
            );
            map.entry("source")
                .or_insert_with(|| Value::String(SOURCE.to_owned()));
        }
        Event::from_json(value, at).map_err(|e| e.to_string())
    }
}

/// Renders every string of `value` in place; one that is exactly `{{ expression }}`
/// becomes the expression's value.
fn render_strings(
    env: &minijinja::Environment,
    ctx: &minijinja::Value,
    value: &mut Value,
) -> Result<(), String> {
    match value {
        Value::String(s) => {
            let trimmed = s.trim();
            let single = trimmed
                .strip_prefix("{{")
                .and_then(|r| r.strip_suffix("}}"))
                .filter(|inner| !inner.contains("{{") && !inner.contains("}}"));
            *value = match single {
                Some(expr) => {
                    let compiled = env
                        .compile_expression(expr.trim())
                        .map_err(|e| e.to_string())?;
                    let result = compiled.eval(ctx.clone()).map_err(|e| e.to_string())?;
                    serde_json::to_value(&result).map_err(|e| e.to_string())?
                }
                None => Value::String(env.render_str(s, ctx.clone()).map_err(|e| e.to_string())?),
            };
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|v| render_strings(env, ctx, v)),
        Value::Object(map) => map
            .values_mut()
            .try_for_each(|v| render_strings(env, ctx, v)),
        _ => Ok(()),
    }
}

/// When each schedule last ran (Unix ms): stored with the event a run posts, so a run is
/// made once, whatever stops the router.
#[derive(Debug)]
pub struct Runs {
    last: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// When this router started: a schedule that never ran starts counting from here.
    since: OffsetDateTime,
}

impl Runs {
    /// From the stored runs. A schedule with `catch_up: false` whose run was missed while
    /// the router was down skips it (said in the log); the others make it once, now.
    pub fn restore(rows: Vec<(String, i64)>, schedules: &[Schedule], now: OffsetDateTime) -> Runs {
        let mut last: std::collections::HashMap<String, i64> = rows.into_iter().collect();
        for s in schedules.iter().filter(|s| !s.catch_up) {
            let Some(&ms) = last.get(&s.name) else {
                continue;
            };
            if let Some(missed) = s.due(Some(from_ms(ms)), now, now) {
                tracing::info!(schedule = %s.name, missed = %crate::event::format_time(missed), "a run missed while the router was down is skipped (catch_up: false)");
                last.insert(s.name.clone(), to_ms(missed));
            }
        }
        Runs {
            last: std::sync::Mutex::new(last),
            since: now,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, i64>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The schedules due at `now`, each with the time of its run.
    pub fn due<'s>(
        &self,
        schedules: &'s [Schedule],
        now: OffsetDateTime,
    ) -> Vec<(&'s Schedule, OffsetDateTime)> {
        let last = self.lock();
        schedules
            .iter()
            .filter_map(|s| {
                let at = s.due(last.get(&s.name).map(|&ms| from_ms(ms)), self.since, now)?;
                Some((s, at))
            })
            .collect()
    }

    /// A run was made (its event stored).
    pub fn ran(&self, name: &str, at: OffsetDateTime) {
        self.lock().insert(name.to_owned(), to_ms(at));
    }

    /// When the next run of any schedule is (Unix ms).
    pub fn next_ms(&self, schedules: &[Schedule]) -> Option<i64> {
        let last = self.lock();
        schedules
            .iter()
            .filter_map(|s| s.next(last.get(&s.name).map(|&ms| from_ms(ms)), self.since))
            .map(to_ms)
            .min()
    }
}

fn to_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn schedule(cron: &str, zone: &str) -> Schedule {
        Schedule {
            name: "s".into(),
            file: PathBuf::from("rules/s.yaml"),
            line: 1,
            cron: Cron::parse(cron).expect("a cron"),
            zone: cron::zone(zone).expect("a zone"),
            zone_name: zone.into(),
            catch_up: true,
            event: serde_json::json!({"type": "report", "total_pnl": "{{ state.daily.pnl }}", "note": "day {{ now[:10] }} by {{ schedule }}"})
                .as_object()
                .cloned()
                .expect("a map"),
        }
    }

    #[test]
    fn a_run_is_due_once_its_time_passed_and_missed_runs_are_made_once() {
        let s = schedule("59 23 * * *", "America/New_York");
        let start = datetime!(2026-12-04 12:00 UTC);
        // Never ran: the first is 23:59 New York = 04:59 UTC the next day.
        assert_eq!(s.due(None, start, datetime!(2026-12-05 04:58 UTC)), None);
        assert_eq!(
            s.due(None, start, datetime!(2026-12-05 04:59 UTC)),
            Some(datetime!(2026-12-05 04:59 UTC))
        );
        // Down for three days: one run, the latest.
        let last = datetime!(2026-12-05 04:59 UTC);
        assert_eq!(
            s.due(Some(last), start, datetime!(2026-12-08 06:00 UTC)),
            Some(datetime!(2026-12-08 04:59 UTC))
        );
        assert_eq!(
            s.next(Some(last), start),
            Some(datetime!(2026-12-06 04:59 UTC))
        );
    }

    #[test]
    fn the_event_renders_its_templates_keeping_single_expressions_types() {
        let s = schedule("0 0 * * *", "UTC");
        let state = serde_json::json!({"daily": {"pnl": -12.5}});
        let e = s
            .event(
                datetime!(2026-12-05 00:00 UTC),
                state.as_object().expect("a map"),
            )
            .expect("an event");
        assert_eq!(e.kind, "report");
        assert_eq!(e.data["total_pnl"], serde_json::json!(-12.5));
        assert_eq!(e.data["note"], "day 2026-12-05 by s");
        assert_eq!(e.id, "schedule:s:2026-12-05T00:00:00Z");
        assert_eq!(e.source.as_deref(), Some(SOURCE));
    }
}
