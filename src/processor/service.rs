//! The processing loop: read a batch, reject what cannot be used, window the rest, emit
//! closed windows, and commit offsets only once everything they cover has been emitted.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::batch::ConsumedBatch;
use super::checkpoint;
use super::dead_letter::{self, DeadLetter};
use super::engine::{EngineSettings, WindowEngine};
use super::fetch_queue::FetchQueue;
use super::query::QueryDefinition;
use super::results::{ResultRecord, window_records};
use super::source::{OutcomeConsumer, Reassignment, create_consumer};
use super::stats::ProcessorStats;
use crate::alerts::{AlertEvaluator, AlertRecord, AlertRule};
use crate::config::Config;
use crate::event::OutcomeEventView;
use crate::metrics::Metrics;
use crate::metrics::server::Readiness;

/// Messages read per batch at most.
const MAX_BATCH: usize = 10_000;

/// Calls serving the consumer's own queue after a full batch; each serves at most one event
/// (statistics, librdkafka log lines, errors, rebalances). Statistics come every 2 s and a
/// full batch every few milliseconds, so this keeps up even with librdkafka debug logging.
const CONSUMER_EVENTS_PER_BATCH: usize = 16;

/// Errors that stop the processor (bad input never does).
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    /// Kafka client failure.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Query evaluation failure.
    #[error("query evaluation: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// Metric registration failure (a bug: the definitions are static).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A record waiting for the broker's acknowledgement.
struct Outgoing {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Option<OwnedHeaders>,
}

/// One processor instance.
pub struct Processor {
    consumer: Arc<OutcomeConsumer>,
    fetch_queue: FetchQueue,
    producer: FutureProducer,
    engine: WindowEngine,
    stats: Arc<ProcessorStats>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    alerts: AlertEvaluator,
    alerts_topic: String,
    alert_sink: Option<mpsc::UnboundedSender<AlertRecord>>,
    outcome_topic: String,
    metrics_topic: String,
    dead_letter_topic: String,
    tick: Duration,
    results: Option<mpsc::UnboundedSender<ResultRecord>>,
    unsent: Vec<Outgoing>,
    /// Sends not yet acknowledged: each task returns the records that failed.
    in_flight: Vec<tokio::task::JoinHandle<Vec<Outgoing>>>,
    last_commit: HashMap<i32, i64>,
    commit_interval: Duration,
    last_commit_at: Instant,
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
        let consumer = create_consumer(
            config.kafka.consumer_config(servers),
            &config.kafka.consumer_group,
            Arc::clone(&metrics.processor),
        )?;
        consumer.subscribe(&[config.topics.outcomes.as_str()])?;
        let mut producer_config = config.kafka.producer_config(servers);
        if !config
            .kafka
            .extra_properties
            .iter()
            .any(|(k, _)| k == "linger.ms")
        {
            // Results are already batched per tick; lingering longer only delays commits.
            producer_config.set("linger.ms", "5");
        }
        let producer: FutureProducer = producer_config.create()?;
        let engine = WindowEngine::new(
            queries,
            EngineSettings {
                out_of_orderness: settings.out_of_orderness,
                grace: settings.grace,
                idle_after: settings.idle_after,
            },
        )?;
        let consumer = Arc::new(consumer);
        Ok(Self {
            fetch_queue: FetchQueue::new(Arc::clone(&consumer)),
            consumer,
            producer,
            engine,
            stats: Arc::clone(&metrics.processor),
            metrics,
            readiness: Arc::default(),
            alerts: AlertEvaluator::new(Vec::new()),
            alerts_topic: config.topics.alerts.clone(),
            alert_sink: None,
            outcome_topic: config.topics.outcomes.clone(),
            metrics_topic: config.topics.metrics.clone(),
            dead_letter_topic: config.topics.dead_letters.clone(),
            tick: settings.tick,
            results: None,
            unsent: Vec::new(),
            in_flight: Vec::new(),
            last_commit: HashMap::new(),
            commit_interval: settings.commit_interval,
            last_commit_at: Instant::now(),
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
        let (sender, receiver) = mpsc::unbounded_channel();
        self.alert_sink = Some(sender);
        receiver
    }

    /// Result records as they are emitted (besides the metrics topic).
    pub fn subscribe_results(&mut self) -> mpsc::UnboundedReceiver<ResultRecord> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.results = Some(sender);
        receiver
    }

    /// Runs until `shutdown` completes, then commits what is safe and returns.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), ProcessorError> {
        tokio::pin!(shutdown);
        let mut batch = ConsumedBatch::with_capacity(MAX_BATCH);
        loop {
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
            self.apply_reassignments(&mut batch);
            self.process(&batch)?;
            self.commit(stop).await;
            if stop {
                tracing::info!("processor stopping; safe offsets committed");
                return Ok(());
            }
            // While a backlog lasts the loop never waits: let the tasks it spawned (result
            // sends) run instead of sitting in this worker's slot until the next commit.
            tokio::task::yield_now().await;
        }
    }

    fn apply_reassignments(&mut self, batch: &mut ConsumedBatch) {
        for change in self.consumer.context().take_changes() {
            self.stats.add_rebalance();
            match change {
                Reassignment::Revoked(partitions) => {
                    tracing::info!(?partitions, "partitions revoked");
                    for &partition in &partitions {
                        self.engine.revoke(partition);
                        self.last_commit.remove(&partition);
                        self.stats.forget_partition(&self.outcome_topic, partition);
                    }
                    batch.remove_partitions(&partitions);
                }
                Reassignment::Assigned(partitions) => {
                    tracing::info!(?partitions, "partitions assigned");
                    self.engine.assign(&partitions, Instant::now());
                    self.restore(&partitions);
                    self.readiness.set(true);
                }
            }
        }
    }

    /// Reads the partitions' checkpoints so windows already emitted are not emitted again.
    fn restore(&mut self, partitions: &[i32]) {
        let loaded = tokio::task::block_in_place(|| {
            checkpoint::load(&*self.consumer, &self.outcome_topic, partitions)
        });
        match loaded {
            Ok(checkpoints) => {
                for (partition, checkpoint) in checkpoints {
                    tracing::debug!(partition, ?checkpoint, "checkpoint restored");
                    self.engine.restore(partition, &checkpoint);
                }
            }
            Err(err) => {
                tracing::warn!(%err, "reading checkpoints failed; windows may be emitted again")
            }
        }
    }

    fn process(&mut self, batch: &ConsumedBatch) -> Result<(), ProcessorError> {
        self.stats.add_consumed(batch.len() as u64);
        let now = Instant::now();
        // Per partition, the decoded events (borrowing from the batch) and each one's index
        // in the batch, sized up front: growing them was a measurable share of a batch.
        let mut counts: BTreeMap<i32, usize> = BTreeMap::new();
        for message in batch.messages() {
            *counts.entry(message.partition).or_default() += 1;
        }
        let mut by_partition: BTreeMap<i32, PartitionEvents<'_>> = counts
            .into_iter()
            .map(|(partition, n)| (partition, (Vec::with_capacity(n), Vec::with_capacity(n))))
            .collect();
        for (index, message) in batch.messages().iter().enumerate() {
            let (partition, offset) = (message.partition, message.offset);
            let decoded = match batch.payload(message) {
                None => Err((dead_letter::EMPTY, "the message has no payload".to_owned())),
                Some(bytes) => OutcomeEventView::from_json_slice(bytes)
                    .map_err(|err| (err.kind().as_str(), err.to_string())),
            };
            match decoded {
                Ok(event) => {
                    let (events, indexes) = by_partition
                        .get_mut(&partition)
                        .expect("every partition of the batch has an entry");
                    events.push((offset, event));
                    indexes.push(index);
                }
                Err((reason, detail)) => {
                    self.dead_letter(batch, index, reason, detail);
                    self.engine.record_handled(partition, offset);
                }
            }
        }
        for (partition, (events, indexes)) in by_partition {
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
            for late in self.engine.ingest(partition, &events, now)? {
                let detail = format!(
                    "event time is behind the closed windows of: {}",
                    late.queries.join(", ")
                );
                self.dead_letter(batch, indexes[late.index], dead_letter::LATE, detail);
            }
        }
        let wall_now = chrono::Utc::now().timestamp_millis();
        let (lagging, reported) = self.stats.backlog(&self.outcome_topic);
        self.engine.set_lagging(lagging, reported);
        let closed_windows = self.engine.advance(now, wall_now)?;
        let emitting = !closed_windows.is_empty();
        let mut alerts = Vec::new();
        for closed in closed_windows {
            let query = &closed.query.name;
            let records = window_records(&closed);
            tracing::debug!(query = %query, start = closed.result.window.start, rows = records.len(), watermark = self.engine.watermark(), "window closed");
            self.stats.add_window(query, records.len() as u64);
            self.metrics
                .windows
                .update(query, closed.result.window, &closed.result.rows);
            alerts.extend(self.alerts.observe_window(
                query,
                closed.result.window,
                &closed.result.rows,
            ));
            for record in records {
                self.unsent.push(Outgoing {
                    topic: self.metrics_topic.clone(),
                    key: Some(record.key.clone().into_bytes()),
                    payload: record.value.to_string().into_bytes(),
                    headers: None,
                });
                if let Some(results) = &self.results {
                    let _ = results.send(record);
                }
            }
        }
        alerts.extend(self.engine.quiet_alerts(&mut self.alerts));
        self.alert_records(alerts);
        self.stats.set_watermark(self.engine.watermark());
        let (panes, groups) = self.engine.open_state();
        self.stats.set_open_state(panes, groups);
        self.stats.set_assigned(self.engine.partition_count());
        self.send_unsent(emitting);
        Ok(())
    }

    /// Queues alert records for the alert topic (keyed by dedup key, so one alert's trigger
    /// and resolve stay in order) and updates the firing gauges.
    fn alert_records(&mut self, records: Vec<AlertRecord>) {
        if records.is_empty() {
            return;
        }
        for record in records {
            tracing::warn!(rule = %record.rule, action = record.action.as_str(), summary = %record.summary, "alert");
            self.stats
                .add_alert_record(&record.rule, record.action.as_str());
            match serde_json::to_vec(&record) {
                Ok(payload) => self.unsent.push(Outgoing {
                    topic: self.alerts_topic.clone(),
                    key: Some(record.dedup_key.clone().into_bytes()),
                    payload,
                    headers: None,
                }),
                Err(err) => tracing::error!(%err, "encoding an alert record failed"),
            }
            if let Some(sink) = &self.alert_sink {
                let _ = sink.send(record);
            }
        }
        for (rule, firing) in self.alerts.firing() {
            self.stats.set_alerts_firing(rule, firing);
        }
    }

    /// Sends message `index` of `batch` to the dead-letter topic.
    fn dead_letter(
        &mut self,
        batch: &ConsumedBatch,
        index: usize,
        reason: &'static str,
        detail: String,
    ) {
        let message = &batch.messages()[index];
        let letter = DeadLetter {
            reason,
            detail,
            topic: self.outcome_topic.clone(),
            partition: message.partition,
            offset: message.offset,
            key: batch.key(message).map(<[u8]>::to_vec),
            payload: batch.payload(message).unwrap_or_default().to_vec(),
        };
        self.stats.add_dead_letter(letter.reason);
        tracing::debug!(reason = letter.reason, detail = %letter.detail, partition = letter.partition, offset = letter.offset, "dead-lettered");
        let headers = letter.headers();
        self.unsent.push(Outgoing {
            topic: self.dead_letter_topic.clone(),
            key: letter.key,
            payload: letter.payload,
            headers: Some(headers),
        });
    }

    /// Hands everything pending to the producer without waiting: a task awaits the
    /// acknowledgements (and times them when they carry window results); what fails comes back
    /// at the next commit, which waits for all of it.
    fn send_unsent(&mut self, results: bool) {
        if self.unsent.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.unsent);
        let producer = self.producer.clone();
        let stats = Arc::clone(&self.stats);
        self.in_flight.push(tokio::spawn(async move {
            let started = Instant::now();
            let sends = pending.iter().map(|out| {
                let mut record: FutureRecord<'_, [u8], [u8]> =
                    FutureRecord::to(&out.topic).payload(out.payload.as_slice());
                if let Some(key) = &out.key {
                    record = record.key(key.as_slice());
                }
                if let Some(headers) = &out.headers {
                    record = record.headers(headers.clone());
                }
                producer.send(record, Duration::from_secs(30))
            });
            let outcomes = futures::future::join_all(sends).await;
            if results {
                stats.observe_emit(started.elapsed().as_secs_f64());
            }
            pending
                .into_iter()
                .zip(outcomes)
                .filter_map(|(out, outcome)| match outcome {
                    Ok(_) => None,
                    Err((err, _)) => {
                        tracing::warn!(%err, topic = %out.topic, "sending a record failed; will retry");
                        Some(out)
                    }
                })
                .collect()
        }));
    }

    /// Waits for every send in flight; what failed is queued again.
    async fn settle_sends(&mut self) {
        for task in std::mem::take(&mut self.in_flight) {
            match task.await {
                Ok(failed) => self.unsent.extend(failed),
                Err(err) => tracing::error!(%err, "a send task failed"),
            }
        }
    }

    /// Every commit interval (and when `now`): once every record sent so far is acknowledged,
    /// commits the offsets every emitted window allows, each with its checkpoint.
    async fn commit(&mut self, now: bool) {
        if !now && self.last_commit_at.elapsed() < self.commit_interval {
            return;
        }
        self.settle_sends().await;
        if !self.unsent.is_empty() {
            // Retry what failed; commit once it is through.
            self.send_unsent(false);
            if !now {
                return;
            }
            self.settle_sends().await;
            if !self.unsent.is_empty() {
                return;
            }
        }
        self.last_commit_at = Instant::now();
        let positions = self.engine.commit_positions();
        let read = self.engine.read_positions();
        let mut list = TopicPartitionList::new();
        for (&partition, &offset) in &positions {
            if self.last_commit.get(&partition) == Some(&offset) {
                continue;
            }
            let read_through = read.get(&partition).copied().unwrap_or(offset);
            let checkpoint = self.engine.checkpoint(partition, read_through);
            if let Err(err) = checkpoint::add_commit(
                &mut list,
                &self.outcome_topic,
                partition,
                offset,
                &checkpoint,
            ) {
                tracing::warn!(%err, partition, "cannot commit this offset");
            }
        }
        if list.count() == 0 {
            return;
        }
        tracing::trace!(?list, "committing offsets with their checkpoints");
        let consumer = Arc::clone(&self.consumer);
        let result = tokio::task::block_in_place(|| consumer.commit(&list, CommitMode::Sync));
        self.stats.add_commit(result.is_ok());
        match result {
            Ok(()) => {
                for element in list.elements() {
                    if let Offset::Offset(offset) = element.offset() {
                        self.last_commit.insert(element.partition(), offset);
                    }
                }
            }
            Err(err) => tracing::warn!(%err, "committing offsets failed; will retry"),
        }
    }
}

/// One partition's decoded events of a batch, `(offset, event)`, and each one's index in the
/// batch.
type PartitionEvents<'a> = (Vec<(i64, OutcomeEventView<'a>)>, Vec<usize>);
