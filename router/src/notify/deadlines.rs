//! Things that come due, kept in the order of their times: which are due by now and
//! when the next one is are a lookup, not a scan. Alerts (their timeouts) and groups
//! (when each speaks) keep one each: with a hundred thousand alerts firing, a scan per
//! event was the router's limit.

use std::collections::BTreeSet;

/// The due times (Unix ms) of things named by `K`; at most one time each.
#[derive(Debug)]
pub struct Deadlines<K: Ord> {
    set: BTreeSet<(i64, K)>,
}

impl<K: Ord> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            set: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone + Default> Deadlines<K> {
    /// `id`'s time changed from `before` to `after` (either none: it had none, or has
    /// none any more).
    pub fn moved(&mut self, id: &K, before: Option<i64>, after: Option<i64>) {
        if before == after {
            return;
        }
        if let Some(t) = before {
            self.set.remove(&(t, id.clone()));
        }
        if let Some(t) = after {
            self.set.insert((t, id.clone()));
        }
    }

    /// What is due by `now_ms`, earliest first.
    pub fn due(&self, now_ms: i64) -> impl Iterator<Item = &K> {
        // `K::default()` sorts first among keys of one time: the bound excludes it.
        self.set
            .range(..(now_ms.saturating_add(1), K::default()))
            .map(|(_, id)| id)
    }

    /// The earliest time.
    pub fn next(&self) -> Option<i64> {
        self.set.first().map(|(t, _)| *t)
    }
}

impl<K: Ord> FromIterator<(i64, K)> for Deadlines<K> {
    fn from_iter<I: IntoIterator<Item = (i64, K)>>(iter: I) -> Self {
        Deadlines {
            set: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_is_everything_up_to_now_and_a_move_replaces_the_time() {
        let mut d: Deadlines<String> = Deadlines::default();
        d.moved(&"a".into(), None, Some(10));
        d.moved(&"b".into(), None, Some(5));
        d.moved(&String::new(), None, Some(11));
        assert_eq!(d.next(), Some(5));
        assert_eq!(d.due(10).collect::<Vec<_>>(), ["b", "a"]);
        d.moved(&"b".into(), Some(5), Some(20));
        assert_eq!(d.due(10).collect::<Vec<_>>(), ["a"]);
        d.moved(&"a".into(), Some(10), None);
        assert_eq!(d.next(), Some(11));
        assert_eq!(
            d.due(11).collect::<Vec<_>>(),
            [""],
            "an empty key at the bound's time"
        );
        assert!(d.due(i64::MAX).count() == 2);
    }
}
