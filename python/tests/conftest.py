"""Fixtures: a real Apache Kafka broker on loopback (scripts/start-kafka.sh), and
environments that keep each test's pipeline to itself."""

import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

# No test spools into the working directory (the default SPOOL_DIR is relative).
os.environ.setdefault("SPOOL_DIR", tempfile.mkdtemp(prefix="feedback-pipeline-spool-"))

REPO = Path(__file__).resolve().parents[2]
START_KAFKA = REPO / "scripts" / "start-kafka.sh"


class Broker:
    """One Kafka node started by scripts/start-kafka.sh under ``directory``."""

    def __init__(self, directory: Path, client_port=None):
        self.directory = directory
        command = ["bash", str(START_KAFKA), "--dir", str(directory), "--watch-pid", str(os.getpid())]
        if client_port:
            command += ["--client-port", str(client_port)]
        printed = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        values = dict(line.split("=", 1) for line in printed.split() if "=" in line)
        self.servers = values["KAFKA_BOOTSTRAP_SERVERS"]

    def stop(self):
        subprocess.run(["bash", str(START_KAFKA), "--dir", str(self.directory), "--stop"], check=True)

    def restart(self):
        subprocess.run(
            ["bash", str(START_KAFKA), "--dir", str(self.directory), "--restart", "1"],
            check=True,
            capture_output=True,
        )


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    """A broker shared by the tests that only publish."""
    started = Broker(tmp_path_factory.mktemp("kafka"))
    yield started
    started.stop()


@pytest.fixture
def topic():
    """A topic name of this test's own (the broker creates topics on first use)."""
    return f"outcomes-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def no_kafka_env(monkeypatch, tmp_path):
    """No broker configured: events stay in memory (and the recent-events buffer)."""
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "ENABLE_KAFKA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.chdir(tmp_path)


def read_topic(servers, topic, expected, timeout=60.0):
    """The JSON records on ``topic``, read until ``expected`` arrived or ``timeout`` passed."""
    import json

    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1000,
    )
    records = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for message in consumer:
                records.append(json.loads(message.value))
    finally:
        consumer.close()
    return records
