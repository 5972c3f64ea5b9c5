//! [`FetchQueue`]: the assigned partitions' fetched messages, forwarded by librdkafka into one
//! queue that the loop drains in batches.
//!
//! rust-rdkafka hands out one message per poll, and each poll wraps the message in an event,
//! allocates, and reads the clock several times: at the processor's rates that was about a
//! sixth of its loop. `rd_kafka_consume_batch_queue` takes up to a batch under one call. It
//! is only safe on a queue that holds nothing but messages, so each assigned partition's
//! fetch queue is forwarded here (see [`super::forwarding`]) while rebalances, statistics and
//! errors stay on the consumer's own queue, served by its `recv`.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Arc;

use rdkafka::bindings as rdsys;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::Notify;

use super::batch::ConsumedBatch;
use super::consumer::OutcomeConsumer;
use super::forwarding::QueueHandle;

/// Messages taken from librdkafka per call.
const CHUNK: usize = 1024;

/// The processor's message queue, made on (and keeping alive) its consumer.
pub struct FetchQueue {
    queue: QueueHandle,
    /// Woken by librdkafka when the queue turns non-empty. Boxed in an `Arc` whose address
    /// librdkafka holds until the callback is switched off in `drop`.
    readable: Arc<Notify>,
    messages: Vec<*mut rdsys::rd_kafka_message_t>,
    /// Dropped after the queue (fields drop after `drop`): librdkafka's handle must outlive it.
    consumer: Arc<OutcomeConsumer>,
}

// SAFETY: the message pointers are only held within `read_into` (which takes `&mut self`);
// the queue is thread-safe.
unsafe impl Send for FetchQueue {}
// SAFETY: as above; through `&self` only the `Notify` is reachable.
unsafe impl Sync for FetchQueue {}

/// Called by a librdkafka thread when the queue goes from empty to non-empty.
unsafe extern "C" fn wake(_: *mut rdsys::rd_kafka_t, opaque: *mut c_void) {
    // SAFETY: `opaque` is the `Notify` of a live `FetchQueue`: the callback is switched off
    // before that `Notify` can be freed.
    let readable = unsafe { &*(opaque as *const Notify) };
    readable.notify_one();
}

impl FetchQueue {
    /// A new, empty queue on `consumer`, which forwards the partitions it is assigned from
    /// now on to it.
    ///
    /// # Panics
    /// If `consumer` already feeds a fetch queue.
    pub fn new(consumer: Arc<OutcomeConsumer>) -> Self {
        // SAFETY: the consumer's handle is live, and kept so by `self.consumer`.
        let raw = unsafe { rdsys::rd_kafka_queue_new(consumer.client().native_ptr()) };
        let queue = QueueHandle(NonNull::new(raw).expect("rd_kafka_queue_new never fails"));
        let readable = Arc::new(Notify::new());
        // SAFETY: the queue is live and the `Notify` outlives the callback (see `drop`).
        unsafe {
            rdsys::rd_kafka_queue_cb_event_enable(
                queue.0.as_ptr(),
                Some(wake),
                Arc::as_ptr(&readable) as *mut c_void,
            );
        }
        consumer.context().attach(queue);
        Self {
            queue,
            readable,
            messages: Vec::with_capacity(CHUNK),
            consumer,
        }
    }

    /// Waits until the queue may hold messages (it may be empty again by then).
    pub async fn readable(&self) {
        self.readable.notified().await;
    }

    /// Moves what the queue holds now into `batch`, without waiting, until the batch has
    /// `max` messages. A message carrying a fetch error is not added; the first such error
    /// is returned after the messages before it.
    pub fn read_into(&mut self, batch: &mut ConsumedBatch, max: usize) -> Result<(), KafkaError> {
        let mut first_error = None;
        while batch.len() < max {
            let wanted = (max - batch.len()).min(CHUNK);
            // SAFETY: the array has room for `wanted` pointers; the queue is live.
            let taken = unsafe {
                rdsys::rd_kafka_consume_batch_queue(
                    self.queue.0.as_ptr(),
                    0,
                    self.messages.as_mut_ptr(),
                    wanted,
                )
            };
            let Ok(taken) = usize::try_from(taken) else {
                break;
            };
            // SAFETY: librdkafka wrote `taken` (≤ capacity) message pointers.
            unsafe { self.messages.set_len(taken) };
            for &message in &self.messages {
                // SAFETY: a message from the queue, valid until destroyed just below.
                let parts = unsafe { &*message };
                if parts.err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    // SAFETY: librdkafka's key and payload pointers are valid for their
                    // lengths while the message lives.
                    let (key, payload) = unsafe {
                        (
                            bytes(parts.key, parts.key_len),
                            bytes(parts.payload, parts.len),
                        )
                    };
                    batch.push_parts(parts.partition, parts.offset, key, payload);
                } else if first_error.is_none() {
                    first_error = Some(KafkaError::MessageConsumption(RDKafkaErrorCode::from(
                        parts.err,
                    )));
                }
                // SAFETY: each message is destroyed once, after its last use.
                unsafe { rdsys::rd_kafka_message_destroy(message) };
            }
            self.messages.clear();
            if taken < wanted {
                break;
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for FetchQueue {
    fn drop(&mut self) {
        self.consumer.context().detach(self.queue);
        // SAFETY: the queue is live; switching the callback off (under the queue's lock)
        // guarantees `wake` no longer sees our `Notify`.
        unsafe {
            rdsys::rd_kafka_queue_cb_event_enable(
                self.queue.0.as_ptr(),
                None,
                std::ptr::null_mut(),
            );
            rdsys::rd_kafka_queue_destroy(self.queue.0.as_ptr());
        }
    }
}

/// A key or payload as a slice; `None` for a null pointer.
///
/// # Safety
/// `ptr` must be null or valid for `len` bytes for the returned lifetime.
unsafe fn bytes<'a>(ptr: *mut c_void, len: usize) -> Option<&'a [u8]> {
    // SAFETY: caller's contract.
    (!ptr.is_null()).then(|| unsafe { std::slice::from_raw_parts(ptr as *const u8, len) })
}
