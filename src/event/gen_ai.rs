//! The mapping of an [`OutcomeEvent`] onto OpenTelemetry GenAI semantic conventions.

use serde_json::Value;

use super::outcome::OutcomeEvent;

impl OutcomeEvent {
    /// The event's OpenTelemetry GenAI attributes (`gen_ai.request.model`,
    /// `gen_ai.provider.name`, `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`,
    /// `gen_ai.agent.name`, `gen_ai.operation.name`, `error.type`); absent fields are left out.
    pub fn gen_ai_attributes(&self) -> Vec<(&'static str, Value)> {
        let mut attributes = vec![
            ("gen_ai.operation.name", Value::from("invoke_agent")),
            ("gen_ai.agent.name", Value::from(self.agent_name.as_str())),
        ];
        let optional = [
            (
                "gen_ai.request.model",
                self.model.as_deref().map(Value::from),
            ),
            (
                "gen_ai.provider.name",
                self.provider.as_deref().map(Value::from),
            ),
            (
                "gen_ai.usage.input_tokens",
                self.input_tokens.map(Value::from),
            ),
            (
                "gen_ai.usage.output_tokens",
                self.output_tokens.map(Value::from),
            ),
            ("error.type", self.error_type.as_deref().map(Value::from)),
        ];
        attributes.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| value.map(|value| (name, value))),
        );
        attributes
    }
}
