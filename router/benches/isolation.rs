//! What `isolation: process` costs per delivery: the shipped console plugin writing one
//! JSON line to /dev/null, called in the router's process, then in a process of its own
//! (a round trip over the socket per delivery).
//!
//! `cargo build --release -p alert-router -p alert-router-sink-console`, then
//! `cargo bench -p alert-router --bench isolation`. Wall time: the round trip is what
//! the sink's worker waits for, and the child's work happens on the other core.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alert_router::plugins::{Catalog, Delivery, HostServices, Instance, ProcessOptions};
use alert_router_plugin::HostError;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

/// `target/release`, where cargo put the router and the console plugin.
fn release_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench's path");
    // target/release/deps/<bench>
    exe.parent()
        .and_then(Path::parent)
        .expect("target/release")
        .to_path_buf()
}

struct NoHost;

impl HostServices for NoHost {
    fn query(&self, _: &str, _: &str) -> Result<String, HostError> {
        Err(HostError::unavailable("no host in the bench"))
    }
    fn emit(&self, _: &str, _: &[u8]) -> Result<String, HostError> {
        Err(HostError::unavailable("no host in the bench"))
    }
    fn render(&self, _: &str, _: &str, _: &[u8]) -> Result<String, HostError> {
        Err(HostError::unavailable("no host in the bench"))
    }
    fn request(&self, _: &str, _: &str, _: &str, _: &[u8]) -> Result<String, HostError> {
        Err(HostError::unavailable("no host in the bench"))
    }
}

fn deliver_in(c: &mut Criterion, name: &str, mut instance: Instance) {
    let message = json!({
        "id": "bench:console", "sink": "console", "attempt": 1,
        "payload": {"text": "trade_closed ETH/USDT +$200.00"},
        "event": {"type": "trade_closed", "symbol": "ETH/USDT", "pnl": 200}
    })
    .to_string();
    c.bench_function(name, |b| {
        b.iter(|| {
            let outcome = instance.deliver(message.as_bytes());
            assert_eq!(outcome, Delivery::Ok);
        })
    });
}

fn isolation(c: &mut Criterion) {
    let dir = release_dir();
    let copies = std::env::temp_dir();
    let catalog = Catalog::new(vec![dir.clone()]).strict_modes(false);
    let console = catalog.load("console").expect(
        "libconsole.so in target/release: cargo build --release -p alert-router-sink-console",
    );
    let settings = json!({"path": "/dev/null", "format": "json"});
    let in_process = console
        .create("console", &settings, Arc::new(NoHost))
        .expect("an in-process instance");
    deliver_in(c, "deliver/in-process", in_process);
    let options = ProcessOptions {
        program: dir.join("alert-router"),
        copies,
        strict: false,
        deliver_timeout: Duration::from_secs(10),
    };
    let isolated = console
        .create_isolated("console", &settings, Arc::new(NoHost), options)
        .expect("an instance in a process of its own: cargo build --release -p alert-router");
    deliver_in(c, "deliver/process", isolated);
}

criterion_group!(benches, isolation);
criterion_main!(benches);
