from feedback_pipeline import get_feedback_pipeline, OutcomeStatus

pipeline = get_feedback_pipeline()

# Get recent events
recent = pipeline.get_recent_events(count=10)

# Get only failures
failures = pipeline.get_recent_events(
    count=20,
    status=OutcomeStatus.FAILURE
)

# Get events for specific agent
agent_events = pipeline.get_recent_events(
    count=10,
    agent_name="react_agent"
)
