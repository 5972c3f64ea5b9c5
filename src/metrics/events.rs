//! Counters and histograms of the outcome events themselves, by agent and status: raw
//! series, so PromQL can sum instances and pick any rate window.

use foldhash::{HashMap, HashMapExt};

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::guard::{Pair, SeriesGuard};
use crate::event::{OutcomeEventView, OutcomeStatus};

/// Latency buckets, seconds: 5 ms to 2 min (agent actions wrap LLM calls).
const LATENCY_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
];

/// An admitted label pair not seen for this long may give its place to a new one.
const SERIES_IDLE: std::time::Duration = std::time::Duration::from_secs(600);

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
    /// (agent_name, agent_type) pairs with their own series.
    agents: SeriesGuard,
    /// (agent_name, error_type) pairs with their own series.
    errors_by_type: SeriesGuard,
}

impl EventMetrics {
    /// Registers the event metrics; at most `max_series` (agent, agent type) pairs and
    /// `max_series` (agent, error type) pairs get their own series.
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
            agents: SeriesGuard::new(max_series, SERIES_IDLE),
            errors_by_type: SeriesGuard::new(max_series, SERIES_IDLE),
        })
    }

    /// Counts events. Counters are summed per series first and label values looked up once
    /// per series, not once per event: per-event lookups were a visible share of the
    /// processor's time. Histograms still see every value.
    pub fn observe_all<'e, 'v: 'e>(
        &self,
        events: impl IntoIterator<Item = &'e OutcomeEventView<'v>>,
    ) {
        let now = std::time::Instant::now();
        let mut series: HashMap<(&str, &str), SeriesSums> = HashMap::new();
        let mut errors: HashMap<(&str, &str), (Pair, u64)> = HashMap::new();
        for event in events {
            let raw_type = event.agent_type.as_deref().unwrap_or("unknown");
            let sums = series
                .entry((&event.agent_name, raw_type))
                .or_insert_with(|| {
                    let admission = self.agents.admit(&event.agent_name, raw_type, now);
                    if let Some(evicted) = admission.evicted {
                        self.remove_agent_series(&evicted);
                    }
                    SeriesSums::new(admission.labels, &self.latency)
                });
            sums.outcomes[status_index(event.status)] += 1;
            sums.latency.observe(event.latency_ms / 1000.0);
            if matches!(
                event.status,
                OutcomeStatus::Failure | OutcomeStatus::Timeout
            ) {
                // Admitted in event order, as the agent pairs are.
                let error_type = event.error_type.as_deref().unwrap_or("unknown");
                let entry = errors
                    .entry((&event.agent_name, error_type))
                    .or_insert_with(|| {
                        let admission =
                            self.errors_by_type
                                .admit(&event.agent_name, error_type, now);
                        if let Some((agent, error_type)) = admission.evicted {
                            let _ = self.errors.remove_label_values(&[&agent, &error_type]);
                        }
                        (admission.labels, 0)
                    });
                entry.1 += 1;
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
        self.add_sums(&series);
        for ((agent, error_type), count) in errors.into_values() {
            self.errors
                .with_label_values(&[&agent, &error_type])
                .inc_by(count);
        }
    }

    /// Adds each series' sums of a batch to its counters.
    fn add_sums(&self, series: &HashMap<(&str, &str), SeriesSums>) {
        for sums in series.values() {
            let labels = [sums.labels.0.as_str(), sums.labels.1.as_str()];
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
    }

    /// Removes every series of an (agent, agent type) pair that gave its place away.
    fn remove_agent_series(&self, (agent, agent_type): &Pair) {
        let labels = [agent.as_str(), agent_type.as_str()];
        for status in OutcomeStatus::ALL {
            let _ = self
                .outcomes
                .remove_label_values(&[labels[0], labels[1], status.as_str()]);
        }
        let _ = self.latency.remove_label_values(&labels);
        let _ = self.tokens.remove_label_values(&labels);
        let _ = self.cost.remove_label_values(&labels);
    }
}

/// One (agent, agent type) series' sums over a batch of events.
struct SeriesSums {
    /// The admitted labels (the pair, or `other`).
    labels: Pair,
    latency: Histogram,
    outcomes: [u64; OutcomeStatus::ALL.len()],
    tokens: Option<u64>,
    cost: Option<f64>,
}

impl SeriesSums {
    fn new(labels: Pair, latency: &HistogramVec) -> Self {
        Self {
            latency: latency.with_label_values(&[&labels.0, &labels.1]),
            labels,
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
        // Three (agent, type) pairs get their own series; the fourth folds into `other`.
        let metrics = EventMetrics::register(&registry, 3).unwrap();
        let views: Vec<_> = events.iter().map(OutcomeEvent::view).collect();
        metrics.observe_all(&views[..30]);
        metrics.observe_all(&views[30..]);

        // The plain loop: the first three distinct pairs of a family keep their labels.
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
        let label = |admitted: String, pair: (&str, &str)| {
            if admitted == "other" {
                ("other".to_owned(), "other".to_owned())
            } else {
                (pair.0.to_owned(), pair.1.to_owned())
            }
        };
        for (n, event) in events.iter().enumerate() {
            let raw_type = event.agent_type.as_deref().unwrap();
            let pair = (event.agent_name.as_str(), raw_type);
            let (agent, agent_type) = label(admit("agent", &format!("{pair:?}")), pair);
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
                let raw = (
                    event.agent_name.as_str(),
                    event.error_type.as_deref().unwrap_or("unknown"),
                );
                let (agent, error_type) = label(admit("error", &format!("{raw:?}")), raw);
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
