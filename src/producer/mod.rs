//! The producer side, linked into the agents' process: agents, the dispatchers that wrap their
//! calls, and the pipeline that carries the resulting events to Kafka.

pub mod agent;
pub mod dispatch;
pub mod orchestration;
pub mod pipeline;

pub use agent::{ActionContext, Agent, AgentError, LlmUsage};
pub use dispatch::{
    ActionDispatcher, ActionRequest, DispatchResult, RedactFields, RedactPatterns, RetryPolicy,
    create_dispatcher,
};
pub use orchestration::{OrchestrationDispatcher, StepFailurePolicy, WorkflowResult};
pub use pipeline::{FeedbackPipeline, PipelineOptions, get_feedback_pipeline};
