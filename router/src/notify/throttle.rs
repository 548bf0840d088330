//! `throttle: {key: [...], at_most: N/period}`: at most N messages per key per period
//! (a window that starts with the first message). What is held back is counted, and the
//! next message that goes out carries how many and since when (`suppressed`), so its
//! reader knows. Kept in memory: a restart starts every window afresh (at worst N more
//! messages).

use std::collections::HashMap;

/// Throttle windows, per route and key.
#[derive(Debug, Default)]
pub struct Throttles {
    series: HashMap<(String, String), Series>,
}

#[derive(Debug)]
struct Series {
    window_start_ms: i64,
    sent: u32,
    suppressed: u64,
    suppressed_since_ms: i64,
}

/// What the throttle says about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it; with how many were held back before it, and since when, if any were.
    Send(Option<(u64, i64)>),
    HeldBack,
}

impl Throttles {
    pub fn offer(
        &mut self,
        route: &str,
        key: String,
        count: u32,
        per_ms: i64,
        now_ms: i64,
    ) -> Verdict {
        let s = self
            .series
            .entry((route.to_owned(), key))
            .or_insert(Series {
                window_start_ms: now_ms,
                sent: 0,
                suppressed: 0,
                suppressed_since_ms: now_ms,
            });
        if now_ms - s.window_start_ms >= per_ms {
            s.window_start_ms = now_ms;
            s.sent = 0;
        }
        if s.sent < count {
            s.sent += 1;
            let held = (s.suppressed > 0).then_some((s.suppressed, s.suppressed_since_ms));
            s.suppressed = 0;
            Verdict::Send(held)
        } else {
            if s.suppressed == 0 {
                s.suppressed_since_ms = now_ms;
            }
            s.suppressed += 1;
            Verdict::HeldBack
        }
    }

    /// Forgets series whose window ended with nothing held back (bounded memory).
    pub fn prune(&mut self, now_ms: i64, longest_ms: i64) {
        self.series
            .retain(|_, s| s.suppressed > 0 || now_ms - s.window_start_ms < longest_ms);
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_n_per_period_per_key_and_the_next_says_how_many_were_held() {
        let mut t = Throttles::default();
        let ten_min = 600_000;
        assert_eq!(t.offer("r", "a".into(), 1, ten_min, 0), Verdict::Send(None));
        assert_eq!(
            t.offer("r", "a".into(), 1, ten_min, 1_000),
            Verdict::HeldBack
        );
        assert_eq!(
            t.offer("r", "b".into(), 1, ten_min, 1_000),
            Verdict::Send(None),
            "another key"
        );
        assert_eq!(
            t.offer("r", "a".into(), 1, ten_min, 2_000),
            Verdict::HeldBack
        );
        assert_eq!(
            t.offer("r", "a".into(), 1, ten_min, ten_min - 1),
            Verdict::HeldBack
        );
        assert_eq!(
            t.offer("r", "a".into(), 1, ten_min, ten_min),
            Verdict::Send(Some((3, 1_000)))
        );
        assert_eq!(
            t.offer("r", "a".into(), 1, ten_min, 2 * ten_min),
            Verdict::Send(None)
        );
        t.prune(4 * ten_min, ten_min);
        assert!(t.is_empty());
    }
}
