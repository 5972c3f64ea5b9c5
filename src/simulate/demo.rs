//! The demo schedule of `run`: the simulated fleet is healthy except for one agent, which
//! fails in bursts and then turns slow on a schedule, so that `AgentFailureRateHigh`,
//! `OverallFailureRateHigh` and `SlowExecutions` each fire and resolve within the first
//! minutes of a run.

use std::ops::Range;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::fleet::{DISPATCH_SPEEDUP, SimulatedAgent, unit};
use crate::producer::{ActionContext, Agent, AgentError, LlmUsage};

/// Failure share of a healthy agent: well under the rules' 10 %.
const HEALTHY_FAILURE_RATE: f64 = 0.02;
/// Failure share of the degraded agent during its burst: one agent of four failing this often
/// takes the whole fleet over 10 % too.
const BURST_FAILURE_RATE: f64 = 0.9;
/// How long each call of the degraded agent takes during its slow spell (the rule says 5 s).
const SLOW_SPELL_LATENCY: Duration = Duration::from_millis(6_000);

/// What the degraded agent does when.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSchedule {
    /// The agent that degrades.
    pub agent: String,
    /// Time since the start during which it fails.
    pub burst: Range<Duration>,
    /// Time since the start during which it is slow.
    pub slow: Range<Duration>,
}

/// How an agent behaves at some moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Its usual latency, rarely failing.
    Healthy,
    /// Failing most calls.
    Failing,
    /// Every call slower than the slow-execution threshold.
    Slow,
}

impl DemoSchedule {
    /// `data_processor` fails from 20 s to 80 s after the start and is slow from 80 s to 140 s;
    /// `speed` divides those times (a test runs the schedule faster with shorter windows).
    pub fn standard(speed: f64) -> Self {
        let at = |seconds: f64| Duration::from_secs_f64(seconds / speed.max(0.001));
        Self {
            agent: "data_processor".into(),
            burst: at(20.0)..at(80.0),
            slow: at(80.0)..at(140.0),
        }
    }

    /// How `agent` behaves `elapsed` after the start.
    pub fn phase(&self, agent: &str, elapsed: Duration) -> Phase {
        if agent != self.agent {
            Phase::Healthy
        } else if self.burst.contains(&elapsed) {
            Phase::Failing
        } else if self.slow.contains(&elapsed) {
            Phase::Slow
        } else {
            Phase::Healthy
        }
    }
}

/// A simulated agent following a [`DemoSchedule`] from `started`.
#[derive(Debug, Clone)]
pub struct DemoAgent {
    /// The agent's name, type and usual latency.
    pub agent: SimulatedAgent,
    /// The schedule.
    pub schedule: std::sync::Arc<DemoSchedule>,
    /// When the run started.
    pub started: Instant,
}

#[async_trait::async_trait]
impl Agent for DemoAgent {
    fn name(&self) -> &str {
        &self.agent.name
    }

    fn agent_type(&self) -> &str {
        &self.agent.agent_type
    }

    async fn execute(&self, input: &Value, context: &ActionContext) -> Result<Value, AgentError> {
        let n = input["n"].as_u64().unwrap_or(0);
        let phase = self
            .schedule
            .phase(&self.agent.name, self.started.elapsed());
        let latency = match phase {
            Phase::Slow => SLOW_SPELL_LATENCY,
            _ => {
                let ms = self.agent.base_latency_ms * (0.5 + unit(n, 1)) / DISPATCH_SPEEDUP;
                Duration::from_secs_f64(ms / 1000.0)
            }
        };
        tokio::time::sleep(latency).await;
        report_usage(n, latency, context);
        let failure_rate = match phase {
            Phase::Failing => BURST_FAILURE_RATE,
            _ => HEALTHY_FAILURE_RATE.min(self.agent.failure_rate),
        };
        if unit(n, 4) < failure_rate {
            return Err(AgentError::new("ValueError", "Invalid data format"));
        }
        Ok(json!({ "processed": n }))
    }
}

/// The LLM usage of call `n`, as the plain simulated agents report it.
fn report_usage(n: u64, latency: Duration, context: &ActionContext) {
    let input_tokens = 50 + (unit(n, 2) * 400.0) as u64;
    let output_tokens = 20 + (unit(n, 3) * 200.0) as u64;
    context.report_usage(LlmUsage {
        model: Some("gpt-4o-mini".into()),
        provider: Some("openai".into()),
        input_tokens: Some(input_tokens),
        output_tokens: Some(output_tokens),
        llm_latency_ms: Some((latency.as_secs_f64() * 800.0 * 10.0).round() / 10.0),
        cost_estimate: Some((input_tokens + 4 * output_tokens) as f64 * 1.5e-7),
        ..Default::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_agent_fails_then_turns_slow_then_recovers() {
        let schedule = DemoSchedule::standard(1.0);
        let at = Duration::from_secs;
        assert_eq!(schedule.phase("data_processor", at(10)), Phase::Healthy);
        assert_eq!(schedule.phase("data_processor", at(30)), Phase::Failing);
        assert_eq!(schedule.phase("react_agent", at(30)), Phase::Healthy);
        assert_eq!(schedule.phase("data_processor", at(100)), Phase::Slow);
        assert_eq!(schedule.phase("data_processor", at(200)), Phase::Healthy);
        let fast = DemoSchedule::standard(10.0);
        assert_eq!(fast.phase("data_processor", at(3)), Phase::Failing);
    }
}
