//! A bound on label *combinations*: the first `max` distinct (label, label) pairs of a family
//! get their own series, later ones fold into `other`, so a flood of agent names or error
//! types cannot blow up Prometheus, whatever the product of the labels.
//!
//! Admitted pairs are kept by recent activity: once the guard is full, a new pair takes the
//! place of the pair seen longest ago if that one has been idle for the guard's idle time, and
//! the caller removes the evicted pair's series. A burst of junk names therefore holds places
//! only while it lasts; real agents that keep sending get theirs back once it has passed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The value that stands for every value past the limit.
pub const OTHER: &str = "other";

/// Two label values of one series.
pub type Pair = (String, String);

/// The labels a pair gets, and the pair whose place it took, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The pair itself, or `(other, other)`.
    pub labels: Pair,
    /// A pair evicted to make room: its series must be removed.
    pub evicted: Option<Pair>,
}

#[derive(Debug, Default)]
struct Admitted {
    last_seen: HashMap<Pair, Instant>,
    by_age: BTreeSet<(Instant, Pair)>,
}

/// Distinct label pairs admitted for one family.
#[derive(Debug)]
pub struct SeriesGuard {
    max: usize,
    idle: Duration,
    admitted: Mutex<Admitted>,
}

impl SeriesGuard {
    /// Admits up to `max` distinct pairs; one idle for `idle` may be replaced.
    pub fn new(max: usize, idle: Duration) -> Self {
        Self {
            max,
            idle,
            admitted: Mutex::new(Admitted::default()),
        }
    }

    /// Admits `(first, second)` at `now`.
    pub fn admit(&self, first: &str, second: &str, now: Instant) -> Admission {
        let mut admitted = self.admitted.lock().unwrap_or_else(|p| p.into_inner());
        let pair = (first.to_owned(), second.to_owned());
        if let Some(seen) = admitted.last_seen.get_mut(&pair) {
            let before = std::mem::replace(seen, now);
            admitted.by_age.remove(&(before, pair.clone()));
            admitted.by_age.insert((now, pair.clone()));
            return Admission {
                labels: pair,
                evicted: None,
            };
        }
        let mut evicted = None;
        if admitted.last_seen.len() >= self.max {
            let oldest = admitted.by_age.first().cloned();
            match oldest {
                Some((seen, old)) if now.saturating_duration_since(seen) >= self.idle => {
                    admitted.by_age.remove(&(seen, old.clone()));
                    admitted.last_seen.remove(&old);
                    evicted = Some(old);
                }
                _ => {
                    return Admission {
                        labels: (OTHER.to_owned(), OTHER.to_owned()),
                        evicted: None,
                    };
                }
            }
        }
        admitted.last_seen.insert(pair.clone(), now);
        admitted.by_age.insert((now, pair.clone()));
        Admission {
            labels: pair,
            evicted,
        }
    }

    /// Pairs admitted now.
    pub fn len(&self) -> usize {
        let admitted = self.admitted.lock().unwrap_or_else(|p| p.into_inner());
        admitted.last_seen.len()
    }

    /// Whether no pair is admitted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(admission: &Admission) -> (&str, &str) {
        (&admission.labels.0, &admission.labels.1)
    }

    #[test]
    fn combinations_past_the_limit_fold_and_idle_ones_give_way() {
        let start = Instant::now();
        let guard = SeriesGuard::new(2, Duration::from_secs(60));
        assert_eq!(labels(&guard.admit("a", "x", start)), ("a", "x"));
        // Same agent, other type: a second combination, not a free one.
        assert_eq!(labels(&guard.admit("a", "y", start)), ("a", "y"));
        assert_eq!(labels(&guard.admit("b", "x", start)), (OTHER, OTHER));
        // Seen again: stays.
        let later = start + Duration::from_secs(30);
        assert_eq!(labels(&guard.admit("a", "x", later)), ("a", "x"));
        // ("a", "y") idle for 60 s: it gives way, and the caller is told.
        let much_later = start + Duration::from_secs(61);
        let admission = guard.admit("b", "x", much_later);
        assert_eq!(labels(&admission), ("b", "x"));
        assert_eq!(admission.evicted, Some(("a".into(), "y".into())));
        assert_eq!(guard.len(), 2);
    }

    #[test]
    fn a_million_distinct_pairs_hold_only_the_limit() {
        let now = Instant::now();
        let guard = SeriesGuard::new(1_000, Duration::from_secs(600));
        for n in 0..1_000_000 {
            guard.admit(&format!("agent_{n}"), &format!("type_{}", n % 1000), now);
        }
        assert_eq!(guard.len(), 1_000);
    }
}
