//! Awaiting Python from Rust: an awaitable an agent or hook returns runs as a task on the
//! caller's asyncio loop, and is cancelled there if the dispatch stops waiting for it (a
//! timeout), so no coroutine outlives its dispatch.

use std::sync::Mutex;

use feedback_pipeline::producer::AgentError;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyTuple};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::convert::from_py_lenient;

/// The outcome of one Python call (the error boxed: it carries a traceback).
pub type CallResult = Result<Value, Box<AgentError>>;

/// What a Python callable returned: a value, or an awaitable now running on the loop.
pub enum Called {
    /// A plain return value.
    Ready(CallResult),
    /// A task on the loop.
    Running(RunningTask),
}

impl Called {
    /// The call's result, awaiting the task if there is one.
    pub async fn result(self) -> CallResult {
        match self {
            Self::Ready(result) => result,
            Self::Running(task) => task.finish().await,
        }
    }
}

/// A Python awaitable running on an asyncio loop (a `concurrent.futures.Future` of it).
pub struct RunningTask {
    future: Option<Py<PyAny>>,
    outcome: Option<oneshot::Receiver<CallResult>>,
}

impl RunningTask {
    async fn finish(mut self) -> CallResult {
        let outcome = self.outcome.take().expect("awaited once");
        let result = outcome.await.unwrap_or_else(|_| {
            Err(Box::new(AgentError::new(
                "CancelledError",
                "the event loop dropped the task",
            )))
        });
        self.future = None;
        result
    }
}

impl Drop for RunningTask {
    fn drop(&mut self) {
        if let Some(future) = self.future.take() {
            Python::attach(|py| {
                let _ = future.call_method0(py, "cancel");
            });
        }
    }
}

/// Calls `callable(*args)`; an awaitable result is started on `event_loop`. A Python
/// exception becomes an [`AgentError`] with its type, message and traceback.
pub fn call(
    py: Python<'_>,
    callable: &Bound<'_, PyAny>,
    args: Bound<'_, PyTuple>,
    event_loop: &Py<PyAny>,
) -> Called {
    let returned = match callable.call1(args) {
        Ok(returned) => returned,
        Err(err) => return Called::Ready(Err(agent_error(py, &err))),
    };
    let inspect = py.import("inspect");
    let awaitable = inspect
        .and_then(|m| m.call_method1("isawaitable", (&returned,)))
        .and_then(|b| b.is_truthy())
        .unwrap_or(false);
    if !awaitable {
        return Called::Ready(value_of(py, &returned));
    }
    match start(py, returned, event_loop) {
        Ok(task) => Called::Running(task),
        Err(err) => Called::Ready(Err(agent_error(py, &err))),
    }
}

fn value_of(py: Python<'_>, returned: &Bound<'_, PyAny>) -> CallResult {
    from_py_lenient(returned).map_err(|err| agent_error(py, &err))
}

/// Starts `awaitable` on `event_loop` (thread-safe) and arranges for its result to arrive.
fn start(
    py: Python<'_>,
    awaitable: Bound<'_, PyAny>,
    event_loop: &Py<PyAny>,
) -> PyResult<RunningTask> {
    let bridge = py.import("feedback_pipeline._bridge")?;
    let coroutine = bridge.getattr("await_it")?.call1((awaitable,))?;
    let asyncio = py.import("asyncio")?;
    let future = asyncio.call_method1("run_coroutine_threadsafe", (coroutine, event_loop))?;
    let (sender, receiver) = oneshot::channel();
    let sender = Mutex::new(Some(sender));
    let on_done = PyCFunction::new_closure(py, None, None, move |args, _kwargs| {
        let py = args.py();
        let done = args.get_item(0)?;
        let result = match done.call_method0("result") {
            Ok(returned) => value_of(py, &returned),
            Err(err) => Err(agent_error(py, &err)),
        };
        if let Some(sender) = sender.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = sender.send(result);
        }
        Ok::<(), PyErr>(())
    })?;
    future.call_method1("add_done_callback", (on_done,))?;
    Ok(RunningTask {
        future: Some(future.unbind()),
        outcome: Some(receiver),
    })
}

/// A Python exception as the event records it: type name, message, formatted traceback.
pub fn agent_error(py: Python<'_>, err: &PyErr) -> Box<AgentError> {
    let error_type = err
        .get_type(py)
        .qualname()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "Exception".into());
    let message = err
        .value(py)
        .str()
        .map(|text| text.to_string())
        .unwrap_or_default();
    let trace = py
        .import("traceback")
        .and_then(|tb| tb.call_method1("format_exception", (err.value(py),)))
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|lines| lines.concat())
        .unwrap_or_else(|_| format!("{error_type}: {message}"));
    Box::new(AgentError::with_stack_trace(error_type, message, trace))
}
