import asyncio
from feedback_pipeline import OrchestrationDispatcher
from demo_agents import ReactAgent
from demo_agents import EvaluatorAgent

async def main():
    orchestrator = OrchestrationDispatcher()
    
    result = await orchestrator.execute_workflow(
        agents=[ReactAgent(), EvaluatorAgent()],
        task="Analyze customer sentiment",
        tags=["customer", "sentiment"]
    )
    
    for output in result['outputs']:
        print(f"{output['agent']}: {output['status']}")

asyncio.run(main())
