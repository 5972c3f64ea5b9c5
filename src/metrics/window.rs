//! Window aggregates as gauges: every numeric column of the latest closed window of every
//! query becomes `feedback_pipeline_window_<column>{query, <text columns>}`. Columns in
//! milliseconds (`*_ms`) are exported in seconds and rates (`*_rate`) as ratios, following
//! Prometheus' base-unit convention; adding a SQL file adds its gauges.

use std::collections::BTreeMap;
use std::sync::Mutex;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};
use serde_json::Value;

use crate::window::{Millis, WindowBounds, cell};

/// A row's labels: `(label, value)` from its text columns.
type Labels = Vec<(String, String)>;
/// A row's numbers: `(metric name, value in base units)`.
type Values = Vec<(String, f64)>;

struct LatestWindow {
    end: Millis,
    rows: BTreeMap<Labels, Values>,
}

/// The latest closed window of each query, exported as gauges.
pub struct WindowGauges {
    max_series: usize,
    latest: Mutex<BTreeMap<String, LatestWindow>>,
    dropped: prometheus::IntCounterVec,
}

impl WindowGauges {
    /// Keeps at most `max_series` rows per query; rows past that are counted in
    /// `feedback_pipeline_window_series_dropped_total`.
    pub fn register(
        registry: &prometheus::Registry,
        max_series: usize,
    ) -> prometheus::Result<Self> {
        let dropped = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "feedback_pipeline_window_series_dropped_total",
                "Window result rows not exported as gauges because a query had too many groups.",
            ),
            &["query"],
        )?;
        registry.register(Box::new(dropped.clone()))?;
        Ok(Self {
            max_series,
            latest: Mutex::new(BTreeMap::new()),
            dropped,
        })
    }

    /// Takes the rows of a closed window; a later window of the query replaces the earlier
    /// one, rows of the same window (closed partition by partition) add up.
    pub fn update(&self, query: &str, window: WindowBounds, rows: &RecordBatch) {
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        let entry = latest.entry(query.to_owned()).or_insert(LatestWindow {
            end: window.end,
            rows: BTreeMap::new(),
        });
        if window.end < entry.end {
            return;
        }
        if window.end > entry.end {
            entry.end = window.end;
            entry.rows.clear();
        }
        for (labels, values) in rows_of(rows) {
            if entry.rows.len() >= self.max_series && !entry.rows.contains_key(&labels) {
                self.dropped.with_label_values(&[query]).inc();
                continue;
            }
            entry.rows.insert(labels, values);
        }
    }

    /// The gauges, one family per metric name, plus each query's window end.
    pub fn families(&self) -> Vec<MetricFamily> {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_name: BTreeMap<String, Vec<Metric>> = BTreeMap::new();
        let mut ends = Vec::new();
        for (query, window) in latest.iter() {
            ends.push(metric(
                &[("query".to_owned(), query.clone())],
                window.end as f64 / 1000.0,
            ));
            for (labels, values) in &window.rows {
                let mut pairs = vec![("query".to_owned(), query.clone())];
                pairs.extend(labels.iter().cloned());
                for (name, value) in values {
                    by_name
                        .entry(name.clone())
                        .or_default()
                        .push(metric(&pairs, *value));
                }
            }
        }
        let mut families: Vec<MetricFamily> = by_name
            .into_iter()
            .map(|(name, metrics)| {
                let help = format!(
                    "Column `{}` of the latest closed window of each SQL window query.",
                    name.trim_start_matches(PREFIX)
                );
                family(name, help, metrics)
            })
            .collect();
        if !ends.is_empty() {
            families.push(family(
                format!("{PREFIX}end_timestamp_seconds"),
                "End of the latest closed window of each query, seconds since the epoch.".into(),
                ends,
            ));
        }
        families
    }
}

const PREFIX: &str = "feedback_pipeline_window_";

fn family(name: String, help: String, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name);
    family.set_help(help);
    family.set_field_type(MetricType::GAUGE);
    family.set_metric(metrics);
    family
}

fn metric(labels: &[(String, String)], value: f64) -> Metric {
    let pairs = labels
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.clone());
            pair.set_value(value.clone());
            pair
        })
        .collect();
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    let mut metric = Metric::from_gauge(gauge);
    metric.set_label(pairs);
    metric
}

/// The metric name and scale of a result column.
pub fn metric_name(column: &str) -> (String, f64) {
    let column: String = column
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if let Some(stem) = column.strip_suffix("_ms") {
        (format!("{PREFIX}{stem}_seconds"), 0.001)
    } else if let Some(stem) = column.strip_suffix("_rate") {
        (format!("{PREFIX}{stem}_ratio"), 1.0)
    } else {
        (format!("{PREFIX}{column}"), 1.0)
    }
}

fn rows_of(rows: &RecordBatch) -> Vec<(Labels, Values)> {
    let schema = rows.schema();
    let text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    (0..rows.num_rows())
        .map(|row| {
            let mut labels = Vec::new();
            let mut values = Vec::new();
            for (field, column) in schema.fields().iter().zip(rows.columns()) {
                if text(field.data_type()) {
                    let value = match cell(column.as_ref(), row) {
                        Value::String(s) => s,
                        _ => String::new(),
                    };
                    labels.push((label_name(field.name()), value));
                } else if field.data_type().is_numeric()
                    && let Some(value) = cell(column.as_ref(), row).as_f64()
                {
                    let (name, scale) = metric_name(field.name());
                    values.push((name, value * scale));
                }
            }
            (labels, values)
        })
        .collect()
}

fn label_name(column: &str) -> String {
    let name: String = column
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name == "query" {
        "query_column".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_become_base_unit_names() {
        assert_eq!(
            metric_name("p95_latency_ms"),
            ("feedback_pipeline_window_p95_latency_seconds".into(), 0.001)
        );
        assert_eq!(
            metric_name("failure_rate"),
            ("feedback_pipeline_window_failure_ratio".into(), 1.0)
        );
        assert_eq!(
            metric_name("cost_usd"),
            ("feedback_pipeline_window_cost_usd".into(), 1.0)
        );
    }
}
