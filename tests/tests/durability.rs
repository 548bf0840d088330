//! Nothing answered `202` is lost: across `kill -9`, a sink that is down, a permanent
//! failure, SIGTERM, and a producer that posts the same event twice. Each test runs the
//! router binary on a storage directory of its own, with the webhook sink pointed at a
//! fake receiver that records every message by its idempotency key.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use alert_router_tests::fake_webhook::{FakeWebhook, Reply};
use alert_router_tests::harness::{Router, dir_with, eventually, read_json_lines, run_cli};
use serde_json::{Value, json};

/// A router with the console sink (a JSON-lines file) and a webhook sink, every event
/// to both. `hook_extra` goes into the webhook sink's definition (a rate limit, say) and
/// `storage_extra` under `storage:`.
fn config(hook_url: &str, hook_extra: &str, storage_extra: &str) -> String {
    format!(
        r#"plugins: {{dirs: ["{{plugins}}"]}}
storage:
  path: data
{storage_extra}
rules: rules.yaml
templates: "{{repo}}/templates"
sinks:
  console:
    plugin: console
    settings: {{path: "{{dir}}/out.jsonl", format: json}}
  hook:
    plugin: webhook
    retry: {{max_attempts: 1000, initial_backoff: 50ms, max_backoff: 200ms}}
{hook_extra}
    settings: {{url: "{hook_url}", timeout: 5s}}
"#
    )
}

const RULES: &str = "routes:\n  - name: all\n    to: [console, hook]\n";

fn event(id: &str) -> Value {
    json!({"type": "trade_opened", "id": id, "symbol": "BTC/USDT", "side": "BUY",
           "entry_price": 45000.0, "quantity": 0.1, "strategy": "load"})
}

/// Event ids the fake accepted, in order, and how many repeats it turned away.
fn hook_ids(hook: &FakeWebhook) -> Vec<String> {
    hook.accepted()
        .iter()
        .map(|a| {
            a.idempotency_key
                .strip_suffix(":hook")
                .unwrap_or(&a.idempotency_key)
                .to_owned()
        })
        .collect()
}

/// Event ids in the console sink's file, in order (repeats included).
fn console_ids(router: &Router) -> Vec<String> {
    read_json_lines(&router.dir.path().join("out.jsonl"))
        .iter()
        .filter_map(|l| l["event"]["id"].as_str().map(str::to_owned))
        .collect()
}

fn queued(status: &Value) -> u64 {
    status["outbox"]["queued"].as_u64().unwrap_or(u64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_event_survives_kill_9_and_is_delivered_to_every_sink() {
    let hook = FakeWebhook::start(None).await;
    // A slow receiver: messages pile up in the outbox while the router is killed.
    hook.set_delay(Duration::from_millis(3));
    let dir = dir_with(&[
        ("router.yaml", &config(&hook.url(), "", "")),
        ("rules.yaml", RULES),
    ]);
    let mut router = Router::start_in(dir).await;
    let client = reqwest::Client::new();
    let mut acked: Vec<String> = Vec::new();
    let mut next = 0u64;
    const KILLS: usize = 4;
    for cycle in 0..KILLS {
        // A producer posts one event per request until the router dies under it.
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (url, client, stop) = (router.url.clone(), client.clone(), stop.clone());
            let first = next;
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut n = first;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("ev-{n}");
                    n += 1;
                    let sent = client
                        .post(format!("{url}/v1/events"))
                        .json(&event(&id))
                        .send()
                        .await;
                    match sent {
                        Ok(resp) if resp.status().as_u16() == 202 => acked.push(id),
                        Ok(resp) => panic!("unexpected answer {}", resp.status()),
                        Err(_) => break, // the router is gone; this one was not acknowledged
                    }
                }
                (acked, n)
            })
        };
        // Kill it mid-stream, once it has taken a few hundred events in this run.
        let before = acked.len();
        let target = 300;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let taken = router.get_json("/v1/status").await["events"]["accepted"]
                .as_u64()
                .unwrap_or(0);
            if taken >= target {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: the router took only {taken} events in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        router.kill();
        stop.store(true, Ordering::Relaxed);
        let (ids, n) = producer.await.expect("the producer task");
        next = n;
        acked.extend(ids);
        assert!(acked.len() > before, "cycle {cycle} acknowledged nothing");
        router.restart().await;
    }
    // The last run delivers everything that waits.
    router
        .status_until("the outbox to empty after the last restart", |s| {
            queued(s) == 0
        })
        .await;
    let delivered_hook: HashSet<String> = hook_ids(&hook).into_iter().collect();
    let console = console_ids(&router);
    let delivered_console: HashSet<&String> = console.iter().collect();
    let lost_hook: Vec<&String> = acked
        .iter()
        .filter(|id| !delivered_hook.contains(*id))
        .collect();
    let lost_console: Vec<&String> = acked
        .iter()
        .filter(|id| !delivered_console.contains(*id))
        .collect();
    assert!(
        lost_hook.is_empty() && lost_console.is_empty(),
        "acknowledged but never delivered: webhook {lost_hook:?}, console {lost_console:?}"
    );
    let console_repeats = console.len() - delivered_console.len();
    println!(
        "{} events acknowledged over {KILLS} kill -9s; repeats after the crashes: webhook {} \
         (turned away by its idempotency key), console {console_repeats}",
        acked.len(),
        hook.duplicates()
    );
    // Only the message in flight at a kill may repeat, one per sink per crash: the
    // deliveries whose marks the kill cut short are marked at the next start from the
    // record of what the plugin took (outbox/in_flight.rs), not sent again.
    assert!(
        hook.duplicates() <= KILLS,
        "webhook repeats: {}",
        hook.duplicates()
    );
    assert!(
        console_repeats <= KILLS,
        "console repeats: {console_repeats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_is_down_keeps_its_messages_on_disk_and_gets_them_in_order_later() {
    let mut hook = FakeWebhook::start(None).await;
    hook.answer_all(Some(Reply::Unavailable {
        retry_after: "1".into(),
    }));
    const EVENTS: usize = 10_000;
    let dir = dir_with(&[
        (
            "router.yaml",
            &config(
                &hook.url(),
                "    rate_limit: {rate: 2000/s, burst: 50}\n    max_queue: 10000",
                "",
            ),
        ),
        ("rules.yaml", RULES),
    ]);
    let router = Router::start_in(dir).await;
    // 4 KiB of text per event: 10,000 of them would be ~80 MiB held in memory.
    let padding = "x".repeat(4096);
    let batch = |from: usize, n: usize| -> String {
        (from..from + n)
            .map(|i| {
                let mut e = event(&format!("down-{i:05}"));
                e["note"] = json!(padding);
                e.to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (status, _) = router.post_events(batch(0, 500)).await;
    assert_eq!(status, 202);
    router
        .status_until("the webhook to report the outage", |s| {
            s["sinks"]["hook"]["healthy"] == json!(false)
        })
        .await;
    hook.stop().await; // now the port refuses connections
    let rss_before = router.rss_kib();
    for from in (500..EVENTS).step_by(500) {
        let (status, body) = router.post_events(batch(from, 500)).await;
        assert_eq!(status, 202, "{body}");
    }
    let status = router
        .status_until("the hook's messages to wait", |s| {
            s["sinks"]["hook"]["queued"] == json!(EVENTS)
        })
        .await;
    assert!(
        status["sinks"]["hook"]["queued_bytes"]
            .as_u64()
            .unwrap_or(0)
            > 40 << 20
    );
    let rss_after = router.rss_kib();
    let grew_mib = (rss_after.saturating_sub(rss_before)) as f64 / 1024.0;
    println!(
        "RSS with {EVENTS} messages (~{} MiB) waiting on disk: {:.1} MiB -> {:.1} MiB",
        status["outbox"]["queued_bytes"].as_u64().unwrap_or(0) >> 20,
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    assert!(
        grew_mib < 32.0,
        "memory grew {grew_mib:.1} MiB while 9,500 messages of ~8 KiB queued"
    );

    // The webhook's share of the outbox is full (max_queue 10,000): a batch that does
    // not fit is refused whole, with when to try again.
    let client = reqwest::Client::new();
    let refused = client
        .post(format!("{}/v1/events", router.url))
        .body(batch(EVENTS, 600))
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let text = refused.text().await.unwrap_or_default();
    assert!(text.contains("max_queue is 10000"), "{text}");

    // Back up: everything arrives, in the order it was accepted, within the rate limit.
    hook.answer_all(None);
    hook.restart().await;
    eventually(
        Duration::from_secs(60),
        "every message at the webhook",
        || (hook.accepted_count() >= EVENTS).then_some(()),
    )
    .await;
    let ids = hook_ids(&hook);
    let expected: Vec<String> = (0..EVENTS).map(|i| format!("down-{i:05}")).collect();
    assert_eq!(ids, expected, "delivered in order, each once");
    let times: Vec<Instant> = hook.accepted().iter().map(|a| a.at).collect();
    let mut start = 0;
    for end in 0..times.len() {
        while times[end].duration_since(times[start]) >= Duration::from_secs(1) {
            start += 1;
        }
        assert!(
            end - start < 2000 + 50 + 5,
            "{} deliveries within one second (the limit is 2000/s, burst 50)",
            end - start + 1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_becomes_a_dead_letter_after_one_attempt_and_can_be_retried() {
    let hook = FakeWebhook::start(None).await;
    hook.script([Reply::BadRequest("field `price` must be a string".into())]);
    let dir = dir_with(&[
        ("router.yaml", &config(&hook.url(), "", "")),
        ("rules.yaml", RULES),
    ]);
    let router = Router::start_in(dir).await;
    let (status, _) = router.post_events(event("refused-1").to_string()).await;
    assert_eq!(status, 202);
    let status = router
        .status_until("a dead letter", |s| {
            s["sinks"]["hook"]["dead_letters"] == json!(1)
        })
        .await;
    assert_eq!(hook.requests().len(), 1, "one attempt, no retries");
    let recent = &status["sinks"]["hook"]["recent_dead_letters"][0];
    assert_eq!(recent["id"], json!("refused-1:hook"));
    assert!(
        recent["error"]
            .as_str()
            .is_some_and(|e| e.contains("field `price` must be a string")),
        "{recent}"
    );

    // The API lists it with its payload; the CLI finds the running router by --url.
    let listed = router.get_json("/v1/dead-letters?sink=hook").await;
    let letter = &listed["dead_letters"][0];
    assert_eq!(letter["attempts"], json!(1));
    assert_eq!(letter["payload"]["event"]["id"], json!("refused-1"));
    let dir = router.dir.path();
    let (code, out, err) = run_cli(
        dir,
        &[
            "--config",
            "router.yaml",
            "dead-letters",
            "--url",
            &router.url,
            "list",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("refused-1:hook") && out.contains("must be a string"),
        "{out}"
    );

    let (code, out, err) = run_cli(
        dir,
        &[
            "--config",
            "router.yaml",
            "dead-letters",
            "--url",
            &router.url,
            "retry",
            "--id",
            "refused-1:hook",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 dead letter(s) put back"), "{out}");
    eventually(Duration::from_secs(20), "the retried message", || {
        (hook_ids(&hook) == ["refused-1"]).then_some(())
    })
    .await;
    router
        .status_until("no dead letters left", |s| {
            s["sinks"]["hook"]["dead_letters"] == json!(0)
        })
        .await;

    // Dropping: another refusal, dropped by sink through the API.
    hook.script([Reply::BadRequest("no".into())]);
    router.post_events(event("refused-2").to_string()).await;
    router
        .status_until("the second dead letter", |s| {
            s["sinks"]["hook"]["dead_letters"] == json!(1)
        })
        .await;
    let dropped = reqwest::Client::new()
        .post(format!("{}/v1/dead-letters/drop", router.url))
        .json(&json!({"sink": "hook"}))
        .send()
        .await
        .expect("POST drop")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(dropped, json!({"dropped": 1}));
    let bad = reqwest::Client::new()
        .post(format!("{}/v1/dead-letters/retry", router.url))
        .json(&json!({"sink": "hook", "all": true}))
        .send()
        .await
        .expect("POST retry");
    assert_eq!(bad.status().as_u16(), 400, "a selector says one thing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_until_the_deadline_and_the_rest_waits_for_the_next_start() {
    let hook = FakeWebhook::start(None).await;
    let dir = dir_with(&[
        (
            "router.yaml",
            &config(&hook.url(), "    rate_limit: {rate: 20/s, burst: 1}", ""),
        ),
        ("rules.yaml", RULES),
    ]);
    let mut router = Router::start_in_with_env(dir, &[("ALERT_ROUTER_DRAIN", "1s")]).await;
    let body: Vec<String> = (0..100)
        .map(|i| event(&format!("drain-{i:03}")).to_string())
        .collect();
    let (status, _) = router.post_events(body.join("\n")).await;
    assert_eq!(status, 202);
    eventually(Duration::from_secs(20), "a few deliveries", || {
        (hook.accepted_count() >= 5).then_some(())
    })
    .await;
    let asked = Instant::now();
    assert!(router.terminate(), "the router exits 0 on SIGTERM");
    let took = asked.elapsed();
    let delivered = hook.accepted_count();
    assert!(
        delivered < 100,
        "at 20/s, 100 messages cannot all go in a 1 s drain"
    );
    assert!(
        took < Duration::from_secs(8),
        "the drain deadline is 1 s; stopping took {took:?}"
    );
    assert!(
        router.stderr().contains("stay in the outbox"),
        "{}",
        router.stderr()
    );
    // The next start delivers the rest, in order, none lost.
    router.restart().await;
    eventually(Duration::from_secs(30), "all 100 at the webhook", || {
        (hook.accepted_count() >= 100).then_some(())
    })
    .await;
    let expected: Vec<String> = (0..100).map(|i| format!("drain-{i:03}")).collect();
    assert_eq!(hook_ids(&hook), expected);
    assert!(hook.duplicates() <= 1, "{} repeats", hook.duplicates());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_event_id_is_accepted_but_delivered_once_even_across_a_restart() {
    let hook = FakeWebhook::start(None).await;
    let dir = dir_with(&[
        ("router.yaml", &config(&hook.url(), "", "")),
        ("rules.yaml", RULES),
    ]);
    let mut router = Router::start_in(dir).await;
    let (status, body) = router.post_events(event("once").to_string()).await;
    assert_eq!((status, &body["ids"]), (202, &json!(["once"])));
    eventually(Duration::from_secs(20), "the first delivery", || {
        (hook.accepted_count() == 1).then_some(())
    })
    .await;
    assert!(router.terminate());
    router.restart().await;
    // The producer did not hear the first answer and posts again: accepted, not resent.
    let (status, body) = router.post_events(event("once").to_string()).await;
    assert_eq!((status, &body["ids"]), (202, &json!(["once"])));
    router.post_events(event("after").to_string()).await;
    eventually(Duration::from_secs(20), "the next event", || {
        (hook.accepted_count() == 2).then_some(())
    })
    .await;
    assert_eq!(hook_ids(&hook), ["once", "after"]);
    assert_eq!(hook.duplicates(), 0);
    let status = router.get_json("/v1/status").await;
    assert_eq!(status["events"]["duplicates"], json!(1));
    let console: HashMap<String, usize> =
        console_ids(&router)
            .into_iter()
            .fold(HashMap::new(), |mut m, id| {
                *m.entry(id).or_default() += 1;
                m
            });
    assert_eq!(console.get("once"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_refuses_whole_batches_by_count_and_by_bytes() {
    // Nothing listens on the webhook's port: every message waits.
    let closed = "http://127.0.0.1:9/hooks/closed";
    let dir = dir_with(&[
        (
            "router.yaml",
            &config(closed, "", "  max_messages: 6\n  max_bytes: 1MiB"),
        ),
        ("rules.yaml", "routes:\n  - name: all\n    to: [hook]\n"),
    ]);
    let router = Router::start_in(dir).await;
    let batch = |ids: &[&str]| -> String {
        ids.iter()
            .map(|id| event(id).to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (status, _) = router.post_events(batch(&["f1", "f2", "f3", "f4"])).await;
    assert_eq!(status, 202);
    // Three more would make seven: the batch is refused whole, f5 included.
    let (status, body) = router.post_events(batch(&["f5", "f6", "f7"])).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("storage.max_messages is 6")),
        "{body}"
    );
    let (status, _) = router.post_events(batch(&["f5", "f6"])).await;
    assert_eq!(status, 202, "what fits is taken, with the same ids");

    // By bytes: one event of 2 MiB does not fit in 1 MiB.
    let mut big = event("big");
    big["note"] = json!("y".repeat(2 << 20));
    let dir2 = dir_with(&[
        ("router.yaml", &config(closed, "", "  max_bytes: 1MiB")),
        ("rules.yaml", "routes:\n  - name: all\n    to: [hook]\n"),
    ]);
    let router2 = Router::start_in(dir2).await;
    let (status, body) = router2.post_events(big.to_string()).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("storage.max_bytes")),
        "{body}"
    );
    let status = router.get_json("/v1/status").await;
    assert_eq!(status["outbox"]["queued"], json!(6));
    assert_eq!(status["events"]["rejected"], json!(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_switched_off_and_on_again_takes_its_waiting_messages_at_once() {
    let hook = FakeWebhook::start(None).await;
    // The first attempt is told to come back in an hour.
    hook.script([Reply::Unavailable {
        retry_after: "3600".into(),
    }]);
    let dir = dir_with(&[
        ("router.yaml", &config(&hook.url(), "", "")),
        ("rules.yaml", RULES),
    ]);
    let on = std::fs::read_to_string(dir.path().join("router.yaml")).expect("router.yaml");
    let off = on.replace(
        "    plugin: webhook\n",
        "    plugin: webhook\n    enabled: false\n",
    );
    let router = Router::start_in(dir).await;
    let (status, _) = router.post_events(event("paused-1").to_string()).await;
    assert_eq!(status, 202);
    eventually(Duration::from_secs(20), "the first attempt", || {
        (hook.requests().len() == 1).then_some(())
    })
    .await;
    let client = reqwest::Client::new();
    let reload = |text: String| {
        let (client, url, path) = (
            client.clone(),
            router.url.clone(),
            router.dir.path().join("router.yaml"),
        );
        async move {
            std::fs::write(path, text).expect("write router.yaml");
            let resp = client
                .post(format!("{url}/v1/reload"))
                .send()
                .await
                .expect("POST /v1/reload");
            assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
        }
    };
    // Off: its worker, paused for an hour, keeps the message waiting in the outbox.
    reload(off).await;
    // On again: the new worker takes over at once instead of waiting out the pause.
    reload(on).await;
    eventually(
        Duration::from_secs(10),
        "the waiting message delivered",
        || (hook_ids(&hook) == ["paused-1"]).then_some(()),
    )
    .await;
}
