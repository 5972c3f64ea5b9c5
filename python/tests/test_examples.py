"""The design documents' four examples, with only their imports changed, run as scripts:
with no broker, and against a real one on localhost:9092 (the address example 1 names)."""

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import Broker, read_topic

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = ["basic_dispatch.py", "multi_agent_workflow.py", "custom_hooks.py", "query_recent_events.py"]


def run_example(script, env, cwd):
    done = subprocess.run([sys.executable, str(EXAMPLES / script)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{script}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def example_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "ENABLE_KAFKA")}
    env.update(SPOOL_DIR=str(tmp_path / "spool"), **extra)
    return env


def test_the_examples_run_with_no_broker(tmp_path):
    env = example_env(tmp_path, KAFKA_PROPERTY_MESSAGE_TIMEOUT_MS="2000")
    out = {script: run_example(script, env, tmp_path) for script in SCRIPTS}
    assert "Status: success" in out["basic_dispatch.py"]
    assert out["multi_agent_workflow.py"].split() == [
        "react_agent:", "success", "evaluator_agent:", "success"]


def port_free(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.skipif(not port_free(9092), reason="something else listens on localhost:9092")
def test_the_examples_publish_to_a_real_broker(tmp_path):
    broker = Broker(tmp_path / "kafka", client_port=9092)
    try:
        topic = f"examples-{uuid.uuid4().hex[:8]}"
        env = example_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS=broker.servers, KAFKA_OUTCOME_TOPIC=topic)
        for script in SCRIPTS:
            run_example(script, env, tmp_path)
        # Example 1's action, and example 2's two steps and workflow event.
        records = read_topic(broker.servers, topic, expected=4)
        agents = sorted(r["agent_name"] for r in records)
        assert agents == ["evaluator_agent", "orchestrator", "react_agent", "react_agent"]
    finally:
        broker.stop()
