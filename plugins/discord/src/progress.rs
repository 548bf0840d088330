//! Which webhook bodies of a split message Discord already has, so that a retry sends
//! only the rest: nothing lost, nothing twice. Kept in memory only: after the router
//! restarts, a half-sent message is sent again from its first body.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use serde::Serialize;

/// How many half-sent messages are remembered; the oldest is forgotten first.
pub(crate) const REMEMBERED: usize = 1024;

/// Bodies already delivered, per message id.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    sent: HashMap<String, (u64, usize)>,
    order: VecDeque<String>,
}

impl Progress {
    /// How many of the bodies with this `fingerprint` were delivered for message `id`.
    /// Bodies that changed since (a re-rendered message) start from the first.
    pub(crate) fn sent(&self, id: &str, fingerprint: u64) -> usize {
        match self.sent.get(id) {
            Some((fp, n)) if *fp == fingerprint => *n,
            _ => 0,
        }
    }

    /// Whether something was remembered for `id` with a different fingerprint.
    pub(crate) fn changed(&self, id: &str, fingerprint: u64) -> bool {
        self.sent.get(id).is_some_and(|(fp, _)| *fp != fingerprint)
    }

    /// Remembers that the first `sent` bodies of message `id` were delivered.
    pub(crate) fn record(&mut self, id: &str, fingerprint: u64, sent: usize) {
        if self
            .sent
            .insert(id.to_owned(), (fingerprint, sent))
            .is_none()
        {
            self.order.push_back(id.to_owned());
        }
        while self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.sent.remove(&old);
            }
        }
    }

    /// Forgets message `id`: it was delivered in full.
    pub(crate) fn forget(&mut self, id: &str) {
        if self.sent.remove(id).is_some() {
            self.order.retain(|known| known != id);
        }
    }
}

/// Identifies a list of bodies, to notice when a message's bodies changed between
/// attempts.
pub(crate) fn fingerprint<T: Serialize>(bodies: &[T]) -> u64 {
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(bodies)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_sent_bodies_until_forgotten() {
        let mut progress = Progress::default();
        let fp = fingerprint(&["a", "b", "c"]);
        assert_eq!(progress.sent("m1", fp), 0);
        progress.record("m1", fp, 2);
        assert_eq!(progress.sent("m1", fp), 2);
        assert_eq!(progress.sent("m2", fp), 0);
        assert!(!progress.changed("m1", fp));

        let other = fingerprint(&["a", "b", "d"]);
        assert_ne!(fp, other);
        assert_eq!(progress.sent("m1", other), 0, "changed bodies start over");
        assert!(progress.changed("m1", other));

        progress.forget("m1");
        assert_eq!(progress.sent("m1", fp), 0);
        assert!(progress.order.is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let mut progress = Progress::default();
        for i in 0..REMEMBERED + 10 {
            progress.record(&format!("m{i}"), 1, 1);
        }
        assert_eq!(progress.sent.len(), REMEMBERED);
        assert_eq!(progress.sent("m0", 1), 0, "the oldest is forgotten");
        assert_eq!(progress.sent(&format!("m{}", REMEMBERED + 9), 1), 1);
    }
}
