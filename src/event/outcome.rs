//! [`OutcomeEvent`]: the record of one agent action, as it travels on `agent-outcomes`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::limits::{MAX_MESSAGE_CHARS, MAX_NAME_CHARS, MAX_STACK_TRACE_CHARS, MAX_TAGS};
use super::status::{EventSeverity, OutcomeStatus};
use super::timestamp::{self, Timestamp};

/// One agent action's outcome.
///
/// The JSON field names are those of the design documents' event examples. Optional fields that
/// are absent stay absent when the event is written back, so a document round-trips unchanged.
/// Unknown fields are ignored, so newer producers can add fields without breaking older readers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "OutcomeEvent",
    description = "The outcome of one AI agent action."
)]
pub struct OutcomeEvent {
    // --- Identification ---
    /// Unique id of this event (a UUID when built by this library).
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub event_id: String,
    /// Id of the agent run (one dispatch) the event belongs to.
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub run_id: String,
    /// Name of the agent; the Kafka message key.
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub agent_name: String,
    /// Kind of agent (reasoning, processing, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_NAME_CHARS))]
    pub agent_type: Option<String>,
    /// What the agent was asked to do.
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub action_type: String,

    // --- Timing ---
    /// Event time: when the outcome was recorded. Windows are assigned by this field.
    #[serde(with = "timestamp::required")]
    #[schemars(with = "Timestamp")]
    pub timestamp: DateTime<Utc>,
    /// When the action started.
    #[serde(
        default,
        with = "timestamp::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<Timestamp>")]
    pub start_time: Option<DateTime<Utc>>,
    /// When the action ended.
    #[serde(
        default,
        with = "timestamp::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<Timestamp>")]
    pub end_time: Option<DateTime<Utc>>,
    /// Wall time of the action, in milliseconds.
    #[schemars(range(min = 0.0))]
    pub duration_ms: f64,
    /// Latency seen by the caller, in milliseconds.
    #[schemars(range(min = 0.0))]
    pub latency_ms: f64,

    // --- Outcome ---
    /// How the action ended.
    pub status: OutcomeStatus,
    /// How much attention the event deserves.
    pub severity: EventSeverity,
    /// Error message of a failed action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_MESSAGE_CHARS))]
    pub error_message: Option<String>,
    /// Error type of a failed action (OpenTelemetry `error.type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_NAME_CHARS))]
    pub error_type: Option<String>,
    /// Stack trace or backtrace of a failed action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_STACK_TRACE_CHARS))]
    pub stack_trace: Option<String>,
    /// Retries made before this outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = u32::MAX))]
    pub retry_count: Option<u32>,

    // --- Performance ---
    /// Time spent waiting on the LLM, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub llm_latency_ms: Option<f64>,
    /// Total tokens used (input + output when both are known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = u64::MAX))]
    pub tokens_used: Option<u64>,
    /// Prompt tokens (OpenTelemetry `gen_ai.usage.input_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = u64::MAX))]
    pub input_tokens: Option<u64>,
    /// Completion tokens (OpenTelemetry `gen_ai.usage.output_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = u64::MAX))]
    pub output_tokens: Option<u64>,
    /// Memory used by the action, in mebibytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub memory_used_mb: Option<f64>,
    /// CPU time used by the action, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub cpu_time_ms: Option<f64>,
    /// Model requested (OpenTelemetry `gen_ai.request.model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_NAME_CHARS))]
    pub model: Option<String>,
    /// Model provider (OpenTelemetry `gen_ai.provider.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_NAME_CHARS))]
    pub provider: Option<String>,

    // --- Business ---
    /// Estimated cost of the action, in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub cost_estimate: Option<f64>,
    /// Quality of the result, from 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub quality_score: Option<f64>,
    /// Confidence in the result, from 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence_score: Option<f64>,

    // --- Context ---
    /// Id shared by every event of one request across agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_NAME_CHARS))]
    pub correlation_id: Option<String>,
    /// Id of the workflow the action ran in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_NAME_CHARS))]
    pub workflow_id: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_TAGS), inner(length(max = MAX_NAME_CHARS)))]
    pub tags: Option<Vec<String>>,
    /// Free-form context as a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// What the action produced, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// `true` when `output` is a preview: the first characters of the output's JSON text,
    /// cut so the event fits what the broker takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_truncated: Option<bool>,
    /// The size in bytes of the whole output's JSON text, when `output` is a preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_original_bytes: Option<u64>,
}
