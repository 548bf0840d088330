//! A fake Discord webhook server on 127.0.0.1 that accepts what Discord accepts and
//! refuses what Discord refuses, with Discord's error bodies, and rate-limits like it.
//!
//! ```ignore
//! let discord = FakeDiscord::start().await;        // budget: 5 requests per 2 s
//! let url = discord.webhook_url();                 // http://127.0.0.1:PORT/api/webhooks/ID/TOKEN
//! discord.script([Reply::RateLimited { retry_after: 1.5, global: false }]);
//! // ... point a Discord sink at `url`, deliver ...
//! assert_eq!(discord.accepted().len(), 1);
//! ```
//!
//! What it checks, in Discord's order:
//! - the path: `POST /api/webhooks/{id}/{token}` or `/api/v{n}/webhooks/{id}/{token}`;
//!   an unknown id is `404 Unknown Webhook` (10015), a wrong token `401 Invalid Webhook
//!   Token` (50027);
//! - the webhook's rate limit (a fixed window, [`Budget`]): every answer carries
//!   `X-RateLimit-Limit`, `-Remaining`, `-Reset`, `-Reset-After` and `-Bucket`, and a
//!   request over budget gets a 429 with a float `retry_after`, as Discord answers;
//! - `Content-Type: application/json`, valid JSON, then every field and limit of the
//!   Execute Webhook body (lengths in code points after trimming, 10 embeds, 25 fields,
//!   6000 characters across the embeds, integer colors, ISO 8601 timestamps, the
//!   `allowed_mentions` shape), answering `400 Invalid Form Body` (50035) with Discord's
//!   `errors` tree;
//! - an empty message: `400 Cannot send an empty message` (50006).
//!
//! `GET` on the same URLs is Discord's "Get Webhook with Token": the webhook object
//! without `user` (`id`, `type` 1, `guild_id`, `channel_id`, `name`, `avatar`,
//! `application_id`, `token`), with the same 404 and 401 answers; it posts nothing, is
//! outside the execute budget (another route, another bucket) and is not scripted.
//!
//! Accepted bodies are recorded in order, with who they would have pinged: mentions
//! in `content` allowed by `allowed_mentions` (embeds never ping). Without
//! `allowed_mentions` it assumes everything may ping, as webhooks did before 2025, so a
//! client that forgets to send it is caught. `wait=true` gets `200` and a Message
//! object, no `wait` gets `204`.
//!
//! Scripted replies ([`FakeDiscord::script`]) answer the next requests in order,
//! before any other check and outside the budget.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::{Iso8601, Rfc3339};

/// The webhook id every fake serves.
pub const WEBHOOK_ID: &str = "1234567890123456789";

/// The webhook's name, channel and server, as "Get Webhook with Token" gives them.
pub const WEBHOOK_NAME: &str = "Captain Hook";
pub const CHANNEL_ID: &str = "290926798999357250";
pub const GUILD_ID: &str = "81384788765712384";

/// A webhook's rate limit: `requests` per fixed window of `per`, the window starting at
/// the first request after the previous one ended (as a Discord bucket resets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub requests: u32,
    pub per: Duration,
}

impl Budget {
    /// What Discord staff gave for webhooks: 5 requests per 2 seconds.
    pub const DISCORD: Budget = Budget {
        requests: 5,
        per: Duration::from_secs(2),
    };
}

/// A scripted answer for one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Handle the request as usual (to let some through before a scripted failure).
    Normal,
    /// `429` with `{"message", "retry_after": <float s>, "global"}`, `Retry-After`
    /// (whole seconds, rounded up) and the `X-RateLimit-*` headers Discord sends.
    RateLimited { retry_after: f64, global: bool },
    /// `404 {"message": "Unknown Webhook", "code": 10015}`.
    UnknownWebhook,
    /// Any status with Discord's generic body, `{"message": "500: Internal Server
    /// Error", "code": 0}`.
    Status(u16),
    /// Any status with this JSON body.
    Json(u16, Value),
}

/// A body the fake accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The JSON body as sent.
    pub body: Value,
    /// The `thread_id` query parameter.
    pub thread_id: Option<String>,
    /// Whether `wait=true` was given.
    pub wait: bool,
    /// The API version in the path (`Some(10)` for `/api/v10/...`), `None` unversioned.
    pub version: Option<u32>,
    /// Who would have been pinged: `"everyone"`, `"here"`, `"user:ID"`, `"role:ID"`.
    pub pings: Vec<String>,
    pub at: Instant,
}

/// Any request the fake answered, accepted or not.
#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    pub status: u16,
    /// The JSON error body, for answers other than 2xx.
    pub error: Option<Value>,
    /// Whether the answer came from [`FakeDiscord::script`].
    pub scripted: bool,
}

/// The running fake; stops when dropped.
pub struct FakeDiscord {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

struct Shared {
    token: String,
    state: Mutex<Fake>,
}

struct Fake {
    budget: Budget,
    /// Start of the current window and requests counted in it.
    window: Option<(Instant, u32)>,
    script: VecDeque<Reply>,
    accepted: Vec<Accepted>,
    requests: Vec<Request>,
    /// GETs of the webhook answered 200.
    lookups: u32,
    next_id: u64,
}

impl FakeDiscord {
    /// Starts a fake with Discord's webhook budget ([`Budget::DISCORD`]).
    pub async fn start() -> FakeDiscord {
        FakeDiscord::start_with_budget(Budget::DISCORD).await
    }

    /// Starts a fake whose webhook allows `budget`.
    ///
    /// # Panics
    /// If no port on 127.0.0.1 can be bound (a test-environment failure).
    pub async fn start_with_budget(budget: Budget) -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the fake Discord");
        let addr = listener
            .local_addr()
            .expect("local address of the fake Discord");
        let shared = Arc::new(Shared {
            // Shaped like a real token: 68 characters of [A-Za-z0-9_-].
            token: format!("fAkE-{}_tOkEn{}", addr.port(), "x".repeat(52)),
            state: Mutex::new(Fake {
                budget,
                window: None,
                script: VecDeque::new(),
                accepted: Vec::new(),
                requests: Vec::new(),
                lookups: 0,
                next_id: 1_300_000_000_000_000_000,
            }),
        });
        let app = Router::new()
            .route(
                "/api/webhooks/{id}/{token}",
                post(execute_unversioned).get(get_unversioned),
            )
            .route(
                "/api/{version}/webhooks/{id}/{token}",
                post(execute_versioned).get(get_versioned),
            )
            .fallback(|| async {
                discord_error(
                    StatusCode::NOT_FOUND,
                    json!({"message": "404: Not Found", "code": 0}),
                )
            })
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            // Ends only when the task is aborted.
            let _ = axum::serve(listener, app).await;
        });
        FakeDiscord {
            addr,
            shared,
            server,
        }
    }

    /// The webhook URL as Discord's "Copy Webhook URL" gives it (unversioned).
    pub fn webhook_url(&self) -> String {
        format!(
            "http://{}/api/webhooks/{WEBHOOK_ID}/{}",
            self.addr,
            self.token()
        )
    }

    /// The webhook's secret token.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers the next requests with `replies`, in order, before anything else.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state().script.extend(replies);
    }

    /// Changes the webhook's budget; the current window starts over.
    pub fn set_budget(&self, budget: Budget) {
        let mut state = self.state();
        state.budget = budget;
        state.window = None;
    }

    /// The bodies accepted so far, in order.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.state().accepted.clone()
    }

    /// Every request answered so far, in order (GETs of the webhook aside).
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    /// How many GETs of the webhook were answered with the webhook object.
    pub fn lookups(&self) -> u32 {
        self.state().lookups
    }

    fn state(&self) -> MutexGuard<'_, Fake> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn execute_unversioned(
    State(shared): State<Arc<Shared>>,
    Path((id, token)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    execute(&shared, None, &id, &token, &query, &headers, &body)
}

async fn execute_versioned(
    State(shared): State<Arc<Shared>>,
    Path((version, id, token)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match version
        .strip_prefix('v')
        .and_then(|v| v.parse::<u32>().ok())
    {
        Some(v) if (6..=10).contains(&v) => {
            execute(&shared, Some(v), &id, &token, &query, &headers, &body)
        }
        _ => discord_error(
            StatusCode::BAD_REQUEST,
            json!({"message": "Invalid API version", "code": 50041}),
        ),
    }
}

async fn get_unversioned(
    State(shared): State<Arc<Shared>>,
    Path((id, token)): Path<(String, String)>,
) -> Response {
    get_webhook(&shared, &id, &token)
}

async fn get_versioned(
    State(shared): State<Arc<Shared>>,
    Path((version, id, token)): Path<(String, String, String)>,
) -> Response {
    match version
        .strip_prefix('v')
        .and_then(|v| v.parse::<u32>().ok())
    {
        Some(v) if (6..=10).contains(&v) => get_webhook(&shared, &id, &token),
        _ => discord_error(
            StatusCode::BAD_REQUEST,
            json!({"message": "Invalid API version", "code": 50041}),
        ),
    }
}

/// "Get Webhook with Token": the webhook object, without `user`.
fn get_webhook(shared: &Shared, id: &str, token: &str) -> Response {
    if id != WEBHOOK_ID {
        return discord_error(
            StatusCode::NOT_FOUND,
            json!({"message": "Unknown Webhook", "code": 10015}),
        );
    }
    if token != shared.token {
        return discord_error(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Invalid Webhook Token", "code": 50027}),
        );
    }
    shared
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .lookups += 1;
    let webhook = json!({
        "application_id": null,
        "avatar": null,
        "channel_id": CHANNEL_ID,
        "guild_id": GUILD_ID,
        "id": WEBHOOK_ID,
        "name": WEBHOOK_NAME,
        "type": 1,
        "token": shared.token,
    });
    (StatusCode::OK, axum::Json(webhook)).into_response()
}

fn execute(
    shared: &Shared,
    version: Option<u32>,
    id: &str,
    token: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();

    if let Some(reply) = state.script.pop_front()
        && !matches!(reply, Reply::Normal)
    {
        let (status, error, extra) = scripted(reply, state.budget);
        state.requests.push(Request {
            at: now,
            status: status.as_u16(),
            error: Some(error.clone()),
            scripted: true,
        });
        let mut response = discord_error(status, error);
        response.headers_mut().extend(extra);
        return response;
    }

    let answer = |state: &mut Fake, status: StatusCode, error: Value, limits: HeaderMap| {
        state.requests.push(Request {
            at: now,
            status: status.as_u16(),
            error: Some(error.clone()),
            scripted: false,
        });
        let mut response = discord_error(status, error);
        response.headers_mut().extend(limits);
        response
    };

    if id != WEBHOOK_ID {
        let error = json!({"message": "Unknown Webhook", "code": 10015});
        return answer(&mut state, StatusCode::NOT_FOUND, error, HeaderMap::new());
    }
    if token != shared.token {
        let error = json!({"message": "Invalid Webhook Token", "code": 50027});
        return answer(
            &mut state,
            StatusCode::UNAUTHORIZED,
            error,
            HeaderMap::new(),
        );
    }

    // The bucket: a fixed window from its first request.
    let budget = state.budget;
    let (start, used) = match state.window {
        Some((start, used)) if now < start + budget.per => (start, used),
        _ => (now, 0),
    };
    let reset_after = (start + budget.per).saturating_duration_since(now);
    if used >= budget.requests {
        state.window = Some((start, used));
        let retry_after = reset_after.as_secs_f64();
        let error = json!({"message": "You are being rate limited.", "retry_after": ceil3(retry_after), "global": false});
        let mut limits = limit_headers(budget, 0, reset_after);
        limits.insert(header::RETRY_AFTER, number(retry_after.ceil()));
        limits.insert("x-ratelimit-scope", HeaderValue::from_static("user"));
        return answer(&mut state, StatusCode::TOO_MANY_REQUESTS, error, limits);
    }
    state.window = Some((start, used + 1));
    let limits = limit_headers(budget, budget.requests - used - 1, reset_after);

    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json_type {
        let error = json!({"code": 50035, "message": "Invalid Form Body", "errors": {"_errors": [{
            "code": "CONTENT_TYPE_INVALID",
            "message": "Expected \"Content-Type\" header to be one of {'application/json', 'application/x-www-form-urlencoded', 'multipart/form-data'}."}]}});
        return answer(&mut state, StatusCode::BAD_REQUEST, error, limits);
    }
    let payload = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        _ => {
            let error =
                json!({"message": "The request body contains invalid JSON.", "code": 50109});
            return answer(&mut state, StatusCode::BAD_REQUEST, error, limits);
        }
    };

    let mut errors = Errors::default();
    let thread_id = query.get("thread_id").cloned();
    if let Some(thread) = &thread_id
        && !is_snowflake(thread)
    {
        errors.add(
            &["thread_id"],
            "NUMBER_TYPE_COERCE",
            format!("Value \"{thread}\" is not snowflake."),
        );
    }
    validate(&payload, &mut errors);
    if !errors.is_empty() {
        let error = json!({"code": 50035, "message": "Invalid Form Body", "errors": errors.tree});
        return answer(&mut state, StatusCode::BAD_REQUEST, error, limits);
    }
    if is_empty_message(&payload) {
        let error = json!({"message": "Cannot send an empty message", "code": 50006});
        return answer(&mut state, StatusCode::BAD_REQUEST, error, limits);
    }

    let wait = query
        .get("wait")
        .is_some_and(|w| matches!(w.as_str(), "true" | "True" | "1"));
    let pings = pings(&payload);
    state.next_id += 1;
    let message_id = state.next_id;
    state.accepted.push(Accepted {
        body: Value::Object(payload.clone()),
        thread_id: thread_id.clone(),
        wait,
        version,
        pings: pings.clone(),
        at: now,
    });
    state.requests.push(Request {
        at: now,
        status: if wait { 200 } else { 204 },
        error: None,
        scripted: false,
    });
    drop(state);

    if !wait {
        return (StatusCode::NO_CONTENT, limits).into_response();
    }
    let message = message_object(&payload, message_id, thread_id.as_deref(), &pings);
    (StatusCode::OK, limits, axum::Json(message)).into_response()
}

fn scripted(reply: Reply, budget: Budget) -> (StatusCode, Value, HeaderMap) {
    match reply {
        Reply::Normal => (StatusCode::OK, Value::Null, HeaderMap::new()),
        Reply::RateLimited {
            retry_after,
            global,
        } => {
            let after = Duration::try_from_secs_f64(retry_after).unwrap_or_default();
            let mut headers = limit_headers(budget, 0, after);
            headers.insert(header::RETRY_AFTER, number(retry_after.ceil()));
            headers.insert(
                "x-ratelimit-scope",
                HeaderValue::from_static(if global { "global" } else { "user" }),
            );
            if global {
                headers.insert("x-ratelimit-global", HeaderValue::from_static("true"));
            }
            let body = json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": global});
            (StatusCode::TOO_MANY_REQUESTS, body, headers)
        }
        Reply::UnknownWebhook => (
            StatusCode::NOT_FOUND,
            json!({"message": "Unknown Webhook", "code": 10015}),
            HeaderMap::new(),
        ),
        Reply::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = status.canonical_reason().unwrap_or("Error");
            (
                status,
                json!({"message": format!("{code}: {reason}"), "code": 0}),
                HeaderMap::new(),
            )
        }
        Reply::Json(code, body) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
            HeaderMap::new(),
        ),
    }
}

fn discord_error(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn limit_headers(budget: Budget, remaining: u32, reset_after: Duration) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(reset_after)
        .as_secs_f64();
    headers.insert("x-ratelimit-limit", number(f64::from(budget.requests)));
    headers.insert("x-ratelimit-remaining", number(f64::from(remaining)));
    headers.insert("x-ratelimit-reset", number(ceil3(epoch)));
    headers.insert(
        "x-ratelimit-reset-after",
        number(ceil3(reset_after.as_secs_f64())),
    );
    headers.insert("x-ratelimit-bucket", HeaderValue::from_static("f4k3b0c4e7"));
    headers
}

fn number(n: f64) -> HeaderValue {
    HeaderValue::from_str(&n.to_string()).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// Milliseconds, rounded up: a client that waits what it is told never comes back
/// before the window has really ended.
fn ceil3(n: f64) -> f64 {
    (n * 1000.0).ceil() / 1000.0
}

/// Discord's `errors` tree: `{"embeds": {"0": {"title": {"_errors": [...]}}}}`.
#[derive(Default)]
struct Errors {
    tree: Map<String, Value>,
}

impl Errors {
    fn add(&mut self, path: &[&str], code: &str, message: impl Into<String>) {
        let mut node = &mut self.tree;
        for key in path {
            let next = node
                .entry((*key).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !next.is_object() {
                *next = Value::Object(Map::new());
            }
            let Value::Object(map) = next else { return };
            node = map;
        }
        let list = node
            .entry("_errors")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = list {
            list.push(json!({"code": code, "message": message.into()}));
        }
    }

    fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

/// Code points after trimming, as Discord counts.
fn length(text: &str) -> usize {
    text.trim().chars().count()
}

/// Checks a string field; returns its trimmed length when it is a string.
fn string(errors: &mut Errors, path: &[&str], value: &Value, max: usize, required: bool) -> usize {
    match value {
        Value::String(s) => {
            let n = length(s);
            if required && n == 0 {
                errors.add(path, "BASE_TYPE_REQUIRED", "This field is required");
            } else if n > max {
                errors.add(
                    path,
                    "BASE_TYPE_MAX_LENGTH",
                    format!("Must be {max} or fewer in length."),
                );
            }
            n
        }
        Value::Null if required => {
            errors.add(path, "BASE_TYPE_REQUIRED", "This field is required");
            0
        }
        Value::Null => 0,
        _ => {
            errors.add(path, "BASE_TYPE_STRING", "Must be a string.");
            0
        }
    }
}

fn url(errors: &mut Errors, path: &[&str], value: &Value) {
    match value {
        Value::Null => {}
        Value::String(s)
            if s.starts_with("http://")
                || s.starts_with("https://")
                || s.starts_with("attachment://") => {}
        _ => errors.add(path, "URL_TYPE_INVALID_URL", "Not a well formed URL."),
    }
}

fn boolean(errors: &mut Errors, path: &[&str], value: &Value) {
    if !matches!(value, Value::Bool(_) | Value::Null) {
        errors.add(path, "BASE_TYPE_BOOLEAN", "Must be either true or false.");
    }
}

fn is_snowflake(text: &str) -> bool {
    !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit())
}

/// The fake's checks of an Execute Webhook body, without a server: every field and
/// limit, then the empty-message check, as a request with this body is judged after
/// its path, rate limit and content type. `Err` is the body of the 400 the fake
/// would answer (`{"code": 50035, "message": "Invalid Form Body", "errors": ...}`).
pub fn check_body(body: &Value) -> Result<(), Value> {
    let Value::Object(payload) = body else {
        return Err(json!({"message": "The request body contains invalid JSON.", "code": 50109}));
    };
    let mut errors = Errors::default();
    validate(payload, &mut errors);
    if !errors.is_empty() {
        return Err(json!({"code": 50035, "message": "Invalid Form Body", "errors": errors.tree}));
    }
    if is_empty_message(payload) {
        return Err(json!({"message": "Cannot send an empty message", "code": 50006}));
    }
    Ok(())
}

fn validate(payload: &Map<String, Value>, errors: &mut Errors) {
    let null = Value::Null;
    let get = |key: &str| payload.get(key).unwrap_or(&null);
    string(errors, &["content"], get("content"), 2000, false);
    if !get("username").is_null() {
        let n = string(errors, &["username"], get("username"), usize::MAX, false);
        if let Some(name) = get("username").as_str() {
            if !(1..=80).contains(&n) {
                errors.add(
                    &["username"],
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 80 in length.",
                );
            }
            let lower = name.to_lowercase();
            for word in ["discord", "clyde"] {
                if lower.contains(word) {
                    errors.add(
                        &["username"],
                        "USERNAME_INVALID_CONTAINS",
                        format!("Username cannot contain \"{word}\""),
                    );
                }
            }
        }
    }
    url(errors, &["avatar_url"], get("avatar_url"));
    boolean(errors, &["tts"], get("tts"));
    validate_allowed_mentions(get("allowed_mentions"), errors);

    match get("embeds") {
        Value::Null => {}
        Value::Array(embeds) => {
            if embeds.len() > 10 {
                errors.add(
                    &["embeds"],
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 10 or fewer in length.",
                );
            }
            let mut total = 0;
            for (i, embed) in embeds.iter().enumerate() {
                total += validate_embed(&i.to_string(), embed, errors);
            }
            if total > 6000 {
                errors.add(
                    &["embeds"],
                    "MAX_EMBED_SIZE_EXCEEDED",
                    "Embed size exceeds maximum size of 6000",
                );
            }
        }
        _ => errors.add(&["embeds"], "BASE_TYPE_ARRAY", "Must be an array."),
    }
}

/// Validates one embed; returns the characters it adds to the 6000 total.
fn validate_embed(i: &str, embed: &Value, errors: &mut Errors) -> usize {
    let Value::Object(embed) = embed else {
        errors.add(
            &["embeds", i],
            "MODEL_TYPE_CONVERT",
            "Only dictionaries may be used in a ModelType",
        );
        return 0;
    };
    let null = Value::Null;
    let get = |key: &str| embed.get(key).unwrap_or(&null);
    let mut total = string(errors, &["embeds", i, "title"], get("title"), 256, false);
    total += string(
        errors,
        &["embeds", i, "description"],
        get("description"),
        4096,
        false,
    );
    url(errors, &["embeds", i, "url"], get("url"));
    match get("color") {
        Value::Null => {}
        Value::Number(n) => match n.as_i64() {
            Some(c) if (0..=0xFF_FFFF).contains(&c) => {}
            Some(_) => errors.add(
                &["embeds", i, "color"],
                "NUMBER_TYPE_MAX",
                "int value should be less than or equal to 16777215.",
            ),
            None => errors.add(
                &["embeds", i, "color"],
                "NUMBER_TYPE_COERCE",
                format!("Value \"{n}\" is not int."),
            ),
        },
        other => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            errors.add(
                &["embeds", i, "color"],
                "NUMBER_TYPE_COERCE",
                format!("Value \"{shown}\" is not int."),
            );
        }
    }
    match get("timestamp") {
        Value::Null => {}
        Value::String(s)
            if OffsetDateTime::parse(s, &Rfc3339).is_ok()
                || OffsetDateTime::parse(s, &Iso8601::DEFAULT).is_ok() => {}
        other => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            errors.add(
                &["embeds", i, "timestamp"],
                "DATE_TIME_TYPE_PARSE",
                format!("Could not parse {shown}. Should be ISO8601."),
            );
        }
    }
    match get("fields") {
        Value::Null => {}
        Value::Array(fields) => {
            if fields.len() > 25 {
                errors.add(
                    &["embeds", i, "fields"],
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 25 or fewer in length.",
                );
            }
            for (j, field) in fields.iter().enumerate() {
                let j = j.to_string();
                let Value::Object(field) = field else {
                    errors.add(
                        &["embeds", i, "fields", &j],
                        "MODEL_TYPE_CONVERT",
                        "Only dictionaries may be used in a ModelType",
                    );
                    continue;
                };
                let get = |key: &str| field.get(key).unwrap_or(&null);
                total += string(
                    errors,
                    &["embeds", i, "fields", &j, "name"],
                    get("name"),
                    256,
                    true,
                );
                total += string(
                    errors,
                    &["embeds", i, "fields", &j, "value"],
                    get("value"),
                    1024,
                    true,
                );
                boolean(
                    errors,
                    &["embeds", i, "fields", &j, "inline"],
                    get("inline"),
                );
            }
        }
        _ => errors.add(
            &["embeds", i, "fields"],
            "BASE_TYPE_ARRAY",
            "Must be an array.",
        ),
    }
    for (key, text_key, max) in [("footer", "text", 2048), ("author", "name", 256)] {
        match get(key) {
            Value::Null => {}
            Value::Object(part) => {
                total += string(
                    errors,
                    &["embeds", i, key, text_key],
                    part.get(text_key).unwrap_or(&null),
                    max,
                    true,
                );
                url(
                    errors,
                    &["embeds", i, key, "icon_url"],
                    part.get("icon_url").unwrap_or(&null),
                );
            }
            _ => errors.add(
                &["embeds", i, key],
                "MODEL_TYPE_CONVERT",
                "Only dictionaries may be used in a ModelType",
            ),
        }
    }
    for key in ["image", "thumbnail"] {
        match get(key) {
            Value::Null => {}
            Value::Object(part) => match part.get("url") {
                None | Some(Value::Null) => errors.add(
                    &["embeds", i, key, "url"],
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                ),
                Some(u) => url(errors, &["embeds", i, key, "url"], u),
            },
            _ => errors.add(
                &["embeds", i, key],
                "MODEL_TYPE_CONVERT",
                "Only dictionaries may be used in a ModelType",
            ),
        }
    }
    total
}

fn validate_allowed_mentions(value: &Value, errors: &mut Errors) {
    let at = "allowed_mentions";
    let mentions = match value {
        Value::Null => return,
        Value::Object(m) => m,
        _ => {
            errors.add(
                &[at],
                "MODEL_TYPE_CONVERT",
                "Only dictionaries may be used in a ModelType",
            );
            return;
        }
    };
    let mut parse = Vec::new();
    match mentions.get("parse") {
        None | Some(Value::Null) => {}
        Some(Value::Array(kinds)) => {
            for (i, kind) in kinds.iter().enumerate() {
                match kind.as_str() {
                    Some(k @ ("users" | "roles" | "everyone")) => parse.push(k),
                    _ => errors.add(
                        &[at, "parse", &i.to_string()],
                        "ENUM_TYPE_COERCE",
                        format!(
                            "Value \"{}\" is not a valid enum value.",
                            kind.as_str()
                                .map_or_else(|| kind.to_string(), str::to_owned)
                        ),
                    ),
                }
            }
        }
        Some(_) => errors.add(&[at, "parse"], "BASE_TYPE_ARRAY", "Must be an array."),
    }
    for list in ["users", "roles"] {
        match mentions.get(list) {
            None | Some(Value::Null) => {}
            Some(Value::Array(ids)) => {
                if ids.len() > 100 {
                    errors.add(
                        &[at, list],
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 100 or fewer in length.",
                    );
                }
                for (i, id) in ids.iter().enumerate() {
                    if !id.as_str().is_some_and(is_snowflake) {
                        errors.add(
                            &[at, list, &i.to_string()],
                            "NUMBER_TYPE_COERCE",
                            format!("Value \"{id}\" is not snowflake."),
                        );
                    }
                }
                if !ids.is_empty() && parse.contains(&list) {
                    errors.add(
                        &[at],
                        "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                        format!("parse:[\"{list}\"] and {list}: [ids...] are mutually exclusive."),
                    );
                }
            }
            Some(_) => errors.add(&[at, list], "BASE_TYPE_ARRAY", "Must be an array."),
        }
    }
    boolean(
        errors,
        &[at, "replied_user"],
        mentions.get("replied_user").unwrap_or(&Value::Null),
    );
}

fn is_empty_message(payload: &Map<String, Value>) -> bool {
    let content = payload
        .get("content")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.trim().is_empty());
    let embeds = payload
        .get("embeds")
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty());
    let other = ["components", "poll", "attachments", "sticker_ids"]
        .iter()
        .any(|k| payload.get(*k).is_some_and(|v| !v.is_null()));
    !content && !embeds && !other
}

/// Who the message's `content` pings under its `allowed_mentions`.
fn pings(payload: &Map<String, Value>) -> Vec<String> {
    let Some(content) = payload.get("content").and_then(Value::as_str) else {
        return Vec::new();
    };
    let allowed = payload.get("allowed_mentions");
    let list = |name: &str| -> Vec<String> {
        allowed
            .and_then(|a| a.get(name))
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Without allowed_mentions, everything may ping (the pre-2025 webhook default).
    let parses = |kind: &str| match allowed {
        None => true,
        Some(a) => a
            .get("parse")
            .and_then(Value::as_array)
            .is_some_and(|p| p.iter().any(|k| k == kind)),
    };
    let mut pings = Vec::new();
    for (word, name) in [("@everyone", "everyone"), ("@here", "here")] {
        if content.contains(word) && parses("everyone") {
            pings.push(name.to_owned());
        }
    }
    let (users, roles) = (list("users"), list("roles"));
    let mut rest = content;
    while let Some(start) = rest.find("<@") {
        rest = &rest[start + 2..];
        let (role, ids) = match rest.strip_prefix('&') {
            Some(after) => (true, after),
            None => (false, rest.strip_prefix('!').unwrap_or(rest)),
        };
        let Some(end) = ids.find('>') else { break };
        let id = &ids[..end];
        if !is_snowflake(id) {
            continue;
        }
        let (kind, ids_allowed, prefix) = if role {
            ("roles", &roles, "role")
        } else {
            ("users", &users, "user")
        };
        if parses(kind) || ids_allowed.iter().any(|a| a == id) {
            pings.push(format!("{prefix}:{id}"));
        }
    }
    pings
}

fn message_object(
    payload: &Map<String, Value>,
    id: u64,
    thread_id: Option<&str>,
    pings: &[String],
) -> Value {
    let embeds: Vec<Value> = payload
        .get("embeds")
        .and_then(Value::as_array)
        .map(|embeds| {
            embeds
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    if let Value::Object(map) = &mut e {
                        map.insert("type".to_owned(), json!("rich"));
                    }
                    e
                })
                .collect()
        })
        .unwrap_or_default();
    let timestamp = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    json!({
        "id": id.to_string(),
        "type": 0,
        "content": payload.get("content").and_then(Value::as_str).unwrap_or(""),
        "channel_id": thread_id.unwrap_or(CHANNEL_ID),
        "webhook_id": WEBHOOK_ID,
        "author": {
            "id": WEBHOOK_ID,
            "username": payload.get("username").and_then(Value::as_str).unwrap_or(WEBHOOK_NAME),
            "discriminator": "0000", "avatar": null, "bot": true,
        },
        "embeds": embeds,
        "attachments": [],
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": pings.iter().any(|p| p == "everyone" || p == "here"),
        "pinned": false,
        "tts": payload.get("tts").and_then(Value::as_bool).unwrap_or(false),
        "timestamp": timestamp,
        "edited_timestamp": null,
        "flags": 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(payload: Value) -> Value {
        let Value::Object(map) = payload else {
            panic!("object")
        };
        let mut errors = Errors::default();
        validate(&map, &mut errors);
        Value::Object(errors.tree)
    }

    #[test]
    fn limits_produce_discords_error_tree() {
        let errors = check(
            json!({"embeds": [{"description": "d".repeat(4097), "color": "red",
            "fields": [{"name": "n", "value": ""}]}]}),
        );
        assert_eq!(
            errors["embeds"]["0"]["description"]["_errors"][0],
            json!({"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 4096 or fewer in length."})
        );
        assert_eq!(
            errors["embeds"]["0"]["color"]["_errors"][0]["message"],
            "Value \"red\" is not int."
        );
        assert_eq!(
            errors["embeds"]["0"]["fields"]["0"]["value"]["_errors"][0]["code"],
            "BASE_TYPE_REQUIRED"
        );

        let eleven: Vec<Value> = (0..11).map(|_| json!({"title": "t"})).collect();
        assert_eq!(
            check(json!({"embeds": eleven}))["embeds"]["_errors"][0]["message"],
            "Must be 10 or fewer in length."
        );
        let big: Vec<Value> = (0..2)
            .map(|_| json!({"description": "d".repeat(3001)}))
            .collect();
        assert_eq!(
            check(json!({"embeds": big}))["embeds"]["_errors"][0]["code"],
            "MAX_EMBED_SIZE_EXCEEDED"
        );
        assert_eq!(
            check(json!({"content": "c".repeat(2001)}))["content"]["_errors"][0]["message"],
            "Must be 2000 or fewer in length."
        );
        // Counted in code points after trimming.
        assert_eq!(
            check(json!({"content": format!("  {}  ", "😀".repeat(2000))})),
            json!({})
        );
    }

    #[test]
    fn allowed_mentions_shape_and_pings() {
        let errors = check(
            json!({"content": "x", "allowed_mentions": {"parse": ["users", "all"], "users": ["1"]}}),
        );
        assert_eq!(
            errors["allowed_mentions"]["parse"]["1"]["_errors"][0]["code"],
            "ENUM_TYPE_COERCE"
        );
        assert_eq!(
            errors["allowed_mentions"]["_errors"][0]["code"],
            "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE"
        );

        let of = |v: Value| pings(v.as_object().unwrap());
        assert!(
            of(json!({"content": "@everyone <@1> <@&2>", "allowed_mentions": {"parse": []}}))
                .is_empty()
        );
        assert_eq!(
            of(json!({"content": "@everyone <@!1> <@&2>"})),
            ["everyone", "user:1", "role:2"]
        );
        assert_eq!(
            of(json!({"content": "hi <@1> <@3>", "allowed_mentions": {"users": ["3"]}})),
            ["user:3"]
        );
        assert!(
            of(json!({"embeds": [{"title": "@everyone"}]})).is_empty(),
            "embeds never ping"
        );
    }
}
