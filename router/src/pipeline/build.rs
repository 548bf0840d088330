//! Building a snapshot from a checked config: plugin instances created, workers started
//! or reused (a reload keeps queues, counters and rate-limit budgets), and the workers of
//! removed sinks retired once nothing routes to them any more.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::changes::{rule_changes, template_changes};
use super::check::{CannotStart, Checked, process_options, refused};
use super::services::Services;
use super::{BrokenSink, SinkEntry, Snapshot};
use crate::config::{Config, SinkConfig};
use crate::diag::{Diagnostic, Diagnostics};
use crate::dispatch::{Delivering, SinkStats, Worker};
use crate::outbox::Outbox;
use crate::plugins::{HostServices, Instance, Plugin, PluginError};

/// Stops the workers of sinks a reload removed: once no ingest holds the old snapshot
/// (so nothing more is written for them), each delivers what waits for it, then its
/// plugin instance is destroyed. Runs on its own thread; the reload does not wait.
pub(super) fn retire(old: Arc<Snapshot>, workers: Vec<(String, Arc<Worker>)>, outbox: Arc<Outbox>) {
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
pub(super) struct Built {
    pub(super) snapshot: Snapshot,
    pub(super) changes: Vec<String>,
    /// Sinks of the previous snapshot that are gone: drained, then destroyed.
    pub(super) retired: Vec<(String, Arc<Worker>)>,
    /// What `check` warned of (a template that fails on a sample event).
    pub(super) warnings: Vec<String>,
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
pub(super) fn build(
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
        plugin_copies,
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
                Arc::ptr_eq(&r.plugin, &plugin)
                    && r.config.settings == sink.settings
                    && r.config.isolation == sink.isolation
                    && r.config.deliver_timeout == sink.deliver_timeout
            });
            let plan = match running {
                Some(r) if unchanged => Plan::Keep(r.worker.clone()),
                _ => {
                    let instance = create(&plugin, &name, &sink, &config, &plugin_copies, services)
                        .map_err(|e| {
                            CannotStart::Settings(refused(&config, &name, &sink, e).into())
                        })?;
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

/// Creates sink `name`'s instance where its `isolation` says (by default, where the
/// plugin file is).
fn create(
    plugin: &Arc<Plugin>,
    name: &str,
    sink: &SinkConfig,
    config: &Config,
    copies: &Path,
    services: &Arc<Services>,
) -> Result<Instance, PluginError> {
    if let Some(capture) = &services.capture {
        return Ok(Instance::capture(plugin.clone(), name, capture.clone()));
    }
    let services = services.clone() as Arc<dyn HostServices>;
    match process_options(config, sink, plugin, copies)? {
        None => plugin.create(name, &sink.settings, services),
        Some(options) => plugin.create_isolated(name, &sink.settings, services, options),
    }
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
