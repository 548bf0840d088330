//! Alert rules per event: 100 rules (thresholds with `for:`, counts in a window,
//! streaks, absences; each with a `match:` on the type, some with `by:` series) read
//! every event of a stream of trades, errors and portfolio updates, as
//! `Pipeline::prepare` has them do before routing. The budget is 100,000 events/s on
//! one core.
//!
//! `cargo bench -p alert-router --bench alert_rules`. Times are the benchmark thread's
//! CPU time on Linux (see `common`).

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alert_router::derive::eval::Evaluator;
use alert_router::event::Event;
use alert_router::rules::Rules;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use time::OffsetDateTime;

mod common;
use common::cpu_time;

/// 100 alert rules, 25 of each kind, over three event types.
fn hundred_rules() -> String {
    let mut yaml = String::from("alerts:\n");
    let types = ["trade_closed", "error", "portfolio_update"];
    for i in 0..100 {
        let kind = types[i % 3];
        let body = match i % 4 {
            0 => format!("threshold: \"event.n > {}\"\n    for: 5m", i * 10),
            1 => "by: [component]\n    count: {at_least: 50, within: 10m}".to_owned(),
            2 => format!("streak: {{count: 5, when: \"event.n < {i}\"}}"),
            _ => "by: [labels.bot]\n    absent: 10m".to_owned(),
        };
        yaml.push_str(&format!(
            "  - name: r{i}\n    match: {{type: {kind}}}\n    {body}\n    annotations: {{summary: \"r{i} {{{{ event.n }}}}\"}}\n"
        ));
    }
    yaml
}

fn bench(c: &mut Criterion) {
    let rules = Rules::compile(&[(PathBuf::from("bench.yaml"), hundred_rules())], &|_| true)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rules.alert_rules().len(), 100);
    let events: Vec<(Arc<Event>, Arc<str>)> = (0..300)
        .map(|i| {
            let kind = ["trade_closed", "error", "portfolio_update"][i % 3];
            let raw = json!({"type": kind, "n": i, "component": format!("c{}", i % 7),
                "labels": {"bot": format!("b{}", i % 5)}, "message": "m", "symbol": "BTC/USDT",
                "side": "BUY", "entry_price": 1, "exit_price": 2, "quantity": 1, "pnl": 1,
                "pnl_pct": 1, "total_value": 1000});
            let e =
                Event::from_json(raw, OffsetDateTime::UNIX_EPOCH).unwrap_or_else(|e| panic!("{e}"));
            let text: Arc<str> = e.to_json_string().into();
            (Arc::new(e), text)
        })
        .collect();
    let evaluator = Evaluator::default();
    let mut group = c.benchmark_group("alert_rules");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    let mut i = 0usize;
    let mut now_ms = 0i64;
    group.bench_function("100_rules_per_event", |b| {
        b.iter_custom(|n| {
            cpu_time(n, || {
                let (event, text) = &events[i % events.len()];
                i += 1;
                now_ms += 100;
                let mut alerts = Vec::new();
                evaluator.on_event(&rules, black_box(event), text, now_ms, &mut alerts);
                alerts
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
