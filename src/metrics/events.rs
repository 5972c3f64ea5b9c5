//! Counters and histograms of the outcome events themselves, by agent and status: raw
//! series, so PromQL can sum instances and pick any rate window.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::guard::LabelGuard;
use crate::event::{OutcomeEventView, OutcomeStatus};

/// Latency buckets, seconds: 5 ms to 2 min (agent actions wrap LLM calls).
const LATENCY_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
];

/// The action type the orchestrator gives a workflow-level event.
const WORKFLOW_ACTION: &str = "workflow";

/// Event metrics.
pub struct EventMetrics {
    outcomes: IntCounterVec,
    latency: HistogramVec,
    errors: IntCounterVec,
    tokens: IntCounterVec,
    cost: prometheus::CounterVec,
    workflows: HistogramVec,
    agents: LabelGuard,
    agent_types: LabelGuard,
    error_types: LabelGuard,
}

impl EventMetrics {
    /// Registers the event metrics; at most `max_series` agents, agent types and error types
    /// each get their own label value.
    pub fn register(registry: &Registry, max_series: usize) -> prometheus::Result<Self> {
        let outcomes = IntCounterVec::new(
            Opts::new(
                "feedback_pipeline_outcomes_total",
                "Outcome events processed, by agent and status.",
            ),
            &["agent_name", "agent_type", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "feedback_pipeline_outcome_latency_seconds",
                "Latency of agent actions (the event's latency_ms).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["agent_name", "agent_type"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "feedback_pipeline_outcome_errors_total",
                "Failed and timed-out actions, by agent and error type.",
            ),
            &["agent_name", "error_type"],
        )?;
        let tokens = IntCounterVec::new(
            Opts::new(
                "feedback_pipeline_tokens_total",
                "LLM tokens used (tokens_used, else input + output), by agent.",
            ),
            &["agent_name", "agent_type"],
        )?;
        let cost = prometheus::CounterVec::new(
            Opts::new(
                "feedback_pipeline_cost_usd_total",
                "Estimated cost of actions in US dollars (cost_estimate), by agent.",
            ),
            &["agent_name", "agent_type"],
        )?;
        let workflows = HistogramVec::new(
            HistogramOpts::new(
                "feedback_pipeline_workflow_duration_seconds",
                "Workflow completion time (the orchestrator's workflow events), by status.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["status"],
        )?;
        registry.register(Box::new(outcomes.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(cost.clone()))?;
        registry.register(Box::new(workflows.clone()))?;
        Ok(Self {
            outcomes,
            latency,
            errors,
            tokens,
            cost,
            workflows,
            agents: LabelGuard::new(max_series),
            agent_types: LabelGuard::new(max_series),
            error_types: LabelGuard::new(max_series),
        })
    }

    /// Counts one event.
    pub fn observe(&self, event: &OutcomeEventView<'_>) {
        let agent = self.agents.admit(&event.agent_name);
        let agent_type = self
            .agent_types
            .admit(event.agent_type.as_deref().unwrap_or("unknown"));
        let status = event.status.as_str();
        self.outcomes
            .with_label_values(&[agent, agent_type, status])
            .inc();
        self.latency
            .with_label_values(&[agent, agent_type])
            .observe(event.latency_ms / 1000.0);
        if matches!(
            event.status,
            OutcomeStatus::Failure | OutcomeStatus::Timeout
        ) {
            let error_type = self
                .error_types
                .admit(event.error_type.as_deref().unwrap_or("unknown"));
            self.errors.with_label_values(&[agent, error_type]).inc();
        }
        let tokens =
            event
                .tokens_used
                .or_else(|| match (event.input_tokens, event.output_tokens) {
                    (None, None) => None,
                    (input, output) => Some(input.unwrap_or(0) + output.unwrap_or(0)),
                });
        if let Some(tokens) = tokens {
            self.tokens
                .with_label_values(&[agent, agent_type])
                .inc_by(tokens);
        }
        if let Some(cost) = event.cost_estimate.filter(|c| c.is_finite() && *c >= 0.0) {
            self.cost
                .with_label_values(&[agent, agent_type])
                .inc_by(cost);
        }
        if event.action_type == WORKFLOW_ACTION {
            self.workflows
                .with_label_values(&[status])
                .observe(event.duration_ms / 1000.0);
        }
    }
}
