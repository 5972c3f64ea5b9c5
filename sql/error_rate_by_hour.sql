-- Error rate by hour (design documents, "Analytics Queries").
SELECT
  WINDOWSTART as hour,
  COUNT_IF(status = 'failure') / COUNT(*) as error_rate
FROM agent_outcomes
WINDOW HOPPING (SIZE 1 HOUR, ADVANCE BY 1 HOUR)
GROUP BY WINDOWSTART;
