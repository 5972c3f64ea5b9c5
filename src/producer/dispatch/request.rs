//! What a dispatch takes ([`ActionRequest`]) and returns ([`DispatchResult`]).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::event::OutcomeStatus;

/// An error as the caller and the event see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchError {
    /// The error's type (`error_type`).
    pub error_type: String,
    /// The error's message (`error_message`).
    pub message: String,
}

/// What a dispatch returns.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchResult {
    /// How the action ended.
    pub status: OutcomeStatus,
    /// The agent's output, when it returned one.
    pub output: Option<Value>,
    /// The error, when it failed or timed out.
    pub error: Option<DispatchError>,
    /// Id of the recorded event.
    pub event_id: String,
    /// Id of this run.
    pub run_id: String,
    /// Wall time of the dispatch, in milliseconds.
    pub duration_ms: f64,
    /// Retries made.
    pub retry_count: u32,
}

/// One action to dispatch: [`ActionRequest::new`], then optional context, tags and timeout.
#[derive(Debug, Clone, Default)]
pub struct ActionRequest {
    /// The action's name (`action_type`).
    pub action_type: String,
    /// The action's input.
    pub input: Value,
    /// Context values the agent sees.
    pub context: Map<String, Value>,
    /// Tags of the event.
    pub tags: Vec<String>,
    /// Time limit of each attempt, overriding the dispatcher's.
    pub timeout: Option<Duration>,
    /// `(workflow_id, correlation_id)` of an orchestrated step.
    pub(crate) workflow: Option<(String, String)>,
}

impl ActionRequest {
    /// A request for `action_type` with `input`.
    pub fn new(action_type: impl Into<String>, input: Value) -> Self {
        Self {
            action_type: action_type.into(),
            input,
            ..Self::default()
        }
    }

    /// Sets the context values.
    pub fn context(mut self, context: Map<String, Value>) -> Self {
        self.context = context;
        self
    }

    /// Sets the tags.
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Sets this call's time limit.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}
