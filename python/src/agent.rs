//! [`PyAgent`]: a Python object with a `name` and an `execute(input_data, context)` (sync or
//! async) as the Rust dispatcher's [`Agent`].

use async_trait::async_trait;
use feedback_pipeline::producer::{ActionContext, Agent, AgentError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use serde_json::Value;

use crate::awaiting::{self, Called};
use crate::convert::to_py;

/// A Python agent.
pub struct PyAgent {
    object: Py<PyAny>,
    name: String,
    agent_type: String,
    /// The asyncio loop of the dispatch: async `execute`s run there.
    event_loop: Py<PyAny>,
    /// `execute` is a coroutine function: calling it only makes the coroutine.
    is_async: bool,
}

impl PyAgent {
    /// Wraps `object`: its `name` (else its class name) and `agent_type` (else `generic`).
    pub fn new(object: &Bound<'_, PyAny>, event_loop: Py<PyAny>) -> PyResult<Self> {
        let text = |attribute: &str| -> Option<String> {
            object.getattr(attribute).ok()?.extract::<String>().ok()
        };
        let name = match text("name") {
            Some(name) => name,
            None => object.get_type().name()?.to_string(),
        };
        let is_async = match object.getattr("execute") {
            Ok(execute) => object
                .py()
                .import("inspect")?
                .call_method1("iscoroutinefunction", (execute,))?
                .is_truthy()?,
            Err(_) => false,
        };
        Ok(Self {
            object: object.clone().unbind(),
            name,
            agent_type: text("agent_type").unwrap_or_else(|| "generic".into()),
            event_loop,
            is_async,
        })
    }

    /// The Python object.
    pub fn object(&self) -> &Py<PyAny> {
        &self.object
    }

    /// Calls `execute`: a sync one on a blocking thread (it may take its time there without
    /// holding a runtime worker); an async one here (that only makes the coroutine), which
    /// then runs on the dispatch's loop.
    async fn start(&self, input: &Value, context: &ActionContext) -> Result<Called, AgentError> {
        let (object, event_loop) =
            Python::attach(|py| (self.object.clone_ref(py), self.event_loop.clone_ref(py)));
        let (input, values) = (input.clone(), Value::Object(context.values().clone()));
        let call = move || {
            Python::attach(|py| {
                let execute = match object.bind(py).getattr("execute") {
                    Ok(execute) => execute,
                    Err(err) => return Called::Ready(Err(awaiting::agent_error(py, &err))),
                };
                let args = (to_py(py, &input), to_py(py, &values));
                let args = match args {
                    (Ok(input), Ok(values)) => PyTuple::new(py, [input, values]),
                    (Err(err), _) | (_, Err(err)) => Err(err),
                };
                match args {
                    Ok(args) => awaiting::call(py, &execute, args, &event_loop),
                    Err(err) => Called::Ready(Err(awaiting::agent_error(py, &err))),
                }
            })
        };
        if self.is_async {
            return Ok(call());
        }
        tokio::task::spawn_blocking(call)
            .await
            .map_err(|err| AgentError::new("panic", err.to_string()))
    }
}

#[async_trait]
impl Agent for PyAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn agent_type(&self) -> &str {
        &self.agent_type
    }

    async fn execute(&self, input: &Value, context: &ActionContext) -> Result<Value, AgentError> {
        self.start(input, context)
            .await?
            .result()
            .await
            .map_err(|err| *err)
    }
}
