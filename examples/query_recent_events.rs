//! Example 3 of the design documents: query the in-process buffer of recent events.
//!
//! `cargo run --example query_recent_events`

use feedback_pipeline::event::{OutcomeEvent, OutcomeStatus};
use feedback_pipeline::producer::get_feedback_pipeline;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pipeline = get_feedback_pipeline();
    for n in 0..30 {
        let agent = if n % 3 == 0 {
            "react_agent"
        } else {
            "data_processor"
        };
        let mut builder = OutcomeEvent::builder(agent, "process_task").agent_type("demo");
        if n % 4 == 0 {
            builder = builder.error("ValueError", "Invalid data format");
        }
        pipeline.record_outcome(builder.build()?)?;
    }

    let recent = pipeline.get_recent_events(10, None, None);
    let failures = pipeline.get_recent_events(20, Some(OutcomeStatus::Failure), None);
    let agent_events = pipeline.get_recent_events(10, None, Some("react_agent"));
    println!("recent: {}", recent.len());
    println!("failures: {}", failures.len());
    println!("react_agent: {}", agent_events.len());
    println!("counters: {:?}", pipeline.counters());
    pipeline.shutdown(std::time::Duration::from_secs(5));
    Ok(())
}
