//! The log sink (`ENABLE_OUTCOME_LOGGING`) with Kafka switched off (`ENABLE_KAFKA=false`):
//! every outcome becomes one log line and nothing tries to reach a broker.
//!
//! Its own test binary: it installs the process-wide tracing subscriber, which the sink
//! thread logs through.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use feedback_pipeline::event::{OutcomeEvent, OutcomeStatus};
use feedback_pipeline::producer::{FeedbackPipeline, PipelineOptions};
use tracing_subscriber::fmt::MakeWriter;

/// Log output kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[test]
fn outcomes_are_logged_and_kafka_stays_off() {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_env_filter("feedback_pipeline::outcome=info")
        .init();

    // A broker address is configured, but ENABLE_KAFKA=false wins: nothing may try it.
    let vars = [
        ("ENABLE_KAFKA", "false"),
        ("ENABLE_OUTCOME_LOGGING", "true"),
    ];
    let config = common::config("127.0.0.1:9", &vars);
    let pipeline = FeedbackPipeline::new(PipelineOptions::from_config(&config, None)).unwrap();
    let events: Vec<_> = ["planner", "coder"]
        .into_iter()
        .map(|agent| {
            let event = OutcomeEvent::builder(agent, "act")
                .status(OutcomeStatus::Timeout)
                .build()
                .unwrap();
            pipeline.record_outcome(event).unwrap()
        })
        .collect();
    let outcome = pipeline.flush(Duration::from_secs(5));

    assert!(outcome.delivered, "{outcome:?}");
    let counters = pipeline.counters();
    assert_eq!(
        (
            counters.recorded,
            counters.published,
            counters.failed,
            counters.spooled,
            counters.dropped
        ),
        (2, 0, 0, 0, 0),
        "{counters:?}"
    );
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    for (line, event) in lines.iter().zip(&events) {
        assert!(line.contains("agent outcome"), "{line}");
        assert!(line.contains(&event.event_id), "{line}");
        assert!(
            line.contains(&format!("agent_name={}", event.agent_name)),
            "{line}"
        );
        assert!(line.contains("status=timeout"), "{line}");
    }
}
