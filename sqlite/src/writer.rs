//! [`Writer`]: the one thread that writes a database. It owns the read-write connection
//! and commits whatever has gathered since its last commit in one transaction (group
//! commit), so many writers share one commit and its fsync. What is written, and who is
//! told how it went, is the [`Commit`] implementation's: the outbox answers each append
//! once it is durable, the state store only its flushes.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction};

/// What a writer thread writes, and whom it answers.
pub trait Commit: Send + 'static {
    /// One write, sent by [`Writer::send`].
    type Op: Send + 'static;
    /// What an op is owed once its commit is done (an acknowledgement to send).
    type Reply;

    /// Writes `ops` inside `tx`, the transaction of one commit. An op that fails on its
    /// own (a savepoint rolled back) is answered through `replies` by the
    /// implementation; an error returned fails the whole commit.
    fn write(
        &mut self,
        tx: &mut Transaction<'_>,
        ops: Vec<Self::Op>,
        replies: &mut Vec<Self::Reply>,
    ) -> rusqlite::Result<()>;

    /// The commit is over: `Ok` when it is durable, else why it failed (nothing of it
    /// was written). Answers `replies`, every one pushed by `write`.
    fn done(&mut self, outcome: Result<(), &rusqlite::Error>, replies: Vec<Self::Reply>);

    /// Whether `op` is to be committed at once, without waiting out the window (a flush
    /// somebody waits for).
    fn urgent(&self, _op: &Self::Op) -> bool {
        false
    }

    /// Work between commits, every [`Options::tick`] and when the writer stops (the
    /// outbox prunes what it no longer keeps).
    fn tick(&mut self, _conn: &mut Connection) {}
}

/// How a writer gathers its commits.
#[derive(Debug, Clone)]
pub struct Options {
    /// The thread's name, also in log lines.
    pub name: &'static str,
    /// The database file, for log lines.
    pub path: PathBuf,
    /// Ops that may wait for the thread; beyond, [`Writer::send`] waits (backpressure
    /// when the disk falls behind, instead of memory growing without bound).
    pub queue: usize,
    /// The most ops in one commit; more wait for the next.
    pub max_ops: usize,
    /// How long a commit waits for more ops after its first one. Zero: it takes what
    /// has arrived meanwhile and commits at once, so a caller waiting for its commit
    /// waits no longer than the disk takes.
    pub window: Duration,
    /// How often [`Commit::tick`] runs; `None`: never.
    pub tick: Option<Duration>,
}

/// The writer thread stopped (it panicked, or the writer was dropped): nothing more is
/// written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// The handle of a writer thread. Dropping it commits what is pending, runs a last
/// [`Commit::tick`] and joins the thread.
pub struct Writer<Op> {
    tx: Option<SyncSender<Op>>,
    thread: Option<JoinHandle<()>>,
    name: &'static str,
    path: PathBuf,
}

impl<Op: Send + 'static> Writer<Op> {
    /// Starts the thread, which owns `conn` from now on.
    pub fn start<C: Commit<Op = Op>>(
        conn: Connection,
        job: C,
        options: Options,
    ) -> std::io::Result<Writer<Op>> {
        let (tx, rx) = mpsc::sync_channel(options.queue.max(1));
        let (name, path) = (options.name, options.path.clone());
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(conn, job, rx, &options))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
            name,
            path,
        })
    }

    /// Hands `op` to the thread; waits only while [`Options::queue`] ops are waiting.
    pub fn send(&self, op: Op) -> Result<(), Stopped> {
        match &self.tx {
            Some(tx) => tx.send(op).map_err(|_| Stopped),
            None => Err(Stopped),
        }
    }
}

impl<Op> Drop for Writer<Op> {
    fn drop(&mut self) {
        // Closing the channel makes the thread commit what it has and return.
        self.tx = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(writer = self.name, path = %self.path.display(), "the writer thread panicked");
        }
    }
}

fn run<C: Commit>(mut conn: Connection, mut job: C, rx: Receiver<C::Op>, options: &Options) {
    let mut next_tick = options.tick.map(|every| Instant::now() + every);
    let mut open = true;
    while open {
        let first = match next_tick {
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let mut ops = Vec::new();
        match first {
            Ok(op) => ops.push(op),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = false,
        }
        if let Some(op) = ops.first() {
            let mut urgent = job.urgent(op);
            let until = Instant::now() + options.window;
            // Whatever arrives within the window (with none: has arrived while the last
            // commit ran) goes into this commit.
            while open && !urgent && ops.len() < options.max_ops {
                match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                    Ok(op) => {
                        urgent = job.urgent(&op);
                        ops.push(op);
                    }
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
            }
            commit(&mut conn, &mut job, ops, options);
        }
        if let Some(at) = next_tick
            && (Instant::now() >= at || !open)
        {
            job.tick(&mut conn);
            next_tick = options.tick.map(|every| Instant::now() + every);
        }
    }
}

fn commit<C: Commit>(conn: &mut Connection, job: &mut C, ops: Vec<C::Op>, options: &Options) {
    let mut replies = Vec::with_capacity(ops.len());
    let result = conn.transaction().and_then(|mut tx| {
        job.write(&mut tx, ops, &mut replies)?;
        tx.commit()
    });
    if let Err(e) = &result {
        tracing::error!(writer = options.name, path = %options.path.display(), error = %e, "a commit failed");
    }
    job.done(result.as_ref().map(|_| ()), replies);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Inserts numbers; a negative one fails its commit. Records each commit's numbers.
    struct Numbers {
        commits: Arc<Mutex<Vec<Vec<i64>>>>,
        /// The first commit says it has begun, then waits until the test lets it go on.
        gate: Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>,
    }

    enum Op {
        Insert(i64, mpsc::Sender<Result<(), String>>),
        Flush(mpsc::Sender<Result<(), String>>),
    }

    impl Commit for Numbers {
        type Op = Op;
        type Reply = mpsc::Sender<Result<(), String>>;

        fn write(
            &mut self,
            tx: &mut Transaction<'_>,
            ops: Vec<Op>,
            replies: &mut Vec<Self::Reply>,
        ) -> rusqlite::Result<()> {
            if let Some((begun, go_on)) = self.gate.take() {
                let _ = begun.send(());
                let _ = go_on.recv();
            }
            let mut numbers = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(n, reply) => {
                        numbers.push(n);
                        replies.push(reply);
                        if n < 0 {
                            return Err(rusqlite::Error::InvalidQuery);
                        }
                        tx.execute("INSERT INTO n (v) VALUES (?1)", [n])?;
                    }
                    Op::Flush(reply) => replies.push(reply),
                }
            }
            self.commits.lock().unwrap().push(numbers);
            Ok(())
        }

        fn done(&mut self, outcome: Result<(), &rusqlite::Error>, replies: Vec<Self::Reply>) {
            for reply in replies {
                let _ = reply.send(outcome.map_err(|e| e.to_string()));
            }
        }

        fn urgent(&self, op: &Op) -> bool {
            matches!(op, Op::Flush(_))
        }
    }

    struct Fixture {
        dir: PathBuf,
        commits: Arc<Mutex<Vec<Vec<i64>>>>,
    }

    impl Fixture {
        fn new(name: &str) -> Fixture {
            let dir = std::env::temp_dir().join(format!(
                "alert-router-sqlite-writer-{name}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("the temp dir is writable");
            Fixture {
                dir,
                commits: Arc::default(),
            }
        }

        fn start(&self, window: Duration, max_ops: usize, gated: bool) -> (Writer<Op>, Gate) {
            let conn = crate::open(
                &self.dir.join("n.db"),
                "NORMAL",
                "CREATE TABLE IF NOT EXISTS n (v INTEGER);",
                1,
                &[],
            )
            .expect("the database opens");
            let (go_on_tx, go_on) = mpsc::channel();
            let (begun, begun_rx) = mpsc::channel();
            let job = Numbers {
                commits: self.commits.clone(),
                gate: gated.then_some((begun, go_on)),
            };
            let options = Options {
                name: "test-writer",
                path: self.dir.join("n.db"),
                queue: 1024,
                max_ops,
                window,
                tick: None,
            };
            let writer = Writer::start(conn, job, options).expect("the thread starts");
            (
                writer,
                Gate {
                    begun: begun_rx,
                    go_on: go_on_tx,
                },
            )
        }

        fn commits(&self) -> Vec<Vec<i64>> {
            self.commits.lock().unwrap().clone()
        }

        fn stored(&self) -> Vec<i64> {
            let conn = Connection::open(self.dir.join("n.db")).expect("the database opens");
            let mut stmt = conn.prepare("SELECT v FROM n ORDER BY rowid").unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Holds the first commit open: `begun` says it is under way, `go_on` lets it finish.
    struct Gate {
        begun: mpsc::Receiver<()>,
        go_on: mpsc::Sender<()>,
    }

    impl Gate {
        /// Waits until the first commit is under way.
        fn begun(&self) {
            self.begun.recv().expect("the first commit begins");
        }

        fn go_on(&self) {
            self.go_on.send(()).expect("the first commit waits");
        }
    }

    fn insert(writer: &Writer<Op>, n: i64) -> mpsc::Receiver<Result<(), String>> {
        let (tx, rx) = mpsc::channel();
        writer.send(Op::Insert(n, tx)).expect("the writer runs");
        rx
    }

    #[test]
    fn ops_that_arrive_during_a_commit_share_the_next_one() {
        let f = Fixture::new("group");
        let (writer, gate) = f.start(Duration::ZERO, 4096, true);
        let first = insert(&writer, 0);
        gate.begun();
        // The first commit is held open while 99 more ops queue behind it.
        let rest: Vec<_> = (1..100).map(|n| insert(&writer, n)).collect();
        gate.go_on();
        for answer in std::iter::once(first).chain(rest) {
            assert_eq!(answer.recv().unwrap(), Ok(()));
        }
        // One commit for the 99, not one each.
        assert_eq!(f.commits(), vec![vec![0], (1..100).collect::<Vec<_>>()]);
        assert_eq!(f.stored(), (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn a_commit_holds_at_most_max_ops() {
        let f = Fixture::new("max");
        let (writer, gate) = f.start(Duration::ZERO, 10, true);
        let first = insert(&writer, 0);
        gate.begun();
        let answers: Vec<_> = (1..=25).map(|n| insert(&writer, n)).collect();
        gate.go_on();
        for answer in std::iter::once(first).chain(answers) {
            assert_eq!(answer.recv().unwrap(), Ok(()));
        }
        let sizes: Vec<usize> = f.commits().iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 10, 10, 5]);
    }

    #[test]
    fn within_the_window_ops_wait_for_each_other_and_a_flush_commits_at_once() {
        let f = Fixture::new("window");
        // An hour's window: only the flush (or the writer stopping) commits.
        let (writer, _gate) = f.start(Duration::from_secs(3600), 4096, false);
        let answers: Vec<_> = (0..5).map(|n| insert(&writer, n)).collect();
        let (flushed, flush) = mpsc::channel();
        writer.send(Op::Flush(flushed)).unwrap();
        assert_eq!(flush.recv().unwrap(), Ok(()));
        for answer in answers {
            assert_eq!(answer.recv().unwrap(), Ok(()));
        }
        assert_eq!(f.commits(), vec![vec![0, 1, 2, 3, 4]]);
    }

    #[test]
    fn a_failed_commit_is_answered_to_every_op_in_it_and_writes_none_of_them() {
        let f = Fixture::new("failed");
        let (writer, gate) = f.start(Duration::ZERO, 4096, true);
        let first = insert(&writer, 1);
        gate.begun();
        let doomed = [insert(&writer, 2), insert(&writer, -1)];
        gate.go_on();
        assert_eq!(first.recv().unwrap(), Ok(()));
        for answer in doomed {
            let outcome = answer.recv().unwrap();
            assert!(outcome.is_err(), "{outcome:?}");
        }
        // The writer goes on after a failed commit.
        assert_eq!(insert(&writer, 3).recv().unwrap(), Ok(()));
        assert_eq!(f.stored(), vec![1, 3]);
    }

    #[test]
    fn dropping_the_writer_commits_what_waits() {
        let f = Fixture::new("drop");
        let (writer, _gate) = f.start(Duration::from_secs(3600), 4096, false);
        let answers: Vec<_> = (0..3).map(|n| insert(&writer, n)).collect();
        drop(writer);
        for answer in answers {
            assert_eq!(answer.recv().unwrap(), Ok(()));
        }
        assert_eq!(f.stored(), vec![0, 1, 2]);
    }
}
