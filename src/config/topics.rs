//! [`Topics`]: the topic names, checked against Kafka's rule for them.

use super::ConfigError;
use super::parse::{self, VarSource};

/// Names of the topics the pipeline reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Outcome events in (`KAFKA_OUTCOME_TOPIC`).
    pub outcomes: String,
    /// Window results out (`KAFKA_METRICS_TOPIC`).
    pub metrics: String,
    /// Alert records out (`KAFKA_ALERTS_TOPIC`).
    pub alerts: String,
    /// Rejected input out (`KAFKA_DLQ_TOPIC`).
    pub dead_letters: String,
}

pub(super) fn topic(source: &VarSource, name: &str) -> Result<String, ConfigError> {
    let value = source.get_or_default(name);
    // Kafka's own rule for topic names.
    let legal = value.len() <= 249
        && value != "."
        && value != ".."
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if legal {
        Ok(value.to_owned())
    } else {
        Err(parse::invalid(
            name,
            value,
            "a Kafka topic name: up to 249 of a-z, A-Z, 0-9, '.', '_', '-'",
        ))
    }
}
