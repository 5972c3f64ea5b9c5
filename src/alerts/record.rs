//! The record written to `agent-alerts` when an alert fires or resolves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::rules::AlertSeverity;

/// Whether a record opens or closes an alert (PagerDuty's `event_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertAction {
    /// The alert started firing.
    Trigger,
    /// The alert stopped firing.
    Resolve,
}

impl AlertAction {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trigger => "trigger",
            Self::Resolve => "resolve",
        }
    }
}

/// One alert transition, keyed on the topic by `dedup_key` so trigger and resolve of one
/// alert stay ordered on one partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Stable identity of the alert (rule + labels): the same on trigger and resolve, and
    /// across restarts; PagerDuty's `dedup_key`.
    pub dedup_key: String,
    /// Trigger or resolve.
    pub action: AlertAction,
    /// The rule's name.
    pub rule: String,
    /// The rule's severity.
    pub severity: AlertSeverity,
    /// One line for a pager or a chat message.
    pub summary: String,
    /// The rule's description.
    pub description: String,
    /// The group the alert is about (e.g. `agent_name`, `agent_type`).
    pub labels: BTreeMap<String, String>,
    /// The window query and column watched.
    pub query: String,
    /// The column compared with the threshold.
    pub column: String,
    /// The value in the window that caused this transition (the last breaching value on a
    /// resolve).
    pub value: f64,
    /// The threshold.
    pub threshold: f64,
    /// `above` or `below`.
    pub comparison: String,
    /// Bounds of the window that caused this transition (RFC 3339).
    pub window_start: String,
    /// End of that window.
    pub window_end: String,
    /// Start of the first window in which the condition held (RFC 3339).
    pub first_seen: String,
    /// Wall-clock time the record was made (RFC 3339).
    pub emitted_at: String,
    /// Who raised it.
    pub source: String,
}

impl AlertRecord {
    /// Decodes a record from the alert topic.
    pub fn from_json(bytes: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(bytes)
    }
}

/// The stable key of an alert: a name-based UUID (v5) of the rule and its labels.
pub fn dedup_key(rule: &str, labels: &BTreeMap<String, String>) -> String {
    // Escaped, so a value holding the separators cannot pose as another label set.
    let mut name = String::new();
    crate::keys::push_escaped(&mut name, rule, &['\u{1f}']);
    for (label, value) in labels {
        name.push('\u{1f}');
        crate::keys::push_escaped(&mut name, label, &['\u{1f}', '=']);
        name.push('=');
        crate::keys::push_escaped(&mut name, value, &['\u{1f}']);
    }
    let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes());
    format!("feedback-pipeline-{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keys_are_stable_and_distinct() {
        let labels = |agent: &str| BTreeMap::from([("agent_name".to_owned(), agent.to_owned())]);
        let a = dedup_key("AgentFailureRateHigh", &labels("a"));
        assert_eq!(a, dedup_key("AgentFailureRateHigh", &labels("a")));
        assert_ne!(a, dedup_key("AgentFailureRateHigh", &labels("b")));
        assert_ne!(a, dedup_key("SlowExecutions", &labels("a")));
        assert!(a.len() <= 255, "PagerDuty's limit");
        // A value holding the separators does not pose as two labels.
        let two = BTreeMap::from([
            ("agent_name".to_owned(), "x".to_owned()),
            ("b".to_owned(), "y".to_owned()),
        ]);
        let posing = labels("x\u{1f}b=y");
        assert_ne!(dedup_key("R", &two), dedup_key("R", &posing));
    }
}
