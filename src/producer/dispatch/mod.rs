//! Dispatching agent actions: [`ActionDispatcher`] runs an action with its timeout, retries
//! and hooks and records exactly one outcome event for it.

mod attempt;
mod dispatcher;
mod ending;
mod hooks;
mod record;
mod request;
mod retry;
mod sanitize;

pub use dispatcher::{ActionDispatcher, create_dispatcher};
pub use hooks::{HookError, PostHookArgs, PreHookArgs};
pub use request::{ActionRequest, DispatchError, DispatchResult};
pub use retry::RetryPolicy;
pub use sanitize::{COMMON_SECRET_PATTERNS, REDACTED, RedactFields, RedactPatterns, Sanitizer};
