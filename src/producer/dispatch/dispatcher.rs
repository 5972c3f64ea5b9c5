//! [`ActionDispatcher`]: runs an agent's action and records exactly one [`OutcomeEvent`] for it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Map, Value};

use super::attempt::{Attempt, run_with_retries};
use super::ending::Ending;
use super::hooks::{self, HookError, PostHook, PostHookArgs, PreHook, PreHookArgs, run_hook};
use super::record::{RunEnd, RunInfo};
use super::request::{ActionRequest, DispatchError, DispatchResult};
use super::retry::RetryPolicy;
use super::sanitize::Sanitizer;
use crate::event::{OutcomeEvent, OutcomeStatus, new_uuid};
use crate::producer::agent::{ActionContext, Agent};
use crate::producer::pipeline::{FeedbackPipeline, get_feedback_pipeline};

/// Wraps agent calls with timing, error capture, timeouts, retries, hooks and privacy controls.
pub struct ActionDispatcher {
    pipeline: Arc<FeedbackPipeline>,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    capture_input: bool,
    capture_output: bool,
    sanitizer: Option<Arc<dyn Sanitizer>>,
    pre_hooks: Vec<PreHook>,
    post_hooks: Vec<PostHook>,
}

/// Records a `cancelled` event if the dispatch future is dropped before the action ends.
struct CancelGuard<'a> {
    dispatcher: &'a ActionDispatcher,
    run: &'a RunInfo<'a>,
    context: &'a ActionContext,
    retries: &'a AtomicU32,
    armed: bool,
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let end = RunEnd {
            status: OutcomeStatus::Cancelled,
            error: Some(DispatchError {
                error_type: "Cancelled".into(),
                message: "the dispatch was dropped before the action finished".into(),
            }),
            stack_trace: None,
            retry_count: self.retries.load(Ordering::Relaxed),
            usage: self.context.usage(),
            output: None,
            metadata: None,
        };
        if let Ok(event) = self.run.event(end) {
            self.dispatcher.record(event);
        }
    }
}

impl ActionDispatcher {
    /// A dispatcher recording into `pipeline`: no timeout, no retries, output captured,
    /// input not captured.
    pub fn new(pipeline: Arc<FeedbackPipeline>) -> Self {
        Self {
            pipeline,
            timeout: None,
            retry: RetryPolicy::default(),
            capture_input: false,
            capture_output: true,
            sanitizer: None,
            pre_hooks: Vec::new(),
            post_hooks: Vec::new(),
        }
    }

    /// The pipeline events go to.
    pub fn pipeline(&self) -> &Arc<FeedbackPipeline> {
        &self.pipeline
    }

    /// Sets the time limit of each attempt.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Records the input (and context values) in the event's metadata (default: off).
    pub fn capture_input(mut self, capture: bool) -> Self {
        self.capture_input = capture;
        self
    }

    /// Records the agent's output in the event (default: on).
    pub fn capture_output(mut self, capture: bool) -> Self {
        self.capture_output = capture;
        self
    }

    /// Sets the sanitizer applied to every event before it is recorded.
    pub fn with_sanitizer(mut self, sanitizer: impl Sanitizer + 'static) -> Self {
        self.sanitizer = Some(Arc::new(sanitizer));
        self
    }

    /// Adds an async hook run before each action.
    pub fn add_pre_hook<F, Fut>(&mut self, hook: F)
    where
        F: Fn(PreHookArgs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.pre_hooks.push(hooks::boxed(hook));
    }

    /// Adds an async hook run after each action, with its result and event.
    pub fn add_post_hook<F, Fut>(&mut self, hook: F)
    where
        F: Fn(PostHookArgs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.post_hooks.push(hooks::boxed(hook));
    }

    /// Runs `action_type` on `agent` with `input`, `context` and `tags`, and records its outcome.
    pub async fn dispatch(
        &self,
        agent: &dyn Agent,
        action_type: &str,
        input: Value,
        context: Map<String, Value>,
        tags: &[&str],
    ) -> DispatchResult {
        let request = ActionRequest::new(action_type, input)
            .context(context)
            .tags(tags.iter().copied());
        self.dispatch_request(agent, request).await
    }

    /// Runs one [`ActionRequest`] on `agent` and records its outcome.
    pub async fn dispatch_request(
        &self,
        agent: &dyn Agent,
        request: ActionRequest,
    ) -> DispatchResult {
        let ActionRequest {
            action_type,
            input,
            context,
            tags,
            timeout,
            workflow,
        } = request;
        let run_id = new_uuid();
        let mut action_context = ActionContext::new(context);
        if let Some((workflow_id, correlation_id)) = &workflow {
            action_context = action_context.with_workflow(workflow_id, correlation_id);
        }
        let input = Arc::new(input);
        self.run_pre_hooks(agent, &action_type, &input, &action_context)
            .await;
        let run = RunInfo {
            agent_name: agent.name(),
            agent_type: agent.agent_type(),
            action_type: &action_type,
            run_id: &run_id,
            started_at: Utc::now(),
            clock: Instant::now(),
            tags: &tags,
            workflow_id: workflow.as_ref().map(|(id, _)| id.as_str()),
            correlation_id: workflow.as_ref().map(|(_, id)| id.as_str()),
        };
        let (attempt, retry_count) = self
            .attempt(agent, &run, &input, &action_context, timeout)
            .await;
        let ending = Ending::of(attempt, action_context.is_partial());
        self.finish(agent, &run, ending, retry_count, (&input, &action_context))
            .await
    }

    /// Runs the action with its retries; a drop meanwhile records it as cancelled.
    async fn attempt(
        &self,
        agent: &dyn Agent,
        run: &RunInfo<'_>,
        input: &Arc<Value>,
        context: &ActionContext,
        timeout: Option<Duration>,
    ) -> (Attempt, u32) {
        let retries = AtomicU32::new(0);
        let mut guard = CancelGuard {
            dispatcher: self,
            run,
            context,
            retries: &retries,
            armed: true,
        };
        let limit = timeout.or(self.timeout);
        let attempt = run_with_retries(agent, input, context, limit, &self.retry, &retries).await;
        guard.armed = false;
        (attempt, retries.load(Ordering::Relaxed))
    }

    /// Records the event of a finished run and runs the post hooks on it.
    async fn finish(
        &self,
        agent: &dyn Agent,
        run: &RunInfo<'_>,
        ending: Ending,
        retry_count: u32,
        (input, context): (&Value, &ActionContext),
    ) -> DispatchResult {
        let end = RunEnd {
            status: ending.status,
            error: ending.error.clone(),
            stack_trace: ending.stack_trace,
            retry_count,
            usage: context.usage(),
            output: ending.output.clone().filter(|_| self.capture_output),
            metadata: self.captured_input(input, context),
        };
        let event = run.event(end);
        let duration_ms = run.clock.elapsed().as_secs_f64() * 1000.0;
        let (event_id, recorded) = match event {
            Ok(event) => (event.event_id.clone(), self.record(event)),
            Err(err) => {
                tracing::error!(agent_name = agent.name(), %err, "the agent's name or type breaks the event contract; outcome not recorded");
                (String::new(), None)
            }
        };
        let result = DispatchResult {
            status: ending.status,
            output: ending.output,
            error: ending.error,
            event_id,
            run_id: run.run_id.to_owned(),
            duration_ms,
            retry_count,
        };
        match recorded {
            Some(event) if !self.post_hooks.is_empty() => {
                self.run_post_hooks(agent, result, event).await
            }
            _ => result,
        }
    }

    /// Sanitizes and records an event; `None` if the pipeline refused it. The orchestrator
    /// records its workflow events here too, so the sanitizer sees every event.
    pub(crate) fn record(&self, mut event: OutcomeEvent) -> Option<Arc<OutcomeEvent>> {
        let Some(sanitizer) = &self.sanitizer else {
            // RunInfo::event validated it.
            return Some(self.pipeline.record_valid(event));
        };
        sanitizer.sanitize(&mut event);
        match self.pipeline.record_outcome(event) {
            Ok(event) => Some(event),
            Err(err) => {
                tracing::error!(%err, "outcome event refused (the sanitizer may have broken it)");
                None
            }
        }
    }

    fn captured_input(&self, input: &Value, context: &ActionContext) -> Option<Map<String, Value>> {
        if !self.capture_input {
            return None;
        }
        let mut metadata = Map::new();
        metadata.insert("input".into(), input.clone());
        if !context.values().is_empty() {
            metadata.insert("context".into(), Value::Object(context.values().clone()));
        }
        Some(metadata)
    }

    async fn run_pre_hooks(
        &self,
        agent: &dyn Agent,
        action_type: &str,
        input: &Arc<Value>,
        context: &ActionContext,
    ) {
        for hook in &self.pre_hooks {
            let args = PreHookArgs {
                agent_name: agent.name().to_owned(),
                agent_type: agent.agent_type().to_owned(),
                action_type: action_type.to_owned(),
                input: Arc::clone(input),
                context: context.clone(),
            };
            run_hook("pre", agent.name(), hook(args)).await;
        }
    }

    async fn run_post_hooks(
        &self,
        agent: &dyn Agent,
        result: DispatchResult,
        event: Arc<OutcomeEvent>,
    ) -> DispatchResult {
        let result = Arc::new(result);
        for hook in &self.post_hooks {
            let args = PostHookArgs {
                agent_name: agent.name().to_owned(),
                agent_type: agent.agent_type().to_owned(),
                result: Arc::clone(&result),
                event: Arc::clone(&event),
            };
            run_hook("post", agent.name(), hook(args)).await;
        }
        Arc::try_unwrap(result).unwrap_or_else(|shared| (*shared).clone())
    }
}

/// A dispatcher as the design documents create it. With `kafka_servers`, it records into a
/// pipeline of its own publishing there (other settings from the environment); without, into
/// the process-wide [`get_feedback_pipeline`]. `enable_metrics = false` turns off input and
/// output capture, for sensitive operations.
pub fn create_dispatcher(
    kafka_servers: Option<&str>,
    enable_metrics: bool,
) -> Result<ActionDispatcher, Box<dyn std::error::Error + Send + Sync>> {
    let pipeline = match kafka_servers {
        Some(servers) => {
            let config = crate::config::Config::from_env()?;
            let options =
                crate::producer::pipeline::PipelineOptions::from_config(&config, Some(servers));
            Arc::new(FeedbackPipeline::new(options)?)
        }
        None => get_feedback_pipeline(),
    };
    Ok(ActionDispatcher::new(pipeline)
        .capture_output(enable_metrics)
        .capture_input(false))
}
