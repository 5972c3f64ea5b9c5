//! The disk spool's failure modes: full, corrupted, unwritable. Clear errors, counted drops,
//! no panic; and replay order survives a restart.

mod common;

use std::fs;
use std::time::Duration;

use feedback_pipeline::event::OutcomeEvent;
use feedback_pipeline::producer::FeedbackPipeline;
use feedback_pipeline::producer::PipelineOptions;
use feedback_pipeline::producer::pipeline::{FlushOutcome, Spool, SpoolError};

/// Options of a pipeline publishing to a port where no broker listens, with `vars` set.
fn unreachable_broker_options(vars: &[(&str, &str)]) -> PipelineOptions {
    let config = common::config("127.0.0.1:9", vars);
    PipelineOptions::from_config(&config, None)
}

/// A pipeline publishing to a port where no broker listens.
fn unreachable_broker_pipeline(spool_dir: &str, spool_max_bytes: &str) -> FeedbackPipeline {
    FeedbackPipeline::new(unreachable_broker_options(&[
        ("KAFKA_MESSAGE_TIMEOUT_MS", "200"),
        ("SPOOL_DIR", spool_dir),
        ("SPOOL_MAX_BYTES", spool_max_bytes),
    ]))
    .unwrap()
}

fn event(n: usize) -> OutcomeEvent {
    OutcomeEvent::builder(format!("agent_{}", n % 3), "act")
        .metadata("n", n)
        .build()
        .unwrap()
}

#[test]
fn a_full_spool_drops_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = unreachable_broker_pipeline(dir.path().to_str().unwrap(), "8192");
    for n in 0..100 {
        pipeline.record_outcome(event(n)).unwrap();
    }
    let outcome = pipeline.flush(Duration::from_secs(3));
    assert!(!outcome.delivered);
    let counters = pipeline.counters();
    assert_eq!(counters.recorded, 100);
    assert!(counters.spooled > 0 && counters.dropped > 0, "{counters:?}");
    assert_eq!(counters.spooled + counters.dropped, 100, "{counters:?}");
    assert_eq!(counters.spool_pending, counters.spooled);
    let on_disk: u64 = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk <= 8192 + 64, "spool holds {on_disk} bytes");
}

#[test]
fn an_unwritable_spool_directory_is_reported_and_drops_are_counted() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let impossible = file.path().join("spool");
    let pipeline = unreachable_broker_pipeline(impossible.to_str().unwrap(), "1048576");
    let error = pipeline
        .spool_error()
        .expect("the spool cannot be opened")
        .to_owned();
    assert!(error.contains(impossible.to_str().unwrap()), "{error}");
    for n in 0..10 {
        pipeline.record_outcome(event(n)).unwrap();
    }
    pipeline.flush(Duration::from_secs(3));
    let counters = pipeline.counters();
    assert_eq!(
        (counters.recorded, counters.dropped, counters.spooled),
        (10, 10, 0),
        "{counters:?}"
    );
}

#[test]
fn a_corrupted_spool_loses_only_the_damaged_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for n in 0..10u32 {
            spool
                .append(b"key", format!("payload-{n}").as_bytes())
                .unwrap();
        }
    }
    let segment = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "spool"))
        .unwrap();
    let mut bytes = fs::read(&segment).unwrap();
    let record = bytes.len() / 10;
    bytes[record * 6 + 12] ^= 0xFF; // flip a payload byte of the 7th record
    let intact_len = bytes.len();
    bytes.extend_from_within(..7); // and a torn record at the end
    fs::write(&segment, &bytes).unwrap();
    // A rewrite a crash interrupted is discarded.
    fs::write(segment.with_extension("clean"), b"stale").unwrap();

    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(spool.corrupt_records(), 2, "two damaged spans");
    assert_eq!(spool.pending_records(), 9);
    assert!(!segment.with_extension("clean").exists());
    let batch = spool.read_batch(100).unwrap();
    let payloads: Vec<String> = batch
        .records
        .iter()
        .map(|(_, p)| String::from_utf8(p.clone()).unwrap())
        .collect();
    assert_eq!(
        payloads,
        (0..10)
            .filter(|&n| n != 6)
            .map(|n| format!("payload-{n}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        fs::read(segment.with_extension("corrupt")).unwrap(),
        [&bytes[record * 6..record * 7], &bytes[intact_len..]].concat(),
        "the damaged bytes are kept for inspection"
    );

    // The pipeline reports the loss in its counters.
    drop(spool);
    let pipeline = unreachable_broker_pipeline(dir.path().to_str().unwrap(), "1048576");
    assert_eq!(
        pipeline.counters().spool_corrupt,
        0,
        "already set aside by the first open"
    );
    assert_eq!(pipeline.counters().spool_pending, 9);

    let damaged = tempfile::tempdir().unwrap();
    fs::write(
        damaged.path().join("00000000000000000001.spool"),
        b"\x05\x00\x00\x00garbage-garbage",
    )
    .unwrap();
    // Garbage whose every offset claims a plausible 1 MiB record: looking for the next intact
    // record is bounded, then the rest is set aside (unbounded, this open would not return).
    fs::write(
        damaged.path().join("00000000000000000002.spool"),
        [0u8, 0, 0x10, 0].repeat(1 << 20),
    )
    .unwrap();
    let pipeline = unreachable_broker_pipeline(damaged.path().to_str().unwrap(), "1048576");
    let counters = pipeline.counters();
    assert_eq!(
        (
            counters.spool_corrupt,
            counters.dropped,
            counters.spool_pending
        ),
        (2, 2, 0)
    );
}

#[test]
fn replay_position_survives_a_restart_and_order_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for n in 0..100u32 {
            spool.append(b"k", &n.to_le_bytes()).unwrap();
        }
        let first = spool.read_batch(40).unwrap();
        assert_eq!(first.records.len(), 40);
        spool.commit(first.end, 40).unwrap();
        assert_eq!(spool.pending_records(), 60);
    }
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(spool.pending_records(), 60);
    let rest = spool.read_batch(1000).unwrap();
    let numbers: Vec<u32> = rest
        .records
        .iter()
        .map(|(_, p)| u32::from_le_bytes(p[..4].try_into().unwrap()))
        .collect();
    assert_eq!(numbers, (40..100).collect::<Vec<_>>());
    spool.commit(rest.end, 60).unwrap();
    assert!(!spool.has_pending());
    spool.append(b"k", b"after").unwrap();
    assert_eq!(
        spool.read_batch(10).unwrap().records,
        vec![(b"k".to_vec(), b"after".to_vec())]
    );
}

#[test]
fn the_spool_refuses_past_its_bound_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 100).unwrap();
    spool.append(b"k", &[0; 50]).unwrap();
    let err = spool.append(b"k", &[0; 50]).unwrap_err();
    assert!(matches!(err, SpoolError::Full { limit: 100, .. }));
    assert!(err.to_string().contains("SPOOL_MAX_BYTES"), "{err}");
}

/// A pipeline to an unreachable broker whose librdkafka queue holds only 10 messages and whose
/// own queue holds 8, so a few hundred events overflow both.
fn tiny_queues_pipeline(spool_dir: &str, message_timeout_ms: &str) -> FeedbackPipeline {
    let mut options = unreachable_broker_options(&[
        ("KAFKA_MESSAGE_TIMEOUT_MS", message_timeout_ms),
        ("PIPELINE_QUEUE_CAPACITY", "8"),
        ("PIPELINE_ENQUEUE_TIMEOUT_MS", "20"),
        ("SPOOL_DIR", spool_dir),
    ]);
    options
        .kafka
        .as_mut()
        .unwrap()
        .producer_config
        .set("queue.buffering.max.messages", "10");
    FeedbackPipeline::new(options).unwrap()
}

/// Records `n` events; returns the longest single call.
fn record_timed(pipeline: &FeedbackPipeline, n: usize) -> Duration {
    (0..n)
        .map(|i| {
            let started = std::time::Instant::now();
            pipeline.record_outcome(event(i)).unwrap();
            started.elapsed()
        })
        .max()
        .unwrap()
}

/// Flushes with a 1 s timeout; returns the outcome and how long the call took.
fn flush_timed(pipeline: &FeedbackPipeline) -> (FlushOutcome, Duration) {
    let started = std::time::Instant::now();
    let outcome = pipeline.flush(Duration::from_secs(1));
    (outcome, started.elapsed())
}

#[test]
fn overflowing_queues_spool_without_holding_callers() {
    let dir = tempfile::tempdir().unwrap();
    // Long enough for librdkafka's 10-message queue to fill and refuse the rest.
    let pipeline = tiny_queues_pipeline(dir.path().to_str().unwrap(), "2000");
    let slowest = record_timed(&pipeline, 300);
    // A call waits at most the enqueue timeout (20 ms); the bound is generous for a loaded
    // machine, and far below the broker's message timeout.
    assert!(
        slowest < Duration::from_millis(500),
        "a call blocked {slowest:?}"
    );
    let outcome = pipeline.flush(Duration::from_secs(1));
    let counters = pipeline.counters();
    assert!(!outcome.delivered);
    assert_eq!(
        (counters.recorded, counters.dropped, counters.spool_pending),
        (300, 0, 300),
        "every event ends in the spool: {counters:?}"
    );
}

/// With no spool, refused events are dropped and counted, and the sink does not wait on
/// librdkafka's full queue for each of them (that held a flush for minutes).
#[test]
fn without_a_spool_a_full_librdkafka_queue_drops_fast_and_flush_returns() {
    let pipeline = tiny_queues_pipeline("off", "2000");
    let slowest = record_timed(&pipeline, 300);
    let (outcome, flush_took) = flush_timed(&pipeline);
    let counters = pipeline.counters();
    assert!(!outcome.delivered);
    assert_eq!(counters.recorded, 300);
    assert_eq!(
        counters.dropped, 300,
        "nothing is left anywhere: {counters:?}"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "a call blocked {slowest:?}"
    );
    assert!(
        flush_took < Duration::from_secs(10),
        "the flush took {flush_took:?}"
    );
}

/// Two writers on one spool would append to the same segments and delete each other's
/// records: the second is refused with the fix, and its pipeline says so.
#[test]
fn a_spool_directory_has_one_writer_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = Spool::open(dir.path(), 1 << 20).unwrap();
    let refused = Spool::open(dir.path(), 1 << 20).unwrap_err();
    assert!(matches!(refused, SpoolError::InUse { .. }), "{refused:?}");
    let message = refused.to_string();
    assert!(
        message.contains(dir.path().to_str().unwrap()) && message.contains("SPOOL_DIR"),
        "{message}"
    );
    let second_pipeline = unreachable_broker_pipeline(dir.path().to_str().unwrap(), "1048576");
    assert!(
        second_pipeline
            .spool_error()
            .is_some_and(|e| e.contains("in use")),
        "{:?}",
        second_pipeline.spool_error()
    );
    drop(first);
    Spool::open(dir.path(), 1 << 20).expect("free again once the first is dropped");
}

/// In an outage the sink replays the spool and waits for the broker's verdict for up to the
/// message timeout (20 s here). A flush interrupts that wait: the batch stays in the spool.
#[test]
fn a_flush_does_not_wait_for_a_replay_against_a_dead_broker() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = tiny_queues_pipeline(dir.path().to_str().unwrap(), "20000");
    record_timed(&pipeline, 300);
    let (outcome, flush_took) = flush_timed(&pipeline);
    let counters = pipeline.counters();
    assert!(!outcome.delivered);
    assert_eq!(
        (counters.recorded, counters.dropped, counters.spool_pending),
        (300, 0, 300),
        "every event ends in the spool, once: {counters:?}"
    );
    // Well under the 20 s a replay may wait, generous for a loaded machine.
    assert!(
        flush_took < Duration::from_secs(10),
        "the flush took {flush_took:?}"
    );
}

#[test]
fn dropping_the_pipeline_without_shutdown_spools_everything_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let recorded: Vec<String> = {
        // A long message timeout: at the drop, the events still sit in librdkafka's queue.
        let pipeline = FeedbackPipeline::new(unreachable_broker_options(&[
            ("KAFKA_MESSAGE_TIMEOUT_MS", "60000"),
            ("SPOOL_DIR", dir.path().to_str().unwrap()),
        ]))
        .unwrap();
        (0..500)
            .map(|n| pipeline.record_outcome(event(n)).unwrap().event_id.clone())
            .collect()
    };

    let spool = Spool::open(dir.path(), 1 << 30).unwrap();
    let batch = spool.read_batch(1_000).unwrap();
    let mut spooled: Vec<String> = batch
        .records
        .iter()
        .map(|(_, payload)| OutcomeEvent::from_json_slice(payload).unwrap().event_id)
        .collect();
    spooled.sort();
    let mut expected = recorded;
    expected.sort();
    assert_eq!(spooled, expected);
}

#[test]
fn a_record_over_the_read_limit_is_refused_and_the_segment_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 64 << 20).unwrap();
    spool.append(b"a", b"before").unwrap();
    let err = spool.append(b"a", &vec![b'x'; 3 << 20]).unwrap_err();
    assert!(matches!(err, SpoolError::RecordTooLarge { .. }), "{err}");
    spool.append(b"a", b"after").unwrap();
    let batch = spool.read_batch(10).unwrap();
    let payloads: Vec<&[u8]> = batch.records.iter().map(|(_, p)| p.as_slice()).collect();
    assert_eq!(payloads, [b"before".as_slice(), b"after".as_slice()]);
    assert_eq!(spool.corrupt_records(), 0);
}
