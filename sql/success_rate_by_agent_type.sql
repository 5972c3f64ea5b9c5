-- Success rate by agent type, per minute (dashboard: "Success rate by agent type").
SELECT
  COALESCE(agent_type, 'unknown') AS agent_type,
  COUNT(*) AS executions,
  COUNT_IF(status = 'success') / COUNT(*) AS success_rate
FROM agent_outcomes
WINDOW TUMBLING (SIZE 1 MINUTE)
GROUP BY COALESCE(agent_type, 'unknown');
