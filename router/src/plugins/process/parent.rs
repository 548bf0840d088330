//! The router's side: one sink's plugin instance living in a child process of the
//! router's own executable (`alert-router plugin-host`), started with the instance,
//! started again after a crash, killed past `deliver_timeout`.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use alert_router_plugin::HostError;

use super::frames::{self, CallError, Frame, Peer, Reply};
use crate::plugins::error::plugin_text;
use crate::plugins::host::{Health, HealthReports, HostServices};
use crate::plugins::{Delivery, Plugin, PluginError};

/// How a sink's plugin runs in a process of its own.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// The router's executable, which serves `plugin-host`.
    pub program: PathBuf,
    /// Where the child makes its private copy of the library (the router's own
    /// `<storage.path>/plugin-copies`).
    pub copies: PathBuf,
    /// `plugins.strict_modes`, for the child's load of the file.
    pub strict: bool,
    /// How long `create` and each `deliver` may take before the process is killed.
    pub deliver_timeout: Duration,
}

/// How long `destroy` may take before the process is killed.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(2);

/// A child process running one instance.
struct Running {
    child: Child,
    peer: Arc<Peer>,
    reader: Option<JoinHandle<()>>,
}

/// One sink's instance in a child process.
pub struct ProcessInstance {
    plugin: Arc<Plugin>,
    sink: String,
    settings_json: String,
    services: Arc<dyn HostServices>,
    options: ProcessOptions,
    health: Arc<HealthReports>,
    running: Option<Running>,
}

impl ProcessInstance {
    /// Starts the child and creates the instance in it.
    pub fn create(
        plugin: &Arc<Plugin>,
        sink: &str,
        settings_json: String,
        services: Arc<dyn HostServices>,
        options: ProcessOptions,
    ) -> Result<ProcessInstance, PluginError> {
        let mut instance = ProcessInstance {
            plugin: plugin.clone(),
            sink: sink.to_owned(),
            settings_json,
            services,
            options,
            health: Arc::new(HealthReports::default()),
            running: None,
        };
        instance.start()?;
        Ok(instance)
    }

    pub fn health(&self) -> &HealthReports {
        &self.health
    }

    /// The child's process id, while one runs.
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.child.id())
    }

    fn refused(&self, reason: String) -> PluginError {
        PluginError::Refused {
            sink: self.sink.clone(),
            plugin: self.plugin.name().to_owned(),
            path: self.plugin.path().to_owned(),
            reason,
        }
    }

    /// Asks the plugin's `validate`, in a process of its own started for the question:
    /// a crash there is a refusal, not the router's end.
    pub fn validate(
        plugin: &Arc<Plugin>,
        sink: &str,
        settings_json: String,
        options: ProcessOptions,
    ) -> Result<(), PluginError> {
        let probe = ProcessInstance {
            plugin: plugin.clone(),
            sink: sink.to_owned(),
            settings_json,
            services: Arc::new(NoHost),
            options,
            health: Arc::new(HealthReports::default()),
            running: None,
        };
        let mut running = probe.start_with(frames::VALIDATE, "validate")?;
        running.stop(DESTROY_TIMEOUT);
        Ok(())
    }

    fn start(&mut self) -> Result<(), PluginError> {
        let running = self.start_with(frames::CREATE, "create")?;
        tracing::info!(sink = %self.sink, plugin = %self.plugin.name(), pid = running.child.id(), "the plugin runs in a process of its own");
        self.running = Some(running);
        Ok(())
    }

    /// Starts a child and makes the call `kind` (`create`, `validate`) with the sink's
    /// name and settings; the child is returned once the call succeeded.
    fn start_with(&self, kind: u8, what: &str) -> Result<Running, PluginError> {
        let (ours, theirs) = UnixStream::pair().map_err(|e| self.cannot_start(&e))?;
        let reading = ours.try_clone().map_err(|e| self.cannot_start(&e))?;
        let mut command = Command::new(&self.options.program);
        command
            .arg("plugin-host")
            .arg("--plugin")
            .arg(self.plugin.path())
            .arg("--plugin-version")
            .arg(self.plugin.version())
            .arg("--copies")
            .arg(&self.options.copies)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            // Its own process group: a Ctrl-C at the router's terminal is the router's to
            // handle (it destroys the instance), and a timeout kills the whole group.
            .process_group(0);
        if !self.options.strict {
            command.arg("--lax");
        }
        let child = command.spawn().map_err(|e| self.cannot_start(&e))?;
        // The command holds the child's end of the socket: only the child may keep it
        // open, or its death would never reach the reader as the end of the stream.
        drop(command);
        let peer = Arc::new(Peer::new(ours));
        let reader = {
            let peer = peer.clone();
            let services = self.services.clone();
            let health = self.health.clone();
            let sink = self.sink.clone();
            std::thread::Builder::new()
                .name(format!("plugin-{}", self.sink))
                .spawn(move || {
                    let replier = peer.clone();
                    frames::read_loop(&peer, reading, |frame| {
                        host_call(&replier, &*services, &health, &sink, frame);
                    });
                })
                .map_err(|e| self.cannot_start(&e))?
        };
        let mut running = Running {
            child,
            peer,
            reader: Some(reader),
        };
        let answer = running.peer.call(
            kind,
            &[self.sink.as_bytes(), b"\0", self.settings_json.as_bytes()],
            Some(self.options.deliver_timeout),
        );
        match answer {
            Ok(reply) if reply.code == 0 => Ok(running),
            Ok(reply) => {
                running.stop(DESTROY_TIMEOUT);
                Err(self.refused(reply.text))
            }
            Err(e) => {
                let status = running.end(matches!(e, CallError::TimedOut));
                Err(self.refused(format!(
                    "its process {} before {what} returned",
                    ended(status, self.options.deliver_timeout, &e)
                )))
            }
        }
    }

    fn cannot_start(&self, e: &std::io::Error) -> PluginError {
        self.refused(format!(
            "cannot start its process ({}): {e}",
            self.options.program.display()
        ))
    }

    /// One delivery attempt in the child. A crash of the child is a
    /// [`Delivery::Crashed`]; a `deliver` past the timeout kills the child and is a retry.
    /// The next attempt starts a new child.
    pub fn deliver(&mut self, message_json: &[u8]) -> Delivery {
        if self.running.is_none()
            && let Err(e) = self.start()
        {
            return Delivery::Retry {
                after: None,
                reason: format!("the plugin's process did not start again: {e}"),
            };
        }
        let Some(running) = self.running.as_mut() else {
            return Delivery::Retry {
                after: None,
                reason: "the plugin's process is not running".to_owned(),
            };
        };
        let timeout = self.options.deliver_timeout;
        match running
            .peer
            .call(frames::DELIVER, &[message_json], Some(timeout))
        {
            // The child passed the plugin's answer on as it was.
            Ok(reply) => Delivery::from_answer(
                self.plugin.name(),
                reply.code,
                reply.after_ms,
                reply.text.as_bytes(),
            ),
            Err(e) => {
                let timed_out = matches!(e, CallError::TimedOut);
                let status = running.end(timed_out);
                self.running = None;
                let what = ended(status, timeout, &e);
                if timed_out {
                    tracing::warn!(sink = %self.sink, "deliver did not return within deliver_timeout ({}s): the plugin's process was killed", timeout.as_secs_f64());
                    Delivery::Retry {
                        after: None,
                        reason: format!(
                            "the plugin's process {what}; the next attempt starts a new one"
                        ),
                    }
                } else {
                    tracing::error!(sink = %self.sink, plugin = %self.plugin.name(), "the plugin's process {what} during deliver; the next attempt starts a new one");
                    Delivery::Crashed {
                        reason: format!("the plugin's process {what} during deliver"),
                    }
                }
            }
        }
    }
}

impl Drop for ProcessInstance {
    /// Destroys the instance in the child and waits for the child to exit (killing it
    /// after a short while).
    fn drop(&mut self) {
        if let Some(mut running) = self.running.take() {
            running.stop(DESTROY_TIMEOUT);
        }
    }
}

impl Running {
    /// Calls `destroy` and waits for the child to exit, killing it after `timeout`.
    fn stop(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let _ = self.peer.call(frames::DESTROY, &[], Some(timeout));
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                self.join_reader();
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.end(true);
    }

    /// Reaps the child after its end, `kill`ing its process group first when asked, or
    /// when it has not exited a second after it closed its end.
    fn end(&mut self, kill: bool) -> Option<ExitStatus> {
        if !kill {
            let deadline = Instant::now() + Duration::from_secs(1);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = self.child.try_wait() {
                    self.join_reader();
                    return Some(status);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // SAFETY: kill(2) on the child's own process group (its pid, made leader at
        // spawn); no memory is involved.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let status = self.child.wait().ok();
        self.join_reader();
        status
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// How the child ended, for a reason: "died of SIGSEGV (signal 11)", "exited with
/// status 3", "was killed after deliver_timeout (60s)".
fn ended(status: Option<ExitStatus>, timeout: Duration, e: &CallError) -> String {
    if let CallError::TimedOut = e {
        return format!(
            "was killed: it did not answer within deliver_timeout ({}s)",
            timeout.as_secs_f64()
        );
    }
    match status {
        Some(s) => match (s.signal(), s.code()) {
            (Some(signal), _) => format!("died of {}", crate::outbox::signal_name(signal)),
            (None, Some(code)) => format!("exited with status {code}"),
            (None, None) => "ended".to_owned(),
        },
        None => "ended (its status is unknown)".to_owned(),
    }
}

/// The host of a process started only to ask `validate`, which may not call the host.
struct NoHost;

impl HostServices for NoHost {
    fn query(&self, _sink: &str, _path: &str) -> Result<String, HostError> {
        Err(HostError::unavailable("validate may not call the host"))
    }

    fn emit(&self, _sink: &str, _event_json: &[u8]) -> Result<String, HostError> {
        Err(HostError::unavailable("validate may not call the host"))
    }

    fn render(&self, _sink: &str, _name: &str, _context: &[u8]) -> Result<String, HostError> {
        Err(HostError::unavailable("validate may not call the host"))
    }

    fn request(&self, _: &str, _: &str, _: &str, _: &[u8]) -> Result<String, HostError> {
        Err(HostError::unavailable("validate may not call the host"))
    }
}

/// Serves one call the plugin made from its process.
fn host_call(
    peer: &Peer,
    services: &dyn HostServices,
    health: &HealthReports,
    sink: &str,
    frame: Frame,
) {
    let answer = |result: Result<String, HostError>| {
        let reply = match result {
            Ok(text) => Reply::ok(text),
            Err(e) => Reply {
                code: e.kind().code(),
                after_ms: 0,
                text: e.message().to_owned(),
            },
        };
        let _ = peer.reply(frame.id, &reply);
    };
    match frame.kind {
        frames::QUERY => answer(
            std::str::from_utf8(&frame.body)
                .map_err(|_| HostError::bad_request("the query path is not UTF-8"))
                .and_then(|path| services.query(sink, path)),
        ),
        frames::EMIT => answer(services.emit(sink, &frame.body)),
        frames::RENDER => {
            let (name, context) = frame.split();
            answer(
                std::str::from_utf8(name)
                    .map_err(|_| HostError::bad_request("the template name is not UTF-8"))
                    .and_then(|name| services.render(sink, name, context)),
            )
        }
        frames::REQUEST => {
            let (method, rest) = frame.split();
            let (path, body) = frames::split_at_nul(rest);
            answer(
                std::str::from_utf8(method)
                    .map_err(|_| HostError::bad_request("the request method is not UTF-8"))
                    .and_then(|method| {
                        let path = std::str::from_utf8(path)
                            .map_err(|_| HostError::bad_request("the request path is not UTF-8"))?;
                        services.request(sink, method, path, body)
                    }),
            )
        }
        frames::HEALTH => {
            let (flag, reason) = frame.split();
            health.report(if flag == b"1" {
                Health::Healthy
            } else {
                Health::Unhealthy(plugin_text(reason))
            });
        }
        other => {
            tracing::warn!(
                sink,
                kind = other,
                "the plugin's process sent a frame the router does not know; ignored"
            );
        }
    }
}
