//! The running router: the snapshot in force (config, rules, templates, sinks) and the
//! path of every accepted event through it: dedup → rules → render → the outbox, which
//! the sinks' workers deliver from. A batch is written whole or refused whole (503 when
//! the outbox is full).
//!
//! One job per module: [`check`] reads a config into what can start, [`build`] starts it
//! (or reuses the running sinks on a reload) and [`changes`] says what a reload changed;
//! [`ingest`] moves events through the snapshot into the outbox; [`dead_letters`]
//! re-drives or drops dead letters; [`silencing`] sets and expires silences on request
//! (the API's and plugins'); [`status`] answers `/v1/status`; [`services`] answers the
//! plugins' host calls (query, emit, render, request).

mod build;
mod changes;
mod check;
mod dead_letters;
mod ingest;
mod services;
mod silencing;
mod status;
mod tally;
pub mod timers;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwap;
use time::OffsetDateTime;

use crate::config::{Config, SinkConfig};
use crate::derive::eval::Evaluator;
use crate::diag::{Diagnostic, Diagnostics};
use crate::dispatch::{SinkStats, Worker};
use crate::domains::Stores;
use crate::event::format_time;
use crate::ingest::Dedup;
use crate::notify::engine::Notifier;
use crate::notify::silences::Silences;
use crate::outbox::Outbox;
use crate::plugins::{Catalog, Plugin};
use crate::render::Templates;
use crate::restart::Fixed;
use crate::rules::Rules;

use build::{build, retire};
pub use check::{CannotStart, Checked, check};
pub use dead_letters::{Retried, Skipped};
pub use ingest::{Accepted, Counters, IngestError, OTHER_TYPES, Prepared, TYPE_SERIES};
use services::Services;
pub use silencing::SetSilence;

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
/// The router.
pub struct Pipeline {
    snapshot: ArcSwap<Snapshot>,
    /// The registered domains' state (trading's portfolio, positions...), fed by every
    /// accepted event of a type they keep.
    pub stores: Stores,
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
    /// Alerts, groups, silences, throttles: what outlives a reload.
    pub notifier: Arc<Notifier>,
    /// Alert rules' series: what outlives a reload too.
    pub evaluator: Evaluator,
    /// When each schedule last ran.
    pub schedule_runs: crate::derive::schedules::Runs,
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

/// Where, inside `storage.path`, the running router copies plugin files before loading
/// them.
pub const PLUGIN_COPIES: &str = "plugin-copies";

impl Pipeline {
    /// Loads `config`, starts every enabled sink that can start, and returns the router.
    /// Settings a plugin refuses are an error, as they are for `check` and a reload.
    /// `listen_flag` is the address `run --listen` gave instead of `server.listen`, so a
    /// reload knows a changed `server.listen` would not apply even after a restart.
    /// Plugin instances are created on the calling thread: call it off the async runtime.
    pub fn start(
        config: Config,
        listen_flag: Option<std::net::SocketAddr>,
    ) -> Result<Arc<Pipeline>, Diagnostics> {
        Pipeline::start_with(config, listen_flag, false)
    }

    /// A router that only shows what it would send: each sink's messages go to
    /// `capture` instead of its plugin (whose manifest and `validate` still judge the
    /// config), on `config.storage.path` (a scratch directory: `alert-router test` and
    /// `replay`). No timer thread runs: the caller moves the clock and calls
    /// [`Pipeline::tick`].
    pub fn start_capturing(
        config: Config,
        capture: crate::plugins::Capture,
    ) -> Result<Arc<Pipeline>, Diagnostics> {
        Pipeline::start_inner(config, None, false, Some(capture))
    }

    /// Like [`Pipeline::start`]; with `accept_data_loss`, an outbox that lost commits
    /// (`run --accept-data-loss`) is used as it is instead of refused.
    pub fn start_with(
        config: Config,
        listen_flag: Option<std::net::SocketAddr>,
        accept_data_loss: bool,
    ) -> Result<Arc<Pipeline>, Diagnostics> {
        Pipeline::start_inner(config, listen_flag, accept_data_loss, None)
    }

    fn start_inner(
        config: Config,
        listen_flag: Option<std::net::SocketAddr>,
        accept_data_loss: bool,
        capture: Option<crate::plugins::Capture>,
    ) -> Result<Arc<Pipeline>, Diagnostics> {
        let storage_error = |e: &dyn std::fmt::Display| {
            Diagnostics::from(Diagnostic::file(&config.path, format!("storage.path: {e}")))
        };
        // The outbox first: it locks the storage directory against a second router.
        let opened = if accept_data_loss {
            Outbox::open_despite_loss(&config.storage)
        } else {
            Outbox::open(&config.storage)
        }
        .map_err(|e| storage_error(&e))?;
        let copies = config.storage.path.join(PLUGIN_COPIES);
        let catalog = Catalog::new(config.plugin_dirs.clone())
            .strict_modes(config.plugin_strict_modes)
            .copying_in(copies.clone())
            .map_err(|e| storage_error(&format!("{}: {e}", copies.display())))?;
        let catalog = Arc::new(catalog);
        let stores = Stores::open(&config.storage.path).map_err(|e| storage_error(&e))?;
        let dedup = Dedup::new(config.storage.dedup_window);
        let now = crate::clock::now();
        let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        for (id, age) in opened.seen {
            dedup.remember(id, age, now_ms);
        }
        let outbox = opened.outbox;
        let mut stored_notify = opened.notify;
        let stored_series = std::mem::take(&mut stored_notify.series);
        let stored_runs = std::mem::take(&mut stored_notify.schedule_runs);
        let silences = Silences::open(
            &config.storage.path,
            config.storage.sync,
            crate::clock::now(),
        )
        .map_err(|e| storage_error(&e))?;
        let fixed = Fixed::new(&config, listen_flag);
        let checked = check(config, &catalog)?;
        // Settings a plugin refuses (its manifest or its `validate`) are a config error,
        // as they are for `check` and a reload: better no router than one that runs
        // without a sink the operator believes configured. A plugin that cannot be
        // loaded, or a `create` that fails for a reason only running tells (a port in
        // use), leaves that sink broken and the others running.
        let mut refused = Diagnostics::default();
        for loaded in checked.plugins.values() {
            if let Err(CannotStart::Settings(problems)) = loaded {
                refused.extend(problems.clone());
            }
        }
        if !refused.is_empty() {
            return Err(refused);
        }
        let services = Arc::new(Services {
            pipeline: OnceLock::new(),
            capture,
        });
        let built = build(checked, &services, &outbox, None)?;
        let notifier = Arc::new(Notifier::restore(
            stored_notify,
            Arc::new(silences),
            &built.snapshot.rules,
            crate::clock::now_ms(),
        ));
        let evaluator = Evaluator::restore(stored_series, &built.snapshot.rules);
        let schedule_runs = crate::derive::schedules::Runs::restore(
            stored_runs,
            built.snapshot.rules.schedules(),
            crate::clock::now(),
        );
        let pipeline = Arc::new(Pipeline {
            snapshot: ArcSwap::from_pointee(built.snapshot),
            stores,
            catalog: Mutex::new(catalog),
            services: services.clone(),
            outbox,
            dedup,
            counters: Counters::default(),
            started: Instant::now(),
            fixed,
            reloading: Mutex::new(()),
            reloads: ReloadLog::default(),
            notifier,
            evaluator,
            schedule_runs,
        });
        let _ = services.pipeline.set(Arc::downgrade(&pipeline));
        Ok(pipeline)
    }

    /// Loads, checks and builds the config file of `current` beside it.
    fn try_reload(&self, current: &Arc<Snapshot>) -> Result<build::Built, Diagnostics> {
        Config::load(&current.config.path).and_then(|config| {
            let catalog = {
                let mut c = self.catalog.lock().unwrap_or_else(|e| e.into_inner());
                if c.dirs()[..c.dirs().len().saturating_sub(1)] != config.plugin_dirs[..]
                    || c.is_strict() != config.plugin_strict_modes
                {
                    let catalog = c.with_dirs(config.plugin_dirs.clone());
                    *c = Arc::new(catalog.strict_modes(config.plugin_strict_modes));
                }
                c.clone()
            };
            let checked = check(config, &catalog)?;
            build(checked, &self.services, &self.outbox, Some(current))
        })
    }

    /// Reads the config file again and, if everything in it checks out, swaps the new
    /// snapshot in; otherwise the running one stays and the errors are reported. Events
    /// arriving meanwhile are routed by the snapshot in force when they arrive; sinks that
    /// are gone drain their queues. Blocking (plugin `create`); one reload at a time.
    pub fn reload(&self, trigger: &str) -> ReloadOutcome {
        let _one = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let current = self.snapshot.load_full();
        // Whatever a config holds, a reload ends in an outcome: a panic in it (a bug) is a
        // failed reload in /v1/status, and the reload thread lives on.
        let attempt = std::panic::AssertUnwindSafe(|| self.try_reload(&current));
        let result = std::panic::catch_unwind(attempt).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            Err(Diagnostic::file(
                &current.config.path,
                format!("the reload stopped on an internal error ({what}); the running config stays in force: please report it"),
            )
            .into())
        });
        let outcome = match result {
            Ok(built) => {
                let mut changes = self.server_changes(&current.config, &built.snapshot.config);
                changes.extend(built.changes);
                changes.extend(
                    self.notifier
                        .reconfigure(&built.snapshot.rules, crate::clock::now_ms()),
                );
                changes.extend(self.evaluator.reconfigure(&built.snapshot.rules));
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
    /// Delivers what it can until `deadline`, then stops every sink and destroys the
    /// plugin instances. What is left stays in the outbox for the next start; returns
    /// (sink, messages left) for each sink that has some.
    pub fn shutdown(&self, deadline: Instant) -> Vec<(String, u64)> {
        self.write_series();
        for e in self.stores.flush() {
            tracing::error!(error = %e, "a domain's state could not save everything");
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
        if let Err(e) = self.outbox.checkpoint() {
            tracing::warn!(error = %e, "the outbox's write-ahead log was not folded into its database file");
        }
        let (_, waiting) = self.outbox.waiting_all();
        waiting.into_iter().map(|(s, c)| (s, c.messages)).collect()
    }
}
