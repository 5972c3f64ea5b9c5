"""Outcome tracking for AI agent actions, over the feedback-pipeline Rust core.

Every action an agent takes becomes one ``OutcomeEvent`` (validated by the same contract as
the Rust crate) that ``FeedbackPipeline`` publishes to Kafka without blocking the agent:
batching, compression, a disk spool during an outage and its replay are the Rust core's.
``ActionDispatcher`` wraps agent calls (sync or async ``execute``) with timing, error capture,
timeouts, retries, hooks and redaction; ``OrchestrationDispatcher`` runs workflows.
Configuration comes from the same environment variables (``KAFKA_BOOTSTRAP_SERVERS``,
``ENABLE_KAFKA``, ``KAFKA_OUTCOME_TOPIC``, ``SPOOL_DIR``, ...).
"""

import atexit
from enum import Enum

from typing import Any, Dict, List, Optional

from . import _core
from ._core import (
    ConfigError,
    EventError,
    FeedbackPipeline,
    OutcomeEvent,
    get_feedback_pipeline,
    shutdown_all,
)


class OutcomeStatus(str, Enum):
    """How an agent action ended; compares equal to its lowercase name."""

    SUCCESS = "success"
    FAILURE = "failure"
    PARTIAL = "partial"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    PENDING = "pending"

    def __str__(self) -> str:
        return self.value


class EventSeverity(str, Enum):
    """How serious an outcome is; compares equal to its lowercase name."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    def __str__(self) -> str:
        return self.value


class ActionDispatcher(_core.ActionDispatcher):
    """Wraps agent calls with outcome tracking: timing, errors with their traceback, timeouts,
    retries, hooks and redaction; one event per dispatch.

    ``ActionDispatcher(feedback_pipeline=None, enable_metrics=True, timeout=None,
    max_retries=0, retry_backoff=0.1, capture_input=False, redact_fields=None,
    redact_secrets=False)``: events go to ``feedback_pipeline`` (default: the process-wide
    one); ``enable_metrics=False`` records neither input nor output.
    """

    async def dispatch(
        self,
        agent: Any,
        action_type: str,
        input_data: Optional[Dict[str, Any]] = None,
        context: Optional[Dict[str, Any]] = None,
        tags: Optional[List[str]] = None,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Runs ``agent.execute(input_data, context)`` (sync or async) as ``action_type`` and
        records its outcome. Returns ``status``, ``output``, ``error``, ``error_type``,
        ``event_id``, ``run_id``, ``duration_ms`` and ``retry_count``; the agent's exceptions
        are in the result and the event, never raised. ``timeout`` (seconds) overrides the
        dispatcher's; a timed-out coroutine is cancelled."""
        return await self._dispatch(agent, action_type, input_data, context, tags, timeout)


class OrchestrationDispatcher(_core.OrchestrationDispatcher):
    """Runs agents as a workflow: one workflow id and correlation id on every event, and a
    workflow-level event (agent ``orchestrator``) with its completion time.

    ``OrchestrationDispatcher(dispatcher=None, continue_on_failure=False)``: the steps go
    through ``dispatcher`` (its pipeline, settings and hooks).
    """

    async def execute_workflow(
        self, agents: List[Any], task: str, tags: Optional[List[str]] = None
    ) -> Dict[str, Any]:
        """Runs ``agents`` one after another on ``task``, each seeing the previous output
        (``previous_output`` in its input). Returns ``workflow_id``, ``status``, ``outputs``
        (per agent: ``agent``, ``status``, ``event_id``, ``output``, ``error``,
        ``duration_ms``), ``skipped``, ``duration_ms`` and ``event_id``."""
        return await self._execute_workflow(agents, task, tags)

    async def execute_parallel(
        self, agents: List[Any], task: str, tags: Optional[List[str]] = None
    ) -> Dict[str, Any]:
        """Runs ``agents`` concurrently on the same ``task`` and waits for all of them."""
        return await self._execute_parallel(agents, task, tags)


def create_dispatcher(kafka_servers: Optional[str] = None, enable_metrics: bool = True) -> ActionDispatcher:
    """A dispatcher as the design documents create it: with ``kafka_servers``, recording into a
    pipeline of its own publishing there (other settings from the environment); without, into
    the process-wide one. ``enable_metrics=False`` records neither input nor output."""
    pipeline = FeedbackPipeline(kafka_servers=kafka_servers) if kafka_servers else None
    return ActionDispatcher(feedback_pipeline=pipeline, enable_metrics=enable_metrics)


# Statics are never dropped: flush every pipeline (the rest goes to the spool) at exit.
atexit.register(shutdown_all)

__all__ = [
    "ActionDispatcher",
    "ConfigError",
    "EventError",
    "EventSeverity",
    "FeedbackPipeline",
    "OrchestrationDispatcher",
    "OutcomeEvent",
    "OutcomeStatus",
    "create_dispatcher",
    "get_feedback_pipeline",
    "shutdown_all",
]
