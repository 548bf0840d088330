//! `alert-router replay`: recorded events (as `export` writes them) played through two
//! configurations, each on a clock of its own ([`Simulation`]), and what each would
//! have done side by side: per sink what it would have been sent and what held back,
//! per route the same, per alert rule how often it fired and resolved, and the first
//! messages that differ. Nothing is sent, and the configs' storage is not touched.
//!
//! The two runs go one after the other: a simulation moves the process's clock, so two
//! at once would move each other's.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::table::Table;
use crate::config::{Config, format_duration};
use crate::event::{Event, format_time};
use crate::ingest::{BatchError, Position};
use crate::simulate::{Captured, Simulation};

/// `replay`: the events, the two configurations, and how to report.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  alert-router export --since 24h --output day.ndjson
  alert-router replay --events day.ndjson --candidate next/router.yaml
  alert-router replay --events day.ndjson --baseline old.yaml --candidate new.yaml --json

Each event is played at its `time` on a clock of the replay's own (a day takes seconds);
after the last one the clock moves on by --drain, so open groups speak and `for:` timers
run out. Silences set on a running router are not part of a replay.")]
pub struct Replay {
    /// The recorded events: NDJSON as `export` writes it (a JSON array or one object
    /// also do), `-` for stdin. Every event needs its `time`.
    #[arg(long, value_name = "FILE")]
    events: PathBuf,
    /// The configuration to try.
    #[arg(long, value_name = "FILE")]
    candidate: PathBuf,
    /// The configuration to compare it with. Default: --config (ALERT_ROUTER_CONFIG),
    /// the one the router runs on.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// How far the clock moves on after the last event, so groups speak and `for:`,
    /// `absent:` and `resolve_timeout` timers finish.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::config::parse_duration)]
    drain: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Differing messages listed, at most.
const DIFFERENCES_SHOWN: usize = 10;
/// Characters of a message's first line shown.
const TEXT_CHARS: usize = 100;

pub fn run(config_path: &Path, args: Replay) -> Result<ExitCode> {
    let recording = read_recording(&args.events)?;
    let baseline_path = args.baseline.as_deref().unwrap_or(config_path);
    let Some(until) = time::Duration::try_from(args.drain)
        .ok()
        .and_then(|d| recording.last.checked_add(d))
    else {
        bail!(
            "--drain {}: too long after the last event",
            format_duration(args.drain)
        );
    };
    let baseline = play("baseline", baseline_path, &recording, until)?;
    let candidate = play("candidate", &args.candidate, &recording, until)?;
    let report = Report::new(&recording, args.drain, baseline, candidate);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(ExitCode::SUCCESS)
}

/// The events to play, oldest first, each with where it is in the file.
struct Recording {
    file: String,
    events: Vec<(Event, String)>,
    first: OffsetDateTime,
    last: OffsetDateTime,
}

/// Stands in for a missing `time` while parsing: outside the years an event's time may
/// have, so no event that has one can have it.
fn no_time() -> OffsetDateTime {
    // 0000-01-01T00:00:00Z
    OffsetDateTime::from_unix_timestamp(-62_167_219_200).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn read_recording(path: &Path) -> Result<Recording> {
    let file = if path == Path::new("-") {
        "stdin".to_owned()
    } else {
        path.display().to_string()
    };
    let mut body = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut body)
            .context("cannot read the events from stdin")?;
    } else {
        body = std::fs::read(path).with_context(|| format!("cannot read {file}"))?;
    }
    let is_array = body.trim_ascii_start().starts_with(b"[");
    // Where the i-th event is: an array's index, else the line it starts on (NDJSON's
    // i-th non-empty line; a single object's first).
    let lines: Vec<usize> = String::from_utf8_lossy(&body)
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, _)| i + 1)
        .collect();
    let place = |i: usize| {
        if is_array {
            format!("{file}: event {i}")
        } else {
            lines
                .get(i)
                .map_or_else(|| file.clone(), |l| format!("{file}:{l}"))
        }
    };
    let parsed = crate::ingest::parse_body(&body, no_time())
        .map_err(|e| anyhow::anyhow!("{}", batch_error(&file, &e)))?;
    let mut events = Vec::with_capacity(parsed.len());
    for (i, event) in parsed.into_iter().enumerate() {
        if event.time == no_time() {
            bail!(
                "{}: the {} event has no `time`: a replay plays each event at its time; give every event one (RFC 3339), as `alert-router export` writes them",
                place(i),
                event.kind
            );
        }
        events.push((event, place(i)));
    }
    // Stable: events of the same time keep the file's order.
    events.sort_by_key(|(e, _)| e.time);
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        bail!("{file}: no events to replay");
    };
    let (first, last) = (first.0.time, last.0.time);
    Ok(Recording {
        file,
        events,
        first,
        last,
    })
}

/// A refused file, said as `file:line: field `x`: why`.
fn batch_error(file: &str, e: &BatchError) -> String {
    let place = match e.position {
        Position::Whole => file.to_owned(),
        Position::Index(i) => format!("{file}: event {i}"),
        Position::Line(l) => format!("{file}:{l}"),
    };
    match &e.field {
        Some(field) => format!("{place}: field `{field}`: {}", e.message),
        None => format!("{place}: {}", e.message),
    }
}

/// What one configuration did with the recording.
#[derive(Debug, Default, Serialize)]
struct Outcome {
    config: String,
    /// Per sink: `sent`, `dead_letters` and each reason messages were held back for.
    sinks: Counted,
    /// Per route (in the config's order): `routed` and each held-back reason.
    routes: Counted,
    /// Per alert rule: `fired`, `resolved`.
    alert_rules: Counted,
    /// What the sinks would have been sent, in order (time, sink, payload).
    #[serde(skip)]
    messages: Vec<Message>,
}

/// `{name: {count: n}}`: counts of each sink, route or alert rule, in the order the
/// router lists them.
type Counted = serde_json::Map<String, Value>;

/// One message a sink would have been sent, as compared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Message {
    at: OffsetDateTime,
    sink: String,
    /// The payload as JSON text: messages compare by it.
    payload: String,
    text: String,
}

/// Plays the recording through the config at `path` until `until`.
fn play(role: &str, path: &Path, recording: &Recording, until: OffsetDateTime) -> Result<Outcome> {
    let config = Config::load(path).map_err(|d| {
        anyhow::anyhow!(
            "the {role} config: {d}\n{} problem(s) in the config",
            d.0.len()
        )
    })?;
    eprintln!(
        "replaying {} event(s) through the {role} config {}",
        recording.events.len(),
        path.display()
    );
    let mut sim = Simulation::start(config, recording.first)
        .map_err(|d| anyhow::anyhow!("the {role} config: {d}"))?;
    for (event, place) in &recording.events {
        sim.advance_to(event.time);
        sim.post(vec![event.clone()]).map_err(|e| {
            anyhow::anyhow!(
                "{place}: the {role} config did not take the event at {}: {e}",
                format_time(event.time)
            )
        })?;
    }
    sim.advance_to(until);
    let status = sim.status();
    let messages: Vec<Message> = sim.captured().iter().map(message).collect();
    drop(sim);
    Ok(outcome(path, &status, messages))
}

fn message(c: &Captured) -> Message {
    Message {
        at: c.at_time,
        sink: c.sink.clone(),
        payload: c.payload.to_string(),
        text: first_line(&c.payload),
    }
}

/// The first line of what a message says: its title or text, else its JSON.
fn first_line(payload: &Value) -> String {
    let said = match payload {
        Value::String(s) => Some(s.as_str()),
        Value::Object(_) => ["title", "subject", "text", "content", "message", "summary"]
            .iter()
            .find_map(|k| payload.get(k).and_then(Value::as_str))
            .or_else(|| payload.pointer("/embeds/0/title").and_then(Value::as_str)),
        _ => None,
    };
    let line = match said {
        Some(s) => s
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .to_owned(),
        None => payload.to_string(),
    };
    if line.chars().count() > TEXT_CHARS {
        let cut: String = line.chars().take(TEXT_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        line
    }
}

fn outcome(path: &Path, status: &Value, mut messages: Vec<Message>) -> Outcome {
    let mut sinks = Counted::new();
    for (name, s) in status["sinks"].as_object().into_iter().flatten() {
        let mut counts = serde_json::Map::new();
        let sent = messages.iter().filter(|m| &m.sink == name).count();
        counts.insert("sent".into(), json!(sent));
        counts.insert("dead_letters".into(), s["dead_letters"].clone());
        for (reason, n) in s["held_back"].as_object().into_iter().flatten() {
            counts.insert(reason.clone(), n.clone());
        }
        sinks.insert(name.clone(), Value::Object(counts));
    }
    let mut routes = Counted::new();
    for (name, r) in status["routes"].as_object().into_iter().flatten() {
        let mut counts = serde_json::Map::new();
        counts.insert("routed".into(), r["routed"].clone());
        for (reason, n) in r["held_back"].as_object().into_iter().flatten() {
            counts.insert(reason.clone(), n.clone());
        }
        routes.insert(name.clone(), Value::Object(counts));
    }
    let mut alert_rules = Counted::new();
    for (name, r) in status["events"]["alert_rules"]
        .as_object()
        .into_iter()
        .flatten()
    {
        alert_rules.insert(
            name.clone(),
            json!({"fired": r["firing"], "resolved": r["resolved"]}),
        );
    }
    messages.sort();
    Outcome {
        config: path.display().to_string(),
        sinks,
        routes,
        alert_rules,
        messages,
    }
}

/// One line of the comparison: a count of a sink, route or alert rule in each config
/// (`None`: not in that config).
#[derive(Debug, Serialize)]
struct Row {
    what: &'static str,
    name: String,
    count: String,
    baseline: Option<u64>,
    candidate: Option<u64>,
    /// candidate − baseline, when both have it.
    change: Option<i64>,
}

impl Row {
    fn changed(&self) -> bool {
        self.baseline != self.candidate
    }

    fn change_text(&self) -> String {
        match (self.baseline, self.candidate, self.change) {
            (None, Some(_), _) => "new".into(),
            (Some(_), None, _) => "gone".into(),
            (_, _, Some(0)) | (None, None, _) => String::new(),
            (_, _, Some(n)) => format!("{n:+}"),
            (_, _, None) => String::new(),
        }
    }
}

/// A message only one of the two configs would have sent.
#[derive(Debug, Serialize)]
struct Difference {
    only_in: &'static str,
    sink: String,
    at: String,
    text: String,
}

#[derive(Debug, Serialize)]
struct Report {
    file: String,
    events: usize,
    from: String,
    to: String,
    drain: String,
    baseline: Outcome,
    candidate: Outcome,
    rows: Vec<Row>,
    /// Rows whose count differs.
    changed: usize,
    /// Messages only one config would have sent, all told.
    differing_messages: usize,
    /// The first of them, by time.
    differences: Vec<Difference>,
}

impl Report {
    fn new(
        recording: &Recording,
        drain: Duration,
        baseline: Outcome,
        candidate: Outcome,
    ) -> Report {
        let mut rows = Vec::new();
        let (b, c) = (&baseline, &candidate);
        compare("sink", &mut rows, &b.sinks, &c.sinks, &["sent"]);
        compare("route", &mut rows, &b.routes, &c.routes, &["routed"]);
        compare(
            "alert rule",
            &mut rows,
            &b.alert_rules,
            &c.alert_rules,
            &["fired", "resolved"],
        );
        let changed = rows.iter().filter(|r| r.changed()).count();
        let all = differences(&b.messages, &c.messages);
        Report {
            file: recording.file.clone(),
            events: recording.events.len(),
            from: format_time(recording.first),
            to: format_time(recording.last),
            drain: format_duration(drain),
            baseline,
            candidate,
            changed,
            differing_messages: all.len(),
            differences: all.into_iter().take(DIFFERENCES_SHOWN).collect(),
            rows,
        }
    }

    fn text(&self) -> String {
        let mut out = format!(
            "Replayed {} event(s) from {}: {} to {}, then {} on.\nbaseline:  {}\ncandidate: {}\n\n",
            self.events,
            self.file,
            self.from,
            self.to,
            self.drain,
            self.baseline.config,
            self.candidate.config
        );
        let mut table = Table::new(&["", "", "BASELINE", "CANDIDATE", "CHANGE"]);
        for row in &self.rows {
            let n = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |n| n.to_string());
            table.row([
                format!("{} {}", row.what, row.name),
                row.count.clone(),
                n(row.baseline),
                n(row.candidate),
                row.change_text(),
            ]);
        }
        out.push_str(&table.render());
        out.push('\n');
        match (self.changed, self.differing_messages) {
            (0, 0) => out
                .push_str("No difference: the candidate would have done what the baseline did.\n"),
            (rows, 0) => out.push_str(&format!(
                "{rows} count(s) differ; every message is the same.\n"
            )),
            (rows, n) => {
                out.push_str(&format!(
                    "{rows} count(s) differ; {n} message(s) only one of them would have sent{}:\n",
                    if n > self.differences.len() {
                        format!(", the first {}", self.differences.len())
                    } else {
                        String::new()
                    }
                ));
                let mut list = Table::new(&["", "SINK", "TIME", "MESSAGE"]);
                for d in &self.differences {
                    let side = if d.only_in == "candidate" {
                        "+ candidate"
                    } else {
                        "- baseline"
                    };
                    list.row([
                        side.to_owned(),
                        d.sink.clone(),
                        d.at.clone(),
                        d.text.clone(),
                    ]);
                }
                for line in list.render().lines() {
                    out.push_str("  ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// Rows for every name in either config (the baseline's order, then the candidate's
/// new ones): the counts in `always`, and any other that is not zero on either side.
fn compare(
    what: &'static str,
    rows: &mut Vec<Row>,
    baseline: &Counted,
    candidate: &Counted,
    always: &[&str],
) {
    let mut names: Vec<&String> = baseline.keys().collect();
    names.extend(candidate.keys().filter(|k| !baseline.contains_key(*k)));
    for name in names {
        let (b, c) = (baseline.get(name), candidate.get(name));
        let mut counts: Vec<&String> = Vec::new();
        for side in [b, c].into_iter().flatten() {
            for k in side.as_object().into_iter().flat_map(|o| o.keys()) {
                if !counts.contains(&k) {
                    counts.push(k);
                }
            }
        }
        for count in counts {
            let get = |side: Option<&Value>| side.map(|s| s[count].as_u64().unwrap_or(0));
            let (bn, cn) = (get(b), get(c));
            if !always.contains(&count.as_str()) && bn.unwrap_or(0) == 0 && cn.unwrap_or(0) == 0 {
                continue;
            }
            rows.push(Row {
                what,
                name: name.clone(),
                count: count.clone(),
                baseline: bn,
                candidate: cn,
                change: match (bn, cn) {
                    (Some(x), Some(y)) => Some(y as i64 - x as i64),
                    _ => None,
                },
            });
        }
    }
}

/// The messages only one side has (as many times as it has them more), by time.
fn differences(baseline: &[Message], candidate: &[Message]) -> Vec<Difference> {
    // Both are sorted: walk them side by side.
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    let only = |side: &'static str, m: &Message| Difference {
        only_in: side,
        sink: m.sink.clone(),
        at: format_time(m.at),
        text: m.text.clone(),
    };
    while i < baseline.len() || j < candidate.len() {
        match (baseline.get(i), candidate.get(j)) {
            (Some(b), Some(c)) if b == c => {
                i += 1;
                j += 1;
            }
            (Some(b), Some(c)) if b < c => {
                out.push(only("baseline", b));
                i += 1;
            }
            (Some(_), Some(c)) | (None, Some(c)) => {
                out.push(only("candidate", c));
                j += 1;
            }
            (Some(b), None) => {
                out.push(only("baseline", b));
                i += 1;
            }
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(at: i64, sink: &str, text: &str) -> Message {
        Message {
            at: OffsetDateTime::from_unix_timestamp(at).expect("a time"),
            sink: sink.into(),
            payload: json!({"text": text}).to_string(),
            text: text.into(),
        }
    }

    #[test]
    fn messages_only_one_side_has_are_listed_by_time_as_often_as_it_has_them_more() {
        let mut baseline = vec![
            m(1, "a", "x"),
            m(2, "a", "y"),
            m(2, "a", "y"),
            m(5, "b", "z"),
        ];
        let mut candidate = vec![
            m(1, "a", "x"),
            m(2, "a", "y"),
            m(3, "a", "new"),
            m(5, "b", "z"),
        ];
        baseline.sort();
        candidate.sort();
        let found: Vec<(&str, String)> = differences(&baseline, &candidate)
            .iter()
            .map(|d| (d.only_in, d.text.clone()))
            .collect();
        assert_eq!(
            found,
            [
                ("baseline", "y".to_owned()),
                ("candidate", "new".to_owned())
            ]
        );
        assert!(differences(&baseline, &baseline).is_empty());
    }

    #[test]
    fn a_messages_first_line_is_its_title_or_text_else_its_json() {
        assert_eq!(first_line(&json!({"text": "\n  one\ntwo"})), "one");
        assert_eq!(first_line(&json!({"title": "t", "text": "x"})), "t");
        assert_eq!(first_line(&json!({"embeds": [{"title": "e"}]})), "e");
        assert_eq!(first_line(&json!("plain")), "plain");
        assert_eq!(first_line(&json!({"n": 1})), r#"{"n":1}"#);
        let long = first_line(&json!({"text": "é".repeat(300)}));
        assert_eq!(long.chars().count(), TEXT_CHARS);
    }

    #[test]
    fn rows_show_the_named_counts_and_any_other_that_is_not_zero() {
        let baseline: Counted = serde_json::from_value(json!({
            "console": {"sent": 3, "dead_letters": 0, "grouped": 0, "silenced": 1},
            "gone": {"sent": 1}
        }))
        .expect("counts");
        let candidate: Counted = serde_json::from_value(json!({
            "console": {"sent": 3, "dead_letters": 0, "grouped": 2, "silenced": 1},
            "new": {"sent": 0}
        }))
        .expect("counts");
        let mut rows = Vec::new();
        compare("sink", &mut rows, &baseline, &candidate, &["sent"]);
        let shown: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| (r.name.clone(), r.count.clone(), r.change_text()))
            .collect();
        let want = [
            ("console", "sent", ""),
            ("console", "grouped", "+2"),
            ("console", "silenced", ""),
            ("gone", "sent", "gone"),
            ("new", "sent", "new"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
        assert_eq!(shown, want);
        assert_eq!(rows.iter().filter(|r| r.changed()).count(), 3);
    }
}
