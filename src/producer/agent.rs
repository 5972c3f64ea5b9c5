//! [`Agent`]: what an agent implements, and [`ActionContext`]: what it sees while it runs.

use std::backtrace::Backtrace;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value};

/// An agent the dispatchers can run.
#[async_trait]
pub trait Agent: Send + Sync {
    /// The agent's name: the Kafka key and the `agent_name` of its events.
    fn name(&self) -> &str;

    /// The agent's kind (reasoning, evaluation, ...): the `agent_type` of its events.
    fn agent_type(&self) -> &str {
        "generic"
    }

    /// Performs one action on `input`. LLM usage is reported through `context`.
    async fn execute(&self, input: &Value, context: &ActionContext) -> Result<Value, AgentError>;
}

/// LLM usage an agent reports from inside a call; it ends up on the call's event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmUsage {
    /// Model requested (`gen_ai.request.model`).
    pub model: Option<String>,
    /// Provider (`gen_ai.provider.name`).
    pub provider: Option<String>,
    /// Prompt tokens.
    pub input_tokens: Option<u64>,
    /// Completion tokens.
    pub output_tokens: Option<u64>,
    /// Time spent waiting on the LLM, in milliseconds.
    pub llm_latency_ms: Option<f64>,
    /// Estimated cost, in US dollars.
    pub cost_estimate: Option<f64>,
    /// Quality of the result, 0 to 1.
    pub quality_score: Option<f64>,
    /// Confidence in the result, 0 to 1.
    pub confidence_score: Option<f64>,
}

impl LlmUsage {
    /// Adds `other` to this usage: token counts, latency and cost accumulate; model, provider
    /// and scores take the latest value reported.
    pub fn merge(&mut self, other: LlmUsage) {
        fn add<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            }
        }
        self.model = other.model.or(self.model.take());
        self.provider = other.provider.or(self.provider.take());
        self.input_tokens = add(self.input_tokens, other.input_tokens);
        self.output_tokens = add(self.output_tokens, other.output_tokens);
        self.llm_latency_ms = add(self.llm_latency_ms, other.llm_latency_ms);
        self.cost_estimate = add(self.cost_estimate, other.cost_estimate);
        self.quality_score = other.quality_score.or(self.quality_score);
        self.confidence_score = other.confidence_score.or(self.confidence_score);
    }
}

/// What an agent reports about its own call.
#[derive(Debug, Clone, Default)]
struct Reports {
    usage: LlmUsage,
    partial: bool,
}

/// What an agent sees during one action: the caller's context and a place to report usage.
#[derive(Debug, Clone, Default)]
pub struct ActionContext {
    values: Map<String, Value>,
    reports: Arc<Mutex<Reports>>,
    workflow_id: Option<String>,
    correlation_id: Option<String>,
}

impl ActionContext {
    /// A context holding the caller's values.
    pub fn new(values: Map<String, Value>) -> Self {
        Self {
            values,
            ..Self::default()
        }
    }

    /// The caller's context values.
    pub fn values(&self) -> &Map<String, Value> {
        &self.values
    }

    /// The workflow this action runs in, if any.
    pub fn workflow_id(&self) -> Option<&str> {
        self.workflow_id.as_deref()
    }

    /// The correlation id shared by the workflow's events, if any.
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// Reports LLM usage; several reports in one action (and its retries) add up (see
    /// [`LlmUsage::merge`]).
    pub fn report_usage(&self, usage: LlmUsage) {
        self.reports().usage.merge(usage);
    }

    /// Marks the action as only partly done: a successful return is recorded as `partial`.
    pub fn report_partial(&self) {
        self.reports().partial = true;
    }

    /// The usage reported so far.
    pub fn usage(&self) -> LlmUsage {
        self.reports().usage.clone()
    }

    /// Whether the agent reported the action as partial.
    pub fn is_partial(&self) -> bool {
        self.reports().partial
    }

    fn reports(&self) -> std::sync::MutexGuard<'_, Reports> {
        // A poisoned lock only means a report panicked; what it holds is still usable.
        self.reports.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn with_workflow(mut self, workflow_id: &str, correlation_id: &str) -> Self {
        self.workflow_id = Some(workflow_id.to_owned());
        self.correlation_id = Some(correlation_id.to_owned());
        self
    }
}

/// An agent's error: its type name, message and the backtrace where it was made (or a stack
/// trace given with it, e.g. a Python traceback).
pub struct AgentError {
    error_type: String,
    message: String,
    backtrace: Backtrace,
    stack_trace: Option<String>,
    retryable: bool,
}

impl AgentError {
    /// An error with an explicit type name (the event's `error_type`).
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
            backtrace: Backtrace::force_capture(),
            stack_trace: None,
            retryable: true,
        }
    }

    /// An error carrying its own stack trace (an agent in another language: its traceback),
    /// so no Rust backtrace is taken.
    pub fn with_stack_trace(
        error_type: impl Into<String>,
        message: impl Into<String>,
        stack_trace: impl Into<String>,
    ) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
            backtrace: Backtrace::disabled(),
            stack_trace: Some(stack_trace.into()),
            retryable: true,
        }
    }

    /// The stack trace the event records: the one given, or the backtrace.
    pub fn stack_trace(&self) -> String {
        self.stack_trace
            .clone()
            .unwrap_or_else(|| self.backtrace.to_string())
    }

    /// Marks the error as permanent: the dispatcher does not retry it.
    pub fn permanent(mut self) -> Self {
        self.retryable = false;
        self
    }

    /// The error's type name.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where the error was made.
    pub fn backtrace(&self) -> &Backtrace {
        &self.backtrace
    }

    /// Whether a retry may help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Debug for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentError")
            .field("error_type", &self.error_type)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

/// Any error converts, with its Rust type path (`std::io::error::Error`) as `error_type`.
impl<E: std::error::Error + Send + Sync + 'static> From<E> for AgentError {
    fn from(error: E) -> Self {
        Self::new(std::any::type_name::<E>(), error.to_string())
    }
}
