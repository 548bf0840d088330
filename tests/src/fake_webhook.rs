//! A fake webhook receiver on 127.0.0.1, as an operator would write one for the
//! generic webhook sink: it checks the signature and the idempotency key, records the
//! bodies it accepted, and answers from a script (503 + `Retry-After`, 400, a hang).
//!
//! ```ignore
//! let hook = FakeWebhook::start(Some("s3cr3t")).await;   // None: unsigned
//! let url = hook.url();                                   // http://127.0.0.1:PORT/hooks/TOKEN
//! hook.script([Reply::Unavailable { retry_after: "1".into() }]);
//! // ... point a webhook sink at `url`, deliver ...
//! assert_eq!(hook.accepted().len(), 1);
//! ```
//!
//! What it checks, in order, for any method on `/hooks/{token}`:
//! - the token in the path (`404` otherwise);
//! - `Content-Type: application/json` (`415`) and a JSON body (`400`);
//! - `Idempotency-Key` present (`400`); a key already accepted is answered `200` and
//!   counted as a duplicate, not recorded again;
//! - with a secret: `X-Alert-Router-Timestamp` within 5 minutes of now and
//!   `X-Alert-Router-Signature` equal to `sha256=<hex HMAC-SHA256("<ts>.<body>")>`
//!   (`401` otherwise, as the README's receiver does).
//!
//! Scripted replies ([`FakeWebhook::script`]) answer the next requests in order, before
//! any check; [`FakeWebhook::answer_all`] answers every request one way until cleared.
//! [`FakeWebhook::set_delay`] makes a slow receiver, and [`FakeWebhook::stop`] /
//! [`FakeWebhook::restart`] take it off its port and back (connections refused meanwhile),
//! keeping what it recorded.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use ring::hmac;
use serde_json::Value;

/// How old a signed timestamp may be, as the README's receiver allows.
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// A scripted answer for one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Handle the request as usual.
    Normal,
    /// `503 Service Unavailable` with this `Retry-After` (seconds or an HTTP date).
    Unavailable { retry_after: String },
    /// `400 Bad Request` with this body.
    BadRequest(String),
    /// Answers nothing for this long, then `200`: a hang past the sink's timeout.
    Hang(Duration),
}

/// A body the fake accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub method: Method,
    pub body: Value,
    pub idempotency_key: String,
    /// Whether the request was signed (and the signature was right: a wrong one is
    /// refused, not recorded).
    pub signed: bool,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    pub at: Instant,
}

/// Any request the fake answered, accepted or not.
#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    pub status: u16,
    /// The plain-text answer for anything but 2xx.
    pub error: Option<String>,
    pub scripted: bool,
}

/// The running fake; stops when dropped.
pub struct FakeWebhook {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<Server>,
}

/// The serving task, and how to stop it.
struct Server {
    task: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

struct Shared {
    token: String,
    secret: Option<String>,
    state: Mutex<Fake>,
}

#[derive(Default)]
struct Fake {
    script: VecDeque<Reply>,
    /// Answers every request this way while set.
    always: Option<Reply>,
    /// How long each request waits before it is handled.
    delay: Duration,
    accepted: Vec<Accepted>,
    requests: Vec<Request>,
    keys: HashSet<String>,
    duplicates: usize,
}

fn lock(shared: &Shared) -> MutexGuard<'_, Fake> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeWebhook {
    /// Starts a receiver that requires signatures made with `secret` (none: unsigned
    /// requests are accepted, signed ones too).
    ///
    /// # Panics
    /// If no port on 127.0.0.1 can be bound (a test-environment failure).
    pub async fn start(secret: Option<&str>) -> FakeWebhook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the fake webhook");
        let addr = listener
            .local_addr()
            .expect("local address of the fake webhook");
        let shared = Arc::new(Shared {
            token: format!("whk_{}_T0kEn{}", addr.port(), "q".repeat(24)),
            secret: secret.map(str::to_owned),
            state: Mutex::new(Fake::default()),
        });
        let server = Some(serve(listener, shared.clone()));
        FakeWebhook {
            addr,
            shared,
            server,
        }
    }

    /// Stops serving: the port is closed (connections are refused) once the requests
    /// in progress are answered.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.stop.send(());
            let _ = server.task.await;
        }
    }

    /// Serves again on the same address, with everything recorded so far.
    ///
    /// # Panics
    /// If the address cannot be bound again.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("bind the fake webhook's address again");
        self.server = Some(serve(listener, self.shared.clone()));
    }

    /// Answers every request with `reply` until called with `None`.
    pub fn answer_all(&self, reply: Option<Reply>) {
        lock(&self.shared).always = reply;
    }

    /// Makes every request wait `delay` before it is handled: a slow receiver.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.shared).delay = delay;
    }

    /// The receiver's URL, with its secret token in the path.
    pub fn url(&self) -> String {
        format!("http://{}/hooks/{}", self.addr, self.shared.token)
    }

    /// The secret token in [`FakeWebhook::url`].
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Answers the next requests with `replies`, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared).script.extend(replies);
    }

    /// Bodies accepted so far, in order (duplicates left out).
    pub fn accepted(&self) -> Vec<Accepted> {
        lock(&self.shared).accepted.clone()
    }

    /// How many bodies were accepted so far (cheaper than cloning them).
    pub fn accepted_count(&self) -> usize {
        lock(&self.shared).accepted.len()
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared).requests.clone()
    }

    /// Requests whose idempotency key had already been accepted.
    pub fn duplicates(&self) -> usize {
        lock(&self.shared).duplicates
    }
}

impl Drop for FakeWebhook {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.task.abort();
        }
    }
}

fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> Server {
    let app = Router::new()
        .route("/hooks/{token}", any(receive))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such hook") })
        .with_state(shared);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Server { task, stop }
}

/// `sha256=<hex HMAC-SHA256("<timestamp>.<body>")>`, as a receiver computes it.
pub fn expected_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.as_bytes());
    context.update(b".");
    context.update(body);
    let hex: String = context
        .sign()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (scripted, delay) = {
        let mut fake = lock(&shared);
        let next = fake.script.pop_front().or_else(|| fake.always.clone());
        (next, fake.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match scripted {
        Some(Reply::Hang(how_long)) => {
            tokio::time::sleep(how_long).await;
            answer(&shared, StatusCode::OK, None, true)
        }
        Some(Reply::Unavailable { retry_after }) => {
            let mut response = answer(
                &shared,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("down for maintenance"),
                true,
            );
            if let Ok(value) = retry_after.parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Some(Reply::BadRequest(text)) => {
            answer(&shared, StatusCode::BAD_REQUEST, Some(&text), true)
        }
        Some(Reply::Normal) | None => check(&shared, &token, method, &headers, &body),
    }
}

/// The receiver's own checks, then recording.
fn check(
    shared: &Shared,
    token: &str,
    method: Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let refuse = |status: StatusCode, text: &str| answer(shared, status, Some(text), false);
    if token != shared.token {
        return refuse(StatusCode::NOT_FOUND, "no such hook");
    }
    if header_text(headers, "content-type").is_none_or(|t| !t.starts_with("application/json")) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/json",
        );
    }
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return refuse(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    let Some(key) = header_text(headers, "idempotency-key").filter(|k| !k.is_empty()) else {
        return refuse(StatusCode::BAD_REQUEST, "missing Idempotency-Key");
    };
    let timestamp = header_text(headers, "x-alert-router-timestamp");
    let signature = header_text(headers, "x-alert-router-signature");
    if let Some(secret) = &shared.secret {
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
            return refuse(StatusCode::UNAUTHORIZED, "missing signature");
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        match timestamp.parse::<u64>() {
            Ok(ts) if now.abs_diff(ts) <= MAX_AGE.as_secs() => {}
            _ => return refuse(StatusCode::UNAUTHORIZED, "stale timestamp"),
        }
        if signature != expected_signature(secret, timestamp, body) {
            return refuse(StatusCode::UNAUTHORIZED, "bad signature");
        }
    }
    let mut fake = lock(shared);
    if !fake.keys.insert(key.to_owned()) {
        fake.duplicates += 1;
    } else {
        fake.accepted.push(Accepted {
            method,
            body: json,
            idempotency_key: key.to_owned(),
            signed: signature.is_some(),
            authorization: header_text(headers, "authorization").map(str::to_owned),
            at: Instant::now(),
        });
    }
    drop(fake);
    answer(shared, StatusCode::OK, None, false)
}

/// Records the answer and builds it (plain text).
fn answer(shared: &Shared, status: StatusCode, error: Option<&str>, scripted: bool) -> Response {
    lock(shared).requests.push(Request {
        at: Instant::now(),
        status: status.as_u16(),
        error: error.map(str::to_owned),
        scripted,
    });
    (status, error.unwrap_or("accepted").to_owned()).into_response()
}
