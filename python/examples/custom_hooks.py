from feedback_pipeline import create_dispatcher

dispatcher = create_dispatcher()

# Pre-execution hook
async def log_start(agent, input_data, context):
    print(f"Starting {agent.name}")

# Post-execution hook
async def log_completion(agent, result, event):
    print(f"Completed {agent.name} in {event.duration_ms:.2f}ms")

dispatcher.add_pre_hook(log_start)
dispatcher.add_post_hook(log_completion)
