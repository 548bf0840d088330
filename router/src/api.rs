//! The HTTP API (axum): `POST /v1/events`, `POST /v1/alertmanager`, `GET /v1/status`, `GET /v1/state/*`,
//! `POST /v1/reload`, `GET /v1/dead-letters` and `POST /v1/dead-letters/{retry,drop}`,
//! `GET /healthz`, `GET /metrics`. Handlers are thin: they parse, call the [`Pipeline`], and map its
//! answers to status codes through one [`ApiError`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use time::OffsetDateTime;

use crate::ingest::{BatchError, Position};
use alert_router_plugin::form_decode;

use crate::domains::StateQueryError;
use crate::outbox::Selector;
use crate::pipeline::{IngestError, Pipeline};

/// What every handler shares. `server.token` and `server.max_body` are read from the
/// pipeline's snapshot in force on every request, so a reload applies them at once.
#[derive(Clone)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
}

/// Every way a request can fail, each with its status and a JSON body that says why.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(BatchError),
    Unauthorized,
    /// The batch was refused whole: the outbox is full or could not write it.
    Refused(IngestError),
    /// A request that is not an event batch, and what is wrong with it.
    Invalid(String),
    /// The router's own storage failed.
    Internal(String),
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
            ApiError::Refused(e) => {
                let body = json!({"error": e.to_string()});
                let mut resp = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECS),
                );
                resp
            }
            ApiError::Invalid(e) => {
                (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response()
            }
            ApiError::Internal(e) => {
                (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e}))).into_response()
            }
        }
    }
}

/// What a refused producer is told to wait: long enough for a sink to catch up a little,
/// short enough that a brief burst costs little.
const RETRY_AFTER_SECS: &str = "2";

/// The router's HTTP application.
pub fn app(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/v1/events", post(post_events))
        .route("/v1/alertmanager", post(post_alertmanager))
        .route("/v1/status", get(get_status))
        .route("/v1/reload", post(post_reload))
        .route("/v1/state/{resource}", get(get_state))
        .route("/v1/dead-letters", get(get_dead_letters))
        .route("/v1/dead-letters/retry", post(post_dead_letters_retry))
        .route("/v1/dead-letters/drop", post(post_dead_letters_drop))
        .route("/metrics", get(get_metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(v1)
        .layer(middleware::from_fn_with_state(state.clone(), limit_body))
        .with_state(state)
}

/// Bodies over `server.max_body` in force get 413.
async fn limit_body(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let max = state.pipeline.snapshot().config.server.max_body_bytes;
    DefaultBodyLimit::max(max).apply(&mut req);
    next.run(req).await
}

/// Every endpoint but `/healthz` needs the `server.token` in force, when one is set.
async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let allowed = match &state.pipeline.snapshot().config.server.token {
        Some(token) => token.matches(given),
        None => true,
    };
    if !allowed {
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(req).await)
}

async fn post_events(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let parsed = crate::ingest::parse_body(&body, OffsetDateTime::now_utc());
    accept(&state, parsed).await
}

/// Alertmanager's webhook: one `alert` event per alert. Alertmanager retries a `5xx`
/// and drops a notification on a `4xx`, which is what `503` (outbox full) and `400`
/// (not a notification) mean here too.
async fn post_alertmanager(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let parsed = crate::alertmanager::events(&body, OffsetDateTime::now_utc());
    accept(&state, parsed).await
}

/// `202` once the events are in the outbox; `400` for a body that did not parse, `503`
/// when the outbox refused the batch.
async fn accept(
    state: &AppState,
    parsed: Result<Vec<crate::event::Event>, BatchError>,
) -> Result<Response, ApiError> {
    let events = parsed.map_err(|e| {
        state
            .pipeline
            .counters
            .rejected
            .fetch_add(1, Ordering::Relaxed);
        ApiError::BadRequest(e)
    })?;
    match state.pipeline.ingest_async(events).await {
        Ok(a) => Ok((StatusCode::ACCEPTED, Json(a)).into_response()),
        Err(e) => Err(ApiError::Refused(e)),
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

/// `GET /v1/state/<resource>?...`: a registered domain's store answers (trading's are
/// portfolio, positions, trades, performance, equity and daily).
async fn get_state(
    State(state): State<AppState>,
    Path(resource): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    match state
        .pipeline
        .stores
        .query(&resource, query.as_deref().unwrap_or(""))
    {
        Ok(value) => Json(value).into_response(),
        Err(e) => {
            let status = match e {
                StateQueryError::Unknown(_) => StatusCode::NOT_FOUND,
                StateQueryError::Refused(_) => StatusCode::BAD_REQUEST,
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

/// `GET /v1/dead-letters?sink=S&id=X&limit=N`: newest first.
async fn get_dead_letters(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut ids = Vec::new();
    let mut sink = None;
    let mut limit = 100usize;
    for (key, value) in form_pairs(query.as_deref().unwrap_or(""))? {
        match key.as_str() {
            "id" => ids.push(value),
            "sink" => sink = Some(value),
            "limit" => {
                limit = value.parse().map_err(|_| {
                    ApiError::Invalid(format!(
                        "limit={value:?} is not a number: write e.g. limit=50"
                    ))
                })?
            }
            other => {
                return Err(ApiError::Invalid(format!(
                    "`{other}` is not a parameter of /v1/dead-letters: use sink, id or limit"
                )));
            }
        }
    }
    let selector = match (ids.is_empty(), sink) {
        (false, None) => Selector::Ids(ids),
        (true, Some(sink)) => Selector::Sink(sink),
        (true, None) => Selector::All,
        (false, Some(_)) => {
            return Err(ApiError::Invalid("give id or sink, not both".into()));
        }
    };
    let pipeline = state.pipeline.clone();
    let letters = blocking(move || pipeline.dead_letters(&selector, limit)).await?;
    Ok(Json(json!({"dead_letters": letters})).into_response())
}

/// Which dead letters a retry or drop is about: `{"ids": [...]}`, `{"sink": "s"}` or
/// `{"all": true}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectorBody {
    #[serde(default)]
    ids: Vec<String>,
    sink: Option<String>,
    #[serde(default)]
    all: bool,
}

fn selector(body: &[u8]) -> Result<Selector, ApiError> {
    let shape = "send {\"ids\": [...]}, {\"sink\": \"name\"} or {\"all\": true}";
    let b: SelectorBody =
        serde_json::from_slice(body).map_err(|e| ApiError::Invalid(format!("{e}: {shape}")))?;
    match (b.ids.is_empty(), b.sink, b.all) {
        (false, None, false) => Ok(Selector::Ids(b.ids)),
        (true, Some(sink), false) => Ok(Selector::Sink(sink)),
        (true, None, true) => Ok(Selector::All),
        _ => Err(ApiError::Invalid(format!(
            "say which dead letters, one way: {shape}"
        ))),
    }
}

/// `POST /v1/dead-letters/retry`: puts them back at the end of their sinks' queues.
async fn post_dead_letters_retry(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let selector = selector(&body)?;
    let pipeline = state.pipeline.clone();
    let retried = blocking(move || pipeline.retry_dead_letters(&selector)).await?;
    Ok(Json(retried).into_response())
}

/// `POST /v1/dead-letters/drop`: deletes them.
async fn post_dead_letters_drop(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let selector = selector(&body)?;
    let pipeline = state.pipeline.clone();
    let dropped = blocking(move || pipeline.drop_dead_letters(selector)).await?;
    Ok(Json(json!({"dropped": dropped})).into_response())
}

/// Runs outbox work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::outbox::OutboxError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ApiError::Internal(e.to_string())),
        Err(e) => Err(ApiError::Internal(format!(
            "the request did not finish: {e}"
        ))),
    }
}

/// `a=1&b=x%20y` as decoded pairs.
fn form_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match (form_decode(k), form_decode(v)) {
                (Some(k), Some(v)) => Ok((k, v)),
                _ => Err(ApiError::Invalid(format!(
                    "{pair:?} is not a valid query parameter: percent-encode it"
                ))),
            }
        })
        .collect()
}
