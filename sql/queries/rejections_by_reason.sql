-- Where the pipeline drops things for good (skips, failures, rejections; not what is deferred to a
-- later run, see outcome_by_reason): rows per entity and reason code, most frequent first.
SELECT entity, stage, reason, description, sum(n) AS n
FROM rejection_by_reason
GROUP BY entity, stage, reason, description
ORDER BY n DESC, entity, reason;
