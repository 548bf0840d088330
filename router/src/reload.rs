//! What starts a reload: a change to a file the config uses (watched with notify and a
//! debouncer), SIGHUP, or `POST /v1/reload`. Watches directories, not files, because
//! editors save by rename and Kubernetes swaps a symlink; reacts only to the files the
//! router reads (`*.yaml`, `*.yml`, `.env`, `*.so`), so a sink writing its own output
//! next to the config does not trigger anything. A burst of saves is one reload.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use crate::config::Config;
use crate::pipeline::Pipeline;

/// The file watcher's debounce: long enough to pair a rename's two halves.
const DEBOUNCE: Duration = Duration::from_millis(20);

/// Quiet time after the last change before reloading: editors write several times per
/// save, and the budget from a write to the new config in force is 250 ms.
const QUIET: Duration = Duration::from_millis(60);

/// The longest a reload waits for quiet while changes keep coming.
const MAX_DELAY: Duration = Duration::from_secs(1);

/// Quiet time after the last change to a plugin file: a large library copied in, or
/// one written in parts, should be whole before it is loaded. (One that is not, because
/// its writer paused longer, is refused by the loader's check of its ELF headers, and
/// the reload with it; the running plugins stay.)
const PLUGIN_QUIET: Duration = Duration::from_secs(1);

/// The longest a reload waits for a plugin file that keeps changing.
const PLUGIN_MAX_DELAY: Duration = Duration::from_secs(30);

/// What the watcher sends for a changed plugin file; the reload is still a `file` one.
const PLUGIN_FILE: &str = "plugin file";

/// Starts reloads from elsewhere (the SIGHUP handler).
#[derive(Clone)]
pub struct Trigger(Sender<&'static str>);

impl Trigger {
    /// Asks for a reload; `why` is logged and shown in `/v1/status` (`file`, `signal`).
    pub fn reload(&self, why: &'static str) {
        let _ = self.0.send(why);
    }
}

/// Starts the reload thread and the file watcher. Reloads run one at a time on that
/// thread; triggers that arrive while one runs are folded into one more.
pub fn start(pipeline: Arc<Pipeline>) -> std::io::Result<Trigger> {
    let (tx, rx) = channel();
    let trigger = Trigger(tx.clone());
    // Watch before returning, so a change made as soon as the router is up is seen.
    let mut watching = Watching::default();
    let storage = pipeline.storage().path.clone();
    watching.update(&pipeline.snapshot().config, &storage, &tx);
    std::thread::Builder::new()
        .name("reload".into())
        .spawn(move || run(pipeline, watching, storage, tx, rx))?;
    Ok(trigger)
}

fn run(
    pipeline: Arc<Pipeline>,
    mut watching: Watching,
    storage: PathBuf,
    tx: Sender<&'static str>,
    rx: Receiver<&'static str>,
) {
    while let Ok(mut why) = rx.recv() {
        // Wait for a quiet moment, folding the triggers that come meanwhile into this
        // reload: a burst of saves is one reload. A steady stream still reloads every
        // MAX_DELAY, so the newest files are never kept waiting for long; a plugin file
        // gets longer, to be written whole.
        let first = Instant::now();
        let mut plugin = why == PLUGIN_FILE;
        loop {
            let (quiet, max_delay) = if plugin {
                (PLUGIN_QUIET, PLUGIN_MAX_DELAY)
            } else {
                (QUIET, MAX_DELAY)
            };
            match rx.recv_timeout(quiet) {
                Ok(more) => {
                    plugin |= more == PLUGIN_FILE;
                    if why == "file" || why == PLUGIN_FILE {
                        why = more;
                    }
                    if first.elapsed() >= max_delay {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        if why == PLUGIN_FILE {
            why = "file";
        }
        let outcome = pipeline.reload(why);
        if outcome.ok {
            watching.update(&pipeline.snapshot().config, &storage, &tx);
        }
    }
}

/// The directories being watched, and the watcher doing it.
#[derive(Default)]
struct Watching {
    dirs: BTreeSet<(PathBuf, bool)>,
    debouncer: Option<Debouncer<notify::RecommendedWatcher, RecommendedCache>>,
}

impl Watching {
    /// Watches what `config` uses, if that changed since the last call, leaving out
    /// `storage`, the data directory in force (the router's own writes are no change).
    fn update(&mut self, config: &Config, storage: &Path, tx: &Sender<&'static str>) {
        let dirs = watched_dirs(config);
        if dirs == self.dirs && self.debouncer.is_some() {
            return;
        }
        let storage = storage.to_path_buf();
        let tx = tx.clone();
        let handler = move |result: DebounceEventResult| match result {
            Ok(events) => {
                // Reading a file is reported too (inotify's open and close): the reload
                // itself reads every file, so only writes, creations and removals count.
                let changed: Vec<&Path> = events
                    .iter()
                    .filter(|e| !matches!(e.kind, notify::EventKind::Access(_)))
                    .flat_map(|e| e.paths.iter())
                    .map(PathBuf::as_path)
                    .filter(|p| relevant(p, &storage))
                    .collect();
                if changed.iter().any(|p| is_plugin_file(p)) {
                    let _ = tx.send(PLUGIN_FILE);
                } else if !changed.is_empty() {
                    let _ = tx.send("file");
                }
            }
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "file watcher error");
                }
            }
        };
        let mut debouncer = match new_debouncer(DEBOUNCE, None, handler) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch files; reload with SIGHUP or POST /v1/reload");
                return;
            }
        };
        for (dir, recursive) in &dirs {
            let mode = if *recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            if let Err(e) = debouncer.watch(dir, mode) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch this directory; changes in it need SIGHUP or POST /v1/reload");
            }
        }
        tracing::debug!(dirs = ?dirs, "watching for config changes");
        self.dirs = dirs;
        self.debouncer = Some(debouncer);
    }
}

/// The directories holding what the router reads: the config file's, the rules', the
/// templates' (with subdirectories), and the plugin directories. Missing ones are left
/// out (and picked up at the next successful reload that finds them).
fn watched_dirs(config: &Config) -> BTreeSet<(PathBuf, bool)> {
    let mut dirs = BTreeSet::new();
    let mut add = |path: &Path, recursive: bool| {
        if path.is_dir() {
            dirs.insert((path.to_path_buf(), recursive));
        }
    };
    let parent = |p: &Path| {
        p.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    };
    add(&parent(&config.path), false);
    for rules in &config.rules {
        if rules.is_dir() {
            add(rules, true)
        } else {
            add(&parent(rules), false)
        }
    }
    add(&config.templates, true);
    for dir in &config.plugin_dirs {
        add(dir, false);
    }
    dirs
}

fn is_plugin_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "so")
}

/// Whether a change to `path` can change the router's config.
fn relevant(path: &Path, storage: &Path) -> bool {
    if path.starts_with(storage) {
        return false;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == ".env"
        || matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "so")
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_the_router_reads_count() {
        let storage = Path::new("/etc/ar/data");
        assert!(relevant(Path::new("/etc/ar/router.yaml"), storage));
        assert!(relevant(Path::new("/etc/ar/rules/a.yml"), storage));
        assert!(relevant(Path::new("/etc/ar/.env"), storage));
        assert!(relevant(Path::new("/opt/plugins/libslack.so"), storage));
        assert!(!relevant(Path::new("/etc/ar/out.jsonl"), storage));
        assert!(!relevant(Path::new("/etc/ar/.router.yaml.swp"), storage));
        assert!(!relevant(Path::new("/etc/ar/router.yaml~"), storage));
        assert!(!relevant(Path::new("/etc/ar/4913"), storage));
        assert!(!relevant(Path::new("/etc/ar/data/state.yaml"), storage));
    }
}
