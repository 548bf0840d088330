//! Rendering a realistic `trade_closed` message: a Discord embed (markdown escaping,
//! nine fields, filters, two native values) and the console's plain text.
//!
//! `cargo bench -p alert-router --bench render`. The budget is 300,000 route + render
//! per second on one core; `context + resolve + render` is this layer's share.
//!
//! Times are the benchmark thread's CPU time on Linux, so other work on a shared 2-core
//! machine does not inflate them; elsewhere, wall time.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alert_router::event::Event;
use alert_router::render::{Markup, Templates, context, context_with, event_value};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use time::OffsetDateTime;

mod common;
use common::cpu_time;

const DISCORD_TRADE_CLOSED: &str = r#"
username: Trading Bot
embeds:
  - title: "{{ '✅' if event.pnl >= 0 else '❌' }} Trade Closed"
    description: "{{ event.side }} position closed for {{ event.symbol }}"
    color: "{{ 3066993 if event.pnl >= 0 else 15158332 }}"
    fields:
      - {name: "📊 Symbol", value: "{{ event.symbol }}", inline: true}
      - {name: "📈 Side", value: "{{ event.side }}", inline: true}
      - {name: "💰 Entry Price", value: "{{ event.entry_price|money }}", inline: true}
      - {name: "💰 Exit Price", value: "{{ event.exit_price|money }}", inline: true}
      - {name: "📦 Quantity", value: "{{ event.quantity|qty }}", inline: true}
      - {name: "💵 P&L", value: "{{ event.pnl|money }} ({{ event.pnl_pct|percent }})", inline: true}
      - {name: "📝 Reason", value: "{{ event.reason|default('-') }}", inline: true}
      - {name: "⏱️ Duration", value: "{{ event.duration|duration if event.duration is defined else '-' }}", inline: true}
    timestamp: "{{ event.time }}"
    footer: {text: "alert-router · {{ rule }}"}
"#;

/// The smallest templates, to tell the fixed cost of a render from the cost per string.
const SMALL: [(&str, &str); 3] = [
    ("literal", "text: no template at all\nn: [1, 2]\n"),
    ("one", "text: \"{{ event.symbol }}\"\n"),
    ("native", "flag: \"{{ event.pnl >= 0 }}\"\n"),
];

/// A templates directory with the Discord template above and the shipped console ones.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let dir = std::env::temp_dir().join(format!("alert-router-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("discord")).expect("create bench dir");
        std::fs::write(dir.join("discord/trade_closed.yaml"), DISCORD_TRADE_CLOSED)
            .expect("write template");
        for (name, text) in SMALL {
            std::fs::write(dir.join(format!("discord/{name}.yaml")), text).expect("write template");
        }
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/console");
        std::fs::create_dir_all(dir.join("console")).expect("create console dir");
        for entry in std::fs::read_dir(shipped).expect("templates/console") {
            let path = entry.expect("entry").path();
            let name = path.file_name().expect("file name");
            std::fs::copy(&path, dir.join("console").join(name)).expect("copy template");
        }
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bench(c: &mut Criterion) {
    let dir = Dir::new();
    let markup_of = |group: &str| match group {
        "discord" => Markup::Markdown,
        _ => Markup::None,
    };
    let templates = Templates::load(&dir.0, &markup_of).unwrap_or_else(|e| panic!("{e}"));
    let event = json!({
        "type": "trade_closed", "severity": "info", "time": "2025-11-03T14:30:00Z",
        "id": "01JC5W8Y7ZQ", "labels": {"env": "prod", "bot": "alpha"},
        "symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500, "exit_price": 2600,
        "quantity": 2.0, "pnl": 200, "pnl_pct": 4.0, "reason": "Take Profit",
        "duration": 10800, "strategy": "RSI_MACD",
    });
    let now = "2025-11-03T14:30:01Z";

    let mut group = c.benchmark_group("trade_closed");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(4));
    for (sink, plugin) in [("discord", "discord"), ("console", "console")] {
        let id = templates
            .resolve(sink, plugin, "trade_closed")
            .expect("template");
        let ctx = context(&event, "all-trades", sink, plugin, now);
        group.bench_function(format!("{sink}/render"), |b| {
            b.iter_custom(|n| cpu_time(n, || templates.render(black_box(id), black_box(&ctx))))
        });
        group.bench_function(format!("{sink}/render_json"), |b| {
            b.iter_custom(|n| cpu_time(n, || templates.render_json(black_box(id), black_box(&ctx))))
        });
        group.bench_function(format!("{sink}/context+resolve+render"), |b| {
            b.iter_custom(|n| {
                cpu_time(n, || {
                    let ctx = context(black_box(&event), "all-trades", sink, plugin, now);
                    let id = templates.resolve(sink, plugin, black_box("trade_closed"));
                    id.map(|id| templates.render(id, &ctx))
                })
            })
        });
        group.bench_function(format!("{sink}/context+resolve+render_json"), |b| {
            b.iter_custom(|n| {
                cpu_time(n, || {
                    let ctx = context(black_box(&event), "all-trades", sink, plugin, now);
                    let id = templates.resolve(sink, plugin, black_box("trade_closed"));
                    id.map(|id| templates.render_json(id, &ctx))
                })
            })
        });
    }
    group.bench_function("context", |b| {
        b.iter_custom(|n| {
            cpu_time(n, || {
                context(black_box(&event), "all-trades", "discord", "discord", now)
            })
        })
    });
    // The pipeline's context: the event read in place (`event_value`), not a JSON copy.
    let shared = Arc::new(
        Event::from_json(event.clone(), OffsetDateTime::UNIX_EPOCH)
            .unwrap_or_else(|e| panic!("{e}")),
    );
    group.bench_function("context_from_event", |b| {
        b.iter_custom(|n| {
            cpu_time(n, || {
                let value = event_value(black_box(&shared));
                context_with(value, "all-trades", "discord", "discord", now)
            })
        })
    });
    group.bench_function("discord/context_from_event+resolve+render_json", |b| {
        b.iter_custom(|n| {
            cpu_time(n, || {
                let value = event_value(black_box(&shared));
                let ctx = context_with(value, "all-trades", "discord", "discord", now);
                let id = templates.resolve("discord", "discord", black_box("trade_closed"));
                id.map(|id| templates.render_json(id, &ctx))
            })
        })
    });
    let ctx = context(&event, "all-trades", "discord", "discord", now);
    for (name, _) in SMALL {
        let id = templates
            .resolve("discord", "discord", name)
            .expect("template");
        group.bench_function(format!("small/{name}"), |b| {
            b.iter_custom(|n| cpu_time(n, || templates.render_json(black_box(id), black_box(&ctx))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
