//! Pre- and post-execution hooks: async callbacks around every dispatch.
//!
//! A hook that fails or panics is logged and otherwise ignored: it never breaks the dispatch.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use crate::event::OutcomeEvent;
use crate::producer::agent::ActionContext;

use super::request::DispatchResult;

/// A hook's error; any error type converts into it.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// What a pre-execution hook sees.
#[derive(Debug, Clone)]
pub struct PreHookArgs {
    /// The agent's name.
    pub agent_name: String,
    /// The agent's type.
    pub agent_type: String,
    /// The action about to run.
    pub action_type: String,
    /// The action's input.
    pub input: Arc<Value>,
    /// The action's context.
    pub context: ActionContext,
}

/// What a post-execution hook sees.
#[derive(Debug, Clone)]
pub struct PostHookArgs {
    /// The agent's name.
    pub agent_name: String,
    /// The agent's type.
    pub agent_type: String,
    /// What the dispatch returns to its caller.
    pub result: Arc<DispatchResult>,
    /// The recorded event.
    pub event: Arc<OutcomeEvent>,
}

pub(crate) type PreHook =
    Arc<dyn Fn(PreHookArgs) -> BoxFuture<'static, Result<(), HookError>> + Send + Sync>;
pub(crate) type PostHook =
    Arc<dyn Fn(PostHookArgs) -> BoxFuture<'static, Result<(), HookError>> + Send + Sync>;

/// Boxes an async closure into a stored hook.
pub(crate) fn boxed<A, F, Fut>(
    hook: F,
) -> Arc<dyn Fn(A) -> BoxFuture<'static, Result<(), HookError>> + Send + Sync>
where
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HookError>> + Send + 'static,
{
    Arc::new(move |args| hook(args).boxed())
}

/// Runs one hook, logging (never propagating) an error or a panic.
pub(crate) async fn run_hook(
    kind: &'static str,
    agent_name: &str,
    hook: BoxFuture<'static, Result<(), HookError>>,
) {
    match AssertUnwindSafe(hook).catch_unwind().await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(hook = kind, agent_name, %error, "hook failed; dispatch continues")
        }
        Err(_) => tracing::error!(hook = kind, agent_name, "hook panicked; dispatch continues"),
    }
}
