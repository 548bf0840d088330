//! The plugin's side: `alert-router plugin-host`, the process a sink with
//! `isolation: process` runs its plugin in. It loads the library as the router would,
//! then serves the router's calls on the socket it got as stdin: `create` once,
//! `deliver` one at a time, `destroy` last. The plugin's calls into the host travel back
//! to the router. When the router goes away, so does this process.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use alert_router_plugin::{HostError, HostErrorKind, ffi};

use super::frames::{self, CallError, Frame, Peer, Reply};
use crate::plugins::host::{Health, HostServices};
use crate::plugins::{Catalog, Delivery, Instance, Plugin};

/// What `plugin-host` is told on its command line.
#[derive(Debug, Clone)]
pub struct HostArgs {
    /// The library, as the router found it.
    pub plugin: PathBuf,
    /// The version the router loaded: a file replaced since is refused here (the
    /// router's next reload loads the new one).
    pub version: String,
    /// Where to make the private copy (the router's own copies directory).
    pub copies: PathBuf,
    /// `plugins.strict_modes: false`.
    pub lax: bool,
}

/// Runs the plugin host until the router says `destroy` or goes away. Errors before
/// the socket is served are returned (and printed by the caller).
pub fn serve(args: &HostArgs) -> io::Result<()> {
    let socket = take_stdin()?;
    let reading = socket.try_clone()?;
    let peer = Arc::new(Peer::new(socket));
    let (calls, next_call) = mpsc::channel::<Frame>();
    {
        let peer = peer.clone();
        std::thread::Builder::new()
            .name("plugin-host-reader".into())
            .spawn(move || {
                frames::read_loop(&peer, reading, |frame| {
                    let _ = calls.send(frame);
                });
                // The router is gone (or closed its end): nothing is left to do here,
                // whatever the plugin's threads are doing.
                std::process::exit(0);
            })?;
    }
    let loaded = load(args);
    let mut instance: Option<Instance> = None;
    while let Ok(call) = next_call.recv() {
        let reply = match call.kind {
            frames::CREATE => {
                let (sink, settings) = call.split();
                match &loaded {
                    Ok(plugin) => create(plugin, &peer, sink, settings, &mut instance),
                    Err(why) => refusal(why.clone()),
                }
            }
            frames::VALIDATE => {
                let (sink, settings) = call.split();
                match &loaded {
                    Ok(plugin) => validate(plugin, sink, settings),
                    Err(why) => refusal(why.clone()),
                }
            }
            frames::DELIVER => match instance.as_mut() {
                Some(instance) => delivered(instance.deliver(&call.body)),
                None => Reply {
                    code: ffi::AR_RETRY,
                    after_ms: 0,
                    text: "no instance in the plugin's process".into(),
                },
            },
            frames::DESTROY => {
                drop(instance.take());
                let _ = peer.reply(call.id, &Reply::ok(""));
                return Ok(());
            }
            other => refusal(format!(
                "the plugin host does not serve frames of kind {other}"
            )),
        };
        if peer.reply(call.id, &reply).is_err() {
            break;
        }
    }
    Ok(())
}

/// The socket the router handed over as stdin; stdin becomes /dev/null, so a plugin
/// that reads it cannot eat the protocol.
fn take_stdin() -> io::Result<UnixStream> {
    // SAFETY: dup(2) of fd 0, which the router made our end of a socket pair; the new
    // descriptor is owned by nothing else. dup2(2) then points fd 0 at /dev/null.
    let socket = unsafe {
        let fd = libc::dup(0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        OwnedFd::from_raw_fd(fd)
    };
    let null = std::fs::File::open("/dev/null")?;
    // SAFETY: both descriptors are open; fd 0 is replaced, which std does not cache.
    if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(UnixStream::from(socket))
}

/// Loads the library the router named, as the router's catalog does.
fn load(args: &HostArgs) -> Result<Arc<Plugin>, String> {
    let dir = args.plugin.parent().unwrap_or(Path::new("."));
    let name = args
        .plugin
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("lib"))
        .and_then(|n| n.strip_suffix(".so"))
        .ok_or_else(|| format!("{} is not named lib<name>.so", args.plugin.display()))?;
    let plugin = Catalog::new(vec![dir.to_path_buf()])
        .copying_beside(args.copies.clone())
        .strict_modes(!args.lax)
        .load(name)
        .map_err(|e| e.to_string())?;
    if plugin.version() != args.version {
        return Err(format!(
            "{} changed since the router loaded it (version {}, now {}): the router's next reload loads the new file",
            args.plugin.display(),
            args.version,
            plugin.version()
        ));
    }
    Ok(plugin)
}

fn create(
    plugin: &Arc<Plugin>,
    peer: &Arc<Peer>,
    sink: &[u8],
    settings: &[u8],
    instance: &mut Option<Instance>,
) -> Reply {
    let sink = String::from_utf8_lossy(sink).into_owned();
    let settings = match serde_json::from_slice::<serde_json::Value>(settings) {
        Ok(settings) => settings,
        Err(e) => return refusal(format!("the settings the router sent are not JSON: {e}")),
    };
    let services = Arc::new(RemoteHost { peer: peer.clone() });
    match plugin.create(&sink, &settings, services) {
        Ok(created) => {
            let peer = peer.clone();
            created.send_health_to(Arc::new(move |health| {
                let (flag, reason) = match &health {
                    Health::Healthy => ("1", ""),
                    Health::Unhealthy(reason) => ("0", reason.as_str()),
                };
                let _ = peer.send(
                    frames::HEALTH,
                    0,
                    &[flag.as_bytes(), b"\0", reason.as_bytes()],
                );
            }));
            *instance = Some(created);
            Reply::ok("")
        }
        Err(crate::plugins::PluginError::Refused { reason, .. }) => refusal(reason),
        Err(e) => refusal(e.to_string()),
    }
}

fn validate(plugin: &Plugin, sink: &[u8], settings: &[u8]) -> Reply {
    let sink = String::from_utf8_lossy(sink);
    match serde_json::from_slice::<serde_json::Value>(settings) {
        Ok(settings) => match plugin.validate(&sink, &settings) {
            Ok(()) => Reply::ok(""),
            Err(crate::plugins::PluginError::Refused { reason, .. }) => refusal(reason),
            Err(e) => refusal(e.to_string()),
        },
        Err(e) => refusal(format!("the settings the router sent are not JSON: {e}")),
    }
}

fn refusal(text: String) -> Reply {
    Reply {
        code: 1,
        after_ms: 0,
        text,
    }
}

fn delivered(delivery: Delivery) -> Reply {
    let (code, after_ms, text) = match delivery {
        Delivery::Ok => (ffi::AR_OK, 0, String::new()),
        Delivery::Retry { after, reason } => (
            ffi::AR_RETRY,
            after.map_or(0, |a| a.as_millis().clamp(1, u128::from(u64::MAX)) as u64),
            reason,
        ),
        Delivery::Fail { reason } | Delivery::Crashed { reason } => (ffi::AR_FAIL, 0, reason),
    };
    Reply {
        code,
        after_ms,
        text,
    }
}

/// The host's services, asked of the router over the socket.
struct RemoteHost {
    peer: Arc<Peer>,
}

impl RemoteHost {
    fn ask(&self, kind: u8, body: &[&[u8]]) -> Result<String, HostError> {
        match self.peer.call(kind, body, None) {
            Ok(reply) if reply.code == ffi::AR_HOST_OK => Ok(reply.text),
            Ok(reply) => Err(HostError::new(
                HostErrorKind::from_code(reply.code),
                reply.text,
            )),
            Err(CallError::Closed | CallError::TimedOut) => {
                Err(HostError::unavailable("the router is stopping"))
            }
        }
    }
}

impl HostServices for RemoteHost {
    fn query(&self, _sink: &str, path: &str) -> Result<String, HostError> {
        self.ask(frames::QUERY, &[path.as_bytes()])
    }

    fn emit(&self, _sink: &str, event_json: &[u8]) -> Result<String, HostError> {
        self.ask(frames::EMIT, &[event_json])
    }

    fn render(&self, _sink: &str, name: &str, context_json: &[u8]) -> Result<String, HostError> {
        self.ask(frames::RENDER, &[name.as_bytes(), b"\0", context_json])
    }

    fn request(
        &self,
        _sink: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<String, HostError> {
        // A NUL would move the frame's separators: the router would read another call.
        if method.contains('\0') || path.contains('\0') {
            return Err(HostError::bad_request(
                "the request method or path holds a NUL byte",
            ));
        }
        self.ask(
            frames::REQUEST,
            &[method.as_bytes(), b"\0", path.as_bytes(), b"\0", body],
        )
    }
}
