//! The running router: the snapshot in force (config, rules, templates, sinks) and the
//! path of every accepted event through it: dedup → rules → render → the sinks' queues.
//! A batch is queued whole or refused whole (503 when a queue is full). Also answers
//! plugins' host calls (query, emit, render) and reports status and metrics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::config::{Config, SinkConfig};
use crate::diag::{Diagnostic, Diagnostics};
use crate::dispatch::{DeadLetter, Delivering, Message, SinkStats, Worker};
use crate::event::{Event, format_time};
use crate::ingest::{self, Dedup};
use crate::plugins::{Catalog, HostServices, Instance, Markup, Plugin};
use crate::render::{self, Templates};
use crate::rules::Rules;
use crate::state::StateStore;

/// How long a repeated event id is recognised.
const DEDUP_WINDOW: Duration = Duration::from_secs(600);

/// A sink that runs.
pub struct SinkEntry {
    pub config: SinkConfig,
    pub plugin: Arc<Plugin>,
    pub worker: Arc<Worker>,
}

/// A configured, enabled sink that could not start (plugin missing, settings refused).
/// Messages routed to it are dead-lettered with the reason, never dropped silently.
pub struct BrokenSink {
    pub config: SinkConfig,
    pub reason: String,
    pub stats: Arc<SinkStats>,
}

/// Everything one config load produced. Immutable once built; a reload builds another.
pub struct Snapshot {
    pub config: Config,
    pub rules: Rules,
    pub templates: Templates,
    pub sinks: BTreeMap<String, SinkEntry>,
    pub broken: BTreeMap<String, BrokenSink>,
    pub loaded_at: OffsetDateTime,
}

/// The parts of a config that can be checked without starting anything: rules,
/// templates, and every enabled sink's plugin and settings.
pub struct Checked {
    pub config: Config,
    pub rules: Rules,
    pub templates: Templates,
    pub plugins: BTreeMap<String, Result<Arc<Plugin>, String>>,
}

/// Loads and checks everything `config` names. Problems with rules and templates are
/// fatal; a sink whose plugin cannot be loaded or whose settings are wrong is reported
/// in `plugins` (and as a diagnostic by `check`) but does not stop the others.
pub fn check(config: Config, catalog: &Catalog) -> Result<Checked, Diagnostics> {
    let mut plugins = BTreeMap::new();
    for (name, sink) in config.enabled_sinks() {
        let loaded = catalog
            .load(&sink.plugin)
            .map_err(|e| e.to_string())
            .and_then(|plugin| {
                let problems = plugin.manifest().check_settings(&sink.settings);
                if problems.is_empty() {
                    Ok(plugin)
                } else {
                    Err(format!("settings: {}", problems.join("; ")))
                }
            });
        plugins.insert(name.clone(), loaded);
    }
    let markup_of = |group: &str| -> Markup {
        if let Some(Ok(plugin)) = plugins.get(group) {
            return plugin.manifest().markup;
        }
        plugins
            .values()
            .filter_map(|p| p.as_ref().ok())
            .find(|p| p.name() == group)
            .map(|p| p.manifest().markup)
            .unwrap_or(Markup::None)
    };
    let mut problems = Diagnostics::default();
    let templates = Templates::load(&config.templates, &markup_of);
    let rules = Rules::load(&config.rules, &|sink| config.sinks.contains_key(sink));
    let (templates, rules) = match (templates, rules) {
        (Ok(t), Ok(r)) => (t, r),
        (t, r) => {
            if let Err(e) = t {
                problems.extend(e);
            }
            if let Err(e) = r {
                problems.extend(e);
            }
            return Err(problems);
        }
    };
    Ok(Checked {
        config,
        rules,
        templates,
        plugins,
    })
}

/// Counters over all events.
#[derive(Debug, Default)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub unrouted: AtomicU64,
    pub rule_errors: AtomicU64,
    pub rejected: AtomicU64,
    pub by_type: Mutex<BTreeMap<String, u64>>,
}

/// Why an accepted-looking batch was refused after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// The named sink's queue has no room: try again later.
    Full { sink: String },
}

/// What `ingest` answers: every event's id, in order (repeats included).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Accepted {
    pub accepted: usize,
    pub ids: Vec<String>,
}

/// The router.
pub struct Pipeline {
    snapshot: ArcSwap<Snapshot>,
    /// What the trading looks like, fed by every accepted event.
    pub state: Arc<StateStore>,
    catalog: Mutex<Arc<Catalog>>,
    services: Arc<Services>,
    dedup: Dedup,
    pub counters: Counters,
    started: Instant,
    /// One reload at a time.
    reloading: Mutex<()>,
    pub reloads: ReloadLog,
}

/// How a reload went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadOutcome {
    pub ok: bool,
    /// What asked for it: `file`, `signal` or `api`.
    pub trigger: String,
    pub at: String,
    pub duration_ms: f64,
    /// What changed (on success).
    pub changes: Vec<String>,
    /// Every problem, as file:line:col: message (on failure).
    pub errors: Vec<String>,
}

/// The reload history `/v1/status` and `/metrics` show.
#[derive(Debug, Default)]
pub struct ReloadLog {
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub last: Mutex<Option<ReloadOutcome>>,
}

impl Pipeline {
    /// Loads `config`, starts every enabled sink that can start, and returns the router.
    /// Plugin instances are created on the calling thread: call it off the async runtime.
    pub fn start(config: Config) -> Result<Arc<Pipeline>, Diagnostics> {
        let catalog = Arc::new(Catalog::new(config.plugin_dirs.clone()));
        let state = StateStore::open(&config.storage).map_err(|e| {
            Diagnostics::from(Diagnostic::file(&config.path, format!("storage.path: {e}")))
        })?;
        let checked = check(config, &catalog)?;
        let services = Arc::new(Services {
            pipeline: OnceLock::new(),
        });
        let built = build(checked, &services, None)?;
        let pipeline = Arc::new(Pipeline {
            snapshot: ArcSwap::from_pointee(built.snapshot),
            state: Arc::new(state),
            catalog: Mutex::new(catalog),
            services: services.clone(),
            dedup: Dedup::new(DEDUP_WINDOW),
            counters: Counters::default(),
            started: Instant::now(),
            reloading: Mutex::new(()),
            reloads: ReloadLog::default(),
        });
        let _ = services.pipeline.set(Arc::downgrade(&pipeline));
        Ok(pipeline)
    }

    /// Reads the config file again and, if everything in it checks out, swaps the new
    /// snapshot in; otherwise the running one stays and the errors are reported. Events
    /// arriving meanwhile are routed by the snapshot in force when they arrive; sinks that
    /// are gone drain their queues. Blocking (plugin `create`); one reload at a time.
    pub fn reload(&self, trigger: &str) -> ReloadOutcome {
        let _one = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let current = self.snapshot.load_full();
        let result = Config::load(&current.config.path).and_then(|config| {
            let catalog = {
                let mut c = self.catalog.lock().unwrap_or_else(|e| e.into_inner());
                if c.dirs()[..c.dirs().len().saturating_sub(1)] != config.plugin_dirs[..] {
                    *c = Arc::new(c.with_dirs(config.plugin_dirs.clone()));
                }
                c.clone()
            };
            let checked = check(config, &catalog)?;
            build(checked, &self.services, Some(&current))
        });
        let outcome = match result {
            Ok(built) => {
                self.snapshot.store(Arc::new(built.snapshot));
                retire(current, built.retired);
                self.reloads.succeeded.fetch_add(1, Ordering::Relaxed);
                let changes = if built.changes.is_empty() {
                    vec!["nothing changed".to_owned()]
                } else {
                    built.changes
                };
                tracing::info!(trigger, changes = %changes.join("; "), "config reloaded");
                ReloadOutcome {
                    ok: true,
                    trigger: trigger.into(),
                    at: String::new(),
                    duration_ms: 0.0,
                    changes,
                    errors: Vec::new(),
                }
            }
            Err(problems) => {
                self.reloads.failed.fetch_add(1, Ordering::Relaxed);
                let errors: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
                tracing::error!(trigger, errors = %errors.join("\n"), "reload failed; the running config stays in force");
                ReloadOutcome {
                    ok: false,
                    trigger: trigger.into(),
                    at: String::new(),
                    duration_ms: 0.0,
                    changes: Vec::new(),
                    errors,
                }
            }
        };
        let outcome = ReloadOutcome {
            at: format_time(OffsetDateTime::now_utc()),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            ..outcome
        };
        *self.reloads.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome.clone());
        outcome
    }

    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Routes, renders and queues validated events. All or nothing: when any sink's queue
    /// is full nothing is queued and the ids are forgotten, so the producer can retry.
    pub fn ingest(&self, events: Vec<Event>) -> Result<Accepted, IngestError> {
        // A full `Arc` (not a guard): a reload waits for the last holder of the old
        // snapshot before it stops the sinks that are gone, so nothing is queued to a
        // worker that has already stopped.
        let snap = self.snapshot.load_full();
        let now = format_time(OffsetDateTime::now_utc());
        let mut ids = Vec::with_capacity(events.len());
        let mut fresh = Vec::new();
        let mut queued: BTreeMap<String, Vec<Message>> = BTreeMap::new();
        let mut dead: Vec<(Arc<SinkStats>, DeadLetter, bool)> = Vec::new();
        let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
        // Trading events update the state once the batch is taken.
        let mut tracked: Vec<Event> = Vec::new();
        for event in events {
            ids.push(event.id.clone());
            if !self.dedup.first_time(&event.id) {
                self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            fresh.push(event.id.clone());
            *by_type.entry(event.kind.clone()).or_default() += 1;
            if StateStore::tracks(&event.kind) {
                tracked.push(event.clone());
            }
            let hits = snap.rules.route(event, &mut |route, e| {
                self.counters.rule_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(route = %route.name, file = %route.file.display(), line = route.line, error = %e, "rule condition failed; treated as no match");
            });
            if hits.is_empty() {
                self.counters.unrouted.fetch_add(1, Ordering::Relaxed);
            }
            for hit in hits {
                let route = &snap.rules.routes()[hit.route];
                let event_json = hit.event.to_json();
                let event_text: Arc<str> = event_json.to_string().into();
                let template = route.template.as_deref().unwrap_or(&hit.event.kind);
                for sink in &hit.sinks {
                    let message_id = format!("{}:{sink}", hit.event.id);
                    let letter = |error: String| DeadLetter {
                        id: message_id.clone(),
                        event_id: hit.event.id.clone(),
                        event_type: hit.event.kind.clone(),
                        attempts: 0,
                        error,
                        time: unix_now(),
                        payload: Value::Null,
                    };
                    if let Some(broken) = snap.broken.get(sink) {
                        dead.push((
                            broken.stats.clone(),
                            letter(format!("sink `{sink}` did not start: {}", broken.reason)),
                            false,
                        ));
                        continue;
                    }
                    let Some(entry) = snap.sinks.get(sink) else {
                        continue; // a disabled sink
                    };
                    let plugin = entry.plugin.name();
                    let rendered = match snap.templates.resolve(sink, plugin, template) {
                        None => Err(format!(
                            "no template `{template}` for sink `{sink}`: add templates/{sink}/{template}.yaml, templates/{plugin}/{template}.yaml or a default.yaml"
                        )),
                        Some(id) => {
                            let ctx = render::context(&event_json, &route.name, sink, plugin, &now);
                            snap.templates
                                .render_json(id, &ctx)
                                .map_err(|e| e.to_string())
                        }
                    };
                    match rendered {
                        Ok(payload) => queued.entry(sink.clone()).or_default().push(Message {
                            id: message_id.clone(),
                            event_id: hit.event.id.clone(),
                            event_type: hit.event.kind.clone(),
                            payload: payload.into(),
                            event: event_text.clone(),
                            enqueued: Instant::now(),
                        }),
                        Err(e) => dead.push((entry.worker.stats.clone(), letter(e), true)),
                    }
                }
            }
        }
        // Reserve room in every queue first, so the batch is queued whole or not at all.
        let mut reserved: Vec<(&SinkEntry, usize)> = Vec::new();
        for (sink, messages) in &queued {
            let Some(entry) = snap.sinks.get(sink) else {
                continue;
            };
            if entry.worker.queue.reserve(messages.len()) {
                reserved.push((entry, messages.len()));
            } else {
                for (entry, n) in reserved {
                    entry.worker.queue.release(n);
                }
                for id in &fresh {
                    self.dedup.forget(id);
                }
                self.counters
                    .rejected
                    .fetch_add(ids.len() as u64, Ordering::Relaxed);
                return Err(IngestError::Full { sink: sink.clone() });
            }
        }
        for (sink, messages) in queued {
            if let Some(entry) = snap.sinks.get(&sink) {
                entry
                    .worker
                    .stats
                    .routed
                    .fetch_add(messages.len() as u64, Ordering::Relaxed);
                entry.worker.queue.push_reserved(messages);
            }
        }
        for (stats, letter, render_error) in dead {
            if render_error {
                stats.render_errors.fetch_add(1, Ordering::Relaxed);
            }
            tracing::warn!(message = %letter.id, error = %letter.error, "message dead-lettered before delivery");
            stats.dead_letter(letter);
        }
        for event in &tracked {
            self.state.apply(event);
        }
        self.counters
            .accepted
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        if !by_type.is_empty() {
            let mut counts = self
                .counters
                .by_type
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for (k, n) in by_type {
                *counts.entry(k).or_default() += n;
            }
        }
        Ok(Accepted {
            accepted: ids.len(),
            ids,
        })
    }

    /// Drains every sink until `deadline`, then destroys the plugin instances. Returns
    /// (sink, messages left undelivered) for each sink that could not finish.
    pub fn shutdown(&self, deadline: Instant) -> Vec<(String, usize)> {
        if let Err(e) = self.state.flush() {
            tracing::error!(error = %e, "the state store could not save everything");
        }
        let snap = self.snapshot.load();
        let mut left = Vec::new();
        for (name, entry) in &snap.sinks {
            let n = entry.worker.shutdown(deadline);
            if n > 0 {
                left.push((name.clone(), n));
            }
        }
        left
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Value {
        let snap = self.snapshot.load();
        let mut sinks = serde_json::Map::new();
        for (name, entry) in &snap.sinks {
            let mut s = sink_status(&entry.worker.stats, entry.worker.queue.len());
            s["plugin"] = json!(entry.plugin.name());
            s["plugin_version"] = json!(entry.plugin.version());
            s["settings"] = entry.plugin.manifest().redact(&entry.config.settings);
            s["rate_limit"] =
                json!(entry.config.rate_limit.map(
                    |r| json!({"per_second": 1.0 / r.period.as_secs_f64(), "burst": r.burst})
                ));
            sinks.insert(name.clone(), s);
        }
        for (name, broken) in &snap.broken {
            let mut s = sink_status(&broken.stats, 0);
            s["plugin"] = json!(broken.config.plugin);
            s["healthy"] = json!(false);
            s["started"] = json!(false);
            s["last_error"] = json!(broken.reason);
            sinks.insert(name.clone(), s);
        }
        let c = &self.counters;
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": self.started.elapsed().as_secs(),
            "config": {
                "path": snap.config.path.display().to_string(),
                "loaded_at": format_time(snap.loaded_at),
                "routes": snap.rules.routes().len(),
                "templates": snap.templates.len(),
                "last_reload": *self.reloads.last.lock().unwrap_or_else(|e| e.into_inner()),
                "reloads": {
                    "succeeded": self.reloads.succeeded.load(Ordering::Relaxed),
                    "failed": self.reloads.failed.load(Ordering::Relaxed),
                },
            },
            "events": {
                "accepted": c.accepted.load(Ordering::Relaxed),
                "duplicates": c.duplicates.load(Ordering::Relaxed),
                "unrouted": c.unrouted.load(Ordering::Relaxed),
                "rejected": c.rejected.load(Ordering::Relaxed),
                "rule_errors": c.rule_errors.load(Ordering::Relaxed),
                "by_type": *c.by_type.lock().unwrap_or_else(|e| e.into_inner()),
            },
            "sinks": sinks,
        })
    }

    /// Renders `name` for a plugin's own message: `templates/<sink>/<name>`, then
    /// `templates/<plugin>/<name>`, with the plugin's context plus `sink` and `now`.
    fn render_for_plugin(&self, sink: &str, name: &str, context: &[u8]) -> Result<String, String> {
        let snap = self.snapshot.load();
        let entry = snap
            .sinks
            .get(sink)
            .ok_or_else(|| format!("sink `{sink}` is not running"))?;
        let plugin = entry.plugin.name();
        let id = snap
            .templates
            .find(sink, plugin, name)
            .ok_or_else(|| format!("no template `{name}`: add templates/{sink}/{name}.yaml or templates/{plugin}/{name}.yaml"))?;
        let mut ctx: serde_json::Map<String, Value> = match serde_json::from_slice(context) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err("the render context must be a JSON object".into()),
            Err(e) => return Err(format!("the render context is not valid JSON: {e}")),
        };
        ctx.insert("sink".into(), json!(sink));
        ctx.insert("plugin".into(), json!(plugin));
        ctx.insert("now".into(), json!(format_time(OffsetDateTime::now_utc())));
        let payload = snap
            .templates
            .render(id, &minijinja::Value::from(minijinja::value::Serde(&ctx)))
            .map_err(|e| e.to_string())?;
        Ok(payload.to_string())
    }
}

/// Dead letters listed per sink in `/v1/status` (the newest ones).
const DEAD_LETTERS_SHOWN: usize = 10;

fn sink_status(stats: &SinkStats, queued: usize) -> Value {
    let letters = stats.dead_letters.lock().unwrap_or_else(|e| e.into_inner());
    let recent: Vec<Value> = letters
        .iter()
        .rev()
        .take(DEAD_LETTERS_SHOWN)
        .map(|d| json!({"id": d.id, "event_type": d.event_type, "attempts": d.attempts, "error": d.error, "time": d.time}))
        .collect();
    json!({
        "healthy": !stats.unhealthy.load(Ordering::Relaxed),
        "queued": queued,
        "sent": stats.sent.load(Ordering::Relaxed),
        "failed": stats.failed.load(Ordering::Relaxed),
        "retried": stats.retried.load(Ordering::Relaxed),
        "rate_limited": stats.rate_limited.load(Ordering::Relaxed),
        "render_errors": stats.render_errors.load(Ordering::Relaxed),
        "routed": stats.routed.load(Ordering::Relaxed),
        "dead_letters": letters.len(),
        "recent_dead_letters": recent,
        "last_error": *stats.last_error.lock().unwrap_or_else(|e| e.into_inner()),
    })
}

fn unix_now() -> u64 {
    OffsetDateTime::now_utc().unix_timestamp().max(0) as u64
}

/// Stops the workers of sinks a reload removed: once no ingest holds the old snapshot
/// (so nothing more can be queued to them), each drains its queue, then its plugin
/// instance is destroyed. Runs on its own thread; the reload does not wait.
fn retire(old: Arc<Snapshot>, workers: Vec<(String, Arc<Worker>)>) {
    if workers.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new().name("retire-sinks".into()).spawn(move || {
        let mut old = old;
        let deadline = Instant::now() + Duration::from_secs(10);
        // The reload holds one reference until it returns; wait for the others.
        loop {
            match Arc::try_unwrap(old) {
                Ok(_) => break,
                Err(still) if Instant::now() < deadline => {
                    old = still;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => break,
            }
        }
        for (name, worker) in workers {
            let left = worker.shutdown(Instant::now() + RETIRE_DRAIN);
            if left > 0 {
                tracing::warn!(sink = %name, undelivered = left, "removed sink stopped with messages still queued");
            } else {
                tracing::info!(sink = %name, "removed sink drained and stopped");
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start a thread to stop removed sinks");
    }
}

/// How long a removed sink may take to deliver what it still has.
const RETIRE_DRAIN: Duration = Duration::from_secs(300);

/// A snapshot built, and what changed from the one before it.
struct Built {
    snapshot: Snapshot,
    changes: Vec<String>,
    /// Sinks of the previous snapshot that are gone: drained, then destroyed.
    retired: Vec<(String, Arc<Worker>)>,
}

/// What to do with one enabled sink.
enum Plan {
    /// The running worker stays as it is, or with a new rate limit, retry or queue size.
    Keep(Arc<Worker>),
    /// The running worker gets a new plugin instance (settings or plugin file changed).
    Replace(Arc<Worker>, Instance),
    /// A new sink.
    Start(Instance),
}

/// Builds the snapshot for `checked`. Without a `previous` snapshot (start-up) every
/// sink that can start does, and the others become [`BrokenSink`]s. With one (a reload)
/// the running workers are reused, keeping their queues, counters and rate-limit budget;
/// a sink gets a new instance only when its plugin or settings changed; and any sink that
/// cannot start fails the whole build, so a bad reload never replaces a good snapshot.
/// Blocking: plugin `create` runs here.
fn build(
    checked: Checked,
    services: &Arc<Services>,
    previous: Option<&Snapshot>,
) -> Result<Built, Diagnostics> {
    let Checked {
        config,
        rules,
        templates,
        plugins,
    } = checked;
    let mut plans: Vec<(String, SinkConfig, Arc<Plugin>, Plan)> = Vec::new();
    let mut broken = BTreeMap::new();
    let mut problems = Diagnostics::default();
    for (name, loaded) in plugins {
        let Some(sink) = config.sinks.get(&name).cloned() else {
            continue;
        };
        let running = previous.and_then(|p| p.sinks.get(&name));
        let plan = loaded.and_then(|plugin| {
            let unchanged = running.is_some_and(|r| {
                Arc::ptr_eq(&r.plugin, &plugin) && r.config.settings == sink.settings
            });
            let plan = match running {
                Some(r) if unchanged => Plan::Keep(r.worker.clone()),
                _ => {
                    let instance = plugin
                        .create(
                            &name,
                            &sink.settings,
                            services.clone() as Arc<dyn HostServices>,
                        )
                        .map_err(|e| e.to_string())?;
                    match running {
                        Some(r) => Plan::Replace(r.worker.clone(), instance),
                        None => Plan::Start(instance),
                    }
                }
            };
            Ok((plugin, plan))
        });
        match plan {
            Ok((plugin, plan)) => plans.push((name, sink, plugin, plan)),
            Err(reason) => {
                let d = Diagnostic::new(
                    &config.path,
                    sink.line,
                    sink.col,
                    format!("sink `{name}` did not start: {reason}"),
                );
                if previous.is_some() {
                    problems.push(d);
                } else {
                    tracing::error!("{d}");
                    broken.insert(
                        name,
                        BrokenSink {
                            config: sink,
                            reason,
                            stats: Arc::new(SinkStats::default()),
                        },
                    );
                }
            }
        }
    }
    if !problems.is_empty() {
        // Instances created for this attempt are destroyed as `plans` drops.
        return Err(problems);
    }

    let mut changes = Vec::new();
    let mut sinks = BTreeMap::new();
    for (name, sink, plugin, plan) in plans {
        let old = previous.and_then(|p| p.sinks.get(&name));
        let worker = match plan {
            Plan::Keep(worker) => {
                if old.is_some_and(|o| policy(&o.config) != policy(&sink)) {
                    worker.reconfigure(None, sink.rate_limit, sink.retry, sink.max_queue);
                    changes.push(format!(
                        "sink `{name}`: rate limit, retry or queue size changed"
                    ));
                }
                worker
            }
            Plan::Replace(worker, instance) => {
                worker.reconfigure(Some(instance), sink.rate_limit, sink.retry, sink.max_queue);
                let why = match old {
                    Some(o) if !Arc::ptr_eq(&o.plugin, &plugin) => "new plugin file",
                    _ => "settings changed",
                };
                changes.push(format!(
                    "sink `{name}` reconfigured ({why}); its queue is kept"
                ));
                worker
            }
            Plan::Start(instance) => {
                let delivering = Delivering {
                    instance,
                    rate_limit: sink.rate_limit,
                    retry: sink.retry,
                };
                let worker = Worker::start(&name, delivering, sink.max_queue).map_err(|e| {
                    Diagnostics::from(Diagnostic::new(
                        &config.path,
                        sink.line,
                        sink.col,
                        format!("sink `{name}`: cannot start its worker thread: {e}"),
                    ))
                })?;
                if previous.is_some() {
                    changes.push(format!("sink `{name}` added"));
                }
                tracing::info!(sink = %name, plugin = %plugin.name(), version = %plugin.version(), "sink started");
                Arc::new(worker)
            }
        };
        sinks.insert(
            name,
            SinkEntry {
                config: sink,
                plugin,
                worker,
            },
        );
    }
    let mut retired = Vec::new();
    if let Some(previous) = previous {
        for (name, entry) in &previous.sinks {
            if !sinks.contains_key(name) {
                changes.push(format!(
                    "sink `{name}` removed; it drains what it has queued"
                ));
                retired.push((name.clone(), entry.worker.clone()));
            }
        }
        changes.extend(rule_changes(&previous.rules, &rules));
        changes.extend(template_changes(&previous.templates, &templates));
    }
    let snapshot = Snapshot {
        config,
        rules,
        templates,
        sinks,
        broken,
        loaded_at: OffsetDateTime::now_utc(),
    };
    Ok(Built {
        snapshot,
        changes,
        retired,
    })
}

fn policy(
    c: &SinkConfig,
) -> (
    Option<crate::config::RateLimit>,
    crate::config::RetryPolicy,
    usize,
) {
    (c.rate_limit, c.retry, c.max_queue)
}

/// "rules added: a, b" and the like, for the reload log line.
fn rule_changes(old: &Rules, new: &Rules) -> Vec<String> {
    let (old, new) = (old.fingerprints(), new.fingerprints());
    let added: Vec<&str> = new
        .keys()
        .filter(|k| !old.contains_key(*k))
        .map(String::as_str)
        .collect();
    let removed: Vec<&str> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(String::as_str)
        .collect();
    let changed: Vec<&str> = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k.as_str())
        .collect();
    let mut out = Vec::new();
    for (what, names) in [("added", added), ("removed", removed), ("changed", changed)] {
        if !names.is_empty() {
            out.push(format!("routes {what}: {}", names.join(", ")));
        }
    }
    out
}

/// "templates changed: console/trade_opened.yaml" and the like.
fn template_changes(old: &Templates, new: &Templates) -> Vec<String> {
    let old: BTreeMap<&std::path::Path, u64> = old.files().collect();
    let new: BTreeMap<&std::path::Path, u64> = new.files().collect();
    let name = |p: &std::path::Path| p.display().to_string();
    let added: Vec<String> = new
        .keys()
        .filter(|k| !old.contains_key(*k))
        .map(|p| name(p))
        .collect();
    let removed: Vec<String> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(|p| name(p))
        .collect();
    let changed: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| name(k))
        .collect();
    let mut out = Vec::new();
    for (what, names) in [("added", added), ("removed", removed), ("changed", changed)] {
        if !names.is_empty() {
            out.push(format!("templates {what}: {}", names.join(", ")));
        }
    }
    out
}

/// The host services plugins call back into. Holds the router weakly: instances live
/// inside it, and a strong reference would keep it alive forever.
struct Services {
    pipeline: OnceLock<Weak<Pipeline>>,
}

impl Services {
    fn pipeline(&self) -> Result<Arc<Pipeline>, String> {
        self.pipeline
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| "the router is starting or stopping".to_owned())
    }
}

impl HostServices for Services {
    fn query(&self, _sink: &str, path: &str) -> Result<String, String> {
        let pipeline = self.pipeline()?;
        let (resource, query) = path.split_once('?').unwrap_or((path, ""));
        match resource.trim_matches('/') {
            "status" => Ok(pipeline.status().to_string()),
            r if r.starts_with("state/") => pipeline
                .state
                .query(&r["state/".len()..], query)
                .map(|v| v.to_string())
                .map_err(|e| e.to_string()),
            other => Err(format!(
                "unknown resource `{other}`: ask for status or state/<portfolio|positions|trades|performance|equity>"
            )),
        }
    }

    fn emit(&self, sink: &str, event_json: &[u8]) -> Result<String, String> {
        let pipeline = self.pipeline()?;
        let mut events =
            ingest::parse_body(event_json, OffsetDateTime::now_utc()).map_err(|e| e.to_string())?;
        for e in &mut events {
            e.source.get_or_insert_with(|| sink.to_owned());
        }
        let accepted = pipeline
            .ingest(events)
            .map_err(|IngestError::Full { sink }| format!("the queue of sink `{sink}` is full"))?;
        serde_json::to_string(&accepted).map_err(|e| e.to_string())
    }

    fn render(&self, sink: &str, name: &str, context_json: &[u8]) -> Result<String, String> {
        self.pipeline()?.render_for_plugin(sink, name, context_json)
    }
}
