//! The router's notion of "now" for everything that waits on the calendar: alert
//! lifecycles, group timers, silences, throttles, time windows, an event's default time.
//! The shipped binary reads the system clock. The end-to-end tests' binary installs a
//! clock read from a file ([`install_file_clock`]), so a test moves time forward by
//! writing it instead of waiting real minutes. (Rate limits and retry backoffs stay on
//! real time: they pace real upstreams.)

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The clock in force, when it is not the system's.
static FILE_CLOCK: OnceLock<PathBuf> = OnceLock::new();

/// A clock set by the program itself (`alert-router test` and `replay` run their events
/// at the times they name): Unix nanoseconds, 0 while not in force.
static MANUAL: AtomicI64 = AtomicI64::new(0);

/// The file clock's last reading: what it says while the file is being rewritten.
static LAST_READ: Mutex<Option<OffsetDateTime>> = Mutex::new(None);

/// Now, on the clock in force.
pub fn now() -> OffsetDateTime {
    let manual = MANUAL.load(Ordering::Acquire);
    if manual != 0 {
        return OffsetDateTime::from_unix_timestamp_nanos(i128::from(manual))
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
    }
    let Some(path) = FILE_CLOCK.get() else {
        return OffsetDateTime::now_utc();
    };
    let mut last = LAST_READ.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = read_file_clock(path) {
        *last = Some(t);
    }
    // A file caught half-written reads as its last time, never as the system's (which
    // would jump the clock by months in the middle of a test).
    last.unwrap_or_else(OffsetDateTime::now_utc)
}

/// Milliseconds since the Unix epoch, on the clock in force.
pub fn now_ms() -> i64 {
    (now().unix_timestamp_nanos() / 1_000_000) as i64
}

/// How long a timer may sleep in real time before it looks at the clock again, when its
/// next deadline is `until` (on the clock in force): the distance on the system clock,
/// a short poll on a file clock (the test moves it whenever it likes).
pub fn real_wait(until: OffsetDateTime) -> Duration {
    if FILE_CLOCK.get().is_some() {
        return Duration::from_millis(10);
    }
    let left = until - OffsetDateTime::now_utc();
    Duration::try_from(left).unwrap_or(Duration::ZERO)
}

/// Makes the file at `path` the clock: it holds one RFC 3339 instant, and time stands
/// still until it is rewritten. For tests only; the shipped binary never calls it. Until
/// the file exists (or while it holds no valid instant) the system clock answers.
pub fn install_file_clock(path: PathBuf) {
    let _ = FILE_CLOCK.set(path);
}

/// Makes the clock stand at `t` until set again: for a process that plays events at
/// their own times (`test`, `replay`), never for a running router.
pub fn set_manual(t: OffsetDateTime) {
    let nanos = i64::try_from(t.unix_timestamp_nanos())
        .unwrap_or(i64::MAX)
        .max(1);
    MANUAL.store(nanos, Ordering::Release);
}

/// Whether a file clock is in force (status says so: a test run must not pass for a
/// real one).
pub fn is_file_clock() -> bool {
    FILE_CLOCK.get().is_some()
}

fn read_file_clock(path: &PathBuf) -> Option<OffsetDateTime> {
    let text = std::fs::read_to_string(path).ok()?;
    OffsetDateTime::parse(text.trim(), &Rfc3339).ok()
}
