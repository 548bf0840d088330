//! [`Progress`]: which parts of a message that goes out as several requests (a long
//! message split to fit a service's limits) were already delivered, so that a retry
//! sends only the rest: nothing lost, nothing twice.
//!
//! Kept in memory only: after the router restarts, a half-sent message is sent again
//! from its first part (at least once, as every delivery).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use serde::Serialize;

use crate::Outcome;

/// How many half-sent messages are remembered; the oldest is forgotten first. A
/// message the router gave up on never comes back, so its entry only has to make room.
const REMEMBERED: usize = 1024;

/// The parts already delivered, per message id, for the messages that were sent in
/// part. Bounded: at most 1,024 messages, the oldest forgotten first.
///
/// A sink's `deliver` for a message that goes out as several requests:
///
/// ```
/// use alert_router_plugin::{Outcome, Progress};
///
/// let mut progress = Progress::default();
/// let parts = ["one", "two", "three"];
/// let mut delivered = Vec::new();
/// let mut busy_once = true;
/// let mut post = |part: &&str| {
///     if *part == "two" && std::mem::take(&mut busy_once) {
///         return Outcome::retry("busy");
///     }
///     delivered.push(part.to_string());
///     Outcome::Ok
/// };
///
/// let resume = progress.resume("m1", &parts);
/// let first = progress.send_rest("m1", &parts, resume, &mut post);
/// assert_eq!(first, Outcome::retry("part 2 of 3: busy"));
///
/// // The router retries the message: only "two" and "three" go.
/// let resume = progress.resume("m1", &parts);
/// assert_eq!(resume.sent, 1);
/// assert_eq!(progress.send_rest("m1", &parts, resume, &mut post), Outcome::Ok);
/// assert_eq!(delivered, ["one", "two", "three"]);
/// ```
#[derive(Debug, Default)]
pub struct Progress {
    sent: HashMap<String, (u64, usize)>,
    order: VecDeque<String>,
}

/// Where a message picks up, from [`Progress::resume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// How many of the parts were delivered already: 0 for a message not sent before,
    /// or one whose parts changed since.
    pub sent: usize,
    /// Part of the message was sent before, but its parts are not the same now (it was
    /// rendered again): it starts over, and the service may show the first parts twice.
    pub changed: bool,
    fingerprint: u64,
}

impl Progress {
    /// Where message `id` picks up, given the `parts` it goes out as now.
    pub fn resume<T: Serialize>(&self, id: &str, parts: &[T]) -> Resume {
        let fingerprint = fingerprint(parts);
        let (sent, changed) = match self.sent.get(id) {
            Some((fp, n)) if *fp == fingerprint => (*n, false),
            Some(_) => (0, true),
            None => (0, false),
        };
        Resume {
            sent,
            changed,
            fingerprint,
        }
    }

    /// Sends the parts of message `id` from `resume.sent` on, in order, each with one
    /// call of `send`, and stops at the first that is not delivered: then it remembers
    /// how many went through and returns that part's outcome, saying which part it was
    /// ([`Outcome::in_part`]). When the last part is delivered the message is forgotten
    /// and the result is [`Outcome::Ok`].
    ///
    /// `resume` is what [`resume`](Progress::resume) gave for these same `parts`.
    pub fn send_rest<T>(
        &mut self,
        id: &str,
        parts: &[T],
        resume: Resume,
        mut send: impl FnMut(&T) -> Outcome,
    ) -> Outcome {
        let mut sent = resume.sent;
        while let Some(part) = parts.get(sent) {
            match send(part) {
                Outcome::Ok => sent += 1,
                outcome => {
                    if sent > 0 {
                        self.record(id, resume.fingerprint, sent);
                    }
                    return outcome.in_part(sent, parts.len());
                }
            }
        }
        self.forget(id);
        Outcome::Ok
    }

    /// Remembers that the first `sent` parts of message `id` were delivered.
    fn record(&mut self, id: &str, fingerprint: u64, sent: usize) {
        if self
            .sent
            .insert(id.to_owned(), (fingerprint, sent))
            .is_none()
        {
            self.order.push_back(id.to_owned());
            while self.order.len() > REMEMBERED {
                if let Some(oldest) = self.order.pop_front() {
                    self.sent.remove(&oldest);
                }
            }
        }
    }

    /// Forgets message `id`: it was delivered whole.
    fn forget(&mut self, id: &str) {
        if self.sent.remove(id).is_some() {
            self.order.retain(|known| known != id);
        }
    }
}

/// Identifies a list of parts, to notice parts that changed between attempts.
fn fingerprint<T: Serialize>(parts: &[T]) -> u64 {
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(parts)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends with `send`, answering from `script` (then `Ok`), and lists what went.
    fn attempt(
        progress: &mut Progress,
        id: &str,
        parts: &[&'static str],
        script: &mut Vec<Outcome>,
        went: &mut Vec<&'static str>,
    ) -> Outcome {
        let resume = progress.resume(id, parts);
        progress.send_rest(id, parts, resume, |part| {
            let outcome = if script.is_empty() {
                Outcome::Ok
            } else {
                script.remove(0)
            };
            if outcome == Outcome::Ok {
                went.push(part);
            }
            outcome
        })
    }

    #[test]
    fn a_retry_sends_only_the_parts_not_delivered() {
        let mut progress = Progress::default();
        let parts = ["a", "b", "c"];
        let mut script = vec![Outcome::Ok, Outcome::retry("busy")];
        let mut went = Vec::new();
        let first = attempt(&mut progress, "m1", &parts, &mut script, &mut went);
        assert_eq!(first, Outcome::retry("part 2 of 3: busy"));
        assert_eq!(
            progress.resume("m1", &parts),
            Resume {
                sent: 1,
                changed: false,
                fingerprint: fingerprint(&parts)
            }
        );
        assert_eq!(
            progress.resume("m2", &parts).sent,
            0,
            "other messages start at 0"
        );

        let second = attempt(&mut progress, "m1", &parts, &mut script, &mut went);
        assert_eq!(second, Outcome::Ok);
        assert_eq!(went, ["a", "b", "c"], "nothing twice, nothing lost");
        assert_eq!(
            progress.resume("m1", &parts).sent,
            0,
            "forgotten once whole"
        );
        assert!(progress.order.is_empty());
    }

    #[test]
    fn parts_that_changed_start_over_and_say_so() {
        let mut progress = Progress::default();
        let mut script = vec![Outcome::Ok, Outcome::fail("no")];
        let mut went = Vec::new();
        let first = attempt(&mut progress, "m1", &["a", "b"], &mut script, &mut went);
        assert_eq!(first, Outcome::fail("part 2 of 2: no"));
        let resume = progress.resume("m1", &["a", "B"]);
        assert_eq!((resume.sent, resume.changed), (0, true));
        attempt(&mut progress, "m1", &["a", "B"], &mut script, &mut went);
        assert_eq!(went, ["a", "a", "B"]);
    }

    #[test]
    fn a_message_of_one_part_is_never_remembered() {
        let mut progress = Progress::default();
        let mut script = vec![Outcome::retry("busy")];
        let outcome = attempt(&mut progress, "m1", &["a"], &mut script, &mut Vec::new());
        assert_eq!(
            outcome,
            Outcome::retry("busy"),
            "no part number for one part"
        );
        assert!(progress.sent.is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let mut progress = Progress::default();
        for i in 0..REMEMBERED + 10 {
            progress.record(&format!("m{i}"), 1, 1);
        }
        assert_eq!(progress.sent.len(), REMEMBERED);
        assert_eq!(progress.order.len(), REMEMBERED);
        assert!(!progress.sent.contains_key("m0"), "the oldest is forgotten");
        assert!(progress.sent.contains_key(&format!("m{}", REMEMBERED + 9)));
    }
}
