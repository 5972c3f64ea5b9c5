//! A bound on label values: the first `max` distinct values pass, later ones become
//! `other`, so a runaway agent name or error type cannot blow up Prometheus.

use std::collections::HashSet;
use std::sync::Mutex;

/// The value that stands for every value past the limit.
pub const OTHER: &str = "other";

/// Distinct values admitted for one label.
#[derive(Debug)]
pub struct LabelGuard {
    max: usize,
    seen: Mutex<HashSet<String>>,
}

impl LabelGuard {
    /// Admits up to `max` distinct values.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// `value` if it is (or can become) one of the admitted values, else [`OTHER`].
    pub fn admit<'a>(&self, value: &'a str) -> &'a str {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(value) {
            return value;
        }
        if seen.len() < self.max {
            seen.insert(value.to_owned());
            return value;
        }
        OTHER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_limit_fold_into_other() {
        let guard = LabelGuard::new(2);
        assert_eq!(guard.admit("a"), "a");
        assert_eq!(guard.admit("b"), "b");
        assert_eq!(guard.admit("c"), OTHER);
        assert_eq!(guard.admit("a"), "a");
    }
}
