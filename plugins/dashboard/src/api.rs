//! The dashboard's HTTP surface: the page and its assets, the JSON endpoints it reads
//! (usable by scripts too), the SVG charts and the server-sent event stream, all behind
//! the token when one is set. Handlers are thin: they ask the router through the
//! [`Hub`] (off the async threads, since the host answers synchronously) and shape the
//! answer.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /api/info` | title, theme, version, limits, the address served on |
//! | `GET /api/summary` | header metrics: total value, P&L and %, win rate, Sharpe, each with its source |
//! | `GET /api/portfolio`, `/api/positions`, `/api/performance` | the router's state |
//! | `GET /api/trades?symbol=&strategy=&limit=&since=` | recent trades, plus every `symbols` and `strategies` seen |
//! | `GET /api/equity?range=1D\|1W\|1M\|all` | the equity curve's points |
//! | `GET /api/status` | the router's status: events, config, per-sink health |
//! | `GET /api/noise` | noise control: firing alerts, current silences, messages held back by reason |
//! | `GET /api/feed?severity=&limit=` | the live feed, newest first |
//! | `GET /api/events` | server-sent events: `hello`, `feed`, `status`, `noise`, `config`, `resync` |
//! | `GET /api/charts/equity.svg?range=&theme=&width=`, `/api/charts/allocation.svg?theme=` | charts |

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use alert_router_plugin::{HostError, HostErrorKind, form_decode};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::Stream;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::charts;
use crate::config::{Config, MAX_TRADES_LIMIT, Theme};
use crate::feed::{SEVERITIES, rank};
use crate::figures;
use crate::hub::{Hub, Live, NO_SOURCE};
use crate::noise;

/// The cookie that keeps the token after the page was opened with `?token=`.
pub const COOKIE: &str = "alert_router_dashboard";
/// How often an open page gets the router's status (per-sink health) and the noise
/// control section.
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// How long a page waits before reconnecting its event stream.
const RECONNECT_AFTER: Duration = Duration::from_millis(1000);
/// Trades looked at for the symbol and strategy filter lists.
const FACET_TRADES: usize = 1000;

const PAGE: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/style.css");
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// The app, for a server or for `oneshot` tests.
pub fn app(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/assets/app.js", get(script))
        .route("/assets/style.css", get(style))
        .route("/api/info", get(info))
        .route("/api/summary", get(summary))
        .route("/api/portfolio", get(portfolio))
        .route("/api/positions", get(positions))
        .route("/api/trades", get(trades))
        .route("/api/performance", get(performance))
        .route("/api/equity", get(equity))
        .route("/api/status", get(status))
        .route("/api/noise", get(noise_control))
        .route("/api/feed", get(feed))
        .route("/api/events", get(events))
        .route("/api/charts/equity.svg", get(equity_chart))
        .route("/api/charts/allocation.svg", get(allocation_chart))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(hub.clone(), guard))
        .with_state(hub)
}

/// Every failure a handler reports, as a status and a JSON `{"error": ...}`.
#[derive(Debug)]
pub enum ApiError {
    Unauthorized,
    BadRequest(String),
    NotFound,
    Unavailable(String),
    /// The router could not answer, for a reason that is neither the request's fault
    /// nor passing: 502, with the router's message.
    Router(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "a token is required: send Authorization: Bearer <token>, or open the page with ?token=<token>".to_owned(),
            ),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "no such page".to_owned()),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            ApiError::Router(m) => (StatusCode::BAD_GATEWAY, m),
        };
        let mut response = (status, Json(json!({"error": message}))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"alert-router dashboard\""),
            );
        }
        response
    }
}

/// The router's answer to `path`, asked off the async threads.
async fn ask(hub: &Arc<Hub>, path: String) -> Result<Value, ApiError> {
    let hub = hub.clone();
    let answer = tokio::task::spawn_blocking(move || hub.query(&path))
        .await
        .map_err(|e| ApiError::Unavailable(format!("the query failed: {e}")))?;
    answer.map_err(ApiError::from)
}

/// A refused query by its kind: a request the router finds wrong (a parameter the page
/// or a script passed on) is 400; a router that is starting or stopping is 503; the rest
/// (a resource this router does not have, a failure of its own) is 502.
impl From<HostError> for ApiError {
    fn from(e: HostError) -> ApiError {
        let message = e.message().to_owned();
        match e.kind() {
            HostErrorKind::BadRequest => ApiError::BadRequest(message),
            HostErrorKind::Unavailable => ApiError::Unavailable(message),
            _ => ApiError::Router(message),
        }
    }
}

fn config(hub: &Hub) -> Result<Arc<Config>, ApiError> {
    hub.config()
        .ok_or_else(|| ApiError::Unavailable(NO_SOURCE.to_owned()))
}

type Params = Query<HashMap<String, String>>;

/// Checks the token (when one is set) on every route. A token given as `?token=` on a
/// page load is kept in an HttpOnly cookie, so the page's own requests and its event
/// stream need no token in their URLs. Adds the security headers every answer carries.
async fn guard(State(hub): State<Arc<Hub>>, request: Request, next: Next) -> Response {
    let Some(config) = hub.config() else {
        return ApiError::Unavailable(NO_SOURCE.to_owned()).into_response();
    };
    let mut set_cookie = None;
    if let Some(token) = &config.token {
        let headers = request.headers();
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let in_query = request.uri().query().and_then(|q| {
            q.split('&')
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| *k == "token")
                .and_then(|(_, v)| form_decode(v))
        });
        let cookie = cookie(headers, COOKIE).and_then(|v| form_decode(&v));
        let by_query = in_query.as_deref().is_some_and(|t| token.matches(t));
        let ok = by_query
            || bearer.is_some_and(|t| token.matches(t))
            || cookie.as_deref().is_some_and(|t| token.matches(t));
        if !ok {
            return with_security_headers(ApiError::Unauthorized.into_response());
        }
        if by_query {
            set_cookie = Some(format!(
                "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
                encode(token.expose())
            ));
        }
    }
    let mut response = next.run(request).await;
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    with_security_headers(response)
}

fn with_security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn page(State(hub): State<Arc<Hub>>) -> Result<Response, ApiError> {
    let config = config(&hub)?;
    let html = PAGE
        .replace("{{title}}", &charts::escape(&config.title))
        .replace("{{theme}}", config.theme.as_str());
    Ok(Html(html).into_response())
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

fn info_json(hub: &Hub, config: &Config) -> Value {
    json!({
        "title": config.title,
        "theme": config.theme.as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "max_events": config.max_events,
        "max_trades": config.max_trades,
        "listen": hub.bound().map(|a| a.to_string()),
        "token_required": config.token.is_some(),
        "severities": SEVERITIES,
        "ranges": ["1D", "1W", "1M", "all"],
    })
}

async fn info(State(hub): State<Arc<Hub>>) -> Result<Json<Value>, ApiError> {
    let config = config(&hub)?;
    Ok(Json(info_json(&hub, &config)))
}

/// The header metrics: the portfolio's, and one source per figure (see [`figures`]).
async fn summary(State(hub): State<Arc<Hub>>) -> Result<Json<Value>, ApiError> {
    let portfolio = ask(&hub, "state/portfolio".into()).await?;
    let performance = ask(&hub, "state/performance".into()).await?;
    Ok(Json(figures::summary(&portfolio, &performance)))
}

async fn portfolio(State(hub): State<Arc<Hub>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(ask(&hub, "state/portfolio".into()).await?))
}

async fn positions(State(hub): State<Arc<Hub>>, Query(q): Params) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        ask(&hub, forward("state/positions", &q, &["symbol"])).await?,
    ))
}

async fn performance(State(hub): State<Arc<Hub>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(ask(&hub, "state/performance".into()).await?))
}

/// Recent trades (the router's answer), plus the symbols and strategies of the newest
/// trades, for the page's filters.
async fn trades(
    State(hub): State<Arc<Hub>>,
    Query(mut q): Params,
) -> Result<Json<Value>, ApiError> {
    let config = config(&hub)?;
    q.retain(|_, v| !v.is_empty());
    q.entry("limit".into())
        .or_insert_with(|| config.max_trades.to_string());
    let mut answer = ask(
        &hub,
        forward(
            "state/trades",
            &q,
            &["limit", "symbol", "strategy", "since"],
        ),
    )
    .await?;
    let all = ask(
        &hub,
        format!("state/trades?limit={}", FACET_TRADES.min(MAX_TRADES_LIMIT)),
    )
    .await?;
    let facet = |key: &str| {
        let mut seen: Vec<String> = all["trades"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t[key].as_str().map(str::to_owned))
            .collect();
        seen.sort();
        seen.dedup();
        seen
    };
    answer["symbols"] = json!(facet("symbol"));
    answer["strategies"] = json!(facet("strategy"));
    Ok(Json(answer))
}

fn range_of(q: &HashMap<String, String>) -> Result<String, ApiError> {
    match q.get("range").map(|r| r.to_ascii_uppercase()).as_deref() {
        None | Some("") | Some("ALL") => Ok("all".into()),
        Some(r @ ("1D" | "1W" | "1M")) => Ok(r.to_owned()),
        Some(other) => Err(ApiError::BadRequest(format!(
            "range: {other:?}: use 1D, 1W, 1M or all"
        ))),
    }
}

fn theme_of(q: &HashMap<String, String>, config: &Config) -> Result<Theme, ApiError> {
    match q.get("theme") {
        None => Ok(config.theme),
        Some(t) => Theme::parse(t)
            .ok_or_else(|| ApiError::BadRequest(format!("theme: {t:?}: use dark or light"))),
    }
}

async fn equity(State(hub): State<Arc<Hub>>, Query(q): Params) -> Result<Json<Value>, ApiError> {
    let range = range_of(&q)?;
    Ok(Json(
        ask(&hub, format!("state/equity?range={range}")).await?,
    ))
}

async fn status(State(hub): State<Arc<Hub>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(health(&ask(&hub, "status".into()).await?)))
}

/// The router's status without what the dashboard does not show (sink settings, dead
/// letters' details): the router's figures and each sink's health.
pub fn health(status: &Value) -> Value {
    let mut sinks = serde_json::Map::new();
    if let Some(all) = status["sinks"].as_object() {
        for (name, s) in all {
            let mut kept = serde_json::Map::new();
            for key in [
                "plugin",
                "healthy",
                "started",
                "queued",
                "sent",
                "failed",
                "retried",
                "rate_limited",
                "render_errors",
                "dead_letters",
                "last_error",
            ] {
                if let Some(v) = s.get(key) {
                    kept.insert(key.into(), v.clone());
                }
            }
            sinks.insert(name.clone(), Value::Object(kept));
        }
    }
    let config = &status["config"];
    json!({
        "version": status["version"],
        "uptime_seconds": status["uptime_seconds"],
        "config": {
            "loaded_at": config["loaded_at"],
            "routes": config["routes"],
            "templates": config["templates"],
            "reloads": config["reloads"],
            "last_reload": config["last_reload"],
        },
        "events": status["events"],
        "sinks": sinks,
    })
}

/// The noise-control section (see [`noise::section`]), from the router's status, alerts
/// and silences.
async fn noise_control(State(hub): State<Arc<Hub>>) -> Result<Json<Value>, ApiError> {
    let status = ask(&hub, "status".into()).await?;
    Ok(Json(noise_of(&hub, &status).await?))
}

/// The noise-control section, with the router's `status` already asked.
async fn noise_of(hub: &Arc<Hub>, status: &Value) -> Result<Value, ApiError> {
    let alerts = ask(hub, "alerts".into()).await?;
    let silences = ask(hub, "silences".into()).await?;
    let now = time::OffsetDateTime::now_utc();
    Ok(noise::section(status, &alerts, &silences, now))
}

async fn feed(State(hub): State<Arc<Hub>>, Query(q): Params) -> Result<Json<Value>, ApiError> {
    let config = config(&hub)?;
    let min = match q.get("severity").filter(|s| !s.is_empty()) {
        None => 0,
        Some(s) if SEVERITIES.iter().any(|x| x.eq_ignore_ascii_case(s)) => rank(s),
        Some(s) => {
            return Err(ApiError::BadRequest(format!(
                "severity: {s:?}: use one of {}",
                SEVERITIES.join(", ")
            )));
        }
    };
    let limit =
        match q.get("limit") {
            None => config.max_events,
            Some(l) => l.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                ApiError::BadRequest(format!("limit: {l:?}: give a positive number"))
            })?,
        };
    let items = tokio::task::spawn_blocking(move || hub.feed(min, limit))
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading the feed failed: {e}")))?;
    Ok(Json(
        json!({"events": items, "max_events": config.max_events}),
    ))
}

async fn equity_chart(State(hub): State<Arc<Hub>>, Query(q): Params) -> Result<Response, ApiError> {
    let config = config(&hub)?;
    let range = range_of(&q)?;
    let theme = theme_of(&q, &config)?;
    let answer = ask(&hub, format!("state/equity?range={range}")).await?;
    let width = match q.get("width") {
        None => charts::EQUITY_WIDTH,
        Some(w) => w
            .parse::<u32>()
            .map_err(|_| ApiError::BadRequest(format!("width: {w:?}: give the width in pixels")))?,
    };
    let svg = charts::equity_svg(&charts::equity_points(&answer), &range, theme, width);
    Ok(svg_response(svg))
}

async fn allocation_chart(
    State(hub): State<Arc<Hub>>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let config = config(&hub)?;
    let theme = theme_of(&q, &config)?;
    let answer = ask(&hub, "state/positions".into()).await?;
    Ok(svg_response(charts::allocation_svg(
        &charts::allocation_slices(&answer),
        theme,
    )))
}

fn svg_response(svg: String) -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")],
        svg,
    )
        .into_response()
}

/// The event stream an open page listens to: `hello` (the settings) first, then a
/// `feed` event per delivered message, `status` and `noise` (as `/api/status` and
/// `/api/noise` answer) every two seconds, `config` after a reload changed the
/// settings, and `resync` when the page fell too far behind (it then reloads the feed).
/// It ends when the server stops; browsers reconnect after [`RECONNECT_AFTER`].
async fn events(State(hub): State<Arc<Hub>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct Stream {
        hub: Arc<Hub>,
        live: tokio::sync::broadcast::Receiver<Live>,
        stopping: tokio::sync::watch::Receiver<bool>,
        tick: tokio::time::Interval,
        hello: bool,
        /// The tick's `noise` event, sent right after its `status` event.
        queued: Option<Event>,
    }
    let state = Stream {
        live: hub.subscribe(),
        stopping: hub.stopping(),
        tick: tokio::time::interval(STATUS_EVERY),
        hub,
        hello: true,
        queued: None,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        if s.hello {
            s.hello = false;
            let info = s.hub.config().map(|c| info_json(&s.hub, &c));
            let event = Event::default()
                .event("hello")
                .retry(RECONNECT_AFTER)
                .data(info.unwrap_or(Value::Null).to_string());
            return Some((Ok(event), s));
        }
        if let Some(event) = s.queued.take() {
            return Some((Ok(event), s));
        }
        loop {
            let stop = &mut s.stopping;
            let live = tokio::select! {
                _ = async move { let _ = stop.wait_for(|stop| *stop).await; } => return None,
                live = s.live.recv() => Some(live),
                _ = s.tick.tick() => None,
            };
            let event = match live {
                Some(Ok(Live::Feed(item))) => Event::default()
                    .event("feed")
                    .id(item.seq.to_string())
                    .data(serde_json::to_string(&*item).unwrap_or_default()),
                Some(Ok(Live::Config)) => {
                    let info = s.hub.config().map(|c| info_json(&s.hub, &c));
                    Event::default()
                        .event("config")
                        .data(info.unwrap_or(Value::Null).to_string())
                }
                Some(Err(RecvError::Lagged(_))) => Event::default().event("resync").data("{}"),
                Some(Err(RecvError::Closed)) => return None,
                None => match ask(&s.hub, "status".into()).await {
                    Ok(status) => {
                        // The status just asked serves the section too: one query, not two.
                        s.queued = noise_of(&s.hub, &status)
                            .await
                            .ok()
                            .map(|n| Event::default().event("noise").data(n.to_string()));
                        Event::default()
                            .event("status")
                            .data(health(&status).to_string())
                    }
                    Err(_) => continue,
                },
            };
            return Some((Ok(event), s));
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// `resource?name=value&...` with the allowed parameters of `q`, URL-encoded.
fn forward(resource: &str, q: &HashMap<String, String>, allowed: &[&str]) -> String {
    let mut out = resource.to_owned();
    let mut first = true;
    for name in allowed {
        if let Some(v) = q.get(*name).filter(|v| !v.is_empty()) {
            out.push(if first { '?' } else { '&' });
            first = false;
            out.push_str(name);
            out.push('=');
            out.push_str(&encode(v));
        }
    }
    out
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
