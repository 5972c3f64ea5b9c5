"""The seed's fourteen behaviours, from Python over the Rust core, plus a broker outage that
loses nothing."""

import asyncio
import json
import time

import pytest

from agents import EchoAgent, FailingAgent, SlowAgent, SyncAgent
from conftest import Broker, read_topic
from feedback_pipeline import (
    ActionDispatcher,
    EventError,
    EventSeverity,
    FeedbackPipeline,
    OrchestrationDispatcher,
    OutcomeEvent,
    OutcomeStatus,
    create_dispatcher,
    get_feedback_pipeline,
)


def memory_pipeline():
    return FeedbackPipeline(enable_kafka=False)


def test_outcome_event_creation():
    event = OutcomeEvent("react_agent", "reasoning", status=OutcomeStatus.FAILURE, latency_ms=12.5,
                         tokens_used=300, tags=["a", "b"], error_type="ValueError")
    assert event.agent_name == "react_agent"
    assert event.status is OutcomeStatus.FAILURE
    assert event.severity is EventSeverity.INFO
    assert event.latency_ms == 12.5 and event.tokens_used == 300
    assert event.workflow_id is None
    assert len(event.event_id) == 36 and event.run_id
    with pytest.raises(EventError, match="latency_ms"):
        OutcomeEvent("a", "b", latency_ms=-1.0)
    with pytest.raises(EventError, match="status"):
        OutcomeEvent("a", "b", status="exploded")
    with pytest.raises(EventError, match="colour"):
        OutcomeEvent("a", "b", colour="red")


def test_outcome_event_to_dict():
    event = OutcomeEvent("a", "act", output={"rows": [1, 2]}, tags=["x"])
    data = event.to_dict()
    assert data["agent_name"] == "a" and data["status"] == "success"
    assert data["output"] == {"rows": [1, 2]} and data["tags"] == ["x"]
    assert "error_message" not in data


def test_outcome_event_to_json():
    event = OutcomeEvent("a", "act", duration_ms=3.0)
    text = event.to_json()
    assert json.loads(text)["duration_ms"] == 3.0
    assert OutcomeEvent.from_json(text) == event
    with pytest.raises(EventError):
        OutcomeEvent.from_json('{"agent_name": 1}')


def test_feedback_pipeline_record_outcome():
    pipeline = memory_pipeline()
    event = OutcomeEvent("a", "act")
    recorded = asyncio.run(_await(pipeline.record_outcome(event)))
    assert recorded.event_id == event.event_id
    # From sync code: recorded at once, nothing to await.
    pipeline.record_outcome(OutcomeEvent("a", "act"))
    assert pipeline.get_metrics()["recorded"] == 2


async def _await(awaitable):
    return await awaitable


def test_feedback_pipeline_get_recent_events():
    pipeline = memory_pipeline()
    for n in range(5):
        status = OutcomeStatus.FAILURE if n % 2 else OutcomeStatus.SUCCESS
        pipeline.record_outcome(OutcomeEvent(f"agent_{n % 2}", "act", status=status))
    assert len(pipeline.get_recent_events(count=10)) == 5
    assert len(pipeline.get_recent_events(count=3)) == 3
    failures = pipeline.get_recent_events(count=10, status=OutcomeStatus.FAILURE)
    assert [e.status for e in failures] == [OutcomeStatus.FAILURE] * 2
    assert len(pipeline.get_recent_events(count=10, agent_name="agent_0")) == 3


def test_feedback_pipeline_metrics():
    pipeline = memory_pipeline()
    pipeline.record_outcome(OutcomeEvent("a", "act"))
    metrics = pipeline.get_metrics()
    assert metrics["recorded"] == 1
    assert metrics["published"] == 0 and metrics["dropped"] == 0


def test_action_dispatcher_success():
    pipeline = memory_pipeline()
    dispatcher = ActionDispatcher(feedback_pipeline=pipeline)
    for agent in (EchoAgent(), SyncAgent()):
        result = asyncio.run(dispatcher.dispatch(agent, "process", {"task": "t"}, {"k": "v"}))
        assert result["status"] == "success", result
        assert result["duration_ms"] > 0 and result["event_id"] and result["run_id"]
    echo, sync = pipeline.get_recent_events(count=2)
    assert echo.agent_name == "echo_agent" and echo.agent_type == "reasoning"
    assert echo.output == {"echo": {"task": "t"}, "context": {"k": "v"}}
    assert sync.output == {"answer": 42} and sync.agent_type == "generic"


def test_action_dispatcher_failure():
    pipeline = memory_pipeline()
    dispatcher = ActionDispatcher(feedback_pipeline=pipeline, timeout=0.2, max_retries=1,
                                  retry_backoff=0.01)
    result = asyncio.run(dispatcher.dispatch(FailingAgent(), "process"))
    assert result["status"] == "failure" and result["error_type"] == "ValueError"
    assert result["retry_count"] == 1
    event = pipeline.get_recent_events(count=1)[0]
    assert event.error_message == "the model returned nothing"
    assert "in execute" in event.stack_trace and "ValueError" in event.stack_trace
    slow = SlowAgent()

    async def time_out():
        result = await dispatcher.dispatch(slow, "process")
        await asyncio.sleep(0.2)  # the loop runs the cancellation
        return result, slow.cancelled

    timed_out, cancelled = asyncio.run(time_out())
    assert timed_out["status"] == "timeout"
    assert cancelled, "the timed-out coroutine is cancelled, not left running"


def test_action_dispatcher_with_tags():
    pipeline = memory_pipeline()
    dispatcher = ActionDispatcher(feedback_pipeline=pipeline, redact_fields=["password"])
    asyncio.run(dispatcher.dispatch(EchoAgent(), "process", {"password": "hunter2"},
                                    tags=["analysis", "priority-high"]))
    event = pipeline.get_recent_events(count=1)[0]
    assert event.tags == ["analysis", "priority-high"]
    assert "hunter2" not in event.to_json()


def test_action_dispatcher_hooks():
    pipeline = memory_pipeline()
    dispatcher = ActionDispatcher(feedback_pipeline=pipeline)
    seen = []

    async def log_start(agent, input_data, context):
        seen.append(("pre", agent.name, input_data))

    def log_completion(agent, result, event):
        seen.append(("post", agent.name, result["status"], event.duration_ms > 0))

    async def broken(agent, result, event):
        raise RuntimeError("a hook bug")

    dispatcher.add_pre_hook(log_start)
    dispatcher.add_post_hook(broken)
    dispatcher.add_post_hook(log_completion)
    result = asyncio.run(dispatcher.dispatch(EchoAgent(), "process", {"q": 1}))
    assert result["status"] == "success"
    assert seen == [("pre", "echo_agent", {"q": 1}), ("post", "echo_agent", "success", True)]


def test_orchestration_dispatcher_workflow():
    pipeline = memory_pipeline()
    orchestrator = OrchestrationDispatcher(ActionDispatcher(feedback_pipeline=pipeline))
    result = asyncio.run(orchestrator.execute_workflow([EchoAgent(), SyncAgent()], "Analyze",
                                                       tags=["customer"]))
    assert result["status"] == "success"
    assert [o["agent"] for o in result["outputs"]] == ["echo_agent", "sync_agent"]
    events = pipeline.get_recent_events(count=3)
    assert {e.workflow_id for e in events} == {result["workflow_id"]}


def test_orchestration_dispatcher_workflow_failure():
    orchestrator = OrchestrationDispatcher(ActionDispatcher(feedback_pipeline=memory_pipeline()))
    result = asyncio.run(orchestrator.execute_workflow([FailingAgent(), EchoAgent()], "t"))
    assert result["status"] == "failure"
    assert result["outputs"][0]["status"] == "failure"
    assert result["skipped"] == ["echo_agent"]


def test_end_to_end_workflow(broker, topic):
    pipeline = FeedbackPipeline(kafka_servers=broker.servers, kafka_topic=topic)
    orchestrator = OrchestrationDispatcher(ActionDispatcher(feedback_pipeline=pipeline))
    result = asyncio.run(orchestrator.execute_workflow([EchoAgent(), SyncAgent()], "t"))
    assert pipeline.flush(timeout=30)["delivered"]
    records = read_topic(broker.servers, topic, expected=3)
    assert {r["workflow_id"] for r in records} == {result["workflow_id"]}
    assert sorted(r["agent_name"] for r in records) == ["echo_agent", "orchestrator", "sync_agent"]


def test_factory_function(no_kafka_env):
    dispatcher = create_dispatcher(enable_metrics=False)
    assert isinstance(dispatcher, ActionDispatcher)
    asyncio.run(dispatcher.dispatch(EchoAgent(), "process", {"secret": "s"}))
    event = get_feedback_pipeline().get_recent_events(count=1)[0]
    assert event.output is None, "enable_metrics=False records no output"


def test_an_outage_loses_nothing(tmp_path, topic):
    outage = Broker(tmp_path / "kafka")
    try:
        pipeline = FeedbackPipeline(kafka_servers=outage.servers, kafka_topic=topic,
                                    spool_dir=tmp_path / "spool")
        pipeline.record_outcome(OutcomeEvent("a", "before"))
        assert pipeline.flush(timeout=30)["delivered"]
        outage.stop()
        ids = {pipeline.record_outcome(OutcomeEvent("a", "during")).event.event_id
               for _ in range(200)}
        assert pipeline.flush(timeout=2)["spool_pending"] == 200
        outage.restart()
        deadline = time.monotonic() + 90
        while pipeline.get_metrics()["spool_pending"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pipeline.get_metrics()["spool_pending"] == 0, pipeline.get_metrics()
        records = read_topic(outage.servers, topic, expected=201)
        assert {r["event_id"] for r in records if r["action_type"] == "during"} == ids
        assert pipeline.get_metrics()["dropped"] == 0
    finally:
        outage.stop()
