//! [`OutcomeEventBuilder`]: events created correctly, with ids and timestamps filled in.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::error::EventError;
use super::outcome::OutcomeEvent;
use super::status::{EventSeverity, OutcomeStatus};

/// Builds an [`OutcomeEvent`]; start with [`OutcomeEvent::builder`].
///
/// Fills `event_id` and `run_id` with fresh UUIDs, `timestamp` with the end time (or now),
/// `duration_ms`/`latency_ms` from the start and end times, `severity` from the status and
/// `tokens_used` from the input and output tokens, unless they are set explicitly.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct OutcomeEventBuilder {
    event: OutcomeEvent,
    event_id_set: bool,
    run_id_set: bool,
    severity_set: bool,
    duration_set: bool,
    latency_set: bool,
    timestamp_set: bool,
}

impl OutcomeEvent {
    /// Starts an event for `agent_name` performing `action_type`, with status success.
    pub fn builder(
        agent_name: impl Into<String>,
        action_type: impl Into<String>,
    ) -> OutcomeEventBuilder {
        OutcomeEventBuilder {
            event: OutcomeEvent {
                // Ids and the default timestamp are made in build(), once they are known to
                // be needed: the dispatcher sets its own run id on every event.
                event_id: String::new(),
                run_id: String::new(),
                agent_name: agent_name.into(),
                agent_type: None,
                action_type: action_type.into(),
                timestamp: DateTime::<Utc>::MIN_UTC,
                start_time: None,
                end_time: None,
                duration_ms: 0.0,
                latency_ms: 0.0,
                status: OutcomeStatus::Success,
                severity: EventSeverity::Info,
                error_message: None,
                error_type: None,
                stack_trace: None,
                retry_count: None,
                llm_latency_ms: None,
                tokens_used: None,
                input_tokens: None,
                output_tokens: None,
                memory_used_mb: None,
                cpu_time_ms: None,
                model: None,
                provider: None,
                cost_estimate: None,
                quality_score: None,
                confidence_score: None,
                correlation_id: None,
                workflow_id: None,
                tags: None,
                metadata: None,
                output: None,
                output_truncated: None,
                output_original_bytes: None,
            },
            event_id_set: false,
            run_id_set: false,
            severity_set: false,
            duration_set: false,
            latency_set: false,
            timestamp_set: false,
        }
    }
}

/// A new random (v4) UUID in its hyphenated lowercase form, written without `fmt`.
pub(crate) fn new_uuid() -> String {
    Uuid::new_v4()
        .hyphenated()
        .encode_lower(&mut Uuid::encode_buffer())
        .to_owned()
}

impl OutcomeEventBuilder {
    /// Sets the event id (default: a new UUID).
    pub fn event_id(mut self, id: impl Into<String>) -> Self {
        self.event.event_id = id.into();
        self.event_id_set = true;
        self
    }

    /// Sets the run id (default: a new UUID).
    pub fn run_id(mut self, id: impl Into<String>) -> Self {
        self.event.run_id = id.into();
        self.run_id_set = true;
        self
    }

    /// Sets the agent type.
    pub fn agent_type(mut self, agent_type: impl Into<String>) -> Self {
        self.event.agent_type = Some(agent_type.into());
        self
    }

    /// Sets the status; the severity follows it unless set with [`Self::severity`].
    pub fn status(mut self, status: OutcomeStatus) -> Self {
        self.event.status = status;
        self
    }

    /// Sets the severity explicitly.
    pub fn severity(mut self, severity: EventSeverity) -> Self {
        self.event.severity = severity;
        self.severity_set = true;
        self
    }

    /// Sets the event time explicitly (default: the end time, or now).
    pub fn timestamp(mut self, timestamp: DateTime<Utc>) -> Self {
        self.event.timestamp = timestamp;
        self.timestamp_set = true;
        self
    }

    /// Sets when the action started and ended.
    pub fn span(mut self, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        self.event.start_time = Some(start);
        self.event.end_time = Some(end);
        self
    }

    /// Sets the duration explicitly, in milliseconds.
    pub fn duration_ms(mut self, duration_ms: f64) -> Self {
        self.event.duration_ms = duration_ms;
        self.duration_set = true;
        self
    }

    /// Sets the caller-seen latency explicitly, in milliseconds (default: the duration).
    pub fn latency_ms(mut self, latency_ms: f64) -> Self {
        self.event.latency_ms = latency_ms;
        self.latency_set = true;
        self
    }

    /// Records an error: status failure, with its type and message.
    pub fn error(mut self, error_type: impl Into<String>, message: impl Into<String>) -> Self {
        self.event.status = OutcomeStatus::Failure;
        self.event.error_type = Some(error_type.into());
        self.event.error_message = Some(message.into());
        self
    }

    /// Sets the stack trace or backtrace.
    pub fn stack_trace(mut self, trace: impl Into<String>) -> Self {
        self.event.stack_trace = Some(trace.into());
        self
    }

    /// Sets the number of retries made.
    pub fn retry_count(mut self, retries: u32) -> Self {
        self.event.retry_count = Some(retries);
        self
    }

    /// Sets the LLM latency, in milliseconds.
    pub fn llm_latency_ms(mut self, latency_ms: f64) -> Self {
        self.event.llm_latency_ms = Some(latency_ms);
        self
    }

    /// Sets the model and its provider.
    pub fn model(mut self, model: impl Into<String>, provider: impl Into<String>) -> Self {
        self.event.model = Some(model.into());
        self.event.provider = Some(provider.into());
        self
    }

    /// Sets input and output tokens; `tokens_used` becomes their sum unless set.
    pub fn tokens(mut self, input: u64, output: u64) -> Self {
        self.event.input_tokens = Some(input);
        self.event.output_tokens = Some(output);
        self
    }

    /// Sets the total tokens used.
    pub fn tokens_used(mut self, tokens: u64) -> Self {
        self.event.tokens_used = Some(tokens);
        self
    }

    /// Sets memory used (MiB) and CPU time (ms).
    pub fn resources(mut self, memory_used_mb: f64, cpu_time_ms: f64) -> Self {
        self.event.memory_used_mb = Some(memory_used_mb);
        self.event.cpu_time_ms = Some(cpu_time_ms);
        self
    }

    /// Sets the estimated cost, in US dollars.
    pub fn cost_estimate(mut self, cost: f64) -> Self {
        self.event.cost_estimate = Some(cost);
        self
    }

    /// Sets the quality score (0 to 1).
    pub fn quality_score(mut self, score: f64) -> Self {
        self.event.quality_score = Some(score);
        self
    }

    /// Sets the confidence score (0 to 1).
    pub fn confidence_score(mut self, score: f64) -> Self {
        self.event.confidence_score = Some(score);
        self
    }

    /// Sets the correlation id.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.event.correlation_id = Some(id.into());
        self
    }

    /// Sets the workflow id.
    pub fn workflow_id(mut self, id: impl Into<String>) -> Self {
        self.event.workflow_id = Some(id.into());
        self
    }

    /// Adds one tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.event
            .tags
            .get_or_insert_with(Vec::new)
            .push(tag.into());
        self
    }

    /// Adds several tags.
    pub fn tags<I, T>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let list = self.event.tags.get_or_insert_with(Vec::new);
        list.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Adds one metadata entry.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let map = self.event.metadata.get_or_insert_with(Default::default);
        map.insert(key.into(), value.into());
        self
    }

    /// Sets the output.
    pub fn output(mut self, output: impl Into<Value>) -> Self {
        self.event.output = Some(output.into());
        self
    }

    /// Fills the derived fields and validates the event.
    pub fn build(self) -> Result<OutcomeEvent, EventError> {
        let event = self.build_unvalidated();
        event.validate()?;
        Ok(event)
    }

    /// Fills the derived fields; the caller validates the event once it has set the rest.
    pub(crate) fn build_unvalidated(mut self) -> OutcomeEvent {
        let event = &mut self.event;
        if !self.event_id_set {
            event.event_id = new_uuid();
        }
        if !self.run_id_set {
            event.run_id = new_uuid();
        }
        if !self.timestamp_set {
            event.timestamp = match (event.start_time, event.end_time) {
                (Some(_), Some(end)) => end,
                _ => Utc::now(),
            };
        }
        if let (Some(start), Some(end)) = (event.start_time, event.end_time)
            && !self.duration_set
        {
            let micros = (end - start).num_microseconds().unwrap_or(i64::MAX);
            event.duration_ms = micros.max(0) as f64 / 1000.0;
        }
        if !self.latency_set {
            event.latency_ms = event.duration_ms;
        }
        if !self.severity_set {
            event.severity = event.status.default_severity();
        }
        if event.tokens_used.is_none()
            && let (Some(input), Some(output)) = (event.input_tokens, event.output_tokens)
        {
            event.tokens_used = Some(input.saturating_add(output));
        }
        self.event
    }
}
