//! [`Instance`]: one sink's running instance of a plugin, and [`Delivery`], how one
//! delivery attempt went.

use std::ffi::{c_char, c_void};
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use alert_router_plugin::ffi;

use super::Plugin;
use super::error::plugin_text;
use super::host::{HealthListener, HostTable};
use super::process::ProcessInstance;

/// How one delivery attempt went, as the plugin reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered.
    Ok,
    /// Not delivered, worth another attempt. `after` is the pause the upstream asked for
    /// (unbounded: the caller caps it); `None` leaves the backoff to the router.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Not delivered and never will be: dead-letter it.
    Fail { reason: String },
    /// The plugin's process crashed (or exited) during the attempt: a failed attempt that
    /// also counts against `max_crashes`. Only an instance in a process of its own can
    /// say this; in the router's process a crash ends the router.
    Crashed { reason: String },
}

/// A plugin instance for one sink, in the router's process or in one of its own. Owned
/// by that sink's worker; dropping it calls the plugin's `destroy` (exactly once).
pub struct Instance {
    inner: Inner,
    plugin: Arc<Plugin>,
    sink: String,
}

enum Inner {
    InProcess(Loaded),
    Process(ProcessInstance),
    /// No plugin code runs: each message is handed to the function (`alert-router test`
    /// and `replay`, which show what would be sent without sending it).
    Capture(Capture),
}

/// Where a captured message goes: the sink's name and the message as `deliver` gets it.
pub type Capture = Arc<dyn Fn(&str, &[u8]) + Send + Sync>;

/// An instance in the router's process.
struct Loaded {
    handle: NonNull<c_void>,
    /// The plugin reads it. Dropped after `Drop::drop` has called `destroy`, which ends
    /// the table (later calls fail as Unavailable) but never frees it, as the header
    /// promises: a plugin thread may outlive the instance.
    host: HostTable,
    plugin: Arc<Plugin>,
}

// SAFETY: the header lets an instance be created on one router thread and used on another
// (the sink's); `&mut self` on `deliver` keeps calls from overlapping.
unsafe impl Send for Loaded {}

impl Instance {
    pub(super) fn new(
        plugin: Arc<Plugin>,
        sink: &str,
        handle: NonNull<c_void>,
        host: HostTable,
    ) -> Instance {
        Instance {
            inner: Inner::InProcess(Loaded {
                handle,
                host,
                plugin: plugin.clone(),
            }),
            plugin,
            sink: sink.to_owned(),
        }
    }

    pub(super) fn in_process_of_its_own(
        plugin: Arc<Plugin>,
        sink: &str,
        process: ProcessInstance,
    ) -> Instance {
        Instance {
            inner: Inner::Process(process),
            plugin,
            sink: sink.to_owned(),
        }
    }

    /// An instance that runs none of the plugin's code: [`Instance::deliver`] hands each
    /// message to `capture` and answers delivered.
    pub fn capture(plugin: Arc<Plugin>, sink: &str, capture: Capture) -> Instance {
        Instance {
            inner: Inner::Capture(capture),
            plugin,
            sink: sink.to_owned(),
        }
    }

    /// Whether the plugin runs in a process of its own (`isolation: process`).
    pub fn is_isolated(&self) -> bool {
        matches!(self.inner, Inner::Process(_))
    }

    /// The process the plugin runs in, while one runs, if it is not the router's.
    pub fn pid(&self) -> Option<u32> {
        match &self.inner {
            Inner::Process(p) => p.pid(),
            Inner::InProcess(_) | Inner::Capture(_) => None,
        }
    }

    /// Makes one delivery attempt of `message_json` (the message object the header
    /// describes: `id`, `sink`, `attempt`, `payload`, `event`).
    ///
    /// Blocking: the plugin talks to its upstream before it returns. Call it from the
    /// sink's dedicated thread or `spawn_blocking`, never on the async runtime.
    ///
    /// A return code other than AR_OK, AR_RETRY or AR_FAIL is a [`Delivery::Fail`] naming
    /// the code. Reasons are made one line and bounded in length.
    pub fn deliver(&mut self, message_json: &[u8]) -> Delivery {
        match &mut self.inner {
            Inner::InProcess(loaded) => loaded.deliver(message_json),
            Inner::Process(process) => process.deliver(message_json),
            Inner::Capture(capture) => {
                capture(&self.sink, message_json);
                Delivery::Ok
            }
        }
    }

    /// Sends what the plugin reports about its health (`ar_host.set_health`) to
    /// `listener`: the report it made before, if any, at once, then each as it comes.
    /// Call it when the instance starts delivering for its sink.
    pub fn send_health_to(&self, listener: HealthListener) {
        match &self.inner {
            Inner::InProcess(loaded) => loaded.host.health().pass_on_to(listener),
            Inner::Process(process) => process.health().pass_on_to(listener),
            Inner::Capture(_) => {}
        }
    }

    /// The plugin this is an instance of.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// The sink this instance delivers for.
    pub fn sink(&self) -> &str {
        &self.sink
    }
}

impl Loaded {
    fn deliver(&mut self, message_json: &[u8]) -> Delivery {
        let mut retry_after_ms: u64 = 0;
        let mut reason = Vec::<u8>::new();
        // SAFETY: the handle came from this plugin's `create` and is not destroyed (that
        // happens in Drop); the message and the out-parameters outlive the call.
        let rc = unsafe {
            (self.plugin.deliver_fn)(
                self.handle.as_ptr(),
                message_json.as_ptr().cast::<c_char>(),
                message_json.len(),
                &mut retry_after_ms,
                ffi::write_to_vec,
                (&raw mut reason).cast::<c_void>(),
            )
        };
        Delivery::from_answer(self.plugin.name(), rc, retry_after_ms, &reason)
    }
}

impl Delivery {
    /// What a plugin's `deliver` answered: its return code, the retry-after it set and
    /// the reason it wrote. A code other than AR_OK, AR_RETRY or AR_FAIL is a failure
    /// naming the code. Reasons are made one line and bounded in length.
    pub(super) fn from_answer(
        plugin: &str,
        rc: i32,
        retry_after_ms: u64,
        reason: &[u8],
    ) -> Delivery {
        let reason = plugin_text(reason);
        let or = |fallback: &str| {
            if reason.is_empty() {
                fallback.to_owned()
            } else {
                reason.clone()
            }
        };
        match rc {
            ffi::AR_OK => Delivery::Ok,
            ffi::AR_RETRY => Delivery::Retry {
                after: (retry_after_ms > 0).then(|| Duration::from_millis(retry_after_ms)),
                reason: or("the plugin asked for a retry without giving a reason"),
            },
            ffi::AR_FAIL => Delivery::Fail {
                reason: or("the plugin failed the delivery without giving a reason"),
            },
            other => Delivery::Fail {
                reason: format!(
                    "plugin `{plugin}` returned {other} from deliver, which is none of AR_OK (0), AR_RETRY (1), AR_FAIL (2){}",
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!("; its reason: {reason}")
                    }
                ),
            },
        }
    }
}

impl Drop for Loaded {
    /// Calls the plugin's `destroy`, which stops the instance's threads. Blocking, like
    /// `deliver`: drop instances off the async runtime.
    fn drop(&mut self) {
        // SAFETY: the handle came from `create`; Drop runs once, after every `deliver`
        // returned (they borrow `self`). `host` is ended (not freed) after this.
        unsafe { (self.plugin.destroy_fn)(self.handle.as_ptr()) };
    }
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("sink", &self.sink)
            .field("plugin", &self.plugin.name())
            .finish_non_exhaustive()
    }
}
