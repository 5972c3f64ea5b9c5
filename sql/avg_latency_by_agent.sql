-- Average latency by agent (design documents, "Analytics Queries").
SELECT agent_name, AVG(latency_ms) as avg_latency
FROM agent_outcomes
WINDOW TUMBLING (SIZE 5 MINUTES)
GROUP BY agent_name;
