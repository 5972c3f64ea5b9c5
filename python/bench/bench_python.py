"""Benchmarks from Python, printed as medians over repeats:

1. dispatch overhead: ``await dispatcher.dispatch(agent, ...)`` against ``await agent.execute(...)``
   called directly (a trivial async agent, Kafka off, so only the dispatcher is measured);
2. events/s published to a real broker: ``FeedbackPipeline.record_outcome`` (+ ``flush``)
   against kafka-python's ``KafkaProducer.send`` of the same JSON (+ ``flush``).

    python bench/bench_python.py [--events 50000] [--dispatches 5000] [--repeats 5]

Starts its own broker (scripts/start-kafka.sh) unless KAFKA_BOOTSTRAP_SERVERS is set.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from feedback_pipeline import ActionDispatcher, FeedbackPipeline, OutcomeEvent

REPO = Path(__file__).resolve().parents[2]


class NoOpAgent:
    name = "bench_agent"

    async def execute(self, input_data, context):
        return {"ok": True}


async def dispatch_overhead(dispatches):
    agent = NoOpAgent()
    pipeline = FeedbackPipeline(enable_kafka=False, enable_logging=False)
    dispatcher = ActionDispatcher(feedback_pipeline=pipeline)
    start = time.perf_counter()
    for _ in range(dispatches):
        await agent.execute({"task": "t"}, {})
    direct = (time.perf_counter() - start) / dispatches
    start = time.perf_counter()
    for _ in range(dispatches):
        await dispatcher.dispatch(agent, "bench", {"task": "t"}, {})
    wrapped = (time.perf_counter() - start) / dispatches
    return direct, wrapped


def events(count):
    return [OutcomeEvent(f"agent_{n % 50}", "act", latency_ms=float(n % 900), tokens_used=n % 5000)
            for n in range(count)]


def ours(servers, batch):
    pipeline = FeedbackPipeline(kafka_servers=servers, kafka_topic=f"bench-{uuid.uuid4().hex[:8]}",
                                spool_dir=tempfile.mkdtemp())
    start = time.perf_counter()
    for event in batch:
        pipeline.record_outcome(event)
    outcome = pipeline.flush(timeout=120)
    elapsed = time.perf_counter() - start
    assert outcome["delivered"], outcome
    pipeline.shutdown()
    return len(batch) / elapsed


def kafka_python(servers, payloads):
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=servers, linger_ms=100, batch_size=65536,
                             compression_type="gzip", acks="all")
    topic = f"bench-kp-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    for key, value in payloads:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=120)
    elapsed = time.perf_counter() - start
    producer.close()
    return len(payloads) / elapsed


def start_broker():
    directory = tempfile.mkdtemp(prefix="bench-kafka-")
    printed = subprocess.run(["bash", str(REPO / "scripts" / "start-kafka.sh"), "--dir", directory,
                              "--watch-pid", str(os.getpid())],
                             check=True, capture_output=True, text=True).stdout
    values = dict(line.split("=", 1) for line in printed.split() if "=" in line)
    return values["KAFKA_BOOTSTRAP_SERVERS"], directory


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--dispatches", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    overheads = [asyncio.run(dispatch_overhead(args.dispatches)) for _ in range(args.repeats)]
    direct = statistics.median(o[0] for o in overheads) * 1e6
    wrapped = statistics.median(o[1] for o in overheads) * 1e6
    print(f"dispatch, median of {args.repeats} x {args.dispatches}: direct {direct:.1f} us, "
          f"dispatcher {wrapped:.1f} us per call, overhead {wrapped - direct:.1f} us "
          f"(x{wrapped / direct:.0f})")
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    directory = None
    if not servers:
        servers, directory = start_broker()
    batch = events(args.events)
    payloads = [(e.agent_name.encode(), e.to_json().encode()) for e in batch]
    ours_rates = [ours(servers, batch) for _ in range(args.repeats)]
    theirs = [kafka_python(servers, payloads) for _ in range(args.repeats)]
    mine, kp = statistics.median(ours_rates), statistics.median(theirs)
    print(f"publish, median of {args.repeats} x {args.events} events: feedback_pipeline "
          f"{mine:,.0f}/s, kafka-python {kp:,.0f}/s, ratio {mine / kp:.1f}x")
    if directory:
        subprocess.run(["bash", str(REPO / "scripts" / "start-kafka.sh"), "--dir", directory, "--stop"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
