//! The shipped `group` templates (`templates/<sink>/group.yaml`), rendered by the
//! router's template layer with the variables a grouped notification has
//! (`render::group_context`), and the `suppressed` line of the per-type templates
//! (`render::suppressed_context`):
//! - a realistic group (errors of component `exchange`, one resolved, an Alertmanager
//!   alert, a custom event) renders for every sink as its golden file says, and what
//!   each sink's fake upstream checks passes;
//! - 500 alerts with 1,000-character messages full of markup: Telegram's text stays one
//!   valid message of at most 4,096 characters ending in "+N more" with the right N;
//!   Discord's embed stays within every limit the fake Discord checks, with no help
//!   from the plugin; every other sink renders within the fuel a render has;
//! - each kind of event gets a readable line;
//! - a group with nothing firing reads as resolved, silently; a window's summary names
//!   the window;
//! - the `suppressed` line appears in every per-type template of the chat sinks when
//!   given, as one insertion, and not otherwise.
//!
//! Golden files live in `tests/golden/<sink>/group.json` and are compared byte for
//! byte; `UPDATE_GOLDEN=1` rewrites them (review the diff before committing).

use std::path::PathBuf;
use std::sync::OnceLock;

use alert_router::render::{self, Markup, Templates};
use alert_router_tests::fake_discord;
use alert_router_tests::fake_telegram::{self, html};
use alert_router_tests::harness::repo_root;
use minijinja::Value as TemplateValue;
use serde_json::{Value, json};

/// When every notification is rendered.
const NOW: &str = "2025-11-03T14:35:00Z";

/// The first-party sinks with a `group.yaml`.
const SINKS: [&str; 8] = [
    "telegram",
    "discord",
    "slack",
    "email",
    "console",
    "dashboard",
    "webhook",
    "exec",
];

/// The markup each plugin's manifest declares (`markup = ...` in plugins/*/src/lib.rs).
fn markup(group: &str) -> Markup {
    match group {
        "telegram" | "email" => Markup::Html,
        "discord" => Markup::Markdown,
        "slack" => Markup::Mrkdwn,
        _ => Markup::None,
    }
}

/// The repository's templates, loaded as the router loads them.
fn templates() -> &'static Templates {
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        Templates::load(&repo_root().join("templates"), &markup)
            .unwrap_or_else(|problems| panic!("the templates do not load:\n{problems}"))
    })
}

/// Renders `templates/<sink>/<name>.yaml` (never a fallback) with `ctx`, and checks
/// that the payload as JSON text says the same.
fn render(sink: &str, name: &str, ctx: &TemplateValue) -> Value {
    let templates = templates();
    let id = templates
        .resolve(sink, sink, name)
        .unwrap_or_else(|| panic!("no template for {sink}/{name}"));
    let path = repo_root()
        .join("templates")
        .join(sink)
        .join(format!("{name}.yaml"));
    assert_eq!(templates.path(id), path, "{sink}/{name}: another file");
    let payload = templates
        .render(id, ctx)
        .unwrap_or_else(|e| panic!("{sink}/{name}: {e}"));
    let text = templates
        .render_json(id, ctx)
        .unwrap_or_else(|e| panic!("{sink}/{name}: {e}"));
    let reread: Value = serde_json::from_str(&text).expect("render_json gives JSON");
    assert_eq!(
        reread, payload,
        "{sink}/{name}: render and render_json differ"
    );
    payload
}

// ---------------------------------------------------------------------------------
// Groups as the router makes them.

/// One entry of `alerts`.
#[derive(Clone)]
struct Entry {
    status: &'static str,
    count: u64,
    starts_at: String,
    ends_at: Option<String>,
    event: Value,
}

fn firing(event: Value, count: u64, starts_at: &str) -> Entry {
    Entry {
        status: "firing",
        count,
        starts_at: starts_at.to_owned(),
        ends_at: None,
        event,
    }
}

fn resolved(event: Value, count: u64, starts_at: &str, ends_at: &str) -> Entry {
    Entry {
        status: "resolved",
        count,
        starts_at: starts_at.to_owned(),
        ends_at: Some(ends_at.to_owned()),
        event,
    }
}

/// A grouped notification's data.
struct Group {
    alerts: Vec<Entry>,
    group: Value,
    /// `(name, ended_at)` of the window that held the group back.
    window: Option<(&'static str, &'static str)>,
    /// More alerts than `alerts` lists, all firing: `counts.total` exceeds its length.
    unlisted: u64,
}

impl Group {
    fn of(alerts: Vec<Entry>) -> Group {
        Group {
            alerts,
            group: json!({"component": "exchange"}),
            window: None,
            unlisted: 0,
        }
    }

    fn firing(&self) -> u64 {
        let listed = self.alerts.iter().filter(|a| a.status == "firing").count() as u64;
        listed + self.unlisted
    }

    fn total(&self) -> u64 {
        self.alerts.len() as u64 + self.unlisted
    }

    /// The variables of its notification to `sink`, as `render::group_context` makes
    /// them: `event` the newest event, `alerts` with each event as templates see it.
    fn context(&self, sink: &str) -> TemplateValue {
        let newest = self
            .alerts
            .iter()
            .map(|a| &a.event)
            .max_by_key(|e| e["time"].as_str().unwrap_or_default().to_owned())
            .expect("a group has an alert");
        let base = render::context_with(
            render::json_value(newest),
            "exchange-errors",
            sink,
            sink,
            NOW,
        );
        let alerts: Vec<TemplateValue> = self
            .alerts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                minijinja::context! {
                    status => a.status,
                    fingerprint => format!("{i:016x}"),
                    starts_at => a.starts_at.clone(),
                    ends_at => a.ends_at.clone(),
                    count => a.count,
                    event => render::json_value(&a.event),
                }
            })
            .collect();
        let counts = minijinja::context! {
            firing => self.firing(),
            resolved => self.total() - self.firing(),
            total => self.total(),
        };
        let window = match self.window {
            Some((name, ended_at)) => minijinja::context! { name => name, ended_at => ended_at },
            None => TemplateValue::from(()),
        };
        render::group_context(
            base,
            TemplateValue::from(alerts),
            render::json_value(&self.group),
            counts,
            window,
        )
    }
}

fn error_event(
    id: &str,
    severity: &str,
    time: &str,
    error_type: Option<&str>,
    message: &str,
) -> Value {
    let mut event = json!({"type": "error", "severity": severity, "time": time, "id": id,
        "labels": {}, "component": "exchange", "message": message});
    if let Some(t) = error_type {
        event["error_type"] = json!(t);
    }
    event
}

/// An `alert` event as the router makes it from an Alertmanager notification.
fn alertmanager_event(
    name: &str,
    status: &str,
    severity: &str,
    summary: &str,
    starts_at: &str,
    ends_at: Option<&str>,
) -> Value {
    json!({"type": "alert", "severity": severity, "time": ends_at.unwrap_or(starts_at),
        "id": format!("am:{name}:{status}:{starts_at}"), "source": "alertmanager",
        "labels": {"alertname": name, "severity": severity, "component": "exchange"},
        "alertname": name, "status": status, "summary": summary,
        "description": "", "annotations": {"summary": summary},
        "starts_at": starts_at, "ends_at": ends_at,
        "generator_url": "http://prometheus:9090/graph?g0.expr=latency", "fingerprint": "5f3c1a9e0b7d2c4f",
        "receiver": "alert-router", "group_key": "{}:{component=\"exchange\"}",
        "external_url": "http://alertmanager:9093"})
}

/// The realistic case: three errors of component `exchange` (one resolved, one that
/// came five times, one full of markup), an Alertmanager alert and a custom event.
fn exchange_group() -> Group {
    Group::of(vec![
        firing(
            error_event(
                "e1",
                "error",
                "2025-11-03T14:31:10Z",
                Some("ExchangeTimeout"),
                "Binance API timeout after 30s",
            ),
            5,
            "2025-11-03T14:02:00Z",
        ),
        resolved(
            error_event(
                "e2",
                "warning",
                "2025-11-03T14:12:30Z",
                None,
                "Order book for BTC/USDT stale for 90s",
            ),
            2,
            "2025-11-03T14:05:00Z",
            "2025-11-03T14:12:30Z",
        ),
        firing(
            alertmanager_event(
                "ExchangeLatencyHigh",
                "firing",
                "warning",
                "p99 order latency above 800ms",
                "2025-11-03T14:20:00Z",
                None,
            ),
            1,
            "2025-11-03T14:20:00Z",
        ),
        firing(
            error_event(
                "e3",
                "critical",
                "2025-11-03T14:30:05Z",
                Some("RateLimited"),
                "HTTP 429 from <api.binance.com> & retries exhausted: weight *1200* > 1100",
            ),
            1,
            "2025-11-03T14:30:05Z",
        ),
        firing(
            json!({"type": "exchange_maintenance", "severity": "info", "time": "2025-11-03T14:33:00Z",
                "id": "c1", "labels": {"exchange": "kraken"},
                "message": "Kraken maintenance announced for 16:00 UTC"}),
            1,
            "2025-11-03T14:33:00Z",
        ),
    ])
}

/// `n` firing errors whose messages (and types, and the group's value) are 1,000
/// characters of `unit`, each at another minute.
fn huge_group(n: usize, unit: &str) -> Group {
    let long = |len: usize| {
        unit.repeat(len / unit.chars().count() + 1)
            .chars()
            .take(len)
            .collect::<String>()
    };
    let alerts = (0..n)
        .map(|i| {
            let time = format!("2025-11-03T{:02}:{:02}:00Z", 10 + i / 60 % 10, i % 60);
            let mut entry = firing(
                error_event(
                    &format!("e{i}"),
                    ["warning", "error", "critical"][i % 3],
                    &time,
                    Some(&long(300)),
                    &format!("{i} {}", long(1000)),
                ),
                (i % 7 + 1) as u64,
                &time,
            );
            if i % 4 == 0 {
                entry.status = "resolved";
                entry.ends_at = Some(time.clone());
            }
            entry
        })
        .collect();
    let mut group = Group::of(alerts);
    group.group = json!({"component": long(500), "exchange": long(500)});
    group.window = Some((
        "weekend maintenance window for the exchange connectors",
        "2025-11-03T07:00:00Z",
    ));
    group
}

// ---------------------------------------------------------------------------------
// What the upstreams check.

/// Telegram's view of `text` in HTML parse mode: what the user sees (trimmed, as
/// Telegram trims), or why Telegram would refuse it.
fn telegram_visible(text: &str) -> String {
    assert!(
        text.len() <= fake_telegram::RAW_TEXT_LIMIT,
        "{} bytes: Telegram refuses the text before parsing it",
        text.len()
    );
    let parsed =
        html::parse(text).unwrap_or_else(|e| panic!("Telegram cannot parse it: {e}\n{text}"));
    parsed.text.trim().to_owned()
}

/// What the fake Discord would answer to `payload` after what the plugin does to a
/// payload within Discord's limits (plugins/discord/src/format.rs): a color name
/// becomes Discord's integer, and a title, description, footer or field that renders
/// empty is left out. `Ok`, or the 400's body.
fn discord_answer(payload: &Value) -> Result<(), Value> {
    let mut body = payload.clone();
    let empty = |v: &Value| v.as_str().is_some_and(|s| s.trim().is_empty());
    for embed in body["embeds"].as_array_mut().expect("embeds") {
        assert!(
            embed["color"].is_string(),
            "the color is a name: {}",
            embed["color"]
        );
        embed["color"] = json!(0x2E_CC71);
        let embed = embed.as_object_mut().expect("an embed is a map");
        embed.retain(|key, v| match key.as_str() {
            "title" | "description" => !empty(v),
            "footer" => !empty(&v["text"]),
            _ => true,
        });
        if let Some(Value::Array(fields)) = embed.get_mut("fields") {
            fields.retain(|f| !empty(&f["value"]));
        }
    }
    fake_discord::check_body(&body)
}

// ---------------------------------------------------------------------------------
// Golden files.

fn golden_path(sink: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(sink)
        .join("group.json")
}

/// Compares `actual`, pretty-printed, with the golden file byte for byte, or rewrites
/// it with UPDATE_GOLDEN=1.
fn assert_golden(sink: &str, actual: &Value) {
    let path = golden_path(sink);
    let text = serde_json::to_string_pretty(actual).expect("JSON") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, text).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
    assert!(
        text == expected,
        "{sink}: the group notification differs from {}\n--- rendered:\n{text}",
        path.display()
    );
}

// ---------------------------------------------------------------------------------
// Tests.

#[test]
fn every_sink_renders_the_group_as_the_golden_files_say() {
    let group = exchange_group();
    for sink in SINKS {
        let payload = render(sink, "group", &group.context(sink));
        let golden = match sink {
            "telegram" => {
                let text = payload["text"].as_str().expect("text");
                json!({"payload": payload, "visible": telegram_visible(text).lines().collect::<Vec<_>>()})
            }
            "discord" => {
                if let Err(answer) = discord_answer(&payload) {
                    panic!("the fake Discord refuses the payload: {answer}");
                }
                payload
            }
            _ => payload,
        };
        assert_golden(sink, &golden);
    }

    // What a user would notice, spelled out.
    let tg = render("telegram", "group", &group.context("telegram"));
    let visible = telegram_visible(tg["text"].as_str().expect("text"));
    assert_eq!(
        visible,
        "🚨 4 firing, 1 resolved · component=exchange\n\
         \n\
         ❌ ExchangeTimeout: Binance API timeout after 30s ×5 · 14:02\n\
         ⚠️ ExchangeLatencyHigh: p99 order latency above 800ms · 14:20\n\
         🚨 RateLimited: HTTP 429 from <api.binance.com> & retries exhausted: weight *1200* > 1100 · 14:30\n\
         ℹ️ exchange_maintenance: Kraken maintenance announced for 16:00 UTC · 14:33\n\
         ✅ Order book for BTC/USDT stale for 90s ×2 · 14:05 → 14:12"
    );
    assert_eq!(tg["disable_notification"], false, "a critical error rings");
    assert!(
        tg["text"]
            .as_str()
            .expect("text")
            .contains("&lt;api.binance.com&gt; &amp; retries"),
        "values are HTML-escaped: {tg}"
    );

    let dc = render("discord", "group", &group.context("discord"));
    let embed = &dc["embeds"][0];
    assert_eq!(
        embed["title"],
        "🚨 4 firing, 1 resolved · component=exchange"
    );
    assert_eq!(embed["color"], "critical", "the highest severity firing");
    let fields = embed["fields"].as_array().expect("fields");
    assert_eq!(fields.len(), 5);
    assert_eq!(fields[2]["name"], "🚨 RateLimited");
    assert_eq!(
        fields[2]["value"],
        "HTTP 429 from <api.binance.com\\> & retries exhausted: weight \\*1200\\* \\> 1100\n🕐 14:30",
        "escaped for Discord markdown once"
    );
    assert_eq!(fields[4]["name"], "✅ Error");
    assert_eq!(
        fields[4]["value"],
        "Order book for BTC/USDT stale for 90s\n×2 · 🕐 14:05 → 14:12"
    );

    let hook = render("webhook", "group", &group.context("webhook"));
    assert_eq!(hook["status"], "firing");
    assert_eq!(
        hook["counts"],
        json!({"firing": 4, "resolved": 1, "total": 5})
    );
    assert_eq!(hook["group"], json!({"component": "exchange"}));
    let alerts = hook["alerts"].as_array().expect("alerts");
    assert_eq!(alerts.len(), 5, "every alert, as JSON");
    assert_eq!(alerts[1]["status"], "resolved");
    assert_eq!(alerts[1]["ends_at"], "2025-11-03T14:12:30Z");
    assert_eq!(alerts[0]["ends_at"], Value::Null);
    assert_eq!(
        alerts[0]["event"], group.alerts[0].event,
        "the event unescaped"
    );
    assert_eq!(hook["event"]["id"], "c1", "the newest event");
}

#[test]
fn five_hundred_long_alerts_fit_one_telegram_message() {
    let mut group = huge_group(500, "<&>\"x");
    // The router listed only the first 500 of 600.
    group.unlisted = 100;
    let payload = render("telegram", "group", &group.context("telegram"));
    let text = payload["text"].as_str().expect("text");
    let visible = telegram_visible(text);
    let chars = visible.chars().count();
    assert!(
        chars <= fake_telegram::TEXT_LIMIT,
        "{chars} characters: Telegram refuses it"
    );
    let lines: Vec<&str> = visible.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"+585 more"),
        "600 alerts, 15 listed: {visible}"
    );
    // The header, the window, a blank line, 15 alerts, "+N more".
    assert_eq!(lines.len(), 19, "{visible}");
    assert!(
        lines[1].starts_with("🔕 Held during weekend maintenance window"),
        "{}",
        lines[1]
    );
    for line in &lines[3..18] {
        assert!(line.contains('…'), "each message is cut: {line}");
        assert!(!line.starts_with('✅'), "firing alerts come first: {line}");
    }
    assert_eq!(payload["disable_notification"], false);
}

#[test]
fn five_hundred_alerts_stay_within_discords_limits() {
    // Every character is one Discord markdown escapes, so each doubles.
    let group = huge_group(500, "*_`|~");
    let payload = render("discord", "group", &group.context("discord"));
    if let Err(answer) = discord_answer(&payload) {
        panic!("the fake Discord refuses the payload: {answer}");
    }
    let embeds = payload["embeds"].as_array().expect("embeds");
    assert_eq!(embeds.len(), 1);
    let embed = &embeds[0];
    assert_eq!(embed["fields"].as_array().map(Vec::len), Some(10));
    assert_eq!(embed["footer"]["text"], "+490 more");
    assert_eq!(embed["color"], "critical");
    // Within the limits by themselves, so the plugin sends the embed as it is.
    let count = |v: &Value| v.as_str().map_or(0, |s| s.trim().chars().count());
    assert!(count(&embed["title"]) <= 256);
    assert!(count(&embed["description"]) <= 4096);
    let mut total =
        count(&embed["title"]) + count(&embed["description"]) + count(&embed["footer"]["text"]);
    for field in embed["fields"].as_array().expect("fields") {
        assert!(
            count(&field["name"]) <= 256 && count(&field["name"]) > 0,
            "{field}"
        );
        assert!(
            count(&field["value"]) <= 1024 && count(&field["value"]) > 0,
            "{field}"
        );
        total += count(&field["name"]) + count(&field["value"]);
    }
    assert!(total <= 6000, "{total} characters in the embed");
}

#[test]
fn every_sink_renders_five_hundred_long_alerts() {
    let group = huge_group(500, "<&>*_x");
    for sink in SINKS {
        let payload = render(sink, "group", &group.context(sink));
        match sink {
            "slack" => {
                let header = payload["blocks"][0]["text"]["text"]
                    .as_str()
                    .expect("header");
                assert!(header.chars().count() <= 150, "{header}");
                // Escaped, `<&>` is five times as long: the plugin splits such a list
                // over sections. Without markup it fits one (3,000 characters).
                let list = payload["blocks"][2]["text"]["text"].as_str().expect("list");
                assert_eq!(list.lines().count(), 15);
                let plain = render(sink, "group", &huge_group(500, "abc ").context(sink));
                let list = plain["blocks"][2]["text"]["text"].as_str().expect("list");
                assert_eq!(list.lines().count(), 15);
                assert!(
                    list.chars().count() <= 3000,
                    "one section: {} characters",
                    list.chars().count()
                );
                assert_eq!(
                    payload["blocks"][3]["elements"][0]["text"],
                    "+485 more · 🕐 2025-11-03 18:19:00"
                );
            }
            "dashboard" => {
                let text = payload["text"].as_str().expect("text");
                assert!(
                    text.chars().count() <= 2000,
                    "{} characters",
                    text.chars().count()
                );
                assert!(text.ends_with("+490 more"), "{text}");
                assert!(payload["title"].as_str().expect("title").chars().count() <= 200);
                assert_eq!(payload["severity"], "critical");
                assert_eq!(payload["tone"], "negative");
            }
            "email" => {
                let text = payload["text"].as_str().expect("text");
                assert!(text.ends_with("\n+450 more"), "{text}");
                assert_eq!(
                    payload["html"]
                        .as_str()
                        .expect("html")
                        .matches("<tr>")
                        .count(),
                    51
                );
            }
            "console" => {
                let text = payload["text"].as_str().expect("text");
                assert!(text.ends_with("\n+450 more\n"), "{text}");
            }
            "webhook" | "exec" => {
                assert_eq!(payload["alerts"].as_array().map(Vec::len), Some(500));
                assert_eq!(payload["counts"]["total"], 500);
            }
            _ => {}
        }
    }
}

#[test]
fn each_kind_of_event_gets_a_readable_line() {
    let at = "2025-11-03T14:00:00Z";
    let group = Group::of(vec![
        firing(
            json!({"type": "trade_opened", "severity": "info", "time": at, "id": "t1", "labels": {},
                "symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000, "quantity": 0.5}),
            1,
            at,
        ),
        firing(
            json!({"type": "trade_closed", "severity": "warning", "time": at, "id": "t2", "labels": {},
                "symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500, "exit_price": 2400,
                "quantity": 2.0, "pnl": -200, "pnl_pct": -4.0}),
            1,
            at,
        ),
        firing(
            json!({"type": "disk_full", "severity": "error", "time": at, "id": "d1", "labels": {}}),
            3,
            at,
        ),
        firing(
            alertmanager_event("DiskFull", "firing", "critical", "", at, None),
            1,
            at,
        ),
        firing(
            json!({"type": "error", "severity": "error", "time": at, "id": "e1", "labels": {},
                "message": "line one\nline two"}),
            1,
            at,
        ),
    ]);
    let tg = render("telegram", "group", &group.context("telegram"));
    let visible = telegram_visible(tg["text"].as_str().expect("text"));
    let lines: Vec<&str> = visible.lines().skip(2).collect();
    assert_eq!(
        lines,
        [
            "ℹ️ Trade Opened BTC/USDT: BUY 0.5000 @ $45,000.00 · 14:00",
            "⚠️ Trade Closed ETH/USDT: -$200.00 (-4.00%) · 14:00",
            "❌ disk_full ×3 · 14:00",
            "🚨 DiskFull · 14:00",
            "❌ line one line two · 14:00",
        ]
    );
    let dc = render("discord", "group", &group.context("discord"));
    let names: Vec<&str> = dc["embeds"][0]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "ℹ️ Trade Opened BTC/USDT",
            "⚠️ Trade Closed ETH/USDT",
            "❌ disk\\_full",
            "🚨 DiskFull",
            "❌ Error",
        ]
    );
    if let Err(answer) = discord_answer(&dc) {
        panic!("the fake Discord refuses the payload: {answer}");
    }
}

#[test]
fn a_group_with_nothing_firing_reads_as_resolved() {
    let mut group = exchange_group();
    for entry in &mut group.alerts {
        entry.status = "resolved";
        entry.ends_at = Some("2025-11-03T14:34:00Z".to_owned());
    }
    let tg = render("telegram", "group", &group.context("telegram"));
    let visible = telegram_visible(tg["text"].as_str().expect("text"));
    assert!(
        visible.starts_with("✅ 5 resolved · component=exchange\n"),
        "{visible}"
    );
    assert!(!visible.contains("firing"), "{visible}");
    for line in visible.lines().skip(2) {
        assert!(line.starts_with("✅ "), "{line}");
        assert!(line.ends_with(" → 14:34"), "{line}");
    }
    for red in ["🚨", "❌", "⚠️", "🔥"] {
        assert!(!visible.contains(red), "{red} in {visible}");
    }
    assert_eq!(tg["disable_notification"], true, "good news does not ring");

    let dc = render("discord", "group", &group.context("discord"));
    assert_eq!(dc["embeds"][0]["color"], "resolved", "green");
    assert_eq!(
        dc["embeds"][0]["title"],
        "✅ 5 resolved · component=exchange"
    );

    let slack = render("slack", "group", &group.context("slack"));
    assert_eq!(slack["blocks"][0]["text"]["text"], "✅ 5 resolved");
    let email = render("email", "group", &group.context("email"));
    assert_eq!(email["subject"], "✅ 5 resolved · component=exchange");
    let console = render("console", "group", &group.context("console"));
    assert!(
        console["text"]
            .as_str()
            .expect("text")
            .starts_with("✅ 5 resolved")
    );
    let dashboard = render("dashboard", "group", &group.context("dashboard"));
    assert_eq!(dashboard["tone"], "positive");
    assert_eq!(dashboard["severity"], "info");
    for sink in ["webhook", "exec"] {
        assert_eq!(
            render(sink, "group", &group.context(sink))["status"],
            "resolved"
        );
    }
}

#[test]
fn a_windows_summary_names_the_window() {
    let mut group = exchange_group();
    let plain = |sink: &str, payload: &Value| -> String {
        match sink {
            "telegram" => telegram_visible(payload["text"].as_str().expect("text")),
            // Discord shows `\-` as `-`.
            "discord" => payload["embeds"][0]["description"]
                .as_str()
                .expect("description")
                .replace('\\', ""),
            _ => payload.to_string(),
        }
    };
    for sink in [
        "telegram",
        "discord",
        "slack",
        "email",
        "console",
        "dashboard",
    ] {
        let text = plain(sink, &render(sink, "group", &group.context(sink)));
        assert!(
            !text.contains("eld during"),
            "{sink}: no window, no mention: {text}"
        );
    }
    group.window = Some(("night", "2025-11-03T07:00:00Z"));
    for sink in [
        "telegram",
        "discord",
        "slack",
        "email",
        "console",
        "dashboard",
    ] {
        let text = plain(sink, &render(sink, "group", &group.context(sink)));
        let said = [
            "Held during night, ended 2025-11-03 07:00:00",
            "Held during **night**, ended 2025-11-03 07:00:00",
            "Held during *night*, ended 2025-11-03 07:00:00",
            "Held during <b>night</b>, ended 2025-11-03 07:00:00",
        ];
        assert!(said.iter().any(|s| text.contains(s)), "{sink}: {text}");
    }
    let tg = render("telegram", "group", &group.context("telegram"));
    let visible = telegram_visible(tg["text"].as_str().expect("text"));
    assert_eq!(
        visible.lines().nth(1),
        Some("🔕 Held during night, ended 2025-11-03 07:00:00")
    );
    for sink in ["webhook", "exec"] {
        let payload = render(sink, "group", &group.context(sink));
        assert_eq!(
            payload["window"],
            json!({"name": "night", "ended_at": "2025-11-03T07:00:00Z"})
        );
    }
}

/// One event of each type the per-type templates are for, and a custom one (for
/// `default.yaml`), with their required fields.
fn one_event_of_each_type() -> Vec<Value> {
    let at = "2025-11-03T14:30:00Z";
    vec![
        json!({"type": "trade_opened", "severity": "info", "time": at, "id": "1", "labels": {},
            "symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000, "quantity": 0.5}),
        json!({"type": "trade_closed", "severity": "info", "time": at, "id": "2", "labels": {},
            "symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500, "exit_price": 2600,
            "quantity": 2.0, "pnl": 200, "pnl_pct": 4.0}),
        json!({"type": "error", "severity": "error", "time": at, "id": "3", "labels": {},
            "message": "Binance API timeout"}),
        json!({"type": "daily_summary", "severity": "info", "time": at, "id": "4", "labels": {},
            "total_trades": 10, "winning_trades": 6, "losing_trades": 4, "win_rate": 60.0,
            "total_pnl": 120.5}),
        json!({"type": "portfolio_update", "severity": "info", "time": at, "id": "5", "labels": {},
            "total_value": 50000}),
        json!({"type": "performance_metrics", "severity": "info", "time": at, "id": "6",
            "labels": {}, "total_return": 5.0}),
        alertmanager_event(
            "HighLatency",
            "firing",
            "critical",
            "p99 above 500ms",
            at,
            None,
        ),
        json!({"type": "disk_full", "severity": "warning", "time": at, "id": "8",
            "labels": {"host": "db-1"}, "mount": "/var"}),
    ]
}

/// The part `with` has that `without` lacks, when it is the only difference (one
/// insertion), else `None`.
fn insertion<'a>(with: &'a str, without: &str) -> Option<&'a str> {
    let prefix: usize = with
        .chars()
        .zip(without.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let suffix: usize = with[prefix..]
        .chars()
        .rev()
        .zip(without[prefix..].chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    (prefix + suffix == without.len()).then(|| &with[prefix..with.len() - suffix])
}

/// Every string of `with` that differs from the one at the same place in `without`
/// (the payloads must have the same shape), as `(place, with, without)`.
fn changed_strings(
    with: &Value,
    without: &Value,
    at: String,
    out: &mut Vec<(String, String, String)>,
) {
    match (with, without) {
        (Value::String(a), Value::String(b)) => {
            if a != b {
                out.push((at, a.clone(), b.clone()));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                changed_strings(x, y, format!("{at}[{i}]"), out);
            }
        }
        (Value::Object(a), Value::Object(b))
            if a.keys().collect::<Vec<_>>() == b.keys().collect::<Vec<_>>() =>
        {
            for (key, x) in a {
                changed_strings(x, &b[key], format!("{at}.{key}"), out);
            }
        }
        _ => assert_eq!(with, without, "{at}: the payload changed shape"),
    }
}

#[test]
fn the_suppressed_line_appears_only_when_given() {
    const LINE: &str = "🔕 12 similar held back since 14:02";
    for sink in ["telegram", "discord", "slack", "console", "email"] {
        for event in one_event_of_each_type() {
            let kind = event["type"].as_str().expect("type").to_owned();
            let name = if kind == "disk_full" {
                "default"
            } else {
                kind.as_str()
            };
            let base = render::context(&event, "throttled", sink, sink, NOW);
            let without = render(sink, name, &base);
            let with = render(
                sink,
                name,
                &render::suppressed_context(base, 12, "2025-11-03T14:02:00Z"),
            );
            assert!(
                !without.to_string().contains("held back"),
                "{sink}/{name}: nothing held back, nothing said: {without}"
            );
            let mut changed = Vec::new();
            changed_strings(&with, &without, String::new(), &mut changed);
            // Email says it in both parts; the others once.
            let expected = if sink == "email" { 2 } else { 1 };
            assert_eq!(changed.len(), expected, "{sink}/{name}: {changed:#?}");
            for (at, with, without) in &changed {
                let added = insertion(with, without).unwrap_or_else(|| {
                    panic!(
                        "{sink}/{name}{at}: more changed than a line added:\n{with:?}\n{without:?}"
                    )
                });
                assert!(added.contains(LINE), "{sink}/{name}{at}: added {added:?}");
                assert!(
                    added.chars().count() <= LINE.chars().count() + 12,
                    "{sink}/{name}{at}: added {added:?}"
                );
            }
            if sink == "telegram" {
                let visible = telegram_visible(with["text"].as_str().expect("text"));
                assert!(visible.ends_with(LINE), "{name}: {visible}");
            }
        }
    }
}
