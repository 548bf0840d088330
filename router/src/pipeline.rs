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
use crate::plugins::{Catalog, HostServices, Markup, Plugin};
use crate::render::{self, Templates};
use crate::rules::Rules;

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
    catalog: Arc<Catalog>,
    dedup: Dedup,
    pub counters: Counters,
    started: Instant,
}

impl Pipeline {
    /// Loads `config`, starts every enabled sink that can start, and returns the router.
    /// Plugin instances are created on the calling thread: call it off the async runtime.
    pub fn start(config: Config) -> Result<Arc<Pipeline>, Diagnostics> {
        let catalog = Arc::new(Catalog::new(config.plugin_dirs.clone()));
        let checked = check(config, &catalog)?;
        let services = Arc::new(Services {
            pipeline: OnceLock::new(),
        });
        let snapshot = build(checked, services.clone());
        let pipeline = Arc::new(Pipeline {
            snapshot: ArcSwap::from_pointee(snapshot),
            catalog,
            dedup: Dedup::new(DEDUP_WINDOW),
            counters: Counters::default(),
            started: Instant::now(),
        });
        let _ = services.pipeline.set(Arc::downgrade(&pipeline));
        Ok(pipeline)
    }

    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Routes, renders and queues validated events. All or nothing: when any sink's queue
    /// is full nothing is queued and the ids are forgotten, so the producer can retry.
    pub fn ingest(&self, events: Vec<Event>) -> Result<Accepted, IngestError> {
        let snap = self.snapshot.load();
        let now = format_time(OffsetDateTime::now_utc());
        let mut ids = Vec::with_capacity(events.len());
        let mut fresh = Vec::new();
        let mut queued: BTreeMap<String, Vec<Message>> = BTreeMap::new();
        let mut dead: Vec<(Arc<SinkStats>, DeadLetter, bool)> = Vec::new();
        let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
        for event in events {
            ids.push(event.id.clone());
            if !self.dedup.first_time(&event.id) {
                self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            fresh.push(event.id.clone());
            *by_type.entry(event.kind.clone()).or_default() += 1;
            let hits = snap.rules.route(event, &mut |route, e| {
                self.counters.rule_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(route = %route.name, file = %route.file.display(), line = route.line, error = %e, "rule condition failed; treated as no match");
            });
            if hits.is_empty() {
                self.counters.unrouted.fetch_add(1, Ordering::Relaxed);
            }
            for hit in hits {
                let route = &snap.rules.routes()[hit.route];
                let event_json = Arc::new(hit.event.to_json());
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
                            snap.templates.render(id, &ctx).map_err(|e| e.to_string())
                        }
                    };
                    match rendered {
                        Ok(payload) => queued.entry(sink.clone()).or_default().push(Message {
                            id: message_id.clone(),
                            event_id: hit.event.id.clone(),
                            event_type: hit.event.kind.clone(),
                            payload,
                            event: event_json.clone(),
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

fn sink_status(stats: &SinkStats, queued: usize) -> Value {
    json!({
        "healthy": !stats.unhealthy.load(Ordering::Relaxed),
        "queued": queued,
        "sent": stats.sent.load(Ordering::Relaxed),
        "failed": stats.failed.load(Ordering::Relaxed),
        "retried": stats.retried.load(Ordering::Relaxed),
        "rate_limited": stats.rate_limited.load(Ordering::Relaxed),
        "render_errors": stats.render_errors.load(Ordering::Relaxed),
        "dead_letters": stats.dead_letters.lock().unwrap_or_else(|e| e.into_inner()).len(),
        "last_error": *stats.last_error.lock().unwrap_or_else(|e| e.into_inner()),
    })
}

fn unix_now() -> u64 {
    OffsetDateTime::now_utc().unix_timestamp().max(0) as u64
}

/// Starts a worker for every enabled sink whose plugin loaded; the others become
/// [`BrokenSink`]s. Blocking: plugin `create` runs here.
fn build(checked: Checked, services: Arc<Services>) -> Snapshot {
    let Checked {
        config,
        rules,
        templates,
        plugins,
    } = checked;
    let mut sinks = BTreeMap::new();
    let mut broken = BTreeMap::new();
    for (name, loaded) in plugins {
        let Some(sink) = config.sinks.get(&name).cloned() else {
            continue;
        };
        let started = loaded.and_then(|plugin| {
            let instance = plugin
                .create(
                    &name,
                    &sink.settings,
                    services.clone() as Arc<dyn HostServices>,
                )
                .map_err(|e| e.to_string())?;
            let delivering = Delivering {
                instance,
                rate_limit: sink.rate_limit,
                retry: sink.retry,
            };
            let worker = Worker::start(&name, delivering, sink.max_queue)
                .map_err(|e| format!("cannot start the worker thread: {e}"))?;
            Ok(SinkEntry {
                config: sink.clone(),
                plugin,
                worker: Arc::new(worker),
            })
        });
        match started {
            Ok(entry) => {
                tracing::info!(sink = %name, plugin = %entry.plugin.name(), version = %entry.plugin.version(), "sink started");
                sinks.insert(name, entry);
            }
            Err(reason) => {
                let d = Diagnostic::new(
                    &config.path,
                    sink.line,
                    sink.col,
                    format!("sink `{name}` did not start: {reason}"),
                );
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
    Snapshot {
        config,
        rules,
        templates,
        sinks,
        broken,
        loaded_at: OffsetDateTime::now_utc(),
    }
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
        let (resource, _query) = path.split_once('?').unwrap_or((path, ""));
        match resource.trim_matches('/') {
            "status" => Ok(pipeline.status().to_string()),
            r if r.starts_with("state/") => Err(format!(
                "{r}: the state store is not available in this version of the router"
            )),
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
