//! `ActionDispatcher` and `OrchestrationDispatcher`: the Rust dispatchers, running Python
//! agents and hooks. Every dispatch is an awaitable on the caller's asyncio loop; the Rust
//! side runs on a tokio runtime, so the GIL is held only while Python code runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use feedback_pipeline::producer::dispatch::{HookError, PostHookArgs, PreHookArgs};
use feedback_pipeline::producer::orchestration::StepOutcome;
use feedback_pipeline::producer::{
    ActionDispatcher, ActionRequest, Agent, DispatchResult, FeedbackPipeline,
    OrchestrationDispatcher, RedactFields, RedactPatterns, RetryPolicy, StepFailurePolicy,
    WorkflowResult,
};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use serde_json::{Value, json};

use crate::agent::PyAgent;
use crate::awaiting;
use crate::convert::{from_py_lenient, object_from_py, to_py};
use crate::event::PyOutcomeEvent;
use crate::pipeline::{PyFeedbackPipeline, default_pipeline};

tokio::task_local! {
    /// The Python agents of the dispatch or workflow being run, by name, and its loop: what
    /// the hooks are called with.
    static RUNNING: Arc<Running>;
}

/// What the hooks of one dispatch or workflow need.
struct Running {
    agents: HashMap<String, Py<PyAny>>,
    event_loop: Py<PyAny>,
}

/// The Python hooks of a dispatcher, shared with the orchestrators built on it.
#[derive(Default)]
struct PyHooks {
    pre: HookList,
    post: HookList,
}

/// Hooks in the order added. A dispatch takes a snapshot without the GIL (a dispatch with no
/// hooks never takes it for them); adding one, from Python, replaces the list.
#[derive(Default)]
struct HookList(Mutex<Arc<Vec<Py<PyAny>>>>);

impl HookList {
    fn snapshot(&self) -> Arc<Vec<Py<PyAny>>> {
        Arc::clone(&self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn push(&self, py: Python<'_>, hook: Py<PyAny>) {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut next: Vec<Py<PyAny>> = list.iter().map(|h| h.clone_ref(py)).collect();
        next.push(hook);
        *list = Arc::new(next);
    }
}

/// How a dispatcher was made, so an orchestrator can make one alike.
#[derive(Clone)]
struct Settings {
    pipeline: Arc<FeedbackPipeline>,
    timeout: Option<Duration>,
    max_retries: u32,
    retry_backoff: Duration,
    enable_metrics: bool,
    capture_input: bool,
    redact_fields: Vec<String>,
    redact_secrets: bool,
}

impl Settings {
    /// The defaults, recording into `pipeline`: no timeout, no retries, output captured,
    /// input not, nothing redacted.
    fn on(pipeline: Arc<FeedbackPipeline>) -> Self {
        Self {
            pipeline,
            timeout: None,
            max_retries: 0,
            retry_backoff: Duration::from_millis(100),
            enable_metrics: true,
            capture_input: false,
            redact_fields: Vec::new(),
            redact_secrets: false,
        }
    }

    /// The Rust dispatcher these settings describe, calling `hooks`.
    fn build(&self, hooks: &Arc<PyHooks>) -> ActionDispatcher {
        let retry = RetryPolicy::retries(self.max_retries).with_initial_backoff(self.retry_backoff);
        let mut core = ActionDispatcher::new(Arc::clone(&self.pipeline))
            .with_retry(retry)
            .capture_output(self.enable_metrics)
            .capture_input(self.capture_input && self.enable_metrics);
        if let Some(timeout) = self.timeout {
            core = core.with_timeout(timeout);
        }
        let fields = RedactFields::new(self.redact_fields.iter());
        core = match (self.redact_secrets, self.redact_fields.is_empty()) {
            (true, _) => core.with_sanitizer(RedactPatterns::common().after(fields)),
            (false, false) => core.with_sanitizer(fields),
            (false, true) => core,
        };
        let pre = Arc::clone(hooks);
        core.add_pre_hook(move |args| run_pre_hooks(Arc::clone(&pre), args));
        let post = Arc::clone(hooks);
        core.add_post_hook(move |args| run_post_hooks(Arc::clone(&post), args));
        core
    }
}

/// Each pre hook `hook(agent, input_data, context)`, awaited if async.
async fn run_pre_hooks(hooks: Arc<PyHooks>, args: PreHookArgs) -> Result<(), HookError> {
    for hook in hooks.pre.snapshot().iter() {
        let called = Python::attach(|py| {
            let (agent, event_loop) = running(py, &args.agent_name)?;
            let input = to_py(py, &args.input)?;
            let context = to_py(py, &Value::Object(args.context.values().clone()))?;
            let call_args = PyTuple::new(py, [agent, input, context])?;
            Ok::<_, PyErr>(awaiting::call(py, hook.bind(py), call_args, &event_loop))
        })?;
        log_failure("pre", &args.agent_name, called.result().await);
    }
    Ok(())
}

/// A hook that raised is logged; the next hooks and the dispatch go on.
fn log_failure(hook: &str, agent_name: &str, result: awaiting::CallResult) {
    if let Err(err) = result {
        tracing::warn!(hook, agent_name, error = %err, "hook failed; dispatch continues");
    }
}

/// Each post hook `hook(agent, result, event)`, awaited if async.
async fn run_post_hooks(hooks: Arc<PyHooks>, args: PostHookArgs) -> Result<(), HookError> {
    for hook in hooks.post.snapshot().iter() {
        let called = Python::attach(|py| {
            let (agent, event_loop) = running(py, &args.agent_name)?;
            let result = to_py(py, &result_value(&args.result))?;
            let event = Bound::new(py, PyOutcomeEvent::of(Arc::clone(&args.event)))?.into_any();
            let call_args = PyTuple::new(py, [agent, result, event])?;
            Ok::<_, PyErr>(awaiting::call(py, hook.bind(py), call_args, &event_loop))
        })?;
        log_failure("post", &args.agent_name, called.result().await);
    }
    Ok(())
}

/// The Python agent named `name` in the running dispatch (`None` if unknown), and its loop.
fn running<'py>(py: Python<'py>, name: &str) -> PyResult<(Bound<'py, PyAny>, Py<PyAny>)> {
    RUNNING
        .try_with(|running| {
            let agent = running.agents.get(name).map_or_else(
                || py.None().into_bound(py),
                |agent| agent.clone_ref(py).into_bound(py),
            );
            (agent, running.event_loop.clone_ref(py))
        })
        .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("hook outside a dispatch"))
}

/// A dispatch's result as the Python caller sees it.
fn result_value(result: &DispatchResult) -> Value {
    json!({
        "status": result.status.as_str(),
        "output": result.output,
        "error": result.error.as_ref().map(|e| e.message.clone()),
        "error_type": result.error.as_ref().map(|e| e.error_type.clone()),
        "event_id": result.event_id,
        "run_id": result.run_id,
        "duration_ms": result.duration_ms,
        "retry_count": result.retry_count,
    })
}

fn step_value(step: &StepOutcome) -> Value {
    json!({
        "agent": step.agent,
        "status": step.status.as_str(),
        "event_id": step.event_id,
        "output": step.output,
        "error": step.error.as_ref().map(|e| e.message.clone()),
        "error_type": step.error.as_ref().map(|e| e.error_type.clone()),
        "duration_ms": step.duration_ms,
    })
}

fn workflow_value(result: &WorkflowResult) -> Value {
    json!({
        "workflow_id": result.workflow_id,
        "correlation_id": result.correlation_id,
        "status": result.status.as_str(),
        "outputs": result.outputs.iter().map(step_value).collect::<Vec<_>>(),
        "skipped": result.skipped,
        "duration_ms": result.duration_ms,
        "event_id": result.event_id,
    })
}

/// Agents as the Rust dispatchers take them.
type Agents = Vec<Arc<dyn Agent>>;

/// The Python agents, as Rust agents on the running loop, and what the hooks need.
fn agents_of(py: Python<'_>, objects: &[Bound<'_, PyAny>]) -> PyResult<(Agents, Arc<Running>)> {
    let event_loop = pyo3_async_runtimes::get_running_loop(py)?.unbind();
    let mut agents: Agents = Vec::with_capacity(objects.len());
    let mut by_name = HashMap::new();
    for object in objects {
        let agent = PyAgent::new(object, event_loop.clone_ref(py))?;
        by_name
            .entry(agent.name().to_owned())
            .or_insert_with(|| agent.object().clone_ref(py));
        agents.push(Arc::new(agent));
    }
    let running = Running {
        agents: by_name,
        event_loop,
    };
    Ok((agents, Arc::new(running)))
}

/// Wraps agent calls with outcome tracking: timing, errors with their traceback, timeouts,
/// retries, hooks and redaction; one event per dispatch.
#[pyclass(
    name = "ActionDispatcher",
    module = "feedback_pipeline._core",
    frozen,
    subclass
)]
pub struct PyActionDispatcher {
    core: Arc<ActionDispatcher>,
    hooks: Arc<PyHooks>,
    settings: Settings,
}

impl PyActionDispatcher {
    fn with_settings(settings: Settings) -> Self {
        let hooks = Arc::new(PyHooks::default());
        Self {
            core: Arc::new(settings.build(&hooks)),
            hooks,
            settings,
        }
    }
}

#[pymethods]
impl PyActionDispatcher {
    /// A dispatcher recording into `feedback_pipeline` (default: the process-wide one).
    /// `enable_metrics=False` records neither input nor output (sensitive operations).
    #[new]
    #[pyo3(signature = (feedback_pipeline=None, enable_metrics=true, timeout=None, max_retries=0, retry_backoff=0.1, capture_input=false, redact_fields=None, redact_secrets=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        feedback_pipeline: Option<PyRef<'_, PyFeedbackPipeline>>,
        enable_metrics: bool,
        timeout: Option<f64>,
        max_retries: u32,
        retry_backoff: f64,
        capture_input: bool,
        redact_fields: Option<Vec<String>>,
        redact_secrets: bool,
    ) -> PyResult<Self> {
        let pipeline = match feedback_pipeline {
            Some(pipeline) => Arc::clone(&pipeline.inner),
            None => default_pipeline(),
        };
        let seconds = |s: f64, name: &str| {
            Duration::try_from_secs_f64(s).map_err(|_| {
                pyo3::exceptions::PyValueError::new_err(format!("{name} must be ≥ 0 seconds"))
            })
        };
        Ok(Self::with_settings(Settings {
            pipeline,
            timeout: timeout.map(|t| seconds(t, "timeout")).transpose()?,
            max_retries,
            retry_backoff: seconds(retry_backoff, "retry_backoff")?,
            enable_metrics,
            capture_input,
            redact_fields: redact_fields.unwrap_or_default(),
            redact_secrets,
        }))
    }

    /// The pipeline events go to.
    #[getter]
    fn feedback_pipeline(&self) -> PyFeedbackPipeline {
        PyFeedbackPipeline::of(Arc::clone(&self.settings.pipeline))
    }

    /// Adds `hook(agent, input_data, context)`, sync or async, run before each action. A hook
    /// that raises is logged; the dispatch goes on.
    fn add_pre_hook(&self, py: Python<'_>, hook: Py<PyAny>) {
        self.hooks.pre.push(py, hook);
    }

    /// Adds `hook(agent, result, event)`, sync or async, run after each action.
    fn add_post_hook(&self, py: Python<'_>, hook: Py<PyAny>) {
        self.hooks.post.push(py, hook);
    }

    /// Runs `agent.execute(input_data, context)` (sync or async) as `action_type` and records
    /// its outcome; an awaitable of the result dict (`status`, `output`, `error`,
    /// `error_type`, `event_id`, `run_id`, `duration_ms`, `retry_count`) bound to the running
    /// loop (the package's `dispatch` is the coroutine around it). Never raises for the
    /// agent's errors: they are in the result and the event.
    #[pyo3(name = "_dispatch", signature = (agent, action_type, input_data=None, context=None, tags=None, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn dispatch<'py>(
        &self,
        py: Python<'py>,
        agent: Bound<'py, PyAny>,
        action_type: String,
        input_data: Option<Bound<'py, PyAny>>,
        context: Option<Bound<'py, PyAny>>,
        tags: Option<Vec<String>>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = input_data
            .as_ref()
            .map(from_py_lenient)
            .transpose()?
            .unwrap_or_else(|| json!({}));
        let mut request = ActionRequest::new(action_type, input)
            .context(object_from_py(context.as_ref())?)
            .tags(tags.unwrap_or_default());
        if let Some(timeout) = timeout {
            let limit = Duration::try_from_secs_f64(timeout).map_err(|_| {
                pyo3::exceptions::PyValueError::new_err("timeout must be ≥ 0 seconds")
            })?;
            request = request.timeout(limit);
        }
        let (agents, running) = agents_of(py, std::slice::from_ref(&agent))?;
        let core = Arc::clone(&self.core);
        let dispatch = async move {
            let agent = &agents[0];
            let result = core.dispatch_request(agent.as_ref(), request).await;
            Python::attach(|py| to_py(py, &result_value(&result)).map(Bound::unbind))
        };
        pyo3_async_runtimes::tokio::future_into_py(py, RUNNING.scope(running, dispatch))
    }
}

/// Runs agents as a workflow: one workflow id and correlation id on every event, and a
/// workflow-level event with its completion time.
#[pyclass(
    name = "OrchestrationDispatcher",
    module = "feedback_pipeline._core",
    frozen,
    subclass
)]
pub struct PyOrchestrationDispatcher {
    core: Arc<OrchestrationDispatcher>,
}

#[pymethods]
impl PyOrchestrationDispatcher {
    /// Workflows through `dispatcher` (its pipeline, settings and hooks; default: a dispatcher
    /// on the process-wide pipeline). `continue_on_failure`: run the remaining steps after a
    /// failed one instead of skipping them.
    #[new]
    #[pyo3(signature = (dispatcher=None, continue_on_failure=false))]
    fn new(
        dispatcher: Option<PyRef<'_, PyActionDispatcher>>,
        continue_on_failure: bool,
    ) -> PyResult<Self> {
        let core = match dispatcher {
            Some(dispatcher) => dispatcher.settings.build(&dispatcher.hooks),
            None => Settings::on(default_pipeline()).build(&Arc::new(PyHooks::default())),
        };
        let policy = if continue_on_failure {
            StepFailurePolicy::Continue
        } else {
            StepFailurePolicy::Stop
        };
        Ok(Self {
            core: Arc::new(OrchestrationDispatcher::new(core).on_step_failure(policy)),
        })
    }

    /// Runs `agents` one after another on `task`, each seeing the previous output; returns
    /// `workflow_id`, `status`, `outputs` (per agent: `agent`, `status`, `event_id`, ...),
    /// `skipped`, `duration_ms`, `event_id`.
    #[pyo3(name = "_execute_workflow", signature = (agents, task, tags=None))]
    fn execute_workflow<'py>(
        &self,
        py: Python<'py>,
        agents: Vec<Bound<'py, PyAny>>,
        task: String,
        tags: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, &agents, task, tags, false)
    }

    /// Runs `agents` concurrently on the same `task` and waits for all of them.
    #[pyo3(name = "_execute_parallel", signature = (agents, task, tags=None))]
    fn execute_parallel<'py>(
        &self,
        py: Python<'py>,
        agents: Vec<Bound<'py, PyAny>>,
        task: String,
        tags: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, &agents, task, tags, true)
    }
}

impl PyOrchestrationDispatcher {
    fn run<'py>(
        &self,
        py: Python<'py>,
        agents: &[Bound<'py, PyAny>],
        task: String,
        tags: Option<Vec<String>>,
        parallel: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (agents, running) = agents_of(py, agents)?;
        let core = Arc::clone(&self.core);
        let tags = tags.unwrap_or_default();
        let workflow = async move {
            let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
            let result = if parallel {
                core.execute_parallel(&agents, &task, &tags).await
            } else {
                core.execute_workflow(&agents, &task, &tags).await
            };
            Python::attach(|py| to_py(py, &workflow_value(&result)).map(Bound::unbind))
        };
        pyo3_async_runtimes::tokio::future_into_py(py, RUNNING.scope(running, workflow))
    }
}
