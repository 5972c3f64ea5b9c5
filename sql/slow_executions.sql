-- Executions slower than 5000 ms per agent, per minute (alert: slow executions).
SELECT
  agent_name,
  COALESCE(agent_type, 'unknown') AS agent_type,
  COUNT_IF(latency_ms > 5000) AS slow_executions,
  MAX(latency_ms) AS max_latency_ms
FROM agent_outcomes
WINDOW TUMBLING (SIZE 1 MINUTE)
GROUP BY agent_name, COALESCE(agent_type, 'unknown');
