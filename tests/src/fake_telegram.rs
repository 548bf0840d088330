//! A fake Telegram Bot API server on 127.0.0.1 that answers as the real one does: the
//! same URL shape, parameter encodings, status codes, error descriptions and limits.
//!
//! ```ignore
//! let telegram = FakeTelegram::start("123456:TEST-token").await;
//! let api_url = telegram.api_url();               // http://127.0.0.1:PORT
//! telegram.script("sendMessage", [Reply::RetryAfter(3)]);
//! telegram.push_command(42, 7, "/status");         // user 7 types /status in chat 42
//! // ... point a Telegram sink at `api_url`, deliver ...
//! assert_eq!(telegram.messages()[0].visible, "...");
//! ```
//!
//! What it implements (checked against the Bot API docs and server, see
//! `reference/protocols.md` §1):
//! - `GET|POST /bot<token>/<method>`, method names case-insensitive (teloxide sends
//!   `SendMessage`); parameters from the query string, JSON, or a form. A wrong token is
//!   `401 Unauthorized`, an unknown method `404 Not Found: method not found`. The HTTP
//!   status always equals `error_code`, and a 429 also carries `Retry-After`.
//! - `getMe` with every field teloxide's `Me` requires; `getWebhookInfo`;
//!   `deleteWebhook` (optionally dropping pending updates); `setMyCommands`, validated
//!   as Telegram does.
//! - `getUpdates`: long polling up to `timeout` (clamped to 50 s), `offset` confirms
//!   every earlier update, a negative offset takes from the end, a newer poll ends an
//!   older one with `409 Conflict: terminated by other getUpdates request`, and polling
//!   while a webhook is set is a `409`.
//! - `sendMessage`: `chat_id` and `text` required, raw text up to 32768 bytes,
//!   `parse_mode` HTML parsed exactly as Telegram parses it (supported tags only,
//!   unescaped `<` and unmatched tags refused with byte offsets, entities decoded), the
//!   4096-character limit counted in code points after parsing and trimming. Accepted
//!   messages are recorded.
//!
//! It never answers 5xx on its own (teloxide's request path, which the plugin still uses
//! for `getMe` and `getUpdates`, sleeps 10 s after any 5xx); a test may script one
//! deliberately. Scripted replies ([`FakeTelegram::script`]) answer the next calls
//! of a method, in order, before any other check.

pub mod html;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

/// The fake bot's username (`getMe`); commands may be addressed `/status@alert_test_bot`.
pub const BOT_USERNAME: &str = "alert_test_bot";

/// Telegram's limit on a message's text, in code points after entity parsing.
/// <https://core.telegram.org/bots/api#sendmessage>
pub const TEXT_LIMIT: usize = 4096;

/// The Bot API server refuses raw text over this many bytes before parsing it.
pub const RAW_TEXT_LIMIT: usize = 32768;

/// The longest long poll the server allows (`LONG_POLL_MAX_TIMEOUT`).
const MAX_POLL: Duration = Duration::from_secs(50);

/// A scripted answer for one call.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Handle the call as usual (to let some through before a scripted failure).
    Normal,
    /// `429 Too Many Requests: retry after N` with `parameters.retry_after` and a
    /// `Retry-After` header, as Telegram's flood control answers.
    RetryAfter(u32),
    /// An error with Telegram's envelope: `error_code` = status, this description
    /// (e.g. `403`, `"Forbidden: bot was blocked by the user"`).
    Error(u16, String),
    /// Any status with a raw body and content type (a proxy's HTML error page).
    Raw(u16, &'static str, String),
}

impl Reply {
    /// `400 Bad Request: <detail>`.
    pub fn bad_request(detail: &str) -> Reply {
        Reply::Error(400, format!("Bad Request: {detail}"))
    }

    /// `403 Forbidden: bot was blocked by the user`.
    pub fn blocked() -> Reply {
        Reply::Error(403, "Forbidden: bot was blocked by the user".to_owned())
    }
}

/// A message the fake accepted.
#[derive(Debug, Clone)]
pub struct Sent {
    /// `chat_id` as sent: a number, or an `@channel` string.
    pub chat_id: Value,
    /// `text` as sent, markup included.
    pub text: String,
    /// What the user sees: markup parsed away, entities decoded, whitespace trimmed.
    pub visible: String,
    /// The entities Telegram made of the markup.
    pub entities: Vec<Value>,
    pub parse_mode: Option<String>,
    pub disable_notification: bool,
    /// Every parameter of the call.
    pub params: Map<String, Value>,
    pub message_id: i64,
    pub at: Instant,
}

impl Sent {
    /// The chat as a number (`None` for an `@channel`).
    pub fn chat(&self) -> Option<i64> {
        self.chat_id.as_i64()
    }
}

/// A call the fake answered, accepted or not.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method as Telegram knows it, lower-cased (`sendmessage`).
    pub method: String,
    /// The method as the client wrote it in the URL (`SendMessage`).
    pub method_as_sent: String,
    pub params: Map<String, Value>,
    pub status: u16,
    /// Telegram's `description` for answers other than 200.
    pub description: Option<String>,
    /// Whether the answer came from [`FakeTelegram::script`].
    pub scripted: bool,
    /// When the call arrived and when it was answered (long polls take a while).
    pub at: Instant,
    pub answered: Instant,
}

/// The running fake; stops when dropped.
pub struct FakeTelegram {
    addr: SocketAddr,
    token: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

struct Shared {
    token: String,
    bot_id: i64,
    state: Mutex<FakeState>,
    /// Wakes long polls: an update arrived, or another poll started.
    updates: Notify,
}

#[derive(Default)]
struct FakeState {
    scripts: HashMap<String, VecDeque<Reply>>,
    updates: VecDeque<(i64, Value)>,
    next_update_id: i64,
    next_message_id: i64,
    /// Bumped by every getUpdates; an older poll that sees a newer number gives up.
    poll_generation: u64,
    webhook: String,
    commands: Vec<(String, String)>,
    blocked: HashSet<i64>,
    sent: Vec<Sent>,
    calls: Vec<Call>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl FakeTelegram {
    /// Starts the fake for the bot with `token` on 127.0.0.1 and a free port, on the
    /// current tokio runtime (a multi-threaded one, if the test thread blocks).
    pub async fn start(token: &str) -> FakeTelegram {
        let bot_id = token
            .split_once(':')
            .and_then(|(id, _)| id.parse().ok())
            .unwrap_or(1);
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            bot_id,
            state: Mutex::new(FakeState {
                next_update_id: 892_252_934,
                next_message_id: 1,
                ..FakeState::default()
            }),
            updates: Notify::new(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("fake Telegram cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fake Telegram has no local address: {e}"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeTelegram {
            addr,
            token: token.to_owned(),
            shared,
            server,
        }
    }

    /// The base URL to give a client (`api_url`): `http://127.0.0.1:PORT`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers the next calls of `method` (any letter case) with `replies`, in order.
    pub fn script(&self, method: &str, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared.state)
            .scripts
            .entry(method.to_ascii_lowercase())
            .or_default()
            .extend(replies);
    }

    /// Makes every message to `chat_id` fail as a chat that blocked the bot does
    /// (`403 Forbidden: bot was blocked by the user`; for a group, kicked).
    pub fn block(&self, chat_id: i64) {
        lock(&self.shared.state).blocked.insert(chat_id);
    }

    /// Sets a webhook, as another deployment of the bot might have.
    pub fn set_webhook(&self, url: &str) {
        lock(&self.shared.state).webhook = url.to_owned();
    }

    /// Queues a text message from user `user_id` in chat `chat_id` (negative: a
    /// supergroup), with a `bot_command` entity when it starts with `/`. Returns the
    /// update id.
    pub fn push_command(&self, chat_id: i64, user_id: i64, text: &str) -> i64 {
        let command_len: usize = text
            .split_whitespace()
            .next()
            .filter(|w| w.starts_with('/'))
            .map_or(0, |w| w.encode_utf16().count());
        let mut message = json!({
            "from": {"id": user_id, "is_bot": false, "first_name": format!("User{user_id}"),
                     "username": format!("user{user_id}"), "language_code": "en"},
            "chat": chat_json(chat_id),
            "date": unix_now(),
            "text": text,
        });
        if command_len > 0 {
            message["entities"] =
                json!([{"offset": 0, "length": command_len, "type": "bot_command"}]);
        }
        self.push_update(json!({ "message": message }))
    }

    /// Queues an update (`{"message": {...}}` or any other kind); the fake adds
    /// `update_id` and, for messages, `message_id`. Returns the update id.
    pub fn push_update(&self, mut update: Value) -> i64 {
        let id = {
            let mut state = lock(&self.shared.state);
            let id = state.next_update_id;
            state.next_update_id += 1;
            if let Some(message) = update.get_mut("message")
                && message.get("message_id").is_none()
            {
                message["message_id"] = json!(state.next_message_id);
                state.next_message_id += 1;
            }
            update["update_id"] = json!(id);
            state.updates.push_back((id, update));
            id
        };
        self.shared.updates.notify_waiters();
        id
    }

    /// Updates not yet confirmed by a poll with a higher offset.
    pub fn pending_updates(&self) -> usize {
        lock(&self.shared.state).updates.len()
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Sent> {
        lock(&self.shared.state).sent.clone()
    }

    /// Accepted messages to `chat_id`.
    pub fn messages_to(&self, chat_id: i64) -> Vec<Sent> {
        self.messages()
            .into_iter()
            .filter(|m| m.chat() == Some(chat_id))
            .collect()
    }

    /// Every call answered so far, in order of answering.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared.state).calls.clone()
    }

    /// Calls of `method` (any letter case).
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        let method = method.to_ascii_lowercase();
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// The command menu the last `setMyCommands` set: (command, description).
    pub fn commands(&self) -> Vec<(String, String)> {
        lock(&self.shared.state).commands.clone()
    }

    /// Polls `check` until it gives a value or `timeout` passes (then `None`). For
    /// tests that run on a plain thread while the fake runs on its runtime.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&FakeTelegram) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = check(self) {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn chat_json(chat_id: i64) -> Value {
    if chat_id < 0 {
        json!({"id": chat_id, "title": format!("Group {chat_id}"), "type": "supergroup"})
    } else {
        json!({"id": chat_id, "first_name": format!("User{chat_id}"), "username": format!("user{chat_id}"), "type": "private"})
    }
}

/// An answer: status, JSON body, and a `Retry-After` for 429s.
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<u32>,
    raw: Option<(&'static str, String)>,
}

impl Answer {
    fn ok(result: Value) -> Answer {
        Answer {
            status: 200,
            body: json!({"ok": true, "result": result}),
            retry_after: None,
            raw: None,
        }
    }

    fn ok_with(result: Value, description: &str) -> Answer {
        Answer {
            status: 200,
            body: json!({"ok": true, "result": result, "description": description}),
            retry_after: None,
            raw: None,
        }
    }

    fn error(code: u16, description: impl Into<String>) -> Answer {
        Answer {
            status: code,
            body: json!({"ok": false, "error_code": code, "description": description.into()}),
            retry_after: None,
            raw: None,
        }
    }

    fn bad_request(detail: impl std::fmt::Display) -> Answer {
        Answer::error(400, format!("Bad Request: {detail}"))
    }

    fn retry_after(seconds: u32) -> Answer {
        Answer {
            status: 429,
            body: json!({"ok": false, "error_code": 429,
                         "description": format!("Too Many Requests: retry after {seconds}"),
                         "parameters": {"retry_after": seconds}}),
            retry_after: Some(seconds),
            raw: None,
        }
    }

    fn description(&self) -> Option<String> {
        if self.status == 200 {
            return None;
        }
        match &self.raw {
            Some((_, body)) => Some(body.clone()),
            None => self.body["description"].as_str().map(str::to_owned),
        }
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = match self.raw {
            Some((content_type, body)) => {
                (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
            }
            None => (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                self.body.to_string(),
            )
                .into_response(),
        };
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Every request: `/bot<token>/<method>`.
async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();

    let Some(rest) = path.strip_prefix("/bot") else {
        return Answer::error(404, "Not Found").into_response();
    };
    let (token, method_as_sent) = rest.split_once('/').unwrap_or((rest, ""));
    if token != shared.token {
        let well_formed = token
            .split_once(':')
            .is_some_and(|(id, secret)| id.parse::<u64>().is_ok() && !secret.is_empty());
        let description = if well_formed {
            "Unauthorized"
        } else {
            "Unauthorized: invalid token specified"
        };
        return Answer::error(401, description).into_response();
    }
    let method = method_as_sent.to_ascii_lowercase();
    let params = match params(&parts.headers, &query, &body) {
        Ok(params) => params,
        Err(detail) => return Answer::bad_request(detail).into_response(),
    };

    let scripted = lock(&shared.state)
        .scripts
        .get_mut(&method)
        .and_then(VecDeque::pop_front);
    let (answer, scripted) = match scripted {
        None | Some(Reply::Normal) => (answer(&shared, &method, &params).await, false),
        Some(Reply::RetryAfter(seconds)) => (Answer::retry_after(seconds), true),
        Some(Reply::Error(code, description)) => (Answer::error(code, description), true),
        Some(Reply::Raw(status, content_type, body)) => (
            Answer {
                status,
                body: Value::Null,
                retry_after: None,
                raw: Some((content_type, body)),
            },
            true,
        ),
    };
    lock(&shared.state).calls.push(Call {
        method,
        method_as_sent: method_as_sent.to_owned(),
        params,
        status: answer.status,
        description: answer.description(),
        scripted,
        at,
        answered: Instant::now(),
    });
    answer.into_response()
}

/// Parameters from the query string and the body (JSON or a form), as the server
/// accepts them. Form and query values are text; JSON ones keep their type.
/// An error is the detail of a `400 Bad Request`.
fn params(headers: &HeaderMap, query: &str, body: &Bytes) -> Result<Map<String, Value>, String> {
    let mut params = Map::new();
    for (key, value) in form_pairs(query) {
        params.insert(key, Value::String(value));
    }
    if body.is_empty() {
        return Ok(params);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => params.extend(map),
            Ok(_) => {}
            Err(_) => return Err("can't parse JSON encoded request".to_owned()),
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let text = String::from_utf8_lossy(body);
        for (key, value) in form_pairs(&text) {
            params.insert(key, Value::String(value));
        }
    } else if content_type.starts_with("multipart/form-data") {
        return Err(
            "the fake Telegram does not take multipart/form-data; send JSON or a form".to_owned(),
        );
    }
    Ok(params)
}

/// `a=1&b=x%20y` as pairs, percent- and `+`-decoded.
fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parameter as text (form values are text; JSON numbers are read as their digits).
fn text_param(params: &Map<String, Value>, key: &str) -> Option<String> {
    match params.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn int_param(params: &Map<String, Value>, key: &str) -> Option<i64> {
    match params.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn bool_param(params: &Map<String, Value>, key: &str) -> bool {
    match params.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1"),
        Some(Value::Number(n)) => n.as_i64().is_some_and(|n| n != 0),
        _ => false,
    }
}

/// A JSON-valued parameter: JSON bodies carry it as is, forms as a JSON string.
fn json_param(params: &Map<String, Value>, key: &str) -> Option<Result<Value, ()>> {
    match params.get(key)? {
        Value::String(s) => Some(serde_json::from_str(s).map_err(|_| ())),
        other => Some(Ok(other.clone())),
    }
}

async fn answer(shared: &Shared, method: &str, params: &Map<String, Value>) -> Answer {
    match method {
        "getme" => Answer::ok(json!({
            "id": shared.bot_id, "is_bot": true, "first_name": "AlertBot",
            "username": BOT_USERNAME, "can_join_groups": true,
            "can_read_all_group_messages": false, "supports_inline_queries": false,
            "can_connect_to_business": false, "has_main_web_app": false,
        })),
        "getwebhookinfo" => {
            let state = lock(&shared.state);
            Answer::ok(json!({
                "url": state.webhook, "has_custom_certificate": false,
                "pending_update_count": state.updates.len(),
            }))
        }
        "deletewebhook" => {
            let mut state = lock(&shared.state);
            if bool_param(params, "drop_pending_updates") {
                state.updates.clear();
            }
            let was_set = !state.webhook.is_empty();
            state.webhook.clear();
            Answer::ok_with(
                json!(true),
                if was_set {
                    "Webhook was deleted"
                } else {
                    "Webhook is already deleted"
                },
            )
        }
        "setmycommands" => set_my_commands(shared, params),
        "getupdates" => get_updates(shared, params).await,
        "sendmessage" => send_message(shared, params),
        _ => Answer::error(404, "Not Found: method not found"),
    }
}

fn set_my_commands(shared: &Shared, params: &Map<String, Value>) -> Answer {
    // Without `commands` the real server sets an empty list and succeeds.
    let list = match json_param(params, "commands") {
        None => Value::Array(Vec::new()),
        Some(Ok(list)) => list,
        Some(Err(())) => return Answer::bad_request("can't parse commands JSON object"),
    };
    let Some(list) = list.as_array() else {
        return Answer::bad_request("field \"commands\" must be an Array");
    };
    if list.len() > 100 {
        return Answer::bad_request("BOT_COMMANDS_TOO_MUCH");
    }
    let mut commands = Vec::with_capacity(list.len());
    for item in list {
        let Some(command) = item.get("command").and_then(Value::as_str) else {
            return Answer::bad_request(
                "can't parse BotCommand: Field \"command\" must be of type String",
            );
        };
        let Some(description) = item.get("description").and_then(Value::as_str) else {
            return Answer::bad_request("can't parse BotCommand: Can't find field \"description\"");
        };
        let command = command.trim();
        let command = command.strip_prefix('/').unwrap_or(command);
        if command.is_empty() {
            return Answer::bad_request("command must be non-empty");
        }
        if command.chars().count() > 32 {
            return Answer::bad_request("command length must not exceed 32");
        }
        let description = description.trim();
        if description.is_empty() {
            return Answer::bad_request("command description must be non-empty");
        }
        if description.chars().count() > 256 {
            return Answer::bad_request("command description length must not exceed 256");
        }
        if !command
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Answer::bad_request("BOT_COMMAND_INVALID");
        }
        commands.push((command.to_owned(), description.to_owned()));
    }
    lock(&shared.state).commands = commands;
    Answer::ok(json!(true))
}

async fn get_updates(shared: &Shared, params: &Map<String, Value>) -> Answer {
    let offset = int_param(params, "offset").unwrap_or(0);
    let limit = int_param(params, "limit").unwrap_or(100).clamp(1, 100) as usize;
    let timeout =
        Duration::from_secs(int_param(params, "timeout").unwrap_or(0).max(0) as u64).min(MAX_POLL);
    let deadline = tokio::time::Instant::now() + timeout;

    let generation = {
        let mut state = lock(&shared.state);
        if !state.webhook.is_empty() {
            return Answer::error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use \
                 deleteWebhook to delete the webhook first",
            );
        }
        // Confirm: a positive offset forgets every earlier update; a negative one keeps
        // only that many from the end.
        if offset > 0 {
            state.updates.retain(|(id, _)| *id >= offset);
        } else if offset < 0 {
            let keep = offset.unsigned_abs() as usize;
            while state.updates.len() > keep {
                state.updates.pop_front();
            }
        }
        state.poll_generation += 1;
        state.poll_generation
    };
    // Ends an older poll still waiting: Telegram answers it with a 409.
    shared.updates.notify_waiters();

    loop {
        let notified = shared.updates.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let state = lock(&shared.state);
            if state.poll_generation != generation {
                return Answer::error(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only \
                     one bot instance is running",
                );
            }
            let ready: Vec<Value> = state
                .updates
                .iter()
                .filter(|(id, _)| *id >= offset || offset <= 0)
                .take(limit)
                .map(|(_, update)| update.clone())
                .collect();
            if !ready.is_empty() {
                return Answer::ok(Value::Array(ready));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Answer::ok(json!([]));
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

fn send_message(shared: &Shared, params: &Map<String, Value>) -> Answer {
    let chat_id = match params.get("chat_id") {
        Some(Value::Number(n)) if n.as_i64().is_some() => Value::Number(n.clone()),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
            json!(s.trim().parse::<i64>().unwrap_or_default())
        }
        Some(Value::String(s)) if s.starts_with('@') && s.len() > 1 => Value::String(s.clone()),
        Some(Value::String(s)) if !s.is_empty() => return Answer::bad_request("chat not found"),
        _ => return Answer::bad_request("chat_id is empty"),
    };
    if let Some(id) = chat_id.as_i64()
        && lock(&shared.state).blocked.contains(&id)
    {
        return if id < 0 {
            Answer::error(403, "Forbidden: bot was kicked from the supergroup chat")
        } else {
            Answer::error(403, "Forbidden: bot was blocked by the user")
        };
    }
    let text = text_param(params, "text").unwrap_or_default();
    if text.is_empty() {
        return Answer::bad_request("message text is empty");
    }
    if text.len() > RAW_TEXT_LIMIT {
        return Answer::bad_request("text is too long");
    }
    let parse_mode = text_param(params, "parse_mode");
    let parsed = match parse_mode
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") => html::Parsed {
            text: text.clone(),
            entities: Vec::new(),
        },
        Some("html") => match html::parse(&text) {
            Ok(parsed) => parsed,
            Err(detail) => return Answer::bad_request(format!("can't parse entities: {detail}")),
        },
        // Markdown is taken as written: the fake models HTML only.
        Some("markdownv2" | "markdown") => html::Parsed {
            text: text.clone(),
            entities: Vec::new(),
        },
        Some(_) => return Answer::bad_request("unsupported parse_mode"),
    };
    let (visible, entities) = trimmed(parsed);
    if visible.is_empty() {
        return Answer::bad_request("text must be non-empty");
    }
    if visible.chars().count() > TEXT_LIMIT {
        return Answer::bad_request("message is too long");
    }
    if let Some(Err(())) = json_param(params, "reply_markup") {
        return Answer::bad_request("can't parse reply keyboard markup JSON object");
    }
    if let Some(Err(())) = json_param(params, "link_preview_options") {
        return Answer::bad_request("can't parse link preview options JSON object");
    }

    let mut state = lock(&shared.state);
    let message_id = state.next_message_id;
    state.next_message_id += 1;
    let chat = match chat_id.as_i64() {
        Some(id) => chat_json(id),
        None => json!({"id": -1_001_000_000_000i64, "title": chat_id, "type": "channel",
                       "username": chat_id.as_str().unwrap_or_default().trim_start_matches('@')}),
    };
    let mut result = json!({
        "message_id": message_id,
        "from": {"id": shared.bot_id, "is_bot": true, "first_name": "AlertBot", "username": BOT_USERNAME},
        "chat": chat,
        "date": unix_now(),
        "text": visible,
    });
    if !entities.is_empty() {
        result["entities"] = Value::Array(entities.clone());
    }
    state.sent.push(Sent {
        chat_id,
        text,
        visible,
        entities,
        parse_mode,
        disable_notification: bool_param(params, "disable_notification"),
        params: params.clone(),
        message_id,
        at: Instant::now(),
    });
    Answer::ok(result)
}

/// Telegram trims leading and trailing whitespace after parsing; entities move with
/// the text and are cut to it.
fn trimmed(parsed: html::Parsed) -> (String, Vec<Value>) {
    let start = parsed.text.len() - parsed.text.trim_start().len();
    let visible = parsed.text.trim().to_owned();
    let shift = parsed.text[..start].encode_utf16().count() as u64;
    let total = visible.encode_utf16().count() as u64;
    let entities = parsed
        .entities
        .into_iter()
        .filter_map(|mut e| {
            let offset = e["offset"].as_u64()?;
            let length = e["length"].as_u64()?;
            let begin = offset.saturating_sub(shift).min(total);
            let end = (offset + length).saturating_sub(shift).min(total);
            if end <= begin {
                return None;
            }
            e["offset"] = json!(begin);
            e["length"] = json!(end - begin);
            Some(e)
        })
        .collect();
    (visible, entities)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456:TEST-fake-token";

    /// One raw Bot API call: (status, Retry-After header, body).
    async fn call(fake: &FakeTelegram, method: &str, body: Value) -> (u16, Option<String>, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/bot{}/{method}", fake.api_url(), fake.token()))
            .json(&body)
            .send()
            .await
            .expect("the fake answers");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.json().await.expect("a JSON body");
        (status, retry_after, body)
    }

    fn description(body: &Value) -> &str {
        body["description"].as_str().unwrap_or_default()
    }

    #[tokio::test]
    async fn answers_like_the_bot_api() {
        let fake = FakeTelegram::start(TOKEN).await;
        let (status, _, me) = call(&fake, "GetMe", json!({})).await;
        assert_eq!(status, 200);
        for field in [
            "can_join_groups",
            "can_read_all_group_messages",
            "supports_inline_queries",
            "has_main_web_app",
        ] {
            assert!(me["result"][field].is_boolean(), "getMe lacks {field}");
        }
        assert_eq!(me["result"]["username"], BOT_USERNAME);

        // The limit counts code points after parsing: 4096 emoji fit, 4097 letters do not.
        let emoji = "😀".repeat(TEXT_LIMIT);
        let (status, _, _) = call(&fake, "sendMessage", json!({"chat_id": 1, "text": emoji})).await;
        assert_eq!(status, 200);
        let long = format!("<b>{}</b>", "a".repeat(TEXT_LIMIT + 1));
        let (status, _, body) = call(
            &fake,
            "sendMessage",
            json!({"chat_id": 1, "text": long, "parse_mode": "HTML"}),
        )
        .await;
        assert_eq!(
            (status, description(&body)),
            (400, "Bad Request: message is too long")
        );
        let (status, _, body) = call(
            &fake,
            "sendMessage",
            json!({"chat_id": 1, "text": "a < b", "parse_mode": "html"}),
        )
        .await;
        assert_eq!(
            (status, description(&body)),
            (
                400,
                "Bad Request: can't parse entities: Unsupported start tag \"\" at byte offset 2"
            )
        );
        let (_, _, body) = call(
            &fake,
            "sendMessage",
            json!({"chat_id": 1, "text": "x", "parse_mode": "rst"}),
        )
        .await;
        assert_eq!(description(&body), "Bad Request: unsupported parse_mode");
        let (_, _, body) = call(
            &fake,
            "sendMessage",
            json!({"chat_id": 1, "text": "<b> </b>", "parse_mode": "HTML"}),
        )
        .await;
        assert_eq!(description(&body), "Bad Request: text must be non-empty");
        let (_, _, body) = call(&fake, "sendMessage", json!({"text": "x"})).await;
        assert_eq!(description(&body), "Bad Request: chat_id is empty");
        assert_eq!(fake.messages().len(), 1);

        let (status, _, body) = call(
            &fake,
            "setMyCommands",
            json!({"commands": [{"command": "Status", "description": "x"}]}),
        )
        .await;
        assert_eq!(
            (status, description(&body)),
            (400, "Bad Request: BOT_COMMAND_INVALID")
        );
        let (_, _, body) = call(
            &fake,
            "setMyCommands",
            json!({"commands": [{"command": "status", "description": " "}]}),
        )
        .await;
        assert_eq!(
            description(&body),
            "Bad Request: command description must be non-empty"
        );

        fake.script("sendmessage", [Reply::RetryAfter(3)]);
        let (status, retry_after, body) =
            call(&fake, "sendMessage", json!({"chat_id": 1, "text": "x"})).await;
        assert_eq!((status, retry_after.as_deref()), (429, Some("3")));
        assert_eq!(body["parameters"], json!({"retry_after": 3}));

        let (status, _, body) = call(&fake, "nope", json!({})).await;
        assert_eq!(
            (status, description(&body)),
            (404, "Not Found: method not found")
        );
        let wrong = reqwest::get(format!("{}/bot1:other/getMe", fake.api_url()))
            .await
            .expect("answer");
        assert_eq!(wrong.status().as_u16(), 401);
    }

    #[tokio::test]
    async fn takes_query_strings_and_forms_too() {
        let fake = FakeTelegram::start(TOKEN).await;
        let url = format!(
            "{}/bot{TOKEN}/sendmessage?chat_id=-100&text=via%20query",
            fake.api_url()
        );
        assert_eq!(
            reqwest::get(url).await.expect("answer").status().as_u16(),
            200
        );
        let form = reqwest::Client::new()
            .post(format!("{}/bot{TOKEN}/SENDMESSAGE", fake.api_url()))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("chat_id=7&text=%3Cb%3Eform%3C%2Fb%3E&parse_mode=HTML&disable_notification=true")
            .send()
            .await
            .expect("answer");
        assert_eq!(form.status().as_u16(), 200);
        let sent = fake.messages();
        assert_eq!(sent[0].chat(), Some(-100));
        assert_eq!(sent[0].visible, "via query");
        assert_eq!(
            (sent[1].visible.as_str(), sent[1].disable_notification),
            ("form", true)
        );
    }

    #[tokio::test]
    async fn long_polls_confirm_and_end_older_polls() {
        let fake = FakeTelegram::start(TOKEN).await;
        let first = fake.push_command(5, 6, "/status");
        let (_, _, body) = call(&fake, "getUpdates", json!({"offset": 0, "timeout": 0})).await;
        assert_eq!(body["result"][0]["update_id"], first);
        assert_eq!(
            body["result"][0]["message"]["entities"][0]["type"],
            "bot_command"
        );
        // An offset past it confirms it.
        let (_, _, body) = call(
            &fake,
            "getUpdates",
            json!({"offset": first + 1, "timeout": 0}),
        )
        .await;
        assert_eq!(body["result"], json!([]));
        assert_eq!(fake.pending_updates(), 0);
        // A waiting poll gets an update as soon as it arrives.
        let started = Instant::now();
        let waiting = call(
            &fake,
            "getUpdates",
            json!({"offset": first + 1, "timeout": 5}),
        );
        let push = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            fake.push_command(5, 6, "/help")
        };
        let ((_, _, body), second) = tokio::join!(waiting, push);
        assert_eq!(body["result"][0]["update_id"], second);
        assert!(started.elapsed() < Duration::from_secs(4));
        // A second poller ends the first with a 409.
        let older = call(
            &fake,
            "getUpdates",
            json!({"offset": second + 1, "timeout": 5}),
        );
        let newer = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            call(
                &fake,
                "getUpdates",
                json!({"offset": second + 1, "timeout": 0}),
            )
            .await
        };
        let ((status, _, body), _) = tokio::join!(older, newer);
        assert_eq!(status, 409);
        assert!(description(&body).starts_with("Conflict: terminated by other getUpdates request"));
        // While a webhook is set, polling is refused.
        fake.set_webhook("https://example.com/hook");
        let (status, _, _) = call(&fake, "getUpdates", json!({})).await;
        assert_eq!(status, 409);
    }

    #[test]
    fn forms_decode() {
        assert_eq!(
            form_pairs("chat_id=42&text=a%20b+c%26d&x=%zz"),
            vec![
                ("chat_id".to_owned(), "42".to_owned()),
                ("text".to_owned(), "a b c&d".to_owned()),
                ("x".to_owned(), "%zz".to_owned()),
            ]
        );
    }

    #[test]
    fn trimming_moves_entities() {
        let parsed = html::parse("  <b>hi</b> there \n").expect("valid");
        let (visible, entities) = trimmed(parsed);
        assert_eq!(visible, "hi there");
        assert_eq!(
            entities,
            vec![json!({"type": "bold", "offset": 0, "length": 2})]
        );
    }
}
