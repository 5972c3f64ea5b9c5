//! `FeedbackPipeline`: the Rust pipeline (bounded non-blocking queue, batching, compression,
//! disk spool, replay), configured from the same environment variables as the Rust crate.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use feedback_pipeline::config::Config;
use feedback_pipeline::event::OutcomeStatus;
use feedback_pipeline::producer::pipeline::{FlushOutcome, PipelineOptions};
use feedback_pipeline::producer::{FeedbackPipeline, get_feedback_pipeline as rust_default};
use pyo3::exceptions::{PyStopIteration, PyValueError};
use pyo3::prelude::*;
use serde_json::{Value, json};

use crate::convert::to_py;
use crate::event::{PyOutcomeEvent, event_error};

pyo3::create_exception!(
    _core,
    ConfigError,
    PyValueError,
    "A configuration variable is invalid; the message names it and the fix."
);

/// Every pipeline made from Python, so the interpreter's exit can flush them all.
static MADE: Mutex<Vec<Weak<FeedbackPipeline>>> = Mutex::new(Vec::new());

fn remember(pipeline: &Arc<FeedbackPipeline>) {
    let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    made.retain(|weak| weak.strong_count() > 0);
    made.push(Arc::downgrade(pipeline));
}

/// The process-wide pipeline (configured from the environment on first use).
pub fn default_pipeline() -> Arc<FeedbackPipeline> {
    let pipeline = rust_default();
    remember(&pipeline);
    pipeline
}

fn start(options: PipelineOptions) -> PyResult<Arc<FeedbackPipeline>> {
    let pipeline = FeedbackPipeline::new(options)
        .map_err(|err| ConfigError::new_err(format!("the Kafka producer: {err}")))?;
    let pipeline = Arc::new(pipeline);
    remember(&pipeline);
    Ok(pipeline)
}

fn seconds(timeout: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(timeout)
        .map_err(|_| PyValueError::new_err("timeout must be ≥ 0 seconds"))
}

fn flush_value(outcome: FlushOutcome) -> Value {
    json!({"delivered": outcome.delivered, "spool_pending": outcome.spool_pending})
}

/// Collects outcome events and publishes them to Kafka, never blocking the caller.
#[pyclass(name = "FeedbackPipeline", module = "feedback_pipeline._core", frozen)]
pub struct PyFeedbackPipeline {
    pub inner: Arc<FeedbackPipeline>,
}

impl PyFeedbackPipeline {
    /// Wraps a pipeline.
    pub fn of(inner: Arc<FeedbackPipeline>) -> Self {
        Self { inner }
    }
}

#[pymethods]
impl PyFeedbackPipeline {
    /// A pipeline configured from the environment (`.env` too), with these overrides:
    /// `kafka_servers` (`KAFKA_BOOTSTRAP_SERVERS`), `kafka_topic` (`KAFKA_OUTCOME_TOPIC`),
    /// `enable_kafka` (`ENABLE_KAFKA`), `enable_logging` (`ENABLE_OUTCOME_LOGGING`),
    /// `spool_dir` (`SPOOL_DIR`).
    #[new]
    #[pyo3(signature = (kafka_servers=None, kafka_topic=None, enable_kafka=None, enable_logging=None, spool_dir=None))]
    fn new(
        kafka_servers: Option<&str>,
        kafka_topic: Option<String>,
        enable_kafka: Option<bool>,
        enable_logging: Option<bool>,
        spool_dir: Option<std::path::PathBuf>,
    ) -> PyResult<Self> {
        let mut config = Config::from_env().map_err(|err| ConfigError::new_err(err.to_string()))?;
        if let Some(enabled) = enable_kafka {
            config.kafka.enabled = enabled;
        }
        let mut options = PipelineOptions::from_config(&config, kafka_servers);
        if let (Some(topic), Some(kafka)) = (kafka_topic, options.kafka.as_mut()) {
            kafka.topic = topic;
        }
        if let Some(enabled) = enable_logging {
            options.log_outcomes = enabled;
        }
        if let Some(dir) = spool_dir {
            options.spool_dir = Some(dir);
        }
        Ok(Self::of(start(options)?))
    }

    /// Records `event` without waiting on the network. Returns an awaitable (so `await
    /// pipeline.record_outcome(event)` works) that has already recorded it: sync code may
    /// drop it, or read `.event`.
    fn record_outcome(&self, py: Python<'_>, event: &PyOutcomeEvent) -> PyResult<Recorded> {
        let event = (*event.event).clone();
        // A full queue is waited on (briefly) before the event is spooled: not with the GIL.
        let recorded = py
            .detach(|| self.inner.record_outcome(event))
            .map_err(event_error)?;
        Ok(Recorded {
            event: Py::new(py, PyOutcomeEvent::of(recorded))?,
        })
    }

    /// The latest `count` events, oldest first, optionally of one `status` or `agent_name`.
    #[pyo3(signature = (count=10, status=None, agent_name=None))]
    fn get_recent_events(
        &self,
        count: usize,
        status: Option<&str>,
        agent_name: Option<&str>,
    ) -> PyResult<Vec<PyOutcomeEvent>> {
        let status = status
            .map(|s| serde_json::from_value::<OutcomeStatus>(Value::String(s.to_owned())))
            .transpose()
            .map_err(|err| PyValueError::new_err(format!("status: {err}")))?;
        let events = self.inner.get_recent_events(count, status, agent_name);
        Ok(events.into_iter().map(PyOutcomeEvent::of).collect())
    }

    /// The counters: recorded, published, failed, spooled, replayed, dropped, rejected,
    /// spool_corrupt, spool_pending.
    fn get_metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.inner.counters();
        let value = json!({
            "recorded": c.recorded, "published": c.published, "failed": c.failed,
            "spooled": c.spooled, "replayed": c.replayed, "dropped": c.dropped,
            "rejected": c.rejected, "spool_corrupt": c.spool_corrupt,
            "spool_pending": c.spool_pending,
        });
        to_py(py, &value)
    }

    /// Delivers everything recorded so far, or spools what cannot be delivered within
    /// `timeout` seconds; returns `{"delivered": bool, "spool_pending": int}`. The GIL is
    /// released meanwhile.
    #[pyo3(signature = (timeout=10.0))]
    fn flush<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let limit = seconds(timeout)?;
        let outcome = py.detach(|| self.inner.flush(limit));
        to_py(py, &flush_value(outcome))
    }

    /// Flushes like `flush`, then stops publishing (later events are spooled or kept).
    #[pyo3(signature = (timeout=10.0))]
    fn shutdown<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let limit = seconds(timeout)?;
        let outcome = py.detach(|| self.inner.shutdown(limit));
        to_py(py, &flush_value(outcome))
    }
}

/// The awaitable `record_outcome` returns: the event is recorded already; awaiting it gives
/// the recorded event.
#[pyclass(module = "feedback_pipeline._core", frozen)]
pub struct Recorded {
    /// The recorded event (fitted to the broker's limits).
    #[pyo3(get)]
    event: Py<PyOutcomeEvent>,
}

#[pymethods]
impl Recorded {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<()> {
        Err(PyStopIteration::new_err((self.event.clone_ref(py),)))
    }
}

/// The process-wide pipeline, configured from the environment on first use.
#[pyfunction]
pub fn get_feedback_pipeline() -> PyFeedbackPipeline {
    PyFeedbackPipeline::of(default_pipeline())
}

/// Shuts every pipeline made from Python down, each waiting at most `timeout` seconds for
/// deliveries (the rest is spooled); the package calls it when the interpreter exits.
#[pyfunction]
#[pyo3(signature = (timeout=5.0))]
pub fn shutdown_all(py: Python<'_>, timeout: f64) -> PyResult<()> {
    let limit = seconds(timeout)?;
    let made: Vec<Arc<FeedbackPipeline>> = MADE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain(..)
        .filter_map(|weak| weak.upgrade())
        .collect();
    py.detach(|| {
        for pipeline in made {
            pipeline.shutdown(limit);
        }
    });
    Ok(())
}
