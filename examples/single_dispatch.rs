//! Example 1 of the design documents: dispatch one action and read its outcome.
//!
//! `cargo run --example single_dispatch` (no broker needed: with no KAFKA_BOOTSTRAP_SERVERS the
//! events stay in memory and in the log).

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use feedback_pipeline::producer::{ActionContext, Agent, AgentError, LlmUsage, create_dispatcher};

/// A stand-in for a ReAct agent: answers from a fixed table and reports its LLM usage.
struct ReactAgent;

#[async_trait]
impl Agent for ReactAgent {
    fn name(&self) -> &str {
        "react_agent"
    }

    fn agent_type(&self) -> &str {
        "reasoning"
    }

    async fn execute(&self, input: &Value, context: &ActionContext) -> Result<Value, AgentError> {
        context.report_usage(LlmUsage {
            model: Some("gpt-4o".into()),
            provider: Some("openai".into()),
            input_tokens: Some(120),
            output_tokens: Some(35),
            llm_latency_ms: Some(250.3),
            ..LlmUsage::default()
        });
        Ok(json!({ "answer": format!("It is sunny ({})", input["query"]), "confidence": 0.95 }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let dispatcher = create_dispatcher(None, true)?;
    let result = dispatcher
        .dispatch(
            &ReactAgent,
            "reasoning",
            json!({ "query": "What is the weather?" }),
            Map::new(),
            &["reasoning", "weather"],
        )
        .await;
    println!("Status: {}", result.status);
    println!("Duration: {:.2}ms", result.duration_ms);
    println!("Event ID: {}", result.event_id);
    let event = &dispatcher.pipeline().get_recent_events(1, None, None)[0];
    println!("Event: {}", event.to_json_string()?);
    dispatcher
        .pipeline()
        .shutdown(std::time::Duration::from_secs(5));
    Ok(())
}
