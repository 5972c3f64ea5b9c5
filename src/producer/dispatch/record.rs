//! Turning a finished (or abandoned) action into its [`OutcomeEvent`].

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::event::{EventError, OutcomeEvent, OutcomeStatus};
use crate::producer::agent::LlmUsage;

use super::request::DispatchError;

/// What is known about a run before its outcome.
pub(crate) struct RunInfo<'a> {
    pub agent_name: &'a str,
    pub agent_type: &'a str,
    pub action_type: &'a str,
    pub run_id: &'a str,
    pub started_at: DateTime<Utc>,
    pub clock: Instant,
    pub tags: &'a [String],
    pub workflow_id: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
}

/// How the run ended.
pub(crate) struct RunEnd {
    pub status: OutcomeStatus,
    pub error: Option<DispatchError>,
    pub stack_trace: Option<String>,
    pub retry_count: u32,
    pub usage: LlmUsage,
    pub output: Option<Value>,
    pub metadata: Option<Map<String, Value>>,
}

impl RunInfo<'_> {
    /// Builds the event: times measured on a monotonic clock, ids from the run. Fails only
    /// when the agent's own name or type breaks the contract (empty, too long).
    pub fn event(&self, end: RunEnd) -> Result<OutcomeEvent, EventError> {
        let elapsed = self.clock.elapsed();
        let finished_at = self.started_at + chrono::Duration::from_std(elapsed).unwrap_or_default();
        // The builder fills what derives from the times and the status; the rest is set on the
        // event, which is then validated once. (Moving the builder through a call per field,
        // and validating in build() and again here, was a visible share of a dispatch.)
        let mut event = OutcomeEvent::builder(self.agent_name, self.action_type)
            .run_id(self.run_id)
            .agent_type(self.agent_type)
            .span(self.started_at, finished_at)
            .duration_ms(elapsed.as_secs_f64() * 1000.0)
            .status(end.status)
            .build_unvalidated();
        if !self.tags.is_empty() {
            event.tags = Some(self.tags.to_vec());
        }
        event.workflow_id = self.workflow_id.map(str::to_owned);
        event.correlation_id = self.correlation_id.map(str::to_owned);
        event.retry_count = (end.retry_count > 0).then_some(end.retry_count);
        if let Some(error) = end.error {
            event.error_type = Some(error.error_type);
            event.error_message = Some(error.message);
        }
        event.stack_trace = end.stack_trace;
        event.output = end.output;
        event.metadata = end.metadata;
        // A long error or trace is cut with a marker rather than fail validation; the
        // pipeline fits the whole event to what its broker takes when it records it.
        event.cut_long_texts();
        event.validate()?;
        apply_usage(&mut event, end.usage);
        Ok(event)
    }
}

/// Copies reported usage onto the event. A report outside the contract (a quality score of 7)
/// is left out and named in the metadata, so the action's outcome is still recorded.
fn apply_usage(event: &mut OutcomeEvent, usage: LlmUsage) {
    if usage == LlmUsage::default() {
        // Nothing reported: the event was validated without usage.
        return;
    }
    event.model = usage.model;
    event.provider = usage.provider;
    event.input_tokens = usage.input_tokens;
    event.output_tokens = usage.output_tokens;
    event.tokens_used = match (usage.input_tokens, usage.output_tokens) {
        (Some(input), Some(output)) => Some(input.saturating_add(output)),
        (input, output) => input.or(output),
    };
    event.llm_latency_ms = usage.llm_latency_ms;
    event.cost_estimate = usage.cost_estimate;
    event.quality_score = usage.quality_score;
    event.confidence_score = usage.confidence_score;
    if let Err(err) = event.validate() {
        // The builder set none of these fields, so clearing them restores the valid event.
        event.model = None;
        event.provider = None;
        event.input_tokens = None;
        event.output_tokens = None;
        event.tokens_used = None;
        event.llm_latency_ms = None;
        event.cost_estimate = None;
        event.quality_score = None;
        event.confidence_score = None;
        event
            .metadata
            .get_or_insert_with(Map::new)
            .insert("invalid_usage_report".into(), Value::from(err.to_string()));
    }
}
