//! Sanitizers: redact sensitive values from an event before it leaves the process.

use std::collections::HashSet;

use serde_json::Value;

use crate::event::OutcomeEvent;

/// Rewrites an event before it is recorded (and so before it reaches logs, Kafka or the spool).
pub trait Sanitizer: Send + Sync {
    /// Redacts what must not leave the process.
    fn sanitize(&self, event: &mut OutcomeEvent);
}

impl<F> Sanitizer for F
where
    F: Fn(&mut OutcomeEvent) + Send + Sync,
{
    fn sanitize(&self, event: &mut OutcomeEvent) {
        self(event)
    }
}

/// The text that replaces a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// Replaces the value of every object key in a list (any depth, case-insensitive) in `output`
/// and `metadata` with [`REDACTED`].
#[derive(Debug, Clone)]
pub struct RedactFields {
    keys: HashSet<String>,
}

impl RedactFields {
    /// Redacts the given keys, e.g. `["ssn", "password"]`.
    pub fn new<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            keys: keys
                .into_iter()
                .map(|key| key.as_ref().to_ascii_lowercase())
                .collect(),
        }
    }

    fn redact(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    if self.keys.contains(&key.to_ascii_lowercase()) {
                        *value = Value::from(REDACTED);
                    } else {
                        self.redact(value);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact(item)),
            _ => {}
        }
    }
}

impl Sanitizer for RedactFields {
    fn sanitize(&self, event: &mut OutcomeEvent) {
        if let Some(output) = &mut event.output {
            self.redact(output);
        }
        if let Some(metadata) = &mut event.metadata {
            for (key, value) in metadata.iter_mut() {
                if self.keys.contains(&key.to_ascii_lowercase()) {
                    *value = Value::from(REDACTED);
                } else {
                    self.redact(value);
                }
            }
        }
    }
}
