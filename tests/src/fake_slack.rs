//! A fake Slack incoming webhook on 127.0.0.1 that answers as Slack does: plain-text
//! bodies (`ok`, `invalid_payload`, `no_text`, `invalid_blocks`, ...) with Slack's
//! statuses, and `429` + `Retry-After` when told to.
//!
//! ```ignore
//! let slack = FakeSlack::start().await;
//! let url = slack.webhook_url();      // http://127.0.0.1:PORT/services/T0/B0/SECRET
//! slack.script([Reply::RateLimited { retry_after: 1 }]);
//! // ... point a Slack sink at `url`, deliver ...
//! assert_eq!(slack.accepted().len(), 1);
//! ```
//!
//! What it checks, in order:
//! - the path `POST /services/{team}/{bot}/{secret}`: a wrong secret is
//!   `403 invalid_token`, any other path `404 no_service`;
//! - `Content-Type: application/json` and a JSON object: `400 invalid_payload`;
//! - neither `text` nor `blocks`: `400 no_text`;
//! - top-level `text` over [`TEXT_MAX`] characters: `400 invalid_payload` (Slack
//!   truncates instead; the fake is stricter so a sink that forgets to cut is caught);
//! - `blocks`: an array of at most [`BLOCKS_MAX`] objects with a `type`; a `header`
//!   with `plain_text` of at most [`HEADER_MAX`] characters; a `section` with `text`
//!   (at most [`SECTION_MAX`]) or `fields` (at most [`FIELDS_MAX`], each at most
//!   [`FIELD_MAX`]): otherwise `400 invalid_blocks`.
//!
//! Scripted replies ([`FakeSlack::script`]) answer the next requests in order, before
//! any check.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

/// Slack's limits, as the sink must keep them.
/// <https://api.slack.com/reference/block-kit/blocks>
pub const TEXT_MAX: usize = 40_000;
pub const BLOCKS_MAX: usize = 50;
pub const HEADER_MAX: usize = 150;
pub const SECTION_MAX: usize = 3_000;
pub const FIELDS_MAX: usize = 10;
pub const FIELD_MAX: usize = 2_000;

/// A scripted answer for one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Handle the request as usual.
    Normal,
    /// `429 Too Many Requests`, `Retry-After: <seconds>`, body `rate_limited`.
    RateLimited { retry_after: u64 },
    /// Any status with this plain-text body (`404 channel_not_found`,
    /// `500 rollup_error`, ...).
    Error(u16, &'static str),
}

/// A message the fake accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub body: Value,
    pub at: Instant,
}

/// Any request the fake answered.
#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    pub status: u16,
    /// The plain-text answer.
    pub answer: String,
    pub scripted: bool,
}

/// The running fake; stops when dropped.
pub struct FakeSlack {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

struct Shared {
    secret: String,
    state: Mutex<Fake>,
}

#[derive(Default)]
struct Fake {
    script: VecDeque<Reply>,
    accepted: Vec<Accepted>,
    requests: Vec<Request>,
}

fn lock(shared: &Shared) -> MutexGuard<'_, Fake> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeSlack {
    /// Starts the fake.
    ///
    /// # Panics
    /// If no port on 127.0.0.1 can be bound (a test-environment failure).
    pub async fn start() -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the fake Slack");
        let addr = listener
            .local_addr()
            .expect("local address of the fake Slack");
        let shared = Arc::new(Shared {
            // Shaped like Slack's: 24 characters of [A-Za-z0-9].
            secret: format!("sLaCk{:05}SeCrEt{}", addr.port(), "Zz9".repeat(3)),
            state: Mutex::new(Fake::default()),
        });
        let app = Router::new()
            .route("/services/{team}/{bot}/{secret}", post(incoming))
            .fallback(|| async { (StatusCode::NOT_FOUND, "no_service") })
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            // Ends only when the task is aborted.
            let _ = axum::serve(listener, app).await;
        });
        FakeSlack {
            addr,
            shared,
            server,
        }
    }

    /// The incoming webhook URL, as Slack shows it (the last segment is the secret).
    pub fn webhook_url(&self) -> String {
        format!(
            "http://{}/services/T0AB12CD3/B0EF45GH6/{}",
            self.addr, self.shared.secret
        )
    }

    /// The secret in the URL.
    pub fn secret(&self) -> &str {
        &self.shared.secret
    }

    /// Answers the next requests with `replies`, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared).script.extend(replies);
    }

    /// Messages accepted so far, in order.
    pub fn accepted(&self) -> Vec<Accepted> {
        lock(&self.shared).accepted.clone()
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared).requests.clone()
    }
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn incoming(
    State(shared): State<Arc<Shared>>,
    Path((_team, _bot, secret)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let scripted = lock(&shared).script.pop_front();
    match scripted {
        Some(Reply::RateLimited { retry_after }) => {
            let mut response = answer(&shared, 429, "rate_limited", true);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after.into());
            response
        }
        Some(Reply::Error(status, text)) => answer(&shared, status, text, true),
        Some(Reply::Normal) | None => {
            if secret != shared.secret {
                return answer(&shared, 403, "invalid_token", false);
            }
            match check(&headers, &body) {
                Ok(json) => {
                    lock(&shared).accepted.push(Accepted {
                        body: json,
                        at: Instant::now(),
                    });
                    answer(&shared, 200, "ok", false)
                }
                Err(error) => answer(&shared, 400, error, false),
            }
        }
    }
}

/// Slack's checks of a message body; the error string Slack answers.
fn check(headers: &HeaderMap, body: &[u8]) -> Result<Value, &'static str> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !json_type {
        return Err("invalid_payload");
    }
    let json: Value = serde_json::from_slice(body).map_err(|_| "invalid_payload")?;
    let Value::Object(map) = &json else {
        return Err("invalid_payload");
    };
    let text = map.get("text");
    let blocks = map.get("blocks");
    let has_text = text
        .and_then(Value::as_str)
        .is_some_and(|t| !t.trim().is_empty());
    if !has_text && blocks.is_none() {
        return Err("no_text");
    }
    if let Some(text) = text {
        let text = text.as_str().ok_or("invalid_payload")?;
        if chars(text) > TEXT_MAX {
            return Err("invalid_payload");
        }
    }
    if let Some(blocks) = blocks {
        let blocks = blocks.as_array().ok_or("invalid_blocks")?;
        if blocks.is_empty() || blocks.len() > BLOCKS_MAX {
            return Err("invalid_blocks");
        }
        for block in blocks {
            check_block(block)?;
        }
    }
    Ok(json)
}

fn check_block(block: &Value) -> Result<(), &'static str> {
    let text_of = |v: &Value| v.get("text").and_then(Value::as_str).map(chars);
    match block.get("type").and_then(Value::as_str) {
        Some("header") => {
            let text = block.get("text").ok_or("invalid_blocks")?;
            if text.get("type").and_then(Value::as_str) != Some("plain_text") {
                return Err("invalid_blocks");
            }
            match text_of(text) {
                Some(n) if (1..=HEADER_MAX).contains(&n) => Ok(()),
                _ => Err("invalid_blocks"),
            }
        }
        Some("section") => {
            let text = block.get("text");
            let fields = block.get("fields").and_then(Value::as_array);
            if text.is_none() && fields.is_none() {
                return Err("invalid_blocks");
            }
            if let Some(text) = text {
                match text_of(text) {
                    Some(n) if (1..=SECTION_MAX).contains(&n) => {}
                    _ => return Err("invalid_blocks"),
                }
            }
            if let Some(fields) = fields {
                if fields.is_empty() || fields.len() > FIELDS_MAX {
                    return Err("invalid_blocks");
                }
                for field in fields {
                    match text_of(field) {
                        Some(n) if (1..=FIELD_MAX).contains(&n) => {}
                        _ => return Err("invalid_blocks"),
                    }
                }
            }
            Ok(())
        }
        Some(_) => Ok(()),
        None => Err("invalid_blocks"),
    }
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// Records the answer and builds it: plain text, as Slack answers.
fn answer(shared: &Shared, status: u16, text: &str, scripted: bool) -> Response {
    lock(shared).requests.push(Request {
        at: Instant::now(),
        status,
        answer: text.to_owned(),
        scripted,
    });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_owned(),
    )
        .into_response()
}
