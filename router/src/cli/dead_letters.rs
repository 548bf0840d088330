//! `alert-router dead-letters list|retry|drop`. While a router runs on the config it
//! holds the outbox, so the command asks it over the HTTP API (address and token from
//! the config); when none runs, the command opens the outbox itself.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::table::Table;
use crate::config::Config;
use crate::outbox::{Outbox, OutboxError, Requeue, Selector};

/// `dead-letters`: where the router is, and what to do.
#[derive(Debug, Args)]
pub struct DeadLetters {
    /// The running router's address (default: the config's `server.listen`).
    #[arg(long, global = true, env = "ALERT_ROUTER_URL")]
    url: Option<String>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// List dead letters, newest first.
    List {
        #[command(flatten)]
        which: Which,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON (payloads and events included) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back at the end of their sinks' queues, with no attempts made.
    Retry {
        #[command(flatten)]
        which: Which,
    },
    /// Delete dead letters.
    Drop {
        #[command(flatten)]
        which: Which,
    },
}

/// Which dead letters: by id, by sink, or all. `list` takes none of them to mean all.
#[derive(Debug, Args)]
pub struct Which {
    /// A message id (`<event id>:<sink>`), an event id, or a dead letter's seq (repeatable).
    #[arg(long = "id", conflicts_with_all = ["sink", "all"])]
    ids: Vec<String>,
    /// Every dead letter of this sink.
    #[arg(long, conflicts_with = "all")]
    sink: Option<String>,
    /// Every dead letter.
    #[arg(long)]
    all: bool,
}

impl Which {
    fn selector(self, default_all: bool) -> Result<Selector> {
        Ok(match (self.ids.is_empty(), self.sink, self.all) {
            (false, _, _) => Selector::Ids(self.ids),
            (true, Some(sink), _) => Selector::Sink(sink),
            (true, None, true) => Selector::All,
            (true, None, false) if default_all => Selector::All,
            _ => bail!("say which dead letters: --id ID (repeatable), --sink NAME or --all"),
        })
    }

    /// The API's JSON for the selector.
    fn body(selector: &Selector) -> Value {
        match selector {
            Selector::Ids(ids) => json!({"ids": ids}),
            Selector::Sink(sink) => json!({"sink": sink}),
            Selector::All => json!({"all": true}),
        }
    }
}

pub fn run(config_path: &Path, command: DeadLetters) -> Result<ExitCode> {
    let config = Config::load(config_path).map_err(|d| anyhow::anyhow!("{d}"))?;
    let target = match Outbox::open(&config.storage) {
        Ok(opened) => Target::Local(opened.outbox),
        Err(OutboxError::Locked { .. }) => Target::Router(Api::new(&config, command.url)?),
        Err(e) => return Err(e.into()),
    };
    match command.action {
        Action::List { which, limit, json } => {
            let selector = which.selector(true)?;
            let letters = target.list(&selector, limit)?;
            print_list(&letters, json)?;
        }
        Action::Retry { which } => {
            let selector = which.selector(false)?;
            let outcome = target.retry(&selector)?;
            let retried = outcome["retried"].as_u64().unwrap_or(0);
            println!("{retried} dead letter(s) put back in their sinks' queues");
            for s in outcome["skipped"].as_array().into_iter().flatten() {
                println!(
                    "not retried: {} ({}): {}",
                    s["id"].as_str().unwrap_or(""),
                    s["seq"],
                    s["reason"].as_str().unwrap_or("")
                );
            }
        }
        Action::Drop { which } => {
            let selector = which.selector(false)?;
            let dropped = target.drop(selector)?;
            println!("{dropped} dead letter(s) dropped");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_list(letters: &[Value], as_json: bool) -> Result<()> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(letters)?);
        return Ok(());
    }
    if letters.is_empty() {
        println!("no dead letters");
        return Ok(());
    }
    let mut table = Table::new(&["SEQ", "SINK", "TYPE", "ATTEMPTS", "TIME", "ID", "ERROR"]);
    for l in letters {
        table.row(
            [
                "seq",
                "sink",
                "event_type",
                "attempts",
                "time",
                "id",
                "error",
            ]
            .map(|k| cell(&l[k])),
        );
    }
    print!("{}", table.render());
    Ok(())
}

/// A JSON value as a table cell: text as is, nothing for null, anything else as JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

enum Target {
    /// No router runs: the command holds the outbox.
    Local(std::sync::Arc<Outbox>),
    Router(Api),
}

impl Target {
    fn list(&self, selector: &Selector, limit: usize) -> Result<Vec<Value>> {
        match self {
            Target::Local(outbox) => {
                let letters = outbox.dead_letters(selector, limit)?;
                Ok(letters
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<_, _>>()?)
            }
            Target::Router(api) => {
                let mut query = vec![("limit".to_owned(), limit.to_string())];
                match selector {
                    Selector::Ids(ids) => {
                        query.extend(ids.iter().map(|i| ("id".to_owned(), i.clone())))
                    }
                    Selector::Sink(s) => query.push(("sink".into(), s.clone())),
                    Selector::All => {}
                }
                let answer = api.call(reqwest::Method::GET, "/v1/dead-letters", &query, None)?;
                Ok(answer["dead_letters"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default())
            }
        }
    }

    fn retry(&self, selector: &Selector) -> Result<Value> {
        match self {
            Target::Local(outbox) => {
                // Without the router's templates a letter that was never rendered cannot
                // be: it waits for a retry through the running router.
                let mut requeue = Vec::new();
                let mut skipped = Vec::new();
                for l in outbox.dead_letters(selector, usize::MAX)? {
                    if l.payload_text.is_some() {
                        requeue.push(Requeue {
                            seq: l.seq,
                            payload: None,
                        });
                    } else {
                        skipped.push(json!({"seq": l.seq, "id": l.id, "reason": "never rendered: retry it while the router runs, so it renders it with its templates"}));
                    }
                }
                let retried = outbox.requeue(requeue)?;
                Ok(json!({"retried": retried, "skipped": skipped}))
            }
            Target::Router(api) => api.call(
                reqwest::Method::POST,
                "/v1/dead-letters/retry",
                &[],
                Some(Which::body(selector)),
            ),
        }
    }

    fn drop(&self, selector: Selector) -> Result<u64> {
        match self {
            Target::Local(outbox) => Ok(outbox.drop_dead(selector)? as u64),
            Target::Router(api) => {
                let answer = api.call(
                    reqwest::Method::POST,
                    "/v1/dead-letters/drop",
                    &[],
                    Some(Which::body(&selector)),
                )?;
                Ok(answer["dropped"].as_u64().unwrap_or(0))
            }
        }
    }
}

/// The running router's API, at the config's address with its token.
struct Api {
    base: String,
    token: Option<String>,
    runtime: tokio::runtime::Runtime,
}

impl Api {
    fn new(config: &Config, url: Option<String>) -> Result<Api> {
        let mut addr = config.server.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let base = url.map_or_else(
            || format!("http://{addr}"),
            |u| u.trim_end_matches('/').to_owned(),
        );
        Ok(Api {
            base,
            token: config.server.token.as_ref().map(|t| t.expose().to_owned()),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        })
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(String, String)],
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(async {
            let mut req = reqwest::Client::new()
                .request(method, &url)
                .query(query)
                .timeout(Duration::from_secs(30));
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.with_context(|| {
                format!(
                    "a router holds the outbox but does not answer at {}: is it on another address?",
                    self.base
                )
            })?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if !status.is_success() {
                bail!("the router answered {status}: {}", text.trim());
            }
            serde_json::from_str(&text).context("the router's answer is not JSON")
        })
    }
}
