-- Errors by type per agent, per minute (dashboard: "Error types").
SELECT
  agent_name,
  COALESCE(error_type, 'unknown') AS error_type,
  COUNT(*) AS errors
FROM agent_outcomes
WHERE status IN ('failure', 'timeout')
WINDOW TUMBLING (SIZE 1 MINUTE)
GROUP BY agent_name, COALESCE(error_type, 'unknown');
