//! The running router: the snapshot in force (config, rules, templates, sinks) and the
//! path of every accepted event through it: dedup → rules → render → the outbox, which
//! the sinks' workers deliver from. A batch is written whole or refused whole (503 when
//! the outbox is full). Also answers plugins' host calls (query, emit, render), re-drives
//! dead letters, and reports status and metrics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use alert_router_plugin::HostError;
use arc_swap::ArcSwap;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::config::{Config, SinkConfig};
use crate::diag::{Diagnostic, Diagnostics};
use crate::dispatch::{self, Delivering, SinkStats, Worker};
use crate::event::{Event, format_time};
use crate::ingest::{self, Dedup, Seen};
use crate::outbox::{
    self, Batch, Count, DeadLetter, NewMessage, Outbox, OutboxError, Requeue, Reservation, Selector,
};
use crate::plugins::{
    Catalog, HostServices, Instance, Markup, Plugin, PluginError, SettingProblem,
};
use crate::render::samples::{self, Sample};
use crate::render::{self, Templates};
use crate::restart::Fixed;
use crate::rules::Rules;
use crate::state::{QueryError, StateStore};

/// Messages the host's `delivered` query lists without a `limit`, and at most.
const DEFAULT_DELIVERED: usize = 100;
const MAX_DELIVERED: usize = 10_000;

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
    /// Every enabled sink: its plugin, or why it cannot start.
    pub plugins: BTreeMap<String, Result<Arc<Plugin>, CannotStart>>,
    /// What may fail for some events but does not stop this config from loading.
    pub warnings: Diagnostics,
}

/// Why an enabled sink cannot start.
#[derive(Debug, Clone)]
pub enum CannotStart {
    /// Its plugin could not be loaded (not found, not a plugin, another ABI): the reason,
    /// said at the sink's place.
    Plugin(String),
    /// Its settings do not fit the plugin (its manifest, or its `create`): each problem
    /// at the place of the setting it is about.
    Settings(Diagnostics),
}

impl CannotStart {
    /// The problem on one line, for `/v1/status` and the sink's dead letters.
    pub fn reason(&self) -> String {
        match self {
            CannotStart::Plugin(reason) => reason.clone(),
            CannotStart::Settings(problems) => problems
                .0
                .iter()
                .map(|d| d.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    /// Every problem at its place in `config`. A plugin that could not be loaded is
    /// reported at sink `name`'s place, as "sink `name`", then `lead` (" did not start"
    /// for a start, nothing for `check`), then the reason.
    pub fn diagnostics(
        &self,
        config: &std::path::Path,
        name: &str,
        sink: &SinkConfig,
        lead: &str,
    ) -> Diagnostics {
        match self {
            CannotStart::Plugin(reason) => Diagnostics::from(Diagnostic::new(
                config,
                sink.line,
                sink.col,
                format!("sink `{name}`{lead}: {reason}"),
            )),
            CannotStart::Settings(problems) => problems.clone(),
        }
    }
}

/// Checks sink `name`'s settings against its plugin's manifest: each problem at the
/// place of the setting it is about, named as `sinks.<name>.settings.<setting>`.
fn check_settings(config: &Config, name: &str, sink: &SinkConfig, plugin: &Plugin) -> Diagnostics {
    let manifest = plugin.manifest();
    let takes: Vec<&str> = manifest.settings.keys().map(String::as_str).collect();
    let places = &sink.settings_places;
    let mut problems = Diagnostics::default();
    for problem in manifest.check_settings(&sink.settings) {
        let message = problem.message(plugin.name(), &takes);
        let (place, what) = match &problem {
            SettingProblem::Unknown { name: setting, .. } => (
                places.name_of(setting),
                format!("sinks.{name}.settings.{setting}"),
            ),
            SettingProblem::WrongType { name: setting, .. } => (
                places.value_of(setting),
                format!("sinks.{name}.settings.{setting}"),
            ),
            SettingProblem::Missing { .. } | SettingProblem::NotAMapping { .. } => {
                (places.whole, format!("sinks.{name}.settings"))
            }
        };
        problems.push(Diagnostic::new(
            &config.path,
            place.line,
            place.col,
            format!("{what}: {message}"),
        ));
    }
    problems
}

/// Loads and checks everything `config` names. Problems with rules and templates are
/// fatal; a sink whose plugin cannot be loaded or whose settings are wrong is reported
/// in `plugins` (and as a diagnostic by `check`) but does not stop the others.
pub fn check(config: Config, catalog: &Catalog) -> Result<Checked, Diagnostics> {
    let mut plugins = BTreeMap::new();
    for (name, sink) in config.enabled_sinks() {
        let loaded = match catalog.load(&sink.plugin) {
            Err(e) => Err(CannotStart::Plugin(e.to_string())),
            Ok(plugin) => {
                let problems = check_settings(&config, name, sink, &plugin);
                if problems.is_empty() {
                    Ok(plugin)
                } else {
                    Err(CannotStart::Settings(problems))
                }
            }
        };
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
    let warnings = rehearse_sends(&plugins, &rules, &templates);
    Ok(Checked {
        config,
        rules,
        templates,
        plugins,
        warnings,
    })
}

/// Renders every template the sinks that can start would use with sample events of the
/// types it serves (see `render::rehearse`): what fails is a warning, at its place.
fn rehearse_sends(
    plugins: &BTreeMap<String, Result<Arc<Plugin>, CannotStart>>,
    rules: &Rules,
    templates: &Templates,
) -> Diagnostics {
    let sinks: Vec<(String, String)> = plugins
        .iter()
        .filter_map(|(name, p)| Some((name.clone(), p.as_ref().ok()?.name().to_owned())))
        .collect();
    let documented = samples::documented();
    let named: Vec<render::Named> = rules
        .routes()
        .iter()
        .filter_map(|route| {
            let template = route.template.clone()?;
            let mut samples: Vec<Sample> = documented
                .iter()
                .filter(|s| route.admits_type(&s.event.kind))
                .cloned()
                .collect();
            // A custom event too: one of each type the route names that is not documented
            // (`heartbeat`), or any when it names none.
            let custom: Vec<&str> = if route.types().is_empty() {
                vec![samples::CUSTOM_TYPE]
            } else {
                route
                    .types()
                    .iter()
                    .map(String::as_str)
                    .filter(|t| !t.contains(['*', '?']))
                    .filter(|t| !documented.iter().any(|s| s.event.kind == *t))
                    .collect()
            };
            for kind in custom {
                samples.extend(samples::custom(kind));
            }
            for sample in &mut samples {
                route.apply_set(&mut sample.event);
            }
            Some(render::Named {
                template,
                route: route.name.clone(),
                sinks: route.to.clone(),
                samples,
            })
        })
        .collect();
    render::rehearse(templates, &sinks, &named)
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

/// Why a valid batch was refused: nothing of it was accepted, and the producer should
/// try again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("{0}: nothing in this request was accepted; retry later")]
    Full(#[from] outbox::Full),
    #[error(
        "the outbox could not store the batch ({0}): nothing in this request was accepted; retry later"
    )]
    Storage(String),
    #[error(
        "event `{id}` is being stored by another request right now: nothing in this request was accepted; retry shortly (it will then count as a repeat)"
    )]
    InFlight { id: String },
}

/// A batch routed and rendered, with room taken in the outbox, not yet written.
pub struct Prepared {
    /// Held until the batch is written: a reload stops removed sinks only after that.
    _snapshot: Arc<Snapshot>,
    batch: Batch,
    reservation: Reservation,
    accepted: Accepted,
    /// Ids seen for the first time: forgotten again if the batch is not written.
    fresh: Vec<String>,
    /// Trading events, applied to the state once the batch is written.
    tracked: Vec<Arc<Event>>,
    by_type: BTreeMap<String, u64>,
    /// Messages per running sink, for its counters.
    routed: Vec<(Arc<SinkStats>, u64)>,
    /// Dead on arrival: the sink's counters, the error, whether it was a render error.
    dead: Vec<(Arc<SinkStats>, String, bool)>,
}

/// What retrying dead letters did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Retried {
    /// Dead letters put back at the end of their sinks' queues.
    pub retried: usize,
    /// Dead letters that stay, with why (`seq`, id, reason).
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    pub seq: i64,
    pub id: String,
    pub reason: String,
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
    outbox: Arc<Outbox>,
    dedup: Dedup,
    pub counters: Counters,
    started: Instant,
    /// What only a restart changes: the API's address and the storage.
    fixed: Fixed,
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
    /// What `check` warned of, as file:line:col: warning: message (on success): the
    /// config is in force, but a template fails on a sample event.
    pub warnings: Vec<String>,
    /// Keys whose value in the config differs from the one in force, because only a
    /// restart applies them (`server.listen`, `storage.*`).
    pub restart_needed: Vec<String>,
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
    /// `listen_flag` is the address `run --listen` gave instead of `server.listen`, so a
    /// reload knows a changed `server.listen` would not apply even after a restart.
    /// Plugin instances are created on the calling thread: call it off the async runtime.
    pub fn start(
        config: Config,
        listen_flag: Option<std::net::SocketAddr>,
    ) -> Result<Arc<Pipeline>, Diagnostics> {
        let catalog = Arc::new(Catalog::new(config.plugin_dirs.clone()));
        let storage_error = |e: &dyn std::fmt::Display| {
            Diagnostics::from(Diagnostic::file(&config.path, format!("storage.path: {e}")))
        };
        // The outbox first: it locks the storage directory against a second router.
        let opened = Outbox::open(&config.storage).map_err(|e| storage_error(&e))?;
        let state = StateStore::open(&config.storage.path).map_err(|e| storage_error(&e))?;
        let dedup = Dedup::new(config.storage.dedup_window);
        for (id, age) in opened.seen {
            dedup.remember(id, age);
        }
        let outbox = opened.outbox;
        let fixed = Fixed::new(&config, listen_flag);
        let checked = check(config, &catalog)?;
        let services = Arc::new(Services {
            pipeline: OnceLock::new(),
        });
        let built = build(checked, &services, &outbox, None)?;
        let pipeline = Arc::new(Pipeline {
            snapshot: ArcSwap::from_pointee(built.snapshot),
            state: Arc::new(state),
            catalog: Mutex::new(catalog),
            services: services.clone(),
            outbox,
            dedup,
            counters: Counters::default(),
            started: Instant::now(),
            fixed,
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
            build(checked, &self.services, &self.outbox, Some(&current))
        });
        let outcome = match result {
            Ok(built) => {
                let mut changes = self.server_changes(&current.config, &built.snapshot.config);
                changes.extend(built.changes);
                self.snapshot.store(Arc::new(built.snapshot));
                retire(current, built.retired, self.outbox.clone());
                self.reloads.succeeded.fetch_add(1, Ordering::Relaxed);
                if changes.is_empty() {
                    changes.push("nothing changed".to_owned());
                }
                tracing::info!(trigger, changes = %changes.join("; "), "config reloaded");
                ReloadOutcome {
                    ok: true,
                    trigger: trigger.into(),
                    at: String::new(),
                    duration_ms: 0.0,
                    changes,
                    errors: Vec::new(),
                    warnings: built.warnings,
                    restart_needed: Vec::new(),
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
                    warnings: Vec::new(),
                    restart_needed: Vec::new(),
                }
            }
        };
        // Said on every reload until a restart applies them, a failed one included: the
        // file holds values that are not in force.
        let restart_needed = self.restart_needed();
        if !restart_needed.is_empty() {
            tracing::warn!(trigger, keys = %restart_needed.join(", "), "these settings differ from the ones in force and take effect only after a restart");
        }
        let outcome = ReloadOutcome {
            at: format_time(OffsetDateTime::now_utc()),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            restart_needed,
            ..outcome
        };
        *self.reloads.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome.clone());
        outcome
    }

    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// The storage in force: the one the router started with, whatever the file says now.
    pub fn storage(&self) -> &crate::config::Storage {
        self.fixed.storage()
    }

    /// The keys of the config in force whose values only a restart applies.
    pub fn restart_needed(&self) -> Vec<String> {
        let snap = self.snapshot.load();
        self.fixed
            .restart_needed(&snap.config)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// What a reload from `old` to `new` changes under `server:`. The token and the body
    /// limit apply at once (the API reads them from the snapshot in force); the address
    /// needs a restart. The token's value is never said.
    fn server_changes(&self, old: &Config, new: &Config) -> Vec<String> {
        let (was, is) = (&old.server, &new.server);
        let mut changes = Vec::new();
        match (&was.token, &is.token) {
            (None, Some(_)) => changes.push(
                "server.token set: the API now needs `Authorization: Bearer <server.token>`".into(),
            ),
            (Some(_), None) => {
                changes.push("server.token removed: the API no longer asks for a token".into())
            }
            (Some(a), Some(b)) if a != b => {
                changes.push("server.token changed: the API takes only the new one".into())
            }
            _ => {}
        }
        if was.max_body_bytes != is.max_body_bytes {
            changes.push(format!(
                "server.max_body changed from {} to {} bytes",
                was.max_body_bytes, is.max_body_bytes
            ));
        }
        changes.extend(self.fixed.listen_change(old, new));
        changes
    }

    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Routes, renders and writes validated events to the outbox, and returns once they
    /// are committed. All or nothing: when the outbox (or a sink's share of it) is full,
    /// or the write fails, nothing is kept and the ids are forgotten, so the producer can
    /// retry. Blocking.
    pub fn ingest(&self, events: Vec<Event>) -> Result<Accepted, IngestError> {
        let mut prepared = self.prepare(events)?;
        let written = self
            .outbox
            .append_blocking(std::mem::take(&mut prepared.batch));
        self.settle(prepared, written)
    }

    /// [`ingest`](Self::ingest) for async callers: routing and rendering a big batch run
    /// on a blocking thread, and the commit is awaited. The work runs as a task of its
    /// own, so a producer that hangs up mid-request cannot cut it between the commit and
    /// the bookkeeping after it (counters, the state store).
    pub async fn ingest_async(
        self: &Arc<Self>,
        events: Vec<Event>,
    ) -> Result<Accepted, IngestError> {
        let pipeline = self.clone();
        tokio::spawn(async move {
            let mut prepared = if events.len() > 64 {
                let p = pipeline.clone();
                tokio::task::spawn_blocking(move || p.prepare(events))
                    .await
                    .map_err(|e| IngestError::Storage(format!("routing the batch failed: {e}")))??
            } else {
                pipeline.prepare(events)?
            };
            let written = pipeline
                .outbox
                .append(std::mem::take(&mut prepared.batch))
                .await;
            pipeline.settle(prepared, written)
        })
        .await
        .map_err(|e| IngestError::Storage(format!("the ingest task failed: {e}")))?
    }

    /// Dedup, rules and templates: everything up to the outbox write, with room taken.
    pub fn prepare(&self, events: Vec<Event>) -> Result<Prepared, IngestError> {
        // A full `Arc` (not a guard), held until the batch is written: a reload waits for
        // the last holder of the old snapshot before it stops the sinks that are gone.
        let snap = self.snapshot.load_full();
        let now = format_time(OffsetDateTime::now_utc());
        let mut ids = Vec::with_capacity(events.len());
        let mut fresh = Vec::new();
        let mut messages: Vec<NewMessage> = Vec::new();
        let mut dead = Vec::new();
        let mut per_sink: BTreeMap<String, Count> = BTreeMap::new();
        let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
        let mut tracked: Vec<Arc<Event>> = Vec::new();
        let total = events.len();
        for event in events {
            ids.push(event.id.clone());
            if event.id_given {
                match self.dedup.offer(&event.id) {
                    Seen::New => fresh.push(event.id.clone()),
                    Seen::Repeat => {
                        self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    // Twice in this batch: the batch is stored whole, so a repeat.
                    Seen::Storing if fresh.contains(&event.id) => {
                        self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    // Another request is storing it (a producer's retry overtook its first
                    // try). Taking it would send it twice; dropping it would lose it if
                    // that write fails. The producer asks again shortly instead.
                    Seen::Storing => {
                        self.refused(&fresh, total);
                        return Err(IngestError::InFlight { id: event.id });
                    }
                }
            }
            // Look up before inserting: `entry` would allocate the key for every event.
            match by_type.get_mut(&event.kind) {
                Some(n) => *n += 1,
                None => {
                    by_type.insert(event.kind.clone(), 1);
                }
            }
            // Shared, not copied: the state store gets the event as posted (a route's
            // `set` changes a copy of its own).
            let event = Arc::new(event);
            if StateStore::tracks(&event.kind) {
                tracked.push(event.clone());
            }
            let hits = snap.rules.route_shared(event, &mut |route, e| {
                self.counters.rule_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(route = %route.name, file = %route.file.display(), line = route.line, error = %e, "rule condition failed; treated as no match");
            });
            if hits.is_empty() {
                self.counters.unrouted.fetch_add(1, Ordering::Relaxed);
            }
            // The event's stored text, written once for the hits that share one event
            // (every hit, unless a route's `set` changed it).
            let mut written: Option<(Arc<Event>, Arc<str>)> = None;
            for hit in hits {
                let route = &snap.rules.routes()[hit.route];
                let event_text = match &written {
                    Some((e, text)) if Arc::ptr_eq(e, &hit.event) => text.clone(),
                    _ => {
                        let text: Arc<str> = hit.event.to_json_string().into();
                        written = Some((hit.event.clone(), text.clone()));
                        text
                    }
                };
                // Templates read the event in place; each sink's context shares it.
                let event_value = render::event_value(&hit.event);
                let template = route.template.as_deref().unwrap_or(&hit.event.kind);
                for sink in &hit.sinks {
                    let mut message = NewMessage {
                        sink: sink.clone(),
                        id: format!("{}:{sink}", hit.event.id),
                        event_id: hit.event.id.clone(),
                        event_type: hit.event.kind.clone(),
                        route: route.name.clone(),
                        template: template.to_owned(),
                        payload: None,
                        event: event_text.clone(),
                        error: None,
                    };
                    if let Some(broken) = snap.broken.get(sink) {
                        let error = format!("sink `{sink}` did not start: {}", broken.reason);
                        dead.push((broken.stats.clone(), error.clone(), false));
                        message.error = Some(error);
                        messages.push(message);
                        continue;
                    }
                    let Some(entry) = snap.sinks.get(sink) else {
                        continue; // a disabled sink
                    };
                    match render_for_sink(
                        &snap,
                        entry,
                        sink,
                        template,
                        &route.name,
                        &event_value,
                        &now,
                    ) {
                        Ok(payload) => {
                            message.payload = Some(payload.into());
                            let bytes = message.bytes();
                            match per_sink.get_mut(sink) {
                                Some(count) => count.add(1, bytes),
                                None => per_sink.entry(sink.clone()).or_default().add(1, bytes),
                            }
                        }
                        Err(e) => {
                            dead.push((entry.worker.stats.clone(), e.clone(), true));
                            message.error = Some(e);
                        }
                    }
                    messages.push(message);
                }
            }
        }
        let wanted: Vec<(String, Count, u64)> = per_sink
            .iter()
            .map(|(sink, count)| {
                let max = snap
                    .sinks
                    .get(sink)
                    .map_or(u64::MAX, |e| e.config.max_queue as u64);
                (sink.clone(), *count, max)
            })
            .collect();
        let reservation = match self.outbox.reserve(&wanted) {
            Ok(r) => r,
            Err(full) => {
                self.refused(&fresh, total);
                return Err(IngestError::Full(full));
            }
        };
        let routed = per_sink
            .iter()
            .filter_map(|(sink, count)| {
                snap.sinks
                    .get(sink)
                    .map(|e| (e.worker.stats.clone(), count.messages))
            })
            .collect();
        Ok(Prepared {
            _snapshot: snap,
            batch: Batch {
                messages,
                seen: fresh.clone(),
            },
            reservation,
            accepted: Accepted {
                accepted: ids.len(),
                ids,
            },
            fresh,
            tracked,
            by_type,
            routed,
            dead,
        })
    }

    /// After the write: counters and state when it committed; room and ids given back
    /// when it did not.
    fn settle(
        &self,
        prepared: Prepared,
        written: Result<(), OutboxError>,
    ) -> Result<Accepted, IngestError> {
        if let Err(e) = written {
            self.outbox.release(prepared.reservation);
            self.refused(&prepared.fresh, prepared.accepted.accepted);
            tracing::error!(error = %e, "a batch could not be written to the outbox; answered 503");
            return Err(IngestError::Storage(e.to_string()));
        }
        self.dedup.stored(&prepared.fresh);
        for (stats, n) in prepared.routed {
            stats.routed.fetch_add(n, Ordering::Relaxed);
        }
        for (stats, error, render_error) in prepared.dead {
            if render_error {
                stats.render_errors.fetch_add(1, Ordering::Relaxed);
            }
            tracing::warn!(%error, "message dead-lettered before delivery");
            stats.dead_letter(&error);
        }
        for event in &prepared.tracked {
            self.state.apply(event);
        }
        self.counters
            .accepted
            .fetch_add(prepared.accepted.accepted as u64, Ordering::Relaxed);
        if !prepared.by_type.is_empty() {
            let mut counts = self
                .counters
                .by_type
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for (k, n) in prepared.by_type {
                *counts.entry(k).or_default() += n;
            }
        }
        Ok(prepared.accepted)
    }

    /// A batch of `events` events was refused whole: its new ids may come again.
    fn refused(&self, fresh: &[String], events: usize) {
        for id in fresh {
            self.dedup.forget(id);
        }
        self.counters
            .rejected
            .fetch_add(events as u64, Ordering::Relaxed);
    }

    /// Dead letters, newest first.
    pub fn dead_letters(
        &self,
        selector: &Selector,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, OutboxError> {
        self.outbox.dead_letters(selector, limit)
    }

    /// Puts the dead letters `selector` picks back at the end of their sinks' queues.
    /// A letter that was never rendered is rendered now, with the templates in force (so
    /// a fixed template takes effect); one whose sink is not running stays.
    pub fn retry_dead_letters(&self, selector: &Selector) -> Result<Retried, OutboxError> {
        let snap = self.snapshot.load_full();
        let now = format_time(OffsetDateTime::now_utc());
        let mut requeue = Vec::new();
        let mut out = Retried::default();
        for letter in self.outbox.dead_letters(selector, usize::MAX)? {
            let mut skip = |reason: String| {
                out.skipped.push(Skipped {
                    seq: letter.seq,
                    id: letter.id.clone(),
                    reason,
                })
            };
            let Some(entry) = snap.sinks.get(&letter.sink) else {
                skip(format!("sink `{}` is not running", letter.sink));
                continue;
            };
            let payload = match &letter.payload_text {
                Some(_) => None,
                None => match render_for_sink(
                    &snap,
                    entry,
                    &letter.sink,
                    &letter.template,
                    &letter.route,
                    &render::json_value(&letter.event),
                    &now,
                ) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        skip(e);
                        continue;
                    }
                },
            };
            requeue.push(Requeue {
                seq: letter.seq,
                payload,
            });
        }
        out.retried = self.outbox.requeue(requeue)?;
        Ok(out)
    }

    /// Deletes the dead letters `selector` picks.
    pub fn drop_dead_letters(&self, selector: Selector) -> Result<usize, OutboxError> {
        self.outbox.drop_dead(selector)
    }

    /// Delivers what it can until `deadline`, then stops every sink and destroys the
    /// plugin instances. What is left stays in the outbox for the next start; returns
    /// (sink, messages left) for each sink that has some.
    pub fn shutdown(&self, deadline: Instant) -> Vec<(String, u64)> {
        if let Err(e) = self.state.flush() {
            tracing::error!(error = %e, "the state store could not save everything");
        }
        let snap = self.snapshot.load();
        for entry in snap.sinks.values() {
            entry.worker.stop_at(deadline);
        }
        for entry in snap.sinks.values() {
            entry.worker.shutdown(deadline);
        }
        if let Err(e) = self.outbox.flush() {
            tracing::error!(error = %e, "delivery marks not saved; some messages may be delivered again");
        }
        let (_, waiting) = self.outbox.waiting_all();
        waiting.into_iter().map(|(s, c)| (s, c.messages)).collect()
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Value {
        let snap = self.snapshot.load();
        let dead = self.outbox.dead_counts().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot count dead letters");
            Default::default()
        });
        let recent = |sink: &str| -> Vec<DeadLetter> {
            if dead.get(sink).copied().unwrap_or(0) == 0 {
                return Vec::new();
            }
            self.outbox
                .dead_letters(&Selector::Sink(sink.to_owned()), DEAD_LETTERS_SHOWN)
                .unwrap_or_default()
        };
        let dead_of = |sink: &str| dead.get(sink).copied().unwrap_or(0);
        let mut sinks = serde_json::Map::new();
        for (name, entry) in &snap.sinks {
            let mut s = sink_status(
                &entry.worker.stats,
                self.outbox.waiting(name),
                dead_of(name),
                &recent(name),
            );
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
            let mut s = sink_status(
                &broken.stats,
                self.outbox.waiting(name),
                dead_of(name),
                &recent(name),
            );
            s["plugin"] = json!(broken.config.plugin);
            s["healthy"] = json!(false);
            s["started"] = json!(false);
            s["last_error"] = json!(broken.reason);
            sinks.insert(name.clone(), s);
        }
        let (waiting, per_sink) = self.outbox.waiting_all();
        // Messages of sinks no longer configured wait for them to come back.
        let orphaned: BTreeMap<String, u64> = per_sink
            .into_iter()
            .filter(|(s, _)| !snap.sinks.contains_key(s) && !snap.broken.contains_key(s))
            .map(|(s, c)| (s, c.messages))
            .collect();
        let storage = self.fixed.storage();
        let c = &self.counters;
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "outbox": {
                "path": self.outbox.path().display().to_string(),
                "queued": waiting.messages,
                "queued_bytes": waiting.bytes,
                "max_messages": storage.max_messages,
                "max_bytes": storage.max_bytes,
                "dead_letters": dead.values().sum::<u64>(),
                "waiting_for_missing_sinks": orphaned,
            },
            "uptime_seconds": self.started.elapsed().as_secs(),
            "config": {
                "path": snap.config.path.display().to_string(),
                "loaded_at": format_time(snap.loaded_at),
                "routes": snap.rules.routes().len(),
                "templates": snap.templates.len(),
                "last_reload": *self.reloads.last.lock().unwrap_or_else(|e| e.into_inner()),
                "restart_needed": self.fixed.restart_needed(&snap.config),
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

    /// The host's `delivered?limit=N` for `sink` (default 100, at most 10,000): the
    /// latest messages delivered to it that retention still keeps, oldest first, each
    /// as `deliver` got it. A plugin that keeps a history in memory (the dashboard's
    /// feed) fills it again from here after a restart.
    fn delivered_to(&self, sink: &str, query: &str) -> Result<String, HostError> {
        let limit = delivered_limit(query).map_err(HostError::bad_request)?;
        let messages = self
            .outbox
            .delivered(sink, limit)
            .map_err(|e| HostError::failed(e.to_string()))?;
        let mut out = String::from("[");
        for (i, message) in messages.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&dispatch::wire(message, sink, message.attempts));
        }
        out.push(']');
        Ok(out)
    }

    /// Renders `name` for a plugin's own message: `templates/<sink>/<name>`, then
    /// `templates/<plugin>/<name>`, with the plugin's context plus `sink` and `now`.
    fn render_for_plugin(
        &self,
        sink: &str,
        name: &str,
        context: &[u8],
    ) -> Result<String, HostError> {
        let snap = self.snapshot.load();
        // A sink whose instance is being created (or was removed) is not in the snapshot.
        let entry = snap
            .sinks
            .get(sink)
            .ok_or_else(|| HostError::unavailable(format!("sink `{sink}` is not running")))?;
        let plugin = entry.plugin.name();
        let id = snap.templates.find(sink, plugin, name).ok_or_else(|| {
            HostError::not_found(format!("no template `{name}`: add templates/{sink}/{name}.yaml or templates/{plugin}/{name}.yaml"))
        })?;
        let mut ctx: serde_json::Map<String, Value> = match serde_json::from_slice(context) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(HostError::bad_request(
                    "the render context must be a JSON object",
                ));
            }
            Err(e) => {
                return Err(HostError::bad_request(format!(
                    "the render context is not valid JSON: {e}"
                )));
            }
        };
        ctx.insert("sink".into(), json!(sink));
        ctx.insert("plugin".into(), json!(plugin));
        ctx.insert("now".into(), json!(format_time(OffsetDateTime::now_utc())));
        let payload = snap
            .templates
            .render(id, &minijinja::Value::from(minijinja::value::Serde(&ctx)))
            .map_err(|e| HostError::failed(e.to_string()))?;
        Ok(payload.to_string())
    }
}

/// Renders `template` of an event for a running sink, as JSON text. `event` is the
/// event as templates see it ([`render::event_value`] or [`render::json_value`]).
fn render_for_sink(
    snap: &Snapshot,
    entry: &SinkEntry,
    sink: &str,
    template: &str,
    route: &str,
    event: &minijinja::Value,
    now: &str,
) -> Result<String, String> {
    let plugin = entry.plugin.name();
    match snap.templates.resolve(sink, plugin, template) {
        None => Err(format!(
            "no template `{template}` for sink `{sink}`: add templates/{sink}/{template}.yaml, templates/{plugin}/{template}.yaml or a default.yaml"
        )),
        Some(id) => {
            let ctx = render::context_with(event.clone(), route, sink, plugin, now);
            snap.templates
                .render_json(id, &ctx)
                .map_err(|e| e.to_string())
        }
    }
}

/// Dead letters listed per sink in `/v1/status` (the newest ones).
const DEAD_LETTERS_SHOWN: usize = 10;

fn sink_status(stats: &SinkStats, waiting: Count, dead: u64, recent: &[DeadLetter]) -> Value {
    let recent: Vec<Value> = recent
        .iter()
        .map(|d| json!({"seq": d.seq, "id": d.id, "event_type": d.event_type, "attempts": d.attempts, "error": d.error, "time": d.time}))
        .collect();
    json!({
        "healthy": !stats.unhealthy.load(Ordering::Relaxed),
        "queued": waiting.messages,
        "queued_bytes": waiting.bytes,
        "sent": stats.sent.load(Ordering::Relaxed),
        "failed": stats.failed.load(Ordering::Relaxed),
        "retried": stats.retried.load(Ordering::Relaxed),
        "rate_limited": stats.rate_limited.load(Ordering::Relaxed),
        "render_errors": stats.render_errors.load(Ordering::Relaxed),
        "routed": stats.routed.load(Ordering::Relaxed),
        "dead_letters": dead,
        "recent_dead_letters": recent,
        "last_error": *stats.last_error.lock().unwrap_or_else(|e| e.into_inner()),
    })
}

/// Stops the workers of sinks a reload removed: once no ingest holds the old snapshot
/// (so nothing more is written for them), each delivers what waits for it, then its
/// plugin instance is destroyed. Runs on its own thread; the reload does not wait.
fn retire(old: Arc<Snapshot>, workers: Vec<(String, Arc<Worker>)>, outbox: Arc<Outbox>) {
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
        let deadline = Instant::now() + RETIRE_DRAIN;
        for (_, worker) in &workers {
            worker.stop_at(deadline);
        }
        for (name, worker) in workers {
            worker.shutdown(deadline);
            let left = outbox.waiting(&name).messages;
            if left > 0 {
                tracing::warn!(sink = %name, waiting = left, "removed sink stopped; its messages wait in the outbox until it is configured again");
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
    /// What `check` warned of (a template that fails on a sample event).
    warnings: Vec<String>,
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
    outbox: &Arc<Outbox>,
    previous: Option<&Snapshot>,
) -> Result<Built, Diagnostics> {
    let Checked {
        config,
        rules,
        templates,
        plugins,
        warnings,
    } = checked;
    for warning in &warnings.0 {
        tracing::warn!("{warning}");
    }
    let warnings: Vec<String> = warnings.0.iter().map(ToString::to_string).collect();
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
                        .map_err(|e| refused(&config, &name, &sink, e))?;
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
            Err(cannot) => {
                let found = cannot.diagnostics(&config.path, &name, &sink, " did not start");
                if previous.is_some() {
                    problems.extend(found);
                } else {
                    for d in &found.0 {
                        tracing::error!("{d}");
                    }
                    broken.insert(
                        name,
                        BrokenSink {
                            config: sink,
                            reason: cannot.reason(),
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
                    worker.reconfigure(None, sink.rate_limit, sink.retry);
                    changes.push(format!(
                        "sink `{name}`: rate limit, retry or queue size changed"
                    ));
                }
                worker
            }
            Plan::Replace(worker, instance) => {
                worker.reconfigure(Some(instance), sink.rate_limit, sink.retry);
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
                let worker = Worker::start(&name, delivering, outbox).map_err(|e| {
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
                    "sink `{name}` removed; it delivers what waits for it, then stops"
                ));
                retired.push((name.clone(), entry.worker.clone()));
            }
        }
        if previous.config.storage != config.storage {
            changes.push("storage settings changed: they take effect at the next restart".into());
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
        warnings,
    })
}

/// A plugin's `create` refused sink `name`'s settings: said at the settings' place.
fn refused(config: &Config, name: &str, sink: &SinkConfig, error: PluginError) -> CannotStart {
    let message = match error {
        PluginError::Refused { plugin, reason, .. } => {
            // The SDK says "settings: " before serde's words; this line says it already.
            let reason = reason.strip_prefix("settings: ").unwrap_or(&reason);
            format!("sinks.{name}.settings: plugin `{plugin}` refused them: {reason}")
        }
        other => format!("sinks.{name}.settings: {other}"),
    };
    let place = sink.settings_places.whole;
    CannotStart::Settings(Diagnostic::new(&config.path, place.line, place.col, message).into())
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

/// The `limit` of a `delivered` query: `limit=N` from 1 to [`MAX_DELIVERED`], or none.
fn delivered_limit(query: &str) -> Result<usize, String> {
    match query.strip_prefix("limit=") {
        None if query.is_empty() => Ok(DEFAULT_DELIVERED),
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_DELIVERED).contains(n))
            .ok_or_else(|| {
                format!("delivered: limit={n}: expected a whole number from 1 to {MAX_DELIVERED}")
            }),
        None => Err(format!(
            "delivered: unknown parameter `{query}`: the only one is limit=N"
        )),
    }
}

/// The host services plugins call back into. Holds the router weakly: instances live
/// inside it, and a strong reference would keep it alive forever.
struct Services {
    pipeline: OnceLock<Weak<Pipeline>>,
}

impl Services {
    fn pipeline(&self) -> Result<Arc<Pipeline>, HostError> {
        self.pipeline
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| HostError::unavailable("the router is starting or stopping"))
    }
}

impl HostServices for Services {
    fn query(&self, sink: &str, path: &str) -> Result<String, HostError> {
        let pipeline = self.pipeline()?;
        let (resource, query) = path.split_once('?').unwrap_or((path, ""));
        match resource.trim_matches('/') {
            "status" => Ok(pipeline.status().to_string()),
            "delivered" => pipeline.delivered_to(sink, query),
            r if r.starts_with("state/") => pipeline
                .state
                .query(&r["state/".len()..], query)
                .map(|v| v.to_string())
                .map_err(|e| match e {
                    // As `GET /v1/state/...` answers 404 and 400.
                    QueryError::UnknownResource(_) => HostError::not_found(e.to_string()),
                    _ => HostError::bad_request(e.to_string()),
                }),
            other => Err(HostError::not_found(format!(
                "unknown resource `{other}`: ask for status, delivered or state/<portfolio|positions|trades|performance|equity|daily>"
            ))),
        }
    }

    fn emit(&self, sink: &str, event_json: &[u8]) -> Result<String, HostError> {
        let pipeline = self.pipeline()?;
        let mut events = ingest::parse_body(event_json, OffsetDateTime::now_utc())
            .map_err(|e| HostError::bad_request(e.to_string()))?;
        for e in &mut events {
            e.source.get_or_insert_with(|| sink.to_owned());
        }
        // Every refusal of a valid batch says "retry later" (`POST /v1/events` answers 503).
        let accepted = pipeline
            .ingest(events)
            .map_err(|e| HostError::unavailable(e.to_string()))?;
        serde_json::to_string(&accepted).map_err(|e| HostError::failed(e.to_string()))
    }

    fn render(&self, sink: &str, name: &str, context_json: &[u8]) -> Result<String, HostError> {
        self.pipeline()?.render_for_plugin(sink, name, context_json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivered_query_takes_a_limit_in_range_and_nothing_else() {
        assert_eq!(delivered_limit(""), Ok(DEFAULT_DELIVERED));
        assert_eq!(delivered_limit("limit=250"), Ok(250));
        assert_eq!(delivered_limit("limit=10000"), Ok(MAX_DELIVERED));
        for bad in ["limit=0", "limit=10001", "limit=ten"] {
            let e = delivered_limit(bad).unwrap_err();
            assert!(e.contains("a whole number from 1 to 10000"), "{bad}: {e}");
        }
        let e = delivered_limit("since=1h").unwrap_err();
        assert!(e.contains("unknown parameter `since=1h`"), "{e}");
    }

    /// A router with no sinks, on a scratch directory.
    fn router(dir: &crate::testing::TempDir) -> Arc<Pipeline> {
        dir.write("rules/default.yaml", "routes: []\n")
            .write("templates/.keep", "")
            .write("router.yaml", "sinks: {}\n");
        let path = dir.0.join("router.yaml");
        let text = std::fs::read_to_string(&path).expect("the config was written");
        let config = Config::parse(&path, &text, &|_| None).expect("a valid config");
        Pipeline::start(config, None).expect("the router starts")
    }

    fn kind(answer: Result<String, HostError>) -> alert_router_plugin::HostErrorKind {
        answer.expect_err("a failure").kind()
    }

    #[test]
    fn each_host_call_failure_has_the_kind_a_plugin_acts_on() {
        use alert_router_plugin::HostErrorKind::{BadRequest, NotFound, Unavailable};
        let dir = crate::testing::TempDir::new("host-services");
        let pipeline = router(&dir);
        let services = pipeline.services.clone();
        let query = |path: &str| services.query("dash", path);

        assert!(query("status").is_ok());
        assert!(query("state/trades?limit=5").is_ok());
        assert_eq!(kind(query("state/nope")), NotFound);
        assert_eq!(kind(query("metrics")), NotFound);
        assert_eq!(kind(query("state/trades?limit=ten")), BadRequest);
        assert_eq!(kind(query("state/trades?colour=red")), BadRequest);
        assert_eq!(kind(query("delivered?limit=0")), BadRequest);

        assert!(services.emit("dash", br#"{"type": "deploy"}"#).is_ok());
        assert_eq!(kind(services.emit("dash", b"{not json")), BadRequest);
        assert_eq!(
            kind(services.emit("dash", br#"{"no": "type"}"#)),
            BadRequest
        );
        // No sink `dash` runs, so it cannot render (yet, or any more).
        assert_eq!(kind(services.render("dash", "status", b"{}")), Unavailable);

        // Once the router is gone, every call says: not now.
        drop(pipeline);
        assert_eq!(kind(services.query("dash", "status")), Unavailable);
        assert_eq!(
            kind(services.emit("dash", br#"{"type": "x"}"#)),
            Unavailable
        );
        assert_eq!(kind(services.render("dash", "status", b"{}")), Unavailable);
        // And before it is there.
        let starting = Services {
            pipeline: OnceLock::new(),
        };
        let e = starting.query("dash", "status").expect_err("not started");
        assert_eq!(
            (e.kind(), e.message()),
            (Unavailable, "the router is starting or stopping")
        );
    }
}
