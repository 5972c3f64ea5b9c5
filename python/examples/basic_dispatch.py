import asyncio
from feedback_pipeline import create_dispatcher
from demo_agents import ReactAgent

async def main():
    # Create dispatcher
    dispatcher = create_dispatcher(
        kafka_servers="localhost:9092",
        enable_metrics=True
    )
    
    # Create agent
    agent = ReactAgent()
    
    # Dispatch action
    result = await dispatcher.dispatch(
        agent=agent,
        action_type="reasoning",
        input_data={"query": "What is the weather?"},
        context={},
        tags=["reasoning", "weather"]
    )
    
    print(f"Status: {result['status']}")
    print(f"Duration: {result['duration_ms']:.2f}ms")
    print(f"Event ID: {result['event_id']}")

asyncio.run(main())
