-- durq schema, version 5: a worker's two hot statements, the claim and the completion of a
-- batch, become functions, so the server parses them once per connection instead of at
-- every call, and plans them once too whenever its plan cache settles on a generic plan (it
-- compares one with the custom plans after five calls; an ANALYZE of durq_jobs starts it
-- over). A worker sends them hundreds of times a second, and planning them was about a
-- sixth of their server time (pg_stat_statements over a 4-process drain: the claim 7.8 µs
-- of planning and 34 µs of execution a job, the completion 5.5 and 28); a 4-process drain
-- ran 1.16-1.31x as fast with them. Server-side prepared statements would save the same,
-- but a statement prepared by psycopg is named per client connection, and behind PgBouncer
-- before 1.21 in transaction mode another client's statement of the same name may run in
-- its place; a function's parsed statements and plans belong to the server connection that
-- runs it, whichever client a pooler hands it to.

-- The next ready jobs of the given queues, marked running, in claim order. SKIP LOCKED:
-- concurrent claimers pass over each other's candidate instead of queueing behind its row
-- lock, so each gets a different job at once. One queue (p_queue) walks
-- durq_jobs_ready_in_queue already in claim order; ANY over several (p_queues) cannot, so
-- each has its statement, and plan, of its own. The attempt starts on the job's row
-- (started_at); its own row is written when it ends.
CREATE FUNCTION durq_claim(p_queue text, p_queues text[], p_limit bigint, p_worker_id text,
                           p_claim_id text, p_lease double precision)
RETURNS SETOF durq_jobs LANGUAGE plpgsql AS $$
DECLARE
    picked text[] COLLATE "C";
BEGIN
    IF p_queue IS NOT NULL THEN
        SELECT array_agg(next.id) INTO picked FROM (
            SELECT id FROM durq_jobs
            WHERE state = 'queued' AND run_at <= now() AND queue = p_queue
              AND queue NOT IN (SELECT name FROM durq_queues WHERE paused)
            ORDER BY priority DESC, run_at, id
            LIMIT p_limit
            FOR UPDATE SKIP LOCKED
        ) AS next;
    ELSE
        SELECT array_agg(next.id) INTO picked FROM (
            SELECT id FROM durq_jobs
            WHERE state = 'queued' AND run_at <= now() AND queue = ANY(p_queues)
              AND queue NOT IN (SELECT name FROM durq_queues WHERE paused)
            ORDER BY priority DESC, run_at, id
            LIMIT p_limit
            FOR UPDATE SKIP LOCKED
        ) AS next;
    END IF;
    -- The rows are locked by this transaction since the SELECT above: nobody changed them.
    RETURN QUERY
    WITH claimed AS (
        UPDATE durq_jobs AS j
        SET state = 'running', attempts = j.attempts + 1, worker_id = p_worker_id,
            lease_token = p_claim_id || '.' || substr(md5(random()::text), 1, 16),
            lease_expires_at = now() + make_interval(secs => p_lease),
            started_at = now(), updated_at = now()
        WHERE j.id = ANY(picked)
        RETURNING j.*
    )
    SELECT * FROM claimed ORDER BY priority DESC, run_at, id;
END
$$;

-- Every success of a batch: parallel arrays of ids, tokens, results (JSON text) and worker
-- ids. Fenced per job: a stale token leaves that job out of what comes back. It answers
-- only the ids and the time: the caller knows the rest of each completed row (sending whole
-- rows back, and decoding them, cost the workers about a tenth of their CPU). A job holds a
-- token only while it runs (every way out of running clears it), so the token is the whole
-- check: a "state = 'running'" here let the planner hash every entry of durq_jobs_lease,
-- dead ones included, instead of looking up the batch's ids (4.9 ms for 32 jobs with 2,000
-- running; 2.6 ms without it). The worker ids come from the caller, since the update clears
-- the row's: the token vouches for them.
CREATE FUNCTION durq_complete_many(p_ids text[], p_tokens text[], p_results text[],
                                   p_workers text[])
RETURNS TABLE (id text, finished_at timestamptz) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH done AS (
        UPDATE durq_jobs AS j
        SET state = 'succeeded', result = batch.result::json, worker_id = NULL,
            lease_token = NULL, lease_expires_at = NULL, updated_at = now()
        FROM unnest(p_ids, p_tokens, p_results, p_workers)
            AS batch(id, token, result, worker_id)
        WHERE j.id = batch.id COLLATE "C" AND j.lease_token = batch.token
        RETURNING j.id, j.attempts, j.started_at, batch.worker_id
    ), attempt AS (
        INSERT INTO durq_attempts (job_id, attempt, worker_id, started_at, finished_at,
                                   outcome)
        SELECT d.id, d.attempts, d.worker_id, d.started_at, now(), 'succeeded'
        FROM done AS d
    )
    SELECT d.id::text, now() FROM done AS d;
END
$$;
