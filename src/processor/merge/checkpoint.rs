//! [`MergeCheckpoint`]: how far the owner of a repartition partition has read and emitted,
//! kept as the metadata of the partition's committed offset. A new owner replays the
//! partition from that offset to rebuild the windows still open, and the checkpoint tells it
//! which of them were emitted (and judged by the alert rules) already.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::window::Millis;

/// One repartition partition's checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MergeCheckpoint {
    /// The next offset the owner had not read: records before it are replays.
    pub read_through: i64,
    /// Per query: windows ending at or before this were emitted.
    pub emitted: BTreeMap<String, Millis>,
}

impl MergeCheckpoint {
    /// Moves this checkpoint forward to `read_through` and `query`'s `emitted` bound; never
    /// back (a new owner commits before it has caught up).
    pub fn advance(&mut self, read_through: i64, emitted: (&str, Millis)) {
        self.read_through = self.read_through.max(read_through);
        let (query, through) = emitted;
        let entry = self.emitted.entry(query.to_owned()).or_insert(Millis::MIN);
        *entry = (*entry).max(through);
    }

    /// Where `query`'s windows were emitted through, if anywhere.
    pub fn emitted_through(&self, query: &str) -> Option<Millis> {
        self.emitted.get(query).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_only_moves_forward() {
        let mut checkpoint = MergeCheckpoint::default();
        checkpoint.advance(10, ("q", 60_000));
        checkpoint.advance(4, ("q", 0));
        assert_eq!(checkpoint.read_through, 10);
        assert_eq!(checkpoint.emitted_through("q"), Some(60_000));
        assert_eq!(checkpoint.emitted_through("other"), None);
        let text = serde_json::to_string(&checkpoint).unwrap();
        assert_eq!(
            serde_json::from_str::<MergeCheckpoint>(&text).unwrap(),
            checkpoint
        );
    }
}
