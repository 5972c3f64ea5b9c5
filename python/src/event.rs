//! `OutcomeEvent`: the Rust event, validated by the Rust contract, read from Python as
//! attributes, `to_dict()` and `to_json()`.

use std::sync::{Arc, OnceLock};

use feedback_pipeline::event::{OutcomeEvent, json_schema};
use pyo3::exceptions::{PyAttributeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;

use crate::convert::{from_py, to_py};

pyo3::create_exception!(
    _core,
    EventError,
    PyValueError,
    "An event breaks the contract; the message names the field."
);

/// One agent action's outcome (the contract of `schema/outcome-event.schema.json`).
#[pyclass(name = "OutcomeEvent", module = "feedback_pipeline._core", frozen)]
pub struct PyOutcomeEvent {
    pub event: Arc<OutcomeEvent>,
}

/// The contract's field names.
fn field_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        json_schema()["properties"]
            .as_object()
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default()
    })
}

/// A contract error as `EventError`, naming the field.
pub fn event_error(err: feedback_pipeline::event::EventError) -> PyErr {
    EventError::new_err(err.to_string())
}

impl PyOutcomeEvent {
    /// Wraps a recorded event.
    pub fn of(event: Arc<OutcomeEvent>) -> Self {
        Self { event }
    }

    fn value(&self) -> Value {
        serde_json::to_value(&*self.event).unwrap_or(Value::Null)
    }
}

#[pymethods]
impl PyOutcomeEvent {
    /// An event of `agent_name` doing `action_type`; any other field of the contract by
    /// keyword (ids and timestamp default to new ones and now).
    #[new]
    #[pyo3(signature = (agent_name, action_type, **fields))]
    fn new(
        agent_name: &str,
        action_type: &str,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let base = OutcomeEvent::builder(agent_name, action_type)
            .build()
            .map_err(event_error)?;
        let mut value =
            serde_json::to_value(&base).map_err(|e| EventError::new_err(e.to_string()))?;
        for (key, item) in fields.into_iter().flatten() {
            let key: String = key.extract()?;
            if !field_names().contains(&key) {
                return Err(EventError::new_err(format!(
                    "{key}: not a field of OutcomeEvent"
                )));
            }
            let item = from_py(&item).map_err(|e| EventError::new_err(format!("{key}: {e}")))?;
            value[key.as_str()] = item;
        }
        let event = OutcomeEvent::from_json_str(&value.to_string()).map_err(event_error)?;
        Ok(Self::of(Arc::new(event)))
    }

    /// An event from its JSON text, validated.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        let event = OutcomeEvent::from_json_str(text).map_err(event_error)?;
        Ok(Self::of(Arc::new(event)))
    }

    /// The event as a dict (the fields that are set, as on the wire).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.value())
    }

    /// The event as its JSON text (what goes to Kafka).
    fn to_json(&self) -> PyResult<String> {
        self.event.to_json_string().map_err(event_error)
    }

    /// A field of the contract (`None` when unset); `status` and `severity` as their enums.
    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        if !field_names().iter().any(|field| field == name) {
            return Err(PyAttributeError::new_err(format!(
                "'OutcomeEvent' has no field '{name}'"
            )));
        }
        let value = self.value().get(name).cloned().unwrap_or(Value::Null);
        let object = to_py(py, &value)?;
        match name {
            "status" => py
                .import("feedback_pipeline")?
                .getattr("OutcomeStatus")?
                .call1((object,)),
            "severity" => py
                .import("feedback_pipeline")?
                .getattr("EventSeverity")?
                .call1((object,)),
            _ => Ok(object),
        }
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.event == other.event
    }

    fn __repr__(&self) -> String {
        format!(
            "OutcomeEvent(agent_name={:?}, action_type={:?}, status={:?}, event_id={:?})",
            self.event.agent_name,
            self.event.action_type,
            self.event.status.as_str(),
            self.event.event_id
        )
    }
}
