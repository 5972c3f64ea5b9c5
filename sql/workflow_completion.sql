-- Workflow completion times (the orchestrator's workflow events), per minute.
SELECT
  COUNT(*) AS workflows,
  COUNT_IF(status = 'success') / COUNT(*) AS success_rate,
  AVG(duration_ms) AS avg_completion_ms,
  approx_percentile_cont(duration_ms, 0.95) AS p95_completion_ms,
  MAX(duration_ms) AS max_completion_ms
FROM agent_outcomes
WHERE action_type = 'workflow'
WINDOW TUMBLING (SIZE 1 MINUTE);
