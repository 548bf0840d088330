//! Which messages of a split Slack message were already posted, so that a retry sends
//! only the rest: nothing lost, nothing twice. Kept in memory only: after the router
//! restarts, a half-sent message is sent again from its first part.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use serde_json::Value;

/// How many half-sent messages are remembered; the oldest is forgotten first.
const REMEMBERED: usize = 1024;

/// Parts already posted, per message id, with the fingerprint of the parts.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    sent: HashMap<String, (u64, usize)>,
    order: VecDeque<String>,
}

impl Progress {
    /// How many of the parts with this `fingerprint` were posted for message `id`;
    /// parts that changed since (a re-rendered message) start from the first.
    pub(crate) fn sent(&self, id: &str, fingerprint: u64) -> usize {
        match self.sent.get(id) {
            Some((fp, n)) if *fp == fingerprint => *n,
            _ => 0,
        }
    }

    /// Remembers that the first `sent` parts of message `id` were posted.
    pub(crate) fn record(&mut self, id: &str, fingerprint: u64, sent: usize) {
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

    /// Forgets message `id` (it was delivered whole).
    pub(crate) fn forget(&mut self, id: &str) {
        if self.sent.remove(id).is_some() {
            self.order.retain(|k| k != id);
        }
    }
}

/// A fingerprint of the parts, to notice a payload that changed between attempts.
pub(crate) fn fingerprint(bodies: &[Value]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for body in bodies {
        body.to_string().hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn remembers_parts_until_forgotten_or_changed() {
        let mut progress = Progress::default();
        let fp = fingerprint(&[json!({"text": "a"})]);
        assert_eq!(progress.sent("m1", fp), 0);
        progress.record("m1", fp, 2);
        assert_eq!(progress.sent("m1", fp), 2);
        assert_eq!(
            progress.sent("m1", fp ^ 1),
            0,
            "a changed payload starts over"
        );
        progress.forget("m1");
        assert_eq!(progress.sent("m1", fp), 0);
        for n in 0..REMEMBERED + 5 {
            progress.record(&n.to_string(), fp, 1);
        }
        assert_eq!(progress.sent("0", fp), 0, "the oldest is forgotten");
        assert_eq!(progress.sent(&(REMEMBERED + 4).to_string(), fp), 1);
    }
}
