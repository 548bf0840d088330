//! Telegram's own limits (messages per chat, per group, overall), kept by booking a
//! slot for each message before it is sent. The router's rate limit counts deliveries;
//! this counts the `sendMessage` calls one delivery makes (one per chat and part).
//!
//! Each limit is a GCRA cell (the algorithm governor uses): a message may go when the
//! cell's "theoretical arrival time" minus the burst tolerance has passed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::config::{ChatRef, Rate, RateLimits};

/// One limit: a rate and how many messages may go back to back.
#[derive(Debug, Clone, Copy)]
struct Cell {
    interval: Duration,
    tolerance: Duration,
}

impl Cell {
    fn new(rate: Rate, burst: u32) -> Self {
        let interval = rate.interval();
        Cell {
            interval,
            tolerance: interval * burst.saturating_sub(1),
        }
    }

    /// How long after `now` a message may go, given the cell's arrival time `tat`.
    fn wait(&self, tat: Option<Instant>, now: Instant) -> Duration {
        match tat {
            Some(tat) => tat
                .checked_sub(self.tolerance)
                .map_or(Duration::ZERO, |allowed| {
                    allowed.saturating_duration_since(now)
                }),
            None => Duration::ZERO,
        }
    }

    /// The arrival time after a message sent at `at`.
    fn book(&self, tat: Option<Instant>, at: Instant) -> Instant {
        tat.map_or(at, |tat| tat.max(at)) + self.interval
    }
}

/// The slots booked so far.
#[derive(Debug)]
pub struct Pacer {
    chat: Cell,
    group: Cell,
    overall: Cell,
    chats: HashMap<ChatRef, Instant>,
    groups: HashMap<ChatRef, Instant>,
    all: Option<Instant>,
}

impl Pacer {
    pub fn new(limits: RateLimits) -> Self {
        Pacer {
            chat: Cell::new(limits.chat, limits.burst),
            group: Cell::new(limits.group, limits.burst),
            // A whole second's worth may go at once overall (30 chats, one message each).
            overall: Cell::new(limits.overall, limits.overall.count.max(limits.burst)),
            chats: HashMap::new(),
            groups: HashMap::new(),
            all: None,
        }
    }

    /// Books the earliest slot for one message to `chat`, unless that slot is more than
    /// `max_wait` away. Returns how long to wait before sending (`Ok`), or how long
    /// until a slot would be free (`Err`, nothing booked).
    pub fn reserve(
        &mut self,
        chat: &ChatRef,
        now: Instant,
        max_wait: Duration,
    ) -> Result<Duration, Duration> {
        let mut wait = self
            .chat
            .wait(self.chats.get(chat).copied(), now)
            .max(self.overall.wait(self.all, now));
        if chat.is_group() {
            wait = wait.max(self.group.wait(self.groups.get(chat).copied(), now));
        }
        if wait > max_wait {
            return Err(wait);
        }
        let at = now + wait;
        let booked = self.chat.book(self.chats.get(chat).copied(), at);
        self.chats.insert(chat.clone(), booked);
        if chat.is_group() {
            let booked = self.group.book(self.groups.get(chat).copied(), at);
            self.groups.insert(chat.clone(), booked);
        }
        self.all = Some(self.overall.book(self.all, at));
        Ok(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(chat: &str, group: &str, overall: &str, burst: u32) -> RateLimits {
        let rate = |s: &str| Rate::parse(s).expect("rate");
        RateLimits {
            chat: rate(chat),
            group: rate(group),
            overall: rate(overall),
            burst,
        }
    }

    const FOREVER: Duration = Duration::from_secs(3600);

    #[test]
    fn a_burst_goes_at_once_then_one_per_interval() {
        let mut pacer = Pacer::new(limits("1/s", "20/min", "30/s", 3));
        let chat = ChatRef::Id(42);
        let now = Instant::now();
        let waits: Vec<_> = (0..5)
            .map(|_| pacer.reserve(&chat, now, FOREVER).expect("booked"))
            .collect();
        assert_eq!(
            waits,
            [0, 0, 0, 1000, 2000].map(Duration::from_millis).to_vec()
        );
    }

    #[test]
    fn chats_do_not_share_a_pace() {
        let mut pacer = Pacer::new(limits("1/s", "20/min", "30/s", 1));
        let now = Instant::now();
        for id in 1..=5 {
            let wait = pacer.reserve(&ChatRef::Id(id), now, FOREVER);
            assert_eq!(wait, Ok(Duration::ZERO));
        }
        assert_eq!(
            pacer.reserve(&ChatRef::Id(1), now, FOREVER),
            Ok(Duration::from_secs(1))
        );
    }

    #[test]
    fn groups_get_the_slower_group_pace() {
        let mut pacer = Pacer::new(limits("1/s", "20/min", "30/s", 1));
        let group = ChatRef::Id(-100);
        let now = Instant::now();
        assert_eq!(pacer.reserve(&group, now, FOREVER), Ok(Duration::ZERO));
        assert_eq!(
            pacer.reserve(&group, now, FOREVER),
            Ok(Duration::from_secs(3))
        );
    }

    #[test]
    fn the_overall_limit_spans_chats() {
        let mut pacer = Pacer::new(limits("10/s", "20/min", "2/s", 1));
        let now = Instant::now();
        assert_eq!(
            pacer.reserve(&ChatRef::Id(1), now, FOREVER),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            pacer.reserve(&ChatRef::Id(2), now, FOREVER),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            pacer.reserve(&ChatRef::Id(3), now, FOREVER),
            Ok(Duration::from_millis(500))
        );
    }

    #[test]
    fn a_slot_too_far_away_is_not_booked() {
        let mut pacer = Pacer::new(limits("1/s", "20/min", "30/s", 1));
        let chat = ChatRef::Id(7);
        let now = Instant::now();
        assert_eq!(
            pacer.reserve(&chat, now, Duration::ZERO),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            pacer.reserve(&chat, now, Duration::ZERO),
            Err(Duration::from_secs(1))
        );
        // Refused, so the next second's slot is still free.
        let later = now + Duration::from_secs(1);
        assert_eq!(
            pacer.reserve(&chat, later, Duration::ZERO),
            Ok(Duration::ZERO)
        );
    }
}
