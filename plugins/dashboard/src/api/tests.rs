//! The routes driven with `oneshot` against a stand-in for the router: what each endpoint
//! asks the router, what it answers, and the token check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alert_router_plugin::{HostError, HostErrorKind, Level, Message};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::app;
use crate::config::{Config, Settings};
use crate::hub::{Hub, Source};

/// Answers like the router would, and remembers what it was asked.
#[derive(Default)]
struct FakeRouter {
    asked: Mutex<Vec<String>>,
    /// Resources refused with these errors instead.
    refusals: Mutex<HashMap<String, HostError>>,
}

impl FakeRouter {
    fn refuse(&self, resource: &str, error: HostError) {
        self.refusals
            .lock()
            .unwrap()
            .insert(resource.to_owned(), error);
    }
}

impl Source for FakeRouter {
    fn query(&self, path: &str) -> Result<Value, HostError> {
        self.asked.lock().unwrap().push(path.to_owned());
        let resource = path.split('?').next().unwrap_or_default();
        if let Some(error) = self.refusals.lock().unwrap().get(resource) {
            return Err(error.clone());
        }
        match resource {
            "state/portfolio" => Ok(
                json!({"total_value": 12500.0, "cash": 2500.0, "pnl": 2500.0, "pnl_pct": 25.0, "updated_at": "2025-11-03T14:30:00Z"}),
            ),
            "state/performance" => Ok(
                json!({"computed": {"win_rate": 65.0, "sharpe_ratio": null, "total_trades": 20, "total_pnl": 900.0,
                                    "daily_returns": 1, "today": {"date": "2025-11-03", "trades": 2, "pnl": 150.0}},
                       "reported": {"performance_metrics": {"sharpe_ratio": 1.85, "time": "2025-11-03T12:00:00Z"},
                                    "daily_summary": null}}),
            ),
            "state/positions" => Ok(json!({"positions": [
                {"symbol": "BTC/USDT", "side": "LONG", "value": 9300.0, "pnl": 300.0},
                {"symbol": "ETH/USDT", "side": "LONG", "value": 5000.0, "pnl": -20.0}], "source": "portfolio_update"})),
            "state/trades" => Ok(json!({"trades": [
                {"symbol": "ETH/USDT", "strategy": "RSI_MACD", "pnl": 200.0},
                {"symbol": "BTC/USDT", "strategy": null, "pnl": -50.0},
                {"symbol": "ETH/USDT", "strategy": "Breakout", "pnl": 10.0}], "total": 3})),
            "state/equity" => Ok(json!({"points": [
                {"time": "2025-11-03T00:00:00Z", "value": 50000.0},
                {"time": "2025-11-03T06:00:00Z", "value": 50600.0}], "range": "all", "source": "portfolio_update"})),
            "status" => Ok(
                json!({"version": "0.1.0", "uptime_seconds": 5, "config": {"routes": 3},
                                  "events": {"accepted": 7},
                                  "notify": {"held_back": {"silenced": 3, "inhibited": 1, "throttled": 0,
                                                           "grouped": 4, "muted": 0, "delayed": 0},
                                             "open": {"alerts": {"firing": 1, "resolved": 1}, "groups": 2,
                                                      "held_entries": 4, "last_tick": null},
                                             "silences": {"active": 1, "pending": 1, "expired": 1}},
                                  "sinks": {"telegram": {"plugin": "telegram", "healthy": true, "queued": 0, "sent": 4,
                                                         "failed": 1, "rate_limited": 2, "last_error": "429",
                                                         "held_back": {"silenced": 2, "inhibited": 1, "throttled": 0,
                                                                       "grouped": 4, "muted": 0, "delayed": 0},
                                                         "settings": {"bot_token": "***", "chat_ids": [42]}}}}),
            ),
            "alerts" => Ok(json!({"alerts": [
                {"fingerprint": "9f1c", "status": "firing", "type": "exchange_down", "severity": "error",
                 "labels": {"exchange": "binance", "note": "<script>alert(1)</script>"},
                 "starts_at": "2025-11-03T11:00:00Z", "ends_at": null, "updated_at": "2025-11-03T11:05:00Z",
                 "count": 3, "route": "exchanges", "held_back": "silenced by s-active",
                 "event": {"type": "exchange_down", "status": "firing"}},
                {"fingerprint": "77aa", "status": "resolved", "type": "cpu_high", "severity": "warning",
                 "labels": {}, "starts_at": "2026-12-04T09:00:00Z", "ends_at": "2026-12-04T09:30:00Z",
                 "updated_at": "2026-12-04T09:30:00Z", "count": 1, "route": "hosts", "held_back": null,
                 "event": {}}]})),
            "silences" => Ok(json!({"silences": [
                {"id": "s-pending", "state": "pending", "matchers": ["type=\"deploy\""],
                 "starts_at": "2999-01-01T00:00:00Z", "ends_at": "2999-01-01T02:00:00Z", "created_by": "bo",
                 "comment": "<img src=x onerror=alert(1)>", "updated_at": "2026-12-04T10:00:00Z", "held_back": 0},
                {"id": "s-expired", "state": "expired", "matchers": ["type=\"x\""],
                 "starts_at": "2026-12-03T00:00:00Z", "ends_at": "2026-12-03T01:00:00Z", "created_by": "bo",
                 "comment": "", "updated_at": "2026-12-03T00:00:00Z", "held_back": 9},
                {"id": "s-active", "state": "active", "matchers": ["labels.exchange=\"binance\""],
                 "starts_at": "2026-12-04T10:00:00Z", "ends_at": "2999-01-01T00:00:00Z", "created_by": "ana",
                 "comment": "maintenance", "updated_at": "2026-12-04T10:00:00Z", "held_back": 3}]})),
            other => Err(HostError::not_found(format!(
                "unknown state resource `{other}`"
            ))),
        }
    }

    fn log(&self, _level: Level, _message: &str) {}
}

fn hub_with(settings: Settings) -> (Arc<Hub>, Arc<FakeRouter>) {
    let router = Arc::new(FakeRouter::default());
    let config = Config::from_settings(settings).expect("valid settings");
    (Hub::new(0, Arc::new(config), router.clone()), router)
}

async fn call(
    hub: &Arc<Hub>,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut request = Request::builder().uri(uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app(hub.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

async fn json_of(hub: &Arc<Hub>, uri: &str) -> Value {
    let (status, _, body) = call(hub, uri, &[]).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn the_page_carries_the_title_theme_and_its_own_assets_only() {
    let (hub, _) = hub_with(Settings {
        title: Some("Desk <A> & B".into()),
        theme: Some("light".into()),
        ..Settings::default()
    });
    let (status, headers, html) = call(&hub, "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<title>Desk &lt;A&gt; &amp; B</title>"),
        "{html}"
    );
    assert!(html.contains("data-theme=\"light\""));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );
    assert!(
        headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let (status, headers, js) = call(&hub, "/assets/app.js", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.contains("EventSource"));
    // The noise-control section is on the page, refreshed by the stream's `noise` event.
    assert!(html.contains("id=\"noise\"") && html.contains("id=\"silences\""));
    assert!(js.contains("'noise'") && js.contains("api/noise"));
    let (status, _, _) = call(&hub, "/nope", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_json_endpoints_answer_from_the_router() {
    let (hub, router) = hub_with(Settings::default());
    let summary = json_of(&hub, "/api/summary").await;
    assert_eq!(summary["total_value"], 12500.0);
    assert_eq!(
        summary["pnl"],
        json!({"value": 2500.0, "pct": 25.0, "source": "reported", "time": "2025-11-03T14:30:00Z"})
    );
    // One source per figure, and which: the router's win rate, the bot's Sharpe ratio
    // (the router has too few daily returns for one).
    assert_eq!(
        summary["win_rate"],
        json!({"value": 65.0, "source": "computed", "trades": 20})
    );
    assert_eq!(
        summary["sharpe_ratio"],
        json!({"value": 1.85, "source": "reported", "time": "2025-11-03T12:00:00Z"})
    );
    assert_eq!(summary["today"]["trades"], 2);

    let trades = json_of(&hub, "/api/trades?symbol=ETH/USDT&strategy=&token=x").await;
    assert_eq!(trades["symbols"], json!(["BTC/USDT", "ETH/USDT"]));
    assert_eq!(trades["strategies"], json!(["Breakout", "RSI_MACD"]));
    let asked = router.asked.lock().unwrap().clone();
    assert!(
        asked.contains(&"state/trades?limit=50&symbol=ETH%2FUSDT".to_owned()),
        "the filter is passed on, encoded, with the default limit and nothing else: {asked:?}"
    );

    let equity = json_of(&hub, "/api/equity?range=1w").await;
    assert_eq!(equity["points"].as_array().unwrap().len(), 2);
    assert!(
        router
            .asked
            .lock()
            .unwrap()
            .contains(&"state/equity?range=1W".to_owned())
    );
    let (status, _, body) = call(&hub, "/api/equity?range=5Y", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("use 1D, 1W, 1M or all"));

    let status = json_of(&hub, "/api/status").await;
    assert_eq!(status["sinks"]["telegram"]["rate_limited"], 2);
    assert_eq!(status["sinks"]["telegram"]["last_error"], "429");
    assert!(
        status["sinks"]["telegram"].get("settings").is_none(),
        "sink settings are not shown"
    );
    assert_eq!(status["events"]["accepted"], 7);

    let info = json_of(&hub, "/api/info").await;
    assert_eq!(
        (info["title"].clone(), info["theme"].clone()),
        (json!("Trading Dashboard"), json!("dark"))
    );
}

#[tokio::test]
async fn the_noise_section_shows_firing_alerts_current_silences_and_what_was_held_back() {
    let (hub, router) = hub_with(Settings::default());
    let noise = json_of(&hub, "/api/noise").await;
    let asked = router.asked.lock().unwrap().clone();
    assert_eq!(asked, ["status", "alerts", "silences"]);

    // Held back by reason: the router's total and each sink's, as the router counts them.
    assert_eq!(
        noise["held_back"]["router"],
        json!({"silenced": 3, "inhibited": 1, "throttled": 0, "grouped": 4, "muted": 0, "delayed": 0})
    );
    assert_eq!(noise["held_back"]["sinks"]["telegram"]["silenced"], 2);
    assert_eq!(noise["held_back"]["sinks"]["telegram"]["grouped"], 4);
    assert_eq!(noise["groups"], json!({"open": 2, "held_entries": 4}));

    // The firing alert only, with why it is held back; the resolved one is counted.
    assert_eq!(
        noise["alerts"]["counts"],
        json!({"firing": 1, "resolved": 1})
    );
    let firing = noise["alerts"]["firing"].as_array().unwrap();
    assert_eq!(firing.len(), 1, "{firing:?}");
    let alert = &firing[0];
    assert_eq!(
        (&alert["type"], &alert["severity"], &alert["count"]),
        (&json!("exchange_down"), &json!("error"), &json!(3))
    );
    assert_eq!(alert["held_back"], "silenced by s-active");
    assert_eq!(alert["starts_at"], "2025-11-03T11:00:00Z");
    assert!(
        alert["since_seconds"].as_i64().is_some_and(|s| s > 0),
        "{alert}"
    );
    // As the producer sent it: the page writes it as text, so escaping it here would
    // show `&lt;` on the page.
    assert_eq!(alert["labels"]["note"], "<script>alert(1)</script>");
    assert!(alert.get("event").is_none());

    // Active, then pending; the expired one is only counted.
    assert_eq!(
        noise["silences"]["counts"],
        json!({"active": 1, "pending": 1, "expired": 1})
    );
    let current = noise["silences"]["current"].as_array().unwrap();
    let ids: Vec<&str> = current.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["s-active", "s-pending"]);
    let active = &current[0];
    assert_eq!(
        (
            &active["created_by"],
            &active["comment"],
            &active["held_back"]
        ),
        (&json!("ana"), &json!("maintenance"), &json!(3))
    );
    assert_eq!(active["matchers"], json!(["labels.exchange=\"binance\""]));
    assert!(active["ends_in_seconds"].as_i64().is_some_and(|s| s > 0));
    assert_eq!(active["starts_in_seconds"], Value::Null);
    let pending = &current[1];
    assert!(pending["starts_in_seconds"].as_i64().is_some_and(|s| s > 0));
    assert_eq!(pending["comment"], "<img src=x onerror=alert(1)>");

    // A router that cannot list silences: answered by the kind, like every endpoint.
    router.refuse(
        "silences",
        HostError::not_found("unknown resource `silences`"),
    );
    let (status, _, body) = call(&hub, "/api/noise", &[]).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
}

/// The events of an open stream, as `(event, data)`, until `last` arrived.
async fn stream_until(hub: &Arc<Hub>, last: &str) -> Vec<(String, String)> {
    let response = app(hub.clone())
        .oneshot(
            Request::builder()
                .uri("/api/events")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut text = String::new();
    let deadline = std::time::Duration::from_secs(10);
    loop {
        let events: Vec<(String, String)> = text
            .split("\n\n")
            .filter_map(|block| {
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(str::to_owned)
                };
                Some((field("event: ")?, field("data: ").unwrap_or_default()))
            })
            .collect();
        if events.iter().any(|(e, _)| e == last) {
            return events;
        }
        let frame = tokio::time::timeout(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no `{last}` event within {deadline:?}: {text}"))
            .expect("the stream goes on")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
}

#[tokio::test]
async fn the_event_stream_refreshes_the_noise_section_with_the_status() {
    let (hub, router) = hub_with(Settings::default());
    let events = stream_until(&hub, "noise").await;
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["hello", "status", "noise"]);
    let noise: Value = serde_json::from_str(&events[2].1).unwrap();
    assert_eq!(noise["silences"]["current"][0]["id"], "s-active");
    assert_eq!(noise["held_back"]["router"]["silenced"], 3);
    let asked = router.asked.lock().unwrap().clone();
    assert_eq!(
        asked.iter().filter(|p| *p == "status").count(),
        1,
        "one status serves both events: {asked:?}"
    );
}

#[tokio::test]
async fn the_charts_are_svg_for_the_range_asked() {
    let (hub, _) = hub_with(Settings::default());
    let (status, headers, svg) = call(&hub, "/api/charts/equity.svg?range=1D", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "image/svg+xml; charset=utf-8"
    );
    assert!(svg.contains("data-range=\"1D\" data-points=\"2\""), "{svg}");
    let (_, _, donut) = call(&hub, "/api/charts/allocation.svg?theme=light", &[]).await;
    assert!(donut.contains("BTC/USDT") && donut.contains("ETH/USDT"));
    let (status, _, _) = call(&hub, "/api/charts/allocation.svg?theme=pink", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_feed_lists_delivered_events_by_severity() {
    let (hub, _) = hub_with(Settings::default());
    for (id, severity) in [("m1", "info"), ("m2", "error"), ("m3", "warning")] {
        let m: Message = serde_json::from_value(json!({"id": id, "sink": "dashboard",
            "payload": {"title": id, "text": "t"}, "event": {"type": "x", "severity": severity}}))
        .unwrap();
        hub.deliver(&m);
    }
    let all = json_of(&hub, "/api/feed").await;
    let ids: Vec<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m3", "m2", "m1"]);
    let warn = json_of(&hub, "/api/feed?severity=warning&limit=1").await;
    assert_eq!(warn["events"].as_array().unwrap().len(), 1);
    assert_eq!(warn["events"][0]["id"], "m3");
    let (status, _, _) = call(&hub, "/api/feed?severity=loud", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_refused_query_answers_by_its_kind_never_by_its_words() {
    let (hub, router) = hub_with(Settings::default());
    let (status, _, body) = call(&hub, "/api/portfolio", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Each message would have fooled a dashboard that read the words.
    let said = "the router is starting or stopping";
    for (kind, expected) in [
        (HostErrorKind::BadRequest, StatusCode::BAD_REQUEST),
        (HostErrorKind::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
        (HostErrorKind::NotFound, StatusCode::BAD_GATEWAY),
        // Every failure of a router from before the result codes.
        (HostErrorKind::Failed, StatusCode::BAD_GATEWAY),
    ] {
        router.refuse("state/portfolio", HostError::new(kind, said));
        let (status, _, body) = call(&hub, "/api/portfolio", &[]).await;
        assert_eq!(status, expected, "{kind:?}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body, json!({"error": said}), "{kind:?}");
    }
}

#[tokio::test]
async fn with_a_token_every_route_wants_it() {
    let (hub, _) = hub_with(Settings {
        listen: Some("0.0.0.0:0".into()),
        token: Some(alert_router_plugin::Secret::new("s3cr3t/+")),
        ..Settings::default()
    });
    for uri in [
        "/",
        "/api/info",
        "/api/events",
        "/api/charts/equity.svg",
        "/assets/app.js",
        "/nope",
    ] {
        let (status, headers, body) = call(&hub, uri, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(headers.contains_key(header::WWW_AUTHENTICATE), "{uri}");
        assert!(!body.contains("s3cr3t"), "{uri}");
        let (status, _, _) = call(&hub, uri, &[("authorization", "Bearer wrong")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    let (status, _, _) = call(&hub, "/api/info", &[("authorization", "Bearer s3cr3t/+")]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&hub, "/api/info?token=s3cr3t", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The page opened with ?token= sets a cookie that the page's own requests then carry.
    let (status, headers, _) = call(&hub, "/?token=s3cr3t%2F%2B", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let cookie = headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let (status, _, _) = call(&hub, "/api/summary", &[("cookie", pair)]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(
        &hub,
        "/api/summary",
        &[("cookie", "alert_router_dashboard=nope")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
