-- Average, p95 and maximum latency per agent over the last 5 minutes, every minute.
SELECT
  agent_name,
  COALESCE(agent_type, 'unknown') AS agent_type,
  COUNT(*) AS executions,
  AVG(latency_ms) AS avg_latency_ms,
  approx_percentile_cont(latency_ms, 0.95) AS p95_latency_ms,
  MAX(latency_ms) AS max_latency_ms,
  COUNT_IF(latency_ms > 5000) AS slow_executions
FROM agent_outcomes
WINDOW HOPPING (SIZE 5 MINUTES, ADVANCE BY 1 MINUTE)
GROUP BY agent_name, COALESCE(agent_type, 'unknown');
