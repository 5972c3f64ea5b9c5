//! Forwarding a partition's fetch queue into the processor's own queue, shared by the
//! consumer (which forwards on assignment) and the [`super::FetchQueue`] (which owns the
//! queue).

use std::ffi::CString;
use std::ptr::NonNull;

use rdkafka::bindings as rdsys;

/// A librdkafka queue handle. librdkafka's queues are thread-safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueHandle(pub(super) NonNull<rdsys::rd_kafka_queue_t>);

// SAFETY: librdkafka locks its queues internally; the handle is a pointer to one.
unsafe impl Send for QueueHandle {}
// SAFETY: as above.
unsafe impl Sync for QueueHandle {}

/// Forwards the fetch queue of `partition` of `topic` to `queue`. librdkafka keeps an
/// application's forwarding when it starts fetching a partition, but drops it when it stops,
/// so this is done on every assignment, before fetching starts.
///
/// # Safety
/// `rk` must be the live consumer handle `queue` was made on, and `queue` live.
pub(super) unsafe fn forward_partition(
    rk: *mut rdsys::rd_kafka_t,
    queue: QueueHandle,
    topic: &str,
    partition: i32,
) {
    let Ok(topic) = CString::new(topic) else {
        return;
    };
    // SAFETY: `rk` is live; the returned handle is released right after forwarding (the
    // forwarding itself stays until librdkafka stops fetching the partition).
    unsafe {
        let source = rdsys::rd_kafka_queue_get_partition(rk, topic.as_ptr(), partition);
        if source.is_null() {
            tracing::warn!(partition, "no fetch queue for the partition");
            return;
        }
        rdsys::rd_kafka_queue_forward(source, queue.0.as_ptr());
        rdsys::rd_kafka_queue_destroy(source);
    }
}
