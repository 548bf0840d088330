//! Real programs, run through the sink as the router would run it.

use super::*;

fn sink(script: &str, timeout: Duration) -> Exec {
    Exec {
        program: PathBuf::from("/bin/sh"),
        args: vec!["-c".to_owned(), script.to_owned()],
        timeout,
        env: BTreeMap::from([("TOKEN".to_owned(), Secret::new("s3cret-v4lue"))]),
        working_dir: None,
    }
}

fn message() -> Message {
    serde_json::from_value(serde_json::json!({
        "id": "e1:run",
        "sink": "run",
        "attempt": 2,
        "payload": {"text": "BTC up"},
        "event": {"id": "e1", "type": "trade_opened"},
    }))
    .expect("a message")
}

fn deliver(script: &str) -> Outcome {
    sink(script, Duration::from_secs(30)).deliver(message())
}

fn reason(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Ok => "",
        Outcome::Retry { reason, .. } | Outcome::Fail { reason } => reason,
    }
}

#[test]
fn the_program_gets_the_payload_on_stdin_and_the_message_in_its_environment() {
    let dir = std::env::temp_dir().join(format!("exec-sink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let out = dir.join("out");
    let script = format!(
        "cat > {0}; echo \"$ALERT_ROUTER_SINK $ALERT_ROUTER_MESSAGE_ID $ALERT_ROUTER_ATTEMPT $ALERT_ROUTER_EVENT_ID $ALERT_ROUTER_EVENT_TYPE $TOKEN\" >> {0}",
        out.display()
    );
    assert!(matches!(deliver(&script), Outcome::Ok));
    let written = std::fs::read_to_string(&out).expect("the program wrote");
    assert_eq!(
        written,
        "{\"text\":\"BTC up\"}\nrun e1:run 2 e1 trade_opened s3cret-v4lue\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn exit_75_is_try_again_and_other_statuses_fail_with_the_last_lines_of_stderr() {
    let again = deliver("echo busy >&2; exit 75");
    assert!(
        matches!(again, Outcome::Retry { after: None, .. }),
        "{again:?}"
    );
    assert_eq!(reason(&again), "/bin/sh asked to try again (exit 75): busy");

    let failed = deliver("echo first >&2; echo 'bad token s3cret-v4lue' >&2; exit 3");
    assert!(matches!(failed, Outcome::Fail { .. }), "{failed:?}");
    assert_eq!(
        reason(&failed),
        "/bin/sh exited with status 3: first | bad token ***"
    );
}

#[test]
fn a_program_killed_by_a_signal_is_tried_again() {
    let killed = deliver("kill -9 $$");
    assert!(matches!(killed, Outcome::Retry { .. }), "{killed:?}");
    assert_eq!(reason(&killed), "/bin/sh was killed by signal 9");
}

#[test]
fn past_its_timeout_the_program_and_what_it_started_are_killed_and_it_is_tried_again() {
    let dir = std::env::temp_dir().join(format!("exec-sink-timeout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let marker = dir.join("late");
    // A child of the program that would write after the timeout, were it left running.
    let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
    let outcome = sink(&script, Duration::from_millis(200)).deliver(message());
    assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");
    assert!(
        reason(&outcome).contains("ran longer than its timeout (0.2 s) and was killed"),
        "{outcome:?}"
    );
    // The background child was in the killed group: the marker never appears. (Proving
    // an absence takes waiting; on a slow machine this can only miss, never fail wrongly.)
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !marker.exists(),
        "the program's own child outlived the timeout"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_program_that_reads_nothing_and_writes_much_neither_blocks_nor_floods() {
    // 1 MB to stderr without reading stdin: only the tail is kept, and the run ends.
    let outcome = deliver("head -c 1000000 /dev/zero | tr '\\0' x >&2; echo last >&2; exit 1");
    let said = reason(&outcome);
    assert!(said.ends_with("last"), "{said}");
    assert!(said.chars().count() <= REASON_MAX + 40, "{}", said.len());
}

#[test]
fn the_program_is_found_on_path_or_refused_with_what_to_do() {
    assert!(find_program("sh").is_ok());
    let missing = find_program("no-such-program-here").expect_err("not on PATH");
    assert!(missing.contains("is not on PATH"), "{missing}");
    let plain = std::env::temp_dir().join(format!("exec-sink-plain-{}", std::process::id()));
    std::fs::write(&plain, "echo hi\n").expect("a temp file");
    let not_executable = find_program(&plain.display().to_string()).expect_err("mode 0644");
    assert!(not_executable.contains("chmod +x"), "{not_executable}");
    let _ = std::fs::remove_file(&plain);
}

#[test]
fn the_environment_values_are_the_secrets_never_shown() {
    let plugin = alert_router_plugin::exported_plugin!().expect("a readable descriptor");
    assert_eq!(plugin.name, "exec");
    assert_eq!(plugin.markup(), Some("none"));
    assert_eq!(plugin.secret_settings(), ["env"]);
    assert_eq!(plugin.required_settings(), ["command"]);
}
