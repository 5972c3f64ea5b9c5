//! Example 4 of the design documents: pre- and post-execution hooks for custom monitoring.
//!
//! `cargo run --example custom_hooks`

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use feedback_pipeline::producer::{ActionContext, Agent, AgentError, create_dispatcher};

struct SlowAgent;

#[async_trait]
impl Agent for SlowAgent {
    fn name(&self) -> &str {
        "slow_agent"
    }

    async fn execute(&self, _: &Value, _: &ActionContext) -> Result<Value, AgentError> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(json!({ "done": true }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut dispatcher = create_dispatcher(None, true)?;
    dispatcher.add_pre_hook(|args| async move {
        println!("Starting {}", args.agent_name);
        Ok(())
    });
    dispatcher.add_post_hook(|args| async move {
        println!(
            "Completed {} in {:.2}ms",
            args.agent_name, args.event.duration_ms
        );
        // The design documents' slow-execution alert, as a hook.
        if args.event.duration_ms > 5000.0 {
            println!(
                "Slow execution: {} took {}ms",
                args.agent_name, args.event.duration_ms
            );
        }
        Ok(())
    });
    dispatcher
        .dispatch(&SlowAgent, "process", json!({}), Map::new(), &[])
        .await;
    dispatcher.pipeline().shutdown(Duration::from_secs(5));
    Ok(())
}
