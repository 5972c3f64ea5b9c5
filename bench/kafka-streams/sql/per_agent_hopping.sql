-- The query Kafka Streams computes beside us (bench/kafka-streams): per agent, a 1 h window
-- advancing by 5 min, with the execution count, average latency and failure count.
SELECT agent_name, COUNT(*) AS executions, AVG(latency_ms) AS avg_latency_ms,
  COUNT_IF(status = 'failure') AS failures
FROM agent_outcomes
WINDOW HOPPING (SIZE 1 HOUR, ADVANCE BY 5 MINUTES)
GROUP BY agent_name;
