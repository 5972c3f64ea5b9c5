//! The sink thread: logs outcomes, hands them to librdkafka, spools what the broker cannot
//! take and replays the spool when the broker is back.

use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rdkafka::ClientConfig;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, PurgeConfig, ThreadedProducer};

use super::delivery::{LIVE, SinkContext, SinkShared, is_permanent};
use super::replay::{self, ReplayOutcome};
use super::spool::{Spool, SpoolBatch, SpoolPosition};
use crate::event::OutcomeEvent;

/// Spool records replayed per batch once the broker answers.
const REPLAY_BATCH: usize = 5_000;
/// How often the idle sink thread looks at the spool.
const TICK: Duration = Duration::from_millis(100);
const MAX_REPLAY_BACKOFF: Duration = Duration::from_secs(10);
/// How long an event waits for room in librdkafka's queue before it is spooled. A full
/// queue during a burst frees up within milliseconds, and waiting paces the burst through
/// the sink's own queue (callers wait there, bounded) instead of sending it to disk. Once a
/// wait runs out (a broker outage), later events are spooled without waiting until a send
/// succeeds again, so flushes behind them are not held up.
const LIBRDKAFKA_QUEUE_FULL_WAIT: Duration = Duration::from_millis(100);
/// Consecutive failed replays after which the producer is replaced by a fresh one. An
/// idempotent producer whose messages timed out bumps its epoch on its own, and some
/// brokers refuse that epoch forever; a new producer session starts clean.
const REBUILD_AFTER_FAILED_REPLAYS: u32 = 4;

/// Where and how to publish.
#[derive(Clone)]
pub struct KafkaSinkOptions {
    /// librdkafka producer properties.
    pub producer_config: ClientConfig,
    /// The outcome topic.
    pub topic: String,
    /// How long librdkafka keeps retrying one message (`message.timeout.ms`).
    pub message_timeout: Duration,
}

/// What a flush or shutdown achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Everything recorded before the call reached the broker (or Kafka is off).
    pub delivered: bool,
    /// Events left in the disk spool for a later replay.
    pub spool_pending: u64,
}

/// A request to the sink thread.
pub enum Command {
    /// Publish (and log) one event.
    Event(Arc<OutcomeEvent>),
    /// Deliver or spool everything queued before this, within the timeout.
    Flush(Duration, SyncSender<FlushOutcome>),
    /// Flush, then stop.
    Shutdown(Duration, SyncSender<FlushOutcome>),
}

/// The sink thread's state.
pub struct SinkWorker {
    commands: Receiver<Command>,
    producer: Option<ThreadedProducer<SinkContext>>,
    producer_config: Option<ClientConfig>,
    topic: String,
    shared: Arc<SinkShared>,
    log_outcomes: bool,
    /// The encoded event being sent.
    payload: Vec<u8>,
    delivery_timeout: Duration,
    next_batch: usize,
    replay_not_before: Instant,
    replay_backoff: Duration,
    probe_next_replay: bool,
    failed_replays: u32,
    /// Spool records (by end position) the broker took after one before them failed: they
    /// stay in the spool until that one goes through, and are not sent again meanwhile.
    delivered_ahead: std::cell::RefCell<std::collections::BTreeSet<SpoolPosition>>,
    /// A wait for room in librdkafka's queue ran out and no send has succeeded since.
    librdkafka_full: bool,
}

impl SinkWorker {
    /// Creates the producer (if Kafka is on) and starts the thread.
    pub fn spawn(
        commands: Receiver<Command>,
        kafka: Option<KafkaSinkOptions>,
        shared: Arc<SinkShared>,
        log_outcomes: bool,
    ) -> Result<JoinHandle<()>, KafkaError> {
        let (producer_config, topic, message_timeout) = match kafka {
            Some(options) => {
                let mut config = options.producer_config;
                config.set(
                    "message.timeout.ms",
                    options.message_timeout.as_millis().to_string(),
                );
                (Some(config), options.topic, options.message_timeout)
            }
            None => (None, String::new(), Duration::ZERO),
        };
        let producer = producer_config
            .as_ref()
            .map(|config| create_producer(config, &shared))
            .transpose()?;
        let worker = SinkWorker {
            commands,
            producer,
            producer_config,
            topic,
            shared,
            log_outcomes,
            payload: Vec::new(),
            delivery_timeout: message_timeout + Duration::from_secs(1),
            next_batch: LIVE + 1,
            replay_not_before: Instant::now(),
            replay_backoff: Duration::ZERO,
            probe_next_replay: false,
            failed_replays: 0,
            delivered_ahead: Default::default(),
            librdkafka_full: false,
        };
        std::thread::Builder::new()
            .name("feedback-sink".into())
            .spawn(move || worker.run())
            .map_err(|err| KafkaError::ClientCreation(format!("starting the sink thread: {err}")))
    }

    fn run(mut self) {
        loop {
            match self.commands.recv_timeout(TICK) {
                Ok(Command::Event(event)) => self.handle(&event),
                Ok(Command::Flush(timeout, reply)) => {
                    self.shared.replay.resume();
                    let _ = reply.send(self.flush(timeout));
                }
                Ok(Command::Shutdown(timeout, reply)) => {
                    self.shared.replay.resume();
                    let _ = reply.send(self.flush(timeout));
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush(Duration::from_secs(1));
                    return;
                }
            }
            if Instant::now() >= self.replay_not_before {
                self.replay_batch(Instant::now() + self.delivery_timeout);
            }
            self.sync_spool(false);
        }
    }

    fn handle(&mut self, event: &OutcomeEvent) {
        if self.log_outcomes {
            tracing::info!(
                target: "feedback_pipeline::outcome",
                event_id = %event.event_id,
                agent_name = %event.agent_name,
                action_type = %event.action_type,
                status = %event.status,
                duration_ms = event.duration_ms,
                "agent outcome"
            );
        }
        let Some(producer) = &self.producer else {
            return;
        };
        // One buffer for every event: librdkafka copies the payload on send.
        self.payload.clear();
        if let Err(err) = serde_json::to_writer(&mut self.payload, event) {
            return self.shared.drop_event(&format!("encoding failed: {err}"));
        }
        let payload = &self.payload;
        let key = event.agent_name.as_bytes();
        // While older events wait in the spool, newer ones queue behind them to keep order.
        if self
            .shared
            .spool
            .as_ref()
            .is_some_and(|spool| spool.has_pending())
        {
            return self.shared.spool_or_drop(key, payload);
        }
        let mut record = BaseRecord::with_opaque_to(&self.topic, LIVE)
            .key(key)
            .payload(payload);
        let wait_until =
            (!self.librdkafka_full).then(|| Instant::now() + LIBRDKAFKA_QUEUE_FULL_WAIT);
        loop {
            match producer.send(record) {
                Ok(()) => {
                    self.librdkafka_full = false;
                    return;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                    if wait_until.is_some_and(|until| Instant::now() < until) =>
                {
                    std::thread::sleep(Duration::from_millis(1));
                    record = returned;
                }
                Err((error, _)) => {
                    if matches!(
                        error,
                        KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
                    ) {
                        self.librdkafka_full = true;
                    }
                    tracing::debug!(%error, "librdkafka refused an event; spooling it");
                    return self.shared.spool_or_drop(key, payload);
                }
            }
        }
    }

    /// Replays one batch from the spool; `true` if it was delivered in full.
    fn replay_batch(&mut self, deadline: Instant) -> bool {
        let id = self.next_batch;
        self.next_batch += 1;
        match self.try_replay(id, deadline) {
            None => false,
            Some(true) => {
                self.probe_next_replay = false;
                self.replay_backoff = Duration::ZERO;
                self.failed_replays = 0;
                true
            }
            Some(false) => {
                self.failed_replays += 1;
                if self.failed_replays >= REBUILD_AFTER_FAILED_REPLAYS {
                    self.failed_replays = 0;
                    self.rebuild_producer();
                }
                self.back_off();
                false
            }
        }
    }

    /// Sends one batch (a single record after a failure, as a probe) and waits for its acks.
    /// `None` when there is nothing to replay.
    /// `None` also when a flush or shutdown is waiting: the batch is left for later, and
    /// nothing counts as a failure.
    fn try_replay(&self, id: usize, deadline: Instant) -> Option<bool> {
        let (Some(producer), Some(spool)) = (&self.producer, &self.shared.spool) else {
            return None;
        };
        if !spool.has_pending() || self.shared.replay.is_interrupted() {
            return None;
        }
        let size = if self.probe_next_replay {
            1
        } else {
            REPLAY_BATCH
        };
        let batch = match spool.read_batch(size) {
            Ok(batch) if !batch.records.is_empty() => batch,
            Ok(_) => return None,
            Err(err) => {
                tracing::error!(%err, "reading the spool failed");
                return Some(false);
            }
        };
        self.shared.replay.begin(id, batch.records.len());
        for (index, (key, payload)) in batch.records.iter().enumerate() {
            let opaque = replay::opaque(id, index);
            if self.delivered_ahead.borrow().contains(&batch.ends[index]) {
                self.shared.replay.report(opaque, ReplayOutcome::Delivered);
                continue;
            }
            match self.send_replayed(producer, opaque, key, payload, deadline) {
                Ok(()) => {}
                Err(error) if is_permanent(&error) => self
                    .shared
                    .replay
                    .report(opaque, ReplayOutcome::Refused(error.to_string())),
                Err(_) => {
                    self.shared.replay.fail(id);
                    break;
                }
            }
        }
        let wait_until = deadline.min(Instant::now() + self.delivery_timeout);
        let outcomes = self.shared.replay.wait(id, wait_until);
        let settled = self.settle(spool, &batch, &outcomes);
        if self.shared.replay.is_interrupted() && settled < batch.records.len() {
            return None;
        }
        Some(settled == batch.records.len())
    }

    /// Sends one replayed record, waiting (until `deadline`) while librdkafka's queue is full.
    fn send_replayed(
        &self,
        producer: &ThreadedProducer<SinkContext>,
        opaque: usize,
        key: &[u8],
        payload: &[u8],
        deadline: Instant,
    ) -> Result<(), KafkaError> {
        loop {
            let record = BaseRecord::with_opaque_to(&self.topic, opaque)
                .key(key)
                .payload(payload);
            match producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if Instant::now() < deadline && !self.shared.replay.is_interrupted() =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// Takes the batch's leading records that are settled out of the spool: delivered ones,
    /// and refused ones, which are set aside. The first record without a verdict, or that
    /// may yet go through, stays with everything after it; those after it that were
    /// delivered are noted and not sent again. Returns how many were taken.
    fn settle(&self, spool: &Spool, batch: &SpoolBatch, outcomes: &[ReplayOutcome]) -> usize {
        let mut delivered = 0;
        let mut settled = 0;
        for (outcome, (key, payload)) in outcomes.iter().zip(&batch.records) {
            match outcome {
                ReplayOutcome::Delivered => delivered += 1,
                ReplayOutcome::Refused(reason) => self.shared.reject_or_drop(key, payload, reason),
                ReplayOutcome::Waiting | ReplayOutcome::Failed => break,
            }
            settled += 1;
        }
        let mut ahead = self.delivered_ahead.borrow_mut();
        for (outcome, end) in outcomes.iter().zip(&batch.ends).skip(settled) {
            if *outcome == ReplayOutcome::Delivered {
                ahead.insert(*end);
            }
        }
        if settled == 0 {
            return 0;
        }
        let committed = batch.ends[settled - 1];
        ahead.retain(|end| *end > committed);
        if let Err(err) = spool.commit(committed, settled as u64) {
            tracing::error!(%err, "recording replay progress failed; events may be sent twice");
        }
        self.shared.counters.add_replayed(delivered);
        self.shared.counters.add_published(delivered);
        settled
    }

    /// Replaces the producer with a new session; what the old one still holds is purged
    /// into the spool. Keeps the old producer if a new one cannot be created.
    fn rebuild_producer(&mut self) {
        let Some(config) = &self.producer_config else {
            return;
        };
        let fresh = match create_producer(config, &self.shared) {
            Ok(fresh) => fresh,
            Err(err) => {
                tracing::error!(%err, "cannot create a fresh Kafka producer");
                return;
            }
        };
        tracing::warn!("replays keep failing; starting a fresh Kafka producer session");
        if let Some(old) = self.producer.replace(fresh) {
            purge_into_spool(&old);
        }
    }

    /// Makes spooled events durable: at once (`now`, at a flush or shutdown), or once the
    /// last sync is [`super::spool::SYNC_INTERVAL`] old.
    fn sync_spool(&self, now: bool) {
        let Some(spool) = &self.shared.spool else {
            return;
        };
        let synced = if now {
            spool.sync()
        } else {
            spool.sync_if_due()
        };
        if let Err(err) = synced {
            tracing::error!(%err, "syncing the spool failed; a host crash may lose spooled events");
        }
    }

    fn back_off(&mut self) {
        self.probe_next_replay = true;
        self.replay_backoff =
            (self.replay_backoff * 2).clamp(Duration::from_millis(250), MAX_REPLAY_BACKOFF);
        self.replay_not_before = Instant::now() + self.replay_backoff;
    }

    /// Delivers what librdkafka holds and replays the spool, within `timeout`; whatever is
    /// still in memory at the deadline is purged into the spool.
    fn flush(&mut self, timeout: Duration) -> FlushOutcome {
        let deadline = Instant::now() + timeout;
        let spool = self.shared.spool.clone();
        let spool_pending = move || spool.as_ref().map_or(0, |s| s.pending_records());
        let Some(producer) = &self.producer else {
            return FlushOutcome {
                delivered: true,
                spool_pending: spool_pending(),
            };
        };
        let mut delivered = producer
            .flush(deadline.saturating_duration_since(Instant::now()))
            .is_ok();
        if delivered {
            self.replay_not_before = Instant::now();
            while spool_pending() > 0 && Instant::now() < deadline {
                if !self.replay_batch(deadline) {
                    break;
                }
            }
        }
        let producer = self.producer.as_ref().expect("checked above");
        if !delivered || producer.in_flight_count() > 0 {
            purge_into_spool(producer);
            delivered = false;
        }
        self.sync_spool(true);
        let pending = spool_pending();
        FlushOutcome {
            delivered: delivered && pending == 0,
            spool_pending: pending,
        }
    }
}

fn create_producer(
    config: &ClientConfig,
    shared: &Arc<SinkShared>,
) -> Result<ThreadedProducer<SinkContext>, KafkaError> {
    let context = SinkContext {
        shared: Arc::clone(shared),
    };
    ThreadedProducer::from_config_and_context(config, context)
}

/// Drops what librdkafka still holds; the delivery callback spools each purged message.
fn purge_into_spool(producer: &ThreadedProducer<SinkContext>) {
    producer.purge(PurgeConfig::default().queue().inflight());
    let deadline = Instant::now() + Duration::from_secs(2);
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        producer.poll(Duration::from_millis(10));
    }
}
