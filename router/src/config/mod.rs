//! `router.yaml`: reading it (with `${VAR}` / `${VAR:-default}` from the environment and
//! a `.env` beside it), checking every field, and resolving relative paths against the
//! file's own directory. Emits a [`Config`] or every problem as a [`Diagnostic`].

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::{Diagnostic, Diagnostics};
use crate::render::tree::{self, Node};

/// The default address of the HTTP API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9470";

/// A value that must never be printed: `Debug` and `Display` show `***`.
pub use alert_router_plugin::Secret;

mod env;
mod units;

pub use env::{interpolate, read_dotenv};
pub use units::{format_duration, parse_count_per, parse_duration, parse_rate, parse_size};

/// The whole configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub server: Server,
    /// Where and how the router keeps its data (outbox, state).
    pub storage: Storage,
    /// Directories searched for `lib<name>.so`, in order (the executable's own directory
    /// is searched after them).
    pub plugin_dirs: Vec<PathBuf>,
    /// Refuse plugin files (and their directories) writable by others or owned by another
    /// user than root or the router's (`plugins.strict_modes`, default true).
    pub plugin_strict_modes: bool,
    /// Rule files, or directories whose `*.yaml` files are rule files.
    pub rules: Vec<PathBuf>,
    /// The templates directory.
    pub templates: PathBuf,
    pub sinks: BTreeMap<String, SinkConfig>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    /// When set, every API call needs `Authorization: Bearer <token>`.
    pub token: Option<Secret>,
    /// The largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// `server.insecure: true`: serve the API off loopback without a token, on purpose.
    pub insecure: bool,
    /// Where `server.listen` is written (line, col), for problems about it; `None` when
    /// the default is in force.
    pub listen_at: Option<(u32, u32)>,
}

/// `storage:`: where the outbox and the state live, and how much the outbox may hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    pub path: PathBuf,
    pub sync: SyncMode,
    /// Messages waiting for delivery, all sinks together, beyond which ingest answers 503.
    pub max_messages: u64,
    /// Bytes of messages waiting for delivery beyond which ingest answers 503.
    pub max_bytes: u64,
    /// How long delivered messages stay in the outbox (for `dead-letters`-style audits).
    pub keep_delivered: Duration,
    /// How long dead letters stay unless retried or dropped.
    pub keep_dead_letters: Duration,
    /// How long an event id is remembered, so a repeat is accepted but not delivered.
    pub dedup_window: Duration,
}

impl Storage {
    pub fn new(path: PathBuf) -> Storage {
        Storage {
            path,
            sync: SyncMode::Full,
            max_messages: 1_000_000,
            max_bytes: 1 << 30,
            keep_delivered: Duration::from_secs(3600),
            keep_dead_letters: Duration::from_secs(30 * 24 * 3600),
            dedup_window: Duration::from_secs(600),
        }
    }
}

/// When a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Every commit is fsynced before `202`: survives a power cut.
    Full,
    /// Commits reach the OS before `202` and the disk at checkpoints: survives the
    /// router's crash or `kill -9`, not the machine's.
    Normal,
}

impl SyncMode {
    pub fn pragma(self) -> &'static str {
        match self {
            SyncMode::Full => "FULL",
            SyncMode::Normal => "NORMAL",
        }
    }
}

/// One configured sink.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    pub plugin: String,
    pub enabled: bool,
    pub rate_limit: Option<RateLimit>,
    /// Messages waiting for this sink beyond which ingest answers 503.
    pub max_queue: usize,
    pub retry: RetryPolicy,
    /// Where the plugin runs; `None` leaves it to where the plugin file is
    /// ([`Isolation::default_for`]).
    pub isolation: Option<Isolation>,
    /// How long one `deliver` may take: past it the sink shows as stuck (and with
    /// `isolation: process` the plugin's process is killed and the attempt retried).
    pub deliver_timeout: Duration,
    /// Handed to the plugin's `create` as JSON.
    pub settings: serde_json::Value,
    /// Where `settings` and each setting are written, for diagnostics.
    pub settings_places: SettingsPlaces,
    /// Where the sink is defined, for diagnostics.
    pub line: u32,
    pub col: u32,
}

/// Where a sink's plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// In the router's process: no cost per delivery, but a crash in the plugin ends the
    /// router (which then counts it against the message's `max_crashes`).
    InProcess,
    /// In a child process of its own, restarted after a crash.
    Process,
}

impl Isolation {
    /// Plugins installed beside the router's executable (the first-party ones, as
    /// packaged) run in-process; plugins found anywhere else in a process of their own.
    pub fn default_for(plugin_file: &Path) -> Isolation {
        let beside = std::env::current_exe().ok().is_some_and(|exe| {
            let (Some(exe_dir), Some(dir)) = (exe.parent(), plugin_file.parent()) else {
                return false;
            };
            let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
            canonical(exe_dir) == canonical(dir)
        });
        if beside {
            Isolation::InProcess
        } else {
            Isolation::Process
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::InProcess => "in-process",
            Isolation::Process => "process",
        }
    }
}

/// The default `deliver_timeout`.
pub const DELIVER_TIMEOUT: Duration = Duration::from_secs(60);

/// A place in the config file: 1-based line and column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Place {
    pub line: u32,
    pub col: u32,
}

impl Place {
    fn of(loc: &serde_saphyr::Location) -> Place {
        Place {
            line: loc.line() as u32,
            col: loc.column() as u32,
        }
    }
}

/// Where a sink's settings are written, so a problem with one points at it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsPlaces {
    /// The `settings` value; the sink's own place when it has none.
    pub whole: Place,
    /// Each top-level setting: where its name and where its value are written.
    pub each: BTreeMap<String, (Place, Place)>,
}

impl SettingsPlaces {
    /// Where setting `name` is written; the settings' place when it is not.
    pub fn name_of(&self, name: &str) -> Place {
        self.each.get(name).map_or(self.whole, |(n, _)| *n)
    }

    /// Where the value of setting `name` is written; the settings' place when it is not.
    pub fn value_of(&self, name: &str) -> Place {
        self.each.get(name).map_or(self.whole, |(_, v)| *v)
    }
}

/// At most `burst` deliveries at once, refilled at one per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub period: Duration,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before a message goes to the dead letters (the first one included).
    pub max_attempts: u32,
    /// Pauses one message may get from `retry(after)` answers (a 429, a plugin's own
    /// budget) before it goes to the dead letters: they use up no attempt, so without a
    /// bound an upstream that always says "later" would hold the sink forever.
    pub max_waits: u32,
    /// Attempts at one message that may end in a crash (of the router, with a plugin in
    /// process; of the plugin's own process otherwise) before it goes to the dead
    /// letters: a plugin that crashes on one message cannot crash-loop the router.
    pub max_crashes: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            max_waits: 100,
            max_crashes: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(300),
        }
    }
}

// ---- the file as written ---------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    plugins: RawPlugins,
    #[serde(default)]
    rules: Option<OneOrMany>,
    #[serde(default)]
    templates: Option<String>,
    #[serde(default)]
    sinks: BTreeMap<String, Spanned<RawSink>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    token: Option<String>,
    max_body: Option<Spanned<String>>,
    insecure: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    path: Option<String>,
    sync: Option<Spanned<String>>,
    max_messages: Option<u64>,
    max_bytes: Option<Spanned<String>>,
    keep_delivered: Option<Spanned<String>>,
    keep_dead_letters: Option<Spanned<String>>,
    dedup_window: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugins {
    #[serde(default)]
    dirs: Vec<String>,
    #[serde(default)]
    strict_modes: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    plugin: String,
    #[serde(default = "yes")]
    enabled: bool,
    rate_limit: Option<RawRateLimit>,
    max_queue: Option<usize>,
    retry: Option<RawRetry>,
    isolation: Option<Isolation>,
    deliver_timeout: Option<Spanned<String>>,
    /// Read as a tree of nodes with their places, then handed to the plugin as JSON.
    #[serde(default)]
    settings: Option<Spanned<Node>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    rate: Spanned<String>,
    burst: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<u32>,
    max_waits: Option<u32>,
    max_crashes: Option<u32>,
    initial_backoff: Option<Spanned<String>>,
    max_backoff: Option<Spanned<String>>,
}

// ---- loading ---------------------------------------------------------------------------

impl Config {
    /// Reads and checks `path`, with the process environment and the `.env` beside it.
    pub fn load(path: &Path) -> Result<Config, Diagnostics> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Diagnostic::file(path, format!("cannot read the config: {e}")))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut env: HashMap<String, String> = read_dotenv(&dir.join(".env"))?;
        // The process environment wins over .env, as with every dotenv tool.
        env.extend(std::env::vars());
        Config::parse(path, &text, &|name| env.get(name).cloned())
    }

    /// Checks config `text` as if read from `path`, looking variables up with `var`.
    pub fn parse(
        path: &Path,
        text: &str,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Diagnostics> {
        let text = interpolate(path, text, var)?;
        let raw: RawConfig =
            serde_saphyr::from_str(&text).map_err(|e| Diagnostic::yaml(path, &e))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            }
        };
        let mut problems = Diagnostics::default();

        let listen = match &raw.server.listen {
            None => DEFAULT_LISTEN.parse().ok(),
            Some(l) => match l.value.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    problems.push(at(path, &l.referenced, format!(
                        "server.listen: {:?} is not an address: write host:port, e.g. 127.0.0.1:9470",
                        l.value
                    )));
                    None
                }
            },
        };
        let max_body_bytes = match &raw.server.max_body {
            None => 8 << 20,
            Some(s) => parse_size(&s.value).unwrap_or_else(|e| {
                problems.push(at(path, &s.referenced, format!("server.max_body: {e}")));
                0
            }),
        };
        let token = raw.server.token.filter(|t| !t.is_empty()).map(Secret::new);
        let storage = storage(raw.storage, path, &resolve, &mut problems);

        let mut sinks = BTreeMap::new();
        for (name, spanned) in raw.sinks {
            let loc = spanned.referenced;
            let sink = spanned.value;
            if !valid_name(&name) {
                problems.push(at(
                    path,
                    &loc,
                    format!("sinks.{name}: a sink name uses letters, digits, `_` and `-`"),
                ));
            }
            let rate_limit = sink
                .rate_limit
                .and_then(|r| match parse_rate(&r.rate.value) {
                    Ok(period) => Some(RateLimit {
                        period,
                        burst: r.burst.unwrap_or(1).max(1),
                    }),
                    Err(e) => {
                        problems.push(at(
                            path,
                            &r.rate.referenced,
                            format!("sinks.{name}.rate_limit.rate: {e}"),
                        ));
                        None
                    }
                });
            let mut retry = RetryPolicy::default();
            if let Some(r) = sink.retry {
                if let Some(n) = r.max_attempts {
                    retry.max_attempts = n.max(1);
                }
                if let Some(n) = r.max_waits {
                    retry.max_waits = n;
                }
                if let Some(n) = r.max_crashes {
                    retry.max_crashes = n.max(1);
                }
                for (field, value, slot) in [
                    (
                        "initial_backoff",
                        r.initial_backoff,
                        &mut retry.initial_backoff,
                    ),
                    ("max_backoff", r.max_backoff, &mut retry.max_backoff),
                ] {
                    if let Some(v) = value {
                        match parse_duration(&v.value) {
                            Ok(d) => *slot = d,
                            Err(e) => problems.push(at(
                                path,
                                &v.referenced,
                                format!("sinks.{name}.retry.{field}: {e}"),
                            )),
                        }
                    }
                }
            }
            let mut settings_places = SettingsPlaces {
                whole: Place::of(&loc),
                each: BTreeMap::new(),
            };
            let settings = match &sink.settings {
                None => serde_json::json!({}),
                Some(node) => {
                    settings_places.whole = Place::of(&node.referenced);
                    if let Node::Map(entries) = &node.value {
                        for (key, value) in entries {
                            settings_places.each.insert(
                                key.value.clone(),
                                (Place::of(&key.referenced), Place::of(&value.referenced)),
                            );
                        }
                    }
                    tree::to_json(node)
                }
            };
            if !settings.is_object() {
                let place = settings_places.whole;
                problems.push(Diagnostic::new(
                    path,
                    place.line,
                    place.col,
                    format!("sinks.{name}.settings: must be a mapping of setting: value"),
                ));
            }
            let deliver_timeout = match &sink.deliver_timeout {
                None => DELIVER_TIMEOUT,
                Some(v) => match parse_duration(&v.value) {
                    Ok(d) if !d.is_zero() => d,
                    Ok(_) => {
                        problems.push(at(
                            path,
                            &v.referenced,
                            format!("sinks.{name}.deliver_timeout: must be more than 0s"),
                        ));
                        DELIVER_TIMEOUT
                    }
                    Err(e) => {
                        problems.push(at(
                            path,
                            &v.referenced,
                            format!("sinks.{name}.deliver_timeout: {e}"),
                        ));
                        DELIVER_TIMEOUT
                    }
                },
            };
            sinks.insert(
                name,
                SinkConfig {
                    plugin: sink.plugin,
                    enabled: sink.enabled,
                    rate_limit,
                    max_queue: sink.max_queue.unwrap_or(100_000).max(1),
                    retry,
                    isolation: sink.isolation,
                    deliver_timeout,
                    settings,
                    settings_places,
                    line: loc.line() as u32,
                    col: loc.column() as u32,
                },
            );
        }

        let rules = match raw.rules {
            None => vec![resolve("rules")],
            Some(OneOrMany::One(p)) => vec![resolve(&p)],
            Some(OneOrMany::Many(ps)) => ps.iter().map(|p| resolve(p)).collect(),
        };
        let config = Config {
            path: path.to_path_buf(),
            server: Server {
                listen: listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9470))),
                token,
                max_body_bytes,
                insecure: raw.server.insecure.unwrap_or(false),
                listen_at: raw
                    .server
                    .listen
                    .as_ref()
                    .map(|l| (l.referenced.line() as u32, l.referenced.column() as u32)),
            },
            storage,
            plugin_dirs: raw.plugins.dirs.iter().map(|d| resolve(d)).collect(),
            plugin_strict_modes: raw.plugins.strict_modes.unwrap_or(true),
            rules,
            templates: resolve(raw.templates.as_deref().unwrap_or("templates")),
            sinks,
        };
        problems.into_result(config)
    }

    /// The sinks that are switched on.
    pub fn enabled_sinks(&self) -> impl Iterator<Item = (&String, &SinkConfig)> {
        self.sinks.iter().filter(|(_, s)| s.enabled)
    }
}

/// Reads `storage:`, reporting each bad value at its place.
fn storage(
    raw: RawStorage,
    path: &Path,
    resolve: &dyn Fn(&str) -> PathBuf,
    problems: &mut Diagnostics,
) -> Storage {
    let mut storage = Storage::new(resolve(raw.path.as_deref().unwrap_or("data")));
    if let Some(sync) = &raw.sync {
        match sync.value.to_ascii_lowercase().as_str() {
            "full" => storage.sync = SyncMode::Full,
            "normal" => storage.sync = SyncMode::Normal,
            _ => problems.push(at(
                path,
                &sync.referenced,
                format!(
                    "storage.sync: {:?} is not a mode: use full or normal",
                    sync.value
                ),
            )),
        }
    }
    if let Some(n) = raw.max_messages {
        storage.max_messages = n.max(1);
    }
    if let Some(s) = &raw.max_bytes {
        match parse_size(&s.value) {
            Ok(n) => storage.max_bytes = (n as u64).max(1),
            Err(e) => problems.push(at(path, &s.referenced, format!("storage.max_bytes: {e}"))),
        }
    }
    for (field, value, slot) in [
        (
            "keep_delivered",
            &raw.keep_delivered,
            &mut storage.keep_delivered,
        ),
        (
            "keep_dead_letters",
            &raw.keep_dead_letters,
            &mut storage.keep_dead_letters,
        ),
        ("dedup_window", &raw.dedup_window, &mut storage.dedup_window),
    ] {
        if let Some(v) = value {
            match parse_duration(&v.value) {
                Ok(d) => *slot = d,
                Err(e) => problems.push(at(path, &v.referenced, format!("storage.{field}: {e}"))),
            }
        }
    }
    storage
}

fn at(path: &Path, loc: &serde_saphyr::Location, message: String) -> Diagnostic {
    Diagnostic::new(path, loc.line() as u32, loc.column() as u32, message)
}

/// Names of sinks and rules: what fits in a metric label and a file name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, vars: &[(&str, &str)]) -> Result<Config, Diagnostics> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(Path::new("/etc/ar/router.yaml"), text, &|n| {
            vars.get(n).cloned()
        })
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = parse("sinks:\n  console:\n    plugin: console\n", &[]).unwrap();
        assert_eq!(c.server.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.storage.path, PathBuf::from("/etc/ar/data"));
        assert_eq!(c.rules, vec![PathBuf::from("/etc/ar/rules")]);
        assert_eq!(c.templates, PathBuf::from("/etc/ar/templates"));
        let s = &c.sinks["console"];
        assert!(s.enabled && s.rate_limit.is_none());
        assert_eq!((s.line, s.col), (3, 5));
    }

    #[test]
    fn full_sink() {
        let c = parse(
            "sinks:\n  tg:\n    plugin: telegram\n    rate_limit: {rate: 30/min, burst: 5}\n    max_queue: 10\n    retry: {max_attempts: 3, initial_backoff: 2s}\n    settings: {bot_token: \"${TG}\"}\n",
            &[("TG", "123:abc")],
        )
        .unwrap();
        let s = &c.sinks["tg"];
        assert_eq!(
            s.rate_limit,
            Some(RateLimit {
                period: Duration::from_secs(2),
                burst: 5
            })
        );
        assert_eq!(s.retry.max_attempts, 3);
        assert_eq!(s.retry.initial_backoff, Duration::from_secs(2));
        assert_eq!(s.settings["bot_token"], "123:abc");
    }

    #[test]
    fn each_setting_has_its_place() {
        let c = parse(
            "sinks:\n  a:\n    plugin: console\n    settings:\n      pth: out.txt\n      format: json\n  b:\n    plugin: console\n    settings: {format: text}\n  c:\n    plugin: console\n",
            &[],
        )
        .unwrap();
        let a = &c.sinks["a"].settings_places;
        assert_eq!(a.whole, Place { line: 5, col: 7 });
        assert_eq!(a.name_of("pth"), Place { line: 5, col: 7 });
        assert_eq!(a.value_of("format"), Place { line: 6, col: 15 });
        assert_eq!(a.name_of("absent"), a.whole);
        assert_eq!(c.sinks["a"].settings["pth"], "out.txt");
        let b = &c.sinks["b"].settings_places;
        assert_eq!(b.name_of("format"), Place { line: 9, col: 16 });
        let sink_c = &c.sinks["c"];
        assert_eq!(
            sink_c.settings_places.whole,
            Place {
                line: sink_c.line,
                col: sink_c.col
            },
            "no settings: the sink's place"
        );
        let err = parse("sinks:\n  a:\n    plugin: x\n    settings: [1]\n", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/ar/router.yaml:4:15: sinks.a.settings: must be a mapping of setting: value"
        );
    }

    #[test]
    fn missing_variable_names_it_and_where() {
        let err = parse("server:\n  token: ${API_TOKEN}\n", &[]).unwrap_err();
        assert_eq!(
            err.0[0].to_string(),
            "/etc/ar/router.yaml:2:10: environment variable API_TOKEN is not set: export it, add it to .env beside the config, or write ${API_TOKEN:-default}"
        );
        let c = parse(
            "server:\n  token: \"${API_TOKEN:-}\"\n  listen: ${L:-0.0.0.0:1}\n",
            &[],
        )
        .unwrap();
        assert!(c.server.token.is_none());
        assert_eq!(c.server.listen.port(), 1);
        assert_eq!(
            interpolate(Path::new("x"), "a $${B} $5", &|_| None).unwrap(),
            "a ${B} $5"
        );
    }

    #[test]
    fn a_variable_is_one_value_never_yaml_structure() {
        // A line break would have started new keys; ` #` a comment.
        let injected = "x\nstorage: {path: /etc}";
        let c = parse(
            "server:\n  token: ${T}\nsinks:\n  a:\n    plugin: console\n    settings: {path: ${P}, format: \"${F}\", note: '${N}'}\n",
            &[
                ("T", "abc #def"),
                ("P", injected),
                ("F", "say \"hi\" \\ there"),
                ("N", "it's"),
            ],
        )
        .expect("the values are read as values");
        assert_eq!(
            c.server.token.as_ref().map(|t| t.expose()),
            Some("abc #def")
        );
        assert_eq!(c.storage.path, PathBuf::from("/etc/ar/data"));
        let settings = &c.sinks["a"].settings;
        assert_eq!(settings["path"], injected);
        assert_eq!(settings["format"], "say \"hi\" \\ there");
        assert_eq!(settings["note"], "it's");

        // Where the value cannot be made one scalar, the error says what to do.
        let err = parse(
            "sinks:\n  a:\n    plugin: webhook\n    settings: {url: http://${H}/x}\n",
            &[("H", "h\nstorage: {path: /etc}")],
        )
        .unwrap_err();
        assert_eq!(
            err.0[0].to_string(),
            "/etc/ar/router.yaml:4:28: the value of H holds YAML syntax (a line break, ` #` or `: `) in the middle of an unquoted value, where it would change the file's structure: put the whole value in double quotes in router.yaml"
        );
        let err = parse("server:\n  token: '${T}'\n", &[("T", "a\nb")]).unwrap_err();
        assert!(
            err.to_string().contains("single quotes cannot hold"),
            "{err}"
        );
    }

    #[test]
    fn a_duration_too_long_is_an_error_at_its_place_not_a_panic() {
        let err = parse(
            "sinks:\n  a:\n    plugin: x\n    retry: {max_backoff: 99999999999999999999999d}\n",
            &[],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("router.yaml:4:26: sinks.a.retry.max_backoff: \"99999999999999999999999d\" is longer than 100 years"),
            "{err}"
        );
    }

    #[test]
    fn comments_are_not_interpolated() {
        // A `#` inside quotes or a word is no comment.
        let text = "# uses ${NOPE}\nk: v  # ${NOPE}\nc: \"#${X}\"\nd: a#${X}\n";
        assert_eq!(
            interpolate(Path::new("x"), text, &|_| Some("1".into())).unwrap(),
            "# uses ${NOPE}\nk: v  # ${NOPE}\nc: \"#1\"\nd: a#1\n"
        );
    }

    #[test]
    fn bad_values_are_all_reported_with_places() {
        let err = parse(
            "server:\n  listen: nowhere\nsinks:\n  a:\n    plugin: x\n    rate_limit: {rate: lots}\n",
            &[],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("router.yaml:2:11: server.listen"), "{text}");
        assert!(
            text.contains("router.yaml:6:24: sinks.a.rate_limit.rate"),
            "{text}"
        );
        let err = parse("sinks:\n  a:\n    plugin: x\n    colour: red\n", &[]).unwrap_err();
        assert!(err.to_string().contains(":4:"), "{err}");
    }

    #[test]
    fn rates_durations_sizes() {
        assert_eq!(parse_rate("30/min").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_rate("1/s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_rate("5/2s").unwrap(), Duration::from_millis(400));
        assert!(parse_rate("0/s").is_err() && parse_rate("fast").is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(parse_size("8MiB").unwrap(), 8 << 20);
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
    }

    fn dotenv_in(
        text: &str,
    ) -> (
        std::path::PathBuf,
        Result<HashMap<String, String>, Diagnostic>,
    ) {
        let dir = std::env::temp_dir().join(format!(
            "alert-router-dotenv-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let path = dir.join(".env");
        std::fs::write(&path, text).expect("write .env");
        let read = read_dotenv(&path);
        let _ = std::fs::remove_dir_all(&dir);
        (path, read)
    }

    #[test]
    fn a_dotenv_file_reads_as_dotenv_tools_read_it() {
        let (_, vars) = dotenv_in(
            "# the bot\nexport TELEGRAM_BOT_TOKEN=123:abc\nCHAT='42' # a comment\n\
             NAME=\"two words\"\nLITERAL='pa$$word'\nURL=https://x.test/a#b\n",
        );
        let vars = vars.expect("a valid .env");
        assert_eq!(vars["TELEGRAM_BOT_TOKEN"], "123:abc");
        assert_eq!(vars["CHAT"], "42");
        assert_eq!(vars["NAME"], "two words");
        assert_eq!(
            vars["LITERAL"], "pa$$word",
            "single quotes keep `$` as it is"
        );
        assert_eq!(vars.len(), 5);
    }

    #[test]
    fn a_missing_dotenv_is_empty_and_a_bad_line_is_named_with_its_place() {
        let missing = read_dotenv(Path::new("/nonexistent/alert-router/.env"));
        assert_eq!(missing.ok(), Some(HashMap::new()));
        let (path, read) = dotenv_in("A=1\nthis is not a variable\n");
        let error = read.expect_err("the second line is refused").to_string();
        let place = format!("{}:2:", path.display());
        assert!(error.starts_with(&place), "{error}");
        assert!(error.contains("write KEY=VALUE"), "{error}");
    }
}
