//! `alert-router silence add|list|expire`: silences on a running router, through its
//! HTTP API (`/v1/silences`), at the address and with the token `send` uses. Matchers are
//! checked here first, so a typo is caught before anything is sent.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::table::Table;
use crate::notify::matchers;

/// What `silence --help` shows after the options. Keep the lines working.
const EXAMPLES: &str = r#"Examples:
  alert-router silence add labels.exchange=binance --for 2h --comment "exchange maintenance"
  alert-router silence add type=error 'component="exchange api"' --until 2026-12-04T18:00:00Z
  alert-router silence add 'type=~"trade_.*"' source!=live-bot --for 30m
  alert-router silence list
  alert-router silence expire 0193b0c2-7e5d-7c4e-9a3b-5d6e7f8091a2

A matcher is name=value, name!=value, name=~regex or name!~regex (regexes match the
whole value). Names: type, severity, source, id, labels.<key>, or any other field of the
event. A missing label or field is the empty string: x!="" means x is present."#;

/// `silence`: where the router is, and what to do.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct Silence {
    /// The router's address.
    #[arg(
        long,
        global = true,
        env = "ALERT_ROUTER_URL",
        default_value = "http://127.0.0.1:9470"
    )]
    url: String,
    /// The bearer token, if the router has `server.token`.
    #[arg(
        long,
        global = true,
        env = "ALERT_ROUTER_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Hold back the events that match every matcher, for a while.
    Add(Add),
    /// List silences, newest first: active and pending ones, or all with --all.
    List {
        /// Expired silences too (kept for 5 days).
        #[arg(long)]
        all: bool,
        /// Print the router's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End a silence now.
    Expire {
        /// The silence's id (from `add` or `list`).
        id: String,
    },
}

/// `silence add`'s arguments.
#[derive(Debug, Args)]
struct Add {
    /// What to silence: name=value, name!=value, name=~regex, name!~regex (quote a value
    /// with spaces: 'component="exchange api"'); several in one argument with commas.
    #[arg(value_name = "MATCHER", required = true)]
    matchers: Vec<String>,
    /// How long, from now: 30m, 2h, 1d.
    #[arg(long = "for", value_name = "DURATION", conflicts_with = "until")]
    duration: Option<String>,
    /// Until when, in RFC 3339: 2026-12-04T18:00:00Z.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Who silences (default: $USER).
    #[arg(long, env = "USER", hide_env_values = true)]
    author: Option<String>,
    /// Why.
    #[arg(long, default_value = "")]
    comment: String,
}

pub fn run(args: Silence) -> Result<ExitCode> {
    let api = Api {
        base: args.url.trim_end_matches('/').to_owned(),
        token: args.token,
    };
    match args.action {
        Action::Add(add) => {
            let body = body(&add)?;
            let answer = api.call(reqwest::Method::POST, &["v1", "silences"], Some(body))?;
            let id = text(&answer["id"]);
            // The id alone on stdout, for scripts (`id=$(alert-router silence add ...)`).
            println!("{id}");
            eprintln!(
                "silence {} {}: {} until {}",
                text(&answer["state"]),
                id,
                list_text(&answer["matchers"]),
                text(&answer["ends_at"])
            );
        }
        Action::List { all, json } => {
            let answer = api.call(reqwest::Method::GET, &["v1", "silences"], None)?;
            let silences = answer["silences"].as_array().cloned().unwrap_or_default();
            let shown: Vec<Value> = silences
                .into_iter()
                .filter(|s| all || s["state"] != "expired")
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                print!("{}", table(&shown, all, OffsetDateTime::now_utc()));
            }
        }
        Action::Expire { id } => {
            let answer = api.call(reqwest::Method::DELETE, &["v1", "silences", &id], None)?;
            println!(
                "expired {} ({})",
                text(&answer["id"]),
                list_text(&answer["matchers"])
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The body of `POST /v1/silences` for `add`. The duration goes as it is written, so the
/// router counts it from its own clock.
fn body(add: &Add) -> Result<Value> {
    let matchers = matchers::parse_words(&add.matchers)?;
    let author = match add.author.as_deref().map(str::trim) {
        Some(author) if !author.is_empty() => author,
        _ => bail!("say who silences: --author NAME (it defaults to $USER, which is not set)"),
    };
    let mut body = json!({
        "matchers": matchers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "created_by": author,
        "comment": add.comment,
    });
    match (&add.duration, &add.until) {
        (Some(d), _) => {
            crate::config::parse_duration(d).map_err(|e| anyhow::anyhow!("--for: {e}"))?;
            body["duration"] = json!(d.trim());
        }
        (None, Some(until)) => {
            OffsetDateTime::parse(until.trim(), &Rfc3339).with_context(|| {
                format!("--until {until:?}: write an RFC 3339 time such as 2026-12-04T18:00:00Z")
            })?;
            body["ends_at"] = json!(until.trim());
        }
        (None, None) => bail!("say how long: --for 2h, or --until 2026-12-04T18:00:00Z"),
    }
    Ok(body)
}

/// The silences as a table; `ENDS` says how far off the end is from `now`.
fn table(silences: &[Value], all: bool, now: OffsetDateTime) -> String {
    if silences.is_empty() {
        return if all {
            "no silences\n".to_owned()
        } else {
            "no active or pending silences (--all shows expired ones)\n".to_owned()
        };
    }
    let mut table = Table::new(&["ID", "STATE", "MATCHERS", "ENDS", "AUTHOR", "COMMENT"]);
    for s in silences {
        let ends = text(&s["ends_at"]);
        let ends = match OffsetDateTime::parse(&ends, &Rfc3339) {
            Ok(t) => format!("{ends} ({})", relative(t, now)),
            Err(_) => ends,
        };
        table.row([
            text(&s["id"]),
            text(&s["state"]),
            list_text(&s["matchers"]),
            ends,
            text(&s["created_by"]),
            text(&s["comment"]),
        ]);
    }
    table.render()
}

/// `in 1h 30m`, `5m ago`: to the minute, the two largest units.
fn relative(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (t - now).whole_seconds();
    let mins = secs.unsigned_abs().div_ceil(60);
    let (d, h, m) = (mins / 1440, mins / 60 % 24, mins % 60);
    let span = match (d, h, m) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    };
    if secs >= 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The matchers of an answer, as the command line takes them.
fn list_text(value: &Value) -> String {
    match value {
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
        other => text(other),
    }
}

/// The running router's API.
struct Api {
    base: String,
    token: Option<String>,
}

impl Api {
    /// Sends the request to `base/<segments>` (each segment escaped) and returns the JSON
    /// answer; an error says what the router said.
    fn call(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        body: Option<Value>,
    ) -> Result<Value> {
        let mut url = reqwest::Url::parse(&self.base)
            .with_context(|| format!("--url {:?} is not a URL", self.base))?;
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("--url {:?} cannot take a path", self.base))?
            .pop_if_empty()
            .extend(segments);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (status, text) = runtime.block_on(async {
            let mut req = reqwest::Client::new()
                .request(method, url)
                .timeout(Duration::from_secs(10));
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let resp = req
                .send()
                .await
                .map_err(reqwest::Error::without_url)
                .with_context(|| {
                    format!(
                        "cannot reach the router at {}: is it running? (--url or ALERT_ROUTER_URL)",
                        self.base
                    )
                })?;
            let status = resp.status();
            anyhow::Ok((status, resp.text().await.unwrap_or_default()))
        })?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(answer);
        }
        match (status.as_u16(), answer["error"].as_str()) {
            (401, _) => bail!(
                "the router wants its token (server.token): give it with --token or ALERT_ROUTER_TOKEN"
            ),
            (_, Some(reason)) => bail!("the router refused: {reason}"),
            (404 | 405, None) => bail!(
                "the router at {} has no silences API (answered {status}): is it an older version?",
                self.base
            ),
            _ => bail!("the router answered {status}: {}", text.trim()),
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn add(matchers: &[&str]) -> Add {
        Add {
            matchers: matchers.iter().map(|m| (*m).to_owned()).collect(),
            duration: Some("2h".into()),
            until: None,
            author: Some("ana".into()),
            comment: String::new(),
        }
    }

    #[test]
    fn the_body_has_the_matchers_in_text_the_end_and_the_author() {
        let mut a = add(&[
            "labels.exchange=binance",
            "component=\"exchange api\"",
            "type=~err.*,source!=x",
        ]);
        a.comment = "maintenance".into();
        assert_eq!(
            body(&a).unwrap(),
            json!({
                "matchers": ["labels.exchange=\"binance\"", "component=\"exchange api\"",
                             "type=~\"err.*\"", "source!=\"x\""],
                "duration": "2h",
                "created_by": "ana",
                "comment": "maintenance"
            })
        );
        a.duration = None;
        a.until = Some("2026-12-04T18:00:00+01:00".into());
        let b = body(&a).unwrap();
        assert_eq!(b["ends_at"], "2026-12-04T18:00:00+01:00");
        assert!(b.get("duration").is_none());
        // What the router reads back is what was typed.
        let read = crate::notify::silences::NewSilence::from_json(b).unwrap();
        assert_eq!(
            read.matchers,
            crate::notify::matchers::parse_words(&a.matchers).unwrap()
        );
    }

    #[test]
    fn mistakes_are_caught_before_sending() {
        let err = |a: Add| body(&a).unwrap_err().to_string();
        assert!(err(add(&["type=~err("])).contains("bad regex"));
        assert!(err(add(&["2h"])).contains("no operator"));
        let mut a = add(&["type=error"]);
        a.duration = Some("2 weeks".into());
        assert!(err(a).starts_with("--for: "));
        let mut a = add(&["type=error"]);
        a.duration = None;
        a.until = Some("tomorrow".into());
        assert!(err(a).starts_with("--until \"tomorrow\""));
        let mut a = add(&["type=error"]);
        a.duration = None;
        assert!(err(a).contains("say how long"));
        let mut a = add(&["type=error"]);
        a.author = Some(" ".into());
        assert!(err(a).contains("--author"));
    }

    #[test]
    fn the_table_shows_what_is_silenced_and_until_when() {
        let now = datetime!(2026-12-04 12:00 UTC);
        let silences = vec![json!({
            "id": "0193-a", "state": "active",
            "matchers": ["labels.exchange=\"binance\"", "type=~\"err.*\""],
            "starts_at": "2026-12-04T11:00:00Z", "ends_at": "2026-12-04T13:30:00Z",
            "created_by": "ana", "comment": "maintenance", "held_back": 4
        })];
        let text = table(&silences, false, now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with("ID") && lines[0].contains("MATCHERS"),
            "{text}"
        );
        for cell in [
            "0193-a",
            "active",
            "labels.exchange=\"binance\" type=~\"err.*\"",
            "2026-12-04T13:30:00Z (in 1h 30m)",
            "ana",
            "maintenance",
        ] {
            assert!(lines[1].contains(cell), "{cell} in {text}");
        }
        assert!(table(&[], false, now).contains("--all"));
    }

    #[test]
    fn relative_times_round_to_the_minute() {
        let now = datetime!(2026-12-04 12:00 UTC);
        let r = |t| relative(t, now);
        assert_eq!(r(datetime!(2026-12-04 12:00:30 UTC)), "in 1m");
        assert_eq!(r(datetime!(2026-12-04 14:00 UTC)), "in 2h");
        assert_eq!(r(datetime!(2026-12-04 14:05 UTC)), "in 2h 5m");
        assert_eq!(r(datetime!(2026-12-06 15:00 UTC)), "in 2d 3h");
        assert_eq!(r(datetime!(2026-12-05 12:00 UTC)), "in 1d");
        assert_eq!(r(datetime!(2026-12-04 11:55 UTC)), "5m ago");
    }
}
