//! `alert-router demo`: starts the router in-process on a config and replays the
//! simulated, seeded days of the registered domain (trading: a bot's day of trades,
//! errors and portfolio updates) through its HTTP API with [`alert_router_client`], so
//! every event takes the real path (ingest, rules, templates, sinks, state).
//!
//! The simulation is the domain's ([`alert_router_domain::Domain::simulator`]) and pure: the same seed gives
//! the same days, event for event. The runner paces it (`speed` simulated seconds per
//! real second), stamps each event with its simulated time (day 0 is today, UTC) and
//! prints one line per event.
//!
//! The router it starts keeps its outbox and domain state in a storage of its own
//! ([`DemoStorage`]), so simulated trades never mix with the live ones in
//! `storage.path`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alert_router_client::Client;
use alert_router_domain::Simulator;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::config::Config;
use crate::event::format_time;
use crate::pipeline::Pipeline;

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Simulated seconds per real second (1440: a simulated day per real minute).
    pub speed: f64,
    /// One day, then wait for delivery and exit; otherwise day after day until Ctrl-C.
    pub once: bool,
    pub seed: u64,
    /// Where the demo's router keeps its outbox and state; `None`: a temporary
    /// directory, removed at exit.
    pub storage: Option<PathBuf>,
}

/// A simulated day per real minute.
pub const DEFAULT_SPEED: f64 = 1440.0;

/// The longest `--once` waits for the sinks to deliver the day after its last event.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);
const SECONDS_PER_DAY: u32 = 24 * 3600;

/// Runs the demo on the config at `config_path`.
pub fn run(config_path: &Path, opts: Options) -> Result<ExitCode> {
    if !(opts.speed.is_finite() && opts.speed > 0.0) {
        bail!(
            "--speed {}: give a positive number (60 = one simulated minute per second)",
            opts.speed
        );
    }
    let Some((domain, simulator)) = crate::domains::registered()
        .iter()
        .find_map(|d| Some((d.name(), d.simulator(opts.seed)?)))
    else {
        bail!("this build of alert-router has no domain with a simulation to run a demo of");
    };
    let mut config = Config::load(config_path)
        .map_err(|d| anyhow::anyhow!("{d}\n{} problem(s) in the config", d.0.len()))?;
    let storage = DemoStorage::new(opts.storage.clone())?;
    config.storage.path = storage.path.clone();
    let listen = config.server.listen;
    let token = config.server.token.as_ref().map(|t| t.expose().to_owned());
    let dashboard = config
        .enabled_sinks()
        .find(|(_, s)| s.plugin == "dashboard")
        .and_then(|(_, s)| s.settings.get("listen").and_then(Value::as_str))
        .map(str::to_owned);
    let sinks: Vec<String> = config.enabled_sinks().map(|(n, _)| n.clone()).collect();
    let pipeline = Pipeline::start(config, None).map_err(|d| anyhow::anyhow!("{d}"))?;
    // Editing a template while the demo runs shows at once, as with `run`.
    let _reload = crate::reload::start(pipeline.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("demo")
        .build()?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {listen}: is a router already running? Stop it, or set \
                 ALERT_ROUTER_LISTEN (or server.listen) to another address"
                )
            })?;
        let url = browsable(listener.local_addr()?);
        println!("alert-router demo: the router listens on {url}");
        println!("  curl -s {url}/v1/status");
        for resource in pipeline.stores.resources() {
            println!("  curl -s {url}/v1/state/{resource}");
        }
        match dashboard.as_deref().map(str::parse::<SocketAddr>) {
            Some(Ok(d)) if d.port() != 0 => println!("  dashboard: {}/", browsable(d)),
            Some(Ok(d)) => println!(
                "  dashboard: listens on a free port ({d}); give it a fixed one, such as 127.0.0.1:8501, to open it"
            ),
            Some(Err(_)) => println!("  dashboard: {}", dashboard.as_deref().unwrap_or_default()),
            None => {}
        }
        println!("  sinks: {}", sinks.join(", "));
        println!("  storage: {}", storage.describe());
        let app = crate::api::app(crate::api::AppState {
            pipeline: pipeline.clone(),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await
        });
        let mut client = Client::new(url)
            .with_timeout(Duration::from_secs(10))
            .with_retries(5);
        if let Some(t) = token {
            client = client.with_token(t);
        }
        let outcome = tokio::select! {
            r = replay(&client, simulator, domain, &opts) => r,
            _ = tokio::signal::ctrl_c() => {
                println!("stopping: Ctrl-C");
                Ok(())
            }
        };
        let _ = stop_tx.send(());
        let _ = server.await;
        outcome
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let p = pipeline.clone();
    let left = std::thread::spawn(move || p.shutdown(deadline))
        .join()
        .unwrap_or_default();
    for (sink, n) in &left {
        eprintln!("sink `{sink}` stopped with {n} message(s) undelivered");
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Sends the simulated days at their pace; with `once`, one day and then waits until the
/// router has delivered everything.
async fn replay(
    client: &Client,
    mut sim: Box<dyn Simulator>,
    domain: &str,
    opts: &Options,
) -> Result<()> {
    let today = OffsetDateTime::now_utc()
        .replace_time(time::Time::MIDNIGHT)
        .to_offset(time::UtcOffset::UTC);
    for index in 0i64.. {
        let day_start = today + time::Duration::days(index);
        let date = day_start.date();
        let day = sim.next_day(date);
        println!(
            "--- {domain} day {} ({date}), seed {}, {} events, speed {}x: the day takes {}",
            index + 1,
            opts.seed,
            day.events.len(),
            opts.speed,
            real_time(f64::from(SECONDS_PER_DAY) / opts.speed)
        );
        let started = tokio::time::Instant::now();
        for sim_event in day.events {
            let due = started + Duration::from_secs_f64(f64::from(sim_event.at) / opts.speed);
            tokio::time::sleep_until(due).await;
            let time = day_start + time::Duration::seconds(i64::from(sim_event.at));
            let mut event = sim_event.event;
            event["time"] = json!(format_time(time));
            client
                .send(event)
                .await
                .with_context(|| format!("sending {}", sim_event.line))?;
            println!(
                "[{:02}:{:02}] {}",
                sim_event.at / 3600,
                sim_event.at / 60 % 60,
                sim_event.line
            );
        }
        if opts.once {
            return settle(client).await;
        }
    }
    Ok(())
}

/// The demo router's storage directory: one the user named (kept), or a new temporary
/// one that is removed when this is dropped, after the router has stopped.
struct DemoStorage {
    path: PathBuf,
    temporary: bool,
}

impl DemoStorage {
    fn new(given: Option<PathBuf>) -> Result<DemoStorage> {
        if let Some(path) = given {
            return Ok(DemoStorage {
                path,
                temporary: false,
            });
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("alert-router-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create the demo's storage {}", path.display()))?;
        Ok(DemoStorage {
            path,
            temporary: true,
        })
    }

    fn describe(&self) -> String {
        if self.temporary {
            format!(
                "{} (the demo's own, removed at exit; --storage DIR keeps it)",
                self.path.display()
            )
        } else {
            format!("{} (kept)", self.path.display())
        }
    }
}

impl Drop for DemoStorage {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `24m`, `1m`, `40s`, `2h 24m`: how long a stretch of simulated time takes for real.
fn real_time(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// Polls `/v1/status` until every running sink has nothing queued and has handled (sent
/// or failed) everything routed to it.
async fn settle(client: &Client) -> Result<()> {
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    loop {
        let status = client.service_status().await?;
        let mut pending = Vec::new();
        if let Some(sinks) = status["sinks"].as_object() {
            for (name, s) in sinks {
                if s["started"] == json!(false) {
                    continue;
                }
                let n = |k: &str| s[k].as_u64().unwrap_or(0);
                let handled = (n("sent") + n("failed")).saturating_sub(n("render_errors"));
                if n("queued") > 0 || handled < n("routed") {
                    pending.push(format!(
                        "{name}: {} left",
                        n("routed").saturating_sub(handled)
                    ));
                }
            }
        }
        if pending.is_empty() {
            let events = &status["events"];
            println!(
                "done: {} event(s) accepted, every sink has handled its messages",
                events["accepted"]
            );
            if let Some(sinks) = status["sinks"].as_object() {
                for (name, s) in sinks {
                    let last_error = match s["last_error"].as_str() {
                        Some(e) => format!(", last error: {e}"),
                        None => String::new(),
                    };
                    println!(
                        "  {name}: sent {}, failed {}{last_error}",
                        s["sent"], s["failed"]
                    );
                }
            }
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "the sinks did not deliver everything within {}s ({}); see /v1/status",
                SETTLE_TIMEOUT.as_secs(),
                pending.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A URL a browser or curl on this machine can open for `addr`: a wildcard address
/// (`0.0.0.0`, `::`) is reached through loopback.
fn browsable(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("http://127.0.0.1:{}", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("http://[::1]:{}", a.port()),
        _ => format!("http://{addr}"),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_day_at_the_default_speed_takes_a_minute() {
        let day = f64::from(SECONDS_PER_DAY);
        assert_eq!(real_time(day / DEFAULT_SPEED), "1m");
        assert_eq!(real_time(day / 60.0), "24m");
        assert_eq!(real_time(day / 10.0), "2h 24m");
        assert_eq!(real_time(day / 100_000.0), "1s");
        assert_eq!(real_time(90.0), "1m 30s");
    }

    #[test]
    fn the_demo_storage_is_its_own_and_a_temporary_one_goes_at_the_end() {
        let temp = DemoStorage::new(None).unwrap();
        let path = temp.path.clone();
        assert!(path.is_dir() && path.starts_with(std::env::temp_dir()));
        std::fs::write(path.join("outbox.db"), "x").unwrap();
        drop(temp);
        assert!(!path.exists());
        let kept = DemoStorage::new(Some(PathBuf::from("demo-data"))).unwrap();
        assert_eq!(kept.path, Path::new("demo-data"));
        assert!(kept.describe().contains("kept"));
    }

    #[test]
    fn wildcard_addresses_are_shown_as_loopback_urls() {
        let url = |a: &str| browsable(a.parse().unwrap());
        assert_eq!(url("0.0.0.0:8501"), "http://127.0.0.1:8501");
        assert_eq!(url("[::]:9470"), "http://[::1]:9470");
        assert_eq!(url("10.0.0.5:8501"), "http://10.0.0.5:8501");
    }
}
