//! A fleet of simulated agents that emits plausible outcome events, some slow and some failing.

use chrono::{DateTime, Duration, Utc};

use crate::event::{OutcomeEvent, OutcomeStatus};

/// One simulated agent's character.
#[derive(Debug, Clone)]
pub struct SimulatedAgent {
    /// Agent name (the Kafka key).
    pub name: String,
    /// Agent type.
    pub agent_type: String,
    /// Typical duration, in milliseconds.
    pub base_latency_ms: f64,
    /// Share of calls that fail, 0 to 1.
    pub failure_rate: f64,
}

/// A deterministic generator of events from a fixed fleet (xorshift, so runs are repeatable).
#[derive(Debug, Clone)]
pub struct Fleet {
    agents: Vec<SimulatedAgent>,
    state: u64,
}

impl Fleet {
    /// The default fleet: four agents, one slow and one flaky.
    pub fn standard(seed: u64) -> Self {
        let agent = |name: &str, agent_type: &str, latency: f64, failure: f64| SimulatedAgent {
            name: name.into(),
            agent_type: agent_type.into(),
            base_latency_ms: latency,
            failure_rate: failure,
        };
        Self::new(
            vec![
                agent("react_agent", "reasoning", 250.0, 0.02),
                agent("evaluator_agent", "evaluation", 120.0, 0.05),
                agent("data_processor", "processing", 900.0, 0.25),
                agent("report_writer", "generation", 4800.0, 0.08),
            ],
            seed,
        )
    }

    /// A fleet of the given agents.
    pub fn new(agents: Vec<SimulatedAgent>, seed: u64) -> Self {
        assert!(!agents.is_empty(), "a fleet needs at least one agent");
        Self {
            agents,
            state: seed.max(1),
        }
    }

    /// The next event, stamped at `now`.
    pub fn next_event(&mut self, now: DateTime<Utc>) -> OutcomeEvent {
        let index = (self.next_u64() % self.agents.len() as u64) as usize;
        let jitter = 0.5 + self.next_unit();
        let failed = self.next_unit() < self.agents[index].failure_rate;
        let input_tokens = 50 + self.next_u64() % 400;
        let output_tokens = 20 + self.next_u64() % 200;
        let agent = &self.agents[index];
        let duration_ms = (agent.base_latency_ms * jitter * 10.0).round() / 10.0;
        let start = now - Duration::microseconds((duration_ms * 1000.0) as i64);
        let builder = OutcomeEvent::builder(&agent.name, "process_task")
            .agent_type(&agent.agent_type)
            .span(start, now)
            .llm_latency_ms((duration_ms * 0.8 * 10.0).round() / 10.0)
            .model("gpt-4o-mini", "openai")
            .tokens(input_tokens, output_tokens)
            .cost_estimate((input_tokens + 4 * output_tokens) as f64 * 1.5e-7)
            .tag("simulated");
        let builder = if failed {
            builder
                .error("ValueError", "Invalid data format")
                .status(OutcomeStatus::Failure)
        } else {
            builder
        };
        builder
            .build()
            .expect("simulated events satisfy the contract")
    }

    fn next_u64(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How much faster than their typical latency simulated agents run under the dispatcher,
/// so a demo shows slow agents without waiting seconds per call.
pub const DISPATCH_SPEEDUP: f64 = 10.0;

/// A simulated agent run through [`crate::producer::ActionDispatcher`]: it sleeps for a scaled
/// share of its latency, reports LLM usage and fails at its failure rate. The input's `n`
/// picks the jitter and the outcome, so runs are repeatable.
#[async_trait::async_trait]
impl crate::producer::Agent for SimulatedAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn agent_type(&self) -> &str {
        &self.agent_type
    }

    async fn execute(
        &self,
        input: &serde_json::Value,
        context: &crate::producer::ActionContext,
    ) -> Result<serde_json::Value, crate::producer::AgentError> {
        let n = input["n"].as_u64().unwrap_or(0);
        let latency_ms = self.base_latency_ms * (0.5 + unit(n, 1)) / DISPATCH_SPEEDUP;
        tokio::time::sleep(std::time::Duration::from_secs_f64(latency_ms / 1000.0)).await;
        let input_tokens = 50 + (unit(n, 2) * 400.0) as u64;
        let output_tokens = 20 + (unit(n, 3) * 200.0) as u64;
        context.report_usage(crate::producer::LlmUsage {
            model: Some("gpt-4o-mini".into()),
            provider: Some("openai".into()),
            input_tokens: Some(input_tokens),
            output_tokens: Some(output_tokens),
            llm_latency_ms: Some((latency_ms * 0.8 * 10.0).round() / 10.0),
            cost_estimate: Some((input_tokens + 4 * output_tokens) as f64 * 1.5e-7),
            ..Default::default()
        });
        if unit(n, 4) < self.failure_rate {
            return Err(crate::producer::AgentError::new(
                "ValueError",
                "Invalid data format",
            ));
        }
        Ok(serde_json::json!({ "processed": n }))
    }
}

/// An agent that does nothing and succeeds at once: what the dispatch benchmarks compare a
/// dispatch against.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopAgent;

#[async_trait::async_trait]
impl crate::producer::Agent for NoopAgent {
    fn name(&self) -> &str {
        "noop_agent"
    }

    async fn execute(
        &self,
        _: &serde_json::Value,
        _: &crate::producer::ActionContext,
    ) -> Result<serde_json::Value, crate::producer::AgentError> {
        Ok(serde_json::Value::Null)
    }
}

impl Fleet {
    /// The fleet's agents.
    pub fn agents(&self) -> &[SimulatedAgent] {
        &self.agents
    }
}

/// A repeatable number in [0, 1) from `n` and `salt` (splitmix64).
pub(crate) fn unit(n: u64, salt: u64) -> f64 {
    let mut x = n
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(salt.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}
