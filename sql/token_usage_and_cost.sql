-- Token usage and estimated cost per agent and model, per minute.
SELECT
  agent_name,
  COALESCE(model, 'unknown') AS model,
  COUNT(*) AS executions,
  SUM(tokens_used) AS tokens_used,
  SUM(input_tokens) AS input_tokens,
  SUM(output_tokens) AS output_tokens,
  SUM(cost_estimate) AS cost_usd
FROM agent_outcomes
WINDOW TUMBLING (SIZE 1 MINUTE)
GROUP BY agent_name, COALESCE(model, 'unknown');
