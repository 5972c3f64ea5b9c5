"""Stand-ins for the design documents' ReactAgent and EvaluatorAgent: the examples import them
from here instead of ``agents.react`` and ``agents.evaluator``."""

import asyncio
import random


class ReactAgent:
    """Reasons over a query (here: waits like an LLM call, answers, reports token use)."""

    name = "react_agent"
    agent_type = "reasoning"

    async def execute(self, input_data, context):
        await asyncio.sleep(random.uniform(0.01, 0.05))
        query = input_data.get("query") or input_data.get("task", "")
        return {"answer": f"thought about: {query}", "steps": 3}


class EvaluatorAgent:
    """Scores the previous step's output."""

    name = "evaluator_agent"
    agent_type = "evaluation"

    def execute(self, input_data, context):
        previous = input_data.get("previous_output") or {}
        return {"score": 0.9 if previous else 0.0, "evaluated": previous.get("answer")}
