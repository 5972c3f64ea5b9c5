//! Counters and histograms of the outcome events themselves, by agent and status: raw
//! series, so PromQL can sum instances and pick any rate window.

use foldhash::{HashMap, HashMapExt};

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

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

    /// Counts events. Counters are summed per series first and label values looked up once
    /// per series, not once per event: per-event lookups were a visible share of the
    /// processor's time. Histograms still see every value.
    pub fn observe_all<'e, 'v: 'e>(
        &self,
        events: impl IntoIterator<Item = &'e OutcomeEventView<'v>>,
    ) {
        let mut series: HashMap<(&str, &str), SeriesSums> = HashMap::new();
        let mut errors: HashMap<(&str, &str), u64> = HashMap::new();
        for event in events {
            let raw_type = event.agent_type.as_deref().unwrap_or("unknown");
            let sums = series
                .entry((&event.agent_name, raw_type))
                .or_insert_with(|| {
                    let agent = self.agents.admit(&event.agent_name);
                    let agent_type = self.agent_types.admit(raw_type);
                    SeriesSums::new(agent, agent_type, &self.latency)
                });
            sums.outcomes[status_index(event.status)] += 1;
            sums.latency.observe(event.latency_ms / 1000.0);
            if matches!(
                event.status,
                OutcomeStatus::Failure | OutcomeStatus::Timeout
            ) {
                // Admitted in event order, as the agent labels are.
                let error_type = self
                    .error_types
                    .admit(event.error_type.as_deref().unwrap_or("unknown"));
                *errors.entry((sums.agent, error_type)).or_default() += 1;
            }
            let tokens =
                event
                    .tokens_used
                    .or_else(|| match (event.input_tokens, event.output_tokens) {
                        (None, None) => None,
                        (input, output) => Some(input.unwrap_or(0) + output.unwrap_or(0)),
                    });
            if let Some(tokens) = tokens {
                // Wrapping, as the counter itself does.
                sums.tokens = Some(sums.tokens.unwrap_or(0).wrapping_add(tokens));
            }
            if let Some(cost) = event.cost_estimate.filter(|c| c.is_finite() && *c >= 0.0) {
                sums.cost = Some(sums.cost.unwrap_or(0.0) + cost);
            }
            if event.action_type == WORKFLOW_ACTION {
                self.workflows
                    .with_label_values(&[event.status.as_str()])
                    .observe(event.duration_ms / 1000.0);
            }
        }
        for sums in series.values() {
            let labels = [sums.agent, sums.agent_type];
            for (status, &count) in OutcomeStatus::ALL.iter().zip(&sums.outcomes) {
                if count > 0 {
                    self.outcomes
                        .with_label_values(&[labels[0], labels[1], status.as_str()])
                        .inc_by(count);
                }
            }
            if let Some(tokens) = sums.tokens {
                self.tokens.with_label_values(&labels).inc_by(tokens);
            }
            if let Some(cost) = sums.cost {
                self.cost.with_label_values(&labels).inc_by(cost);
            }
        }
        for ((agent, error_type), count) in errors {
            self.errors
                .with_label_values(&[agent, error_type])
                .inc_by(count);
        }
    }
}

/// One (agent, agent type) series' sums over a batch of events.
struct SeriesSums<'a> {
    agent: &'a str,
    agent_type: &'a str,
    latency: Histogram,
    outcomes: [u64; OutcomeStatus::ALL.len()],
    tokens: Option<u64>,
    cost: Option<f64>,
}

impl<'a> SeriesSums<'a> {
    fn new(agent: &'a str, agent_type: &'a str, latency: &HistogramVec) -> Self {
        Self {
            agent,
            agent_type,
            latency: latency.with_label_values(&[agent, agent_type]),
            outcomes: [0; OutcomeStatus::ALL.len()],
            tokens: None,
            cost: None,
        }
    }
}

/// Position of `status` in [`OutcomeStatus::ALL`].
fn status_index(status: OutcomeStatus) -> usize {
    OutcomeStatus::ALL
        .iter()
        .position(|&s| s == status)
        .expect("ALL lists every status")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::event::OutcomeEvent;

    /// Every sample of the registry as `name{labels}` → value (histograms: their count).
    fn samples(registry: &Registry) -> BTreeMap<String, f64> {
        let mut samples = BTreeMap::new();
        for family in registry.gather() {
            for metric in family.get_metric() {
                let labels: Vec<String> = metric
                    .get_label()
                    .iter()
                    .map(|l| format!("{}={}", l.name(), l.value()))
                    .collect();
                let value = if family.name().ends_with("_seconds") {
                    metric.get_histogram().get_sample_count() as f64
                } else {
                    metric.get_counter().get_value()
                };
                samples.insert(format!("{}{{{}}}", family.name(), labels.join(",")), value);
            }
        }
        samples
    }

    #[test]
    fn a_batch_counts_what_a_plain_loop_counts() {
        let statuses = [
            OutcomeStatus::Success,
            OutcomeStatus::Failure,
            OutcomeStatus::Timeout,
        ];
        let events: Vec<OutcomeEvent> = (0..60)
            .map(|n| {
                let mut builder = OutcomeEvent::builder(format!("agent_{}", n % 4), "act")
                    .agent_type(if n % 2 == 0 { "reasoning" } else { "tool" })
                    .status(statuses[n % 3])
                    .latency_ms(n as f64)
                    .tokens(n as u64, 1)
                    .cost_estimate(0.25);
                if n % 3 == 1 {
                    builder = builder.error(format!("E{}", n % 5), "failed");
                }
                builder.build().unwrap()
            })
            .collect();
        let registry = Registry::new();
        // Three agents get their own label value; the fourth folds into `other`.
        let metrics = EventMetrics::register(&registry, 3).unwrap();
        let views: Vec<_> = events.iter().map(OutcomeEvent::view).collect();
        metrics.observe_all(&views[..30]);
        metrics.observe_all(&views[30..]);

        // The plain loop: the first three distinct values of a label keep their name.
        let mut seen: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut admit = |label: &'static str, value: &str| -> String {
            let values = seen.entry(label).or_default();
            if !values.iter().any(|v| v == value) && values.len() < 3 {
                values.push(value.to_owned());
            }
            if values.iter().any(|v| v == value) {
                value.to_owned()
            } else {
                "other".to_owned()
            }
        };
        let mut expected: BTreeMap<String, f64> = BTreeMap::new();
        for (n, event) in events.iter().enumerate() {
            let agent = admit("agent", &event.agent_name);
            let agent_type = event.agent_type.as_deref().unwrap();
            let status = event.status.as_str();
            let series = format!("agent_name={agent},agent_type={agent_type}");
            *expected
                .entry(format!(
                    "feedback_pipeline_outcomes_total{{{series},status={status}}}"
                ))
                .or_default() += 1.0;
            *expected
                .entry(format!(
                    "feedback_pipeline_outcome_latency_seconds{{{series}}}"
                ))
                .or_default() += 1.0;
            *expected
                .entry(format!("feedback_pipeline_tokens_total{{{series}}}"))
                .or_default() += (n + 1) as f64;
            *expected
                .entry(format!("feedback_pipeline_cost_usd_total{{{series}}}"))
                .or_default() += 0.25;
            if status != "success" {
                let error_type = admit("error", event.error_type.as_deref().unwrap_or("unknown"));
                *expected
                    .entry(format!(
                        "feedback_pipeline_outcome_errors_total{{agent_name={agent},error_type={error_type}}}"
                    ))
                    .or_default() += 1.0;
            }
        }
        assert_eq!(samples(&registry), expected);
    }
}
