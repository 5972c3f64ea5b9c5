"""Agents for the tests: sync and async, succeeding, failing and slow."""

import asyncio


class EchoAgent:
    name = "echo_agent"
    agent_type = "reasoning"

    async def execute(self, input_data, context):
        await asyncio.sleep(0)
        return {"echo": input_data, "context": context}


class SyncAgent:
    name = "sync_agent"

    def execute(self, input_data, context):
        return {"answer": 42}


class FailingAgent:
    name = "failing_agent"

    async def execute(self, input_data, context):
        raise ValueError("the model returned nothing")


class SlowAgent:
    name = "slow_agent"

    def __init__(self):
        self.cancelled = False

    async def execute(self, input_data, context):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return {}
