-- Agent stats from a rollup (chalicelib/fleet.py): per agent, check type and hour, the
-- counts GET /api/agents/{id}/stats reports and histograms of duration and headline
-- latency, so the stats cost the number of hours in the window, not the rows in it.
--
-- One row per (agent, hour, type, metric, bucket):
--   metric 'count', 'ok', 'target', 'agent'      bucket 0; n tasks
--   metric 'kind:<error kind>'                    bucket 0; n failed tasks of that kind
--   metric 'dur' / 'lat'                          bucket = agent_rollup_bucket(value); n values, total their sum
-- A task counts in the hour of its completed_at once it is terminal, with its non-late result
-- (the direct definition, kept in fleet.DIRECT_STATS for the test that compares the two).
-- Maintained by triggers, so every path that ends a task (result, sweep, retire, a late
-- settle) and every path that removes one (check deletion, retention) keeps it exact.
CREATE TABLE IF NOT EXISTS agent_rollup (
    agent_id    uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    hour        timestamptz NOT NULL,
    check_type  text NOT NULL,
    metric      text NOT NULL,
    bucket      smallint NOT NULL DEFAULT 0,
    n           integer NOT NULL DEFAULT 0,  -- integer: sum(integer) is a bigint, sum(bigint) a slow numeric
    total       double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, hour, check_type, metric, bucket)
);

-- Histogram buckets 10% wide from 1 µs: bucket b holds values in [0.001 * 1.1^(b-1), 0.001 * 1.1^b) ms;
-- 0 holds values <= 0. The stats take each bucket's mean (total / n) as its value, so a
-- percentile is exact while a bucket holds one value and within 10% otherwise.
CREATE OR REPLACE FUNCTION agent_rollup_bucket(v double precision) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v IS NULL OR v <= 0 THEN 0
                ELSE LEAST(32000, GREATEST(1, floor(ln(v / 0.001) / ln(1.1))::int + 1)) END::smallint
$$;

-- The headline latency of a successful result (fleet._LATENCY, protocol.headline_latency_ms).
CREATE OR REPLACE FUNCTION agent_rollup_latency(check_type text, success boolean, data jsonb)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN success THEN CASE check_type
        WHEN 'http' THEN CASE WHEN jsonb_typeof(data #> '{timings_ms,total}') = 'number'
                              THEN (data #>> '{timings_ms,total}')::float8 END
        WHEN 'ping' THEN CASE WHEN jsonb_typeof(data #> '{rtt_ms,avg}') = 'number'
                              THEN (data #>> '{rtt_ms,avg}')::float8 END
        WHEN 'tcp' THEN CASE WHEN jsonb_typeof(data #> '{connect_ms}') = 'number'
                             THEN (data #>> '{connect_ms}')::float8 END
        WHEN 'dns' THEN CASE WHEN jsonb_typeof(data #> '{query_time_ms}') = 'number'
                             THEN (data #>> '{query_time_ms}')::float8 END
        WHEN 'traceroute' THEN CASE WHEN jsonb_typeof(data -> 'reached') = 'boolean' AND (data ->> 'reached')::boolean THEN
            (SELECT avg(v::text::float8) FROM jsonb_array_elements(
                 CASE WHEN jsonb_typeof(data -> 'hops' -> -1 -> 'rtts_ms') = 'array'
                      THEN data -> 'hops' -> -1 -> 'rtts_ms' ELSE '[]'::jsonb END) v
             WHERE jsonb_typeof(v) = 'number') END
        END END
$$;

-- What terminal tasks (id, agent_id, check_type, status, completed_at, error, sign) add to the
-- rollup (sign -1 takes them out), merged into it in one statement in key order (a stable
-- lock order for concurrent writers). The agent failure kinds are metrics.AGENT_FAILURE_KINDS.
CREATE OR REPLACE FUNCTION agent_rollup_merge(changes jsonb) RETURNS void LANGUAGE sql AS $$
    WITH t AS (
        SELECT (c ->> 'id')::uuid AS id, (c ->> 'agent_id')::uuid AS agent_id, c ->> 'check_type' AS check_type,
               (c ->> 'completed_at')::timestamptz AS completed_at, c -> 'error' AS error, (c ->> 'sign')::int AS sign
        FROM jsonb_array_elements(changes) c
    ), done AS (
        SELECT t.agent_id, date_trunc('hour', t.completed_at) AS hour, t.check_type, t.sign, r.success,
               r.duration_ms, agent_rollup_latency(t.check_type, r.success, r.data) AS latency,
               CASE WHEN r.success THEN NULL
                    WHEN r.task_id IS NULL THEN 'agent'
                    WHEN r.error ->> 'kind' IN ('internal', 'agent_offline') THEN 'agent'
                    ELSE 'target' END AS blame,
               CASE WHEN COALESCE(r.success, false) THEN NULL
                    ELSE COALESCE(r.error ->> 'kind', NULLIF(t.error, 'null'::jsonb) ->> 'kind', 'internal') END AS kind
        FROM t LEFT JOIN check_results r ON r.task_id = t.id AND NOT r.late
    ), parts AS (
        SELECT agent_id, hour, check_type, 'count' AS metric, 0 AS bucket, sign AS n, 0::float8 AS total FROM done
        UNION ALL SELECT agent_id, hour, check_type, 'ok', 0, sign, 0 FROM done WHERE success
        UNION ALL SELECT agent_id, hour, check_type, blame, 0, sign, 0 FROM done WHERE blame IS NOT NULL
        UNION ALL SELECT agent_id, hour, check_type, 'kind:' || kind, 0, sign, 0 FROM done WHERE kind IS NOT NULL
        UNION ALL SELECT agent_id, hour, check_type, 'dur', agent_rollup_bucket(duration_ms), sign, sign * duration_ms
                  FROM done WHERE duration_ms IS NOT NULL
        UNION ALL SELECT agent_id, hour, check_type, 'lat', agent_rollup_bucket(latency), sign, sign * latency
                  FROM done WHERE latency IS NOT NULL
    )
    INSERT INTO agent_rollup AS a (agent_id, hour, check_type, metric, bucket, n, total)
    SELECT agent_id, hour, check_type, metric, bucket, sum(n), sum(total)
    FROM parts GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (agent_id, hour, check_type, metric, bucket)
    DO UPDATE SET n = a.n + excluded.n, total = a.total + excluded.total
$$;

-- A statement that changes tasks: take out what the old terminal rows added, add the new
-- terminal rows; rows whose terminal facts did not change (the fan-out's stream ids) are skipped.
CREATE OR REPLACE FUNCTION agent_rollup_tasks_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes jsonb;
BEGIN
    SELECT jsonb_agg(c) INTO changes FROM (
        SELECT jsonb_build_object('id', o.id, 'agent_id', o.agent_id, 'check_type', o.check_type,
                                  'completed_at', o.completed_at, 'error', o.error, 'sign', -1) AS c
        FROM old_tasks o JOIN new_tasks n ON n.id = o.id
        WHERE o.status IN ('completed', 'failed') AND o.completed_at IS NOT NULL
          AND (o.status, o.completed_at, o.error, o.check_type, o.agent_id)
              IS DISTINCT FROM (n.status, n.completed_at, n.error, n.check_type, n.agent_id)
        UNION ALL
        SELECT jsonb_build_object('id', n.id, 'agent_id', n.agent_id, 'check_type', n.check_type,
                                  'completed_at', n.completed_at, 'error', n.error, 'sign', 1)
        FROM old_tasks o JOIN new_tasks n ON n.id = o.id
        WHERE n.status IN ('completed', 'failed') AND n.completed_at IS NOT NULL
          AND (o.status, o.completed_at, o.error, o.check_type, o.agent_id)
              IS DISTINCT FROM (n.status, n.completed_at, n.error, n.check_type, n.agent_id)
    ) s;
    IF changes IS NOT NULL THEN
        PERFORM agent_rollup_merge(changes);
    END IF;
    RETURN NULL;
END
$$;

-- A check about to be deleted (admin DELETE, retention): its terminal tasks leave the rollup
-- while their results are still there to say what they added.
CREATE OR REPLACE FUNCTION agent_rollup_check_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes jsonb;
BEGIN
    SELECT jsonb_agg(jsonb_build_object('id', t.id, 'agent_id', t.agent_id, 'check_type', t.check_type,
                                        'completed_at', t.completed_at, 'error', t.error, 'sign', -1))
    INTO changes
    FROM check_tasks t
    WHERE t.check_id = OLD.id AND t.status IN ('completed', 'failed') AND t.completed_at IS NOT NULL;
    IF changes IS NOT NULL THEN
        PERFORM agent_rollup_merge(changes);
    END IF;
    RETURN OLD;
END
$$;

DROP TRIGGER IF EXISTS agent_rollup_tasks ON check_tasks;
CREATE TRIGGER agent_rollup_tasks AFTER UPDATE ON check_tasks
    REFERENCING OLD TABLE AS old_tasks NEW TABLE AS new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION agent_rollup_tasks_updated();

DROP TRIGGER IF EXISTS agent_rollup_checks ON checks;
CREATE TRIGGER agent_rollup_checks BEFORE DELETE ON checks
    FOR EACH ROW EXECUTE FUNCTION agent_rollup_check_deleted();

-- What is already there, 10,000 tasks at a time (keyset on the primary key).
TRUNCATE agent_rollup;
DO $$
DECLARE
    last_id uuid := '00000000-0000-0000-0000-000000000000';
    batch jsonb;
BEGIN
    LOOP
        SELECT jsonb_agg(jsonb_build_object('id', t.id, 'agent_id', t.agent_id, 'check_type', t.check_type,
                                            'completed_at', t.completed_at, 'error', t.error, 'sign', 1))
                   FILTER (WHERE t.status IN ('completed', 'failed') AND t.completed_at IS NOT NULL),
               (array_agg(t.id ORDER BY t.id DESC))[1]
        INTO batch, last_id
        FROM (SELECT * FROM check_tasks WHERE id > last_id ORDER BY id LIMIT 10000) t;
        EXIT WHEN last_id IS NULL;
        IF batch IS NOT NULL THEN
            PERFORM agent_rollup_merge(batch);
        END IF;
    END LOOP;
END
$$;
