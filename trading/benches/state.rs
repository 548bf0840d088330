//! The state store on the ingest path: `apply` for a `trade_closed` (in memory, and with
//! the SQLite writer behind it, so the figure includes any wait for a full queue), for a
//! `portfolio_update`, and for a custom event, which must cost next to nothing; plus two
//! queries over a full trade history.
//!
//! `cargo bench -p alert-router --bench state`. The router's budget is 90,000 events/s.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use alert_router_domain::{OwnedEvent as Event, format_time};
use alert_router_trading::{EVENT_TYPES, StateStore};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// A directory removed when the bench ends.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let dir =
            std::env::temp_dir().join(format!("alert-router-bench-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn event(value: Value) -> Event {
    Event::from_json(value, EVENT_TYPES).expect("bench event is valid")
}

fn trade_closed() -> Event {
    event(json!({
        "type": "trade_closed", "time": "2025-11-03T14:30:00Z",
        "symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500, "exit_price": 2600,
        "quantity": 2.0, "pnl": 200, "pnl_pct": 4.0, "reason": "Take Profit",
        "duration": 10800, "strategy": "RSI_MACD",
    }))
}

/// 12,000 closed trades (two a minute) and 3,000 hourly portfolio values.
fn fill(store: &StateStore) {
    let start = OffsetDateTime::now_utc() - time::Duration::days(120);
    for i in 0..12_000i64 {
        let t = start + time::Duration::seconds(30 * i);
        let pnl = if i % 3 == 0 { -40.0 } else { 25.0 };
        store.apply(&event(json!({
            "type": "trade_closed", "time": format_time(t),
            "symbol": "BTC/USDT", "side": "SELL", "entry_price": 100, "exit_price": 100.0 + pnl,
            "quantity": 1, "pnl": pnl, "pnl_pct": pnl, "strategy": "RSI_MACD",
        })));
    }
    for i in 0..3_000i64 {
        let t = start + time::Duration::hours(i);
        store.apply(&event(json!({
            "type": "portfolio_update", "time": format_time(t),
            "total_value": 10_000.0 + 300.0 * (i as f64 / 50.0).sin(),
        })));
    }
}

fn bench(c: &mut Criterion) {
    let dir = Dir::new();
    let persisted = StateStore::open(&dir.0).expect("open the bench store");
    let memory = StateStore::in_memory();
    let closed = trade_closed();
    let portfolio = event(json!({
        "type": "portfolio_update", "time": "2025-11-03T14:30:00Z",
        "total_value": 12_500.0, "cash": 4_000.0, "pnl": 2_500.0, "pnl_pct": 25.0,
    }));
    let custom = event(json!({
        "type": "disk_full", "severity": "warning", "host": "db-1", "pct": 97,
        "labels": {"env": "prod"},
    }));

    let mut group = c.benchmark_group("state/apply");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("trade_closed/in_memory", |b| {
        b.iter(|| memory.apply(black_box(&closed)))
    });
    group.bench_function("trade_closed/persisted", |b| {
        b.iter(|| persisted.apply(black_box(&closed)))
    });
    group.bench_function("portfolio_update/persisted", |b| {
        b.iter(|| persisted.apply(black_box(&portfolio)))
    });
    group.bench_function("custom/persisted", |b| {
        b.iter(|| persisted.apply(black_box(&custom)))
    });
    group.finish();
    persisted.flush().expect("flush the bench store");

    // Queries over a full history (10,000 trades) and thinned curves.
    let full = StateStore::in_memory();
    fill(&full);
    let mut group = c.benchmark_group("state/query");
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("performance", |b| {
        b.iter(|| full.query(black_box("performance"), ""))
    });
    group.bench_function("trades?limit=10", |b| {
        b.iter(|| full.query(black_box("trades"), "limit=10"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
