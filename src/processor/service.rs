//! The processing loop: read a batch, reject what cannot be used, window the rest, emit
//! closed windows, and commit offsets only once everything they cover has been emitted.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use rdkafka::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureProducer;
use tokio::sync::mpsc;

use super::merge::{HandOff, MergeStage};
use super::sinks::{Committer, Outbox, PermanentSendError, ResultRecord, Sends, window_records};
use super::source::{
    ConsumedBatch, FetchQueue, OutcomeConsumer, PartitionEvents, Reassignment, create_consumer,
    decode_batch,
};
use super::sql::QueryDefinition;
use super::windows::{
    ClosedWindow, EngineSettings, PartitionCheckpoint, RejectedEvent, Rejection, WindowEngine,
    checkpoint,
};
use crate::alerts::history::AlertHistory;
use crate::alerts::{AlertEvaluator, AlertRecord, AlertRule};
use crate::config::Config;
use crate::event::reasons;
use crate::kafka::{self, TopicSpec, ensure_topics};
use crate::metrics::server::Readiness;
use crate::metrics::{Metrics, ProcessorStats};

/// Messages read per batch at most.
const MAX_BATCH: usize = 10_000;

/// Calls serving the consumer's own queue after a full batch; each serves at most one event
/// (statistics, librdkafka log lines, errors, rebalances). Statistics come every 2 s and a
/// full batch every few milliseconds, so this keeps up even with librdkafka debug logging.
const CONSUMER_EVENTS_PER_BATCH: usize = 16;

/// How long a stopping processor waits for its sends, then for its last commit.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// Errors that stop the processor (bad input never does).
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    /// Kafka client failure.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Query evaluation failure.
    #[error("query evaluation: {0}")]
    Query(#[from] datafusion_common::DataFusionError),
    /// Metric registration failure (a bug: the definitions are static).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A record that can never be written.
    #[error(transparent)]
    Send(#[from] PermanentSendError),
    /// Checkpoints that could not be read: processing would emit windows twice.
    #[error("{0}")]
    Checkpoint(String),
    /// The repartition topic could not be set up.
    #[error("repartition topic: {0}")]
    Repartition(String),
}

/// Longest wait for the alert topic to be read back on an assignment.
const ALERT_HISTORY_TIMEOUT: Duration = Duration::from_secs(10);

/// One processor instance.
pub struct Processor {
    consumer: Arc<OutcomeConsumer>,
    fetch_queue: FetchQueue,
    engine: WindowEngine,
    outbox: Outbox,
    committer: Committer,
    alerts: AlertEvaluator,
    /// Read back on every assignment (see [`Self::seed_alerts`]).
    alert_history: AlertHistory,
    /// The second phase of queries whose groups span partitions (none: no such query).
    merge: Option<MergeStage>,
    /// Where the first phase's partials go (set once the repartition topic is ready).
    hand_off: Option<HandOff>,
    stats: Arc<ProcessorStats>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    outcome_topic: String,
    tick: Duration,
    /// Events dated more than this ahead of the wall clock are rejected (ms).
    max_future_ms: i64,
}

impl Processor {
    /// Connects to `servers` with the settings of `config`, running `queries`.
    pub fn new(
        config: &Config,
        servers: &str,
        queries: &[Arc<QueryDefinition>],
    ) -> Result<Self, ProcessorError> {
        let settings = &config.processor;
        checkpoint::check_size(queries.iter().map(|q| q.name.as_str()))?;
        let metrics = Arc::new(Metrics::new(settings.metrics_max_series)?);
        let stats = Arc::clone(&metrics.processor);
        let consumer = create_consumer(
            config.kafka.consumer_config(servers),
            &config.kafka.consumer_group,
            Arc::clone(&stats),
        )?;
        consumer.subscribe(&[config.topics.outcomes.as_str()])?;
        let consumer = Arc::new(consumer);
        let readiness = Arc::new(Readiness::default());
        readiness.set_stall_after(settings.stall_timeout);
        let committer = Committer::new(
            Arc::clone(&consumer),
            config.topics.outcomes.clone(),
            settings.commit_interval,
            Arc::clone(&stats),
            Arc::clone(&readiness),
        );
        let sends = result_sends(config, servers, Arc::clone(&stats))?;
        let global: Vec<_> = queries
            .iter()
            .filter(|q| !q.compiled.partition_aligned)
            .cloned()
            .collect();
        let merge = if global.is_empty() {
            None
        } else {
            Some(MergeStage::new(
                config,
                servers,
                global,
                Arc::clone(&stats),
            )?)
        };
        Ok(Self {
            fetch_queue: FetchQueue::new(Arc::clone(&consumer)),
            consumer,
            engine: WindowEngine::new(queries, engine_settings(config))?.with_partials(),
            outbox: Outbox::new(sends, config.topics.clone(), Arc::clone(&stats)),
            committer,
            alerts: AlertEvaluator::new(Vec::new()),
            alert_history: AlertHistory {
                client: config.kafka.client_config(servers),
                topic: config.topics.alerts.clone(),
                timeout: ALERT_HISTORY_TIMEOUT,
            },
            merge,
            hand_off: None,
            stats,
            metrics,
            readiness,
            outcome_topic: config.topics.outcomes.clone(),
            tick: settings.tick,
            max_future_ms: settings.max_future.as_millis() as i64,
        })
    }

    /// The counters, shared.
    pub fn stats(&self) -> Arc<ProcessorStats> {
        Arc::clone(&self.stats)
    }

    /// Every metric this processor exports (serve them with [`crate::metrics::server`]).
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Set once partitions are assigned: for `/readyz`.
    pub fn readiness(&self) -> Arc<Readiness> {
        Arc::clone(&self.readiness)
    }

    /// Evaluates `rules` on closed windows and writes their records to the alert topic.
    pub fn with_alerts(mut self, rules: Vec<AlertRule>) -> Self {
        self.alerts = AlertEvaluator::new(rules);
        for (rule, firing) in self.alerts.firing() {
            self.stats.set_alerts_firing(rule, firing);
        }
        self
    }

    /// Alert records as they are emitted (besides the alert topic).
    pub fn subscribe_alerts(&mut self) -> mpsc::UnboundedReceiver<AlertRecord> {
        self.outbox.subscribe_alerts()
    }

    /// Result records as they are emitted (besides the metrics topic).
    pub fn subscribe_results(&mut self) -> mpsc::UnboundedReceiver<ResultRecord> {
        self.outbox.subscribe_results()
    }

    /// Runs until `shutdown` completes, then commits what is safe and returns. An error
    /// (a record that can never be sent, unreadable checkpoints) stops it and turns `/readyz`
    /// not ready with the reason.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ProcessorError> {
        let readiness = self.readiness();
        let result = self.run_turns(shutdown).await;
        if let Err(err) = &result {
            tracing::error!(%err, "processor stopped");
            readiness.set_problem(Some(format!("stopped: {err}")));
        }
        result
    }

    async fn run_turns(mut self, shutdown: impl Future<Output = ()>) -> Result<(), ProcessorError> {
        tokio::pin!(shutdown);
        self.start_merge().await?;
        let mut batch = ConsumedBatch::with_capacity(MAX_BATCH);
        loop {
            self.readiness.turned();
            let deadline = tokio::time::Instant::now() + self.tick;
            batch.clear();
            let stop = loop {
                // A rebalance ends the batch before anything else is read: the batch then
                // holds only messages of the assignment the change revokes, which are dropped
                // and fetched again, never messages of the new one (dropping those would
                // leave a gap that later commits pass over).
                if self.consumer.context().has_changes() {
                    break false;
                }
                // Take what librdkafka has already fetched without waiting: a timer and a
                // wake-up per message cost more than decoding it.
                if let Err(err) = self.fetch_queue.read_into(&mut batch, MAX_BATCH) {
                    tracing::warn!(%err, "consumer error");
                }
                if batch.len() >= MAX_BATCH {
                    // A backlog keeps batches full and the wait below unreached: serve the
                    // consumer's own queue (rebalances, statistics, errors) and look for a
                    // shutdown here too.
                    for _ in 0..CONSUMER_EVENTS_PER_BATCH {
                        match self.consumer.recv().now_or_never() {
                            Some(Ok(message)) => batch.push(&message),
                            Some(Err(err)) => tracing::warn!(%err, "consumer error"),
                            None => {}
                        }
                    }
                    break (&mut shutdown).now_or_never().is_some();
                }
                tokio::select! {
                    _ = &mut shutdown => break true,
                    // A rebalance served by `recv` below: end the batch now, not at the tick.
                    _ = self.consumer.context().changed() => break false,
                    _ = self.fetch_queue.readable() => {}
                    // Serves rebalances, statistics and errors; messages come through the
                    // fetch queue once partitions are forwarded there.
                    received = self.consumer.recv() => match received {
                        Ok(message) => batch.push(&message),
                        Err(err) => {
                            tracing::warn!(%err, "consumer error");
                            break false;
                        }
                    },
                    _ = tokio::time::sleep_until(deadline) => break false,
                }
            };
            self.apply_reassignments(&mut batch)?;
            self.process(&batch)?;
            self.outbox.sends_mut().collect()?;
            if stop {
                self.finish().await?;
                return Ok(());
            }
            self.committer.turn(&mut self.engine, self.outbox.sends());
            if let Some(merge) = &mut self.merge {
                merge.commit(self.outbox.sends());
            }
            // While a backlog lasts the loop never waits: let the tasks it spawned (result
            // sends) run instead of sitting in this worker's slot until the next commit.
            tokio::task::yield_now().await;
        }
    }

    fn apply_reassignments(&mut self, batch: &mut ConsumedBatch) -> Result<(), ProcessorError> {
        for change in self.consumer.context().take_changes() {
            self.committer.drop_pending();
            self.stats.add_rebalance();
            match change {
                Reassignment::Revoked(partitions) => {
                    tracing::info!(?partitions, "partitions revoked");
                    // Their groups may move: missing rows no longer mean clear.
                    self.alerts.unconfirm_all();
                    for &partition in &partitions {
                        self.engine.revoke(partition);
                        self.committer.forget(partition);
                        self.stats.forget_partition(&self.outcome_topic, partition);
                    }
                    batch.remove_partitions(&partitions);
                }
                Reassignment::Assigned(partitions) => {
                    tracing::info!(?partitions, "partitions assigned");
                    self.engine.assign(&partitions, Instant::now());
                    self.restore(&partitions)?;
                    self.seed_alerts();
                    self.readiness.set(true);
                }
            }
        }
        Ok(())
    }

    /// Reads the partitions' checkpoints so windows already emitted are not emitted again.
    /// A partition is never processed without its checkpoint: when it cannot be read the
    /// processor stops (a restart reads it again) rather than emit windows twice.
    fn restore(&mut self, partitions: &[i32]) -> Result<(), ProcessorError> {
        let loaded = tokio::task::block_in_place(|| {
            checkpoint::load(&*self.consumer, &self.outcome_topic, partitions)
        });
        let checkpoints: HashMap<i32, PartitionCheckpoint> = loaded.map_err(|err| {
            ProcessorError::Checkpoint(format!(
                "reading the checkpoints of partitions {partitions:?} failed: {err}; stopping \
                 rather than emit their windows again (restart once the group coordinator \
                 answers)"
            ))
        })?;
        for (partition, checkpoint) in checkpoints {
            tracing::debug!(partition, ?checkpoint, "checkpoint restored");
            self.engine.restore(partition, &checkpoint);
        }
        Ok(())
    }

    /// Takes up the alerts the alert topic says are firing (their last record a trigger), so
    /// those of groups this instance now computes resolve once when clear and do not fire
    /// again. A failure to read is logged, not fatal: alerts may then fire again.
    fn seed_alerts(&mut self) {
        if self.alerts.rules().is_empty() {
            return;
        }
        let read = tokio::task::block_in_place(|| self.alert_history.firing());
        match read {
            Ok(records) => {
                let seeded = self.alerts.seed(&records);
                tracing::info!(
                    firing = records.len(),
                    seeded,
                    "alert state read back from the alert topic"
                );
                for (rule, firing) in self.alerts.firing() {
                    self.stats.set_alerts_firing(rule, firing);
                }
            }
            Err(err) => {
                tracing::warn!(%err, "reading the alert topic back failed; firing alerts may fire again")
            }
        }
    }

    /// One turn's work on a batch: decode, window, emit what closed, judge alerts.
    fn process(&mut self, batch: &ConsumedBatch) -> Result<(), ProcessorError> {
        self.stats.add_consumed(batch.len() as u64);
        let now = Instant::now();
        let wall_now = chrono::Utc::now().timestamp_millis();
        let (by_partition, refused) = decode_batch(batch, wall_now, self.max_future_ms);
        for (index, reason, detail) in refused {
            self.outbox.dead_letter(batch, index, reason, detail);
            let message = &batch.messages()[index];
            self.engine
                .record_handled(message.partition, message.offset);
        }
        for (partition, events) in by_partition {
            self.ingest(batch, partition, events, now)?;
        }
        let (lagging, reported) = self.stats.backlog(&self.outcome_topic);
        self.engine.set_lagging(lagging, reported);
        self.engine.set_connected(self.stats.source_connected());
        let closed_windows = self.engine.advance(now, wall_now)?;
        let mut emitting = !closed_windows.is_empty();
        let mut alerts = Vec::new();
        for closed in closed_windows {
            if closed.result.partial {
                if let Some(hand_off) = &self.hand_off {
                    hand_off.partials(&mut self.outbox, &closed)?;
                }
            } else {
                alerts.extend(self.emit(closed));
            }
        }
        if let Some(hand_off) = &mut self.hand_off {
            hand_off.report(&mut self.outbox, &self.engine);
        }
        for quiet in self.engine.quiet_windows() {
            let records = self
                .alerts
                .observe_quiet(quiet.query, quiet.size, quiet.closed_through);
            alerts.extend(records);
        }
        let merged = self.merge_turn()?;
        emitting |= !merged.is_empty();
        for closed in merged {
            alerts.extend(self.emit(closed));
        }
        if let Some(merge) = &self.merge {
            for (query, size, bound) in merge.quiet() {
                alerts.extend(self.alerts.observe_quiet(query, size, bound));
            }
        }
        self.alert_records(alerts);
        self.update_gauges();
        self.outbox.sends_mut().send(emitting);
        Ok(())
    }

    /// Counts and windows one partition's decoded events; dead-letters those refused.
    fn ingest(
        &mut self,
        batch: &ConsumedBatch,
        partition: i32,
        (events, indexes): PartitionEvents<'_>,
        now: Instant,
    ) -> Result<(), ProcessorError> {
        if let (Some(first), Some(last)) = (events.first(), events.last()) {
            tracing::trace!(
                partition,
                first = first.0,
                last = last.0,
                n = events.len(),
                "ingesting"
            );
        }
        let engine = &self.engine;
        self.metrics.events.observe_all(
            events
                .iter()
                .filter(|(offset, _)| !engine.is_replay(partition, *offset))
                .map(|(_, event)| event),
        );
        for rejected in self.engine.ingest(partition, &events, now)? {
            let (reason, detail) = rejection_reason(&rejected);
            self.outbox
                .dead_letter(batch, indexes[rejected.index], reason, detail);
        }
        Ok(())
    }

    /// Queues a closed window's records and updates its gauges; returns the alert records
    /// its first emission gives (alerts judge a window once, when it closes: an update holds
    /// only the groups that changed, and a window long past is no news to page on).
    fn emit(&mut self, closed: ClosedWindow) -> Vec<AlertRecord> {
        let query = &closed.query.name;
        let (window, rows) = (closed.result.window, &closed.result.rows);
        let records = window_records(&closed);
        let update = closed.result.update;
        tracing::debug!(query = %query, start = window.start, rows = records.len(), update, watermark = self.engine.watermark(), "window emitted");
        self.metrics.windows.update(query, window, rows);
        let mut alerts = Vec::new();
        if update {
            self.stats.add_window_update(query, records.len() as u64);
        } else {
            self.stats.add_window(query, records.len() as u64);
            let piece = closed.result.partition;
            alerts = self.alerts.observe_window_piece(query, window, rows, piece);
        }
        self.outbox.results(records, update);
        alerts
    }

    /// Reads the repartition topic and returns the windows it completed (or updated).
    fn merge_turn(&mut self) -> Result<Vec<ClosedWindow>, ProcessorError> {
        let Some(merge) = &mut self.merge else {
            return Ok(Vec::new());
        };
        let read = merge.read(MAX_BATCH)?;
        if read.late > 0 || read.unreadable > 0 {
            tracing::warn!(
                late = read.late,
                unreadable = read.unreadable,
                "repartition records dropped"
            );
        }
        if read.assigned {
            // Before anything of the new partitions is judged.
            self.seed_alerts();
        }
        let Some(merge) = &mut self.merge else {
            return Ok(Vec::new());
        };
        Ok(merge.close()?)
    }

    /// Creates the repartition topic (as many partitions as the outcome topic) when a query
    /// needs it, and starts handing partials over.
    async fn start_merge(&mut self) -> Result<(), ProcessorError> {
        let Some(repartition) = self.merge.as_ref().map(|m| m.topic().to_owned()) else {
            return Ok(());
        };
        let client = &self.alert_history.client;
        let sources = partition_count(client, &self.outcome_topic).await?;
        let spec = TopicSpec::new(&repartition, sources);
        ensure_topics(client, &[spec], Duration::from_secs(30)).await?;
        let partitions = partition_count(client, &repartition).await?;
        tracing::info!(%repartition, sources, partitions, "merging queries across partitions");
        if let Some(merge) = &mut self.merge {
            merge.set_sources(sources);
        }
        self.hand_off = Some(HandOff::new(repartition, partitions));
        Ok(())
    }

    /// Queues alert records for the alert topic and updates the firing gauges.
    fn alert_records(&mut self, records: Vec<AlertRecord>) {
        if records.is_empty() {
            return;
        }
        self.outbox.alerts(records);
        for (rule, firing) in self.alerts.firing() {
            self.stats.set_alerts_firing(rule, firing);
        }
    }

    fn update_gauges(&self) {
        self.stats.set_watermark(self.engine.watermark());
        let (mut panes, mut groups) = self.engine.open_state();
        if let Some(merge) = &self.merge {
            let (merge_panes, merge_groups) = merge.open_state();
            panes += merge_panes;
            groups += merge_groups;
        }
        self.stats.set_open_state(panes, groups);
        self.stats.set_assigned(self.engine.partition_count());
    }

    /// On shutdown: waits a bounded time for the sends, commits what they allow and waits a
    /// bounded time for the answer, so a broker outage cannot hold the process.
    async fn finish(&mut self) -> Result<(), ProcessorError> {
        self.readiness.set_problem(Some("stopping".into()));
        self.outbox.sends_mut().settle(SHUTDOWN_WAIT).await?;
        if let Some(merge) = &mut self.merge {
            merge.finish(SHUTDOWN_WAIT);
        }
        let sends = self.outbox.sends();
        self.committer
            .finish(&mut self.engine, sends, SHUTDOWN_WAIT)
            .await;
        Ok(())
    }
}

/// The number of partitions of `topic`, waiting up to 30 s for a topic just created to show.
async fn partition_count(client: &ClientConfig, topic: &str) -> Result<i32, ProcessorError> {
    match kafka::partition_count(client, topic, Duration::from_secs(30)).await? {
        0 => Err(ProcessorError::Repartition(format!(
            "topic {topic} has no partitions after 30 s (does it exist?)"
        ))),
        n => Ok(n as i32),
    }
}

/// The engine's settings from the configuration.
fn engine_settings(config: &Config) -> EngineSettings {
    let settings = &config.processor;
    EngineSettings {
        out_of_orderness: settings.out_of_orderness,
        grace: settings.grace,
        idle_after: settings.idle_after,
        max_groups_per_window: settings.max_groups_per_window,
        allowed_lateness: settings.allowed_lateness,
    }
}

/// The producer of the output topics, with its message limit.
fn result_sends(
    config: &Config,
    servers: &str,
    stats: Arc<ProcessorStats>,
) -> Result<Sends, ProcessorError> {
    let mut producer_config = config.kafka.producer_config(servers);
    let lingers = config
        .kafka
        .extra_properties
        .iter()
        .any(|(k, _)| k == "linger.ms");
    if !lingers {
        // Results are already batched per tick; lingering longer only delays commits.
        producer_config.set("linger.ms", "5");
    }
    let max_message_bytes = producer_config
        .get("message.max.bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES);
    let producer: FutureProducer = producer_config.create()?;
    Ok(Sends::new(producer, max_message_bytes, stats))
}

/// The dead-letter reason and detail of an event the windows refused.
fn rejection_reason(rejected: &RejectedEvent) -> (&'static str, String) {
    let queries = rejected.queries.join(", ");
    match rejected.rejection {
        Rejection::Late => (
            reasons::LATE,
            format!(
                "its window was emitted more than WINDOW_ALLOWED_LATENESS_MS ago in: {queries}"
            ),
        ),
        Rejection::TooManyGroups => (
            reasons::TOO_MANY_GROUPS,
            format!(
                "its window already holds PROCESSOR_MAX_GROUPS_PER_WINDOW groups in: {queries}"
            ),
        ),
    }
}
