//! Running an agent's action once or with retries: timing out, catching panics.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use serde_json::Value;

use crate::producer::agent::{ActionContext, Agent, AgentError};

use super::retry::RetryPolicy;

/// How the last attempt ended.
pub(crate) enum Attempt {
    /// The agent returned a value.
    Succeeded(Value),
    /// The agent returned an error.
    Failed(AgentError),
    /// The agent panicked; the panic message.
    Panicked(String),
    /// The attempt exceeded its time limit.
    TimedOut(Duration),
}

impl Attempt {
    fn retryable(&self) -> bool {
        match self {
            Self::Failed(error) => error.is_retryable(),
            Self::TimedOut(_) => true,
            Self::Succeeded(_) | Self::Panicked(_) => false,
        }
    }
}

/// Runs the action, retrying per `retry`; returns the last attempt and the retries made.
pub(crate) async fn run_with_retries(
    agent: &dyn Agent,
    input: &Value,
    context: &ActionContext,
    timeout: Option<Duration>,
    retry: &RetryPolicy,
) -> (Attempt, u32) {
    let mut retries = 0;
    loop {
        let attempt = run_once(agent, input, context, timeout).await;
        if retries >= retry.max_retries || !attempt.retryable() {
            return (attempt, retries);
        }
        retries += 1;
        tokio::time::sleep(retry.backoff(retries)).await;
    }
}

async fn run_once(
    agent: &dyn Agent,
    input: &Value,
    context: &ActionContext,
    timeout: Option<Duration>,
) -> Attempt {
    // A panic stays inside this task: the dispatcher and its caller carry on.
    let guarded = AssertUnwindSafe(agent.execute(input, context)).catch_unwind();
    let outcome = match timeout {
        Some(limit) => match tokio::time::timeout(limit, guarded).await {
            Ok(outcome) => outcome,
            Err(_) => return Attempt::TimedOut(limit),
        },
        None => guarded.await,
    };
    match outcome {
        Ok(Ok(value)) => Attempt::Succeeded(value),
        Ok(Err(error)) => Attempt::Failed(error),
        Err(payload) => Attempt::Panicked(panic_message(payload.as_ref())),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}
