//! A Rust client for producers (trading bots): typed trading events, `POST /v1/events`
//! with retries that never deliver an event twice, and `GET /v1/status`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), alert_router::client::ClientError> {
//! use alert_router::client::{Client, TradeOpened};
//! let client = Client::new("http://127.0.0.1:9470").with_retries(3);
//! let id = client
//!     .notify_trade_opened(&TradeOpened::new("BTC/USDT", "BUY", 45000.0, 0.5))
//!     .await?;
//! println!("queued as {id}");
//! # Ok(())
//! # }
//! ```
//!
//! Every call gives its event an `id` (UUID v7) before the first attempt and sends the
//! same id on every retry; the router accepts a repeated id without delivering it again,
//! so a request whose answer was lost can be retried safely.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value, json};

use crate::event::Severity;

/// How long one attempt may take unless [`Client::with_timeout`] says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries after the first attempt unless [`Client::with_retries`] says otherwise.
const DEFAULT_RETRIES: u32 = 3;
/// The first backoff; it doubles on each retry up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured; a router asking for more is treated as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How much of an unexpected answer's body goes into an error.
const BODY_EXCERPT: usize = 300;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The router refused the request (400 bad event, 401 token, 413 too large, or another
    /// 4xx); retrying the same request would not help. `message` is the router's `error`.
    #[error("the router refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    /// The router could not be reached or stayed unavailable (connection errors,
    /// timeouts, 503, 5xx) on every attempt.
    #[error("the router is unavailable after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: String },
    /// Something retrying cannot fix: a base URL that is not a URL, an answer that is not
    /// the API's JSON.
    #[error("{0}")]
    Transport(String),
}

/// A client of one router's HTTP API. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    timeout: Duration,
    retries: u32,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

impl Client {
    /// A client of the router at `base_url` (`http://127.0.0.1:9470`), with a 10 s
    /// timeout per attempt and 3 retries.
    pub fn new(base_url: impl Into<String>) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base_url.into().trim_end_matches('/').to_owned(),
            token: None,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
        }
    }

    /// Sends `Authorization: Bearer <token>` (the router's `server.token`).
    pub fn with_token(mut self, token: impl Into<String>) -> Client {
        let token = token.into();
        self.token = (!token.is_empty()).then_some(token);
        self
    }

    /// How long one attempt may take, connecting included.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// How many times a failed attempt is retried: after connection errors, timeouts,
    /// 503 (waiting as long as its `Retry-After` says) and other 5xx, with a backoff
    /// doubling from 200 ms to 5 s. A refusal (4xx) is never retried. 0: one attempt.
    pub fn with_retries(mut self, retries: u32) -> Client {
        self.retries = retries;
        self
    }

    /// The router's base URL, as given.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Posts one event of any type (a JSON object with a `type`) and returns its id. An
    /// `id` the event carries is kept; otherwise a new one is set before the first attempt.
    pub async fn send(&self, event: Value) -> Result<String, ClientError> {
        let Value::Object(mut map) = event else {
            return Err(ClientError::Transport(
                "an event must be a JSON object with a `type`".into(),
            ));
        };
        let id = match map.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                let id = crate::event::new_id();
                map.insert("id".into(), json!(id));
                id
            }
        };
        let body = serde_json::to_vec(&Value::Object(map))
            .map_err(|e| ClientError::Transport(format!("cannot encode the event: {e}")))?;
        let answer = self
            .call(reqwest::Method::POST, "/v1/events", Some(body))
            .await?;
        // The router answers with the ids it queued; ours is the only one.
        match answer["ids"].get(0).and_then(Value::as_str) {
            Some(given) => Ok(given.to_owned()),
            None => Ok(id),
        }
    }

    /// Posts a typed trading event and returns its id.
    pub async fn notify<E: TradingEvent>(&self, event: &E) -> Result<String, ClientError> {
        self.send(to_event(event)?).await
    }

    /// `trade_opened`.
    pub async fn notify_trade_opened(&self, trade: &TradeOpened) -> Result<String, ClientError> {
        self.notify(trade).await
    }

    /// `trade_closed`.
    pub async fn notify_trade_closed(&self, trade: &TradeClosed) -> Result<String, ClientError> {
        self.notify(trade).await
    }

    /// `error` (severity `error` unless the event says otherwise).
    pub async fn notify_error(&self, error: &ErrorEvent) -> Result<String, ClientError> {
        self.notify(error).await
    }

    /// `daily_summary`.
    pub async fn send_daily_summary(&self, summary: &DailySummary) -> Result<String, ClientError> {
        self.notify(summary).await
    }

    /// `portfolio_update`.
    pub async fn send_portfolio_update(
        &self,
        portfolio: &PortfolioUpdate,
    ) -> Result<String, ClientError> {
        self.notify(portfolio).await
    }

    /// `performance_metrics`.
    pub async fn send_performance_metrics(
        &self,
        metrics: &PerformanceMetrics,
    ) -> Result<String, ClientError> {
        self.notify(metrics).await
    }

    /// `GET /v1/status`: every sink's health and counters, the event counters, the config.
    pub async fn service_status(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, "/v1/status", None).await
    }

    /// The event counters of `/v1/status`: accepted, duplicates, unrouted, rejected,
    /// rule_errors, by_type.
    pub async fn stats(&self) -> Result<Value, ClientError> {
        let mut status = self.service_status().await?;
        Ok(status["events"].take())
    }

    /// One request with retries; the JSON answer of a 2xx.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .timeout(self.timeout);
            if let Some(body) = &body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            if let Some(token) = &self.token {
                req = req.bearer_auth(token);
            }
            let (verdict, why) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let wait = retry_after(resp.headers());
                    let text = resp.text().await.unwrap_or_default();
                    match classify(status) {
                        Verdict::Done => {
                            return serde_json::from_str(&text).map_err(|e| {
                                ClientError::Transport(format!(
                                    "{method} {path}: the answer is not the router's JSON ({e}): {}",
                                    excerpt(&text)
                                ))
                            });
                        }
                        Verdict::Refused => {
                            return Err(ClientError::Refused {
                                status: status.as_u16(),
                                message: error_text(&text),
                            });
                        }
                        Verdict::Retry => (wait, format!("{status}: {}", error_text(&text))),
                    }
                }
                Err(e) if e.is_builder() => {
                    return Err(ClientError::Transport(format!(
                        "cannot make a request to {:?}: {}",
                        redact(&self.base),
                        e.without_url()
                    )));
                }
                Err(e) => (None, transport_reason(&e)),
            };
            if attempt > self.retries {
                return Err(ClientError::Unavailable {
                    attempts: attempt,
                    last: why,
                });
            }
            let pause = verdict.unwrap_or_else(|| backoff(attempt));
            tracing::debug!(attempt, ?pause, reason = %why, "retrying a request to the router");
            tokio::time::sleep(pause).await;
        }
    }
}

/// What an answer means for the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Done,
    Retry,
    Refused,
}

/// The one place that decides what a status means: 2xx done, 5xx (503 included) and
/// 408/429 retried, any other answer refused.
fn classify(status: StatusCode) -> Verdict {
    if status.is_success() {
        Verdict::Done
    } else if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Verdict::Retry
    } else {
        Verdict::Refused
    }
}

/// `Retry-After` in seconds (the router never sends a date), capped.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: f64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs).min(MAX_RETRY_AFTER))
}

/// 200 ms, 400 ms, 800 ms ... up to 5 s, with up to a quarter more as jitter so many
/// producers retrying at once spread out.
fn backoff(attempt: u32) -> Duration {
    let base = INITIAL_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let jitter = u64::from(uuid::Uuid::now_v7().as_bytes()[15]) * base.as_millis() as u64 / 1024;
    base + Duration::from_millis(jitter)
}

/// The router's `error` text, else the start of the body.
fn error_text(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => match v.get("error").and_then(Value::as_str) {
            Some(e) => e.to_owned(),
            None => excerpt(body),
        },
        Err(_) => excerpt(body),
    }
}

fn excerpt(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(BODY_EXCERPT) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_owned(),
    }
}

fn transport_reason(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "the connection failed"
    };
    // Without the URL: a base URL may carry credentials.
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {detail}")
    }
}

/// The base URL without a `user:password@` part, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// The JSON object of a typed event, with its `type`.
pub fn to_event<E: TradingEvent>(event: &E) -> Result<Value, ClientError> {
    let mut value = serde_json::to_value(event)
        .map_err(|e| ClientError::Transport(format!("cannot encode a {} event: {e}", E::TYPE)))?;
    match value.as_object_mut() {
        Some(map) => {
            map.insert("type".into(), json!(E::TYPE));
        }
        None => {
            return Err(ClientError::Transport(format!(
                "a {} event must encode as a JSON object",
                E::TYPE
            )));
        }
    }
    Ok(value)
}

/// A typed event of one of the documented trading types.
pub trait TradingEvent: Serialize {
    /// The event's `type`.
    const TYPE: &'static str;
}

fn ser_severity<S: Serializer>(s: &Option<Severity>, out: S) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => out.serialize_str(s.as_str()),
        None => out.serialize_none(),
    }
}

fn de_severity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Severity>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| s.parse().map_err(serde::de::Error::custom))
        .transpose()
}

/// `trade_opened`: a position was entered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TradeOpened {
    pub symbol: String,
    /// `BUY`/`LONG` or `SELL`/`SHORT`.
    pub side: String,
    pub entry_price: f64,
    pub quantity: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub strategy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stop_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub take_profit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub total_value: Option<f64>,
}

impl TradeOpened {
    /// The required fields; set the optional ones on the result.
    pub fn new(symbol: &str, side: &str, entry_price: f64, quantity: f64) -> TradeOpened {
        TradeOpened {
            symbol: symbol.into(),
            side: side.into(),
            entry_price,
            quantity,
            ..TradeOpened::default()
        }
    }
}

impl TradingEvent for TradeOpened {
    const TYPE: &'static str = "trade_opened";
}

/// `trade_closed`: a position was exited, with its result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TradeClosed {
    pub symbol: String,
    pub side: String,
    pub entry_price: f64,
    pub exit_price: f64,
    pub quantity: f64,
    pub pnl: f64,
    /// In percent: `4.0` is 4%.
    pub pnl_pct: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// Seconds as a number, or a text such as `"3 hours"`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub duration: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub strategy: Option<String>,
}

impl TradingEvent for TradeClosed {
    const TYPE: &'static str = "trade_closed";
}

/// `error`: something went wrong in the bot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub component: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub details: Option<Value>,
    /// `warning`, `error` (the router's default for errors) or `critical`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_severity",
        deserialize_with = "de_severity",
        default
    )]
    pub severity: Option<Severity>,
}

impl ErrorEvent {
    /// An error with only its message.
    pub fn new(message: impl Into<String>) -> ErrorEvent {
        ErrorEvent {
            message: message.into(),
            ..ErrorEvent::default()
        }
    }
}

impl TradingEvent for ErrorEvent {
    const TYPE: &'static str = "error";
}

/// `daily_summary`: the day's trading in numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DailySummary {
    /// `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub date: Option<String>,
    pub total_trades: u64,
    pub winning_trades: u64,
    pub losing_trades: u64,
    /// In percent.
    pub win_rate: f64,
    pub total_pnl: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub total_pnl_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub best_trade: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub worst_trade: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub portfolio_value: Option<f64>,
}

impl TradingEvent for DailySummary {
    const TYPE: &'static str = "daily_summary";
}

/// One open position in a [`PortfolioUpdate`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub symbol: String,
    pub side: String,
    pub quantity: f64,
    pub entry_price: f64,
    pub current_price: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pnl: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pnl_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<f64>,
}

/// `portfolio_update`: what the account is worth now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PortfolioUpdate {
    pub total_value: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cash: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pnl: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pnl_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub drawdown_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub positions: Option<Vec<Position>>,
}

impl TradingEvent for PortfolioUpdate {
    const TYPE: &'static str = "portfolio_update";
}

/// `performance_metrics`: the bot's own figures; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerformanceMetrics {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub total_return: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sharpe_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sortino_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_drawdown: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub win_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub profit_factor: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub total_trades: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub volatility: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub var_95: Option<f64>,
}

impl TradingEvent for PerformanceMetrics {
    const TYPE: &'static str = "performance_metrics";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_verdicts() {
        for (code, want) in [
            (200, Verdict::Done),
            (202, Verdict::Done),
            (400, Verdict::Refused),
            (401, Verdict::Refused),
            (404, Verdict::Refused),
            (413, Verdict::Refused),
            (408, Verdict::Retry),
            (429, Verdict::Retry),
            (500, Verdict::Retry),
            (502, Verdict::Retry),
            (503, Verdict::Retry),
        ] {
            let status = StatusCode::from_u16(code).expect("a status code");
            assert_eq!(classify(status), want, "{code}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) >= INITIAL_BACKOFF && backoff(1) < INITIAL_BACKOFF * 2);
        assert!(backoff(3) >= INITIAL_BACKOFF * 4);
        assert!(backoff(40) <= MAX_BACKOFF + MAX_BACKOFF / 4);
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "2".parse().expect("a header value"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(RETRY_AFTER, "86400".parse().expect("a header value"));
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(RETRY_AFTER, "soon".parse().expect("a header value"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn typed_events_carry_their_type_and_skip_absent_fields() {
        let mut t = TradeOpened::new("BTC/USDT", "BUY", 45000.0, 0.5);
        t.strategy = Some("RSI_MACD".into());
        let v = to_event(&t).expect("encodes");
        assert_eq!(
            v,
            json!({"symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000.0,
                   "quantity": 0.5, "strategy": "RSI_MACD", "type": "trade_opened"})
        );
        let mut e = ErrorEvent::new("exchange down");
        e.severity = Some(Severity::Critical);
        assert_eq!(
            to_event(&e).expect("encodes"),
            json!({"message": "exchange down", "severity": "critical", "type": "error"})
        );
    }

    #[test]
    fn router_errors_are_read_and_credentials_redacted() {
        assert_eq!(
            error_text(r#"{"error": "field `symbol`: missing"}"#),
            "field `symbol`: missing"
        );
        assert_eq!(error_text("plain"), "plain");
        assert_eq!(redact("http://bot:pw@host:1/x"), "http://***@host:1/x");
        assert_eq!(redact("http://host:1"), "http://host:1");
        let c = Client::new("http://h/").with_token("s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(c.base_url(), "http://h");
    }
}
