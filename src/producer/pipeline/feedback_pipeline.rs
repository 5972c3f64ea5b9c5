//! [`FeedbackPipeline`]: collects outcome events without ever waiting on the network.
//!
//! `record_outcome` puts the event in a ring buffer of recent events and hands it to the sink
//! thread through a bounded queue. The sink thread logs it and gives it to librdkafka; what the
//! broker cannot take goes to the disk [`Spool`] and is replayed in order once it answers.
//!
//! A full queue means callers record faster than the broker takes events. A caller then waits
//! a few milliseconds for room (`enqueue_timeout`, like Kafka's `max.block.ms`), so a burst is
//! paced to the broker instead of going through the disk. Each call waits at most
//! `enqueue_timeout`; after one such wait runs out, the caller spools the event itself and
//! callers stop waiting until the queue has drained to half.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{SendTimeoutError, Sender};
use rdkafka::error::KafkaError;

use super::counters::{CounterSnapshot, PipelineCounters};
use super::delivery::SinkShared;
use super::options::PipelineOptions;
use super::recent::RecentEvents;
use super::sink::{Command, FlushOutcome, SinkWorker};
use super::spool::Spool;
use crate::config::Config;
use crate::event::{EventError, OutcomeEvent, OutcomeStatus};

/// The outcome pipeline. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct FeedbackPipeline {
    recent: RecentEvents,
    shared: Arc<SinkShared>,
    commands: Option<Sender<Command>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    kafka_enabled: bool,
    enqueue_timeout: Duration,
    /// Set when a caller found the queue full for `enqueue_timeout`; until the queue drains to
    /// half, callers spool at once instead of each waiting.
    overflowing: AtomicBool,
    drop_flush_timeout: Duration,
    spool_error: Option<String>,
    /// Most bytes of JSON an event may take: what the broker takes, less the record's key
    /// and framing (see [`event_budget`]).
    max_event_bytes: usize,
}

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;
/// Room kept under `message.max.bytes` for the key (an agent name of up to 1 KiB encoded) and
/// the record's framing and headers.
const RECORD_OVERHEAD_BYTES: usize = 2048;

/// Most bytes an event's JSON may take under `options`: the producer's `message.max.bytes`
/// less the record overhead, and never over what a consumer of the contract accepts.
fn event_budget(options: &PipelineOptions) -> usize {
    let message_max = options
        .kafka
        .as_ref()
        .and_then(|kafka| kafka.producer_config.get("message.max.bytes"))
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES);
    message_max
        .saturating_sub(RECORD_OVERHEAD_BYTES)
        .min(crate::event::limits::MAX_EVENT_BYTES)
}

impl FeedbackPipeline {
    /// Starts a pipeline. Fails only if librdkafka rejects the producer configuration; an
    /// unusable spool directory is logged, reported by [`Self::spool_error`], and the events
    /// that would need it are dropped and counted.
    pub fn new(options: PipelineOptions) -> Result<Self, KafkaError> {
        let (spool, spool_error) = match (&options.kafka, &options.spool_dir) {
            (Some(_), Some(dir)) => match Spool::open(dir, options.spool_max_bytes) {
                Ok(spool) => (Some(Arc::new(spool)), None),
                Err(err) => {
                    tracing::error!(%err, "the disk spool is unusable: events the broker cannot take will be dropped");
                    (None, Some(err.to_string()))
                }
            },
            _ => (None, None),
        };
        let counters = Arc::new(PipelineCounters::default());
        if let Some(spool) = &spool {
            counters.add_spool_corrupt(spool.corrupt_records());
            counters.add_dropped(spool.corrupt_records());
        }
        let shared = Arc::new(SinkShared {
            counters,
            spool,
            replay: Default::default(),
        });
        let kafka_enabled = options.kafka.is_some();
        let max_event_bytes = event_budget(&options);
        let (commands, worker) = if kafka_enabled || options.log_outcomes {
            let (sender, receiver) = crossbeam_channel::bounded(options.queue_capacity.max(1));
            let handle = SinkWorker::spawn(
                receiver,
                options.kafka,
                Arc::clone(&shared),
                options.log_outcomes,
            )?;
            (Some(sender), Some(handle))
        } else {
            (None, None)
        };
        Ok(Self {
            recent: RecentEvents::new(options.recent_capacity),
            shared,
            commands,
            worker: Mutex::new(worker),
            kafka_enabled,
            enqueue_timeout: options.enqueue_timeout,
            overflowing: AtomicBool::new(false),
            drop_flush_timeout: options.drop_flush_timeout,
            spool_error,
            max_event_bytes,
        })
    }

    /// A pipeline configured from the environment (see [`PipelineOptions::from_config`]).
    pub fn from_config(config: &Config) -> Result<Self, KafkaError> {
        Self::new(PipelineOptions::from_config(config, None))
    }

    /// Records one outcome. Never waits on the network: the event is fitted to what the
    /// broker takes ([`OutcomeEvent::fit`]: long texts cut with a marker, a large output
    /// replaced by a preview), validated, kept in the recent-events buffer and queued for the
    /// sink. A full queue is waited on for at most `enqueue_timeout`; then the event is
    /// spooled on the caller's thread (a local file append).
    pub fn record_outcome(&self, mut event: OutcomeEvent) -> Result<Arc<OutcomeEvent>, EventError> {
        event.fit(self.max_event_bytes)?;
        event.validate()?;
        Ok(self.record_fitted(event))
    }

    /// [`Self::record_outcome`] for an event the caller has just validated (fitting it
    /// cannot make it invalid). One that cannot be fitted is kept in the recent buffer but
    /// not published, and counted as dropped.
    pub(crate) fn record_valid(&self, mut event: OutcomeEvent) -> Arc<OutcomeEvent> {
        if let Err(err) = event.fit(self.max_event_bytes) {
            let event = Arc::new(event);
            self.shared.counters.add_recorded(1);
            self.recent.push(Arc::clone(&event));
            self.shared.drop_event(&err.to_string());
            return event;
        }
        self.record_fitted(event)
    }

    fn record_fitted(&self, event: OutcomeEvent) -> Arc<OutcomeEvent> {
        let event = Arc::new(event);
        self.shared.counters.add_recorded(1);
        self.recent.push(Arc::clone(&event));
        if let Some(commands) = &self.commands {
            match self.enqueue(commands, Command::Event(Arc::clone(&event))) {
                Ok(()) => {}
                Err(()) if self.kafka_enabled => match serde_json::to_vec(&*event) {
                    Ok(payload) => self
                        .shared
                        .spool_or_drop(event.agent_name.as_bytes(), &payload),
                    Err(err) => self.shared.drop_event(&format!("encoding failed: {err}")),
                },
                // Only the log line is skipped; the event is in the recent buffer.
                Err(_) => {}
            }
        }
        event
    }

    /// Queues a command, waiting up to `enqueue_timeout` for room unless the queue is known to
    /// be overflowing. `Err` when it was not queued.
    fn enqueue(&self, commands: &Sender<Command>, command: Command) -> Result<(), ()> {
        // With Kafka off the queue only feeds the log: never wait for a log line.
        if self.enqueue_timeout.is_zero()
            || !self.kafka_enabled
            || self.overflowing.load(Ordering::Relaxed)
        {
            commands.try_send(command).map_err(|_| ())?;
            // The queue's length is read only while overflowing, not on every event.
            if self.overflowing.load(Ordering::Relaxed)
                && commands.len() <= commands.capacity().unwrap_or(0) / 2
            {
                self.overflowing.store(false, Ordering::Relaxed);
            }
            return Ok(());
        }
        match commands.send_timeout(command, self.enqueue_timeout) {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Timeout(_)) => {
                if !self.overflowing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        timeout = ?self.enqueue_timeout,
                        "the outcome queue stayed full: spooling on the callers' threads until it drains"
                    );
                }
                Err(())
            }
            Err(SendTimeoutError::Disconnected(_)) => Err(()),
        }
    }

    /// The latest `count` events, oldest first, optionally only of one status or agent.
    pub fn get_recent_events(
        &self,
        count: usize,
        status: Option<OutcomeStatus>,
        agent_name: Option<&str>,
    ) -> Vec<Arc<OutcomeEvent>> {
        self.recent.query(count, status, agent_name)
    }

    /// The counters now.
    pub fn counters(&self) -> CounterSnapshot {
        let pending = self
            .shared
            .spool
            .as_ref()
            .map_or(0, |spool| spool.pending_records());
        self.shared.counters.snapshot(pending)
    }

    /// Why the spool is unusable, if it is.
    pub fn spool_error(&self) -> Option<&str> {
        self.spool_error.as_deref()
    }

    /// Delivers everything recorded so far, or spools what cannot be delivered within
    /// `timeout`. Returns shortly after the timeout: a replay of the spool in progress is
    /// interrupted, and the sink first works through the queue (spooling, in an outage).
    pub fn flush(&self, timeout: Duration) -> FlushOutcome {
        self.request(timeout, Command::Flush)
    }

    /// Flushes like [`Self::flush`], then stops the sink thread. Later events are spooled
    /// directly (Kafka on) or only kept in memory.
    pub fn shutdown(&self, timeout: Duration) -> FlushOutcome {
        let outcome = self.request(timeout, Command::Shutdown);
        if let Some(handle) = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = handle.join();
        }
        outcome
    }

    fn request(
        &self,
        timeout: Duration,
        command: fn(Duration, SyncSender<FlushOutcome>) -> Command,
    ) -> FlushOutcome {
        let finished = || FlushOutcome {
            delivered: self.counters().spool_pending == 0,
            spool_pending: self.counters().spool_pending,
        };
        let Some(commands) = &self.commands else {
            return finished();
        };
        let (reply, outcome) = mpsc::sync_channel(1);
        // A replay against a dead broker would keep the sink from the queue for up to the
        // message timeout; it steps aside (its batch stays in the spool) until this is handled.
        self.shared.replay.interrupt();
        // A blocking send: the queue may be full, and a flush must come after what it holds.
        if commands.send(command(timeout, reply)).is_err() {
            return finished();
        }
        outcome.recv().unwrap_or_else(|_| finished())
    }
}

impl Drop for FeedbackPipeline {
    fn drop(&mut self) {
        let running = self
            .worker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if running {
            self.shutdown(self.drop_flush_timeout);
        }
    }
}

static DEFAULT_PIPELINE: OnceLock<Arc<FeedbackPipeline>> = OnceLock::new();

/// The process-wide pipeline, configured from the environment on first use.
///
/// A configuration error is logged with the variable to fix, and the pipeline then runs with
/// Kafka off rather than take the agents down. Call `shutdown` on it before the process exits:
/// statics are never dropped.
pub fn get_feedback_pipeline() -> Arc<FeedbackPipeline> {
    Arc::clone(DEFAULT_PIPELINE.get_or_init(|| {
        let options = match Config::from_env() {
            Ok(config) => PipelineOptions::from_config(&config, None),
            Err(err) => {
                tracing::error!(%err, "invalid configuration: outcomes stay in memory until it is fixed");
                PipelineOptions::default()
            }
        };
        let pipeline = FeedbackPipeline::new(options.clone()).unwrap_or_else(|err| {
            tracing::error!(%err, "cannot create the Kafka producer: outcomes stay in memory");
            FeedbackPipeline::new(PipelineOptions {
                kafka: None,
                ..options
            })
            .expect("a pipeline without Kafka always starts")
        });
        Arc::new(pipeline)
    }))
}
