//! A small W3C WebDriver client for the dashboard's browser tests: Debian's
//! `chromedriver` (package chromium-driver) driving headless `chromium`, spoken to over
//! HTTP with the reqwest the tests already build, so no browser-automation crate (and no
//! downloaded browser) is needed.
//!
//! [`Browser::start`] fails the test, with the install command, when either program is
//! missing: the browser tests never skip.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::harness::{TempDir, eventually_async, target_dir};

/// What to run when Chromium or its driver is missing.
pub const INSTALL: &str = "apt-get install chromium chromium-driver";

const CHROMIUM: [&str; 2] = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const CHROMEDRIVER: [&str; 2] = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];
/// The longest any one WebDriver command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// One console message the page logged.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub level: String,
    pub message: String,
}

/// A headless Chromium session through chromedriver. Dropping it ends the session (which
/// closes Chromium) and stops chromedriver.
pub struct Browser {
    driver: Option<Child>,
    port: u16,
    base: String,
    session: String,
    client: reqwest::Client,
    _profile: TempDir,
}

fn find(candidates: &[&str], env: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env).map(PathBuf::from)
        && p.is_file()
    {
        return Some(p);
    }
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

impl Browser {
    /// Starts chromedriver on a free port and opens a session with a fresh profile, a
    /// `width` × `height` viewport, and the browser's console log recorded.
    ///
    /// Panics, saying how to install them, when Chromium or chromedriver is missing
    /// (`CHROMIUM` and `CHROMEDRIVER` point elsewhere).
    pub async fn start(width: u32, height: u32) -> Browser {
        let chromium = find(&CHROMIUM, "CHROMIUM");
        let chromedriver = find(&CHROMEDRIVER, "CHROMEDRIVER");
        let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
            panic!(
                "the dashboard's browser tests need headless Chromium and chromedriver, which \
                 are not installed (looked for {} and {}; set CHROMIUM / CHROMEDRIVER to use \
                 others). Install them with: {INSTALL} (as root, or with sudo)",
                CHROMIUM.join(", "),
                CHROMEDRIVER.join(", ")
            );
        };
        let profile = TempDir::new("chromium-profile");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port for chromedriver")
            .port();
        let log = std::fs::File::create(profile.path().join("chromedriver.log")).expect("log");
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; {INSTALL}", chromedriver.display()));
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .timeout(COMMAND_TIMEOUT)
            .build()
            .expect("an HTTP client");
        let mut browser = Browser {
            driver: Some(driver),
            port,
            base,
            session: String::new(),
            client,
            _profile: profile,
        };
        eventually_async(
            Duration::from_secs(30),
            "chromedriver to be ready",
            || async {
                let status = browser
                    .client
                    .get(format!("{}/status", browser.base))
                    .send()
                    .await
                    .ok()?
                    .json::<Value>()
                    .await
                    .ok()?;
                (status["value"]["ready"] == true).then_some(())
            },
        )
        .await;
        let user_data = browser._profile.path().join("profile");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", user_data.display()),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let value = browser
            .command(reqwest::Method::POST, "/session", Some(caps))
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"));
        browser.session = value["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        browser.set_viewport(width, height).await;
        browser
    }

    /// Sends one WebDriver command; its `value`, or the driver's error message.
    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!(
                "{status}: {} {}",
                answer["value"]["error"].as_str().unwrap_or_default(),
                answer["value"]["message"].as_str().unwrap_or_default()
            ));
        }
        Ok(answer["value"].clone())
    }

    async fn session_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.command(method, &path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
    }

    /// Opens `url` and waits for the document to load.
    pub async fn goto(&self, url: &str) {
        self.session_command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns
    /// what it returns.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.session_command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The text of the first element matching `css`, if there is one.
    pub async fn text(&self, css: &str) -> Option<String> {
        self.execute(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            json!([css]),
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// Polls `script` until it returns something other than `null`, `false` or `""`, and
    /// returns that; panics with `what` after `timeout`.
    pub async fn wait_for(&self, timeout: Duration, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.execute(script, json!([])).await;
            if !(v.is_null() || v == false || v == "") {
                return v;
            }
            if Instant::now() >= deadline {
                panic!("timed out after {timeout:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resizes the window so that the page's viewport (`innerWidth` × `innerHeight`) is
    /// `width` × `height` CSS pixels.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        let (mut w, mut h) = (i64::from(width), i64::from(height));
        for _ in 0..3 {
            self.session_command(
                reqwest::Method::POST,
                "/window/rect",
                Some(json!({"width": w, "height": h})),
            )
            .await;
            let inner = self
                .execute("return [window.innerWidth, window.innerHeight];", json!([]))
                .await;
            let (iw, ih) = (
                inner[0].as_i64().unwrap_or(0),
                inner[1].as_i64().unwrap_or(0),
            );
            if (iw, ih) == (i64::from(width), i64::from(height)) {
                return;
            }
            // The window's frame is the difference.
            w += i64::from(width) - iw;
            h += i64::from(height) - ih;
        }
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.session_command(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
        .await
    }

    /// Saves a PNG of the whole page, beyond the viewport, to `path`.
    pub async fn save_full_page_screenshot(&self, path: &Path) {
        let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true, "clip": {
                    "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .expect("a base64 PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the artifacts directory");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let b64 = self
            .session_command(reqwest::Method::GET, "/screenshot", None)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("a base64 PNG")
    }

    /// Saves a PNG of the viewport to `path`, creating its directory.
    pub async fn save_screenshot(&self, path: &Path) {
        let png = self.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the artifacts directory");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// The console messages logged since the last call (chromedriver's log endpoint).
    pub async fn console_log(&self) -> Vec<LogEntry> {
        let entries = self
            .session_command(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
            )
            .await;
        entries
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| LogEntry {
                level: e["level"].as_str().unwrap_or_default().to_owned(),
                message: e["message"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Blocking, with no runtime: a bare HTTP/1.1 DELETE, so Chromium closes.
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session, self.port
            );
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = stream.write_all(request.as_bytes());
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
            }
        }
        if let Some(mut driver) = self.driver.take() {
            let _ = driver.kill();
            let _ = driver.wait();
        }
    }
}

/// Where the browser tests leave their screenshots: `target/test-artifacts/dashboard/`.
pub fn artifacts_dir() -> PathBuf {
    target_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(target_dir)
        .join("test-artifacts")
        .join("dashboard")
}
