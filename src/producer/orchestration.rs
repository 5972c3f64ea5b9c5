//! [`OrchestrationDispatcher`]: multi-agent workflows, every event sharing one workflow id and
//! one correlation id, plus a workflow-level event with the workflow's completion time.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use serde_json::{Value, json};

use crate::event::{OutcomeEvent, OutcomeStatus, new_uuid};
use crate::producer::agent::Agent;
use crate::producer::dispatch::{ActionDispatcher, ActionRequest, DispatchError, DispatchResult};
use crate::producer::pipeline::get_feedback_pipeline;

/// What to do when a step of a sequential workflow fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepFailurePolicy {
    /// Skip the remaining steps (the default).
    #[default]
    Stop,
    /// Run the remaining steps anyway, each seeing the last successful output.
    Continue,
}

/// One agent's part in a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// The agent's name.
    pub agent: String,
    /// How its action ended.
    pub status: OutcomeStatus,
    /// Its event id.
    pub event_id: String,
    /// Its output.
    pub output: Option<Value>,
    /// Its error.
    pub error: Option<DispatchError>,
    /// Its duration, in milliseconds.
    pub duration_ms: f64,
}

/// What a workflow returns.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowResult {
    /// The workflow's id, on every event.
    pub workflow_id: String,
    /// The correlation id, on every event.
    pub correlation_id: String,
    /// success (all steps succeeded), partial (some failed, others ran) or failure.
    pub status: OutcomeStatus,
    /// Per-agent outcomes, in step order.
    pub outputs: Vec<StepOutcome>,
    /// Agents not run because an earlier step failed under [`StepFailurePolicy::Stop`].
    pub skipped: Vec<String>,
    /// The workflow's completion time, in milliseconds.
    pub duration_ms: f64,
    /// Id of the workflow-level event.
    pub event_id: String,
}

/// Runs agents as a workflow through an [`ActionDispatcher`].
pub struct OrchestrationDispatcher {
    dispatcher: ActionDispatcher,
    on_failure: StepFailurePolicy,
    name: String,
}

impl Default for OrchestrationDispatcher {
    /// Records into the process-wide pipeline.
    fn default() -> Self {
        Self::new(ActionDispatcher::new(get_feedback_pipeline()))
    }
}

impl OrchestrationDispatcher {
    /// Workflows through `dispatcher`; the workflow event's agent is named `orchestrator`.
    pub fn new(dispatcher: ActionDispatcher) -> Self {
        Self {
            dispatcher,
            on_failure: StepFailurePolicy::Stop,
            name: "orchestrator".into(),
        }
    }

    /// Sets the failing-step policy.
    pub fn on_step_failure(mut self, policy: StepFailurePolicy) -> Self {
        self.on_failure = policy;
        self
    }

    /// The dispatcher the steps go through.
    pub fn dispatcher(&self) -> &ActionDispatcher {
        &self.dispatcher
    }

    /// Runs the agents one after another on `task`; each sees the previous successful output
    /// as `previous_output` in its input.
    pub async fn execute_workflow(
        &self,
        agents: &[Arc<dyn Agent>],
        task: &str,
        tags: &[&str],
    ) -> WorkflowResult {
        let ids = WorkflowIds::new();
        let clock = Instant::now();
        let started_at = Utc::now();
        let mut outputs = Vec::with_capacity(agents.len());
        let mut skipped = Vec::new();
        let mut previous: Option<(String, Value)> = None;
        for (index, agent) in agents.iter().enumerate() {
            let input = json!({
                "task": task,
                "step": index,
                "previous_agent": previous.as_ref().map(|(name, _)| name.clone()),
                "previous_output": previous.as_ref().map(|(_, output)| output.clone()),
            });
            let result = self
                .dispatcher
                .dispatch_request(agent.as_ref(), ids.request(input, tags))
                .await;
            let failed =
                result.status != OutcomeStatus::Success && result.status != OutcomeStatus::Partial;
            if let Some(output) = &result.output {
                previous = Some((agent.name().to_owned(), output.clone()));
            }
            outputs.push(step(agent.as_ref(), result));
            if failed && self.on_failure == StepFailurePolicy::Stop {
                skipped = agents[index + 1..]
                    .iter()
                    .map(|a| a.name().to_owned())
                    .collect();
                break;
            }
        }
        self.finish(ids, "sequential", started_at, clock, outputs, skipped, tags)
    }

    /// Runs the agents concurrently on the same `task` (fan-out) and waits for all of them.
    pub async fn execute_parallel(
        &self,
        agents: &[Arc<dyn Agent>],
        task: &str,
        tags: &[&str],
    ) -> WorkflowResult {
        let ids = WorkflowIds::new();
        let clock = Instant::now();
        let started_at = Utc::now();
        let runs = agents.iter().map(|agent| {
            let request = ids.request(json!({ "task": task }), tags);
            async move {
                step(
                    agent.as_ref(),
                    self.dispatcher
                        .dispatch_request(agent.as_ref(), request)
                        .await,
                )
            }
        });
        let outputs = futures::future::join_all(runs).await;
        self.finish(
            ids,
            "parallel",
            started_at,
            clock,
            outputs,
            Vec::new(),
            tags,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        ids: WorkflowIds,
        mode: &str,
        started_at: chrono::DateTime<Utc>,
        clock: Instant,
        outputs: Vec<StepOutcome>,
        skipped: Vec<String>,
        tags: &[&str],
    ) -> WorkflowResult {
        let failed: Vec<&StepOutcome> = outputs
            .iter()
            .filter(|o| !matches!(o.status, OutcomeStatus::Success | OutcomeStatus::Partial))
            .collect();
        let status = if failed.is_empty() && skipped.is_empty() {
            OutcomeStatus::Success
        } else if failed.len() < outputs.len() && skipped.is_empty() {
            OutcomeStatus::Partial
        } else {
            OutcomeStatus::Failure
        };
        let elapsed = clock.elapsed();
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        let finished_at = started_at + chrono::Duration::from_std(elapsed).unwrap_or_default();
        let mut builder = OutcomeEvent::builder(&self.name, "workflow")
            .agent_type("orchestrator")
            .workflow_id(&ids.workflow_id)
            .correlation_id(&ids.correlation_id)
            .span(started_at, finished_at)
            .duration_ms(duration_ms)
            .tags(tags.iter().copied())
            .metadata("mode", mode)
            .metadata("steps", outputs.len())
            .metadata("failed_steps", failed.len())
            .metadata("skipped_steps", skipped.len())
            .metadata(
                "agents",
                outputs.iter().map(|o| o.agent.clone()).collect::<Vec<_>>(),
            );
        if let Some(first) = failed.first() {
            let message = first
                .error
                .as_ref()
                .map_or("failed", |e| e.message.as_str());
            builder = builder.error("WorkflowStepFailed", format!("{}: {message}", first.agent));
        }
        let event_id = match builder.status(status).build() {
            // Through the dispatcher's sanitizer: the event quotes a step's error message.
            Ok(event) => self
                .dispatcher
                .record(event)
                .map(|event| event.event_id.clone())
                .unwrap_or_default(),
            Err(err) => {
                tracing::error!(%err, "workflow event invalid");
                String::new()
            }
        };
        WorkflowResult {
            workflow_id: ids.workflow_id,
            correlation_id: ids.correlation_id,
            status,
            outputs,
            skipped,
            duration_ms,
            event_id,
        }
    }
}

struct WorkflowIds {
    workflow_id: String,
    correlation_id: String,
}

impl WorkflowIds {
    fn new() -> Self {
        Self {
            workflow_id: new_uuid(),
            correlation_id: new_uuid(),
        }
    }

    fn request(&self, input: Value, tags: &[&str]) -> ActionRequest {
        let mut request = ActionRequest::new("workflow_step", input).tags(tags.iter().copied());
        request.workflow = Some((self.workflow_id.clone(), self.correlation_id.clone()));
        request
    }
}

fn step(agent: &dyn Agent, result: DispatchResult) -> StepOutcome {
    StepOutcome {
        agent: agent.name().to_owned(),
        status: result.status,
        event_id: result.event_id,
        output: result.output,
        error: result.error,
        duration_ms: result.duration_ms,
    }
}
