//! [`ViewState`]: what the live view shows, folded from the result and alert records.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use feedback_pipeline::alerts::{AlertAction, AlertRecord};
use feedback_pipeline::metrics::StatsSnapshot;
use feedback_pipeline::metrics::grafana::DashboardLink;
use feedback_pipeline::processor::sinks::ResultRecord;

/// One agent's row: from the last closed window of each query that has it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentRow {
    /// Executions in the last closed minute (`error_rate_by_agent`).
    pub events_per_min: u64,
    /// Share of them that did not fail or time out.
    pub success_rate: Option<f64>,
    /// p95 latency over the last five minutes (`latency_by_agent`).
    pub p95_latency_ms: Option<f64>,
    /// Tokens and cost in the last closed minute, over its models (`token_usage_and_cost`).
    pub tokens: u64,
    /// Cost in US dollars.
    pub cost_usd: f64,
    /// Window start of the tokens and cost, and the per-model parts adding up to them.
    usage_window: String,
    usage_by_model: BTreeMap<String, (u64, f64)>,
}

/// An alert firing now.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    /// The rule.
    pub rule: String,
    /// Its one-line summary.
    pub summary: String,
}

/// Everything the view shows.
#[derive(Debug, Clone, Default)]
pub struct ViewState {
    /// Per agent name.
    pub agents: BTreeMap<String, AgentRow>,
    /// Firing alerts by dedup key.
    pub firing: BTreeMap<String, Firing>,
    /// Alert records seen (triggers and resolves).
    pub alert_records: u64,
    /// Events consumed per second, over the last refresh.
    pub events_per_s: f64,
    /// Consumer lag, in messages, over all partitions.
    pub consumer_lag: i64,
    /// Dead-lettered messages so far.
    pub dead_letters: u64,
    /// Messages consumed so far.
    pub consumed: u64,
    /// The Grafana dashboards (`GRAFANA_URL`), shown under the header.
    pub dashboards: Vec<DashboardLink>,
    last_stats: Option<(Instant, u64)>,
}

fn number(value: &Value, column: &str) -> Option<f64> {
    value.get(column).and_then(Value::as_f64)
}

fn text<'a>(value: &'a Value, column: &str) -> Option<&'a str> {
    value.get(column).and_then(Value::as_str)
}

impl ViewState {
    /// Takes a result record of the queries the view reads; others are ignored.
    pub fn take_result(&mut self, record: &ResultRecord) {
        let value = &record.value;
        let (Some(query), Some(agent)) = (text(value, "query"), text(value, "agent_name")) else {
            return;
        };
        let row = self.agents.entry(agent.to_owned()).or_default();
        match query {
            "error_rate_by_agent" => {
                let executions = number(value, "executions").unwrap_or(0.0);
                row.events_per_min = executions as u64;
                row.success_rate = number(value, "error_rate").map(|rate| 1.0 - rate);
            }
            "latency_by_agent" => row.p95_latency_ms = number(value, "p95_latency_ms"),
            "token_usage_and_cost" => row.take_usage(value),
            _ => {}
        }
    }

    /// Takes an alert record: a trigger is firing until its resolve.
    pub fn take_alert(&mut self, record: &AlertRecord) {
        self.alert_records += 1;
        match record.action {
            AlertAction::Trigger => {
                let firing = Firing {
                    rule: record.rule.clone(),
                    summary: record.summary.clone(),
                };
                self.firing.insert(record.dedup_key.clone(), firing);
            }
            AlertAction::Resolve => {
                self.firing.remove(&record.dedup_key);
            }
        }
    }

    /// Takes the processor's counters at `now`, and its consumer lag.
    pub fn take_stats(&mut self, snapshot: &StatsSnapshot, consumer_lag: i64, now: Instant) {
        if let Some((then, consumed)) = self.last_stats {
            let seconds = now.duration_since(then).as_secs_f64();
            if seconds > 0.0 {
                self.events_per_s = snapshot.consumed.saturating_sub(consumed) as f64 / seconds;
            }
        }
        self.last_stats = Some((now, snapshot.consumed));
        self.consumed = snapshot.consumed;
        self.dead_letters = snapshot.dead_letters.values().sum();
        self.consumer_lag = consumer_lag;
    }
}

impl AgentRow {
    /// Adds one model's tokens and cost; a newer window starts the sums again.
    fn take_usage(&mut self, value: &Value) {
        let window = text(value, "window_start").unwrap_or_default();
        if window > self.usage_window.as_str() {
            self.usage_window = window.to_owned();
            self.usage_by_model.clear();
        } else if window < self.usage_window.as_str() {
            return;
        }
        let model = text(value, "model").unwrap_or("unknown").to_owned();
        let tokens = number(value, "tokens_used").unwrap_or(0.0) as u64;
        let cost = number(value, "cost_usd").unwrap_or(0.0);
        self.usage_by_model.insert(model, (tokens, cost));
        self.tokens = self.usage_by_model.values().map(|(t, _)| t).sum();
        self.cost_usd = self.usage_by_model.values().map(|(_, c)| c).sum();
    }
}
