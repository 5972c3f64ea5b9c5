//! Running an agent's action once or with retries: timing out, catching panics.

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::Value;

use crate::producer::agent::{ActionContext, Agent, AgentError};

use super::retry::RetryPolicy;

/// How the last attempt ended.
pub(crate) enum Attempt {
    /// The agent returned a value.
    Succeeded(Value),
    /// The agent returned an error.
    Failed(AgentError),
    /// The agent panicked: the panic message, and the backtrace taken where it panicked
    /// (`None` if another panic hook replaced ours).
    Panicked(String, Option<String>),
    /// The attempt exceeded its time limit.
    TimedOut(Duration),
}

impl Attempt {
    fn retryable(&self) -> bool {
        match self {
            Self::Failed(error) => error.is_retryable(),
            Self::TimedOut(_) => true,
            Self::Succeeded(_) | Self::Panicked(..) => false,
        }
    }
}

/// Runs the action, retrying per `retry`; returns the last attempt. `retries` counts the
/// retries made, readable even if this future is dropped halfway (a cancelled dispatch
/// reports them too).
pub(crate) async fn run_with_retries(
    agent: &dyn Agent,
    input: &Value,
    context: &ActionContext,
    timeout: Option<Duration>,
    retry: &RetryPolicy,
    retries: &AtomicU32,
) -> Attempt {
    loop {
        let attempt = run_once(agent, input, context, timeout).await;
        let made = retries.load(Ordering::Relaxed);
        if made >= retry.max_retries || !attempt.retryable() {
            return attempt;
        }
        tokio::time::sleep(retry.backoff(made + 1)).await;
        // Counted once it starts: a dispatch cancelled during the backoff did not retry.
        retries.store(made + 1, Ordering::Relaxed);
    }
}

async fn run_once(
    agent: &dyn Agent,
    input: &Value,
    context: &ActionContext,
    timeout: Option<Duration>,
) -> Attempt {
    // A panic stays inside this task: the dispatcher and its caller carry on.
    let guarded = CatchPanic(agent.execute(input, context));
    let outcome = match timeout {
        Some(limit) => match tokio::time::timeout(limit, guarded).await {
            Ok(outcome) => outcome,
            Err(_) => return Attempt::TimedOut(limit),
        },
        None => guarded.await,
    };
    match outcome {
        Ok(Ok(value)) => Attempt::Succeeded(value),
        Ok(Err(error)) => Attempt::Failed(error),
        Err((message, backtrace)) => Attempt::Panicked(message, backtrace),
    }
}

thread_local! {
    /// Set while an agent's future is polled on this thread: the panic hook then keeps a
    /// backtrace for the dispatcher. Other panics in the process are left alone.
    static POLLING_AGENT: Cell<bool> = const { Cell::new(false) };
    static AGENT_PANIC_BACKTRACE: RefCell<Option<Backtrace>> = const { RefCell::new(None) };
}

/// Installs, once per process, a panic hook that takes a backtrace when an agent panics and
/// then calls the hook it replaced. `catch_unwind` only sees the payload: the stack where the
/// panic happened is gone by the time it returns.
fn install_panic_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if POLLING_AGENT.get() {
                AGENT_PANIC_BACKTRACE.set(Some(Backtrace::force_capture()));
            }
            previous(info);
        }));
    });
}

/// The future of an agent's `execute`.
type AgentFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, AgentError>> + Send + 'a>>;

/// An agent's future with its panics caught: `Err((message, backtrace))`.
struct CatchPanic<'a>(AgentFuture<'a>);

impl Future for CatchPanic<'_> {
    type Output = Result<Result<Value, AgentError>, (String, Option<String>)>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        install_panic_hook();
        // Per poll, not per call: a multi-threaded runtime may poll each time on another thread.
        // An agent may dispatch another inside its own poll: the inner poll restores the flag.
        let nested = POLLING_AGENT.replace(true);
        if !nested {
            AGENT_PANIC_BACKTRACE.set(None);
        }
        let polled = panic::catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx)));
        POLLING_AGENT.set(nested);
        match polled {
            Ok(poll) => poll.map(Ok),
            Err(payload) => {
                let backtrace = AGENT_PANIC_BACKTRACE.take().map(|trace| trace.to_string());
                Poll::Ready(Err((panic_message(payload.as_ref()), backtrace)))
            }
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}
