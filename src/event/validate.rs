//! The rules a decoded or built event must meet beyond its JSON types. They are written once,
//! on [`OutcomeEventView`]; an [`OutcomeEvent`] is checked through its view.

use super::error::{EventError, EventErrorKind};
use super::limits::{MAX_MESSAGE_CHARS, MAX_NAME_CHARS, MAX_STACK_TRACE_CHARS, MAX_TAGS};
use super::outcome::OutcomeEvent;
use super::view::OutcomeEventView;

impl OutcomeEvent {
    /// Checks the rules the JSON types cannot express: non-empty ids, finite non-negative
    /// measurements, scores within 0..=1 and the size limits of [`super::limits`].
    pub fn validate(&self) -> Result<(), EventError> {
        self.view().validate()
    }
}

impl OutcomeEventView<'_> {
    /// Checks the rules of [`OutcomeEvent::validate`].
    pub fn validate(&self) -> Result<(), EventError> {
        required_name("event_id", &self.event_id)?;
        required_name("run_id", &self.run_id)?;
        required_name("agent_name", &self.agent_name)?;
        required_name("action_type", &self.action_type)?;
        for (field, value) in [
            ("agent_type", &self.agent_type),
            ("error_type", &self.error_type),
            ("model", &self.model),
            ("provider", &self.provider),
            ("correlation_id", &self.correlation_id),
            ("workflow_id", &self.workflow_id),
        ] {
            if let Some(value) = value {
                max_chars(field, value, MAX_NAME_CHARS)?;
            }
        }
        if let Some(message) = &self.error_message {
            max_chars("error_message", message, MAX_MESSAGE_CHARS)?;
        }
        if let Some(trace) = &self.stack_trace {
            max_chars("stack_trace", trace, MAX_STACK_TRACE_CHARS)?;
        }
        non_negative("duration_ms", Some(self.duration_ms))?;
        non_negative("latency_ms", Some(self.latency_ms))?;
        non_negative("llm_latency_ms", self.llm_latency_ms)?;
        non_negative("memory_used_mb", self.memory_used_mb)?;
        non_negative("cpu_time_ms", self.cpu_time_ms)?;
        non_negative("cost_estimate", self.cost_estimate)?;
        unit_interval("quality_score", self.quality_score)?;
        unit_interval("confidence_score", self.confidence_score)?;
        if let Some(tags) = &self.tags {
            if tags.len() > MAX_TAGS {
                return Err(EventError::field(
                    EventErrorKind::InvalidValue,
                    "tags",
                    format!("{} tags, the limit is {MAX_TAGS}", tags.len()),
                ));
            }
            for (index, tag) in tags.iter().enumerate() {
                max_chars(&format!("tags[{index}]"), tag, MAX_NAME_CHARS)?;
            }
        }
        Ok(())
    }
}

fn required_name(field: &str, value: &str) -> Result<(), EventError> {
    if value.is_empty() {
        return Err(EventError::field(
            EventErrorKind::InvalidValue,
            field,
            "must not be empty",
        ));
    }
    max_chars(field, value, MAX_NAME_CHARS)
}

fn max_chars(field: &str, value: &str, limit: usize) -> Result<(), EventError> {
    // Byte length bounds the char count from above, so most values skip the count.
    if value.len() > limit && value.chars().count() > limit {
        return Err(EventError::field(
            EventErrorKind::InvalidValue,
            field,
            format!("{} characters, the limit is {limit}", value.chars().count()),
        ));
    }
    Ok(())
}

fn non_negative(field: &str, value: Option<f64>) -> Result<(), EventError> {
    match value {
        Some(number) if !number.is_finite() => Err(EventError::field(
            EventErrorKind::InvalidValue,
            field,
            format!("{number} is not a finite number"),
        )),
        Some(number) if number < 0.0 => Err(EventError::field(
            EventErrorKind::InvalidValue,
            field,
            format!("{number} is negative"),
        )),
        _ => Ok(()),
    }
}

fn unit_interval(field: &str, value: Option<f64>) -> Result<(), EventError> {
    non_negative(field, value)?;
    match value {
        Some(number) if number > 1.0 => Err(EventError::field(
            EventErrorKind::InvalidValue,
            field,
            format!("{number} is above 1 (scores run from 0 to 1)"),
        )),
        _ => Ok(()),
    }
}
