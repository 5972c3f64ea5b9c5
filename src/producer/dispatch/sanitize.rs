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

/// Replaces every match of a set of patterns (e.g. email addresses, API-key shapes) with
/// [`REDACTED`] in the string values of `output` and `metadata` (any depth), in
/// `error_message` and in `stack_trace`. Combine with [`RedactFields`] through
/// [`Self::after`] to redact by key name and by shape.
#[derive(Debug, Clone)]
pub struct RedactPatterns {
    patterns: regex::RegexSet,
    each: Vec<regex::Regex>,
    fields: Option<RedactFields>,
}

/// The shapes [`RedactPatterns::common`] redacts: email addresses, bearer tokens, and the
/// key formats of OpenAI and Anthropic, AWS access keys, GitHub and Slack tokens.
pub const COMMON_SECRET_PATTERNS: &[&str] = &[
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{16,}",
    r"\bsk-(?:ant-)?[A-Za-z0-9_-]{20,}",
    r"\bAKIA[0-9A-Z]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
];

impl RedactPatterns {
    /// Redacts matches of `patterns` (regular expressions); an invalid one is an error.
    pub fn new<I, S>(patterns: I) -> Result<Self, regex::Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns: Vec<String> = patterns
            .into_iter()
            .map(|p| p.as_ref().to_owned())
            .collect();
        Ok(Self {
            patterns: regex::RegexSet::new(&patterns)?,
            each: patterns
                .iter()
                .map(|p| regex::Regex::new(p))
                .collect::<Result<_, _>>()?,
            fields: None,
        })
    }

    /// Redacts [`COMMON_SECRET_PATTERNS`].
    pub fn common() -> Self {
        Self::new(COMMON_SECRET_PATTERNS).expect("the common patterns compile")
    }

    /// Runs `fields` first, then these patterns.
    pub fn after(mut self, fields: RedactFields) -> Self {
        self.fields = Some(fields);
        self
    }

    fn redact_text(&self, text: &mut String) {
        if !self.patterns.is_match(text) {
            return;
        }
        for pattern in &self.each {
            if let std::borrow::Cow::Owned(replaced) = pattern.replace_all(text, REDACTED) {
                *text = replaced;
            }
        }
    }

    fn redact(&self, value: &mut Value) {
        match value {
            Value::String(text) => self.redact_text(text),
            Value::Object(map) => map.values_mut().for_each(|v| self.redact(v)),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact(v)),
            _ => {}
        }
    }
}

impl Sanitizer for RedactPatterns {
    fn sanitize(&self, event: &mut OutcomeEvent) {
        if let Some(fields) = &self.fields {
            fields.sanitize(event);
        }
        for text in [&mut event.error_message, &mut event.stack_trace]
            .into_iter()
            .flatten()
        {
            self.redact_text(text);
        }
        if let Some(output) = &mut event.output {
            self.redact(output);
        }
        if let Some(metadata) = &mut event.metadata {
            metadata.values_mut().for_each(|v| self.redact(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_at_any_depth_and_secret_shapes_in_any_text_are_redacted() {
        let mut event = OutcomeEvent::builder("a", "act").build().unwrap();
        event.output = Some(json!({
            "answer": "mail ada@example.com with sk-abcdefghijklmnopqrstuvwx",
            "nested": [{"deeper": {"password": "hunter2", "note": "AKIAABCDEFGHIJKLMNOP"}}],
            "count": 3
        }));
        event.metadata = Some(
            json!({"auth": "Bearer abcdefghijklmnopqrstuvwxyz012345"})
                .as_object()
                .unwrap()
                .clone(),
        );
        event.error_message = Some("token ghp_abcdefghijklmnopqrstuvwxyz0123456789 refused".into());
        event.stack_trace = Some("at login(ada@example.com)".into());
        RedactPatterns::common()
            .after(RedactFields::new(["password"]))
            .sanitize(&mut event);
        let text = serde_json::to_string(&event).unwrap();
        for leaked in [
            "ada@example.com",
            "sk-abc",
            "hunter2",
            "AKIAABC",
            "Bearer abc",
            "ghp_abc",
        ] {
            assert!(!text.contains(leaked), "{leaked} in {text}");
        }
        assert_eq!(event.output.as_ref().unwrap()["count"], 3);
        assert_eq!(
            event.error_message.as_deref(),
            Some("token [REDACTED] refused")
        );
        assert_eq!(event.stack_trace.as_deref(), Some("at login([REDACTED])"));
    }
}
