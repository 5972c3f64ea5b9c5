//! ActionDispatcher and OrchestrationDispatcher semantics, observed through the pipeline's
//! recent-events buffer (no broker needed; the Kafka path is in producer_kafka.rs).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};

use common::agents::{Behaviour, ScriptedAgent};
use feedback_pipeline::event::{EventSeverity, OutcomeEvent, OutcomeStatus};
use feedback_pipeline::producer::dispatch::REDACTED;
use feedback_pipeline::producer::{
    ActionDispatcher, ActionRequest, Agent, FeedbackPipeline, OrchestrationDispatcher,
    PipelineOptions, RedactFields, RetryPolicy, StepFailurePolicy,
};

fn pipeline() -> Arc<FeedbackPipeline> {
    Arc::new(FeedbackPipeline::new(PipelineOptions::default()).unwrap())
}

fn only_event(pipeline: &FeedbackPipeline) -> Arc<OutcomeEvent> {
    let events = pipeline.get_recent_events(100, None, None);
    assert_eq!(events.len(), 1, "{events:#?}");
    events[0].clone()
}

#[tokio::test]
async fn success_records_one_event_with_timing_usage_and_output() {
    let pipeline = pipeline();
    let dispatcher = ActionDispatcher::new(pipeline.clone());
    let agent = ScriptedAgent::new("react_agent", Behaviour::Succeed);
    let result = dispatcher
        .dispatch(
            agent.as_ref(),
            "reasoning",
            json!({"query": "weather?"}),
            Map::new(),
            &["reasoning", "weather"],
        )
        .await;
    assert_eq!(result.status, OutcomeStatus::Success);
    assert_eq!(result.output, Some(json!({"echo": {"query": "weather?"}})));
    let event = only_event(&pipeline);
    assert_eq!(event.event_id, result.event_id);
    assert_eq!(event.run_id, result.run_id);
    assert_eq!(event.agent_name, "react_agent");
    assert_eq!(event.agent_type.as_deref(), Some("scripted"));
    assert_eq!(event.action_type, "reasoning");
    assert_eq!(event.severity, EventSeverity::Info);
    assert_eq!(event.tags, Some(vec!["reasoning".into(), "weather".into()]));
    assert_eq!(event.output, result.output);
    assert_eq!(
        (event.input_tokens, event.output_tokens, event.tokens_used),
        (Some(100), Some(20), Some(120))
    );
    assert_eq!(event.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(event.provider.as_deref(), Some("openai"));
    assert!(event.start_time.unwrap() <= event.end_time.unwrap());
    assert!(event.duration_ms >= 0.0 && event.duration_ms <= result.duration_ms);
    assert_eq!(event.metadata, None, "input is not captured by default");
    assert_eq!(pipeline.counters().recorded, 1);
}

#[tokio::test]
async fn an_error_is_recorded_with_type_message_and_backtrace() {
    let pipeline = pipeline();
    let dispatcher = ActionDispatcher::new(pipeline.clone());
    let agent = ScriptedAgent::new("data_processor", Behaviour::Fail);
    let result = dispatcher
        .dispatch(agent.as_ref(), "transform", json!({}), Map::new(), &[])
        .await;
    assert_eq!(result.status, OutcomeStatus::Failure);
    assert_eq!(result.error.as_ref().unwrap().error_type, "ValueError");
    let event = only_event(&pipeline);
    assert_eq!(event.status, OutcomeStatus::Failure);
    assert_eq!(event.severity, EventSeverity::Error);
    assert_eq!(event.error_type.as_deref(), Some("ValueError"));
    assert_eq!(event.error_message.as_deref(), Some("Invalid data format"));
    assert!(!event.stack_trace.as_deref().unwrap_or_default().is_empty());
    assert_eq!(event.output, None);
}

#[tokio::test]
async fn a_panicking_agent_is_recorded_and_the_dispatcher_survives() {
    let pipeline = pipeline();
    let dispatcher = ActionDispatcher::new(pipeline.clone());
    let panicking = ScriptedAgent::new("fragile", Behaviour::Panic);
    let result = dispatcher
        .dispatch(panicking.as_ref(), "act", json!(1), Map::new(), &[])
        .await;
    assert_eq!(result.status, OutcomeStatus::Failure);
    let error = result.error.unwrap();
    assert_eq!(error.error_type, "panic");
    assert!(error.message.contains("agent blew up"), "{}", error.message);
    // Recorded like an error: with the stack where the agent panicked.
    let recorded = pipeline.get_recent_events(1, Some(OutcomeStatus::Failure), None);
    let stack_trace = recorded[0].stack_trace.as_deref().unwrap_or_default();
    assert!(!stack_trace.is_empty());
    // File names need debug info, which `cargo test` (the dev profile) has.
    if cfg!(debug_assertions) {
        assert!(stack_trace.contains("agents.rs"), "{stack_trace}");
    }

    let healthy = ScriptedAgent::new("healthy", Behaviour::Succeed);
    let after = dispatcher
        .dispatch(healthy.as_ref(), "act", json!(2), Map::new(), &[])
        .await;
    assert_eq!(after.status, OutcomeStatus::Success);
    assert_eq!(
        pipeline
            .get_recent_events(10, Some(OutcomeStatus::Failure), None)
            .len(),
        1
    );
}

/// Dispatches a healthy agent from inside its own action, then panics.
struct PanicsAfterANestedDispatch(Arc<ActionDispatcher>);

#[async_trait::async_trait]
impl Agent for PanicsAfterANestedDispatch {
    fn name(&self) -> &str {
        "outer"
    }

    async fn execute(
        &self,
        _: &Value,
        _: &feedback_pipeline::producer::ActionContext,
    ) -> Result<Value, feedback_pipeline::producer::AgentError> {
        let inner = ScriptedAgent::new("inner", Behaviour::Succeed);
        self.0
            .dispatch(inner.as_ref(), "act", json!(1), Map::new(), &[])
            .await;
        panic!("outer agent blew up");
    }
}

#[tokio::test]
async fn a_panic_after_a_nested_dispatch_keeps_its_backtrace() {
    let pipeline = pipeline();
    let dispatcher = Arc::new(ActionDispatcher::new(pipeline.clone()));
    let outer = PanicsAfterANestedDispatch(dispatcher.clone());
    let result = dispatcher
        .dispatch(&outer, "act", json!(1), Map::new(), &[])
        .await;
    assert_eq!(result.status, OutcomeStatus::Failure);
    let events = pipeline.get_recent_events(10, None, Some("outer"));
    let stack_trace = events[0].stack_trace.as_deref().unwrap_or_default();
    assert!(
        !stack_trace.is_empty(),
        "the inner dispatch cleared the flag"
    );
    if cfg!(debug_assertions) {
        assert!(
            stack_trace.contains("producer_dispatch.rs"),
            "{stack_trace}"
        );
    }
}

#[tokio::test]
async fn timeouts_per_dispatcher_and_per_call() {
    let pipeline = pipeline();
    let dispatcher =
        ActionDispatcher::new(pipeline.clone()).with_timeout(Duration::from_millis(50));
    let slow = ScriptedAgent::new("slow", Behaviour::Sleep(Duration::from_secs(30)));
    let result = dispatcher
        .dispatch(slow.as_ref(), "act", json!({}), Map::new(), &[])
        .await;
    assert_eq!(result.status, OutcomeStatus::Timeout);
    assert_eq!(result.error.unwrap().error_type, "Timeout");

    let quick_enough = ScriptedAgent::new("medium", Behaviour::Sleep(Duration::from_millis(100)));
    let request = ActionRequest::new("act", json!({})).timeout(Duration::from_secs(10));
    let result = dispatcher
        .dispatch_request(quick_enough.as_ref(), request)
        .await;
    assert_eq!(
        result.status,
        OutcomeStatus::Success,
        "the per-call limit overrides"
    );

    let events = pipeline.get_recent_events(10, Some(OutcomeStatus::Timeout), None);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].agent_name, "slow");
    assert_eq!(events[0].severity, EventSeverity::Error);
}

/// Dispatches to `agent` in a task and aborts it once the agent has been called `calls` times.
async fn abort_dispatch_at_call(
    dispatcher: ActionDispatcher,
    agent: Arc<ScriptedAgent>,
    calls: u32,
) {
    let task = {
        let agent = agent.clone();
        tokio::spawn(async move {
            dispatcher
                .dispatch(agent.as_ref(), "act", json!({}), Map::new(), &[])
                .await
        })
    };
    common::wait_until(Duration::from_secs(5), "the agent's call", || async {
        (agent.calls.load(Ordering::SeqCst) == calls).then_some(())
    })
    .await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
}

#[tokio::test]
async fn a_dropped_dispatch_is_recorded_as_cancelled() {
    let pipeline = pipeline();
    let slow = ScriptedAgent::new("slow", Behaviour::Sleep(Duration::from_secs(30)));
    abort_dispatch_at_call(ActionDispatcher::new(pipeline.clone()), slow, 1).await;
    let event = only_event(&pipeline);
    assert_eq!(event.status, OutcomeStatus::Cancelled);
    assert_eq!(event.error_type.as_deref(), Some("Cancelled"));
    assert_eq!(
        event.input_tokens,
        Some(100),
        "usage reported before the cancel is kept"
    );

    // Cancelled while waiting to retry: the retries made so far are on the event.
    let pipeline = self::pipeline();
    let retry = RetryPolicy {
        multiplier: 10_000.0,
        max_backoff: Duration::from_secs(60),
        ..RetryPolicy::retries(5).with_initial_backoff(Duration::from_millis(1))
    };
    let dispatcher = ActionDispatcher::new(pipeline.clone()).with_retry(retry);
    let flaky = ScriptedAgent::new("flaky", Behaviour::FailTimes(10));
    // Aborted once the second attempt has started: one retry made, the next backoff is 10 s.
    abort_dispatch_at_call(dispatcher, flaky, 2).await;
    let event = only_event(&pipeline);
    assert_eq!(event.status, OutcomeStatus::Cancelled);
    assert_eq!(event.retry_count, Some(1));
}

#[tokio::test]
async fn retries_back_off_and_are_counted() {
    let pipeline = pipeline();
    let retry = RetryPolicy::retries(3).with_initial_backoff(Duration::from_millis(1));
    let dispatcher = ActionDispatcher::new(pipeline.clone()).with_retry(retry);
    let flaky = ScriptedAgent::new("flaky", Behaviour::FailTimes(2));
    let result = dispatcher
        .dispatch(flaky.as_ref(), "act", json!({}), Map::new(), &[])
        .await;
    assert_eq!(result.status, OutcomeStatus::Success);
    assert_eq!(result.retry_count, 2);
    let event = only_event(&pipeline);
    assert_eq!(event.retry_count, Some(2));
    assert_eq!(
        event.input_tokens,
        Some(300),
        "usage of every attempt adds up"
    );

    let permanent = ScriptedAgent::new("permanent", Behaviour::FailPermanently);
    let result = dispatcher
        .dispatch(permanent.as_ref(), "act", json!({}), Map::new(), &[])
        .await;
    assert_eq!(
        (result.status, result.retry_count),
        (OutcomeStatus::Failure, 0)
    );
    assert_eq!(permanent.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn hooks_run_around_the_action_and_failing_hooks_do_not_break_it() {
    let pipeline = pipeline();
    let mut dispatcher = ActionDispatcher::new(pipeline.clone());
    let pre_calls = Arc::new(AtomicUsize::new(0));
    let post_durations = Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let pre_calls = pre_calls.clone();
        dispatcher.add_pre_hook(move |args| {
            let pre_calls = pre_calls.clone();
            async move {
                assert_eq!(args.input["task"], "t");
                pre_calls.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
    }
    dispatcher.add_pre_hook(|_| async { Err("pre hook is broken".into()) });
    dispatcher.add_post_hook(|_| async { panic!("post hook panics") });
    {
        let post_durations = post_durations.clone();
        dispatcher.add_post_hook(move |args| {
            let post_durations = post_durations.clone();
            async move {
                assert_eq!(args.event.event_id, args.result.event_id);
                post_durations
                    .lock()
                    .unwrap()
                    .push((args.agent_name, args.event.duration_ms));
                Ok(())
            }
        });
    }
    let agent = ScriptedAgent::new("hooked", Behaviour::Succeed);
    let result = dispatcher
        .dispatch(agent.as_ref(), "act", json!({"task": "t"}), Map::new(), &[])
        .await;
    assert_eq!(result.status, OutcomeStatus::Success);
    assert_eq!(pre_calls.load(Ordering::SeqCst), 1);
    let post = post_durations.lock().unwrap().clone();
    assert_eq!(post.len(), 1);
    assert_eq!(post[0].0, "hooked");
}

#[tokio::test]
async fn privacy_switches_and_the_sanitizer_apply_before_recording() {
    let pipeline = pipeline();
    let secret_output =
        json!({"result": "ok", "ssn": "123-45-6789", "nested": [{"Password": "hunter2"}]});
    let agent = ScriptedAgent::new("sensitive", Behaviour::Output(secret_output.clone()));
    let dispatcher = ActionDispatcher::new(pipeline.clone())
        .capture_input(true)
        .with_sanitizer(RedactFields::new(["ssn", "password"]));
    let input = json!({"user": {"ssn": "987-65-4321", "name": "Ann"}});
    let result = dispatcher
        .dispatch(agent.as_ref(), "act", input, Map::new(), &[])
        .await;
    assert_eq!(
        result.output,
        Some(secret_output),
        "the caller gets the real output"
    );
    let event = only_event(&pipeline);
    let text = serde_json::to_string(&*event).unwrap();
    assert!(
        !text.contains("123-45-6789") && !text.contains("hunter2") && !text.contains("987-65-4321"),
        "{text}"
    );
    assert_eq!(event.output.as_ref().unwrap()["ssn"], REDACTED);
    assert_eq!(
        event.metadata.as_ref().unwrap()["input"]["user"]["name"],
        "Ann"
    );

    let pipeline = self::pipeline();
    let dispatcher = ActionDispatcher::new(pipeline.clone()).capture_output(false);
    let result = dispatcher
        .dispatch(agent.as_ref(), "act", json!({}), Map::new(), &[])
        .await;
    assert!(result.output.is_some());
    let event = only_event(&pipeline);
    assert_eq!(
        (event.output.as_ref(), event.metadata.as_ref()),
        (None, None)
    );
}

#[tokio::test]
async fn partial_work_and_invalid_usage_reports_are_recorded_honestly() {
    let pipeline = pipeline();
    let dispatcher = ActionDispatcher::new(pipeline.clone());
    let agent = ScriptedAgent::new("halfway", Behaviour::Partial);
    let result = dispatcher
        .dispatch(agent.as_ref(), "act", json!({}), Map::new(), &[])
        .await;
    assert_eq!(result.status, OutcomeStatus::Partial);
    assert_eq!(only_event(&pipeline).severity, EventSeverity::Warning);

    let pipeline = self::pipeline();
    let dispatcher = ActionDispatcher::new(pipeline.clone());
    let agent = ScriptedAgent::new("overconfident", Behaviour::BadUsage);
    let result = dispatcher
        .dispatch(agent.as_ref(), "act", json!({}), Map::new(), &[])
        .await;
    assert_eq!(result.status, OutcomeStatus::Success);
    let event = only_event(&pipeline);
    assert_eq!(event.quality_score, None);
    let note = event.metadata.as_ref().unwrap()["invalid_usage_report"]
        .as_str()
        .unwrap();
    assert!(note.contains("quality_score"), "{note}");
}

#[tokio::test]
async fn recent_events_filter_by_count_status_and_agent_and_stay_bounded() {
    let pipeline = Arc::new(
        FeedbackPipeline::new(PipelineOptions {
            recent_capacity: 5,
            ..PipelineOptions::default()
        })
        .unwrap(),
    );
    let dispatcher = ActionDispatcher::new(pipeline.clone());
    let ok = ScriptedAgent::new("ok_agent", Behaviour::Succeed);
    let bad = ScriptedAgent::new("bad_agent", Behaviour::Fail);
    for round in 0..4 {
        dispatcher
            .dispatch(ok.as_ref(), "act", json!(round), Map::new(), &[])
            .await;
        dispatcher
            .dispatch(bad.as_ref(), "act", json!(round), Map::new(), &[])
            .await;
    }
    assert_eq!(pipeline.counters().recorded, 8);
    let all = pipeline.get_recent_events(100, None, None);
    assert_eq!(all.len(), 5, "capacity bounds the buffer");
    assert_eq!(all.last().unwrap().agent_name, "bad_agent", "newest last");
    assert_eq!(pipeline.get_recent_events(2, None, None).len(), 2);
    let failures = pipeline.get_recent_events(10, Some(OutcomeStatus::Failure), None);
    assert!(failures.iter().all(|e| e.status == OutcomeStatus::Failure) && failures.len() == 3);
    let ok_events = pipeline.get_recent_events(10, None, Some("ok_agent"));
    assert_eq!(ok_events.len(), 2);
    assert_eq!(ok_events[1].output, Some(json!({"echo": 3})));
}

fn agents(list: &[(&str, Behaviour)]) -> Vec<Arc<dyn Agent>> {
    list.iter()
        .map(|(name, behaviour)| ScriptedAgent::new(name, behaviour.clone()) as Arc<dyn Agent>)
        .collect()
}

#[tokio::test]
async fn a_sequential_workflow_passes_outputs_along_and_shares_ids() {
    let pipeline = pipeline();
    let orchestrator = OrchestrationDispatcher::new(ActionDispatcher::new(pipeline.clone()));
    let steps = agents(&[
        ("react_agent", Behaviour::Succeed),
        ("evaluator", Behaviour::Succeed),
    ]);
    let result = orchestrator
        .execute_workflow(&steps, "Analyze customer sentiment", &["customer"])
        .await;
    assert_eq!(result.status, OutcomeStatus::Success);
    assert_eq!(result.outputs.len(), 2);
    let second_input = &result.outputs[1].output.as_ref().unwrap()["echo"];
    assert_eq!(second_input["previous_agent"], "react_agent");
    assert_eq!(
        second_input["previous_output"]["echo"]["task"],
        "Analyze customer sentiment"
    );

    let events = pipeline.get_recent_events(100, None, None);
    assert_eq!(events.len(), 3, "one per agent plus the workflow event");
    for event in &events {
        assert_eq!(
            event.workflow_id.as_deref(),
            Some(result.workflow_id.as_str())
        );
        assert_eq!(
            event.correlation_id.as_deref(),
            Some(result.correlation_id.as_str())
        );
    }
    let workflow = events.last().unwrap();
    assert_eq!(
        (workflow.agent_name.as_str(), workflow.action_type.as_str()),
        ("orchestrator", "workflow")
    );
    assert_eq!(workflow.event_id, result.event_id);
    assert!(
        workflow.duration_ms >= result.outputs.iter().map(|o| o.duration_ms).sum::<f64>() * 0.99
    );
    assert_eq!(workflow.metadata.as_ref().unwrap()["steps"], 2);
}

#[tokio::test]
async fn a_failing_step_stops_or_continues_by_policy() {
    let list = [
        ("a", Behaviour::Succeed),
        ("b", Behaviour::Fail),
        ("c", Behaviour::Succeed),
    ];

    let pipeline = pipeline();
    let stop = OrchestrationDispatcher::new(ActionDispatcher::new(pipeline.clone()));
    let result = stop.execute_workflow(&agents(&list), "task", &[]).await;
    assert_eq!(result.status, OutcomeStatus::Failure);
    assert_eq!(result.outputs.len(), 2);
    assert_eq!(result.skipped, vec!["c".to_owned()]);
    let workflow_event = pipeline.get_recent_events(1, None, None)[0].clone();
    assert_eq!(
        workflow_event.error_type.as_deref(),
        Some("WorkflowStepFailed")
    );
    assert_eq!(
        workflow_event.error_message.as_deref(),
        Some("b: Invalid data format")
    );

    // The workflow event quotes the step's error: the sanitizer sees it too.
    let pipeline = self::pipeline();
    let redacting = ActionDispatcher::new(pipeline.clone()).with_sanitizer(
        |event: &mut feedback_pipeline::OutcomeEvent| {
            if event.error_message.is_some() {
                event.error_message = Some("[redacted]".into());
            }
        },
    );
    OrchestrationDispatcher::new(redacting)
        .execute_workflow(&agents(&list), "task", &[])
        .await;
    let events = pipeline.get_recent_events(10, Some(OutcomeStatus::Failure), None);
    let messages: Vec<_> = events.iter().map(|e| e.error_message.as_deref()).collect();
    assert_eq!(messages, [Some("[redacted]"), Some("[redacted]")]);

    let pipeline = self::pipeline();
    let carry_on = OrchestrationDispatcher::new(ActionDispatcher::new(pipeline.clone()))
        .on_step_failure(StepFailurePolicy::Continue);
    let result = carry_on.execute_workflow(&agents(&list), "task", &[]).await;
    assert_eq!(result.status, OutcomeStatus::Partial);
    let statuses: Vec<_> = result.outputs.iter().map(|o| o.status).collect();
    assert_eq!(
        statuses,
        [
            OutcomeStatus::Success,
            OutcomeStatus::Failure,
            OutcomeStatus::Success
        ]
    );
    assert_eq!(
        result.outputs[2].output.as_ref().unwrap()["echo"]["previous_agent"],
        "a"
    );
}

#[tokio::test]
async fn a_parallel_workflow_fans_out_concurrently() {
    let pipeline = pipeline();
    let orchestrator = OrchestrationDispatcher::new(ActionDispatcher::new(pipeline.clone()));
    let sleepers: Vec<(String, Behaviour)> = (0..4)
        .map(|i| {
            (
                format!("worker_{i}"),
                Behaviour::Sleep(Duration::from_millis(300)),
            )
        })
        .collect();
    let list: Vec<(&str, Behaviour)> = sleepers
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let result = orchestrator
        .execute_parallel(&agents(&list), "fan out", &[])
        .await;
    assert_eq!(result.status, OutcomeStatus::Success);
    assert_eq!(result.outputs.len(), 4);
    // Sequentially this would take at least 1.2 s of agent time; the sum of step durations
    // exceeding the workflow's own shows the steps overlapped.
    let step_total: f64 = result.outputs.iter().map(|o| o.duration_ms).sum();
    assert!(
        step_total > result.duration_ms * 1.5,
        "{step_total} vs {}",
        result.duration_ms
    );
    let events = pipeline.get_recent_events(100, None, None);
    assert_eq!(events.len(), 5);
    assert!(
        events
            .iter()
            .all(|e| e.workflow_id.as_deref() == Some(result.workflow_id.as_str()))
    );
}

#[tokio::test]
async fn create_dispatcher_works_with_no_broker() {
    let dispatcher = feedback_pipeline::producer::create_dispatcher(None, false).unwrap();
    let agent = ScriptedAgent::new("factory_agent", Behaviour::Succeed);
    let result = dispatcher
        .dispatch(agent.as_ref(), "act", json!({"q": 1}), Map::new(), &[])
        .await;
    assert_eq!(result.status, OutcomeStatus::Success);
    // Without servers it records into the one process-wide pipeline.
    let shared = feedback_pipeline::producer::get_feedback_pipeline();
    assert!(Arc::ptr_eq(dispatcher.pipeline(), &shared));
    let events = shared.get_recent_events(10, None, Some("factory_agent"));
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].output, None,
        "enable_metrics = false captures no output"
    );
    let _: Value = json!(null);
}
