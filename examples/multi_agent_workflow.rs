//! Example 2 of the design documents: a workflow of several agents sharing one workflow id.
//!
//! `cargo run --example multi_agent_workflow`

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use feedback_pipeline::producer::{ActionContext, Agent, AgentError, OrchestrationDispatcher};

struct ReactAgent;
struct EvaluatorAgent;

#[async_trait]
impl Agent for ReactAgent {
    fn name(&self) -> &str {
        "react_agent"
    }

    fn agent_type(&self) -> &str {
        "reasoning"
    }

    async fn execute(&self, input: &Value, _: &ActionContext) -> Result<Value, AgentError> {
        Ok(json!({ "sentiment": "positive", "about": input["task"] }))
    }
}

#[async_trait]
impl Agent for EvaluatorAgent {
    fn name(&self) -> &str {
        "evaluator_agent"
    }

    fn agent_type(&self) -> &str {
        "evaluation"
    }

    async fn execute(&self, input: &Value, _: &ActionContext) -> Result<Value, AgentError> {
        let verdict = input["previous_output"]["sentiment"]
            .as_str()
            .unwrap_or("unknown");
        Ok(json!({ "approved": verdict == "positive" }))
    }
}

#[tokio::main]
async fn main() {
    let orchestrator = OrchestrationDispatcher::default();
    let agents: Vec<Arc<dyn Agent>> = vec![Arc::new(ReactAgent), Arc::new(EvaluatorAgent)];
    let result = orchestrator
        .execute_workflow(
            &agents,
            "Analyze customer sentiment",
            &["customer", "sentiment"],
        )
        .await;
    println!(
        "Workflow {} ({}): {:.2}ms",
        result.workflow_id, result.status, result.duration_ms
    );
    for output in &result.outputs {
        println!("{}: {}", output.agent, output.status);
    }
    orchestrator
        .dispatcher()
        .pipeline()
        .shutdown(std::time::Duration::from_secs(5));
}
