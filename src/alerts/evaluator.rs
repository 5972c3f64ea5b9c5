//! The alert state machine: window results in, trigger and resolve records out.
//!
//! Per rule and group: inactive → pending (condition holds) → firing once it has held for
//! `for` of event time → resolved once it has been clear for `keep_firing_for`. A value
//! hovering at the threshold therefore pages once, not every window. A group missing from a
//! closed window counts as clear (no traffic, no failures).

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use serde_json::Value;

use super::record::{AlertAction, AlertRecord, dedup_key};
use super::rules::AlertRule;
use crate::processor::results::{cell, millis_to_text};
use crate::processor::window::{Millis, WindowBounds};

#[derive(Debug, Clone)]
enum Phase {
    Pending,
    Firing { last_breach: Millis },
}

#[derive(Debug, Clone)]
struct AlertState {
    phase: Phase,
    /// Start of the first breaching window.
    first_seen: Millis,
    /// End of the last window evaluated for this group.
    evaluated_through: Millis,
    value: f64,
    window: WindowBounds,
}

/// Evaluates rules over closed windows.
pub struct AlertEvaluator {
    rules: Vec<AlertRule>,
    /// Per rule: group labels → state.
    states: Vec<HashMap<BTreeMap<String, String>, AlertState>>,
}

/// A breach or clear observed in one window for one group.
struct Observation {
    labels: BTreeMap<String, String>,
    value: Option<f64>,
    breached: bool,
}

impl AlertEvaluator {
    /// An evaluator with no alert active.
    pub fn new(rules: Vec<AlertRule>) -> Self {
        let states = rules.iter().map(|_| HashMap::new()).collect();
        Self { rules, states }
    }

    /// The rules.
    pub fn rules(&self) -> &[AlertRule] {
        &self.rules
    }

    /// Number of firing alerts per rule.
    pub fn firing(&self) -> Vec<(&str, usize)> {
        self.rules
            .iter()
            .zip(&self.states)
            .map(|(rule, states)| {
                let firing = states
                    .values()
                    .filter(|s| matches!(s.phase, Phase::Firing { .. }))
                    .count();
                (rule.name.as_str(), firing)
            })
            .collect()
    }

    /// Evaluates the rules watching `query` on the rows of one closed `window`.
    pub fn observe_window(
        &mut self,
        query: &str,
        window: WindowBounds,
        rows: &RecordBatch,
    ) -> Vec<AlertRecord> {
        let mut records = Vec::new();
        for index in 0..self.rules.len() {
            if self.rules[index].query != query {
                continue;
            }
            let observations = observations(&self.rules[index], rows);
            let seen: Vec<_> = observations.iter().map(|o| o.labels.clone()).collect();
            for observation in observations {
                records.extend(self.step(index, observation, window));
            }
            // Groups with state but no row in this window are clear in it.
            let absent: Vec<_> = self.states[index]
                .keys()
                .filter(|labels| !seen.contains(labels))
                .cloned()
                .collect();
            for labels in absent {
                let observation = Observation {
                    labels,
                    value: None,
                    breached: false,
                };
                records.extend(self.step(index, observation, window));
            }
        }
        records
    }

    /// Treats every window of `query` ending by `closed_through` that produced no rows at all
    /// as clear (a quiet system resolves its alerts).
    pub fn observe_quiet(
        &mut self,
        query: &str,
        size: Millis,
        closed_through: Millis,
    ) -> Vec<AlertRecord> {
        let mut records = Vec::new();
        for index in 0..self.rules.len() {
            if self.rules[index].query != query {
                continue;
            }
            let stale: Vec<_> = self.states[index]
                .iter()
                .filter(|(_, s)| s.evaluated_through + size <= closed_through)
                .map(|(labels, _)| labels.clone())
                .collect();
            for labels in stale {
                let end = closed_through;
                let window = WindowBounds {
                    start: end - size,
                    end,
                };
                let observation = Observation {
                    labels,
                    value: None,
                    breached: false,
                };
                records.extend(self.step(index, observation, window));
            }
        }
        records
    }

    fn step(
        &mut self,
        index: usize,
        observation: Observation,
        window: WindowBounds,
    ) -> Option<AlertRecord> {
        let rule = &self.rules[index];
        let states = &mut self.states[index];
        let Observation {
            labels,
            value,
            breached,
        } = observation;
        if !breached {
            let state = states.get_mut(&labels)?;
            if window.end <= state.evaluated_through {
                return None;
            }
            state.evaluated_through = window.end;
            return match state.phase {
                Phase::Pending => {
                    states.remove(&labels);
                    None
                }
                Phase::Firing { last_breach } => {
                    let clear_for = window.end - last_breach;
                    if clear_for < rule.keep_firing_for.as_millis() as Millis {
                        return None;
                    }
                    let state = states.remove(&labels)?;
                    Some(record(rule, AlertAction::Resolve, labels, &state, window))
                }
            };
        }
        let value = value.unwrap_or(f64::NAN);
        let state = states.entry(labels.clone()).or_insert(AlertState {
            phase: Phase::Pending,
            first_seen: window.start,
            evaluated_through: Millis::MIN,
            value,
            window,
        });
        if window.end <= state.evaluated_through {
            return None;
        }
        state.evaluated_through = window.end;
        state.value = value;
        state.window = window;
        match state.phase {
            Phase::Firing { .. } => {
                state.phase = Phase::Firing {
                    last_breach: window.end,
                };
                None
            }
            Phase::Pending => {
                let held = window.end - state.first_seen;
                if held < rule.pending_for.as_millis() as Millis {
                    return None;
                }
                state.phase = Phase::Firing {
                    last_breach: window.end,
                };
                Some(record(rule, AlertAction::Trigger, labels, state, window))
            }
        }
    }
}

/// Each row's group labels (its text columns) and whether it breaches the rule.
fn observations(rule: &AlertRule, rows: &RecordBatch) -> Vec<Observation> {
    let schema = rows.schema();
    let number = |name: &str, row: usize| -> Option<f64> {
        let index = schema.index_of(name).ok()?;
        cell(rows.column(index).as_ref(), row).as_f64()
    };
    let label_columns: Vec<(String, &dyn Array)> = schema
        .fields()
        .iter()
        .zip(rows.columns())
        .filter(|(f, _)| {
            matches!(
                f.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            )
        })
        .map(|(f, c)| (f.name().clone(), c.as_ref()))
        .collect();
    (0..rows.num_rows())
        .map(|row| {
            let labels = label_columns
                .iter()
                .map(|(name, column)| {
                    let text = match cell(*column, row) {
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                    (name.clone(), text)
                })
                .collect();
            let value = number(&rule.column, row);
            let events = rule
                .min_events
                .as_ref()
                .and_then(|guard| number(&guard.column, row));
            let breached = value.is_some_and(|v| rule.breached(v, events));
            Observation {
                labels,
                value,
                breached,
            }
        })
        .collect()
}

fn record(
    rule: &AlertRule,
    action: AlertAction,
    labels: BTreeMap<String, String>,
    state: &AlertState,
    window: WindowBounds,
) -> AlertRecord {
    let (threshold, above) = rule.threshold();
    let comparison = if above { "above" } else { "below" };
    let group = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let scope = if group.is_empty() {
        "all agents".to_owned()
    } else {
        group
    };
    let summary = match action {
        AlertAction::Trigger => format!(
            "{}: {} = {} {comparison} {threshold} for {scope} (window {} to {})",
            rule.name,
            rule.column,
            round(state.value),
            millis_to_text(window.start),
            millis_to_text(window.end)
        ),
        AlertAction::Resolve => format!(
            "{} resolved for {scope}: {} back within {threshold} through {}",
            rule.name,
            rule.column,
            millis_to_text(window.end)
        ),
    };
    AlertRecord {
        dedup_key: dedup_key(&rule.name, &labels),
        action,
        rule: rule.name.clone(),
        severity: rule.severity,
        summary,
        description: rule.description.clone(),
        labels,
        query: rule.query.clone(),
        column: rule.column.clone(),
        value: state.value,
        threshold,
        comparison: comparison.to_owned(),
        window_start: millis_to_text(window.start),
        window_end: millis_to_text(window.end),
        first_seen: millis_to_text(state.first_seen),
        emitted_at: crate::event::timestamp::format_timestamp(&chrono::Utc::now()),
        source: "feedback-pipeline".to_owned(),
    }
}

/// Four significant decimals are plenty for a page.
fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}
