//! Route + render, the per-event work of the pipeline before queueing: 50 routes (type
//! globs, severities, labels and `when:` expressions) of which the last ones match, then
//! the shipped console template for each hit.
//!
//! `cargo bench -p alert-router --bench route`. The budget is 300,000 events/s on one core.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alert_router::event::Event;
use alert_router::render::{Markup, Templates, context};
use alert_router::rules::Rules;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use time::OffsetDateTime;

/// 48 routes that do not match a `trade_closed` event in different ways, then two that do.
fn fifty_routes() -> String {
    let mut yaml = String::from("routes:\n");
    for i in 0..48 {
        let condition = match i % 4 {
            0 => format!("type: \"alert_{i}_*\""),
            1 => format!("type: trade_closed\n      labels: {{env: staging-{i}}}"),
            2 => format!("type: [\"trade_*\", error]\n      when: \"event.pnl_pct < -{i}\""),
            _ => format!("severity: \">= error\"\n      type: \"*_{i}\""),
        };
        yaml.push_str(&format!(
            "  - name: r{i}\n    match:\n      {condition}\n    to: [console]\n"
        ));
    }
    yaml.push_str("  - name: profits\n    match:\n      type: trade_closed\n      when: \"event.pnl > 0\"\n    to: [console]\n    continue: true\n");
    yaml.push_str("  - name: all-trades\n    match: {type: \"trade_*\", severity: \">= info\"}\n    to: [audit]\n");
    yaml
}

fn bench(c: &mut Criterion) {
    let rules = Rules::compile(&[(PathBuf::from("bench.yaml"), fifty_routes())], &|_| true)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rules.routes().len(), 50);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
    let templates = Templates::load(&shipped, &|_| Markup::None).unwrap_or_else(|e| panic!("{e}"));
    let raw = json!({
        "type": "trade_closed", "time": "2025-11-03T14:30:00Z", "labels": {"env": "prod"},
        "symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500, "exit_price": 2600,
        "quantity": 2.0, "pnl": 200, "pnl_pct": 4.0, "reason": "Take Profit", "duration": "3 hours",
    });
    let event =
        Event::from_json(raw.clone(), OffsetDateTime::UNIX_EPOCH).unwrap_or_else(|e| panic!("{e}"));
    let now = "2025-11-03T14:30:01Z";

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("validate", |b| {
        b.iter(|| Event::from_json(black_box(raw.clone()), OffsetDateTime::UNIX_EPOCH))
    });
    group.bench_function("route_50_rules", |b| {
        b.iter(|| rules.route(black_box(event.clone()), &mut |_, _| {}))
    });
    group.bench_function("route_50_rules+render", |b| {
        b.iter(|| {
            let hits = rules.route(black_box(event.clone()), &mut |_, _| {});
            let mut payloads = Vec::with_capacity(2);
            for hit in hits {
                let json = hit.event.to_json();
                let rule = &rules.routes()[hit.route].name;
                for sink in &hit.sinks {
                    if let Some(id) = templates.resolve(sink, "console", &hit.event.kind) {
                        payloads.push(
                            templates.render(id, &context(&json, rule, sink, "console", now)),
                        );
                    }
                }
            }
            payloads
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
