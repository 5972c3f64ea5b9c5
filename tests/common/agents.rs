//! Agents with scripted behaviour for the producer tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use feedback_pipeline::producer::{ActionContext, Agent, AgentError, LlmUsage};

/// What a [`ScriptedAgent`] does when executed.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Returns `{"echo": input}` and reports usage.
    Succeed,
    /// Returns an error of type `ValueError`.
    Fail,
    /// Panics.
    Panic,
    /// Sleeps, then succeeds.
    Sleep(Duration),
    /// Fails this many times, then succeeds.
    FailTimes(u32),
    /// Fails with a permanent error.
    FailPermanently,
    /// Succeeds but reports the work as partial.
    Partial,
    /// Returns this output.
    Output(Value),
    /// Succeeds but reports a quality score outside 0..=1.
    BadUsage,
}

/// An agent that follows its [`Behaviour`] and counts its calls.
pub struct ScriptedAgent {
    pub name: String,
    pub behaviour: Behaviour,
    pub calls: AtomicU32,
}

impl ScriptedAgent {
    pub fn new(name: &str, behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            behaviour,
            calls: AtomicU32::new(0),
        })
    }
}

#[async_trait]
impl Agent for ScriptedAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn agent_type(&self) -> &str {
        "scripted"
    }

    async fn execute(&self, input: &Value, context: &ActionContext) -> Result<Value, AgentError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        context.report_usage(LlmUsage {
            model: Some("gpt-4o-mini".into()),
            provider: Some("openai".into()),
            input_tokens: Some(100),
            output_tokens: Some(20),
            llm_latency_ms: Some(1.5),
            cost_estimate: Some(0.0001),
            ..LlmUsage::default()
        });
        match &self.behaviour {
            Behaviour::Succeed => Ok(json!({ "echo": input })),
            Behaviour::Fail => Err(AgentError::new("ValueError", "Invalid data format")),
            Behaviour::Panic => panic!("agent blew up"),
            Behaviour::Sleep(duration) => {
                tokio::time::sleep(*duration).await;
                Ok(json!({ "slept_ms": duration.as_millis() as u64 }))
            }
            Behaviour::FailTimes(times) if call < *times => {
                Err(AgentError::new("Flaky", format!("attempt {call}")))
            }
            Behaviour::FailTimes(_) => Ok(json!({ "attempts": call + 1 })),
            Behaviour::FailPermanently => {
                Err(AgentError::new("BadRequest", "never works").permanent())
            }
            Behaviour::Partial => {
                context.report_partial();
                Ok(json!({ "done": "half" }))
            }
            Behaviour::Output(value) => Ok(value.clone()),
            Behaviour::BadUsage => {
                context.report_usage(LlmUsage {
                    quality_score: Some(7.0),
                    ..LlmUsage::default()
                });
                Ok(json!({}))
            }
        }
    }
}
