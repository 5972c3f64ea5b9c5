//! The processor's own health, as Prometheus metrics (exported on `/metrics`) that code and
//! tests also read through [`ProcessorStats::snapshot`].

use std::collections::BTreeMap;
use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::event::reasons;

/// What the processor has done so far.
pub struct ProcessorStats {
    consumed: IntCounter,
    windows_emitted: IntCounterVec,
    window_updates: IntCounterVec,
    result_records: IntCounter,
    commits: IntCounter,
    commit_failures: IntCounter,
    rebalances: IntCounter,
    late: IntCounter,
    dead_letters: IntCounterVec,
    send_failures: IntCounterVec,
    assigned_partitions: IntGauge,
    merge_partitions: IntGauge,
    open_windows: IntGauge,
    open_groups: IntGauge,
    source_connected: IntGauge,
    consumer_lag: IntGaugeVec,
    emit_latency: Histogram,
    merge_latency: Histogram,
    alerts_firing: IntGaugeVec,
    alert_records: IntCounterVec,
    watermark: WatermarkLag,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Messages read from the outcome topic.
    pub consumed: u64,
    /// Windows closed with at least one row.
    pub windows_emitted: u64,
    /// Result records sent to the metrics topic.
    pub result_records: u64,
    /// Offset commits made.
    pub commits: u64,
    /// Offset commits that failed.
    pub commit_failures: u64,
    /// Partition assignment changes.
    pub rebalances: u64,
    /// Current watermark, ms since the epoch.
    pub watermark_ms: i64,
    /// Dead-lettered messages by reason.
    pub dead_letters: BTreeMap<&'static str, u64>,
}

impl StatsSnapshot {
    /// Dead letters of one reason.
    pub fn dead_letters_for(&self, reason: &str) -> u64 {
        self.dead_letters.get(reason).copied().unwrap_or(0)
    }
}

fn counter(name: &str, help: &str) -> prometheus::Result<IntCounter> {
    IntCounter::with_opts(Opts::new(name, help))
}

fn gauge(name: &str, help: &str) -> prometheus::Result<IntGauge> {
    IntGauge::with_opts(Opts::new(name, help))
}

fn counters(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), labels)
}

fn gauges(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    IntGaugeVec::new(Opts::new(name, help), labels)
}

/// Dead letters by reason, every reason's series present (at 0) from the start.
fn dead_letter_counters() -> prometheus::Result<IntCounterVec> {
    let dead_letters = counters(
        "feedback_pipeline_processor_dead_letters_total",
        "Messages sent to the dead-letter topic, by reason.",
        &["reason"],
    )?;
    for reason in reasons::ALL {
        dead_letters.with_label_values(&[reason]);
    }
    Ok(dead_letters)
}

fn emit_latency() -> prometheus::Result<Histogram> {
    Histogram::with_opts(
        HistogramOpts::new(
            "feedback_pipeline_processor_emit_latency_seconds",
            "From closing windows to the broker acknowledging their results.",
        )
        .buckets(vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]),
    )
}

fn merge_latency() -> prometheus::Result<Histogram> {
    Histogram::with_opts(
        HistogramOpts::new(
            "feedback_pipeline_processor_merge_latency_seconds",
            "From a source partition handing the last partial of a window over to the merged \
             row (queries across partitions), per window.",
        )
        .buckets(vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        ]),
    )
}

fn merge_partitions() -> prometheus::Result<IntGauge> {
    gauge(
        "feedback_pipeline_processor_merge_partitions",
        "Partitions of the repartition topic this instance merges.",
    )
}

fn source_connected() -> prometheus::Result<IntGauge> {
    let connected = gauge(
        "feedback_pipeline_processor_source_connected",
        "1 while the source consumer reaches a broker (partitions can be idle only then), 0 \
         during an outage.",
    )?;
    connected.set(1);
    Ok(connected)
}

impl ProcessorStats {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let stats = Self::unregistered()?;
        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(stats.consumed.clone()),
            Box::new(stats.windows_emitted.clone()),
            Box::new(stats.window_updates.clone()),
            Box::new(stats.source_connected.clone()),
            Box::new(stats.result_records.clone()),
            Box::new(stats.commits.clone()),
            Box::new(stats.commit_failures.clone()),
            Box::new(stats.rebalances.clone()),
            Box::new(stats.late.clone()),
            Box::new(stats.dead_letters.clone()),
            Box::new(stats.send_failures.clone()),
            Box::new(stats.assigned_partitions.clone()),
            Box::new(stats.merge_partitions.clone()),
            Box::new(stats.open_windows.clone()),
            Box::new(stats.open_groups.clone()),
            Box::new(stats.consumer_lag.clone()),
            Box::new(stats.emit_latency.clone()),
            Box::new(stats.merge_latency.clone()),
            Box::new(stats.alerts_firing.clone()),
            Box::new(stats.alert_records.clone()),
            Box::new(stats.watermark.clone()),
        ];
        for collector in collectors {
            registry.register(collector)?;
        }
        Ok(stats)
    }

    fn unregistered() -> prometheus::Result<Self> {
        Ok(Self {
            consumed: counter(
                "feedback_pipeline_processor_events_consumed_total",
                "Messages read from the outcome topic.",
            )?,
            windows_emitted: counters(
                "feedback_pipeline_processor_windows_emitted_total",
                "Windows closed with at least one row, by query (a query grouped by the \
                     topic's key counts each partition's piece of a window).",
                &["query"],
            )?,
            window_updates: counters(
                "feedback_pipeline_processor_window_updates_total",
                "Result rows emitted again with new values: an event within \
                     WINDOW_ALLOWED_LATENESS_MS reached their window after it was emitted, \
                     by query.",
                &["query"],
            )?,
            source_connected: source_connected()?,
            result_records: counter(
                "feedback_pipeline_processor_result_records_total",
                "Result rows sent to the metrics topic.",
            )?,
            commits: counter(
                "feedback_pipeline_processor_commits_total",
                "Offset commits made.",
            )?,
            commit_failures: counter(
                "feedback_pipeline_processor_commit_failures_total",
                "Offset commits (each carrying its checkpoint) that failed.",
            )?,
            rebalances: counter(
                "feedback_pipeline_processor_rebalances_total",
                "Partition assignments and revocations.",
            )?,
            late: counter(
                "feedback_pipeline_processor_late_events_total",
                "Events for windows emitted more than WINDOW_ALLOWED_LATENESS_MS before, sent to the dead-letter topic.",
            )?,
            dead_letters: dead_letter_counters()?,
            send_failures: counters(
                "feedback_pipeline_processor_send_failures_total",
                "Records the processor's producer could not send, by topic and reason \
                     (librdkafka's error name, or too_large when refused before sending).",
                &["topic", "reason"],
            )?,
            merge_partitions: merge_partitions()?,
            assigned_partitions: gauge(
                "feedback_pipeline_processor_assigned_partitions",
                "Partitions of the outcome topic this instance owns.",
            )?,
            open_windows: gauge(
                "feedback_pipeline_processor_open_windows",
                "Open panes (window slices) over all queries.",
            )?,
            open_groups: gauge(
                "feedback_pipeline_processor_open_groups",
                "Open (pane, group) aggregate states over all queries.",
            )?,
            consumer_lag: gauges(
                "feedback_pipeline_processor_consumer_lag_messages",
                "Messages between this consumer's position and the partition's end.",
                &["topic", "partition"],
            )?,
            emit_latency: emit_latency()?,
            merge_latency: merge_latency()?,
            alerts_firing: gauges(
                "feedback_pipeline_alerts_firing",
                "Alerts firing, by rule.",
                &["rule"],
            )?,
            alert_records: counters(
                "feedback_pipeline_alert_records_total",
                "Alert records written, by rule and action (trigger, resolve).",
                &["rule", "action"],
            )?,
            watermark: WatermarkLag::new()?,
        })
    }

    pub(crate) fn add_consumed(&self, n: u64) {
        self.consumed.inc_by(n);
    }
    pub(crate) fn add_window(&self, query: &str, records: u64) {
        self.windows_emitted.with_label_values(&[query]).inc();
        self.result_records.inc_by(records);
    }
    pub(crate) fn add_window_update(&self, query: &str, rows: u64) {
        self.window_updates.with_label_values(&[query]).inc_by(rows);
        self.result_records.inc_by(rows);
    }
    /// Result rows emitted again (window updates) so far, over every query.
    pub fn window_updates(&self) -> u64 {
        self.window_updates
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .map(|metric| metric.get_counter().get_value() as u64)
            .sum()
    }
    pub(crate) fn set_source_connected(&self, connected: bool) {
        self.source_connected.set(i64::from(connected));
    }
    /// Whether the source consumer reached a broker at its last report.
    pub fn source_connected(&self) -> bool {
        self.source_connected.get() == 1
    }
    pub(crate) fn add_commit(&self, ok: bool) {
        if ok {
            self.commits.inc();
        } else {
            self.commit_failures.inc();
        }
    }
    pub(crate) fn add_rebalance(&self) {
        self.rebalances.inc();
    }
    pub(crate) fn set_watermark(&self, ms: i64) {
        self.watermark.set(ms);
    }
    pub(crate) fn add_dead_letter(&self, reason: &'static str) {
        self.dead_letters.with_label_values(&[reason]).inc();
        if reason == reasons::LATE {
            self.late.inc();
        }
    }
    pub(crate) fn add_send_failure(&self, topic: &str, reason: &str) {
        self.send_failures.with_label_values(&[topic, reason]).inc();
    }
    /// Failed sends to `topic` so far, over every reason.
    pub fn send_failures_for(&self, topic: &str) -> u64 {
        self.send_failures
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .filter(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == "topic" && l.value() == topic)
            })
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }
    /// Open panes and (pane, group) states, as last set.
    pub fn open_state(&self) -> (i64, i64) {
        (self.open_windows.get(), self.open_groups.get())
    }
    pub(crate) fn set_open_state(&self, panes: usize, groups: usize) {
        self.open_windows.set(panes as i64);
        self.open_groups.set(groups as i64);
    }
    /// Partitions of the repartition topic this instance merges.
    pub fn merge_partitions(&self) -> i64 {
        self.merge_partitions.get()
    }
    pub(crate) fn set_merge_partitions(&self, partitions: usize) {
        self.merge_partitions.set(partitions as i64);
    }
    /// Partitions of the outcome topic this instance holds.
    pub fn assigned(&self) -> i64 {
        self.assigned_partitions.get()
    }
    pub(crate) fn set_assigned(&self, partitions: usize) {
        self.assigned_partitions.set(partitions as i64);
    }
    pub(crate) fn observe_emit(&self, seconds: f64) {
        self.emit_latency.observe(seconds);
    }
    pub(crate) fn observe_merge(&self, seconds: f64) {
        self.merge_latency.observe(seconds);
    }

    /// The merge latencies observed so far: (upper bound in seconds, cumulative count) per
    /// bucket, the last one `+Inf` holding every observation.
    pub fn merge_latency_buckets(&self) -> Vec<(f64, u64)> {
        let metric = prometheus::core::Metric::metric(&self.merge_latency);
        let histogram = metric.get_histogram();
        let mut buckets: Vec<(f64, u64)> = histogram
            .get_bucket()
            .iter()
            .map(|b| (b.upper_bound(), b.cumulative_count()))
            .collect();
        buckets.push((f64::INFINITY, histogram.get_sample_count()));
        buckets
    }
    pub(crate) fn set_consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.consumer_lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(lag);
    }
    /// Partitions of `topic` whose last reported consumer lag is above 0, and all partitions
    /// of `topic` with a report at all.
    pub(crate) fn backlog(&self, topic: &str) -> (HashSet<i32>, HashSet<i32>) {
        let mut lagging = HashSet::new();
        let mut reported = HashSet::new();
        for metric in self
            .consumer_lag
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
        {
            let labels = metric.get_label();
            if !labels
                .iter()
                .any(|l| l.name() == "topic" && l.value() == topic)
            {
                continue;
            }
            let Some(partition) = labels
                .iter()
                .find(|l| l.name() == "partition")
                .and_then(|l| l.value().parse().ok())
            else {
                continue;
            };
            reported.insert(partition);
            if metric.get_gauge().get_value() > 0.0 {
                lagging.insert(partition);
            }
        }
        (lagging, reported)
    }

    pub(crate) fn forget_partition(&self, topic: &str, partition: i32) {
        let _ = self
            .consumer_lag
            .remove_label_values(&[topic, &partition.to_string()]);
    }
    pub(crate) fn set_alerts_firing(&self, rule: &str, firing: usize) {
        self.alerts_firing
            .with_label_values(&[rule])
            .set(firing as i64);
    }
    pub(crate) fn add_alert_record(&self, rule: &str, action: &str) {
        self.alert_records.with_label_values(&[rule, action]).inc();
    }

    /// The consumer lag last reported, in messages, over all partitions held.
    pub fn consumer_lag(&self) -> i64 {
        self.consumer_lag
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .map(|metric| metric.get_gauge().get_value() as i64)
            .sum()
    }

    /// Messages consumed so far (cheaper than a whole [`Self::snapshot`]).
    pub fn consumed(&self) -> u64 {
        self.consumed.get()
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            consumed: self.consumed.get(),
            windows_emitted: self
                .windows_emitted
                .collect()
                .iter()
                .flat_map(|family| family.get_metric())
                .map(|metric| metric.get_counter().get_value() as u64)
                .sum(),
            result_records: self.result_records.get(),
            commits: self.commits.get(),
            commit_failures: self.commit_failures.get(),
            rebalances: self.rebalances.get(),
            watermark_ms: self.watermark.get(),
            dead_letters: reasons::ALL
                .iter()
                .map(|&r| (r, self.dead_letters.with_label_values(&[r]).get()))
                .filter(|&(_, n)| n > 0)
                .collect(),
        }
    }
}

impl Default for ProcessorStats {
    /// Metrics not registered anywhere (tests, embedding without `/metrics`).
    fn default() -> Self {
        Self::unregistered().expect("static metric definitions are valid")
    }
}

/// The watermark and how far it trails the wall clock, computed when scraped so a stalled
/// loop shows a growing lag.
#[derive(Clone)]
struct WatermarkLag {
    watermark_ms: std::sync::Arc<AtomicI64>,
    timestamp: Gauge,
    lag: Gauge,
}

impl WatermarkLag {
    fn new() -> prometheus::Result<Self> {
        Ok(Self {
            watermark_ms: std::sync::Arc::new(AtomicI64::new(i64::MIN)),
            timestamp: Gauge::with_opts(Opts::new(
                "feedback_pipeline_processor_watermark_timestamp_seconds",
                "The event-time watermark, seconds since the epoch.",
            ))?,
            lag: Gauge::with_opts(Opts::new(
                "feedback_pipeline_processor_watermark_lag_seconds",
                "How far the watermark trails the wall clock (0 before the first event).",
            ))?,
        })
    }

    fn set(&self, ms: i64) {
        self.watermark_ms.store(ms, Ordering::Relaxed);
    }

    fn get(&self) -> i64 {
        self.watermark_ms.load(Ordering::Relaxed)
    }
}

impl Collector for WatermarkLag {
    fn desc(&self) -> Vec<&Desc> {
        self.timestamp
            .desc()
            .into_iter()
            .chain(self.lag.desc())
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let watermark = self.get();
        if watermark > i64::MIN {
            let now = chrono::Utc::now().timestamp_millis();
            self.timestamp.set(watermark as f64 / 1000.0);
            self.lag.set((now - watermark).max(0) as f64 / 1000.0);
        }
        self.timestamp
            .collect()
            .into_iter()
            .chain(self.lag.collect())
            .collect()
    }
}
