-- Failure rate over every agent, per minute (alert: overall failure rate above 10 %).
SELECT
  COUNT(*) AS executions,
  COUNT_IF(status = 'failure') AS failures,
  COUNT_IF(status = 'failure') / COUNT(*) AS failure_rate
FROM agent_outcomes
WINDOW TUMBLING (SIZE 1 MINUTE);
