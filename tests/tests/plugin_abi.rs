//! The plugin ABI from the host's side, through `alert_router::plugins`, with real plugins:
//! the C test plugin (built by build.rs against the header alone, also as an ABI-2 build
//! and as one from before `validate`)
//! and the Rust `flaky` plugin (a dev-dependency, so cargo builds its cdylib into the
//! `deps` directory this test binary runs from, which the catalog always searches).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alert_router::plugins::{
    Catalog, Delivery, Health, HostServices, Markup, PluginError, ProcessOptions,
};
use alert_router_plugin::HostError;
use alert_router_tests::harness::{read_json_lines, router_binary};
use serde_json::{Value, json};

/// The directory holding libctest.so (ABI 1).
fn c_dir() -> PathBuf {
    PathBuf::from(env!("AR_TEST_C_PLUGIN_DIR"))
}

/// The directory holding the libctest.so that claims ABI 2.
fn c_abi2_dir() -> PathBuf {
    PathBuf::from(env!("AR_TEST_C_PLUGIN_ABI2_DIR"))
}

/// The directory holding a libctest.so built before `validate` was appended to the
/// descriptor: its struct_size ends before the field (which refuses everything, were
/// the router to read it).
fn c_old_dir() -> PathBuf {
    PathBuf::from(env!("AR_TEST_C_PLUGIN_OLD_DIR"))
}

/// `target/<profile>/deps`, where cargo puts the cdylibs of dev-dependencies.
fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .expect("the test binary's directory")
        .to_path_buf()
}

/// A directory of its own for one test, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("plugin_abi")
            .join(format!("{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the scratch directory");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One call a plugin made into the host.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Query {
        sink: String,
        path: String,
    },
    Emit {
        sink: String,
        event: Value,
    },
    Render {
        sink: String,
        name: String,
        context: String,
    },
    Request {
        sink: String,
        method: String,
        path: String,
        body: Value,
    },
}

/// HostServices that records every call and answers with fixed text.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<Call>>,
}

const STATUS: &str = r#"{"healthy":true}"#;
const ACCEPTED: &str = r#"{"accepted":1,"ids":["e1"]}"#;
const NO_TEMPLATE: &str = "no template `ctest` in templates/c-sink/ or templates/ctest/";
const SILENCE: &str = r#"{"id":"s1","state":"active"}"#;

impl Recorder {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn push(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }
}

impl HostServices for Recorder {
    fn query(&self, sink: &str, path: &str) -> Result<String, HostError> {
        self.push(Call::Query {
            sink: sink.into(),
            path: path.into(),
        });
        match path {
            "status" => Ok(STATUS.into()),
            other => Err(HostError::not_found(format!("no resource /v1/{other}"))),
        }
    }

    fn emit(&self, sink: &str, event_json: &[u8]) -> Result<String, HostError> {
        let event = serde_json::from_slice(event_json)
            .map_err(|e| HostError::bad_request(e.to_string()))?;
        self.push(Call::Emit {
            sink: sink.into(),
            event,
        });
        Ok(ACCEPTED.into())
    }

    fn render(&self, sink: &str, name: &str, context_json: &[u8]) -> Result<String, HostError> {
        self.push(Call::Render {
            sink: sink.into(),
            name: name.into(),
            context: String::from_utf8_lossy(context_json).into_owned(),
        });
        Err(HostError::not_found(NO_TEMPLATE))
    }

    fn request(
        &self,
        sink: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<String, HostError> {
        let body =
            serde_json::from_slice(body).map_err(|e| HostError::bad_request(e.to_string()))?;
        self.push(Call::Request {
            sink: sink.into(),
            method: method.into(),
            path: path.into(),
            body,
        });
        match (method, path) {
            ("POST", "silences") => Ok(SILENCE.into()),
            _ => Err(HostError::not_found(format!("no resource /v1/{path}"))),
        }
    }
}

/// A message as the router hands it to `deliver`.
fn message(id: &str, sink: &str, payload: Value) -> Vec<u8> {
    json!({
        "id": id,
        "sink": sink,
        "attempt": 1,
        "payload": payload,
        "event": {"type": "test", "severity": "info"},
    })
    .to_string()
    .into_bytes()
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Polls the JSON lines of `path` until `done` says they are complete, or panics naming
/// `what` after 30 s.
fn wait_for_lines(path: &Path, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines = read_json_lines(path);
        if done(&lines) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; {} has {lines:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `f` with a tracing subscriber on this thread and returns what it logged.
fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (out, text)
}

#[test]
fn the_c_plugin_loads_delivers_calls_back_and_is_destroyed_once() {
    let scratch = Scratch::new("c-plugin");
    let catalog = Catalog::new(vec![c_dir()]);
    let plugin = catalog.load("ctest").expect("load libctest.so");
    assert_eq!(plugin.name(), "ctest");
    assert_eq!(plugin.version(), "0.3.1");
    assert_eq!(plugin.abi_version(), 1);
    assert_eq!(plugin.path(), c_dir().join("libctest.so"));
    assert_eq!(plugin.manifest().markup, Markup::Html);
    assert_eq!(
        plugin.manifest().description.as_deref(),
        Some("C test plugin: records every call in a file")
    );
    assert!(plugin.manifest().settings["path"].required);

    let recorder = Arc::new(Recorder::default());
    let out = scratch.path("calls.txt");
    let (created, logs) =
        capture_logs(|| plugin.create("c-sink", &json!({"path": out}), recorder.clone()));
    let mut instance = created.expect("create");
    assert!(logs.contains("ctest created"), "{logs}");
    assert!(logs.contains("INFO"), "{logs}");
    assert!(
        logs.contains("sink=\"c-sink\"") || logs.contains("sink=c-sink"),
        "{logs}"
    );
    assert!(
        logs.contains("plugin=\"ctest\"") || logs.contains("plugin=ctest"),
        "{logs}"
    );
    assert_eq!(instance.sink(), "c-sink");
    assert!(Arc::ptr_eq(instance.plugin(), &plugin));

    let hello = message("m1", "c-sink", json!({"text": "hello"}));
    assert_eq!(instance.deliver(&hello), Delivery::Ok);
    assert_eq!(
        instance.deliver(&message("m2", "c-sink", json!({"text": "fail"}))),
        Delivery::Fail {
            reason: "the payload asked to fail".into()
        }
    );
    assert_eq!(
        instance.deliver(&message("m3", "c-sink", json!({"text": "retry"}))),
        Delivery::Retry {
            after: Some(Duration::from_millis(1500)),
            reason: "the payload asked to retry".into()
        }
    );
    match instance.deliver(&message("m4", "c-sink", json!({"text": "bogus"}))) {
        Delivery::Fail { reason } => {
            assert!(
                reason.contains("plugin `ctest` returned 7 from deliver"),
                "{reason}"
            );
            assert!(reason.contains("made up a return code"), "{reason}");
        }
        other => panic!("an unknown return code must fail the delivery, got {other:?}"),
    }

    // The plugin recorded the message and exactly what the host answered: the result
    // code, which the plugin names with the header's AR_HOST_* constants, and the reply.
    let recorded = lines(&out);
    assert_eq!(recorded[0], String::from_utf8(hello.clone()).unwrap());
    assert_eq!(recorded[1], format!("query: 0 ok {STATUS}"));
    assert_eq!(recorded[2], format!("emit: 0 ok {ACCEPTED}"));
    assert_eq!(recorded[3], format!("render: 3 not_found {NO_TEMPLATE}"));
    assert_eq!(recorded.len(), 4 * 4);

    // And the host services saw each call, for the right sink.
    let calls = recorder.calls();
    assert_eq!(calls.len(), 4 * 3);
    assert_eq!(
        calls[..3],
        [
            Call::Query {
                sink: "c-sink".into(),
                path: "status".into()
            },
            Call::Emit {
                sink: "c-sink".into(),
                event: json!({"type": "c_plugin_saw", "bytes": hello.len()})
            },
            Call::Render {
                sink: "c-sink".into(),
                name: "ctest".into(),
                context: "{}".into()
            },
        ]
    );

    assert!(!lines(&out).contains(&"destroyed".to_owned()));
    drop(instance);
    let recorded = lines(&out);
    assert_eq!(recorded.last().map(String::as_str), Some("destroyed"));
    assert_eq!(recorded.iter().filter(|l| *l == "destroyed").count(), 1);
}

#[test]
fn the_c_plugins_request_reaches_the_host_in_process_and_from_its_own_process() {
    let plugin = Catalog::new(vec![c_dir()]).load("ctest").expect("load");
    for isolated in [false, true] {
        let scratch = Scratch::new(if isolated {
            "c-request-process"
        } else {
            "c-request"
        });
        let recorder = Arc::new(Recorder::default());
        let out = scratch.path("calls.txt");
        let settings = json!({"path": out});
        let created = if isolated {
            let copies = scratch.path("copies");
            fs::create_dir_all(&copies).expect("the copies directory");
            let options = ProcessOptions {
                program: router_binary(),
                copies,
                strict: true,
                deliver_timeout: Duration::from_secs(30),
            };
            plugin.create_isolated("c-sink", &settings, recorder.clone(), options)
        } else {
            plugin.create("c-sink", &settings, recorder.clone())
        };
        let mut instance = created.expect("create");
        let asking = message("m1", "c-sink", json!({"text": "request"}));
        assert_eq!(
            instance.deliver(&asking),
            Delivery::Ok,
            "isolated: {isolated}"
        );
        // Through the header's table (and, isolated, a frame each way), the method, path
        // and body arrive whole, and the plugin gets the answer and its code.
        let recorded = lines(&out);
        assert_eq!(
            recorded.get(4),
            Some(&format!("request: 0 ok {SILENCE}")),
            "isolated: {isolated}: {recorded:?}"
        );
        assert_eq!(
            recorder.calls().last(),
            Some(&Call::Request {
                sink: "c-sink".into(),
                method: "POST".into(),
                path: "silences".into(),
                body: json!({"matchers": "type=c_silenced", "duration": "1h", "created_by": "ctest"}),
            }),
            "isolated: {isolated}"
        );
        drop(instance);
    }
}

#[test]
fn the_manifest_checks_and_redacts_settings() {
    let plugin = Catalog::new(vec![c_dir()]).load("ctest").expect("load");
    let manifest = plugin.manifest();
    let takes = ["path", "token"];
    let problems = |settings: serde_json::Value| -> Vec<String> {
        manifest
            .check_settings(&settings)
            .iter()
            .map(|p| p.message("ctest", &takes))
            .collect()
    };
    assert_eq!(
        problems(json!({"token": "t"})),
        ["missing required setting `path` (file to record calls in)"]
    );
    assert_eq!(
        problems(json!({"path": 3})),
        ["must be a string, got a number"]
    );
    assert_eq!(
        problems(json!({"path": "calls.log", "pth": "other.log"})),
        ["unknown setting; ctest takes: path, token (did you mean `path`?)"]
    );
    assert!(problems(json!({"path": "calls.log"})).is_empty());
    assert_eq!(
        manifest.redact(
            &json!({"path": "/tmp/x", "token": "123:secret-bot-token", "nested": {"api_key": "k"}})
        ),
        json!({"path": "/tmp/x", "token": "***", "nested": {"api_key": "***"}})
    );
}

#[test]
fn a_panic_in_deliver_fails_that_message_only() {
    let scratch = Scratch::new("flaky-panic");
    // No directory configured: the catalog finds libflaky.so beside the test binary.
    let catalog = Catalog::new(vec![]);
    let plugin = catalog
        .load("flaky")
        .expect("load libflaky.so from the deps directory");
    assert_eq!(plugin.name(), "flaky");
    assert_eq!(plugin.path(), deps_dir().join("libflaky.so"));
    assert_eq!(plugin.manifest().markup, Markup::None);

    let recorder: Arc<dyn HostServices> = Arc::new(Recorder::default());
    let a_out = scratch.path("a.jsonl");
    let mut a = plugin
        .create("a", &json!({"path": a_out}), recorder.clone())
        .expect("create a");
    let mut b = plugin.create("b", &json!({}), recorder).expect("create b");

    match a.deliver(&message("p1", "a", json!({"behave": "panic"}))) {
        Delivery::Fail { reason } => {
            assert!(
                reason.contains("flaky panicked on message p1 as asked"),
                "{reason}"
            )
        }
        other => panic!("a panic must fail the delivery, got {other:?}"),
    }
    assert_eq!(
        a.deliver(&message("p2", "a", json!({"behave": "ok"}))),
        Delivery::Ok
    );

    // Another instance of the same plugin, on another thread, is unaffected.
    let b_result = std::thread::spawn(move || b.deliver(&message("q1", "b", json!({}))))
        .join()
        .expect("b's thread");
    assert_eq!(b_result, Delivery::Ok);

    let recorded: Vec<Value> = lines(&a_out)
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(recorded.len(), 2);
    assert_eq!(
        (&recorded[0]["id"], &recorded[0]["outcome"]),
        (&json!("p1"), &json!("panic"))
    );
    assert_eq!(
        (&recorded[1]["id"], &recorded[1]["outcome"]),
        (&json!("p2"), &json!("ok"))
    );
    assert_eq!(recorded[1]["payload"], json!({"behave": "ok"}));
}

#[test]
fn flaky_retries_and_fails_as_the_payload_says() {
    let plugin = Catalog::new(vec![]).load("flaky").expect("load");
    let mut sink = plugin
        .create("s", &Value::Null, Arc::new(Recorder::default()))
        .expect("create without settings");
    assert_eq!(
        sink.deliver(&message("r1", "s", json!({"retry_after_ms": 250}))),
        Delivery::Retry {
            after: Some(Duration::from_millis(250)),
            reason: "flaky asks to retry message r1 after 250 ms".into()
        }
    );
    assert_eq!(
        sink.deliver(&message("r2", "s", json!({"behave": "retry"}))),
        Delivery::Retry {
            after: None,
            reason: "flaky asks to retry message r2 as asked".into()
        }
    );
    assert_eq!(
        sink.deliver(&message("f1", "s", json!({"behave": "fail"}))),
        Delivery::Fail {
            reason: "flaky failed message f1 as asked".into()
        }
    );
}

#[test]
fn an_abi_2_plugin_is_refused_naming_both_versions_and_the_file() {
    let err = Catalog::new(vec![c_abi2_dir()])
        .load("ctest")
        .expect_err("an ABI 2 plugin must not load");
    let text = err.to_string();
    assert!(
        matches!(err, PluginError::AbiMismatch { found: 2, .. }),
        "{text}"
    );
    assert!(
        text.contains("built for ABI 2, this router speaks ABI 1"),
        "{text}"
    );
    assert!(
        text.contains(&c_abi2_dir().join("libctest.so").display().to_string()),
        "{text}"
    );
}

#[test]
fn a_file_that_is_not_a_library_is_refused_naming_it() {
    let scratch = Scratch::new("junk");
    let junk = scratch.path("libjunk.so");
    fs::write(&junk, "this is a text file, not a shared library\n").unwrap();
    let err = Catalog::new(vec![scratch.0.clone()])
        .load("junk")
        .expect_err("junk must not load");
    let text = err.to_string();
    assert!(matches!(err, PluginError::NotALibrary { .. }), "{text}");
    assert!(
        text.starts_with(&format!("{}: not a shared library", junk.display())),
        "{text}"
    );
}

#[test]
fn a_missing_plugin_lists_every_directory_searched() {
    let scratch = Scratch::new("missing");
    let (a, b) = (scratch.path("a"), scratch.path("b"));
    fs::create_dir_all(&a).unwrap();
    let err = Catalog::new(vec![a.clone(), b.clone()])
        .load("nowhere")
        .expect_err("nothing to load");
    let text = err.to_string();
    assert!(matches!(err, PluginError::NotFound { .. }), "{text}");
    assert!(text.contains("libnowhere.so"), "{text}");
    for dir in [a, b, deps_dir()] {
        assert!(
            text.contains(&dir.display().to_string()),
            "{dir:?} in {text}"
        );
    }
}

#[test]
fn a_refusal_carries_the_plugins_own_words() {
    let scratch = Scratch::new("refusal");
    let recorder: Arc<dyn HostServices> = Arc::new(Recorder::default());
    let flaky = Catalog::new(vec![]).load("flaky").expect("load");

    let missing_dir = scratch.path("no/such/dir/out.jsonl");
    let err = flaky
        .create("f", &json!({"path": missing_dir}), recorder.clone())
        .expect_err("an unwritable path must be refused");
    let text = err.to_string();
    assert!(matches!(err, PluginError::Refused { .. }), "{text}");
    assert!(
        text.starts_with("sink `f`: plugin `flaky` (") && text.contains("refused the settings"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "settings.path: cannot open {}",
            missing_dir.display()
        )),
        "{text}"
    );

    let err = flaky
        .create("f", &json!({"path": 5}), recorder.clone())
        .expect_err("a number is not a path");
    assert!(
        err.to_string()
            .contains("invalid type: integer `5`, expected a string"),
        "{err}"
    );

    let ctest = Catalog::new(vec![c_dir()]).load("ctest").expect("load");
    let err = ctest
        .create("c", &json!({}), recorder.clone())
        .expect_err("path is required");
    assert!(
        err.to_string()
            .ends_with("settings.path is required: the file to record calls in"),
        "{err}"
    );

    // A secret setting the plugin echoes back is hidden. (Contrived: the C plugin names
    // its path in the refusal, so the secret is the path.)
    let secret_path = scratch.path("no/such/s3cr3t-value");
    let err = ctest
        .create(
            "c",
            &json!({"path": secret_path, "token": secret_path}),
            recorder,
        )
        .expect_err("unwritable path");
    let text = err.to_string();
    assert!(!text.contains("s3cr3t-value"), "{text}");
    assert!(text.contains("cannot open ***"), "{text}");
}

#[test]
fn an_unchanged_file_loads_once_and_a_replaced_one_loads_anew() {
    let scratch = Scratch::new("reload");
    let dir = scratch.path("plugins");
    fs::create_dir_all(&dir).unwrap();
    let installed = dir.join("libflaky.so");
    fs::copy(deps_dir().join("libflaky.so"), &installed).unwrap();
    let recorder: Arc<dyn HostServices> = Arc::new(Recorder::default());

    let catalog = Arc::new(Catalog::new(vec![dir.clone()]));
    let first = catalog.load("flaky").expect("load");
    let again = catalog.load("flaky").expect("load again");
    assert!(
        Arc::ptr_eq(&first, &again),
        "an unchanged file must not load twice"
    );
    assert_eq!(first.name(), "flaky");
    let mut old = first
        .create("old", &json!({}), recorder.clone())
        .expect("create from the first build");
    assert_eq!(old.deliver(&message("o1", "old", json!({}))), Delivery::Ok);

    // Overwrite the file in place with a different build, as `cp` would. The router never
    // mapped this file (only a copy of it), so nothing running is disturbed.
    fs::copy(c_dir().join("libctest.so"), &installed).unwrap();
    let second = catalog.load("flaky").expect("load the new build");
    assert!(
        !Arc::ptr_eq(&first, &second),
        "a changed file must load anew"
    );
    assert_eq!(second.name(), "ctest");
    let out = scratch.path("new.txt");
    let mut new = second
        .create("new", &json!({"path": out}), recorder)
        .expect("create from the second build");

    assert_eq!(new.deliver(&message("n1", "new", json!({}))), Delivery::Ok);
    assert_eq!(old.deliver(&message("o2", "old", json!({}))), Delivery::Ok);
    assert!(lines(&out)[0].contains("\"n1\""));
    assert!(Arc::ptr_eq(&second, &catalog.load("flaky").expect("load")));

    // The catalog is shared across threads (a reload runs elsewhere).
    let shared = Arc::clone(&catalog);
    let from_thread = std::thread::spawn(move || shared.load("flaky").map(|p| p.name().to_owned()))
        .join()
        .expect("loader thread");
    assert_eq!(from_thread.expect("load from another thread"), "ctest");
}

#[test]
fn discover_lists_every_plugin_in_search_order() {
    let found = Catalog::new(vec![c_dir(), c_abi2_dir()]).discover();
    let loaded: Vec<_> = found.iter().filter_map(|r| r.as_ref().ok()).collect();
    let ctest = loaded
        .iter()
        .find(|p| p.name() == "ctest")
        .expect("ctest discovered");
    // The first directory wins; the ABI 2 build of the same name is shadowed, not reported.
    assert_eq!(ctest.path(), c_dir().join("libctest.so"));
    assert!(loaded.iter().any(|p| p.name() == "flaky"));
    assert!(loaded.iter().any(|p| p.name() == "console"));
    for err in found.iter().filter_map(|r| r.as_ref().err()) {
        // The deps directory also holds proc-macro libraries (libserde_derive-<hash>.so).
        assert!(
            matches!(
                err,
                PluginError::InvalidName { .. } | PluginError::NoEntrySymbol { .. }
            ),
            "unexpected: {err}"
        );
    }
}

#[test]
fn validate_judges_settings_without_side_effects_and_an_older_descriptor_still_loads() {
    let scratch = Scratch::new("validate");
    let recorder: Arc<dyn HostServices> = Arc::new(Recorder::default());
    let out = scratch.path("calls.txt");

    // The plugin's validate refuses what its create would, and creates nothing.
    let ctest = Catalog::new(vec![c_dir()]).load("ctest").expect("load");
    ctest
        .validate("c", &json!({"path": out}))
        .expect("a path passes");
    assert!(!out.exists(), "validate opened no file");
    let err = ctest
        .validate("c", &json!({"path": ""}))
        .expect_err("an empty path is refused");
    assert!(matches!(err, PluginError::Refused { .. }), "{err}");
    assert!(
        err.to_string()
            .ends_with("settings.path is required: the file to record calls in"),
        "{err}"
    );

    // A plugin built before validate: it loads, validate is not read (it would refuse),
    // and create alone judges the settings, as before.
    let old = Catalog::new(vec![c_old_dir()])
        .load("ctest")
        .expect("load the old descriptor");
    assert_eq!(old.name(), "ctest");
    old.validate("c", &json!({"path": ""}))
        .expect("nothing past struct_size is called");
    let err = old
        .create("c", &json!({"path": ""}), recorder.clone())
        .expect_err("create still refuses");
    assert!(
        err.to_string()
            .ends_with("settings.path is required: the file to record calls in"),
        "{err}"
    );
    let instance = old
        .create("c", &json!({"path": out}), recorder)
        .expect("create takes a path");
    drop(instance);
    assert_eq!(lines(&out), ["destroyed"]);
}

#[test]
fn a_thread_that_outlives_its_instance_gets_unavailable_and_reaches_nothing() {
    let scratch = Scratch::new("flaky-outlive");
    let (record, until) = (scratch.path("outlive.jsonl"), scratch.path("destroyed"));
    let plugin = Catalog::new(vec![]).load("flaky").expect("load");
    let services = Arc::new(Recorder::default());
    let settings = json!({"outlive_record": record, "outlive_until": until});
    let instance = plugin
        .create("late", &settings, services.clone())
        .expect("create");
    let health = Arc::new(Mutex::new(Vec::new()));
    instance.send_health_to({
        let health = health.clone();
        Arc::new(move |h| health.lock().unwrap().push(h))
    });

    // Before destroy, the thread's call reaches the services.
    let before = wait_for_lines(&record, "the call made before destroy", |l| !l.is_empty());
    assert_eq!(
        before,
        [json!({"when": "before", "call": "query", "answer": {"healthy": true}})]
    );

    // `destroy` returns with the thread still running: the router keeps nothing of its
    // own for it.
    drop(instance);
    assert_eq!(
        Arc::strong_count(&services),
        1,
        "the table released the services at destroy"
    );

    fs::write(&until, "").expect("let the thread call again");
    let lines = wait_for_lines(&record, "the calls made after destroy", |l| {
        l.last().is_some_and(|l| l["call"] == "done")
    });
    let destroyed = "sink `late`'s instance was destroyed; this call came from a thread that outlived it (destroy must stop and join the instance's threads)";
    let unavailable = |call: &str| json!({"when": "after", "call": call, "kind": "Unavailable", "message": destroyed});
    assert_eq!(
        lines[1..],
        [
            unavailable("query"),
            unavailable("emit"),
            unavailable("render"),
            json!({"when": "after", "call": "done", "answer": null}),
        ]
    );
    assert_eq!(
        services.calls(),
        [Call::Query {
            sink: "late".into(),
            path: "status".into()
        }],
        "no call after destroy reached the services"
    );
    assert_eq!(
        *health.lock().unwrap(),
        [Health::Healthy],
        "the report made after destroy was ignored"
    );
}
