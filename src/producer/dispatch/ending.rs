//! [`Ending`]: how an attempt ended, as the event and the caller's result tell it.

use serde_json::Value;

use super::attempt::Attempt;
use super::request::DispatchError;
use crate::event::OutcomeStatus;

/// The status, output, error and stack trace of a finished run.
pub(super) struct Ending {
    pub status: OutcomeStatus,
    pub output: Option<Value>,
    pub error: Option<DispatchError>,
    pub stack_trace: Option<String>,
}

impl Ending {
    /// The ending of `attempt`; `partial`: the agent marked its result partial.
    pub fn of(attempt: Attempt, partial: bool) -> Self {
        let failed = |error_type: &str, message: String, stack_trace: Option<String>| Self {
            status: OutcomeStatus::Failure,
            output: None,
            error: Some(DispatchError {
                error_type: error_type.to_owned(),
                message,
            }),
            stack_trace,
        };
        match attempt {
            Attempt::Succeeded(value) => Self {
                status: if partial {
                    OutcomeStatus::Partial
                } else {
                    OutcomeStatus::Success
                },
                output: Some(value),
                error: None,
                stack_trace: None,
            },
            Attempt::Failed(error) => failed(
                error.error_type(),
                error.message().to_owned(),
                Some(error.stack_trace()),
            ),
            Attempt::Panicked(message, backtrace) => failed("panic", message, backtrace),
            Attempt::TimedOut(limit) => Self {
                status: OutcomeStatus::Timeout,
                ..failed(
                    "Timeout",
                    format!("no result within {} ms", limit.as_millis()),
                    None,
                )
            },
        }
    }
}
