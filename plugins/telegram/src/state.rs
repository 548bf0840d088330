//! What the bot must not forget: the next update to ask Telegram for (so no update is
//! answered twice) and the running mute. Kept per bot in memory for the whole process,
//! so a reload that recreates the sink keeps it, and in `<state_dir>/telegram-<bot
//! id>.json` when `state_dir` is set, so a restart keeps it too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde::{Deserialize, Serialize};

use crate::mute::MuteState;

/// The state file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    /// The first update id not handled yet (`getUpdates`' `offset`).
    #[serde(default)]
    pub offset: i64,
    #[serde(default)]
    pub mute: MuteState,
}

/// One bot's state, shared by every sink instance of that bot in this process.
#[derive(Debug, Clone)]
pub struct StateStore {
    inner: Arc<Mutex<Persisted>>,
    path: Option<PathBuf>,
}

/// Per bot id: the state every instance of that bot shares. Instances come and go on
/// reloads; a few bytes per bot stay for the life of the process.
fn registry() -> &'static Mutex<HashMap<u64, Arc<Mutex<Persisted>>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<u64, Arc<Mutex<Persisted>>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep using it.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl StateStore {
    /// Opens the state of bot `bot_id`, merging what this process already knows with
    /// the state file under `state_dir`. Returns the store and, when the file was
    /// unreadable, a warning for the log (the bot then starts from what memory holds).
    pub fn open(
        bot_id: u64,
        state_dir: Option<&Path>,
    ) -> Result<(StateStore, Option<String>), String> {
        let path = match state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    format!("settings.state_dir: cannot create {}: {e}", dir.display())
                })?;
                Some(dir.join(format!("telegram-{bot_id}.json")))
            }
            None => None,
        };
        let (from_file, warning) = match &path {
            Some(path) => read(path),
            None => (None, None),
        };
        let inner = {
            let mut registry = lock(registry());
            registry.entry(bot_id).or_default().clone()
        };
        {
            let mut state = lock(&inner);
            if let Some(file) = from_file {
                state.offset = state.offset.max(file.offset);
                if state.mute.current.is_none() {
                    state.mute = file.mute;
                }
            }
        }
        let store = StateStore { inner, path };
        store.save();
        Ok((store, warning))
    }

    /// The offset to poll from.
    pub fn offset(&self) -> i64 {
        lock(&self.inner).offset
    }

    /// Claims update `update_id` for answering: `true` exactly once per update, also
    /// across instances and restarts. The new offset is saved before the caller
    /// answers, so a crash in between loses an answer rather than repeating it.
    pub fn claim(&self, update_id: i64) -> Result<bool, String> {
        {
            let mut state = lock(&self.inner);
            if update_id < state.offset {
                return Ok(false);
            }
            state.offset = update_id + 1;
        }
        self.try_save().map(|()| true)
    }

    /// Reads or changes the mute state, saving it afterwards.
    pub fn with_mute<T>(&self, f: impl FnOnce(&mut MuteState) -> T) -> T {
        let (out, changed) = {
            let mut state = lock(&self.inner);
            let before = state.mute.clone();
            let out = f(&mut state.mute);
            (out, state.mute != before)
        };
        if changed {
            self.save();
        }
        out
    }

    /// Saves, ignoring errors (the caller logs what `try_save` reports where it matters).
    fn save(&self) {
        let _ = self.try_save();
    }

    /// Writes the state file (to a temporary name, then renamed over the old one).
    pub fn try_save(&self) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let json = {
            let state = lock(&self.inner);
            serde_json::to_vec_pretty(&*state)
                .map_err(|e| format!("cannot encode the bot state: {e}"))?
        };
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

fn read(path: &Path) -> (Option<Persisted>, Option<String>) {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<Persisted>(&bytes) {
            Ok(state) => (Some(state), None),
            Err(e) => (
                None,
                Some(format!(
                    "ignoring the state file {}: it is not valid ({e}); it will be rewritten",
                    path.display()
                )),
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
        Err(e) => (
            None,
            Some(format!(
                "cannot read the state file {}: {e}",
                path.display()
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("telegram-state-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn an_update_is_claimed_once() {
        let (store, _) = StateStore::open(900_001, None).expect("open");
        assert_eq!(store.claim(10), Ok(true));
        assert_eq!(store.claim(10), Ok(false));
        assert_eq!(store.claim(9), Ok(false));
        assert_eq!(store.claim(11), Ok(true));
        assert_eq!(store.offset(), 12);
    }

    #[test]
    fn instances_of_one_bot_share_their_state() {
        let (first, _) = StateStore::open(900_002, None).expect("open");
        let (second, _) = StateStore::open(900_002, None).expect("open");
        assert_eq!(first.claim(5), Ok(true));
        assert_eq!(second.claim(5), Ok(false));
    }

    #[test]
    fn the_file_keeps_offset_and_mute_across_restarts() {
        let dir = temp_dir("restart");
        let (store, warning) = StateStore::open(900_003, Some(&dir)).expect("open");
        assert_eq!(warning, None);
        store.claim(41).expect("saved");
        store.with_mute(|m| m.start(Duration::from_secs(600), None, Some(1), 100));
        let text = std::fs::read_to_string(dir.join("telegram-900003.json")).expect("file");
        let saved: Persisted = serde_json::from_str(&text).expect("json");
        assert_eq!(saved.offset, 42);
        assert_eq!(saved.mute.until(), Some(700));
        // A new process: nothing in memory for this bot id, only the file.
        lock(registry()).remove(&900_003);
        let (again, _) = StateStore::open(900_003, Some(&dir)).expect("reopen");
        assert_eq!(again.offset(), 42);
        assert_eq!(again.with_mute(|m| m.until()), Some(700));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_file_is_reported_and_replaced() {
        let dir = temp_dir("corrupt");
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("telegram-900004.json");
        std::fs::write(&file, "{not json").expect("write");
        let (store, warning) = StateStore::open(900_004, Some(&dir)).expect("open");
        let warning = warning.expect("a warning");
        assert!(warning.contains("telegram-900004.json"), "{warning}");
        store.claim(1).expect("saved");
        let text = std::fs::read_to_string(&file).expect("file");
        assert!(text.contains("\"offset\": 2"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
