//! The outbox against real SQLite files: what is committed comes back after a reopen,
//! FIFO per sink, limits, dead letters, dedup ids, pruning, the directory lock.

use std::time::{Duration, Instant};

use super::*;
use crate::testing::TempDir;

fn storage(dir: &TempDir) -> Storage {
    Storage::new(dir.0.clone())
}

fn open(storage: &Storage) -> Opened {
    match Outbox::open(storage) {
        Ok(o) => o,
        Err(e) => panic!("open {}: {e}", storage.path.display()),
    }
}

fn message(sink: &str, event: &str) -> NewMessage {
    NewMessage {
        sink: sink.into(),
        id: format!("{event}:{sink}"),
        event_id: event.into(),
        event_type: "trade_opened".into(),
        route: "r".into(),
        template: "trade_opened".into(),
        payload: Some(format!("{{\"text\":\"{event}\"}}").into()),
        event: format!("{{\"id\":\"{event}\"}}").into(),
        error: None,
    }
}

/// Reserves room and appends, as ingest does.
fn append(outbox: &Outbox, messages: Vec<NewMessage>) {
    let seen = messages.iter().map(|m| m.event_id.clone()).collect();
    let room: Vec<(String, Count, u64)> = messages
        .iter()
        .filter(|m| m.error.is_none())
        .map(|m| {
            let mut c = Count::default();
            c.add(1, m.bytes());
            (m.sink.clone(), c, u64::MAX)
        })
        .collect();
    let _taken = outbox.reserve(&room).expect("room");
    outbox
        .append_blocking(Batch {
            messages,
            seen,
            ..Batch::default()
        })
        .expect("append");
}

/// Takes every message the feed has, marking each delivered.
fn drain(feed: &mut Feed) -> Vec<String> {
    let mut ids = Vec::new();
    while let Some(m) = feed.head(Duration::ZERO) {
        ids.push(m.event_id.clone());
        feed.delivered(1);
    }
    ids
}

fn never() -> bool {
    false
}

fn nothing() -> Interrupt {
    Arc::new(|| {})
}

#[test]
fn committed_messages_come_back_in_order_after_a_reopen_and_delivered_ones_do_not() {
    let dir = TempDir::new("outbox-reopen");
    let storage = storage(&dir);
    {
        let outbox = open(&storage).outbox;
        append(&outbox, vec![message("a", "e1"), message("b", "e1")]);
        append(&outbox, vec![message("a", "e2"), message("a", "e3")]);
        assert_eq!(outbox.waiting("a").messages, 3);
        let mut feed = outbox.feed("a", &never, nothing()).unwrap().unwrap();
        let first = feed.head(Duration::ZERO).unwrap();
        assert_eq!(first.event_id, "e1");
        feed.delivered(1);
        drop(feed); // flushes the delivery mark
        assert_eq!(outbox.waiting("a").messages, 2);
    }
    let opened = open(&storage);
    let outbox = opened.outbox;
    assert_eq!(outbox.waiting("a").messages, 2, "counts are read back");
    assert_eq!(outbox.waiting("b").messages, 1);
    let mut ids: Vec<String> = opened.seen.into_iter().map(|(id, _)| id).collect();
    ids.sort();
    assert_eq!(ids, ["e1", "e2", "e3"], "dedup ids survive a restart");
    let mut feed = outbox.feed("a", &never, nothing()).unwrap().unwrap();
    assert_eq!(drain(&mut feed), ["e2", "e3"]);
    let mut feed_b = outbox.feed("b", &never, nothing()).unwrap().unwrap();
    let m = feed_b.head(Duration::ZERO).unwrap();
    assert_eq!((m.attempts, &*m.payload), (0, "{\"text\":\"e1\"}"));
}

#[test]
fn the_latest_delivered_messages_of_a_sink_are_listed_oldest_first() {
    let dir = TempDir::new("outbox-delivered");
    let storage = storage(&dir);
    {
        let outbox = open(&storage).outbox;
        let events = ["e1", "e2", "e3", "e4"];
        append(&outbox, events.iter().map(|e| message("a", e)).collect());
        append(&outbox, vec![message("b", "e5")]);
        let mut feed = outbox.feed("a", &never, nothing()).unwrap().unwrap();
        feed.head(Duration::ZERO).unwrap();
        feed.delivered(1);
        feed.head(Duration::ZERO).unwrap();
        feed.delivered(2);
        feed.head(Duration::ZERO).unwrap();
        feed.delivered(1);
        drop(feed); // flushes the marks; e4 still waits
        let mut feed_b = outbox.feed("b", &never, nothing()).unwrap().unwrap();
        drain(&mut feed_b);
    }
    let outbox = open(&storage).outbox;
    let listed = |limit| -> Vec<(String, u32)> {
        outbox
            .delivered("a", limit)
            .unwrap()
            .into_iter()
            .map(|m| (m.event_id, m.attempts))
            .collect()
    };
    let own = |e: &str, n| (e.to_owned(), n);
    assert_eq!(listed(10), [own("e1", 1), own("e2", 2), own("e3", 1)]);
    assert_eq!(listed(2), [own("e2", 2), own("e3", 1)], "the latest ones");
    assert!(outbox.delivered("c", 10).unwrap().is_empty());
}

#[test]
fn attempts_made_before_a_restart_are_remembered() {
    let dir = TempDir::new("outbox-attempts");
    let storage = storage(&dir);
    {
        let outbox = open(&storage).outbox;
        append(&outbox, vec![message("a", "e1")]);
        let mut feed = outbox.feed("a", &never, nothing()).unwrap().unwrap();
        feed.head(Duration::ZERO).unwrap();
        let tally = Tally {
            attempts: 3,
            failures: 2,
            crashes: 1,
        };
        feed.attempted(tally, "503 Service Unavailable");
    }
    let outbox = open(&storage).outbox;
    let mut feed = outbox.feed("a", &never, nothing()).unwrap().unwrap();
    let m = feed.head(Duration::ZERO).unwrap();
    assert_eq!((m.attempts, m.failures, m.crashes), (3, 2, 1));
    assert_eq!(m.error.as_deref(), Some("503 Service Unavailable"));
}

/// Opens the outbox, appends one message per sink in `sinks`, and leaves sink `a`'s
/// attempt in flight as `leave` does to its record; returns the messages as the next
/// start reads them.
fn after_a_run_that_ended(
    tag: &str,
    sinks: &[&str],
    leave: impl Fn(&Outbox, &str, &Stored),
) -> Vec<Stored> {
    let dir = TempDir::new(tag);
    let storage = storage(&dir);
    {
        let outbox = open(&storage).outbox;
        for sink in sinks {
            append(&outbox, vec![message(sink, &format!("e-{sink}"))]);
        }
        for sink in sinks {
            let mut feed = outbox.feed(sink, &never, nothing()).unwrap().unwrap();
            let head = feed.head(Duration::ZERO).unwrap();
            leave(&outbox, sink, &head);
        }
        outbox.flush().unwrap();
    }
    let outbox = open(&storage).outbox;
    sinks
        .iter()
        .map(|sink| {
            let mut feed = outbox.feed(sink, &never, nothing()).unwrap().unwrap();
            feed.head(Duration::ZERO).unwrap()
        })
        .collect()
}

#[test]
fn a_death_during_a_delivery_counts_a_crash_and_the_attempt() {
    let found = after_a_run_that_ended("outbox-died", &["a"], |outbox, sink, head| {
        let in_flight = outbox.in_flight(sink).unwrap();
        std::mem::forget(in_flight.begin(head.seq, 1, false)); // never returned
    });
    let m = &found[0];
    assert_eq!((m.attempts, m.failures, m.crashes), (1, 1, 1));
    assert!(
        m.error
            .as_deref()
            .is_some_and(|e| e.contains("the router died during attempt 1")),
        "{m:?}"
    );
}

#[test]
fn an_attempt_that_returned_leaves_nothing_to_count() {
    let found = after_a_run_that_ended("outbox-returned", &["a"], |outbox, sink, head| {
        let in_flight = outbox.in_flight(sink).unwrap();
        drop(in_flight.begin(head.seq, 1, false));
    });
    assert_eq!(found[0].tally(), Tally::default());
}

#[test]
fn an_abandoned_attempt_is_a_failure_and_no_crash() {
    let found = after_a_run_that_ended("outbox-abandoned", &["a"], |outbox, sink, head| {
        let in_flight = outbox.in_flight(sink).unwrap();
        std::mem::forget(in_flight.begin(head.seq, 4, false));
        in_flight.abandon();
    });
    let m = &found[0];
    assert_eq!((m.attempts, m.failures, m.crashes), (4, 1, 0));
    assert!(
        m.error
            .as_deref()
            .is_some_and(|e| e.contains("still inside deliver when the router stopped")),
        "{m:?}"
    );
}

#[test]
fn an_isolated_plugin_is_not_blamed_for_the_routers_death() {
    let found = after_a_run_that_ended("outbox-isolated", &["a"], |outbox, sink, head| {
        let in_flight = outbox.in_flight(sink).unwrap();
        std::mem::forget(in_flight.begin(head.seq, 1, true));
    });
    let m = &found[0];
    assert_eq!((m.attempts, m.failures, m.crashes), (1, 0, 0));
}

#[test]
fn an_outbox_of_schema_1_is_upgraded_with_its_messages() {
    let dir = TempDir::new("outbox-v1");
    let storage = storage(&dir);
    std::fs::create_dir_all(&storage.path).unwrap();
    {
        let conn = rusqlite::Connection::open(storage.path.join(FILE_NAME)).unwrap();
        // The version-1 table as that router created it, holding one waiting message.
        conn.execute_batch(
            "CREATE TABLE messages (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, sink TEXT NOT NULL, id TEXT NOT NULL,
                event_id TEXT NOT NULL, event_type TEXT NOT NULL, route TEXT NOT NULL,
                template TEXT NOT NULL, payload TEXT, event TEXT NOT NULL,
                created INTEGER NOT NULL, state INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
                error TEXT, finished INTEGER);
             INSERT INTO messages (sink, id, event_id, event_type, route, template, payload,
                                   event, created, state, attempts, failures)
             VALUES ('a', 'm1:a', 'm1', 'x', 'r', 'default', '{}', '{}', 0, 0, 2, 1);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let outbox = open(&storage).outbox;
    let mut feed = outbox.feed("a", &never, nothing()).unwrap().unwrap();
    let m = feed.head(Duration::ZERO).unwrap();
    assert_eq!(
        (m.id.as_str(), m.attempts, m.failures, m.crashes),
        ("m1:a", 2, 1, 0)
    );
}

#[test]
fn a_full_outbox_refuses_and_gives_room_back() {
    let dir = TempDir::new("outbox-full");
    let mut storage = storage(&dir);
    storage.max_messages = 5;
    storage.max_bytes = 1000;
    let outbox = open(&storage).outbox;
    let two = Count {
        messages: 2,
        bytes: 100,
    };
    let r = outbox.reserve(&[("a".into(), two, 3)]).unwrap();
    assert_eq!(
        outbox.reserve(&[("a".into(), two, 3)]).err(),
        Some(Full::Sink {
            sink: "a".into(),
            waiting: 2,
            max: 3
        })
    );
    let _b = outbox.reserve(&[("b".into(), two, 10)]).unwrap();
    assert!(matches!(
        outbox.reserve(&[("c".into(), two, 10)]),
        Err(Full::Messages { waiting: 4, max: 5 })
    ));
    let big = Count {
        messages: 1,
        bytes: 900,
    };
    assert!(matches!(
        outbox.reserve(&[("c".into(), big, 10)]),
        Err(Full::Bytes { .. })
    ));
    outbox.release(r);
    assert!(outbox.reserve(&[("c".into(), two, 10)]).is_ok());
}

#[test]
fn dead_letters_keep_their_error_and_can_be_retried_or_dropped() {
    let dir = TempDir::new("outbox-dead");
    let outbox = open(&storage(&dir)).outbox;
    let mut never_rendered = message("a", "e0");
    never_rendered.payload = None;
    never_rendered.error = Some("no template".into());
    append(
        &outbox,
        vec![message("a", "e1"), message("a", "e2"), never_rendered],
    );
    let mut feed = outbox.feed("a", &never, nothing()).unwrap().unwrap();
    feed.head(Duration::ZERO).unwrap();
    let tally = Tally {
        attempts: 1,
        failures: 1,
        crashes: 0,
    };
    feed.dead(tally, "400 Bad Request: message is too long".into());
    outbox.flush().unwrap();

    let letters = outbox.dead_letters(&Selector::All, 10).unwrap();
    assert_eq!(letters.len(), 2);
    let e1 = letters.iter().find(|l| l.event_id == "e1").unwrap();
    assert_eq!(e1.error, "400 Bad Request: message is too long");
    assert_eq!(e1.attempts, 1);
    assert_eq!(e1.payload, Some(serde_json::json!({"text": "e1"})));
    assert_eq!(outbox.dead_counts().unwrap().get("a"), Some(&2));

    // Retried, it goes to the end of the queue: after e2.
    let back = outbox
        .requeue(vec![Requeue {
            seq: e1.seq,
            payload: None,
        }])
        .unwrap();
    assert_eq!(back, 1);
    assert_eq!(drain(&mut feed), ["e2", "e1"]);
    assert_eq!(
        outbox
            .dead_letters(&Selector::Ids(vec!["e1:a".into()]), 10)
            .unwrap()
            .len(),
        0
    );

    // The never-rendered one can go back only with a payload.
    let e0 = &outbox.dead_letters(&Selector::All, 10).unwrap()[0];
    assert_eq!(e0.payload, None);
    let seq = e0.seq;
    assert_eq!(
        outbox
            .requeue(vec![Requeue { seq, payload: None }])
            .unwrap(),
        0
    );
    assert_eq!(
        outbox
            .drop_dead(Selector::Ids(vec![seq.to_string()]))
            .unwrap(),
        1
    );
    assert!(outbox.dead_letters(&Selector::All, 10).unwrap().is_empty());
}

#[test]
fn delivered_messages_and_old_ids_are_pruned() {
    let dir = TempDir::new("outbox-prune");
    let mut storage = storage(&dir);
    storage.keep_delivered = Duration::ZERO;
    storage.dedup_window = Duration::ZERO;
    let outbox = open(&storage).outbox;
    append(&outbox, vec![message("a", "e1"), message("a", "e2")]);
    let mut feed = outbox.feed("a", &never, nothing()).unwrap().unwrap();
    feed.head(Duration::ZERO).unwrap();
    feed.delivered(1);
    outbox.flush().unwrap();
    let conn = Connection::open(outbox.path()).unwrap();
    let rows = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows("SELECT count(*) FROM messages") > 1 || rows("SELECT count(*) FROM seen") > 0 {
        assert!(Instant::now() < deadline, "not pruned within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        rows("SELECT count(*) FROM messages WHERE state = 0"),
        1,
        "the waiting message stays"
    );
}

#[test]
fn a_second_router_cannot_use_the_same_directory() {
    let dir = TempDir::new("outbox-lock");
    let _first = open(&storage(&dir));
    match Outbox::open(&storage(&dir)) {
        Err(OutboxError::Locked { path }) => assert_eq!(path, dir.0),
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("expected Locked, got a second outbox"),
    }
}

#[test]
fn a_new_worker_takes_the_feed_once_the_old_one_lets_go() {
    let dir = TempDir::new("outbox-handover");
    let outbox = open(&storage(&dir)).outbox;
    append(&outbox, vec![message("a", "e1"), message("a", "e2")]);
    let hurried = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let interrupt: Interrupt = {
        let hurried = hurried.clone();
        Arc::new(move || hurried.store(true, std::sync::atomic::Ordering::Relaxed))
    };
    let mut old = outbox.feed("a", &never, interrupt).unwrap().unwrap();
    old.head(Duration::ZERO).unwrap();
    old.delivered(1);
    assert!(!old.wanted());
    let o = outbox.clone();
    let new = std::thread::spawn(move || {
        let mut feed = o.feed("a", &never, nothing()).unwrap().unwrap();
        drain(&mut feed)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    // The holder is told to let go.
    while !hurried.load(std::sync::atomic::Ordering::Relaxed) {
        assert!(Instant::now() < deadline, "the new worker never asked");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(old.wanted());
    drop(old);
    assert_eq!(
        new.join().unwrap(),
        ["e2"],
        "what the old one delivered is not delivered again"
    );
}

#[test]
fn deleting_files_in_the_storage_directory_does_not_free_it() {
    let dir = TempDir::new("outbox-lock-rm");
    let storage = storage(&dir);
    let _first = open(&storage);
    // What an operator might delete thinking it stale: a lock file (there was one), the
    // in-flight records.
    let _ = std::fs::remove_file(storage.path.join("lock"));
    let _ = std::fs::remove_dir_all(storage.path.join("in-flight"));
    match Outbox::open(&storage) {
        Err(OutboxError::Locked { path }) => assert_eq!(path, storage.path),
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("a second outbox on the same directory"),
    }
}

#[test]
fn a_checkpoint_leaves_everything_in_the_database_file() {
    let dir = TempDir::new("outbox-checkpoint");
    let storage = storage(&dir);
    let outbox = open(&storage).outbox;
    append(
        &outbox,
        (0..50).map(|i| message("a", &format!("e{i}"))).collect(),
    );
    outbox.flush().unwrap();
    outbox.checkpoint().expect("nothing holds the log");
    let wal = storage.path.join(format!("{FILE_NAME}-wal"));
    assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);
    // A copy of the database file alone, as a backup that forgets the log makes, holds
    // every message.
    let copy = dir.0.join("copy.db");
    std::fs::copy(storage.path.join(FILE_NAME), &copy).unwrap();
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 50);
}

#[test]
fn a_database_that_lost_commits_is_refused_unless_the_loss_is_accepted() {
    let dir = TempDir::new("outbox-lost");
    let storage = storage(&dir);
    let db = storage.path.join(FILE_NAME);
    let older = dir.0.join("older.db");
    {
        let outbox = open(&storage).outbox;
        append(
            &outbox,
            (0..5).map(|i| message("a", &format!("e{i}"))).collect(),
        );
        outbox.flush().unwrap();
        outbox.checkpoint().unwrap();
        // A backup of the database file taken now...
        std::fs::copy(&db, &older).unwrap();
        append(
            &outbox,
            (5..20).map(|i| message("a", &format!("e{i}"))).collect(),
        );
        outbox.flush().unwrap();
    }
    // ...put back later, without its log: fifteen accepted messages are gone.
    std::fs::copy(&older, &db).unwrap();
    let _ = std::fs::remove_file(storage.path.join(format!("{FILE_NAME}-wal")));
    match Outbox::open(&storage) {
        Err(OutboxError::LostCommits {
            recorded, found, ..
        }) => assert_eq!((recorded, found), (20, 5)),
        Err(e) => panic!("expected LostCommits, got {e}"),
        Ok(_) => panic!("an outbox that lost 15 messages opened without a word"),
    }
    // An empty file in its place is the same loss.
    std::fs::write(&db, b"").unwrap();
    let refused = Outbox::open(&storage).err().map(|e| e.to_string());
    assert!(
        refused.as_deref().is_some_and(|e| e
            .contains("numbered up to 20, the database now ends at 0")
            && e.contains("--accept-data-loss")),
        "{refused:?}"
    );
    // Accepting the loss goes on with what is there, and from then on that is the mark.
    drop(Outbox::open_despite_loss(&storage).expect("opened despite the loss"));
    assert!(
        Outbox::open(&storage).is_ok(),
        "the mark was reset to the database"
    );
}

#[test]
fn messages_delivered_before_a_crash_are_marked_not_sent_again() {
    let dir = TempDir::new("outbox-delivered");
    let storage = storage(&dir);
    {
        let outbox = open(&storage).outbox;
        append(
            &outbox,
            (0..10).map(|i| message("a", &format!("e{i}"))).collect(),
        );
        let mut feed = outbox.feed("a", &never, nothing()).unwrap().unwrap();
        let first = feed.head(Duration::ZERO).unwrap().seq;
        let in_flight = outbox.in_flight("a").unwrap();
        // The plugin took six messages; their marks, which ride in the next commit, are
        // lost with the process (never sent here).
        for seq in first..first + 6 {
            let mut attempt = in_flight.begin(seq, 1, false);
            attempt.delivered();
        }
    }
    let outbox = open(&storage).outbox;
    let mut feed = outbox.feed("a", &never, nothing()).unwrap().unwrap();
    let head = feed.head(Duration::ZERO).unwrap();
    assert_eq!(head.event_id, "e6", "the seventh is the first to go again");
    assert_eq!(head.attempts, 0);
    assert_eq!(outbox.delivered("a", 10).unwrap().len(), 6);
    assert_eq!(
        outbox.waiting("a").messages,
        4,
        "the queue counts only what waits"
    );
}

#[test]
fn a_damaged_database_is_refused_with_what_to_do() {
    let dir = TempDir::new("outbox-damaged");
    let storage = storage(&dir);
    {
        let outbox = open(&storage).outbox;
        append(
            &outbox,
            (0..2000)
                .map(|i| message("a", &format!("event-{i}")))
                .collect(),
        );
        outbox.flush().unwrap();
        outbox.checkpoint().unwrap();
    }
    // A disk error's worth of garbage over pages in the middle of the file.
    let db = storage.path.join(FILE_NAME);
    let len = std::fs::metadata(&db).unwrap().len();
    assert!(len > 64 * 1024, "the outbox spans many pages: {len}");
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        file.write_all_at(&[0xA5; 8192], len / 2 / 4096 * 4096)
            .unwrap();
    }
    let refused = Outbox::open(&storage).err().map(|e| e.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("is damaged") && e.contains(".recover")),
        "{refused:?}"
    );
}
