//! Templates loaded from real files in temporary directories, rendered as the pipeline
//! renders them.

use std::path::Path;

use serde_json::{Value as Json, json};

use super::*;
use crate::testing::TempDir;

/// Telegram speaks HTML, Discord markdown, Slack mrkdwn; anything else none.
fn markup_of(group: &str) -> Markup {
    match group {
        "telegram" | "tg1" | "tg2" => Markup::Html,
        "discord" => Markup::Markdown,
        "slack" => Markup::Mrkdwn,
        _ => Markup::None,
    }
}

fn load(dir: &TempDir) -> Templates {
    match Templates::load(&dir.0, &markup_of) {
        Ok(t) => t,
        Err(e) => panic!("load failed:\n{e}"),
    }
}

fn load_err(dir: &TempDir) -> Vec<String> {
    match Templates::load(&dir.0, &markup_of) {
        Ok(t) => panic!("expected load errors, loaded {t:?}"),
        Err(e) => e.0.iter().map(|d| d.to_string()).collect(),
    }
}

fn trade_opened() -> Json {
    json!({
        "type": "trade_opened",
        "severity": "info",
        "time": "2025-11-03T14:30:00Z",
        "id": "e1",
        "labels": {"env": "prod"},
        "symbol": "BTC/USDT",
        "side": "BUY",
        "entry_price": 45000,
        "quantity": 0.5,
        "strategy": "RSI_MACD",
    })
}

fn render(
    t: &Templates,
    sink: &str,
    plugin: &str,
    name: &str,
    event: &Json,
) -> Result<Json, RenderError> {
    let id = t
        .resolve(sink, plugin, name)
        .unwrap_or_else(|| panic!("no template for {sink}/{plugin}/{name}"));
    let ctx = context(event, "rule-1", sink, plugin, "2025-11-03T14:30:05Z");
    t.render(id, &ctx)
}

fn text_of(payload: &Json) -> &str {
    payload["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {payload}"))
}

#[test]
fn lookup_goes_sink_plugin_sink_default_plugin_default() {
    let dir = TempDir::new("render");
    dir.write("tg1/trade_opened.yaml", "text: tg1/trade_opened\n")
        .write("tg1/default.yaml", "text: tg1/default\n")
        .write(
            "telegram/trade_opened.yaml",
            "text: telegram/trade_opened\n",
        )
        .write("telegram/default.yaml", "text: telegram/default\n")
        .write(
            "telegram/commands/status.yaml",
            "text: telegram/commands/status\n",
        );
    let t = load(&dir);
    let ev = trade_opened();
    let which = |sink: &str, name: &str| {
        t.resolve(sink, "telegram", name).map(|id| {
            text_of(
                &t.render(id, &context(&ev, "r", sink, "telegram", "now"))
                    .unwrap(),
            )
            .to_owned()
        })
    };
    assert_eq!(
        which("tg1", "trade_opened").as_deref(),
        Some("tg1/trade_opened")
    );
    // The plugin's own template beats the sink's default.
    assert_eq!(
        which("tg2", "trade_opened").as_deref(),
        Some("telegram/trade_opened")
    );
    assert_eq!(which("tg1", "error").as_deref(), Some("tg1/default"));
    assert_eq!(which("tg2", "error").as_deref(), Some("telegram/default"));
    assert_eq!(
        which("tg1", "commands/status").as_deref(),
        Some("telegram/commands/status")
    );
    assert_eq!(t.resolve("x", "y", "trade_opened"), None);
    // The plugin callback's lookup has no default.
    assert_eq!(t.find("tg1", "telegram", "error"), None);
    assert!(t.find("tg2", "telegram", "commands/status").is_some());
    let id = t.resolve("tg1", "telegram", "trade_opened").unwrap();
    assert_eq!(t.path(id), dir.0.join("tg1/trade_opened.yaml"));
    assert_eq!(t.files().count(), 5);
}

#[test]
fn values_keep_their_shape_order_and_native_types() {
    let dir = TempDir::new("render");
    dir.write(
        "telegram/trade_opened.yaml",
        "\
text: \"{{ event.symbol }} {{ event.side }}\"
disable_notification: \"{{ event.severity == 'info' }}\"
zebra: 1
alpha: 2.5
nothing: null
flag: false
double: \"{{ event.quantity * 2 }}\"
count: \"  {{ event.entry_price }}  \"
labels: \"{{ event.labels }}\"
list: \"{{ [event.symbol, 1] }}\"
none: \"{{ none }}\"
plain: no template here
nested:
  - {a: \"{{ rule }}\", b: [\"{{ sink }}\", \"{{ plugin }}\", \"{{ now }}\"]}
",
    );
    let t = load(&dir);
    let out = render(&t, "tg1", "telegram", "trade_opened", &trade_opened()).unwrap();
    assert_eq!(
        out,
        json!({
            "text": "BTC/USDT BUY",
            "disable_notification": true,
            "zebra": 1,
            "alpha": 2.5,
            "nothing": null,
            "flag": false,
            "double": 1.0,
            "count": 45000,
            "labels": {"env": "prod"},
            "list": ["BTC/USDT", 1],
            "none": null,
            "plain": "no template here",
            "nested": [{"a": "rule-1", "b": ["tg1", "telegram", "2025-11-03T14:30:05Z"]}],
        })
    );
    let keys: Vec<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "text",
            "disable_notification",
            "zebra",
            "alpha",
            "nothing",
            "flag",
            "double",
            "count",
            "labels",
            "list",
            "none",
            "plain",
            "nested"
        ]
    );
}

#[test]
fn render_json_is_render_serialized() {
    let dir = TempDir::new("render");
    dir.write(
        "discord/x.yaml",
        "\
username: \"Bot \\\"q\\\" {{ sink }}\"
embeds:
  - title: \"{{ event.symbol }}\\n{{ event.strategy }}\"
    color: \"{{ 3066993 if event.quantity > 0 else 15158332 }}\"
    fields: [{name: a, value: \"{{ event.labels }}\", inline: true}, {name: b, value: 1.5}]
    literal: {deep: [null, true, \"x\"]}
",
    )
    .write("discord/lit.yaml", "text: plain\n");
    let t = load(&dir);
    let mut ev = trade_opened();
    ev["strategy"] = json!("tab\t \"quote\" *x* \u{1}");
    for name in ["x", "lit"] {
        let id = t.resolve("discord", "discord", name).unwrap();
        let ctx = context(&ev, "r", "discord", "discord", "now");
        let tree = t.render(id, &ctx).unwrap();
        let text = t.render_json(id, &ctx).unwrap();
        assert_eq!(text, serde_json::to_string(&tree).unwrap(), "{name}");
    }
}

#[test]
fn block_scalars_keep_their_text_exactly() {
    let dir = TempDir::new("render");
    dir.write(
        "console/x.yaml",
        "keep: |\n  a {{ event.side }}\n\n  b\nstrip: |-\n  a {{ event.side }}\nfold: >\n  a {{ event.side }}\n  b\n",
    );
    let out = render(&load(&dir), "console", "console", "x", &trade_opened()).unwrap();
    assert_eq!(
        out,
        json!({"keep": "a BUY\n\nb\n", "strip": "a BUY", "fold": "a BUY b\n"})
    );
}

const NASTY: &str = "<script>alert(1)</script> & <b>x</b> *bold* _x_ 🚀";

#[test]
fn values_are_escaped_for_each_markup_and_literal_text_never() {
    let dir = TempDir::new("render");
    let template = "\
text: \"<b>{{ event.strategy }}</b>\"
native: \"{{ event.strategy }}\"
safe: \"<i>{{ event.strategy|safe }}</i>\"
safe_native: \"{{ event.strategy|safe }}\"
explicit: \"{{ event.strategy|escape }}\"
explicit_text: \"[{{ event.strategy|e }}]\"
";
    for group in ["telegram", "discord", "slack", "webhook"] {
        dir.write(&format!("{group}/trade_opened.yaml"), template);
    }
    let t = load(&dir);
    let mut ev = trade_opened();
    ev["strategy"] = json!(NASTY);
    let cases = [
        (
            "telegram",
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;x&lt;/b&gt; *bold* _x_ 🚀",
        ),
        (
            "discord",
            "<script\\>alert\\(1\\)</script\\> & <b\\>x</b\\> \\*bold\\* \\_x\\_ 🚀",
        ),
        (
            "slack",
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;x&lt;/b&gt; *bold* _x_ 🚀",
        ),
        ("webhook", NASTY),
    ];
    for (group, escaped) in cases {
        let out = render(&t, group, group, "trade_opened", &ev).unwrap();
        assert_eq!(out["text"], format!("<b>{escaped}</b>"), "{group}");
        assert_eq!(out["native"], escaped, "{group}");
        assert_eq!(out["safe"], format!("<i>{NASTY}</i>"), "{group}");
        assert_eq!(out["safe_native"], NASTY, "{group}");
        assert_eq!(out["explicit"], escaped, "{group}");
        assert_eq!(out["explicit_text"], format!("[{escaped}]"), "{group}");
    }
}

#[test]
fn filter_output_is_escaped_too() {
    let dir = TempDir::new("render");
    dir.write(
        "discord/x.yaml",
        "text: \"P&L {{ event.pnl|money }} ({{ event.pnl_pct|percent }})\"\n",
    );
    let out = render(
        &load(&dir),
        "discord",
        "discord",
        "x",
        &json!({"pnl": -50, "pnl_pct": -2.5}),
    )
    .unwrap();
    assert_eq!(out["text"], "P&L \\-$50.00 (\\-2.50%)");
}

/// The three places a missing field can be written, each pointed at exactly.
#[test]
fn a_missing_field_names_file_line_and_column() {
    let dir = TempDir::new("render");
    dir.write(
        "telegram/plain.yaml",
        "# comment\ntext: Stop {{ event.stop_loss }}\n",
    )
    .write(
        "telegram/quoted.yaml",
        "text: \"Stop {{ event.stop_loss|money }}\"\n",
    )
    .write(
        "telegram/block.yaml",
        "parse_mode: HTML\ntext: |\n  🟢 Trade Opened\n  🛡️ Stop Loss: {{ event.stop_loss }}\n",
    )
    .write(
        "telegram/native.yaml",
        "text: ok\nflag: \"{{ event.nope }}\"\n",
    )
    .write(
        "telegram/deep.yaml",
        "text: '{{ event.labels.team.name }}'\n",
    );
    let t = load(&dir);
    let ev = trade_opened();
    let err = |name: &str| {
        render(&t, "tg1", "telegram", name, &ev)
            .unwrap_err()
            .to_string()
    };
    let file = |name: &str| dir.path(&format!("telegram/{name}.yaml"));
    assert_eq!(
        err("plain"),
        format!("{}:2:15: undefined value: event.stop_loss", file("plain"))
    );
    assert_eq!(
        err("quoted"),
        format!("{}:1:16: undefined value: event.stop_loss", file("quoted"))
    );
    assert_eq!(
        err("block"),
        format!("{}:4:20: undefined value: event.stop_loss", file("block"))
    );
    assert_eq!(
        err("native"),
        format!("{}:2:11: undefined value: event.nope", file("native"))
    );
    assert_eq!(
        err("deep"),
        format!("{}:1:11: undefined value: event.labels.team", file("deep"))
    );
}

#[test]
fn optional_fields_can_be_guarded() {
    let dir = TempDir::new("render");
    dir.write(
        "telegram/x.yaml",
        "\
text: \"{% if event.stop_loss is defined %}SL {{ event.stop_loss }}{% else %}no SL{% endif %}\"
tp: \"{{ event.take_profit|default('-') }}\"
has: \"{{ event.stop_loss is defined }}\"
",
    );
    let t = load(&dir);
    let mut ev = trade_opened();
    assert_eq!(
        render(&t, "tg1", "telegram", "x", &ev).unwrap(),
        json!({"text": "no SL", "tp": "-", "has": false})
    );
    ev["stop_loss"] = json!(44000);
    ev["take_profit"] = json!(47000);
    assert_eq!(
        render(&t, "tg1", "telegram", "x", &ev).unwrap(),
        json!({"text": "SL 44000", "tp": 47000, "has": true})
    );
}

#[test]
fn a_runtime_error_names_the_expression() {
    let dir = TempDir::new("render");
    dir.write(
        "console/x.yaml",
        "a: fine\ntext: \"{{ event.symbol|money }}\"\nb: \"{{ event.symbol + 1 }} x\"\n",
    );
    let t = load(&dir);
    let err = render(&t, "console", "console", "x", &trade_opened()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2:24: money expects a number, got string \"BTC/USDT\" (in `event.symbol|money`)",
            dir.path("console/x.yaml")
        )
    );
    dir.write("console/y.yaml", "b: \"{{ event.symbol + 1 }} x\"\n");
    let t = load(&dir);
    let err = render(&t, "console", "console", "y", &trade_opened()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:1:8: tried to use + operator on unsupported types string and number (in `event.symbol + 1`)",
            dir.path("console/y.yaml")
        )
    );
}

#[test]
fn a_syntax_error_is_reported_at_load_with_its_place() {
    let dir = TempDir::new("render");
    dir.write(
        "telegram/bad.yaml",
        "parse_mode: HTML\ntext: \"ok {{ event.x + }}\"\n",
    );
    let errs = load_err(&dir);
    assert_eq!(
        errs,
        [format!(
            "{}:2:24: syntax error: unexpected end of variable block",
            dir.path("telegram/bad.yaml")
        )]
    );
}

#[test]
fn an_unknown_filter_test_or_function_is_reported_at_load_with_its_place() {
    let dir = TempDir::new("render");
    dir.write(
        "console/x.yaml",
        "# a typo\ntext: |\n  {{ event.time | datetme }}\n  {% if event.x is defind %}{{ rnage(3) }}{% endif %}\nsilent: \"{{ event.ok|bool }}\"\n",
    )
    .write(
        // A macro from an earlier string of the file, and a loop's own names, are known.
        "console/y.yaml",
        "a: \"{% macro row(k) %}{{ k|upper }}{% endmacro %}\"\nb: \"{% for k in range(2) %}{{ row(k) }}{% endfor %}\"\n",
    );
    let file = dir.path("console/x.yaml");
    assert_eq!(
        load_err(&dir),
        [
            format!("{file}:3:19: unknown filter `datetme` (did you mean `datetime`?)"),
            format!("{file}:4:20: unknown test `defind` (did you mean `defined`?)"),
            format!("{file}:4:32: unknown function `rnage` (did you mean `range`?)"),
        ]
    );
}

#[test]
fn every_broken_file_is_reported_together() {
    let dir = TempDir::new("render");
    dir.write("telegram/good.yaml", "text: fine\n")
        .write("telegram/yaml.yaml", "text: [1, 2\nother: x\n")
        .write(
            "discord/syntax.yaml",
            "content: \"{% if x %}\"\nembeds:\n  - title: \"{{ a b }}\"\n",
        )
        .write("loose.yaml", "text: no group\n")
        .write("console/old.yml", "text: wrong extension\n")
        .write("console/empty.yaml", "")
        .write("console/notes.txt", "ignored\n");
    let errs = load_err(&dir);
    assert_eq!(errs.len(), 6, "{errs:#?}");
    let has = |file: &str, what: &str| {
        assert!(
            errs.iter()
                .any(|e| e.starts_with(&dir.path(file)) && e.contains(what)),
            "no error for {file} containing {what:?} in {errs:#?}"
        )
    };
    has("telegram/yaml.yaml", ":2:6:");
    has("discord/syntax.yaml", ":1:");
    has("discord/syntax.yaml", ":3:");
    has("loose.yaml", "folder named after its sink or plugin");
    has("console/old.yml", "rename it to .yaml");
    has("console/empty.yaml", "the template is empty");
}

#[test]
fn a_runaway_template_runs_out_of_fuel() {
    let dir = TempDir::new("render");
    dir.write(
        "console/loop.yaml",
        "text: \"{% for i in range(1000) %}{% for j in range(1000) %}x{% endfor %}{% endfor %}\"\n",
    );
    let t = load(&dir);
    let err = render(&t, "console", "console", "loop", &trade_opened()).unwrap_err();
    assert!(err.to_string().contains("ran out of fuel"), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}:1:", dir.path("console/loop.yaml"))),
        "{err}"
    );
}

#[test]
fn a_missing_directory_is_an_empty_set() {
    let t = Templates::load(Path::new("/nonexistent/alert-router/templates"), &markup_of).unwrap();
    assert!(t.is_empty());
    assert_eq!(t.resolve("a", "b", "c"), None);
}

#[test]
fn a_literal_only_template_renders_without_minijinja() {
    let dir = TempDir::new("render");
    dir.write("console/x.yaml", "text: hello\nn: [1, 2]\n");
    assert_eq!(
        render(&load(&dir), "console", "console", "x", &trade_opened()).unwrap(),
        json!({"text": "hello", "n": [1, 2]})
    );
}

#[test]
fn templates_are_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Templates>();
}

/// The console templates shipped in `templates/console/` reproduce the original
/// module's messages.
mod console {
    use super::*;

    fn shipped() -> Templates {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
        Templates::load(&dir, &|g| {
            if g == "console" {
                Markup::None
            } else {
                markup_of(g)
            }
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn text(event: Json) -> String {
        let t = shipped();
        let kind = event["type"].as_str().unwrap().to_owned();
        let out = render(&t, "console", "console", &kind, &event).unwrap_or_else(|e| panic!("{e}"));
        text_of(&out).to_owned()
    }

    fn base(kind: &str) -> Json {
        json!({"type": kind, "severity": "info", "time": "2025-11-03T14:30:00Z", "id": "e1", "labels": {}})
    }

    fn with(kind: &str, fields: Json) -> Json {
        let mut ev = base(kind);
        for (k, v) in fields.as_object().unwrap() {
            ev[k] = v.clone();
        }
        ev
    }

    #[test]
    fn trade_opened_matches_the_original() {
        let full = text(with(
            "trade_opened",
            json!({"symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000, "quantity": 0.5,
                   "strategy": "RSI_MACD", "stop_loss": 44000, "take_profit": 47000}),
        ));
        assert_eq!(
            full,
            "\
🟢 Trade Opened

📊 Symbol: BTC/USDT
📈 Side: BUY
💰 Entry Price: $45,000.00
📦 Quantity: 0.5000
💵 Total Value: $22,500.00
🎯 Strategy: RSI_MACD
🛡️ Stop Loss: $44,000.00
🎯 Take Profit: $47,000.00
🕐 Time: 2025-11-03 14:30:00
"
        );
        let bare = text(with(
            "trade_opened",
            json!({"symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500, "quantity": 2, "total_value": 4999}),
        ));
        assert!(bare.contains("💵 Total Value: $4,999.00\n"), "{bare}");
        assert!(
            !bare.contains("Strategy") && !bare.contains("Stop Loss"),
            "{bare}"
        );
        assert!(bare.starts_with("🔴 Trade Opened"), "{bare}");
    }

    #[test]
    fn trade_closed_matches_the_original() {
        let out = text(with(
            "trade_closed",
            json!({"symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500, "exit_price": 2600,
                   "quantity": 2.0, "pnl": 200, "pnl_pct": 4.0, "reason": "Take Profit",
                   "duration": "3 hours"}),
        ));
        assert_eq!(
            out,
            "\
✅ Trade Closed
SELL position closed for ETH/USDT

📊 Symbol: ETH/USDT
📈 Side: SELL
💰 Entry Price: $2,500.00
💰 Exit Price: $2,600.00
📦 Quantity: 2.0000
💵 P&L: +$200.00 (+4.00%)
📝 Reason: Take Profit
⏱️ Duration: 3 hours
🕐 Time: 2025-11-03 14:30:00
"
        );
        let loss = text(with(
            "trade_closed",
            json!({"symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000, "exit_price": 44000,
                   "quantity": 0.5, "pnl": -500, "pnl_pct": -2.22, "duration": 11100}),
        ));
        assert!(loss.starts_with("❌ Trade Closed"), "{loss}");
        assert!(loss.contains("💵 P&L: -$500.00 (-2.22%)\n"), "{loss}");
        assert!(loss.contains("⏱️ Duration: 3h 5m\n"), "{loss}");
        assert!(!loss.contains("Reason"), "{loss}");
    }

    #[test]
    fn error_daily_summary_portfolio_and_performance_render() {
        let mut error = with(
            "error",
            json!({"message": "Max drawdown exceeded", "error_type": "RiskViolation",
                   "component": "risk", "details": "drawdown 12%"}),
        );
        error["severity"] = json!("critical");
        let out = text(error);
        assert!(out.starts_with("🚨 CRITICAL: RiskViolation\n"), "{out}");
        assert!(out.contains("💬 Message: Max drawdown exceeded\n"), "{out}");
        assert!(out.contains("🧩 Component: risk\n"), "{out}");
        assert!(out.contains("📋 Details: drawdown 12%\n"), "{out}");

        let out = text(with(
            "daily_summary",
            json!({"date": "2025-11-03", "total_trades": 15, "winning_trades": 10, "losing_trades": 5,
                   "win_rate": 66.67, "total_pnl": 1250.5, "total_pnl_pct": 2.5,
                   "best_trade": 400, "worst_trade": -150, "portfolio_value": 51250.5}),
        ));
        assert!(out.starts_with("📊 Daily Summary: 2025-11-03\n"), "{out}");
        assert!(out.contains("📈 Total Trades: 15\n"), "{out}");
        assert!(out.contains("✅ Winning: 10\n❌ Losing: 5\n"), "{out}");
        assert!(out.contains("🎯 Win Rate: 66.67%\n"), "{out}");
        assert!(out.contains("💵 Total P&L: +$1,250.50 (+2.50%)\n"), "{out}");
        assert!(out.contains("🏆 Best Trade: +$400.00\n"), "{out}");
        assert!(out.contains("💔 Worst Trade: -$150.00\n"), "{out}");
        assert!(out.contains("💼 Portfolio Value: $51,250.50\n"), "{out}");

        let out = text(with(
            "portfolio_update",
            json!({"total_value": 12500, "cash": 2500, "pnl": 2500, "pnl_pct": 25,
                   "drawdown_pct": 3.5,
                   "positions": [{"symbol": "BTC/USDT", "side": "LONG", "quantity": 0.5,
                                  "entry_price": 45000, "current_price": 46500, "pnl": 750,
                                  "pnl_pct": 3.33}]}),
        ));
        assert!(out.contains("💰 Total Value: $12,500.00\n"), "{out}");
        assert!(out.contains("💵 P&L: +$2,500.00 (+25.00%)\n"), "{out}");
        assert!(
            out.contains("• BTC/USDT LONG 0.5000 @ $45,000.00 → $46,500.00: +$750.00 (+3.33%)\n"),
            "{out}"
        );

        let out = text(with(
            "performance_metrics",
            json!({"total_return": 25, "sharpe_ratio": 1.85, "max_drawdown": -8.2, "win_rate": 65,
                   "total_trades": 120}),
        ));
        assert!(out.contains("📈 Total Return: +25.00%\n"), "{out}");
        assert!(out.contains("📐 Sharpe Ratio: 1.85\n"), "{out}");
        assert!(out.contains("📉 Max Drawdown: -8.20%\n"), "{out}");
        assert!(out.contains("🎯 Win Rate: 65.00%\n"), "{out}");
        assert!(!out.contains("Sortino"), "{out}");
    }

    #[test]
    fn any_other_event_uses_the_default() {
        let out = text(with("disk_full", json!({"host": "db1", "used_pct": 97})));
        assert!(out.starts_with("ℹ️ disk_full (info)\n"), "{out}");
        assert!(out.contains("host: db1\n"), "{out}");
        assert!(out.contains("used_pct: 97\n"), "{out}");
        // The reserved keys are in the header, not repeated as fields.
        assert!(!out.contains("id: e1"), "{out}");
    }
}
