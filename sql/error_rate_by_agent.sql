-- Failure and error rates per agent, per minute (alerts: failure rate above 10 %).
SELECT
  agent_name,
  COALESCE(agent_type, 'unknown') AS agent_type,
  COUNT(*) AS executions,
  COUNT_IF(status = 'failure') AS failures,
  COUNT_IF(status = 'timeout') AS timeouts,
  COUNT_IF(status = 'failure') / COUNT(*) AS failure_rate,
  COUNT_IF(status IN ('failure', 'timeout')) / COUNT(*) AS error_rate
FROM agent_outcomes
WINDOW TUMBLING (SIZE 1 MINUTE)
GROUP BY agent_name, COALESCE(agent_type, 'unknown');
