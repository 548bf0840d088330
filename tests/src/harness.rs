//! Starting the real router as a child process on a config written to a temporary
//! directory, waiting for it, and talking to it over HTTP. Everything waits by polling
//! with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("alert-router-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` to `rel` below the directory, creating parent directories.
    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dirs");
        }
        std::fs::write(&path, contents).expect("write a test file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `target/<profile>`: where cargo put this test's binaries.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Where cargo builds the plugin cdylibs the tests depend on.
pub fn plugin_dir() -> PathBuf {
    target_dir().join("deps")
}

/// The router binary built for the tests.
pub fn router_binary() -> PathBuf {
    target_dir().join("alert-router-e2e")
}

/// The repository's root (for the default templates and rules).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repo root")
        .to_path_buf()
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Like [`eventually`], for checks that have to await (an HTTP call).
pub async fn eventually_async<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A running router.
pub struct Router {
    child: Option<Child>,
    pub url: String,
    pub dir: TempDir,
    client: reqwest::Client,
    env: Vec<(String, String)>,
    /// Whether the router is started with `--listen 127.0.0.1:0` (a free port) rather
    /// than on `server.listen`.
    listen_flag: bool,
    /// How many times the process was started.
    runs: u32,
}

impl Router {
    /// Writes `config` (router.yaml) and `files` into a new temp dir, starts the router on
    /// it with a free port, and waits until it answers `/healthz`. `{plugins}` in the
    /// config is replaced by the directory of the test plugins, `{dir}` by the temp dir.
    pub async fn start(config: &str, files: &[(&str, &str)]) -> Router {
        Router::start_in(config_dir(config, files)).await
    }

    /// Like [`Router::start`], without `--listen`: the router listens where the config's
    /// `server.listen` says (`127.0.0.1:0` for a free port).
    pub async fn start_on_configured_listen(config: &str, files: &[(&str, &str)]) -> Router {
        Router::launch(config_dir(config, files), &[], false).await
    }

    /// Starts the router on a directory already holding router.yaml.
    pub async fn start_in(dir: TempDir) -> Router {
        Router::launch(dir, &[], true).await
    }

    /// Starts the router with extra environment variables (kept for restarts).
    pub async fn start_in_with_env(dir: TempDir, env: &[(&str, &str)]) -> Router {
        Router::launch(dir, env, true).await
    }

    async fn launch(dir: TempDir, env: &[(&str, &str)], listen_flag: bool) -> Router {
        let mut router = Router {
            child: None,
            url: String::new(),
            dir,
            client: reqwest::Client::new(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            listen_flag,
            runs: 0,
        };
        router.spawn().await;
        router
    }

    /// Starts the router process on `self.dir` and waits until it listens. The logs of
    /// an earlier run are kept as `stdout.<n>.log` and `stderr.<n>.log`.
    async fn spawn(&mut self) {
        if let Err(status) = self.try_spawn().await {
            panic!(
                "the router exited with {status}: {}",
                router_stderr(&self.dir)
            );
        }
    }

    /// Like `spawn`, but a router that exits before it listens is an `Err` with its status.
    async fn try_spawn(&mut self) -> Result<(), ExitStatus> {
        let path = |name: &str| self.dir.path().join(name);
        if self.runs > 0 {
            let _ = std::fs::rename(
                path("stdout.log"),
                path(&format!("stdout.{}.log", self.runs)),
            );
            let _ = std::fs::rename(
                path("stderr.log"),
                path(&format!("stderr.{}.log", self.runs)),
            );
        }
        self.runs += 1;
        let stdout = std::fs::File::create(path("stdout.log")).expect("stdout log");
        let stderr = std::fs::File::create(path("stderr.log")).expect("stderr log");
        let mut command = Command::new(router_binary());
        command.arg("--config").arg(path("router.yaml")).arg("run");
        if self.listen_flag {
            command.arg("--listen").arg("127.0.0.1:0");
        }
        let child = command
            .current_dir(self.dir.path())
            .env("ALERT_ROUTER_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start the router binary");
        self.child = Some(child);
        let log = path("stdout.log");
        let child = &mut self.child;
        let listening = eventually(Duration::from_secs(30), "the router to listen", || {
            if let Some(running) = child.as_mut()
                && let Ok(Some(status)) = running.try_wait()
            {
                *child = None;
                return Some(Err(status));
            }
            let text = std::fs::read_to_string(&log).ok()?;
            text.lines().find_map(|l| {
                l.strip_prefix("alert-router listening on ")
                    .map(|url| Ok(url.to_owned()))
            })
        })
        .await;
        self.url = listening?;
        Ok(())
    }

    /// Starts the router again on the same directory (after `kill` or `terminate`).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the router before restarting it");
        self.spawn().await;
    }

    /// Starts the router again, like [`Router::restart`], but a router that dies before it
    /// listens (a crash at start) is an `Err` with its exit status.
    pub async fn try_restart(&mut self) -> Result<(), ExitStatus> {
        assert!(self.child.is_none(), "stop the router before restarting it");
        self.try_spawn().await
    }

    /// Waits up to `timeout` for the router to exit by itself: its status, or `None`
    /// while it still runs.
    pub async fn exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if status.is_some() {
                self.child = None;
                return status;
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: the router gets no chance to finish anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The router's resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the router's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc status")
    }

    pub fn stderr(&self) -> String {
        router_stderr(&self.dir)
    }

    /// The router's process id (0 once it was stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    /// Posts `body` to `/v1/events`; returns the status and the JSON answer.
    pub async fn post_events(&self, body: impl Into<String>) -> (u16, serde_json::Value) {
        let resp = self
            .client
            .post(format!("{}/v1/events", self.url))
            .header("content-type", "application/json")
            .body(body.into())
            .send()
            .await
            .expect("POST /v1/events");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON")
    }

    /// Polls `/v1/status` until `pred` holds; returns that status.
    pub async fn status_until(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        eventually_async(Duration::from_secs(20), what, || async {
            let status = self.get_json("/v1/status").await;
            pred(&status).then_some(status)
        })
        .await
    }

    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("text")
    }

    /// Sends SIGTERM and waits for the router to exit; returns whether it exited 0.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        false
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the router's command line to completion in `dir`: (exit code, stdout, stderr).
pub fn run_cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(router_binary())
        .args(args)
        .current_dir(dir)
        .env("ALERT_ROUTER_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run the router binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `alert-router run` on the router.yaml in `dir` and expects it to refuse: waits
/// (polling, up to 30 s) for it to exit and returns (exit code, stderr). A router that is
/// still running then, or that starts listening, is killed and the test fails.
pub fn run_refused(dir: &Path) -> (i32, String) {
    run_refused_with(dir, &["--listen", "127.0.0.1:0"])
}

/// [`run_refused`] with `args` after `run` instead of a free loopback port.
pub fn run_refused_with(dir: &Path, args: &[&str]) -> (i32, String) {
    let mut child = Command::new(router_binary())
        .arg("run")
        .args(args)
        .current_dir(dir)
        .env("ALERT_ROUTER_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the router binary");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            let out = child.wait_with_output().expect("the router's output");
            return (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("the router's output");
    panic!(
        "the router started instead of refusing: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new temp dir holding `config` as router.yaml and `files`, expanded.
fn config_dir(config: &str, files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new("e2e");
    for (rel, contents) in files {
        dir.write(rel, &expand(contents, dir.path()));
    }
    dir.write("router.yaml", &expand(config, dir.path()));
    dir
}

/// Writes `files` into a new temp dir, expanding `{plugins}`, `{dir}` and `{repo}`.
pub fn dir_with(files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new("cli");
    for (rel, contents) in files {
        dir.write(rel, &expand(contents, dir.path()));
    }
    dir
}

fn router_stderr(dir: &TempDir) -> String {
    std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default()
}

/// `text` with `{shipped-rules}`, `{plugins}`, `{dir}` and `{repo}` made paths, as every
/// config the harness writes is.
pub fn expand(text: &str, dir: &Path) -> String {
    text.replace("{shipped-rules}", crate::shipped::RULES)
        .replace("{plugins}", &plugin_dir().display().to_string())
        .replace("{dir}", &dir.display().to_string())
        .replace("{repo}", &repo_root().display().to_string())
}

/// Reads a JSON-lines file (the console sink's `json` format), skipping a torn last line.
pub fn read_json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
