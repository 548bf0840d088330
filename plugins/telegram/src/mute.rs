//! `/mute`: holding back this sink's notifications below critical (optionally of one
//! event type) until a time, counting what was held, and the summary the bot posts
//! when the mute ends. Times are Unix seconds so a mute survives a restart. It stays
//! the bot's own, as muting a chat is in Telegram: the other sinks go on; a router
//! silence (`/silence`, `silences.rs`) holds events back from every sink.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::Severity;

/// The longest mute `/mute` accepts: a forgotten mute should not silence a sink forever.
pub const MAX_MUTE: Duration = Duration::from_secs(7 * 24 * 3600);

/// An active mute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mute {
    /// When the mute began (Unix seconds).
    pub since: u64,
    /// When it ends by itself (Unix seconds).
    pub until: u64,
    /// Only events of this type are held; `None` holds every type.
    #[serde(default)]
    pub event_type: Option<String>,
    /// Notifications held back so far.
    #[serde(default)]
    pub held: u64,
    /// The user who muted.
    #[serde(default)]
    pub by: Option<i64>,
}

/// A mute that ended: what the bot reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub held: u64,
    /// How long the mute lasted.
    pub lasted: Duration,
    pub event_type: Option<String>,
    /// `true` when it ran out, `false` after `/unmute`.
    pub expired: bool,
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// [`unix_now`] rounded up: a mute that starts then lasts at least as long as asked.
pub fn unix_now_ceil() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

impl Mute {
    /// Whether an event of `event_type` at `severity` is held at `now`. Critical
    /// events always go through.
    pub fn holds(&self, event_type: &str, severity: Severity, now: u64) -> bool {
        now < self.until
            && severity < Severity::Critical
            && self.event_type.as_deref().is_none_or(|t| t == event_type)
    }

    fn end(&self, now: u64, expired: bool) -> Ended {
        let end = if expired { self.until } else { now };
        Ended {
            held: self.held,
            lasted: Duration::from_secs(end.saturating_sub(self.since)),
            event_type: self.event_type.clone(),
            expired,
        }
    }
}

/// The mute state of one bot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MuteState {
    #[serde(default)]
    pub current: Option<Mute>,
}

impl MuteState {
    /// Counts and holds the event if a mute covers it.
    pub fn hold(&mut self, event_type: &str, severity: Severity, now: u64) -> bool {
        match &mut self.current {
            Some(mute) if mute.holds(event_type, severity, now) => {
                mute.held += 1;
                true
            }
            _ => false,
        }
    }

    /// Starts a mute for `length`, or changes the running one (which keeps its start
    /// and its count, so the final summary covers the whole quiet time).
    pub fn start(
        &mut self,
        length: Duration,
        event_type: Option<String>,
        by: Option<i64>,
        now: u64,
    ) -> Mute {
        let until = now.saturating_add(length.as_secs());
        let mute = match self.current.take() {
            Some(running) if running.until > now => Mute {
                until,
                event_type,
                by,
                ..running
            },
            _ => Mute {
                since: now,
                until,
                event_type,
                held: 0,
                by,
            },
        };
        self.current = Some(mute.clone());
        mute
    }

    /// Ends the mute now (`/unmute`). `None` if nothing was muted.
    pub fn stop(&mut self, now: u64) -> Option<Ended> {
        let mute = self.current.take()?;
        let expired = mute.until <= now;
        Some(mute.end(now, expired))
    }

    /// Ends the mute if its time is up.
    pub fn expire(&mut self, now: u64) -> Option<Ended> {
        match &self.current {
            Some(mute) if mute.until <= now => {
                let ended = mute.end(now, true);
                self.current = None;
                Some(ended)
            }
            _ => None,
        }
    }

    /// When the running mute ends, if one runs.
    pub fn until(&self) -> Option<u64> {
        self.current.as_ref().map(|m| m.until)
    }
}

/// Parses a duration as `/mute` takes it (see [`crate::duration`]), at most
/// [`MAX_MUTE`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let length =
        crate::duration::parse(text).ok_or_else(|| crate::duration::not_a_duration(text.trim()))?;
    let text = text.trim();
    if length.is_zero() {
        return Err(format!(
            "{text:?} is no time at all; use /unmute to end a mute"
        ));
    }
    if length > MAX_MUTE {
        return Err(format!(
            "{text:?} is longer than the longest mute, {} days",
            MAX_MUTE.as_secs() / 86400
        ));
    }
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = |s: &str| parse_duration(s).expect(s).as_secs();
        assert_eq!(ok("90s"), 90);
        assert_eq!(ok("30m"), 1800);
        assert_eq!(ok("30"), 1800);
        assert_eq!(ok("1h30m"), 5400);
        assert_eq!(ok("2H"), 7200);
        assert_eq!(ok("1d"), 86400);
        for bad in ["", "soon", "30x", "m", "1h30", "0m", "8d", "-5m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn holds_everything_below_critical_until_it_ends() {
        let mut state = MuteState::default();
        state.start(Duration::from_secs(60), None, Some(7), 1000);
        assert!(state.hold("trade_opened", Severity::Error, 1000));
        assert!(state.hold("error", Severity::Info, 1059));
        assert!(!state.hold("error", Severity::Critical, 1010));
        assert!(!state.hold("error", Severity::Info, 1060), "over at until");
        assert_eq!(state.expire(1059), None);
        let ended = state.expire(1061).expect("expired");
        assert_eq!(
            ended,
            Ended {
                held: 2,
                lasted: Duration::from_secs(60),
                event_type: None,
                expired: true
            }
        );
        assert_eq!(state.current, None);
    }

    #[test]
    fn a_typed_mute_holds_only_that_type() {
        let mut state = MuteState::default();
        state.start(
            Duration::from_secs(60),
            Some("trade_opened".into()),
            None,
            0,
        );
        assert!(state.hold("trade_opened", Severity::Info, 1));
        assert!(!state.hold("trade_closed", Severity::Info, 1));
    }

    #[test]
    fn unmute_reports_the_count_and_how_long() {
        let mut state = MuteState::default();
        state.start(Duration::from_secs(1800), None, None, 100);
        state.hold("x", Severity::Info, 101);
        let ended = state.stop(400).expect("was muted");
        assert_eq!(ended.held, 1);
        assert_eq!(ended.lasted, Duration::from_secs(300));
        assert!(!ended.expired);
        assert_eq!(state.stop(401), None);
    }

    #[test]
    fn muting_again_extends_and_keeps_the_count() {
        let mut state = MuteState::default();
        state.start(Duration::from_secs(60), None, None, 0);
        state.hold("x", Severity::Info, 1);
        let mute = state.start(Duration::from_secs(600), None, None, 30);
        assert_eq!((mute.since, mute.until, mute.held), (0, 630, 1));
    }
}
