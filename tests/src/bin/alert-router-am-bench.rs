//! The load generator and the webhook receiver of `bench/alertmanager.sh`, in one process
//! so that one clock times each alert from its send to its receipt. It posts alerts to
//! `POST /api/v2/alerts` of a server (Prometheus Alertmanager or the router: both take the
//! same body) and receives the webhooks that server sends for them.
//!
//! It is a binary of the tests crate, not a crate or an example of its own, because this
//! crate already builds everything it needs (tokio, axum, reqwest, serde_json, time):
//! `cargo test --workspace` compiles it in seconds and nothing runs it but the script.
//!
//! ```text
//! alert-router-am-bench --target http://127.0.0.1:9093 --listen 127.0.0.1:9094
//!     --mode single|batch|open --seconds 15
//!     [--connections 64] [--batch 100] [--rate 1000] [--drain 300]
//!     [--pids 1234,1235 --clk-tck 100] [--label alertmanager]
//! ```
//!
//! Modes: `single` posts one alert per request and `batch` `--batch` alerts per request,
//! each from `--connections` tasks that send their next request when the last is answered
//! (closed loop), for `--seconds`; `open` posts one alert per request at `--rate` per
//! second on a fixed schedule whatever the answers (open loop), and times each alert from
//! its scheduled instant, so a server that stalls is charged for the sends it delayed.
//!
//! Every alert has the labels `alertname=Bench`, `run=<id>` (new for each process, so a
//! server that kept an earlier run's alerts takes none for a repeat) and `seq=<n>`: each
//! is an alert of its own, and with the servers configured as the script does, a webhook
//! of its own. The receiver reads the `seq` of each alert of the run from Alertmanager's
//! webhook body (`{"alerts": [{"labels": {...}}, ...]}`) or the router's default webhook
//! template (`{"event": {"labels": {...}}, ...}`) and keeps the first instant it saw it.
//!
//! When the sending ends it waits until every accepted alert was received, or `--drain`
//! seconds. With `--pids` it reads those processes' CPU time (utime + stime in
//! `/proc/<pid>/stat`, in `--clk-tck` ticks a second) before the first send and a second
//! after the last receipt, and their peak memory (`VmHWM`) at the end; and its own CPU,
//! since it shares the machine with the server.
//!
//! It prints one JSON object on stdout: what was sent and received, delivered alerts/s
//! (received ÷ the time from the first send to the last receipt), the latency
//! percentiles, CPU per alert and peak memory. It exits 1 if a request failed, an alert
//! was never received, or a body was not a webhook of either server: such a run measured
//! something else. Usage errors exit 2.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::task::JoinSet;

/// How long one request to the server may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long after the last receipt the servers' CPU is read: time for the work that
/// follows a delivery (the router's delivered mark, Alertmanager's notification log).
const SETTLE: Duration = Duration::from_secs(1);
/// How far ahead of its start each alert's `endsAt` is. Prometheus sends one a few
/// minutes ahead; this is longer than any scenario, so no alert resolves while it runs.
const ENDS_AFTER: time::Duration = time::Duration::minutes(30);

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Single,
    Batch,
    Open,
}

struct Args {
    target: String,
    listen: SocketAddr,
    mode: Mode,
    seconds: f64,
    connections: usize,
    batch: u64,
    rate: f64,
    drain: Duration,
    pids: Vec<u32>,
    clk_tck: f64,
    label: String,
}

impl Args {
    /// `--key value` pairs; every key but `--target`, `--listen`, `--mode` and
    /// `--seconds` has a default.
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut given = HashMap::new();
        while let Some(key) = args.next() {
            let name = key
                .strip_prefix("--")
                .ok_or_else(|| format!("`{key}`: expected --key value"))?
                .to_owned();
            let value = args.next().ok_or_else(|| format!("{key} needs a value"))?;
            given.insert(name, value);
        }
        let mut take = |name: &str| given.remove(name);
        fn number<T: std::str::FromStr>(
            name: &str,
            text: Option<String>,
            default: T,
        ) -> Result<T, String> {
            text.map_or(Ok(default), |t| {
                t.parse()
                    .map_err(|_| format!("--{name} {t:?}: not a number"))
            })
        }
        let required =
            |name: &str, v: Option<String>| v.ok_or_else(|| format!("--{name} is required"));
        let target = required("target", take("target"))?;
        let listen = required("listen", take("listen"))?;
        let listen = listen
            .parse()
            .map_err(|_| format!("--listen {listen:?}: not an address such as 127.0.0.1:9094"))?;
        let mode = match required("mode", take("mode"))?.as_str() {
            "single" => Mode::Single,
            "batch" => Mode::Batch,
            "open" => Mode::Open,
            other => return Err(format!("--mode {other:?}: single, batch or open")),
        };
        let seconds = number("seconds", Some(required("seconds", take("seconds"))?), 0.0)?;
        let connections = number("connections", take("connections"), 64)?;
        let batch = number("batch", take("batch"), 100)?;
        let rate = number("rate", take("rate"), 1000.0)?;
        let drain: f64 = number("drain", take("drain"), 300.0)?;
        let pids = take("pids")
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse()
                    .map_err(|_| format!("--pids: {p:?} is not a process id"))
            })
            .collect::<Result<_, _>>()?;
        let clk_tck = number("clk-tck", take("clk-tck"), 100.0)?;
        let label = take("label").unwrap_or_else(|| target.clone());
        if let Some(key) = given.keys().next() {
            return Err(format!("--{key}: unknown option"));
        }
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !positive(seconds) || connections == 0 || batch == 0 || !positive(rate) {
            return Err("--seconds, --connections, --batch and --rate must be above 0".into());
        }
        if !(drain.is_finite() && drain >= 0.0) {
            return Err(format!("--drain {drain}: a number of seconds, 0 or more"));
        }
        Ok(Args {
            target: format!("{}/api/v2/alerts", target.trim_end_matches('/')),
            listen,
            mode,
            seconds,
            connections,
            batch,
            rate,
            drain: Duration::from_secs_f64(drain),
            pids,
            clk_tck,
            label,
        })
    }
}

/// What the receiver saw.
struct Receipts {
    run: String,
    /// The first receipt of each `seq` of this run.
    first: Mutex<HashMap<u64, Instant>>,
    /// Alerts of this run received again (a server's retry).
    duplicates: AtomicU64,
    /// Alerts of another run (a server that kept them from an earlier one).
    foreign: AtomicU64,
    /// Bodies that were not a webhook of either server, or an alert of this run without
    /// a number in `seq`.
    bad_bodies: AtomicU64,
}

async fn receive(State(receipts): State<Arc<Receipts>>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let Some((seqs, foreign)) = seqs_of(&body, &receipts.run) else {
        receipts.bad_bodies.fetch_add(1, Ordering::Relaxed);
        return StatusCode::BAD_REQUEST;
    };
    receipts.foreign.fetch_add(foreign, Ordering::Relaxed);
    let mut first = receipts.first.lock().unwrap_or_else(|e| e.into_inner());
    for seq in seqs {
        match first.entry(seq) {
            // Keep the first receipt: that is when the alert arrived.
            Entry::Occupied(_) => {
                receipts.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            Entry::Vacant(slot) => {
                slot.insert(at);
            }
        }
    }
    StatusCode::OK
}

/// The `seq` of each alert of run `run` in a webhook body, and how many alerts of other
/// runs it held; None for a body that is not a webhook of either server, or an alert of
/// this run without a number in `seq`.
fn seqs_of(body: &[u8], run: &str) -> Option<(Vec<u64>, u64)> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let mut seqs = Vec::new();
    let mut foreign = 0;
    for labels in label_sets(&body)? {
        if labels.get("run").and_then(Value::as_str) == Some(run) {
            seqs.push(labels.get("seq")?.as_str()?.parse().ok()?);
        } else {
            foreign += 1;
        }
    }
    Some((seqs, foreign))
}

/// The label sets of a webhook body's alerts: Alertmanager's `alerts[].labels`, or the
/// router's default webhook template's `event.labels`.
fn label_sets(body: &Value) -> Option<Vec<&serde_json::Map<String, Value>>> {
    if let Some(alerts) = body.get("alerts").and_then(Value::as_array) {
        alerts
            .iter()
            .map(|a| a.get("labels").and_then(Value::as_object))
            .collect()
    } else {
        let labels = body.get("event")?.get("labels")?.as_object()?;
        Some(vec![labels])
    }
}

/// The sending side: one HTTP client (its pool keeps a connection per concurrent
/// request alive), the next `seq`, and the body's fixed parts.
struct Load {
    client: reqwest::Client,
    url: String,
    run: String,
    next_seq: AtomicU64,
}

/// Requests that were answered 2xx: `count` alerts from `first`, sent at `at`.
#[derive(Default)]
struct Sent {
    accepted: Vec<(u64, u64, Instant)>,
    requests: u64,
    failed_alerts: u64,
    first_error: Option<String>,
}

impl Sent {
    fn merge(&mut self, other: Sent) {
        self.accepted.extend(other.accepted);
        self.requests += other.requests;
        self.failed_alerts += other.failed_alerts;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn record(&mut self, first: u64, count: u64, at: Instant, answer: Result<(), String>) {
        self.requests += 1;
        match answer {
            Ok(()) => self.accepted.push((first, count, at)),
            Err(e) => {
                self.failed_alerts += count;
                self.first_error.get_or_insert(e);
            }
        }
    }
}

impl Load {
    /// A body of `count` postable alerts from `first`, as Prometheus sends them.
    fn body(&self, first: u64, count: u64) -> String {
        let now = OffsetDateTime::now_utc();
        let starts = now.format(&Rfc3339).unwrap_or_default();
        let ends = (now + ENDS_AFTER).format(&Rfc3339).unwrap_or_default();
        let mut body = String::with_capacity(300 * count as usize);
        body.push('[');
        for seq in first..first + count {
            if seq > first {
                body.push(',');
            }
            // The run id is hex digits and the rest are numbers and fixed text: nothing
            // here needs escaping.
            body.push_str(&format!(
                r#"{{"labels":{{"alertname":"Bench","run":"{run}","seq":"{seq}","severity":"warning"}},"annotations":{{"summary":"benchmark alert {seq}"}},"startsAt":"{starts}","endsAt":"{ends}","generatorURL":"http://bench.invalid/graph"}}"#,
                run = self.run
            ));
        }
        body.push(']');
        body
    }

    /// Posts alerts `first..first + count`; Ok for a 2xx answer.
    async fn post(&self, first: u64, count: u64) -> Result<(), String> {
        let answer = self
            .client
            .post(&self.url)
            .header("Content-Type", "application/json")
            .body(self.body(first, count))
            .send()
            .await
            .map_err(|e| format!("POST {}: {e}", self.url))?;
        let status = answer.status();
        if status.is_success() {
            // Read the answer to the end so the connection goes back to the pool.
            let _ = answer.bytes().await;
            Ok(())
        } else {
            let text = answer.text().await.unwrap_or_default();
            Err(format!("POST {}: {status}: {}", self.url, text.trim()))
        }
    }

    /// One connection's closed loop: the next request as soon as the last is answered.
    async fn closed_loop(self: Arc<Self>, per_request: u64, until: Instant) -> Sent {
        let mut sent = Sent::default();
        while Instant::now() < until {
            let first = self.next_seq.fetch_add(per_request, Ordering::Relaxed);
            let at = Instant::now();
            let answer = self.post(first, per_request).await;
            sent.record(first, per_request, at, answer);
        }
        sent
    }

    /// The open loop: one alert per request at `rate` a second for `seconds`, each sent on
    /// its own task at its scheduled instant, whatever the earlier ones' answers. The
    /// instant recorded is the scheduled one: a send the runtime started late counts
    /// from when it should have gone.
    async fn open_loop(self: Arc<Self>, rate: f64, seconds: f64) -> Sent {
        let start = Instant::now();
        let count = (rate * seconds).round() as u64;
        let mut tasks = JoinSet::new();
        let mut sent = Sent::default();
        let record = |sent: &mut Sent, done: Result<_, tokio::task::JoinError>| match done {
            Ok((seq, at, answer)) => sent.record(seq, 1, at, answer),
            Err(e) => sent.record(0, 0, start, Err(format!("a sending task failed: {e}"))),
        };
        for i in 0..count {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(at.into()).await;
            let load = self.clone();
            tasks.spawn(async move {
                let seq = load.next_seq.fetch_add(1, Ordering::Relaxed);
                (seq, at, load.post(seq, 1).await)
            });
            // Collect what has finished, so the set does not hold every task to the end.
            while let Some(done) = tasks.try_join_next() {
                record(&mut sent, done);
            }
        }
        while let Some(done) = tasks.join_next().await {
            record(&mut sent, done);
        }
        sent
    }
}

/// utime + stime of a process, in ticks; 0 for one that is gone.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name (field 2) may hold spaces: count fields from the `)` that ends it.
    // Field 3 (state) is the first after it; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

/// A process's peak resident memory (`VmHWM`), in KiB; 0 for one that is gone.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// The value at `q` (0..=1) of sorted `values`, nearest rank.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("alert-router-am-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("alert-router-am-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One scenario against one server; Ok(false) when the run is not valid.
async fn run(args: Args) -> Result<bool, String> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let run_id = format!("{:x}{:x}", std::process::id(), nanos);
    let receipts = Arc::new(Receipts {
        run: run_id.clone(),
        first: Mutex::new(HashMap::new()),
        duplicates: AtomicU64::new(0),
        foreign: AtomicU64::new(0),
        bad_bodies: AtomicU64::new(0),
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let app = Router::new()
        .fallback(post(receive))
        .with_state(receipts.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("alert-router-am-bench: the receiver stopped: {e}");
        }
    });

    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let load = Arc::new(Load {
        client,
        url: args.target.clone(),
        run: run_id,
        next_seq: AtomicU64::new(0),
    });

    let ticks = |pids: &[u32]| pids.iter().map(|&p| cpu_ticks(p)).sum::<u64>();
    let cpu_before = ticks(&args.pids);
    // This process's own CPU too: it shares the machine's cores with the server.
    let own_before = cpu_ticks(std::process::id());
    let start = Instant::now();
    let mut sent = Sent::default();
    match args.mode {
        Mode::Single | Mode::Batch => {
            let per_request = if args.mode == Mode::Single {
                1
            } else {
                args.batch
            };
            let until = start + Duration::from_secs_f64(args.seconds);
            let mut tasks = JoinSet::new();
            for _ in 0..args.connections {
                tasks.spawn(load.clone().closed_loop(per_request, until));
            }
            while let Some(done) = tasks.join_next().await {
                match done {
                    Ok(worker) => sent.merge(worker),
                    Err(e) => sent.record(0, 0, start, Err(format!("a sending task failed: {e}"))),
                }
            }
        }
        Mode::Open => sent = load.clone().open_loop(args.rate, args.seconds).await,
    }
    let sending = start.elapsed();
    let accepted: u64 = sent.accepted.iter().map(|&(_, count, _)| count).sum();

    // Wait until every accepted alert has arrived, or the drain deadline.
    let drain_until = Instant::now() + args.drain;
    let received_all = loop {
        let received = receipts
            .first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len() as u64;
        if received >= accepted {
            break true;
        }
        if Instant::now() >= drain_until {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    if received_all {
        tokio::time::sleep(SETTLE).await;
    }
    let cpu = ticks(&args.pids).saturating_sub(cpu_before) as f64 / args.clk_tck;
    let own_cpu = cpu_ticks(std::process::id()).saturating_sub(own_before) as f64 / args.clk_tck;
    let peak_rss: u64 = args.pids.iter().map(|&p| peak_rss_kib(p)).sum();

    let first = receipts.first.lock().unwrap_or_else(|e| e.into_inner());
    let mut latencies = Vec::with_capacity(accepted as usize);
    let mut missing = 0u64;
    let mut last_receipt = start;
    for &(from, count, at) in &sent.accepted {
        for seq in from..from + count {
            match first.get(&seq) {
                Some(&received) => {
                    latencies.push(received.saturating_duration_since(at));
                    last_receipt = last_receipt.max(received);
                }
                None => missing += 1,
            }
        }
    }
    latencies.sort_unstable();
    let received = latencies.len() as u64;
    let span = last_receipt.duration_since(start).as_secs_f64().max(1e-9);
    let duplicates = receipts.duplicates.load(Ordering::Relaxed);
    let foreign = receipts.foreign.load(Ordering::Relaxed);
    let bad_bodies = receipts.bad_bodies.load(Ordering::Relaxed);
    let report = json!({
        "label": args.label,
        "mode": match args.mode { Mode::Single => "single", Mode::Batch => "batch", Mode::Open => "open" },
        "seconds": args.seconds,
        "connections": if args.mode == Mode::Open { Value::Null } else { args.connections.into() },
        "requests": sent.requests,
        "accepted": accepted,
        "failed": sent.failed_alerts,
        "received": received,
        "missing": missing,
        "duplicates": duplicates,
        "foreign": foreign,
        "bad_bodies": bad_bodies,
        "accepted_per_s": (accepted as f64 / sending.as_secs_f64()).round(),
        "delivered_per_s": (received as f64 / span).round(),
        "span_s": (span * 1e3).round() / 1e3,
        "latency_ms": {
            "p50": millis(percentile(&latencies, 0.50)),
            "p90": millis(percentile(&latencies, 0.90)),
            "p99": millis(percentile(&latencies, 0.99)),
            "max": millis(latencies.last().copied().unwrap_or_default()),
        },
        "cpu_s": cpu,
        "cpu_us_per_alert": if received > 0 { (cpu / received as f64 * 1e7).round() / 10.0 } else { 0.0 },
        "peak_rss_kib": peak_rss,
        "generator_cpu_s": own_cpu,
    });
    println!("{report}");

    let mut valid = true;
    if sent.failed_alerts > 0 {
        eprintln!(
            "alert-router-am-bench: {}: {} alerts were not accepted; first error: {}",
            args.label,
            sent.failed_alerts,
            sent.first_error.as_deref().unwrap_or("?")
        );
        valid = false;
    }
    if missing > 0 {
        eprintln!(
            "alert-router-am-bench: {}: {missing} of {accepted} accepted alerts were not received within {:?} after the sending ended",
            args.label, args.drain
        );
        valid = false;
    }
    if bad_bodies > 0 {
        eprintln!(
            "alert-router-am-bench: {}: {bad_bodies} webhook bodies were not a webhook of Alertmanager or of the router",
            args.label
        );
        valid = false;
    }
    Ok(valid)
}
