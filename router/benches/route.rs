//! Route + render, the per-event work of the pipeline before queueing: 50 routes (type
//! globs, severities, labels and `when:` expressions) of which the last ones match, then
//! the shipped console template for each hit.
//!
//! `cargo bench -p alert-router --bench route`. The budget is 300,000 events/s on one core.
//!
//! Times are the benchmark thread's CPU time on Linux (see `common`), so other work on a
//! shared 2-core machine does not inflate them.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alert_router::event::Event;
use alert_router::render::{Markup, Templates, context, context_with, event_value};
use alert_router::rules::Rules;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use time::OffsetDateTime;

mod common;
use common::cpu_time;

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
        b.iter_custom(|n| {
            cpu_time(n, || {
                Event::from_json(black_box(raw.clone()), OffsetDateTime::UNIX_EPOCH)
            })
        })
    });
    group.bench_function("route_50_rules", |b| {
        b.iter_custom(|n| cpu_time(n, || rules.route(black_box(event.clone()), &mut |_, _| {})))
    });
    group.bench_function("route_50_rules+render", |b| {
        b.iter_custom(|n| {
            cpu_time(n, || {
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
        })
    });
    group.bench_function("route_50_rules+render_json", |b| {
        b.iter_custom(|n| cpu_time(n, || pipeline(&rules, &templates, black_box(&event), now)))
    });
    // `bench/load.sh`'s config: one route to the console, a one-line template.
    let one = Rules::compile(
        &[(
            PathBuf::from("one.yaml"),
            "routes: [{name: all, to: [console]}]\n".into(),
        )],
        &|_| true,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let dir = std::env::temp_dir().join(format!("alert-router-route-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("console")).expect("create bench dir");
    std::fs::write(
        dir.join("console/default.yaml"),
        "text: \"{{ event.type }} {{ event.symbol }} {{ event.pnl | money }}\"\n",
    )
    .expect("write template");
    let small = Templates::load(&dir, &|_| Markup::None).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&dir);
    group.bench_function("route_1_rule+render_json", |b| {
        b.iter_custom(|n| cpu_time(n, || pipeline(&one, &small, black_box(&event), now)))
    });
    group.finish();
}

/// What `Pipeline::prepare` does for one event before the outbox write: route it, then
/// per hit the event as JSON text (stored with each message), per sink the template
/// resolved and rendered to JSON text. Keep it in step with the pipeline.
fn pipeline(
    rules: &Rules,
    templates: &Templates,
    event: &Event,
    now: &str,
) -> Vec<(Arc<str>, Result<String, alert_router::render::RenderError>)> {
    let hits = rules.route_shared(Arc::new(event.clone()), &mut |_, _| {});
    let mut out = Vec::with_capacity(2);
    let mut written: Option<(Arc<Event>, Arc<str>)> = None;
    for hit in hits {
        let text = match &written {
            Some((e, text)) if Arc::ptr_eq(e, &hit.event) => text.clone(),
            _ => {
                let text: Arc<str> = hit.event.to_json_string().into();
                written = Some((hit.event.clone(), text.clone()));
                text
            }
        };
        let value = event_value(&hit.event);
        let rule = &rules.routes()[hit.route].name;
        for sink in &hit.sinks {
            if let Some(id) = templates.resolve(sink, "console", &hit.event.kind) {
                let ctx = context_with(value.clone(), rule, sink, "console", now);
                out.push((text.clone(), templates.render_json(id, &ctx)));
            }
        }
    }
    out
}

criterion_group!(benches, bench);
criterion_main!(benches);
