//! Silences, as Alertmanager has them: matchers and a time window; while a silence is
//! active, the events it matches are held back. [`Silences`] is the store: kept in SQLite
//! (`<storage dir>/silences.db`, every write committed before it returns) and in memory
//! for matching, which runs for every routed event. The JSON the HTTP API reads
//! ([`NewSilence`]) and writes ([`SilenceView`]) is defined here.
//!
//! Time is always passed in (`now`): nothing here reads the clock, so tests and the
//! router's controllable clock decide what is pending, active or expired.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use rusqlite::{Connection, params};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::matchers::Matcher;
use crate::config::SyncMode;
use crate::event::{Event, format_time};
use alert_router_domain::describe_value;
use alert_router_sqlite as sqlite;

/// The database's file name in the storage directory.
pub const FILE: &str = "silences.db";
/// How long an expired silence is kept (listed, editable into a new one) before it is
/// pruned: Alertmanager's default, 120 h.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(120 * 3600);
/// Matchers in one silence, at most.
pub const MAX_MATCHERS: usize = 64;
/// A comment's length in characters, at most.
pub const MAX_COMMENT_CHARS: usize = 1024;
/// `created_by`'s length in characters, at most.
pub const MAX_AUTHOR_CHARS: usize = 256;

const SCHEMA_VERSION: i64 = 1;
const UPGRADES: [&str; 0] = [];
/// Times are RFC 3339 in UTC (readable with the sqlite3 shell); `matchers` is a JSON
/// array of `{"name", "op", "value"}`; `seq` orders silences by creation.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    matchers TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
";

/// Where a silence is at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// It starts later.
    Pending,
    /// It holds back what it matches.
    Active,
    /// It ended (or was expired).
    Expired,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Active => "active",
            State::Expired => "expired",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One silence. Times are in UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    /// A UUID v7, from the instant it was created.
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    pub starts_at: OffsetDateTime,
    pub ends_at: OffsetDateTime,
    pub created_by: String,
    /// May be empty (see [`NewSilence::comment`]).
    pub comment: String,
    pub updated_at: OffsetDateTime,
}

impl Silence {
    /// Pending before `starts_at`, active from it until `ends_at`, expired from then.
    pub fn state(&self, now: OffsetDateTime) -> State {
        if now < self.starts_at {
            State::Pending
        } else if now < self.ends_at {
            State::Active
        } else {
            State::Expired
        }
    }

    /// Whether the matchers match `event`, whatever the state.
    pub fn matches(&self, event: &Event) -> bool {
        super::matchers::matches_all(&self.matchers, event)
    }
}

/// A silence as the API shows it: with its state at the instant asked and how many events
/// it held back. Serialized as `{"id", "state", "matchers": ["name=\"value\"", ...],
/// "starts_at", "ends_at", "created_by", "comment", "updated_at", "held_back"}`, times
/// RFC 3339 in UTC, matchers in their text form (which `POST /v1/silences` reads back).
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceView {
    pub silence: Silence,
    pub state: State,
    pub held_back: u64,
}

impl Serialize for SilenceView {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let s = &self.silence;
        let matchers: Vec<String> = s.matchers.iter().map(Matcher::to_string).collect();
        let mut out = serializer.serialize_struct("Silence", 9)?;
        out.serialize_field("id", &s.id)?;
        out.serialize_field("state", &self.state)?;
        out.serialize_field("matchers", &matchers)?;
        out.serialize_field("starts_at", &format_time(s.starts_at))?;
        out.serialize_field("ends_at", &format_time(s.ends_at))?;
        out.serialize_field("created_by", &s.created_by)?;
        out.serialize_field("comment", &s.comment)?;
        out.serialize_field("updated_at", &format_time(s.updated_at))?;
        out.serialize_field("held_back", &self.held_back)?;
        out.end()
    }
}

/// When a new silence ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ends {
    At(OffsetDateTime),
    /// This long after it starts (after now, when the start has passed).
    After(Duration),
}

/// A silence to create, or to change (`id`). Read from `POST /v1/silences`'s body by
/// [`NewSilence::from_json`] (or `Deserialize`):
///
/// ```json
/// {"matchers": ["labels.exchange=binance", {"name": "type", "op": "=~", "value": "err.*"}],
///  "starts_at": "2026-12-04T18:00:00Z", "ends_at": "2026-12-04T20:00:00Z",
///  "created_by": "ana", "comment": "exchange maintenance"}
/// ```
///
/// `matchers` may also be one string (`"a=b,c=~d.*"`) and each one an Alertmanager
/// `{"name", "value", "isRegex", "isEqual"}`; `duration` (`"2h"`, or seconds as a
/// number) may stand for `ends_at`; `starts_at` defaults to now; `id` changes that silence
/// (see [`Silences::add`]). The read-only keys of [`SilenceView`] (`state`, `updated_at`,
/// `held_back`) are ignored, so a listed silence can be edited and posted back.
/// Everything is checked by [`Silences::add`], which names the field at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSilence {
    pub id: Option<String>,
    pub matchers: Vec<Matcher>,
    pub starts_at: Option<OffsetDateTime>,
    /// Required for a new silence; a change without it keeps the silence's end.
    pub ends: Option<Ends>,
    /// Required: who silenced, for whoever wonders later why events went missing.
    pub created_by: String,
    /// Optional (Alertmanager's API requires one; a silence typed in a chat or a shell
    /// should not need one): the author's name and the matchers already say a lot.
    pub comment: String,
}

const NEW_KEYS: [&str; 7] = [
    "id",
    "matchers",
    "starts_at",
    "ends_at",
    "duration",
    "created_by",
    "comment",
];
const READ_ONLY_KEYS: [&str; 3] = ["state", "updated_at", "held_back"];

impl NewSilence {
    /// Reads the JSON of `POST /v1/silences` (see [`NewSilence`]); errors name the field.
    pub fn from_json(value: Value) -> Result<NewSilence, SilenceError> {
        let Value::Object(map) = value else {
            return Err(SilenceError::body(format!(
                "a silence is a JSON object such as {{\"matchers\": [\"type=error\"], \"duration\": \"2h\", \"created_by\": \"ana\"}}, got {}",
                describe_value(&value)
            )));
        };
        for key in map.keys() {
            if !NEW_KEYS.contains(&key.as_str()) && !READ_ONLY_KEYS.contains(&key.as_str()) {
                let hint = match crate::diag::closest(key, NEW_KEYS) {
                    Some(k) => format!(" (did you mean `{k}`?)"),
                    None => String::new(),
                };
                return Err(SilenceError::field(
                    key,
                    format!(
                        "unknown key{hint}: a silence has matchers, starts_at, ends_at or duration, created_by, comment, and id to change one"
                    ),
                ));
            }
        }
        let text = |key: &str| -> Result<Option<String>, SilenceError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(SilenceError::field(
                    key,
                    format!("expected a string, got {}", describe_value(other)),
                )),
            }
        };
        let instant = |key: &str| -> Result<Option<OffsetDateTime>, SilenceError> {
            text(key)?
                .map(|s| {
                    OffsetDateTime::parse(&s, &Rfc3339).map_err(|e| {
                        SilenceError::field(
                            key,
                            format!(
                                "{s:?} is not an RFC 3339 time ({e}), e.g. \"2026-12-04T18:00:00Z\""
                            ),
                        )
                    })
                })
                .transpose()
        };
        let matchers = match map.get("matchers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(list)) => super::matchers::parse_list(list)
                .map_err(|e| SilenceError::field("matchers", e.to_string()))?,
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    Matcher::from_json(item)
                        .map_err(|e| SilenceError::field(format!("matchers[{i}]"), e.to_string()))
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(SilenceError::field(
                    "matchers",
                    format!(
                        "expected a list of matchers such as [\"type=error\"], got {}",
                        describe_value(other)
                    ),
                ));
            }
        };
        let ends_at = instant("ends_at")?;
        let duration = match map.get("duration") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                return Err(SilenceError::field(
                    "duration",
                    format!(
                        "expected a duration such as \"2h\", got {}",
                        describe_value(other)
                    ),
                ));
            }
        };
        let ends = match (ends_at, duration) {
            (Some(_), Some(_)) => {
                return Err(SilenceError::field(
                    "duration",
                    "give ends_at or duration, not both",
                ));
            }
            (Some(at), None) => Some(Ends::At(at)),
            (None, Some(d)) => Some(Ends::After(
                crate::config::parse_duration(&d)
                    .map_err(|e| SilenceError::field("duration", e))?,
            )),
            (None, None) => None,
        };
        Ok(NewSilence {
            // Alertmanager's clients send an empty id for a new silence.
            id: text("id")?.filter(|id| !id.is_empty()),
            matchers,
            starts_at: instant("starts_at")?,
            ends,
            created_by: text("created_by")?.unwrap_or_default(),
            comment: text("comment")?.unwrap_or_default(),
        })
    }
}

impl<'de> Deserialize<'de> for NewSilence {
    /// As [`NewSilence::from_json`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<NewSilence, D::Error> {
        let value = Value::deserialize(deserializer)?;
        NewSilence::from_json(value).map_err(serde::de::Error::custom)
    }
}

/// Why a silence could not be set, expired or stored.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// The request is wrong; `field` names the key at fault, when one is.
    #[error("{}{message}", field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
    Invalid {
        field: Option<String>,
        message: String,
    },
    #[error("no silence has the id {0:?}: `alert-router silence list --all` shows them")]
    NotFound(String),
    #[error("silence {id} has already expired (at {ends_at})")]
    AlreadyExpired { id: String, ends_at: String },
    #[error("cannot create the storage directory {}: {source} (check `storage.path` and its permissions)", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the silences database {} has schema version {found}, this router knows version {known}: run the router that wrote it, or move the file away (its silences are then lost)",
        path.display()
    )]
    Schema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// SQLite failed, or a stored row does not read back.
    #[error("the silences database {}: {message}", path.display())]
    Storage { path: PathBuf, message: String },
}

impl SilenceError {
    fn field(field: impl Into<String>, message: impl Into<String>) -> SilenceError {
        SilenceError::Invalid {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    fn body(message: impl Into<String>) -> SilenceError {
        SilenceError::Invalid {
            field: None,
            message: message.into(),
        }
    }

    /// The HTTP status that answers it: 400 for a wrong request, 404 for an unknown id,
    /// 409 for expiring an expired silence, 500 for the database.
    pub fn http_status(&self) -> u16 {
        match self {
            SilenceError::Invalid { .. } => 400,
            SilenceError::NotFound(_) => 404,
            SilenceError::AlreadyExpired { .. } => 409,
            _ => 500,
        }
    }
}

/// One silence in memory.
#[derive(Debug)]
struct Entry {
    seq: i64,
    silence: Silence,
    /// Events held back: in memory only, so it counts from the router's start.
    held_back: AtomicU64,
}

/// The store. Writes go to SQLite first, then to the in-memory copy, one at a time (the
/// database's mutex); reads and matching use the copy.
#[derive(Debug)]
pub struct Silences {
    path: PathBuf,
    db: Mutex<Connection>,
    /// Newest first (by `seq`).
    live: RwLock<Vec<Entry>>,
    /// The Unix second from which no silence is pending or active (the latest end, rounded
    /// up); `i64::MIN` with none. With nothing silenced, matching is this one load.
    quiet_from: AtomicI64,
    retention: Duration,
}

/// How a change lands: `add` decides, then writes.
enum Change {
    New,
    /// The same id, changed.
    InPlace,
    /// The old one (active) expires now and a new one takes over.
    Replace(Silence),
}

impl Silences {
    /// Opens (or creates) `<dir>/silences.db`, loads its silences and prunes those expired
    /// longer than [`DEFAULT_RETENTION`] before `now`.
    pub fn open(dir: &Path, sync: SyncMode, now: OffsetDateTime) -> Result<Silences, SilenceError> {
        Silences::open_with_retention(dir, sync, DEFAULT_RETENTION, now)
    }

    /// [`Silences::open`] keeping expired silences for `retention`.
    pub fn open_with_retention(
        dir: &Path,
        sync: SyncMode,
        retention: Duration,
        now: OffsetDateTime,
    ) -> Result<Silences, SilenceError> {
        std::fs::create_dir_all(dir).map_err(|source| SilenceError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(FILE);
        let conn = sqlite::open(&path, sync.pragma(), SCHEMA, SCHEMA_VERSION, &UPGRADES).map_err(
            |e| match e {
                sqlite::OpenError::Sqlite(e) => SilenceError::Storage {
                    path: path.clone(),
                    message: format!(
                        "cannot open it: {e} (is the disk full, or the file not a SQLite database?)"
                    ),
                },
                sqlite::OpenError::Schema { found, known } => SilenceError::Schema {
                    path: path.clone(),
                    found,
                    known,
                },
            },
        )?;
        let entries = load(&conn).map_err(|message| SilenceError::Storage {
            path: path.clone(),
            message,
        })?;
        let store = Silences {
            path,
            db: Mutex::new(conn),
            live: RwLock::new(entries),
            quiet_from: AtomicI64::new(i64::MIN),
            retention,
        };
        store.refresh_quiet_from(&store.write());
        store.prune(now)?;
        Ok(store)
    }

    /// The silences stored in `dir`, read without writing anything (for `route` and
    /// `render`, which may run beside the router that owns the file); none when there is
    /// no file yet.
    pub fn stored(dir: &Path) -> Result<Vec<Silence>, SilenceError> {
        let path = dir.join(FILE);
        if !path.exists() {
            return Ok(Vec::new());
        }
        let storage = |message: String| SilenceError::Storage {
            path: path.clone(),
            message,
        };
        let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| storage(format!("cannot open it: {e}")))?;
        let entries = load(&conn).map_err(storage)?;
        Ok(entries.into_iter().map(|e| e.silence).collect())
    }

    /// Sets a silence: a new one, or (with `new.id`) a change to that one, as Alertmanager
    /// does it:
    ///
    /// - a pending silence changes in place (same id; a start in the past becomes now);
    /// - an active one changes in place when its matchers and start stay (a new end,
    ///   author or comment); otherwise it expires now and a new silence (new id) takes
    ///   over, so what held events back stays on record as it was;
    /// - an expired one stays as it was and a new silence is made from the request;
    /// - an unknown id is [`SilenceError::NotFound`].
    ///
    /// A new silence's start is `starts_at`, never before `now` (default: now); a change
    /// without `starts_at` or an end keeps the silence's. A duration counts from the start,
    /// or from now when the start has passed. The request must have 1 to [`MAX_MATCHERS`]
    /// matchers, not all of them matching the empty string (that would hold back every
    /// event), a non-empty `created_by`, a comment of at most [`MAX_COMMENT_CHARS`], and
    /// an end after the start and after now. Returns once the silence is on disk.
    pub fn add(&self, new: NewSilence, now: OffsetDateTime) -> Result<SilenceView, SilenceError> {
        check_request(&new)?;
        let now = now.checked_to_offset(UtcOffset::UTC).unwrap_or(now);
        let db = self.lock_db();
        let existing = match &new.id {
            Some(id) => Some(
                self.get(id, now)
                    .ok_or_else(|| SilenceError::NotFound(id.clone()))?,
            ),
            None => None,
        };
        let start = match new.starts_at {
            Some(t) => utc("starts_at", t)?,
            None => existing.as_ref().map_or(now, |e| e.silence.starts_at),
        };
        let change = match &existing {
            None => Change::New,
            Some(old) => match old.state {
                State::Pending => Change::InPlace,
                State::Active
                    if old.silence.matchers == new.matchers && old.silence.starts_at == start =>
                {
                    Change::InPlace
                }
                State::Active => Change::Replace(old.silence.clone()),
                State::Expired => Change::New,
            },
        };
        // An active silence changed in place keeps its (past) start; any other starts now
        // at the earliest, as Alertmanager has it.
        let keeps_start = matches!(change, Change::InPlace)
            && existing.as_ref().is_some_and(|e| e.state == State::Active);
        let start = if keeps_start { start } else { start.max(now) };
        let (ends_at, ends_field) = match new.ends {
            Some(Ends::At(t)) => (utc("ends_at", t)?, "ends_at"),
            Some(Ends::After(d)) => {
                if d.is_zero() {
                    return Err(SilenceError::field(
                        "duration",
                        "is zero: say how long the silence lasts, e.g. 2h",
                    ));
                }
                let end = time::Duration::try_from(d)
                    .ok()
                    .and_then(|d| start.max(now).checked_add(d))
                    .ok_or_else(|| SilenceError::field("duration", "is too long"))?;
                (utc("duration", end)?, "duration")
            }
            None => match &existing {
                Some(old) if !matches!(change, Change::New) => (old.silence.ends_at, "ends_at"),
                _ => {
                    return Err(SilenceError::field(
                        "ends_at",
                        "missing: say when the silence ends, with ends_at (RFC 3339) or duration (e.g. \"2h\")",
                    ));
                }
            },
        };
        if ends_at <= start {
            return Err(SilenceError::field(
                ends_field,
                format!(
                    "the silence would end at {}, not after it starts ({}): end it later",
                    format_time(ends_at),
                    format_time(start)
                ),
            ));
        }
        if ends_at <= now {
            return Err(SilenceError::field(
                ends_field,
                format!(
                    "{} is in the past: a silence must end in the future",
                    format_time(ends_at)
                ),
            ));
        }
        let id = match (&change, &existing) {
            (Change::InPlace, Some(old)) => old.silence.id.clone(),
            _ => new_id(now),
        };
        let silence = Silence {
            id,
            matchers: new.matchers,
            starts_at: start,
            ends_at,
            created_by: new.created_by.trim().to_owned(),
            comment: new.comment,
            updated_at: now,
        };
        let is_new = !matches!(change, Change::InPlace);
        let replaced = match change {
            Change::Replace(mut old) => {
                old.ends_at = now;
                old.updated_at = now;
                Some(old)
            }
            _ => None,
        };
        let seq = self.next_seq();
        self.write_db(&db, |tx| {
            if let Some(old) = &replaced {
                update(tx, old)?;
            }
            if is_new {
                insert(tx, seq, &silence)
            } else {
                update(tx, &silence)
            }
        })?;
        let mut live = self.write();
        for s in replaced.into_iter().chain([silence.clone()]) {
            match live.iter_mut().find(|e| e.silence.id == s.id) {
                Some(entry) => entry.silence = s,
                None => live.insert(
                    0,
                    Entry {
                        seq,
                        silence: s,
                        held_back: AtomicU64::new(0),
                    },
                ),
            }
        }
        self.refresh_quiet_from(&live);
        let held_back = live
            .iter()
            .find(|e| e.silence.id == silence.id)
            .map_or(0, |e| e.held_back.load(Ordering::Relaxed));
        Ok(SilenceView {
            state: silence.state(now),
            silence,
            held_back,
        })
    }

    /// Ends silence `id` now: an active one ends now, a pending one starts and ends now
    /// (as Alertmanager does), so both are expired from `now` on.
    pub fn expire(&self, id: &str, now: OffsetDateTime) -> Result<SilenceView, SilenceError> {
        let now = now.checked_to_offset(UtcOffset::UTC).unwrap_or(now);
        let db = self.lock_db();
        let view = self
            .get(id, now)
            .ok_or_else(|| SilenceError::NotFound(id.to_owned()))?;
        let mut silence = view.silence;
        match view.state {
            State::Expired => {
                return Err(SilenceError::AlreadyExpired {
                    id: silence.id,
                    ends_at: format_time(silence.ends_at),
                });
            }
            State::Pending => {
                silence.starts_at = now;
                silence.ends_at = now;
            }
            State::Active => silence.ends_at = now,
        }
        silence.updated_at = now;
        self.write_db(&db, |tx| update(tx, &silence))?;
        let mut live = self.write();
        if let Some(entry) = live.iter_mut().find(|e| e.silence.id == silence.id) {
            entry.silence = silence.clone();
        }
        self.refresh_quiet_from(&live);
        Ok(SilenceView {
            state: silence.state(now),
            silence,
            held_back: view.held_back,
        })
    }

    /// Every silence kept (expired ones too, until pruned), newest first, with its state
    /// at `now`.
    pub fn list(&self, now: OffsetDateTime) -> Vec<SilenceView> {
        self.read().iter().map(|e| view(e, now)).collect()
    }

    /// Silence `id` with its state at `now`.
    pub fn get(&self, id: &str, now: OffsetDateTime) -> Option<SilenceView> {
        self.read()
            .iter()
            .find(|e| e.silence.id == id)
            .map(|e| view(e, now))
    }

    /// The id of the newest silence active at `now` that matches `event`, if any. With no
    /// silence pending or active this is one atomic load.
    pub fn matching(&self, event: &Event, now: OffsetDateTime) -> Option<String> {
        if now.unix_timestamp() >= self.quiet_from.load(Ordering::Acquire) {
            return None;
        }
        self.read()
            .iter()
            .find(|e| e.silence.state(now) == State::Active && e.silence.matches(event))
            .map(|e| e.silence.id.clone())
    }

    /// Counts one event held back by silence `id` (call it when dropping an event
    /// because [`Silences::matching`] named that silence). In memory only: the counts
    /// start at zero with every start of the router.
    pub fn note_held_back(&self, id: &str) {
        if let Some(e) = self.read().iter().find(|e| e.silence.id == id) {
            e.held_back.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events silence `id` held back since the router started (0 for an unknown id).
    pub fn held_back(&self, id: &str) -> u64 {
        self.read()
            .iter()
            .find(|e| e.silence.id == id)
            .map_or(0, |e| e.held_back.load(Ordering::Relaxed))
    }

    /// Deletes the silences that expired longer than the retention before `now`;
    /// returns how many. Runs at open; call it now and then (hourly is plenty).
    pub fn prune(&self, now: OffsetDateTime) -> Result<usize, SilenceError> {
        let Some(cutoff) = time::Duration::try_from(self.retention)
            .ok()
            .and_then(|r| now.checked_sub(r))
        else {
            return Ok(0);
        };
        let db = self.lock_db();
        let old: Vec<String> = self
            .read()
            .iter()
            .filter(|e| e.silence.ends_at < cutoff)
            .map(|e| e.silence.id.clone())
            .collect();
        if old.is_empty() {
            return Ok(0);
        }
        self.write_db(&db, |tx| {
            let mut delete = tx.prepare("DELETE FROM silences WHERE id = ?1")?;
            for id in &old {
                delete.execute([id])?;
            }
            Ok(())
        })?;
        let mut live = self.write();
        live.retain(|e| !old.contains(&e.silence.id));
        self.refresh_quiet_from(&live);
        Ok(old.len())
    }

    /// Runs `write` in one transaction and commits it: on return it is on disk (as far as
    /// `storage.sync` says).
    fn write_db(
        &self,
        db: &MutexGuard<'_, Connection>,
        write: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), SilenceError> {
        let result = db.unchecked_transaction().and_then(|tx| {
            write(&tx)?;
            tx.commit()
        });
        result.map_err(|e| SilenceError::Storage {
            path: self.path.clone(),
            message: format!("cannot write: {e}"),
        })
    }

    fn next_seq(&self) -> i64 {
        self.read().iter().map(|e| e.seq).max().unwrap_or(0) + 1
    }

    fn refresh_quiet_from(&self, live: &[Entry]) {
        let latest = live
            .iter()
            .map(|e| e.silence.ends_at.unix_timestamp().saturating_add(1))
            .max()
            .unwrap_or(i64::MIN);
        self.quiet_from.store(latest, Ordering::Release);
    }

    // A panic while a lock was held leaves data that is still whole (every change is
    // one assignment), so a poisoned lock is used, not propagated.
    fn lock_db(&self) -> MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) -> RwLockReadGuard<'_, Vec<Entry>> {
        self.live.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<Entry>> {
        self.live.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn view(e: &Entry, now: OffsetDateTime) -> SilenceView {
    SilenceView {
        silence: e.silence.clone(),
        state: e.silence.state(now),
        held_back: e.held_back.load(Ordering::Relaxed),
    }
}

/// What can be checked without the store: matchers, author, comment.
fn check_request(new: &NewSilence) -> Result<(), SilenceError> {
    if new.matchers.is_empty() {
        return Err(SilenceError::field(
            "matchers",
            "none: a silence needs at least one matcher, e.g. type=error or labels.exchange=binance",
        ));
    }
    if new.matchers.len() > MAX_MATCHERS {
        return Err(SilenceError::field(
            "matchers",
            format!(
                "{} matchers: a silence has at most {MAX_MATCHERS}",
                new.matchers.len()
            ),
        ));
    }
    if new.matchers.iter().all(Matcher::matches_empty) {
        return Err(SilenceError::field(
            "matchers",
            "every matcher also matches an event without that name (the empty string), so the silence would hold back every event: add one that needs a value, e.g. type=error or labels.exchange!=\"\"",
        ));
    }
    if new.created_by.trim().is_empty() {
        return Err(SilenceError::field(
            "created_by",
            "missing: say who sets the silence (the command line's --author, $USER by default)",
        ));
    }
    if new.created_by.chars().count() > MAX_AUTHOR_CHARS {
        return Err(SilenceError::field(
            "created_by",
            format!("is longer than {MAX_AUTHOR_CHARS} characters"),
        ));
    }
    let comment = new.comment.chars().count();
    if comment > MAX_COMMENT_CHARS {
        return Err(SilenceError::field(
            "comment",
            format!(
                "is {comment} characters long: a comment has at most {MAX_COMMENT_CHARS}; link to the rest"
            ),
        ));
    }
    Ok(())
}

/// `t` in UTC, if in the years 1 to 9999 there, which RFC 3339 writes and reads back.
fn utc(field: &str, t: OffsetDateTime) -> Result<OffsetDateTime, SilenceError> {
    t.checked_to_offset(UtcOffset::UTC)
        .filter(|t| (1..=9999).contains(&t.year()))
        .ok_or_else(|| SilenceError::field(field, "is outside the years 1 to 9999 (UTC)"))
}

/// A UUID v7 from `now` (not the system clock), random below the millisecond.
fn new_id(now: OffsetDateTime) -> String {
    let seconds = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, seconds, now.nanosecond());
    uuid::Uuid::new_v7(ts).to_string()
}

fn insert(tx: &rusqlite::Transaction<'_>, seq: i64, s: &Silence) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO silences (id, seq, matchers, starts_at, ends_at, created_by, comment, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            s.id,
            seq,
            matchers_json(s)?,
            format_time(s.starts_at),
            format_time(s.ends_at),
            s.created_by,
            s.comment,
            format_time(s.updated_at),
        ],
    )?;
    Ok(())
}

fn update(tx: &rusqlite::Transaction<'_>, s: &Silence) -> rusqlite::Result<()> {
    let changed = tx.execute(
        "UPDATE silences SET matchers = ?2, starts_at = ?3, ends_at = ?4, created_by = ?5,
         comment = ?6, updated_at = ?7 WHERE id = ?1",
        params![
            s.id,
            matchers_json(s)?,
            format_time(s.starts_at),
            format_time(s.ends_at),
            s.created_by,
            s.comment,
            format_time(s.updated_at),
        ],
    )?;
    if changed != 1 {
        // The memory copy and the file disagree: say so rather than lose the change.
        return Err(rusqlite::Error::QueryReturnedNoRows);
    }
    Ok(())
}

fn matchers_json(s: &Silence) -> rusqlite::Result<String> {
    serde_json::to_string(&s.matchers)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
}

/// Every stored silence, newest first. A row that does not read back is an error, not
/// skipped: skipping would quietly let through what it silenced.
fn load(conn: &Connection) -> Result<Vec<Entry>, String> {
    let mut stmt = conn
        .prepare(
            "SELECT id, seq, matchers, starts_at, ends_at, created_by, comment, updated_at
             FROM silences ORDER BY seq DESC",
        )
        .map_err(|e| format!("cannot read it: {e}"))?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                [row.get::<_, String>(3)?, row.get(4)?, row.get(7)?],
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
            ))
        })
        .map_err(|e| format!("cannot read it: {e}"))?;
    let mut entries = Vec::new();
    for row in rows {
        let (id, seq, matchers, times, created_by, comment) =
            row.map_err(|e| format!("cannot read it: {e}"))?;
        let bad = |what: String| {
            format!(
                "silence {id} does not read back ({what}): expire it again after moving the file away, or restore a backup"
            )
        };
        let matchers: Vec<Matcher> =
            serde_json::from_str(&matchers).map_err(|e| bad(format!("matchers: {e}")))?;
        let [starts_at, ends_at, updated_at] = times
            .map(|t| OffsetDateTime::parse(&t, &Rfc3339).map_err(|e| format!("time {t:?}: {e}")));
        entries.push(Entry {
            seq,
            silence: Silence {
                matchers,
                starts_at: starts_at.map_err(bad)?,
                ends_at: ends_at.map_err(bad)?,
                updated_at: updated_at.map_err(bad)?,
                created_by,
                comment,
                id,
            },
            held_back: AtomicU64::new(0),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;
    use crate::testing::TempDir;

    const T0: OffsetDateTime = datetime!(2026-12-04 12:00 UTC);

    fn mins(n: i64) -> time::Duration {
        time::Duration::minutes(n)
    }

    fn at(n: i64) -> OffsetDateTime {
        T0 + mins(n)
    }

    fn new(matchers: &[&str], ends: Ends) -> NewSilence {
        NewSilence {
            id: None,
            matchers: matchers
                .iter()
                .map(|m| Matcher::parse(m).unwrap())
                .collect(),
            starts_at: None,
            ends: Some(ends),
            created_by: "ana".into(),
            comment: "maintenance".into(),
        }
    }

    fn for_mins(matchers: &[&str], n: u64) -> NewSilence {
        new(matchers, Ends::After(Duration::from_secs(n * 60)))
    }

    /// An event; `error` events need a message (the trading domain documents them).
    fn event(mut v: Value) -> Event {
        v["message"] = json!("boom");
        Event::from_json(v, T0).unwrap()
    }

    fn open(dir: &TempDir, now: OffsetDateTime) -> Silences {
        Silences::open(&dir.0, SyncMode::Full, now).unwrap()
    }

    fn invalid_field(err: SilenceError) -> (String, String) {
        match err {
            SilenceError::Invalid { field, message } => (field.unwrap_or_default(), message),
            other => panic!("expected an invalid request, got {other}"),
        }
    }

    #[test]
    fn state_is_pending_then_active_then_expired() {
        let s = Silence {
            id: "x".into(),
            matchers: vec![Matcher::parse("type=error").unwrap()],
            starts_at: at(10),
            ends_at: at(20),
            created_by: "ana".into(),
            comment: String::new(),
            updated_at: T0,
        };
        assert_eq!(s.state(at(9)), State::Pending);
        assert_eq!(s.state(at(10)), State::Active, "from the start");
        assert_eq!(s.state(at(19)), State::Active);
        assert_eq!(s.state(at(20)), State::Expired, "from the end");
    }

    #[test]
    fn an_active_silence_holds_back_what_it_matches_and_only_then() {
        let dir = TempDir::new("silences-match");
        let store = open(&dir, T0);
        let binance = event(json!({"type": "error", "labels": {"exchange": "binance"}}));
        let kraken = event(json!({"type": "error", "labels": {"exchange": "kraken"}}));
        assert_eq!(store.matching(&binance, T0), None);
        let mut pending = for_mins(&["labels.exchange=binance"], 30);
        pending.starts_at = Some(at(10));
        let s = store.add(pending, T0).unwrap();
        assert_eq!(s.state, State::Pending);
        assert_eq!(
            s.silence.ends_at,
            at(40),
            "the duration counts from the start"
        );
        assert_eq!(store.matching(&binance, at(9)), None, "pending");
        assert_eq!(
            store.matching(&binance, at(10)).as_deref(),
            Some(&*s.silence.id)
        );
        assert_eq!(store.matching(&kraken, at(10)), None, "not matched");
        assert_eq!(store.matching(&binance, at(40)), None, "expired");
        assert_eq!(store.matching(&binance, at(100)), None, "quiet");
        store.note_held_back(&s.silence.id);
        store.note_held_back(&s.silence.id);
        store.note_held_back("unknown");
        assert_eq!(store.held_back(&s.silence.id), 2);
        assert_eq!(store.get(&s.silence.id, at(10)).unwrap().held_back, 2);
        assert_eq!(store.held_back("unknown"), 0);
    }

    #[test]
    fn a_silence_persists_across_a_reopen() {
        let dir = TempDir::new("silences-reopen");
        let (a, b) = {
            let store = open(&dir, T0);
            let mut first = for_mins(&["type=error", "labels.exchange=~\"bin.*\""], 60);
            first.starts_at = Some(datetime!(2026-12-04 14:00:00.123456789 +02:00));
            let a = store.add(first, T0).unwrap();
            let b = store.add(for_mins(&["source=bot-7"], 30), at(1)).unwrap();
            store.expire(&b.silence.id, at(2)).unwrap();
            (a.silence, b.silence)
        };
        let store = open(&dir, at(3));
        let listed = store.list(at(3));
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].silence.id, b.id, "newest first");
        assert_eq!(listed[0].state, State::Expired);
        assert_eq!(listed[0].silence.ends_at, at(2));
        assert_eq!(listed[1].silence, a, "everything, to the nanosecond");
        assert_eq!(listed[1].state, State::Active);
        let e = event(json!({"type": "error", "labels": {"exchange": "bingx"}}));
        assert_eq!(store.matching(&e, at(3)), Some(a.id.clone()));
    }

    #[test]
    fn expire_ends_it_now_and_tells_unknown_from_expired() {
        let dir = TempDir::new("silences-expire");
        let store = open(&dir, T0);
        let active = store.add(for_mins(&["type=error"], 60), T0).unwrap();
        let mut later = for_mins(&["type=x"], 60);
        later.starts_at = Some(at(30));
        let pending = store.add(later, T0).unwrap();
        let e = event(json!({"type": "error"}));
        assert!(store.matching(&e, at(5)).is_some());

        let done = store.expire(&active.silence.id, at(5)).unwrap();
        assert_eq!((done.state, done.silence.ends_at), (State::Expired, at(5)));
        assert_eq!(done.silence.updated_at, at(5));
        assert_eq!(store.matching(&e, at(5)), None);
        let done = store.expire(&pending.silence.id, at(5)).unwrap();
        assert_eq!(done.state, State::Expired);
        assert_eq!(
            (done.silence.starts_at, done.silence.ends_at),
            (at(5), at(5))
        );

        assert!(matches!(
            store.expire(&active.silence.id, at(6)),
            Err(SilenceError::AlreadyExpired { .. })
        ));
        let err = store.expire("nope", at(6)).unwrap_err();
        assert!(matches!(&err, SilenceError::NotFound(id) if id == "nope"));
        assert_eq!(err.http_status(), 404);
        assert_eq!(
            store
                .expire(&active.silence.id, at(6))
                .unwrap_err()
                .http_status(),
            409
        );
    }

    #[test]
    fn list_is_newest_first_with_states_at_the_instant() {
        let dir = TempDir::new("silences-list");
        let store = open(&dir, T0);
        let a = store.add(for_mins(&["type=a"], 10), T0).unwrap();
        let mut later = for_mins(&["type=b"], 10);
        later.starts_at = Some(at(20));
        let b = store.add(later, T0).unwrap();
        let c = store.add(for_mins(&["type=c"], 60), T0).unwrap();
        let states = |now| {
            store
                .list(now)
                .into_iter()
                .map(|v| (v.silence.id, v.state))
                .collect::<Vec<_>>()
        };
        let (a, b, c) = (a.silence.id, b.silence.id, c.silence.id);
        assert_eq!(
            states(at(5)),
            [
                (c.clone(), State::Active),
                (b.clone(), State::Pending),
                (a.clone(), State::Active)
            ]
        );
        assert_eq!(
            states(at(25)),
            [(c, State::Active), (b, State::Active), (a, State::Expired)]
        );
    }

    #[test]
    fn changing_a_pending_silence_keeps_its_id() {
        let dir = TempDir::new("silences-pending");
        let store = open(&dir, T0);
        let mut first = for_mins(&["type=a"], 10);
        first.starts_at = Some(at(30));
        let first = store.add(first, T0).unwrap();
        let mut change = for_mins(&["type=b"], 20);
        change.id = Some(first.silence.id.clone());
        change.comment = "wider".into();
        let changed = store.add(change, at(1)).unwrap();
        assert_eq!(changed.silence.id, first.silence.id);
        assert_eq!(changed.silence.starts_at, at(30), "the start is kept");
        assert_eq!(changed.silence.ends_at, at(50));
        assert_eq!(changed.silence.comment, "wider");
        assert_eq!(changed.silence.updated_at, at(1));
        assert_eq!(store.list(at(1)).len(), 1);
        assert_eq!(
            store.list(at(1))[0].silence.matchers,
            [Matcher::parse("type=b").unwrap()]
        );
        // A start in the past becomes now.
        let mut now_please = for_mins(&["type=b"], 20);
        now_please.id = Some(first.silence.id.clone());
        now_please.starts_at = Some(T0);
        let s = store.add(now_please, at(2)).unwrap();
        assert_eq!((s.silence.starts_at, s.state), (at(2), State::Active));
        // And the disk has the change.
        drop(store);
        let store = open(&dir, at(3));
        assert_eq!(store.list(at(3))[0].silence, s.silence);
    }

    #[test]
    fn changing_an_active_silence_replaces_it_unless_only_the_end_or_words_change() {
        let dir = TempDir::new("silences-active");
        let store = open(&dir, T0);
        let first = store.add(for_mins(&["type=a"], 10), T0).unwrap();
        store.note_held_back(&first.silence.id);

        // Only the end and the comment: in place, counts kept.
        let mut extend = for_mins(&["type=a"], 60);
        extend.id = Some(first.silence.id.clone());
        extend.comment = "longer".into();
        let extended = store.add(extend, at(5)).unwrap();
        assert_eq!(extended.silence.id, first.silence.id);
        assert_eq!(extended.silence.starts_at, T0, "an active start stays");
        assert_eq!(extended.silence.ends_at, at(65), "from now when started");
        assert_eq!(extended.held_back, 1);
        assert_eq!(store.list(at(5)).len(), 1);

        // Other matchers: the old one expires now, a new one takes over.
        let mut widen = new(&["type=~a|b"], Ends::At(at(90)));
        widen.id = Some(first.silence.id.clone());
        let replaced = store.add(widen, at(7)).unwrap();
        assert_ne!(replaced.silence.id, first.silence.id);
        assert_eq!(replaced.silence.starts_at, at(7));
        assert_eq!(replaced.state, State::Active);
        let old = store.get(&first.silence.id, at(7)).unwrap();
        assert_eq!((old.state, old.silence.ends_at), (State::Expired, at(7)));
        assert_eq!(
            old.silence.matchers, first.silence.matchers,
            "kept as it was"
        );
        assert_eq!(store.held_back(&replaced.silence.id), 0);
        let e = event(json!({"type": "b"}));
        assert_eq!(store.matching(&e, at(8)), Some(replaced.silence.id.clone()));

        // A new start, same matchers: replaced too.
        let mut restart = new(&["type=~a|b"], Ends::At(at(90)));
        restart.id = Some(replaced.silence.id.clone());
        restart.starts_at = Some(at(8));
        let again = store.add(restart, at(9)).unwrap();
        assert_ne!(again.silence.id, replaced.silence.id);
        assert_eq!(again.silence.starts_at, at(9), "not before now");

        // An expired one stays, and the request makes a new one.
        let mut revive = for_mins(&["type=a"], 10);
        revive.id = Some(first.silence.id.clone());
        let revived = store.add(revive, at(10)).unwrap();
        assert_ne!(revived.silence.id, first.silence.id);
        assert_eq!(
            store.get(&first.silence.id, at(10)).unwrap().silence,
            old.silence
        );
        assert_eq!(store.list(at(10)).len(), 4);

        // An unknown id is not found, and nothing is written.
        let mut ghost = for_mins(&["type=a"], 10);
        ghost.id = Some("ghost".into());
        assert!(matches!(
            store.add(ghost, at(10)),
            Err(SilenceError::NotFound(_))
        ));
        assert_eq!(store.list(at(10)).len(), 4);
    }

    #[test]
    fn requests_are_checked_and_errors_name_the_field() {
        let dir = TempDir::new("silences-check");
        let store = open(&dir, T0);
        let check = |n: NewSilence| invalid_field(store.add(n, T0).unwrap_err());

        let (f, m) = check(for_mins(&[], 10));
        assert_eq!(f, "matchers");
        assert!(m.contains("at least one"), "{m}");
        let many: Vec<String> = (0..65).map(|i| format!("a{i}=x")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(check(for_mins(&many, 10)).1.contains("at most 64"));
        let (f, m) = check(for_mins(&["a=~.*", "b!=x", "labels.c=\"\""], 10));
        assert_eq!(f, "matchers");
        assert!(m.contains("every event"), "{m}");
        assert!(store.add(for_mins(&["a=~.*", "b!=\"\""], 10), T0).is_ok());

        let mut nobody = for_mins(&["type=a"], 10);
        nobody.created_by = "  ".into();
        assert_eq!(check(nobody).0, "created_by");
        let mut chatty = for_mins(&["type=a"], 10);
        chatty.comment = "x".repeat(1025);
        let (f, m) = check(chatty);
        assert_eq!(f, "comment");
        assert!(m.contains("1025") && m.contains("1024"), "{m}");
        let mut quiet = for_mins(&["type=a"], 10);
        quiet.comment = String::new();
        quiet.comment.push_str(&"é".repeat(1024));
        assert!(store.add(quiet, T0).is_ok(), "1024 characters, more bytes");

        let (f, m) = check(new(&["type=a"], Ends::At(at(-1))));
        assert_eq!(f, "ends_at");
        assert!(
            m.contains("in the past") || m.contains("not after it starts"),
            "{m}"
        );
        let mut backwards = new(&["type=a"], Ends::At(at(20)));
        backwards.starts_at = Some(at(30));
        let (f, m) = check(backwards);
        assert_eq!(f, "ends_at");
        assert!(m.contains("not after it starts"), "{m}");
        let mut past = new(&["type=a"], Ends::At(T0));
        past.starts_at = Some(at(-30));
        let (f, _) = check(past);
        assert_eq!(
            f, "ends_at",
            "the start becomes now, and the end is not after it"
        );
        assert_eq!(check(for_mins(&["type=a"], 0)).0, "duration");
        let mut endless = for_mins(&["type=a"], 10);
        endless.ends = None;
        let (f, m) = check(endless);
        assert_eq!(f, "ends_at");
        assert!(m.contains("duration"), "{m}");
        let mut ancient = for_mins(&["type=a"], 10);
        ancient.starts_at = Some(datetime!(0001-01-01 0:00 +1));
        let (f, m) = check(ancient);
        assert_eq!(f, "starts_at");
        assert!(m.contains("years 1 to 9999"), "{m}");
        let late = OffsetDateTime::parse("9999-12-31T23:59:59-23:59", &Rfc3339).unwrap();
        assert_eq!(check(new(&["type=a"], Ends::At(late))).0, "ends_at");
        assert_eq!(store.list(T0).len(), 2, "only the two good ones");
    }

    #[test]
    fn pruning_drops_what_expired_longer_ago_than_the_retention() {
        let dir = TempDir::new("silences-prune");
        let store = open(&dir, T0);
        let short = store.add(for_mins(&["type=a"], 10), T0).unwrap();
        let long = store.add(for_mins(&["type=b"], 600), T0).unwrap();
        let retention = time::Duration::try_from(DEFAULT_RETENTION).unwrap();
        // Short ended at T0+10m: kept until T0+10m+120h.
        assert_eq!(store.prune(at(10) + retention).unwrap(), 0);
        assert_eq!(store.prune(at(11) + retention).unwrap(), 1);
        assert_eq!(store.get(&short.silence.id, at(11)), None);
        assert!(store.get(&long.silence.id, at(11)).is_some());
        drop(store);
        // At open: gone from the disk too, and the long one goes when its time comes.
        let store = open(&dir, at(11) + retention);
        assert_eq!(store.list(T0).len(), 1);
        drop(store);
        let store = open(&dir, at(601) + retention);
        assert!(store.list(T0).is_empty());
        let shorter =
            Silences::open_with_retention(&dir.0, SyncMode::Normal, Duration::ZERO, T0).unwrap();
        let s = shorter.add(for_mins(&["type=a"], 1), T0).unwrap();
        assert_eq!(shorter.prune(at(1)).unwrap(), 0, "ends at, not before");
        assert_eq!(shorter.prune(at(2)).unwrap(), 1);
        assert!(shorter.get(&s.silence.id, at(2)).is_none());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = TempDir::new("silences-schema");
        drop(open(&dir, T0));
        let conn = Connection::open(dir.0.join(FILE)).unwrap();
        conn.pragma_update(None, "user_version", 9).unwrap();
        drop(conn);
        let err = Silences::open(&dir.0, SyncMode::Full, T0).unwrap_err();
        assert!(
            matches!(
                err,
                SilenceError::Schema {
                    found: 9,
                    known: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_row_that_does_not_read_back_stops_the_open() {
        let dir = TempDir::new("silences-bad-row");
        let store = open(&dir, T0);
        let s = store.add(for_mins(&["type=a"], 10), T0).unwrap();
        drop(store);
        let conn = Connection::open(dir.0.join(FILE)).unwrap();
        conn.execute("UPDATE silences SET matchers = '[\"a=~(\"]'", [])
            .unwrap();
        drop(conn);
        let err = Silences::open(&dir.0, SyncMode::Full, T0).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&s.silence.id) && text.contains("bad regex"),
            "{text}"
        );
    }

    #[test]
    fn ids_are_uuid_v7_from_the_given_instant() {
        let id = uuid::Uuid::parse_str(&new_id(T0)).unwrap();
        assert_eq!(id.get_version_num(), 7);
        let (secs, _) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(secs as i64, T0.unix_timestamp());
        assert_ne!(new_id(T0), new_id(T0));
    }

    #[test]
    fn the_post_body_reads_every_form_and_names_the_field_at_fault() {
        let body = json!({
            "matchers": ["labels.exchange=binance", {"name": "type", "op": "=~", "value": "err.*"},
                         {"name": "env", "value": "prod", "isRegex": false, "isEqual": false}],
            "starts_at": "2026-12-04T14:00:00+02:00",
            "ends_at": "2026-12-04T20:00:00Z",
            "created_by": "ana",
            "comment": "maintenance",
            "state": "active", "held_back": 3, "updated_at": "x"
        });
        let n = NewSilence::from_json(body).unwrap();
        assert_eq!(
            n.matchers,
            ["labels.exchange=binance", "type=~err.*", "env!=prod"]
                .map(|m| Matcher::parse(m).unwrap())
        );
        assert_eq!(n.starts_at, Some(at(0)));
        assert_eq!(n.ends, Some(Ends::At(at(480))));
        assert_eq!(
            (n.id, n.created_by.as_str(), n.comment.as_str()),
            (None, "ana", "maintenance")
        );

        let n: NewSilence = serde_json::from_value(json!({
            "id": "abc", "matchers": "type=error,labels.x=~\"a,b\"", "duration": "2h", "created_by": "bo"
        }))
        .unwrap();
        assert_eq!(n.id.as_deref(), Some("abc"));
        assert_eq!(n.matchers.len(), 2);
        assert_eq!(n.ends, Some(Ends::After(Duration::from_secs(7200))));
        assert_eq!(n.comment, "");
        let n =
            NewSilence::from_json(json!({"matchers": ["a=b"], "duration": 90, "id": ""})).unwrap();
        assert_eq!(
            (n.ends, n.id),
            (Some(Ends::After(Duration::from_secs(90))), None)
        );

        let field = |v: Value| invalid_field(NewSilence::from_json(v).unwrap_err());
        assert_eq!(field(json!([1])).0, "");
        let (f, m) = field(json!({"matchers": ["a=b"], "comments": "x"}));
        assert_eq!(f, "comments");
        assert!(m.contains("did you mean `comment`"), "{m}");
        let (f, m) = field(json!({"matchers": ["a=b", "c=~("]}));
        assert_eq!(f, "matchers[1]");
        assert!(m.contains("bad regex"), "{m}");
        assert_eq!(field(json!({"matchers": 3})).0, "matchers");
        assert_eq!(field(json!({"matchers": "a=~("})).0, "matchers");
        assert_eq!(field(json!({"ends_at": "tomorrow"})).0, "ends_at");
        assert_eq!(field(json!({"starts_at": 5})).0, "starts_at");
        assert_eq!(field(json!({"duration": "2 weeks"})).0, "duration");
        let (f, m) = field(json!({"duration": "2h", "ends_at": "2026-12-04T20:00:00Z"}));
        assert_eq!(f, "duration");
        assert!(m.contains("not both"), "{m}");
        assert_eq!(field(json!({"created_by": ["ana"]})).0, "created_by");
        let err = serde_json::from_value::<NewSilence>(json!({"matchers": [1]})).unwrap_err();
        assert!(err.to_string().contains("field `matchers[0]`"), "{err}");
    }

    #[test]
    fn the_view_serializes_as_the_api_answers() {
        let dir = TempDir::new("silences-json");
        let store = open(&dir, T0);
        let mut n = for_mins(&["labels.exchange=~bin.*", "type=error"], 120);
        n.comment = "upgrade".into();
        let s = store.add(n, T0).unwrap();
        store.note_held_back(&s.silence.id);
        let shown = serde_json::to_value(store.get(&s.silence.id, at(1)).unwrap()).unwrap();
        assert_eq!(
            shown,
            json!({
                "id": s.silence.id,
                "state": "active",
                "matchers": ["labels.exchange=~\"bin.*\"", "type=\"error\""],
                "starts_at": "2026-12-04T12:00:00Z",
                "ends_at": "2026-12-04T14:00:00Z",
                "created_by": "ana",
                "comment": "upgrade",
                "updated_at": "2026-12-04T12:00:00Z",
                "held_back": 1
            })
        );
        // What is listed posts back.
        let again = NewSilence::from_json(shown).unwrap();
        assert_eq!(again.matchers, s.silence.matchers);
        assert_eq!(again.id.as_deref(), Some(&*s.silence.id));
    }

    #[test]
    fn with_nothing_pending_or_active_matching_stops_at_the_atomic() {
        let dir = TempDir::new("silences-quiet");
        let store = open(&dir, T0);
        assert_eq!(store.quiet_from.load(Ordering::Relaxed), i64::MIN);
        let s = store.add(for_mins(&["type=a"], 10), T0).unwrap();
        assert_eq!(
            store.quiet_from.load(Ordering::Relaxed),
            at(10).unix_timestamp() + 1
        );
        store.expire(&s.silence.id, at(1)).unwrap();
        assert_eq!(
            store.quiet_from.load(Ordering::Relaxed),
            at(1).unix_timestamp() + 1
        );
        assert_eq!(store.matching(&event(json!({"type": "a"})), at(1)), None);
    }
}
