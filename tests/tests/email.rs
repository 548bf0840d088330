//! The email sink plugin through its Rust API (the rlib) against a real SMTP server:
//! Python's aiosmtpd, started by the test with a small handler that stores each message
//! as .eml plus a JSON summary, refuses recipients containing "reject" with 550 and
//! defers those containing "defer" with 451. Also every shipped email template, sent,
//! and the plugin loaded by the real router.
//!
//! aiosmtpd must be installed (`pip install aiosmtpd`; `.ci/run` does it): without it
//! these tests fail, they never skip.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use alert_router::render::{Markup, context};
use alert_router_plugin::{Message, Outcome, Sink};
use alert_router_tests::harness::{Router, TempDir, dir_with, eventually, plugin_dir};
use alert_router_tests::host_double::{HostDouble, Hosted};
use alert_router_tests::templates;
use email::Email;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "smtp-pw-Qx81Lm";

/// The SMTP server: aiosmtpd's Controller with our handler.
const SERVER: &str = r#"
import json, os, socket, sys, time
try:
    from aiosmtpd.controller import Controller
except ImportError:
    print("MISSING aiosmtpd", flush=True)
    sys.exit(3)
import email
from email import policy

out = sys.argv[1]

class Handler:
    def __init__(self):
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "reject" in address:
            return "550 5.1.1 <%s>: recipient address rejected: no such user" % address
        if "defer" in address:
            return "451 4.3.0 <%s>: mailbox busy, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(out, "%04d" % self.n)
        with open(base + ".eml", "wb") as f:
            f.write(envelope.content)
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        parts = {}
        for part in msg.walk():
            if not part.is_multipart():
                parts[part.get_content_type()] = part.get_content()
        summary = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                   "subject": str(msg["subject"]), "from": str(msg["from"]),
                   "to": str(msg["to"]), "message_id": str(msg["message-id"]),
                   "content_type": msg.get_content_type(), "parts": parts}
        with open(base + ".tmp", "w") as f:
            json.dump(summary, f)
        os.rename(base + ".tmp", base + ".json")
        return "250 Message accepted for delivery"

s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
print("READY %d" % port, flush=True)
try:
    sys.stdin.read()
finally:
    controller.stop()
"#;

/// A running aiosmtpd; stopped (killed) when dropped.
struct SmtpServer {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl SmtpServer {
    fn start() -> SmtpServer {
        let dir = TempDir::new("smtp");
        let script = dir.path().join("server.py");
        std::fs::write(&script, SERVER).expect("write the server script");
        let mail = dir.path().join("mail");
        std::fs::create_dir_all(&mail).expect("the mail directory");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&mail)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 must be installed to run the email tests");
        let Some(stdout) = child.stdout.take() else {
            panic!("no stdout from the SMTP server");
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(WAIT).unwrap_or_default();
        if line.starts_with("MISSING") {
            let _ = child.kill();
            panic!(
                "aiosmtpd is not importable: pip install aiosmtpd (python3 -m pip install aiosmtpd)"
            );
        }
        let Some(port) = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            panic!("the SMTP server did not start within {WAIT:?}: {line:?}");
        };
        SmtpServer { child, port, dir }
    }

    fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// The summaries of the messages accepted so far, in order.
    fn accepted(&self) -> Vec<Value> {
        accepted_in(&self.mail_dir())
    }

    /// Waits until `n` messages were accepted.
    fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let accepted = self.accepted();
            if accepted.len() >= n {
                return accepted;
            }
            assert!(
                Instant::now() < deadline,
                "{} message(s) after {WAIT:?}, expected {n}",
                accepted.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn accepted_in(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("a summary");
            serde_json::from_str(&text).expect("summary JSON")
        })
        .collect()
}

fn sink(host: &Arc<HostDouble>, settings: Value) -> Result<Hosted<Email>, String> {
    let settings = serde_json::from_value(settings).map_err(|e| e.to_string())?;
    host.create::<Email>(settings)
}

fn settings(port: u16, to: &[&str]) -> Value {
    json!({"host": "127.0.0.1", "port": port, "tls": "none",
           "from": "Alert Router <alerts@example.com>", "to": to, "timeout": "5s"})
}

fn message(id: &str, payload: Value) -> Message {
    Message {
        id: id.to_owned(),
        sink: "mail".to_owned(),
        attempt: 1,
        payload,
        event: json!({}),
    }
}

#[test]
fn email_arrives_with_envelope_subject_and_both_parts() {
    let server = SmtpServer::start();
    let host = HostDouble::new();
    let mut sink = sink(
        &host,
        settings(
            server.port,
            &["ops@example.com", "Trader <trader@example.com>"],
        ),
    )
    .expect("the email sink starts");
    let payload = json!({
        "subject": "🟢 Trade Opened: BUY BTC/USDT &amp; more",
        "text": "Strategy: RSI&lt;30 &amp; &quot;MACD&quot;",
        "html": "<p>Strategy: RSI&lt;30 &amp; &quot;MACD&quot;</p>",
    });
    assert_eq!(sink.deliver(message("msg-1", payload)), Outcome::Ok);
    let mail = &server.wait_for(1)[0];
    assert_eq!(mail["mail_from"], "alerts@example.com");
    assert_eq!(
        mail["rcpt_tos"],
        json!(["ops@example.com", "trader@example.com"])
    );
    assert_eq!(mail["subject"], "🟢 Trade Opened: BUY BTC/USDT & more");
    assert_eq!(mail["from"], "Alert Router <alerts@example.com>");
    assert_eq!(mail["message_id"], "<msg-1@alert-router>");
    assert_eq!(mail["content_type"], "multipart/alternative");
    assert_eq!(
        mail["parts"]["text/plain"].as_str().map(str::trim_end),
        Some("Strategy: RSI<30 & \"MACD\""),
        "the plain part is decoded"
    );
    assert_eq!(
        mail["parts"]["text/html"].as_str().map(str::trim_end),
        Some("<p>Strategy: RSI&lt;30 &amp; &quot;MACD&quot;</p>"),
        "the HTML part is sent as rendered"
    );
}

#[test]
fn a_550_fails_with_the_servers_reply_and_a_451_or_no_server_is_retried() {
    let server = SmtpServer::start();
    let host = HostDouble::new();
    let payload = json!({"subject": "s", "text": "t"});

    let mut rejected = sink(&host, settings(server.port, &["reject-me@example.com"]))
        .expect("the email sink starts");
    match rejected.deliver(message("m-550", payload.clone())) {
        Outcome::Fail { reason } => {
            assert!(
                reason.contains("550") && reason.contains("recipient address rejected"),
                "the server's reply: {reason}"
            );
            assert!(reason.contains("127.0.0.1:"), "names the server: {reason}");
        }
        other => panic!("a 550 must fail, got {other:?}"),
    }

    let mut deferred = sink(&host, settings(server.port, &["defer-me@example.com"]))
        .expect("the email sink starts");
    match deferred.deliver(message("m-451", payload.clone())) {
        Outcome::Retry {
            after: None,
            reason,
        } => {
            assert!(reason.contains("451"), "{reason}")
        }
        other => panic!("a 451 must be retried, got {other:?}"),
    }

    // Nothing listens on a port just freed: a connection error is retried.
    let free = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut down = sink(&host, settings(free, &["ops@example.com"])).expect("the sink starts");
    assert!(
        matches!(
            down.deliver(message("m-down", payload)),
            Outcome::Retry { .. }
        ),
        "no server is retried"
    );
    assert!(server.accepted().is_empty(), "nothing was accepted");
}

#[test]
fn bad_settings_are_refused_by_field_without_the_password() {
    let host = HostDouble::new();
    let mut base = settings(2525, &["ops@example.com"]);
    base["username"] = json!("alerts");
    base["password"] = json!(PASSWORD);
    let cases = [
        ("from", json!("alerts at example"), "settings.from"),
        ("to", json!(["ok@example.com", "bad@"]), "settings.to[1]"),
        ("to", json!([]), "settings.to"),
        ("tls", json!("ssl"), "settings.tls"),
    ];
    for (key, value, field) in cases {
        let mut settings = base.clone();
        settings[key] = value;
        let Err(error) = sink(&host, settings) else {
            panic!("{key} must be refused");
        };
        assert!(error.contains(field), "{field} not in {error}");
        assert!(!error.contains(PASSWORD), "{error}");
    }
    assert!(host.logs().iter().all(|l| !l.contains(PASSWORD)));
}

#[test]
fn the_shipped_templates_send_every_trading_event_with_values_escaped() {
    let templates = templates::shipped("email", Markup::Html);
    let server = SmtpServer::start();
    let host = HostDouble::new();
    let mut sink = sink(&host, settings(server.port, &["ops@example.com"])).expect("starts");
    let now = "2025-11-03T23:59:59Z";
    let event = |kind: &str, severity: &str, data: Value| {
        let mut event = json!({"type": kind, "severity": severity, "time": now,
                               "id": format!("id-{kind}"), "labels": {}});
        for (k, v) in data.as_object().into_iter().flatten() {
            event[k] = v.clone();
        }
        event
    };
    let events = [
        event(
            "trade_opened",
            "info",
            json!({"symbol": "BTC/USDT", "side": "BUY",
            "entry_price": 45000, "quantity": 0.5, "strategy": "RSI<30 & MACD"}),
        ),
        event(
            "trade_closed",
            "info",
            json!({"symbol": "ETH/USDT", "side": "SELL",
            "entry_price": 2500, "exit_price": 2600, "quantity": 2.0, "pnl": 200, "pnl_pct": 4.0}),
        ),
        event(
            "error",
            "critical",
            json!({"message": "exchange <down>",
            "error_type": "ConnectionError", "details": "Traceback:\n  line 1"}),
        ),
        event(
            "daily_summary",
            "info",
            json!({"total_trades": 10, "winning_trades": 6,
            "losing_trades": 4, "win_rate": 60, "total_pnl": 350.5, "date": "2025-11-03"}),
        ),
        event(
            "portfolio_update",
            "info",
            json!({"total_value": 12500, "positions": [
            {"symbol": "BTC/USDT", "side": "LONG", "quantity": 0.2, "entry_price": 45000,
             "current_price": 46500}]}),
        ),
        event(
            "performance_metrics",
            "info",
            json!({"total_return": 25.0, "sharpe_ratio": 1.85}),
        ),
        event(
            "backup_done",
            "warning",
            json!({"note": "<script>alert(1)</script>"}),
        ),
    ];
    for (i, event) in events.iter().enumerate() {
        let kind = event["type"].as_str().unwrap_or_default();
        let id = templates
            .resolve("mail", "email", kind)
            .expect("a template");
        let payload = templates
            .render(id, &context(event, "r", "mail", "email", now))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let outcome = sink.deliver(message(&format!("m{i}"), payload.clone()));
        assert_eq!(outcome, Outcome::Ok, "{kind}: {payload}");
    }
    let mail = server.wait_for(events.len());
    let subject = |i: usize| mail[i]["subject"].as_str().unwrap_or_default().to_owned();
    let part = |i: usize, kind: &str| {
        mail[i]["parts"][kind]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    for (i, m) in mail.iter().enumerate() {
        assert_eq!(m["content_type"], "multipart/alternative", "{i}: {m}");
    }
    assert!(
        subject(0).starts_with("🟢 Trade Opened: BUY BTC/USDT"),
        "{}",
        subject(0)
    );
    assert!(
        part(0, "text/plain").contains("Strategy: RSI<30 & MACD"),
        "{}",
        part(0, "text/plain")
    );
    assert!(
        part(0, "text/html").contains("RSI&lt;30 &amp; MACD"),
        "{}",
        part(0, "text/html")
    );
    assert!(
        subject(1).starts_with("✅ Trade Closed: ETH/USDT +$200.00"),
        "{}",
        subject(1)
    );
    assert!(
        part(1, "text/plain").contains("P&L: +$200.00"),
        "{}",
        part(1, "text/plain")
    );
    assert!(
        subject(2).contains("CRITICAL: ConnectionError: exchange <down>"),
        "{}",
        subject(2)
    );
    assert!(
        part(2, "text/html").contains("<pre>Traceback:"),
        "{}",
        part(2, "text/html")
    );
    assert!(
        subject(3).contains("Daily Summary 2025-11-03"),
        "{}",
        subject(3)
    );
    assert!(
        part(4, "text/html").contains("<td>BTC/USDT</td>"),
        "{}",
        part(4, "text/html")
    );
    assert!(subject(5).contains("Performance Metrics"), "{}", subject(5));
    // A custom event through default.yaml: the value is escaped in the HTML part.
    assert!(subject(6).contains("backup_done"), "{}", subject(6));
    let html = part(6, "text/html");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert!(part(6, "text/plain").contains("note: <script>alert(1)</script>"));
}

#[tokio::test]
async fn the_router_loads_the_plugin_and_mails_an_event() {
    let server = SmtpServer::start();
    let dir = dir_with(&[
        (
            "router.yaml",
            &format!(
                "plugins: {{dirs: [\"{{dir}}/plugins\"]}}\nrules: rules\ntemplates: \"{{repo}}/templates\"\nsinks:\n  mail:\n    plugin: email\n    settings: {{host: 127.0.0.1, port: {}, tls: none, from: alerts@example.com, to: [ops@example.com], timeout: 5s}}\n",
                server.port
            ),
        ),
        (
            "rules/main.yaml",
            "routes:\n  - name: main\n    to: [mail]\n",
        ),
    ]);
    std::fs::create_dir_all(dir.path().join("plugins")).expect("plugins dir");
    std::fs::copy(
        plugin_dir().join("libemail.so"),
        dir.path().join("plugins/libemail.so"),
    )
    .expect("copy the email plugin");
    let router = Router::start_in(dir).await;
    let event = json!({"type": "trade_closed", "time": "2025-11-03T17:30:00Z", "symbol": "ETH/USDT",
        "side": "SELL", "entry_price": 2500, "exit_price": 2600, "quantity": 2.0, "pnl": 200,
        "pnl_pct": 4.0, "reason": "Take <Profit> & run"});
    assert_eq!(router.post_events(event.to_string()).await.0, 202);
    let mail = eventually(WAIT, "the email", || server.accepted().into_iter().next()).await;
    assert_eq!(mail["rcpt_tos"], json!(["ops@example.com"]));
    assert_eq!(
        mail["subject"],
        "✅ Trade Closed: ETH/USDT +$200.00 (+4.00%)"
    );
    let text = mail["parts"]["text/plain"].as_str().unwrap_or_default();
    let html = mail["parts"]["text/html"].as_str().unwrap_or_default();
    assert!(text.contains("Reason: Take <Profit> & run"), "{text}");
    assert!(html.contains("Take &lt;Profit&gt; &amp; run"), "{html}");
}
