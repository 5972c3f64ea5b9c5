//! The processing loop: read a batch, reject what cannot be used, window the rest, emit
//! closed windows, and commit offsets only once everything they cover has been emitted.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::sinks::{
    CommitQueue, DeadLetter, Outgoing, PermanentSendError, ResultRecord, Sends, window_records,
};
use super::source::{ConsumedBatch, FetchQueue, OutcomeConsumer, Reassignment, create_consumer};
use super::sql::QueryDefinition;
use super::windows::{EngineSettings, Rejection, WindowEngine, checkpoint};
use crate::alerts::{AlertEvaluator, AlertRecord, AlertRule};
use crate::config::Config;
use crate::event::OutcomeEventView;
use crate::event::reasons;
use crate::metrics::Metrics;
use crate::metrics::ProcessorStats;
use crate::metrics::server::Readiness;

/// Messages read per batch at most.
const MAX_BATCH: usize = 10_000;

/// Calls serving the consumer's own queue after a full batch; each serves at most one event
/// (statistics, librdkafka log lines, errors, rebalances). Statistics come every 2 s and a
/// full batch every few milliseconds, so this keeps up even with librdkafka debug logging.
const CONSUMER_EVENTS_PER_BATCH: usize = 16;

/// How long a stopping processor waits for its sends, then for its last commit.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// A commit waiting (for sends or for the coordinator) longer than this makes the processor
/// not ready, unless the commit interval is longer.
const COMMIT_BLOCKED_AFTER: Duration = Duration::from_secs(15);

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
    Query(#[from] datafusion::error::DataFusionError),
    /// Metric registration failure (a bug: the definitions are static).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A record that can never be written.
    #[error(transparent)]
    Send(#[from] PermanentSendError),
    /// Checkpoints that could not be read: processing would emit windows twice.
    #[error("{0}")]
    Checkpoint(String),
}

/// Longest wait for the alert topic to be read back on an assignment.
const ALERT_HISTORY_TIMEOUT: Duration = Duration::from_secs(10);

/// A commit taken at one turn, made once every record queued up to then is acknowledged.
struct PendingCommit {
    list: TopicPartitionList,
    /// The send sequence of the turn it was taken at.
    sequence: u64,
    since: Instant,
}

/// One processor instance.
pub struct Processor {
    consumer: Arc<OutcomeConsumer>,
    fetch_queue: FetchQueue,
    sends: Sends,
    engine: WindowEngine,
    stats: Arc<ProcessorStats>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    alerts: AlertEvaluator,
    alerts_topic: String,
    /// Client settings for reading the alert topic back (see [`Self::seed_alerts`]).
    alert_history: rdkafka::ClientConfig,
    alert_sink: Option<mpsc::UnboundedSender<AlertRecord>>,
    outcome_topic: String,
    metrics_topic: String,
    dead_letter_topic: String,
    tick: Duration,
    /// Events dated more than this ahead of the wall clock are rejected (ms).
    max_future_ms: i64,
    results: Option<mpsc::UnboundedSender<ResultRecord>>,
    pending_commit: Option<PendingCommit>,
    commits: CommitQueue,
    /// Whether commits are reported blocked (logged once per episode).
    commits_blocked: bool,
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
        let max_message_bytes = producer_config
            .get("message.max.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES);
        let producer: FutureProducer = producer_config.create()?;
        let engine = WindowEngine::new(
            queries,
            EngineSettings {
                out_of_orderness: settings.out_of_orderness,
                grace: settings.grace,
                idle_after: settings.idle_after,
                max_groups_per_window: settings.max_groups_per_window,
                allowed_lateness: settings.allowed_lateness,
            },
        )?;
        let consumer = Arc::new(consumer);
        let readiness = Arc::new(Readiness::default());
        readiness.set_stall_after(settings.stall_timeout);
        Ok(Self {
            fetch_queue: FetchQueue::new(Arc::clone(&consumer)),
            commits: CommitQueue::new(Arc::clone(&consumer)),
            consumer,
            sends: Sends::new(producer, max_message_bytes, Arc::clone(&metrics.processor)),
            engine,
            stats: Arc::clone(&metrics.processor),
            metrics,
            readiness,
            alerts: AlertEvaluator::new(Vec::new()),
            alerts_topic: config.topics.alerts.clone(),
            alert_history: config.kafka.client_config(servers),
            alert_sink: None,
            outcome_topic: config.topics.outcomes.clone(),
            metrics_topic: config.topics.metrics.clone(),
            dead_letter_topic: config.topics.dead_letters.clone(),
            tick: settings.tick,
            max_future_ms: settings.max_future.as_millis() as i64,
            results: None,
            pending_commit: None,
            commits_blocked: false,
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
            self.sends.collect()?;
            if stop {
                self.finish().await?;
                return Ok(());
            }
            self.commit();
            // While a backlog lasts the loop never waits: let the tasks it spawned (result
            // sends) run instead of sitting in this worker's slot until the next commit.
            tokio::task::yield_now().await;
        }
    }

    fn apply_reassignments(&mut self, batch: &mut ConsumedBatch) -> Result<(), ProcessorError> {
        for change in self.consumer.context().take_changes() {
            // Taken before the change: it may name partitions no longer ours.
            self.pending_commit = None;
            self.stats.add_rebalance();
            match change {
                Reassignment::Revoked(partitions) => {
                    tracing::info!(?partitions, "partitions revoked");
                    // Their groups may move: missing rows no longer mean clear.
                    self.alerts.unconfirm_all();
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
        let checkpoints = loaded.map_err(|err| {
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
        let read = tokio::task::block_in_place(|| {
            crate::alerts::history::firing_alerts(
                &self.alert_history,
                &self.alerts_topic,
                ALERT_HISTORY_TIMEOUT,
            )
        });
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
        let wall_now = chrono::Utc::now().timestamp_millis();
        let horizon = wall_now.saturating_add(self.max_future_ms);
        for (index, message) in batch.messages().iter().enumerate() {
            let (partition, offset) = (message.partition, message.offset);
            let decoded = match batch.payload(message) {
                None | Some([]) => Err((reasons::EMPTY, "the message has no payload".to_owned())),
                Some(bytes) => OutcomeEventView::from_json_slice(bytes)
                    .map_err(|err| (err.kind().as_str(), err.to_string()))
                    .and_then(|event| reject_future(event, wall_now, horizon)),
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
            for rejected in self.engine.ingest(partition, &events, now)? {
                let queries = rejected.queries.join(", ");
                let (reason, detail) = match rejected.rejection {
                    Rejection::Late => (
                        reasons::LATE,
                        format!(
                            "its window was emitted more than WINDOW_ALLOWED_LATENESS_MS ago in: \
                             {queries}"
                        ),
                    ),
                    Rejection::TooManyGroups => (
                        reasons::TOO_MANY_GROUPS,
                        format!(
                            "its window already holds PROCESSOR_MAX_GROUPS_PER_WINDOW groups in: \
                             {queries}"
                        ),
                    ),
                };
                self.dead_letter(batch, indexes[rejected.index], reason, detail);
            }
        }
        let (lagging, reported) = self.stats.backlog(&self.outcome_topic);
        self.engine.set_lagging(lagging, reported);
        self.engine.set_connected(self.stats.source_connected());
        let closed_windows = self.engine.advance(now, wall_now)?;
        let emitting = !closed_windows.is_empty();
        let mut alerts = Vec::new();
        for closed in closed_windows {
            let query = &closed.query.name;
            let (window, rows) = (closed.result.window, &closed.result.rows);
            let records = window_records(&closed);
            let update = closed.result.update;
            tracing::debug!(query = %query, start = window.start, rows = records.len(), update, watermark = self.engine.watermark(), "window emitted");
            self.metrics.windows.update(query, window, rows);
            if update {
                self.stats.add_window_update(query, records.len() as u64);
            } else {
                self.stats.add_window(query, records.len() as u64);
                // Alerts judge a window once, when it closes: an update holds only the
                // groups that changed, and a window long past is no news to page on.
                let piece = closed.result.partition;
                alerts.extend(self.alerts.observe_window_piece(query, window, rows, piece));
            }
            for record in records {
                self.sends.queue(Outgoing {
                    topic: self.metrics_topic.clone(),
                    key: Some(record.key.clone().into_bytes()),
                    payload: record.value.to_string().into_bytes(),
                    headers: update.then(update_header),
                });
                if let Some(results) = &self.results {
                    let _ = results.send(record);
                }
            }
        }
        for quiet in self.engine.quiet_windows() {
            let records = self
                .alerts
                .observe_quiet(quiet.query, quiet.size, quiet.closed_through);
            alerts.extend(records);
        }
        self.alert_records(alerts);
        self.stats.set_watermark(self.engine.watermark());
        let (panes, groups) = self.engine.open_state();
        self.stats.set_open_state(panes, groups);
        self.stats.set_assigned(self.engine.partition_count());
        self.sends.send(emitting);
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
                Ok(payload) => self.sends.queue(Outgoing {
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
            truncated: None,
        }
        .bounded(self.sends.max_message_bytes());
        self.stats.add_dead_letter(letter.reason);
        tracing::debug!(reason = letter.reason, detail = %letter.detail, partition = letter.partition, offset = letter.offset, "dead-lettered");
        let headers = letter.headers();
        self.sends.queue(Outgoing {
            topic: self.dead_letter_topic.clone(),
            key: letter.key,
            payload: letter.payload,
            headers: Some(headers),
        });
    }

    /// Every commit interval, takes the offsets every emitted window allows (each with its
    /// checkpoint) and commits them asynchronously once every record queued up to then is
    /// acknowledged. Never waits: the loop keeps serving rebalances and shutdown.
    fn commit(&mut self) {
        self.take_commit_results();
        if self.pending_commit.is_none() && self.last_commit_at.elapsed() >= self.commit_interval {
            self.last_commit_at = Instant::now();
            self.pending_commit = self.commit_list().map(|list| PendingCommit {
                list,
                sequence: self.sends.sequence() - 1,
                since: Instant::now(),
            });
        }
        self.report_blocked_commits();
        let ready = self.pending_commit.as_ref().is_some_and(|pending| {
            self.commits.unanswered() == 0 && self.sends.acknowledged_through() >= pending.sequence
        });
        if let Some(pending) = self.pending_commit.take_if(|_| ready) {
            self.commit_async(&pending.list);
        }
    }

    /// The offsets to commit now, each with its checkpoint; `None` when nothing moved.
    fn commit_list(&mut self) -> Option<TopicPartitionList> {
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
        (list.count() > 0).then_some(list)
    }

    fn commit_async(&mut self, list: &TopicPartitionList) {
        tracing::trace!(?list, "committing offsets with their checkpoints");
        if let Err(err) = self.commits.commit(list) {
            self.stats.add_commit(false);
            tracing::warn!(%err, "committing offsets failed; will retry");
        }
    }

    /// Takes in the answers to the commits made so far.
    fn take_commit_results(&mut self) {
        for (result, list) in self.commits.answers() {
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

    /// Turns `/readyz` not ready (and logs once) while commits wait too long, and back.
    fn report_blocked_commits(&mut self) {
        let limit = COMMIT_BLOCKED_AFTER.max(self.commit_interval * 3);
        let unanswered = self.commits.oldest_unanswered().map(|at| at.elapsed());
        let waiting = self.pending_commit.as_ref().map(|p| p.since.elapsed());
        let problem = match (unanswered, waiting) {
            (Some(waited), _) if waited >= limit => Some(format!(
                "an offset commit has been unanswered for {} s: is the group coordinator \
                 reachable?",
                waited.as_secs()
            )),
            (_, Some(waited)) if waited >= limit => Some(format!(
                "commits have waited {} s for records to be acknowledged ({} waiting to be \
                 sent again; see feedback_pipeline_processor_send_failures_total)",
                waited.as_secs(),
                self.sends.waiting_for_retry()
            )),
            _ => None,
        };
        match (&problem, self.commits_blocked) {
            (Some(problem), false) => tracing::warn!(%problem, "commits blocked; not ready"),
            (None, true) => tracing::info!("commits moving again; ready"),
            _ => {}
        }
        self.commits_blocked = problem.is_some();
        self.readiness.set_problem(problem);
    }

    /// On shutdown: waits a bounded time for the sends, commits what they allow and waits a
    /// bounded time for the answer, so a broker outage cannot hold the process.
    async fn finish(&mut self) -> Result<(), ProcessorError> {
        self.readiness.set_problem(Some("stopping".into()));
        self.sends.settle(SHUTDOWN_WAIT).await?;
        self.take_commit_results();
        if !self.sends.is_idle() {
            tracing::warn!(
                "processor stopping with records unacknowledged; offsets stay at the last commit and are read again on restart"
            );
            return Ok(());
        }
        if let Some(list) = self.commit_list() {
            self.commit_async(&list);
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_WAIT;
        while self.commits.unanswered() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.take_commit_results();
        }
        if self.commits.unanswered() == 0 {
            tracing::info!("processor stopping; safe offsets committed");
        } else {
            tracing::warn!("processor stopping; the last commit was not answered in time");
        }
        Ok(())
    }
}

/// Rejects an event dated after `horizon`: it would carry event time (and every window's
/// closing) far ahead of every other producer's events.
fn reject_future(
    event: OutcomeEventView<'_>,
    wall_now: i64,
    horizon: i64,
) -> Result<OutcomeEventView<'_>, (&'static str, String)> {
    let time = event.timestamp.timestamp_millis();
    if time <= horizon {
        return Ok(event);
    }
    let ahead = Duration::from_millis(time.saturating_sub(wall_now).unsigned_abs());
    Err((
        reasons::FUTURE_TIMESTAMP,
        format!(
            "event time {} is {} ahead of the processor's clock, over WINDOW_MAX_FUTURE_MS \
             ({} ms): check the producer's clock",
            crate::window::millis_to_text(time),
            humantime::format_duration(Duration::from_secs(ahead.as_secs())),
            horizon - wall_now
        ),
    ))
}

/// One partition's decoded events of a batch, `(offset, event)`, and each one's index in the
/// batch.
type PartitionEvents<'a> = (Vec<(i64, OutcomeEventView<'a>)>, Vec<usize>);

/// The header that marks a result record as an update of one emitted before under its key.
fn update_header() -> OwnedHeaders {
    OwnedHeaders::new().insert(Header {
        key: "fp.update",
        value: Some("true"),
    })
}
