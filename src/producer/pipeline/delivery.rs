//! [`SinkShared`]: state shared by the caller, the sink thread and librdkafka's delivery
//! callbacks, and [`SinkContext`], the producer context that routes failed deliveries to
//! the spool.

use std::sync::Arc;

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};

use super::counters::PipelineCounters;
use super::replay::{ReplayOutcome, ReplayTracker};
use super::spool::Spool;

/// Delivery opaque of a live (not replayed) message.
pub const LIVE: usize = 0;

/// What the sink's parts share.
#[derive(Debug)]
pub struct SinkShared {
    /// The pipeline's counters.
    pub counters: Arc<PipelineCounters>,
    /// The disk spool, when one could be opened.
    pub spool: Option<Arc<Spool>>,
    /// The replay batch in flight.
    pub replay: ReplayTracker,
}

impl SinkShared {
    /// Puts an encoded event in the spool; counts it as dropped (loudly) if that fails.
    pub fn spool_or_drop(&self, key: &[u8], payload: &[u8]) {
        let result = match &self.spool {
            Some(spool) => spool.append(key, payload).map_err(|err| err.to_string()),
            None => Err("no spool is configured or its directory is unusable".to_owned()),
        };
        match result {
            Ok(()) => self.counters.add_spooled(1),
            Err(reason) => self.drop_event(&reason),
        }
    }

    /// Sets aside an encoded event the broker refused for good (in the spool directory's
    /// `spool.rejected`, with `reason`), or drops it if that is impossible; counts either.
    pub fn reject_or_drop(&self, key: &[u8], payload: &[u8], reason: &str) {
        let Some(spool) = &self.spool else {
            return self.drop_event(reason);
        };
        match spool.reject(key, payload, reason) {
            Ok(()) => {
                self.counters.add_rejected(1);
                tracing::warn!(
                    reason,
                    rejected_total = self.counters.snapshot(0).rejected,
                    "the broker refused an outcome event for good; set aside in spool.rejected"
                );
            }
            Err(err) => self.drop_event(&format!("{reason} (and setting it aside failed: {err})")),
        }
    }

    /// Counts a lost event, logging the first and then every thousandth.
    pub fn drop_event(&self, reason: &str) {
        self.counters.add_dropped(1);
        let dropped = self.counters.snapshot(0).dropped;
        if dropped == 1 || dropped.is_multiple_of(1000) {
            tracing::error!(
                dropped_total = dropped,
                reason,
                "outcome events are being DROPPED"
            );
        }
    }
}

/// Errors a retry can never fix: the event is set aside instead of replayed forever.
pub(super) fn is_permanent(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidRecord
        )
    )
}

/// The producer context: delivery reports drive the counters, the spool and replay.
pub struct SinkContext {
    /// State shared with the sink.
    pub shared: Arc<SinkShared>,
}

impl ClientContext for SinkContext {
    fn error(&self, error: KafkaError, reason: &str) {
        crate::kafka::log_client_error(&error, reason);
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let shared = &self.shared;
        match (result, opaque) {
            (Ok(_), LIVE) => shared.counters.add_published(1),
            (Ok(_), opaque) => shared.replay.report(opaque, ReplayOutcome::Delivered),
            (Err((error, message)), LIVE) => {
                shared.counters.add_failed(1);
                let key = message.key().unwrap_or_default();
                let payload = message.payload().unwrap_or_default();
                if is_permanent(error) {
                    shared.reject_or_drop(key, payload, &error.to_string());
                } else {
                    shared.spool_or_drop(key, payload);
                }
            }
            (Err((error, _)), opaque) => {
                shared.counters.add_failed(1);
                let outcome = if is_permanent(error) {
                    ReplayOutcome::Refused(error.to_string())
                } else {
                    tracing::warn!(%error, "replaying a spooled event failed; will retry");
                    ReplayOutcome::Failed
                };
                shared.replay.report(opaque, outcome);
            }
        }
    }
}
