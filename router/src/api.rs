//! The HTTP API (axum): `POST /v1/events`, `GET /v1/status`, `GET /healthz`,
//! `GET /metrics`. Handlers are thin: they parse, call the [`Pipeline`], and map its
//! answers to status codes through one [`ApiError`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use time::OffsetDateTime;

use crate::config::Secret;
use crate::ingest::{BatchError, Position};
use crate::pipeline::{IngestError, Pipeline};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    pub token: Option<Secret>,
}

/// Every way a request can fail, each with its status and a JSON body that says why.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(BatchError),
    Unauthorized,
    Full { sink: String },
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::BadRequest(e) => {
                let mut body = json!({"error": e.to_string()});
                match e.position {
                    Position::Index(i) => body["index"] = json!(i),
                    Position::Line(l) => body["line"] = json!(l),
                    Position::Whole => {}
                }
                if let Some(field) = e.field {
                    body["field"] = json!(field);
                }
                (StatusCode::BAD_REQUEST, Json(body)).into_response()
            }
            ApiError::Unauthorized => {
                let body = json!({"error": "missing or wrong bearer token: send `Authorization: Bearer <server.token>`"});
                let mut resp = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                resp
            }
            ApiError::Full { sink } => {
                let body = json!({"error": format!("the queue of sink `{sink}` is full; nothing in this request was accepted: retry later")});
                let mut resp = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                resp
            }
        }
    }
}

/// The router's HTTP application.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    let v1 = Router::new()
        .route("/v1/events", post(post_events))
        .route("/v1/status", get(get_status))
        .route("/v1/reload", post(post_reload))
        .route("/v1/state/{resource}", get(get_state))
        .route("/metrics", get(get_metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(v1)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(token) = &state.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(next.run(req).await)
}

/// Compares without an early exit, so response timing does not reveal the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn post_events(
    State(state): State<AppState>,
    _headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let events = crate::ingest::parse_body(&body, OffsetDateTime::now_utc()).map_err(|e| {
        state
            .pipeline
            .counters
            .rejected
            .fetch_add(1, Ordering::Relaxed);
        ApiError::BadRequest(e)
    })?;
    let pipeline = state.pipeline.clone();
    // Rendering is CPU work and queues take locks: keep it off the async workers' hot
    // loop only when the batch is big.
    let accepted = if events.len() > 64 {
        tokio::task::spawn_blocking(move || pipeline.ingest(events))
            .await
            .unwrap_or(Err(IngestError::Full {
                sink: "(router)".into(),
            }))
    } else {
        pipeline.ingest(events)
    };
    match accepted {
        Ok(a) => Ok((StatusCode::ACCEPTED, Json(a)).into_response()),
        Err(IngestError::Full { sink }) => Err(ApiError::Full { sink }),
    }
}

/// Reloads now and answers with the result: 200 when the new config is in force, 422
/// with every problem (file:line:col) when the running config stays.
async fn post_reload(State(state): State<AppState>) -> Response {
    let pipeline = state.pipeline.clone();
    match tokio::task::spawn_blocking(move || pipeline.reload("api")).await {
        Ok(outcome) if outcome.ok => (StatusCode::OK, Json(outcome)).into_response(),
        Ok(outcome) => (StatusCode::UNPROCESSABLE_ENTITY, Json(outcome)).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": format!("the reload did not finish: {e}")})),
        )
            .into_response(),
    }
}

/// `GET /v1/state/{portfolio,positions,trades,performance,equity,daily}?...`.
async fn get_state(
    State(state): State<AppState>,
    Path(resource): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    match state
        .pipeline
        .state
        .query(&resource, query.as_deref().unwrap_or(""))
    {
        Ok(value) => Json(value).into_response(),
        Err(e) => {
            let status = if matches!(e, crate::state::QueryError::UnknownResource(_)) {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            (status, Json(json!({"error": e.to_string()}))).into_response()
        }
    }
}

async fn get_status(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.pipeline.status())
}

async fn get_metrics(State(state): State<AppState>) -> Response {
    let text = crate::metrics::render(&state.pipeline);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"abc", b"ab"));
    }
}
