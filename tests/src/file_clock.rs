//! A router on a clock the test moves: the e2e binary reads its time from a file
//! (`ALERT_ROUTER_TEST_CLOCK`), so a test of a four-hour repeat or a DST change takes a
//! second. Also what such tests read back: the console sink's texts.

use std::path::PathBuf;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::harness::{Router, TempDir, eventually_async, read_json_lines};

const WAIT: Duration = Duration::from_secs(20);

/// The router's clock: a file holding one instant.
pub struct FileClock {
    path: PathBuf,
    pub now: OffsetDateTime,
}

impl FileClock {
    /// Starts the router on `dir` (holding its router.yaml) with its clock at `start`.
    pub async fn start(dir: TempDir, start: &str) -> (Router, FileClock) {
        let path = dir.path().join("clock");
        let mut clock = FileClock {
            path: path.clone(),
            now: OffsetDateTime::parse(start, &Rfc3339).expect("an RFC 3339 start"),
        };
        clock.set(clock.now);
        let router = Router::start_in_with_env(
            dir,
            &[(
                "ALERT_ROUTER_TEST_CLOCK",
                path.to_str().expect("a UTF-8 path"),
            )],
        )
        .await;
        (router, clock)
    }

    pub fn set(&mut self, now: OffsetDateTime) {
        self.now = now;
        let text = now.format(&Rfc3339).expect("an RFC 3339 time");
        // Written beside and renamed over, so the router never reads half a time.
        let next = self.path.with_extension("next");
        std::fs::write(&next, text).expect("write the clock");
        std::fs::rename(&next, &self.path).expect("move the clock");
    }

    pub fn advance(&mut self, secs: i64) {
        self.set(self.now + time::Duration::seconds(secs));
    }

    /// Moves the clock and waits until the router's timer has looked at it: whatever
    /// is due by then has been written to the outbox.
    pub async fn advance_and_tick(&mut self, router: &Router, secs: i64) {
        self.advance(secs);
        let want = self.now;
        eventually_async(WAIT, "the timer to see the new time", || async {
            let status = router.get_json("/v1/status").await;
            let tick = status["notify"]["open"]["last_tick"].as_str()?.to_owned();
            let tick = OffsetDateTime::parse(&tick, &Rfc3339).ok()?;
            (tick >= want).then_some(())
        })
        .await;
    }
}

/// The texts the console sink wrote to `<dir>/out.jsonl` (its `json` format), in order.
pub fn console_texts(router: &Router) -> Vec<String> {
    read_json_lines(&router.dir.path().join("out.jsonl"))
        .iter()
        .filter_map(|l| l["payload"]["text"].as_str().map(str::to_owned))
        .collect()
}

/// Waits until the console wrote `n` messages; returns them all.
pub async fn console_texts_until(router: &Router, n: usize) -> Vec<String> {
    eventually_async(WAIT, &format!("{n} messages"), || async {
        let t = console_texts(router);
        (t.len() >= n).then_some(t)
    })
    .await
}
