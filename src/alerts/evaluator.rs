//! The alert state machine: window results in, trigger and resolve records out.
//!
//! Per rule and group: inactive → pending (condition holds) → firing once it has held for
//! `for` of event time → resolved once it has been clear for `keep_firing_for`. A value
//! hovering at the threshold therefore pages once, not every window. A group missing from a
//! closed window counts as clear (no traffic, no failures), if this instance has seen the
//! group's rows since its last rebalance: a group whose partition moved to another instance
//! is missing here because its rows are computed there. Firing alerts read back from the
//! alert topic ([`AlertEvaluator::seed`]) are such unconfirmed states until a row of theirs
//! arrives.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use serde_json::Value;

use super::record::{AlertAction, AlertRecord, dedup_key};
use super::rules::AlertRule;
use crate::window::{Millis, WindowBounds, cell, millis_to_text};

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
    /// A row of the group has been seen since the last rebalance: its absence from a window
    /// means it is clear.
    confirmed: bool,
    /// The partition of the window pieces its rows came in (`None`: across partitions).
    partition: Option<i32>,
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

impl Observation {
    /// A group with no row in a window: clear.
    fn clear(labels: BTreeMap<String, String>) -> Self {
        Self {
            labels,
            value: None,
            breached: false,
        }
    }
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

    /// Takes alerts firing on the alert topic (their last record a trigger) as firing here,
    /// unconfirmed, unless this evaluator has a state for the group already: a restarted or
    /// newly assigned instance then neither fires them again nor forgets to resolve them.
    pub fn seed(&mut self, records: &[AlertRecord]) -> usize {
        let mut seeded = 0;
        for record in records {
            let Some(index) = self.rules.iter().position(|r| r.name == record.rule) else {
                continue;
            };
            let (Some(start), Some(end), Some(first_seen)) = (
                text_to_millis(&record.window_start),
                text_to_millis(&record.window_end),
                text_to_millis(&record.first_seen),
            ) else {
                continue;
            };
            let state = AlertState {
                phase: Phase::Firing { last_breach: end },
                first_seen,
                evaluated_through: end,
                value: record.value,
                window: WindowBounds { start, end },
                confirmed: false,
                partition: None,
            };
            if let std::collections::hash_map::Entry::Vacant(slot) =
                self.states[index].entry(record.labels.clone())
            {
                slot.insert(state);
                seeded += 1;
            }
        }
        seeded
    }

    /// Marks every state unconfirmed (partitions were revoked: a group may have moved to
    /// another instance, which now computes its rows).
    pub fn unconfirm_all(&mut self) {
        for state in self.states.iter_mut().flat_map(|s| s.values_mut()) {
            state.confirmed = false;
        }
    }

    /// Evaluates the rules watching `query` on the rows of one closed `window`.
    pub fn observe_window(
        &mut self,
        query: &str,
        window: WindowBounds,
        rows: &RecordBatch,
    ) -> Vec<AlertRecord> {
        self.observe_window_piece(query, window, rows, None)
    }

    /// [`Self::observe_window`] for the rows of one partition's groups (`partition`), or of
    /// all (`None`): only groups last seen in such pieces count as clear when missing.
    pub fn observe_window_piece(
        &mut self,
        query: &str,
        window: WindowBounds,
        rows: &RecordBatch,
        partition: Option<i32>,
    ) -> Vec<AlertRecord> {
        let mut records = Vec::new();
        for index in 0..self.rules.len() {
            if self.rules[index].query != query {
                continue;
            }
            let observations = observations(&self.rules[index], rows);
            // A set: with thousands of groups a list lookup per state was quadratic.
            let seen: std::collections::HashSet<_> =
                observations.iter().map(|o| o.labels.clone()).collect();
            for observation in observations {
                let labels = observation.labels.clone();
                records.extend(self.step(index, observation, window));
                if let Some(state) = self.states[index].get_mut(&labels) {
                    state.partition = partition;
                }
            }
            // Groups with state but no row in this window (this piece of it) are clear in it.
            let absent: Vec<_> = self.states[index]
                .iter()
                .filter(|(labels, state)| {
                    state.confirmed && state.partition == partition && !seen.contains(*labels)
                })
                .map(|(labels, _)| labels.clone())
                .collect();
            for labels in absent {
                records.extend(self.step(index, Observation::clear(labels), window));
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
                .filter(|(_, s)| s.confirmed && s.evaluated_through + size <= closed_through)
                .map(|(labels, _)| labels.clone())
                .collect();
            // Before any window closes `closed_through` is Millis::MIN (and nothing is stale).
            let window = WindowBounds {
                start: closed_through.saturating_sub(size),
                end: closed_through,
            };
            for labels in stale {
                records.extend(self.step(index, Observation::clear(labels), window));
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
            state.confirmed = true;
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
            confirmed: true,
            partition: None,
        });
        state.confirmed = true;
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

/// Milliseconds of a record's RFC 3339 time text.
fn text_to_millis(text: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.timestamp_millis())
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::alerts::rules::{AlertSeverity, MinEvents};

    const MINUTE: Millis = 60_000;

    fn rule(keep_firing_for: Duration, pending_for: Duration) -> AlertRule {
        AlertRule {
            name: "AgentFailureRateHigh".into(),
            query: "q".into(),
            column: "failure_rate".into(),
            above: Some(0.1),
            below: None,
            min_events: Some(MinEvents {
                column: "executions".into(),
                at_least: 10.0,
            }),
            pending_for,
            keep_firing_for,
            severity: AlertSeverity::Error,
            description: String::new(),
        }
    }

    fn rows(values: &[(&str, f64, i64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("agent_name", DataType::Utf8, false),
            Field::new("failure_rate", DataType::Float64, false),
            Field::new("executions", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(values.iter().map(|v| v.0))),
                Arc::new(Float64Array::from_iter_values(values.iter().map(|v| v.1))),
                Arc::new(Int64Array::from_iter_values(values.iter().map(|v| v.2))),
            ],
        )
        .unwrap()
    }

    fn window(n: Millis) -> WindowBounds {
        WindowBounds {
            start: n * MINUTE,
            end: (n + 1) * MINUTE,
        }
    }

    #[test]
    fn a_value_hovering_at_the_threshold_fires_once_and_resolves_once() {
        let mut evaluator =
            AlertEvaluator::new(vec![rule(Duration::from_secs(180), Duration::ZERO)]);
        let mut records = Vec::new();
        // Above, below, above, below ... for 10 windows, then clear for 4.
        for n in 0..14 {
            let rate = if n < 10 && n % 2 == 0 { 0.12 } else { 0.09 };
            records.extend(evaluator.observe_window("q", window(n), &rows(&[("a", rate, 50)])));
        }
        let actions: Vec<_> = records.iter().map(|r| r.action).collect();
        assert_eq!(actions, [AlertAction::Trigger, AlertAction::Resolve]);
        assert_eq!(records[0].dedup_key, records[1].dedup_key);
        assert_eq!(records[0].labels["agent_name"], "a");
        assert_eq!(records[0].value, 0.12);
        // Last breach in window 8 (ends at 9 min); clear for 3 min by the end of window 11.
        assert_eq!(records[1].window_end, millis_to_text(12 * MINUTE));
    }

    #[test]
    fn pending_for_delays_the_trigger_and_low_traffic_never_fires() {
        let mut evaluator =
            AlertEvaluator::new(vec![rule(Duration::ZERO, Duration::from_secs(120))]);
        let first =
            evaluator.observe_window("q", window(0), &rows(&[("a", 0.5, 50), ("b", 1.0, 3)]));
        assert!(first.is_empty(), "pending, and b has too few events");
        let second = evaluator.observe_window("q", window(1), &rows(&[("a", 0.5, 50)]));
        assert_eq!(second.len(), 1, "held for 2 min by the end of window 1");
        assert_eq!(second[0].first_seen, millis_to_text(0));
        // A group missing from a window is clear: with no keep-firing time it resolves.
        let third = evaluator.observe_window("q", window(2), &rows(&[("b", 1.0, 3)]));
        assert_eq!(third.len(), 1);
        assert_eq!(third[0].action, AlertAction::Resolve);
        assert_eq!(evaluator.firing(), [("AgentFailureRateHigh", 0)]);
    }

    #[test]
    fn quiet_windows_resolve_a_firing_alert() {
        let mut evaluator =
            AlertEvaluator::new(vec![rule(Duration::from_secs(60), Duration::ZERO)]);
        // Before any window has closed the bound is Millis::MIN.
        assert!(evaluator.observe_quiet("q", MINUTE, Millis::MIN).is_empty());
        let fired = evaluator.observe_window("q", window(0), &rows(&[("a", 0.5, 50)]));
        assert_eq!(fired.len(), 1);
        assert!(evaluator.observe_quiet("q", MINUTE, Millis::MIN).is_empty());
        assert!(evaluator.observe_quiet("q", MINUTE, MINUTE).is_empty());
        let resolved = evaluator.observe_quiet("q", MINUTE, 3 * MINUTE);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].action, AlertAction::Resolve);
    }

    #[test]
    fn a_seeded_alert_neither_fires_again_nor_resolves_while_its_group_is_elsewhere() {
        let firing_rule = || rule(Duration::ZERO, Duration::ZERO);
        let mut before = AlertEvaluator::new(vec![firing_rule()]);
        let trigger = before.observe_window("q", window(0), &rows(&[("a", 0.5, 50)]));
        assert_eq!(trigger.len(), 1);
        // A restarted (or newly assigned) instance reads it back from the alert topic.
        let mut after = AlertEvaluator::new(vec![firing_rule()]);
        assert_eq!(after.seed(&trigger), 1);
        assert_eq!(after.firing(), [("AgentFailureRateHigh", 1)]);
        // Rows of other groups only, and quiet windows: not clear, its rows are elsewhere.
        assert!(
            after
                .observe_window("q", window(1), &rows(&[("b", 0.0, 50)]))
                .is_empty()
        );
        assert!(after.observe_quiet("q", MINUTE, 5 * MINUTE).is_empty());
        // Still breaching here: no second trigger. Then clear: one resolve.
        assert!(
            after
                .observe_window("q", window(2), &rows(&[("a", 0.5, 50)]))
                .is_empty()
        );
        let resolved = after.observe_window("q", window(3), &rows(&[("a", 0.0, 50)]));
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].action, AlertAction::Resolve);
        assert_eq!(resolved[0].dedup_key, trigger[0].dedup_key);
    }

    #[test]
    fn after_a_revoke_a_missing_group_is_not_taken_for_clear() {
        let mut evaluator = AlertEvaluator::new(vec![rule(Duration::ZERO, Duration::ZERO)]);
        assert_eq!(
            evaluator
                .observe_window("q", window(0), &rows(&[("a", 0.5, 50)]))
                .len(),
            1
        );
        evaluator.unconfirm_all();
        // Its partition moved: missing here is no news.
        assert!(
            evaluator
                .observe_window("q", window(1), &rows(&[("b", 0.0, 50)]))
                .is_empty()
        );
        assert_eq!(evaluator.firing(), [("AgentFailureRateHigh", 1)]);
    }
}
