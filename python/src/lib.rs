//! `feedback_pipeline._core`: the producer library for Python agents, over the same Rust core
//! as the Rust crate (same contract, batching, compression, spool and replay). The Python
//! package `feedback_pipeline` re-exports it with its enums, stubs and docs.

mod agent;
mod awaiting;
mod convert;
mod dispatcher;
mod event;
mod pipeline;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    init_logs();
    m.add_class::<event::PyOutcomeEvent>()?;
    m.add_class::<pipeline::PyFeedbackPipeline>()?;
    m.add_class::<pipeline::Recorded>()?;
    m.add_class::<dispatcher::PyActionDispatcher>()?;
    m.add_class::<dispatcher::PyOrchestrationDispatcher>()?;
    m.add_function(wrap_pyfunction!(pipeline::get_feedback_pipeline, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline::shutdown_all, m)?)?;
    m.add("EventError", m.py().get_type::<event::EventError>())?;
    m.add("ConfigError", m.py().get_type::<pipeline::ConfigError>())?;
    Ok(())
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings, and the outcome log lines of
/// `ENABLE_OUTCOME_LOGGING`).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,feedback_pipeline=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
