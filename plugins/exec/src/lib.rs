//! The exec sink: runs a program for each message, so that a sink can be ten lines of
//! Python or shell.
//!
//! The program gets the rendered payload as one JSON document on its stdin, and
//! `ALERT_ROUTER_SINK`, `ALERT_ROUTER_MESSAGE_ID`, `ALERT_ROUTER_ATTEMPT`,
//! `ALERT_ROUTER_EVENT_ID` and `ALERT_ROUTER_EVENT_TYPE` in its environment. Its exit
//! status is the answer: 0 delivered, 75 (`EX_TEMPFAIL`) try again later, anything else
//! failed for good. Killed by a signal, or still running at `timeout` (then its whole
//! process group is killed), it is tried again. The last lines it wrote to stderr are
//! the reason. No shell runs unless the command names one (`["sh", "-c", "..."]`).
//!
//! Its settings are [`Settings`].

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use alert_router_plugin::{DurationSetting, Host, Message, Outcome, Secret, Sink, export_plugin};
use schemars::JsonSchema;
use serde::Deserialize;

/// How long the program may run when `timeout` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const MIN_TIMEOUT: Duration = Duration::from_millis(10);
/// The sink's thread waits this long at most.
const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// The exit status that asks for another attempt (sysexits.h `EX_TEMPFAIL`).
const TRY_AGAIN: i32 = 75;
/// The tail of stderr kept for the reason, in bytes.
const STDERR_TAIL: usize = 2048;
/// The longest reason, in characters.
const REASON_MAX: usize = 500;

/// An exec sink's `settings` in router.yaml; the plugin's manifest describes them from
/// this type.
///
/// ```yaml
/// settings:
///   command: [python3, /etc/alert-router/page.py, --team, ops]
///   timeout: 30s
///   env: {PAGER_TOKEN: "${PAGER_TOKEN}"}
/// ```
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The program and its arguments, run without a shell. A program without a `/` is
    /// looked for on PATH.
    command: Vec<String>,
    /// How long one run may take: `30s` (the default), `500ms`, or a number of seconds.
    /// Past it, its process group is killed and the message is tried again.
    #[serde(default)]
    timeout: Option<DurationSetting>,
    /// Extra environment variables for the program. Values are secrets: never logged.
    #[serde(default)]
    env: BTreeMap<String, Secret>,
    /// The directory the program runs in; the router's when absent.
    #[serde(default)]
    working_dir: Option<PathBuf>,
}

pub struct Exec {
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
    env: BTreeMap<String, Secret>,
    working_dir: Option<PathBuf>,
}

impl Sink for Exec {
    type Settings = Settings;

    /// The program is an executable file (on PATH when it has no `/`), the timeout in
    /// range and the working directory one: checked as `create` does.
    fn validate(settings: &Settings) -> Result<(), String> {
        checked(settings).map(drop)
    }

    fn create(host: Host, settings: Settings) -> Result<Self, String> {
        let (program, timeout) = checked(&settings)?;
        host.debug(&format!("runs {} per message", program.display()));
        Ok(Exec {
            program,
            args: settings.command.into_iter().skip(1).collect(),
            timeout,
            env: settings.env,
            working_dir: settings.working_dir,
        })
    }

    fn deliver(&mut self, message: Message) -> Outcome {
        let outcome = self.run(&message);
        let secrets = self.env.values().map(Secret::expose);
        match outcome {
            Outcome::Retry { after, reason } => Outcome::Retry {
                after,
                reason: alert_router_plugin::redact(&reason, secrets),
            },
            Outcome::Fail { reason } => {
                Outcome::fail(alert_router_plugin::redact(&reason, secrets))
            }
            Outcome::Ok => Outcome::Ok,
        }
    }
}

impl Exec {
    fn run(&self, message: &Message) -> Outcome {
        let name = self.program.display();
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v.expose())))
            .env("ALERT_ROUTER_SINK", &message.sink)
            .env("ALERT_ROUTER_MESSAGE_ID", &message.id)
            .env("ALERT_ROUTER_ATTEMPT", message.attempt.to_string())
            .env("ALERT_ROUTER_EVENT_ID", text(&message.event, "id"))
            .env("ALERT_ROUTER_EVENT_TYPE", text(&message.event, "type"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills what it started too.
            .process_group(0);
        if let Some(dir) = &self.working_dir {
            command.current_dir(dir);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return Outcome::fail(format!("cannot start {name}: {e}")),
        };
        let body = format!("{}\n", message.payload);
        let stdin = child.stdin.take();
        // Written from a thread: a program that does not read its stdin must not block us.
        let writer = std::thread::spawn(move || {
            if let Some(mut stdin) = stdin {
                // A program that exits without reading closes the pipe: not our failure.
                let _ = stdin.write_all(body.as_bytes());
            }
        });
        let stderr = child.stderr.take();
        let reader = std::thread::spawn(move || stderr.map(read_tail).unwrap_or_default());
        let (status, timed_out) = wait(child, self.timeout);
        let _ = writer.join();
        let said = reader.join().unwrap_or_default();
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        match (status, timed_out) {
            (_, true) => Outcome::retry(format!(
                "{name} ran longer than its timeout ({} s) and was killed{said}",
                self.timeout.as_secs_f64()
            )),
            (None, false) => Outcome::retry(format!("cannot wait for {name}{said}")),
            (Some(status), false) => answer(&name.to_string(), status, &said),
        }
    }
}

/// What an exit status means for the message.
fn answer(name: &str, status: ExitStatus, said: &str) -> Outcome {
    match (status.code(), status.signal()) {
        (Some(0), _) => Outcome::Ok,
        (Some(TRY_AGAIN), _) => {
            Outcome::retry(format!("{name} asked to try again (exit 75){said}"))
        }
        (Some(code), _) => Outcome::fail(format!("{name} exited with status {code}{said}")),
        (None, Some(signal)) => {
            Outcome::retry(format!("{name} was killed by signal {signal}{said}"))
        }
        (None, None) => Outcome::retry(format!("{name} ended without a status{said}")),
    }
}

/// Waits for `child` at most `timeout`; past it, kills its process group and reaps it.
/// Returns the status (when it could be had) and whether the timeout struck.
fn wait(mut child: Child, timeout: Duration) -> (Option<ExitStatus>, bool) {
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    // `Child::wait` blocks; a thread lets this one wait with a deadline instead.
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = done.send(());
        status.ok()
    });
    let timed_out = match finished.recv_timeout(timeout) {
        Ok(()) | Err(RecvTimeoutError::Disconnected) => false,
        Err(RecvTimeoutError::Timeout) => {
            if let Ok(group) = i32::try_from(pid) {
                // SAFETY: kill(2) with a negative pid signals the process group the child
                // leads (spawned with process_group(0)); it touches no memory of ours.
                unsafe { libc::kill(-group, libc::SIGKILL) };
            }
            true
        }
    };
    (waiter.join().ok().flatten(), timed_out)
}

/// The last lines of what the program wrote, as one line, at most [`REASON_MAX`]
/// characters.
fn read_tail(mut from: impl Read) -> String {
    let mut tail: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match from.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&tail);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let joined = lines.join(" | ");
    let skip = joined.chars().count().saturating_sub(REASON_MAX);
    joined.chars().skip(skip).collect()
}

fn text<'a>(value: &'a serde_json::Value, key: &str) -> &'a str {
    value.get(key).and_then(|v| v.as_str()).unwrap_or_default()
}

/// What `validate` and `create` check: the program found, and the timeout.
fn checked(settings: &Settings) -> Result<(PathBuf, Duration), String> {
    let Some(program) = settings.command.first().filter(|p| !p.trim().is_empty()) else {
        return Err(
            "settings.command: give the program and its arguments, e.g. [python3, /path/to/sink.py]"
                .to_owned(),
        );
    };
    let program = find_program(program)?;
    let timeout = settings
        .timeout
        .as_ref()
        .map_or(Ok(DEFAULT_TIMEOUT), |t| t.within(MIN_TIMEOUT, MAX_TIMEOUT))
        .map_err(|e| format!("settings.timeout: {e}"))?;
    if let Some(dir) = &settings.working_dir
        && !dir.is_dir()
    {
        return Err(format!(
            "settings.working_dir: {} is not a directory",
            dir.display()
        ));
    }
    Ok((program, timeout))
}

/// The program to run: a path (with a `/`) must be an executable file; a bare name must
/// be found on PATH.
fn find_program(program: &str) -> Result<PathBuf, String> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if executable(&path) {
            Ok(path)
        } else {
            Err(format!(
                "settings.command: {program} is not an executable file (check the path, and `chmod +x` it)"
            ))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
        .ok_or_else(|| {
            format!("settings.command: {program} is not on PATH; give its full path or install it")
        })
}

export_plugin!(
    Exec,
    name = "exec",
    markup = "none",
    description = "Runs a program per message, the message as JSON on its stdin",
);

#[cfg(test)]
mod tests;
