//! [`Client`]: one router's HTTP API, `POST /v1/events` and `GET /v1/status`, each call
//! retried until it is answered, refused or out of attempts.

use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{ClientError, error_text, excerpt, redact, transport_reason};
use crate::events::{
    DailySummary, ErrorEvent, PerformanceMetrics, PortfolioUpdate, TradeClosed, TradeOpened,
    TradingEvent, to_event,
};
use crate::retry::{Verdict, backoff, classify, retry_after};

/// How long one attempt may take unless [`Client::with_timeout`] says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries after the first attempt unless [`Client::with_retries`] says otherwise.
const DEFAULT_RETRIES: u32 = 3;

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
                let id = uuid::Uuid::now_v7().to_string();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_stays_out_of_debug_and_the_base_url_loses_its_slash() {
        let c = Client::new("http://h/").with_token("s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(c.base_url(), "http://h");
    }
}
