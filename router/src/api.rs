//! The HTTP API (axum): `POST /v1/events`, `POST /v1/alertmanager`, `GET /v1/status`, `GET /v1/state/*`,
//! `POST /v1/reload`, `GET /v1/dead-letters` and `POST /v1/dead-letters/{retry,drop}`,
//! `GET /healthz`, `GET /metrics`, and Alertmanager's API v2 ([`am_v2`]). Handlers are thin: they parse, call the [`Pipeline`], and map its
//! answers to status codes through one [`ApiError`].
//!
//! [`serve`] runs the server itself (not `axum::serve`), for what a hostile client needs:
//! a header-read timeout that also closes idle connections, and a connection limit
//! answered with 503. The middleware refuses what a web page could send on the
//! operator's behalf (another site's `Origin`, a rebound `Host`, a form body) and reads
//! bodies within `server.max_body` and a deadline.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::ingest::{BatchError, Position};
use alert_router_plugin::form_decode;

use crate::domains::StateQueryError;
use crate::notify::silences::SilenceError;
use crate::outbox::Selector;
use crate::pipeline::{IngestError, Pipeline};

pub mod am_v2;

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
    /// The body is (or announces itself) larger than `server.max_body`, in bytes.
    TooLarge {
        limit: usize,
        announced: Option<u64>,
    },
    /// A POST body that is neither JSON nor NDJSON: the type it came as.
    UnsupportedType(String),
    /// The request came from another site, or by a name that is not this router's.
    Forbidden(String),
    /// The body did not arrive within [`BODY_READ_TIMEOUT`].
    SlowBody,
    /// What the path names does not exist.
    NotFound(String),
}

/// The request body types the API reads.
const ACCEPTED_TYPES: [&str; 2] = ["application/json", "application/x-ndjson"];

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
            ApiError::TooLarge { limit, announced } => {
                let size = match announced {
                    Some(n) => format!("a body of {n} bytes"),
                    None => "the body".to_owned(),
                };
                let error = format!(
                    "{size} is larger than server.max_body ({limit} bytes): send fewer events per request, or raise server.max_body"
                );
                let body = json!({"error": error, "limit": limit});
                (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response()
            }
            ApiError::UnsupportedType(given) => {
                let error = format!(
                    "a body of type {given:?} is not read here: send it as Content-Type: application/json (or application/x-ndjson for one event a line)"
                );
                let body = json!({"error": error, "accepted": ACCEPTED_TYPES});
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(body)).into_response()
            }
            ApiError::SlowBody => {
                let error = format!(
                    "the request body did not arrive within {} s: send it at once, or fewer events per request",
                    BODY_READ_TIMEOUT.as_secs()
                );
                let mut resp =
                    (StatusCode::REQUEST_TIMEOUT, Json(json!({"error": error}))).into_response();
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                resp
            }
            ApiError::Forbidden(why) => {
                (StatusCode::FORBIDDEN, Json(json!({"error": why}))).into_response()
            }
            ApiError::NotFound(what) => {
                (StatusCode::NOT_FOUND, Json(json!({"error": what}))).into_response()
            }
        }
    }
}

/// What a refused producer is told to wait: long enough for a sink to catch up a little,
/// short enough that a brief burst costs little.
const RETRY_AFTER_SECS: &str = "2";

/// How long a client has to send a request's headers, and how long a kept-alive
/// connection may wait for its next request: past it the connection is closed, so slow
/// or idle clients cannot hold sockets.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client has to send a request's body once its headers are in.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How many connections the API serves at once: half the open-file limit (the rest is
/// for the outbox, plugins and sinks' connections), so a crowd of clients gets a 503
/// instead of starving the router of descriptors.
pub fn connection_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and nothing else.
    let soft = match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } {
        0 => limit.rlim_cur,
        _ => 1024,
    };
    usize::try_from(soft / 2)
        .unwrap_or(usize::MAX)
        .clamp(8, 4096)
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets the requests in flight
/// finish (idle connections close at once). Each connection has
/// [`HEADER_READ_TIMEOUT`]; past `max_connections` a new one is answered 503 and closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::Service;

    let permits = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors and the like: the connection stays queued;
                    // wait a moment rather than spin on it.
                    tracing::warn!(error = %e, "cannot accept an API connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tokio::spawn(turn_away(stream, max_connections));
            continue;
        };
        let local = stream.local_addr().ok().map(LocalAddr);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                if let Some(local) = local {
                    req.extensions_mut().insert(local);
                }
                app.clone().call(req.map(axum::body::Body::new))
            });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(conn);
            let served = tokio::select! {
                served = conn.as_mut() => served,
                () = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "API connection ended");
            }
        });
    }
    let _ = stop.send(true);
    drop(stopping);
    // Every connection task holds a receiver: all gone means all finished.
    stop.closed().await;
}

/// Answers a connection over the limit with a 503 and closes it, without reading a
/// request: the client is told at once instead of waiting in the backlog.
async fn turn_away(mut stream: tokio::net::TcpStream, limit: usize) {
    use tokio::io::AsyncWriteExt;
    let body = json!({
        "error": format!("the router serves {limit} connections at once and all are taken: try again shortly, and reuse connections")
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: {RETRY_AFTER_SECS}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

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
        .route("/v1/alerts", get(get_alerts))
        .route("/v1/silences", get(get_silences).post(post_silence))
        .route("/v1/silences/{id}", get(get_silence).delete(delete_silence))
        .route("/metrics", get(get_metrics))
        .merge(am_v2::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(am_v2::health())
        .merge(v1)
        .layer(middleware::from_fn_with_state(state.clone(), limit_body))
        .with_state(state)
}

/// Bodies over `server.max_body` in force get 413, in JSON like every other error. A
/// body that announces its length is refused before any of it is read (and before a
/// `100 Continue`); one sent in chunks is cut where it passes the limit.
async fn limit_body(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let limit = state.pipeline.snapshot().config.server.max_body_bytes;
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = announced
        && n > limit as u64
    {
        return ApiError::TooLarge {
            limit,
            announced: Some(n),
        }
        .into_response();
    }
    DefaultBodyLimit::max(limit).apply(&mut req);
    next.run(req).await
}

/// Reads the whole body, within `server.max_body` and [`BODY_READ_TIMEOUT`], so a
/// client that trickles it cannot hold its connection: the handlers get it in memory.
/// Done after the token is checked, so nobody unknown makes the router buffer anything.
async fn read_body(req: Request, limit: usize) -> Result<Request, ApiError> {
    use axum::body::{Body, HttpBody};
    let (parts, mut body) = req.into_parts();
    let mut buf = Vec::new();
    let read = async {
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(|e| {
                ApiError::Invalid(format!("the request body could not be read: {e}"))
            })?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(ApiError::TooLarge {
                        limit,
                        announced: None,
                    });
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
        Err(_) => Err(ApiError::SlowBody),
        Ok(read) => read.map(|()| Request::from_parts(parts, Body::from(buf))),
    }
}

/// The local address a connection came in on, set by [`serve`]: a `Host` naming it is
/// this router.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// Every endpoint but `/healthz`: refuses what a web page could send on the operator's
/// behalf (another site's `Origin`; without a token, a `Host` that is not this router,
/// as DNS rebinding gives; a form or text body), then asks for the `server.token` in
/// force, when one is set.
async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (has_token, insecure) = {
        let server = &state.pipeline.snapshot().config.server;
        (server.token.is_some(), server.insecure)
    };
    let local = req.extensions().get::<LocalAddr>().map(|l| l.0.ip());
    if closed_off_loopback(has_token, insecure, local) {
        return Err(ApiError::Forbidden(
            "without server.token the API answers only on loopback: set server.token (or server.insecure: true to open it anyway) and reload".into(),
        ));
    }
    let host = request_host(&req);
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !same_origin(origin, host.as_deref()) {
            return Err(ApiError::Forbidden(format!(
                "a request from the web page at {origin:?} (another site than {host}) is refused: the API takes no requests from browsers' pages; call it from a program, without an Origin header",
                host = host.as_deref().unwrap_or("this router"),
            )));
        }
    }
    if !has_token
        && let Some(host) = &host
        && !names_this_router(host, local)
    {
        return Err(ApiError::Forbidden(format!(
            "Host {host:?} is not this router's address: without server.token the API answers only to localhost, a loopback address or the address it listens on; call it by one of those, or set server.token"
        )));
    }
    if req.method() == axum::http::Method::POST
        && let Some(given) = req.headers().get(header::CONTENT_TYPE)
    {
        // No Content-Type is read as JSON (scripts that send none); a browser's form or
        // text body always names its type.
        let given = given.to_str().unwrap_or("");
        let mime = given.split(';').next().unwrap_or("").trim();
        if !ACCEPTED_TYPES.iter().any(|t| mime.eq_ignore_ascii_case(t)) {
            return Err(ApiError::UnsupportedType(given.to_owned()));
        }
    }
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
    let limit = state.pipeline.snapshot().config.server.max_body_bytes;
    let req = read_body(req, limit).await?;
    Ok(next.run(req).await)
}

/// Whether a request that came in on `local` is refused because the API has no token:
/// startup refuses to listen off loopback without one, and a reload that removes the
/// token must not open the API to the network either (unless `server.insecure`).
fn closed_off_loopback(has_token: bool, insecure: bool, local: Option<IpAddr>) -> bool {
    !has_token && !insecure && local.is_some_and(|ip| !ip.is_loopback())
}

/// The `Host` a request names (`host[:port]`), from the request line's absolute URI or
/// the `Host` header.
fn request_host(req: &Request) -> Option<String> {
    if let Some(authority) = req.uri().authority() {
        return Some(authority.as_str().to_owned());
    }
    req.headers()
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
}

/// `host[:port]` split, the brackets of an IPv6 literal removed.
fn split_host(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, after.strip_prefix(':'));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (authority, None),
    }
}

/// Whether `host` (a `Host` value) names this router: localhost, a loopback address, or
/// the address the connection came in on.
fn names_this_router(host: &str, local: Option<IpAddr>) -> bool {
    let (name, _) = split_host(host.trim());
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.parse::<IpAddr>() {
        // 0.0.0.0 and [::] reach only this machine, as loopback does.
        Ok(ip) => ip.is_loopback() || ip.is_unspecified() || Some(ip) == local,
        Err(_) => false,
    }
}

/// Whether `origin` (`scheme://host[:port]`) is the site `host` names: the API's own
/// origin, which a browser sends on same-site requests too.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let Some((scheme, authority)) = origin.trim().split_once("://") else {
        return false; // `null`: a sandboxed page or a file
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let (o_name, o_port) = split_host(authority);
    let (h_name, h_port) = split_host(host.trim());
    o_name.eq_ignore_ascii_case(h_name)
        && o_port.unwrap_or(default_port) == h_port.unwrap_or(default_port)
}

async fn post_events(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let parsed = crate::ingest::parse_body(&body, crate::clock::now());
    accept(&state, parsed).await
}

/// Alertmanager's webhook: one `alert` event per alert. Alertmanager retries a `5xx`
/// and drops a notification on a `4xx`, which is what `503` (outbox full) and `400`
/// (not a notification) mean here too.
async fn post_alertmanager(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let parsed = crate::alertmanager::events(&body, crate::clock::now());
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

/// `GET /v1/alerts?state=firing|resolved&type=T&severity=S&labels.K=V`: the alerts the
/// router tracks, newest first, each with why it is held back if it is.
async fn get_alerts(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut filters: Vec<(String, String)> = Vec::new();
    for (key, value) in form_pairs(query.as_deref().unwrap_or(""))? {
        match key.as_str() {
            "state" if value == "firing" || value == "resolved" => {}
            "state" => {
                return Err(ApiError::Invalid(format!(
                    "state={value:?}: write state=firing or state=resolved"
                )));
            }
            "type" | "severity" => {}
            k if k.starts_with("labels.") && k.len() > "labels.".len() => {}
            other => {
                return Err(ApiError::Invalid(format!(
                    "`{other}` is not a parameter of /v1/alerts: use state, type, severity or labels.<name>"
                )));
            }
        }
        filters.push((key, value));
    }
    let pipeline = state.pipeline.clone();
    let now = crate::clock::now();
    let alerts = pipeline
        .notifier
        .alerts(&pipeline.snapshot().rules, now)
        .into_iter()
        .filter(|a| {
            filters.iter().all(|(k, v)| match k.as_str() {
                "state" => a.status == v,
                "type" => &a.kind == v,
                "severity" => a.severity == v,
                k => a.labels.get(&k["labels.".len()..]) == Some(v),
            })
        })
        .collect::<Vec<_>>();
    Ok(Json(json!({"alerts": alerts})).into_response())
}

/// `GET /v1/silences[?state=active|pending|expired]`: newest first.
async fn get_silences(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut wanted: Option<String> = None;
    for (key, value) in form_pairs(query.as_deref().unwrap_or(""))? {
        match (key.as_str(), value.as_str()) {
            ("state", "active" | "pending" | "expired") => wanted = Some(value),
            ("state", _) => {
                return Err(ApiError::Invalid(format!(
                    "state={value:?}: write state=active, pending or expired"
                )));
            }
            (other, _) => {
                return Err(ApiError::Invalid(format!(
                    "`{other}` is not a parameter of /v1/silences: use state"
                )));
            }
        }
    }
    let silences: Vec<serde_json::Value> = state
        .pipeline
        .notifier
        .silences
        .list(crate::clock::now())
        .iter()
        .filter_map(|s| serde_json::to_value(s).ok())
        .filter(|s| wanted.as_deref().is_none_or(|w| s["state"] == w))
        .collect();
    Ok(Json(json!({"silences": silences})).into_response())
}

async fn get_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let silences = &state.pipeline.notifier.silences;
    match silences.get(&id, crate::clock::now()) {
        Some(s) => Ok(Json(s).into_response()),
        None => Err(silence_error(SilenceError::NotFound(id))),
    }
}

/// `POST /v1/silences`: a new silence (201), or a change to one (`id` given: 200).
async fn post_silence(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let pipeline = state.pipeline.clone();
    let set = tokio::task::spawn_blocking(move || pipeline.set_silence(&body, "api"))
        .await
        .map_err(|e| ApiError::Internal(format!("the request did not finish: {e}")))?
        .map_err(silence_error)?;
    let status = if set.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(set.silence)).into_response())
}

/// `DELETE /v1/silences/{id}`: expires it now (it stays listed as expired).
async fn delete_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let pipeline = state.pipeline.clone();
    let silence = tokio::task::spawn_blocking(move || pipeline.expire_silence(&id, "api"))
        .await
        .map_err(|e| ApiError::Internal(format!("the request did not finish: {e}")))?
        .map_err(silence_error)?;
    Ok(Json(silence).into_response())
}

fn silence_error(e: SilenceError) -> ApiError {
    match e.http_status() {
        404 => ApiError::NotFound(e.to_string()),
        400 | 409 => ApiError::Invalid(e.to_string()),
        _ => ApiError::Internal(e.to_string()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_names_this_router_by_loopback_or_its_own_address() {
        let local = Some("10.0.0.5".parse().expect("an address"));
        for host in [
            "localhost",
            "LOCALHOST:9470",
            "127.0.0.1:9470",
            "127.8.9.10",
            "[::1]:9470",
            "0.0.0.0:9470",
            "10.0.0.5:9470",
        ] {
            assert!(names_this_router(host, local), "{host}");
        }
        for host in [
            "evil.example:9470",
            "10.0.0.6:9470",
            "localhost.evil.example",
            "[::2]:1",
            "",
        ] {
            assert!(!names_this_router(host, local), "{host}");
        }
        assert!(!names_this_router("10.0.0.5:9470", None));
    }

    #[test]
    fn without_a_token_only_loopback_is_answered_unless_insecure() {
        let outside: Option<IpAddr> = Some("192.0.2.7".parse().expect("an address"));
        let loopback: Option<IpAddr> = Some("127.0.0.1".parse().expect("an address"));
        assert!(closed_off_loopback(false, false, outside));
        assert!(!closed_off_loopback(false, false, loopback));
        assert!(
            !closed_off_loopback(true, false, outside),
            "a token opens it"
        );
        assert!(
            !closed_off_loopback(false, true, outside),
            "insecure opens it"
        );
    }

    #[test]
    fn an_origin_is_the_same_site_only_with_the_same_host_and_port() {
        let host = Some("127.0.0.1:9470");
        assert!(same_origin("http://127.0.0.1:9470", host));
        assert!(same_origin("http://localhost", Some("localhost")));
        assert!(same_origin(
            "https://alerts.example",
            Some("alerts.example")
        ));
        assert!(same_origin("http://[::1]:9470", Some("[::1]:9470")));
        for origin in [
            "http://evil.example",
            "http://127.0.0.1:3000",
            "null",
            "file://",
            "",
        ] {
            assert!(!same_origin(origin, host), "{origin}");
        }
        assert!(!same_origin("http://127.0.0.1:9470", None));
    }

    /// Sends `method path` with `body` (JSON) to `app`: the status and the JSON answer.
    async fn call(app: &Router, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        use tower::ServiceExt;
        let req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body.to_owned()))
            .expect("a request");
        let resp = app.clone().oneshot(req).await.expect("an answer");
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("the body");
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn silences_are_set_changed_and_expired_over_http() {
        let dir = crate::testing::TempDir::new("api-silences");
        dir.write("rules/default.yaml", "routes: []\n")
            .write("templates/.keep", "")
            .write("router.yaml", "sinks: {}\n");
        let path = dir.0.join("router.yaml");
        let text = std::fs::read_to_string(&path).expect("the config was written");
        let config = crate::config::Config::parse(&path, &text, &|_| None).expect("a valid config");
        let pipeline = Pipeline::start(config, None).expect("the router starts");
        let app = app(AppState {
            pipeline: pipeline.clone(),
        });

        let new = r#"{"matchers": "type=deploy", "duration": "1h", "created_by": "ana"}"#;
        let (status, set) = call(&app, "POST", "/v1/silences", new).await;
        assert_eq!((status, &set["state"]), (201, &json!("active")), "{set}");
        let id = set["id"].as_str().expect("an id").to_owned();
        let change = json!({"id": id, "matchers": "type=deploy", "duration": "2h", "created_by": "ana", "comment": "longer"});
        let (status, changed) = call(&app, "POST", "/v1/silences", &change.to_string()).await;
        assert_eq!((status, &changed["id"]), (200, &json!(id)), "{changed}");
        assert_eq!(changed["comment"], "longer");

        let (status, refused) = call(&app, "POST", "/v1/silences", "{not json").await;
        assert_eq!(status, 400, "{refused}");
        assert!(
            refused["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("the body is not JSON")),
            "{refused}"
        );

        let at = format!("/v1/silences/{id}");
        let (status, expired) = call(&app, "DELETE", &at, "").await;
        assert_eq!(
            (status, &expired["state"]),
            (200, &json!("expired")),
            "{expired}"
        );
        let (status, again) = call(&app, "DELETE", &at, "").await;
        assert_eq!(status, 400, "{again}");
        let (status, unknown) = call(&app, "DELETE", "/v1/silences/nope", "").await;
        assert_eq!(status, 404, "{unknown}");
    }
}
