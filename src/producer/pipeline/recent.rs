//! [`RecentEvents`]: a bounded ring buffer of the latest events, queryable in process.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::event::{OutcomeEvent, OutcomeStatus};

/// The most recent events, oldest first; the oldest is evicted when full.
#[derive(Debug)]
pub struct RecentEvents {
    capacity: usize,
    events: Mutex<VecDeque<Arc<OutcomeEvent>>>,
}

impl RecentEvents {
    /// A buffer holding at most `capacity` events (0 keeps none).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            events: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    /// Adds an event, evicting the oldest when full.
    pub fn push(&self, event: Arc<OutcomeEvent>) {
        if self.capacity == 0 {
            return;
        }
        let evicted = {
            let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
            let evicted = (events.len() == self.capacity).then(|| events.pop_front());
            events.push_back(event);
            evicted
        };
        // The evicted event may be the last reference: free it outside the lock.
        drop(evicted);
    }

    /// The latest `count` events matching the filters, oldest first.
    pub fn query(
        &self,
        count: usize,
        status: Option<OutcomeStatus>,
        agent_name: Option<&str>,
    ) -> Vec<Arc<OutcomeEvent>> {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let mut matching: Vec<Arc<OutcomeEvent>> = events
            .iter()
            .rev()
            .filter(|event| status.is_none_or(|status| event.status == status))
            .filter(|event| agent_name.is_none_or(|name| event.agent_name == name))
            .take(count)
            .cloned()
            .collect();
        matching.reverse();
        matching
    }
}
