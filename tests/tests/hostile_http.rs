//! End to end: the HTTP API against clients that do not play fair (issue 17). A slow or
//! idle client is cut at the header-read timeout and a crowd past the connection limit
//! gets 503 while the API stays up; a body announced too large is refused at once, in
//! JSON; a web page the operator opens cannot post (another site's `Origin`, a form or
//! text body, a rebound DNS name); and listening off loopback needs a token or an
//! explicit `server.insecure: true`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alert_router::api::{BODY_READ_TIMEOUT, HEADER_READ_TIMEOUT};
use alert_router_tests::harness::{
    Router, dir_with, eventually_async, router_binary, run_cli, run_refused_with,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ALL_TO_CONSOLE: &str = "routes:\n  - name: all\n    to: [console]\n";
const TEXT_TEMPLATE: &str = "text: \"{{ event.type }}\"\n";
const FILES: [(&str, &str); 2] = [
    ("rules/a.yaml", ALL_TO_CONSOLE),
    ("templates/console/default.yaml", TEXT_TEMPLATE),
];

/// A router config with `server` (a YAML mapping's body, or empty) and a console sink.
fn config(server: &str) -> String {
    format!(
        "server: {{{server}}}\nplugins: {{dirs: [\"{{plugins}}\"]}}\nrules: rules\ntemplates: templates\nsinks:\n  console:\n    plugin: console\n    settings: {{path: \"{{dir}}/out.jsonl\", format: json}}\n"
    )
}

/// `host:port` of a router's URL.
fn authority(router: &Router) -> String {
    router
        .url
        .strip_prefix("http://")
        .expect("an http:// URL")
        .to_owned()
}

/// Reads from `stream` until the peer closes it (EOF or a reset), up to `deadline`: what
/// was read, or `None` when it was still open then.
async fn read_until_closed(stream: &mut TcpStream, deadline: Instant) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `request` as is on a new connection and reads the answer until the router
/// closes it (or 5 s pass): (status, body as JSON or Null, the whole answer as text).
async fn raw_exchange(addr: &str, request: &[u8]) -> (u16, Value, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send the request");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the head and the body its content-length announces are in, or the end.
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())
                    .flatten()
            });
            if length.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body, text)
}

#[tokio::test]
async fn a_half_sent_request_and_an_idle_connection_are_cut_at_the_header_timeout() {
    let router = Router::start(&config(""), &FILES).await;
    let addr = authority(&router);
    let mut half = TcpStream::connect(&addr).await.expect("connect");
    half.write_all(b"GET /v1/sta")
        .await
        .expect("half a request line");
    let mut idle = TcpStream::connect(&addr).await.expect("connect");
    // A kept-alive connection waiting for its next request.
    let mut kept = TcpStream::connect(&addr).await.expect("connect");
    let healthz = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    kept.write_all(healthz.as_bytes()).await.expect("a request");
    let opened = Instant::now();

    // Meanwhile the API answers everyone else.
    let status = router.get_json("/v1/status").await;
    assert!(status["sinks"]["console"].is_object(), "{status}");

    let deadline = opened + HEADER_READ_TIMEOUT + Duration::from_secs(5);
    let cut = read_until_closed(&mut half, deadline).await;
    assert!(
        cut.is_some(),
        "a half-sent request still holds its connection after {:?}",
        opened.elapsed()
    );
    assert!(
        read_until_closed(&mut idle, deadline).await.is_some(),
        "an idle connection is still open after {:?}",
        opened.elapsed()
    );
    let answered = read_until_closed(&mut kept, deadline).await;
    assert!(
        answered
            .as_deref()
            .is_some_and(|a| a.starts_with(b"HTTP/1.1 200")),
        "a kept-alive connection is still open after {:?}, or got no answer: {answered:?}",
        opened.elapsed()
    );
    assert!(
        opened.elapsed() >= HEADER_READ_TIMEOUT - Duration::from_secs(1),
        "cut before the timeout: {:?}",
        opened.elapsed()
    );
}

#[tokio::test]
async fn a_trickled_body_is_answered_408_at_the_body_timeout() {
    let router = Router::start(&config(""), &FILES).await;
    let addr = authority(&router);
    let mut slow = TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"type\": "
    );
    slow.write_all(head.as_bytes())
        .await
        .expect("the head and a bit");
    let sent = Instant::now();
    assert_eq!(router.post_events(r#"{"type": "meanwhile"}"#).await.0, 202);

    let answer = read_until_closed(&mut slow, sent + BODY_READ_TIMEOUT + Duration::from_secs(5))
        .await
        .map(|a| String::from_utf8_lossy(&a).into_owned());
    let Some(answer) = answer else {
        panic!(
            "a trickled body still holds its connection after {:?}",
            sent.elapsed()
        );
    };
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("\"error\":\"the request body did not arrive within 30 s"),
        "{answer}"
    );
}

/// A router started with an open-file limit of `nofile` on a config written to `dir`,
/// killed when dropped.
struct Limited {
    child: Child,
    addr: String,
}

impl Limited {
    async fn start(dir: &Path, nofile: u32) -> Limited {
        let stdout = dir.join("stdout.log");
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(router_binary())
            .args(["--config", "router.yaml", "run", "--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .env("ALERT_ROUTER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout log"))
            .stderr(std::fs::File::create(dir.join("stderr.log")).expect("stderr log"))
            .spawn()
            .expect("start the router under sh");
        let mut limited = Limited {
            child,
            addr: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&stdout).unwrap_or_default();
            if let Some(url) = text
                .lines()
                .find_map(|l| l.strip_prefix("alert-router listening on http://"))
            {
                limited.addr = url.to_owned();
                return limited;
            }
            if let Ok(Some(status)) = limited.child.try_wait() {
                panic!(
                    "the router exited with {status}: {}",
                    std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the router did not listen in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn connections_past_the_limit_get_a_503_and_the_api_comes_back() {
    let dir = dir_with(&[("router.yaml", &config("")), FILES[0], FILES[1]]);
    // Half of 256 descriptors: 128 connections at once. 300 idle clients would take
    // every descriptor the router has if it accepted them all.
    let router = Limited::start(dir.path(), 256).await;
    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(TcpStream::connect(&router.addr).await.expect("connect"));
    }
    let request = format!(
        "GET /v1/status HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        router.addr
    );
    let (status, body, text) = raw_exchange(&router.addr, request.as_bytes()).await;
    assert_eq!(status, 503, "{text}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("128 connections")),
        "{text}"
    );
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 2"),
        "{text}"
    );

    drop(held);
    let client = reqwest::Client::new();
    let url = format!("http://{}/v1/status", router.addr);
    eventually_async(Duration::from_secs(10), "the API to answer again", || {
        let get = client.get(&url).send();
        async move { get.await.ok().filter(|r| r.status() == 200) }
    })
    .await;
}

#[tokio::test]
async fn a_body_announced_too_large_gets_a_json_413_at_once() {
    let router = Router::start(&config("max_body: 1KiB"), &FILES).await;
    let addr = authority(&router);
    for expect in ["Expect: 100-continue\r\n", ""] {
        let request = format!(
            "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n{expect}Connection: close\r\n\r\n"
        );
        let started = Instant::now();
        let (status, body, text) = raw_exchange(&addr, request.as_bytes()).await;
        assert_eq!(status, 413, "with {expect:?}: {text}");
        assert!(started.elapsed() < Duration::from_secs(2), "{text}");
        assert!(!text.contains("100 Continue"), "{text}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("999999999 bytes") && error.contains("server.max_body (1024 bytes)"),
            "{text}"
        );
        assert_eq!(body["limit"], 1024, "{text}");
    }

    // A body sent in chunks, with no length announced, is cut at the limit: JSON too.
    let chunk = format!("{{\"type\": \"big\", \"blob\": \"{}\"}}", "x".repeat(2000));
    let request = format!(
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (status, body, text) = raw_exchange(&addr, request.as_bytes()).await;
    assert_eq!(status, 413, "{text}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("server.max_body (1024 bytes)")),
        "{text}"
    );
}

#[tokio::test]
async fn a_web_page_cannot_post_nor_reach_the_api_by_another_name() {
    let router = Router::start(&config(""), &FILES).await;
    let addr = authority(&router);
    let port = addr
        .rsplit_once(':')
        .map(|(_, p)| p.to_owned())
        .unwrap_or_default();
    let client = reqwest::Client::new();
    let post = |content_type: &'static str, body: &'static str| {
        client
            .post(format!("{}/v1/events", router.url))
            .header("content-type", content_type)
            .body(body)
    };
    let answer = |resp: reqwest::Response| async move {
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    };

    // A form or text body is what a page can send without asking: refused.
    for (content_type, body) in [
        ("text/plain", r#"{"type": "x"}"#),
        ("application/x-www-form-urlencoded", r#"{"type": "x"}"#),
        ("multipart/form-data; boundary=b", "--b--"),
    ] {
        let (status, body) = answer(post(content_type, body).send().await.expect("post")).await;
        assert_eq!(status, 415, "{content_type}: {body}");
        assert_eq!(
            body["accepted"],
            json!(["application/json", "application/x-ndjson"]),
            "{body}"
        );
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains(content_type)),
            "{body}"
        );
    }
    // What producers send is taken.
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "application/x-ndjson",
    ] {
        let (status, body) = answer(
            post(content_type, r#"{"type": "ok"}"#)
                .send()
                .await
                .expect("post"),
        )
        .await;
        assert_eq!(status, 202, "{content_type}: {body}");
    }
    let reload = client
        .post(format!("{}/v1/reload", router.url))
        .header("content-type", "text/plain")
        .send()
        .await
        .expect("reload");
    assert_eq!(reload.status().as_u16(), 415);

    // Another site's page (CSRF): refused, whatever it posts.
    for origin in [
        "http://evil.example",
        "null",
        &format!("http://localhost:{}", 1),
    ] {
        let (status, body) = answer(
            post("application/json", r#"{"type": "x"}"#)
                .header("origin", origin)
                .send()
                .await
                .expect("post"),
        )
        .await;
        assert_eq!(status, 403, "{origin}: {body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("another site")),
            "{body}"
        );
    }
    // The router's own origin is not another site.
    let (status, body) = answer(
        post("application/json", r#"{"type": "ok"}"#)
            .header("origin", format!("http://{addr}"))
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(status, 202, "{body}");

    // A name that is not this router's (DNS rebinding): refused without a token...
    let rebound = client
        .get(format!("{}/v1/status", router.url))
        .header("host", format!("evil.example:{port}"))
        .send()
        .await
        .expect("get");
    assert_eq!(rebound.status().as_u16(), 403);
    let body: Value = rebound.json().await.expect("JSON");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("evil.example") && e.contains("server.token")),
        "{body}"
    );
    // ... while loopback names and addresses are this router.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "localhost".to_owned(),
    ] {
        let resp = client
            .get(format!("{}/v1/status", router.url))
            .header("host", &host)
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status().as_u16(), 200, "{host}");
    }
}

#[tokio::test]
async fn with_a_token_any_name_reaches_the_api_but_no_other_site() {
    let router = Router::start(&config("token: s3cret-t0ken"), &FILES).await;
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{}/v1/status", router.url))
        .header("host", "alerts.internal:9470")
        .bearer_auth("s3cret-t0ken")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status().as_u16(), 200);
    let resp = client
        .post(format!("{}/v1/events", router.url))
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .bearer_auth("s3cret-t0ken")
        .body(r#"{"type": "x"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 403);
}

#[tokio::test]
async fn listening_off_loopback_needs_a_token_or_an_explicit_insecure() {
    let open = dir_with(&[
        ("router.yaml", &config("listen: \"0.0.0.0:0\"")),
        FILES[0],
        FILES[1],
    ]);
    let problem = "router.yaml:1:18: server.token: required because server.listen (0.0.0.0:0) is not a loopback address";
    let (code, stdout, stderr) = run_cli(open.path(), &["check"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.starts_with(problem), "{stdout}");
    assert!(stdout.contains("server.insecure: true"), "{stdout}");
    let (code, stderr) = run_refused_with(open.path(), &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(problem), "{stderr}");

    // `run --listen` counts as the listen address.
    let closed = dir_with(&[("router.yaml", &config("")), FILES[0], FILES[1]]);
    let (code, stderr) = run_refused_with(closed.path(), &["--listen", "0.0.0.0:0"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "server.token: required because --listen 0.0.0.0:0 is not a loopback address"
        ),
        "{stderr}"
    );

    // A token, or saying so, lets it start.
    for server in [
        "listen: \"0.0.0.0:0\", token: s3cret-t0ken",
        "listen: \"0.0.0.0:0\", insecure: true",
    ] {
        let dir = dir_with(&[("router.yaml", &config(server)), FILES[0], FILES[1]]);
        let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
        assert_eq!(code, 0, "{server}: {stdout}{stderr}");
        let router = Router::start_on_configured_listen(&config(server), &FILES).await;
        let health = reqwest::get(format!(
            "{}/healthz",
            router.url.replace("0.0.0.0", "127.0.0.1")
        ))
        .await
        .expect("healthz");
        assert_eq!(health.status().as_u16(), 200, "{server}");
    }
}
