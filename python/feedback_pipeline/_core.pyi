"""Type stubs of the Rust extension; the package ``feedback_pipeline`` wraps the dispatchers' awaitables in coroutines (``dispatch``, ``execute_workflow``, ``execute_parallel``)."""

from os import PathLike
from typing import Any, Awaitable, Dict, Generator, List, Optional, Protocol, Union

from . import EventSeverity, OutcomeStatus

class EventError(ValueError):
    """An event breaks the contract; the message names the field."""

class ConfigError(ValueError):
    """A configuration variable is invalid; the message names it and the fix."""

class Agent(Protocol):
    """What the dispatchers run: a ``name`` (else the class name is used), an optional
    ``agent_type``, and ``execute`` returning a JSON-like result, sync or async."""

    name: str
    def execute(self, input_data: Dict[str, Any], context: Dict[str, Any]) -> Any: ...

class OutcomeEvent:
    """One agent action's outcome; any contract field may be given by keyword."""

    event_id: str
    run_id: str
    agent_name: str
    agent_type: Optional[str]
    action_type: str
    timestamp: str
    start_time: Optional[str]
    end_time: Optional[str]
    duration_ms: float
    latency_ms: float
    status: OutcomeStatus
    severity: EventSeverity
    error_message: Optional[str]
    error_type: Optional[str]
    stack_trace: Optional[str]
    retry_count: Optional[int]
    llm_latency_ms: Optional[float]
    tokens_used: Optional[int]
    input_tokens: Optional[int]
    output_tokens: Optional[int]
    memory_used_mb: Optional[float]
    cpu_time_ms: Optional[float]
    model: Optional[str]
    provider: Optional[str]
    cost_estimate: Optional[float]
    quality_score: Optional[float]
    confidence_score: Optional[float]
    correlation_id: Optional[str]
    workflow_id: Optional[str]
    tags: Optional[List[str]]
    metadata: Optional[Dict[str, Any]]
    output: Optional[Any]
    output_truncated: Optional[bool]
    output_original_bytes: Optional[int]
    def __init__(self, agent_name: str, action_type: str, **fields: Any) -> None: ...
    @staticmethod
    def from_json(text: str) -> OutcomeEvent: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...

class Recorded:
    """Returned by ``record_outcome``: already recorded; awaiting it gives the event."""

    event: OutcomeEvent
    def __await__(self) -> Generator[Any, None, OutcomeEvent]: ...

class FeedbackPipeline:
    """Collects outcome events and publishes them to Kafka without blocking the caller."""

    def __init__(
        self,
        kafka_servers: Optional[str] = None,
        kafka_topic: Optional[str] = None,
        enable_kafka: Optional[bool] = None,
        enable_logging: Optional[bool] = None,
        spool_dir: Optional[Union[str, PathLike[str]]] = None,
    ) -> None: ...
    def record_outcome(self, event: OutcomeEvent) -> Recorded: ...
    def get_recent_events(
        self,
        count: int = 10,
        status: Optional[Union[OutcomeStatus, str]] = None,
        agent_name: Optional[str] = None,
    ) -> List[OutcomeEvent]: ...
    def get_metrics(self) -> Dict[str, int]: ...
    def flush(self, timeout: float = 10.0) -> Dict[str, Any]: ...
    def shutdown(self, timeout: float = 10.0) -> Dict[str, Any]: ...

class ActionDispatcher:
    """Wraps agent calls with outcome tracking: one event per dispatch."""

    feedback_pipeline: FeedbackPipeline
    def __init__(
        self,
        feedback_pipeline: Optional[FeedbackPipeline] = None,
        enable_metrics: bool = True,
        timeout: Optional[float] = None,
        max_retries: int = 0,
        retry_backoff: float = 0.1,
        capture_input: bool = False,
        redact_fields: Optional[List[str]] = None,
        redact_secrets: bool = False,
    ) -> None: ...
    def add_pre_hook(self, hook: Any) -> None: ...
    def add_post_hook(self, hook: Any) -> None: ...
    def _dispatch(
        self,
        agent: Agent,
        action_type: str,
        input_data: Optional[Dict[str, Any]] = None,
        context: Optional[Dict[str, Any]] = None,
        tags: Optional[List[str]] = None,
        timeout: Optional[float] = None,
    ) -> Awaitable[Dict[str, Any]]: ...

class OrchestrationDispatcher:
    """Runs agents as a workflow sharing one workflow id."""

    def __init__(
        self, dispatcher: Optional[ActionDispatcher] = None, continue_on_failure: bool = False
    ) -> None: ...
    def _execute_workflow(
        self, agents: List[Agent], task: str, tags: Optional[List[str]] = None
    ) -> Awaitable[Dict[str, Any]]: ...
    def _execute_parallel(
        self, agents: List[Agent], task: str, tags: Optional[List[str]] = None
    ) -> Awaitable[Dict[str, Any]]: ...

def get_feedback_pipeline() -> FeedbackPipeline: ...
def shutdown_all(timeout: float = 5.0) -> None: ...
