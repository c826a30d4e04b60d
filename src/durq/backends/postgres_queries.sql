-- Named queries of the PostgreSQL backend (psycopg placeholders: %(name)s).
-- Every time comes from the server's clock, now(): the transaction's start, so one
-- transaction sees one instant. Lists travel as arrays (unnest, ANY), so every statement is
-- fixed text, however many ids it is given. The claim and a batch's completion are functions
-- of the schema (migrations/postgres/0005_claim_and_complete_functions.sql), which the
-- server keeps parsed for the life of a connection.

-- name: register_queue
INSERT INTO durq_queues (name) VALUES (%(queue)s) ON CONFLICT (name) DO NOTHING

-- name: insert_job
INSERT INTO durq_jobs (id, queue, payload, state, priority, run_at, attempts, max_attempts,
                       timeout, dedupe_key, created_at, updated_at, task, retry_base,
                       retry_cap, retry_jitter)
VALUES (%(id)s, %(queue)s, %(payload)s::json, 'queued', %(priority)s,
        now() + make_interval(secs => %(delay)s), 0, %(max_attempts)s, %(timeout)s,
        %(dedupe_key)s, now(), now(), %(task)s, %(retry_base)s, %(retry_cap)s,
        %(retry_jitter)s)
ON CONFLICT (queue, dedupe_key) WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running')
DO NOTHING
RETURNING *

-- name: enqueue_one
-- A lone job without a dedupe key, into a registered queue, with its wake-up: one statement,
-- run in autocommit, so an enqueue is one round trip (BEGIN and COMMIT cost a second).
WITH job AS (
    INSERT INTO durq_jobs (id, queue, payload, state, priority, run_at, attempts, max_attempts,
                           timeout, dedupe_key, created_at, updated_at, task, retry_base,
                           retry_cap, retry_jitter)
    VALUES (%(id)s, %(queue)s, %(payload)s::json, 'queued', %(priority)s,
            now() + make_interval(secs => %(delay)s), 0, %(max_attempts)s, %(timeout)s,
            NULL, now(), now(), %(task)s, %(retry_base)s, %(retry_cap)s, %(retry_jitter)s)
    RETURNING *
)
SELECT job.*, pg_notify('durq_jobs', job.queue) FROM job

-- name: insert_jobs
INSERT INTO durq_jobs (id, queue, payload, state, priority, run_at, attempts, max_attempts,
                       timeout, created_at, updated_at, task, retry_base, retry_cap,
                       retry_jitter)
SELECT batch.id, %(queue)s, batch.payload::json, 'queued', %(priority)s,
       now() + make_interval(secs => %(delay)s), 0, %(max_attempts)s, %(timeout)s, now(), now(),
       %(task)s, %(retry_base)s, %(retry_cap)s, %(retry_jitter)s
FROM unnest(%(ids)s::text[], %(payloads)s::text[]) AS batch (id, payload)
RETURNING *

-- name: import_job
INSERT INTO durq_jobs (id, queue, payload, state, priority, run_at, attempts, max_attempts,
                       timeout, dedupe_key, created_at, updated_at, task, retry_base,
                       retry_cap, retry_jitter)
VALUES (%(id)s, %(queue)s, %(payload)s::json, 'queued', %(priority)s, %(run_at)s,
        %(attempts)s, %(max_attempts)s, %(timeout)s, %(dedupe_key)s, %(created_at)s, now(),
        %(task)s, %(retry_base)s, %(retry_cap)s, %(retry_jitter)s)
ON CONFLICT DO NOTHING
RETURNING id

-- name: find_live_duplicate
SELECT * FROM durq_jobs
WHERE queue = %(queue)s AND dedupe_key = %(dedupe_key)s AND state IN ('queued', 'running')

-- name: notify
-- A job became ready: idle workers wake (the payload is the queue).
SELECT pg_notify('durq_jobs', %(queue)s)

-- name: notify_finished
-- A job finished: whoever waits for one (durq.App.wait) looks again.
SELECT pg_notify('durq_finished', '')

-- name: take_periodic_slot
-- Record a periodic task's slot as its latest; no row when it has this one or later.
INSERT INTO durq_periodic (name, slot) VALUES (%(name)s, %(slot)s)
ON CONFLICT (name) DO UPDATE SET slot = excluded.slot WHERE durq_periodic.slot < excluded.slot
RETURNING name

-- name: rescue_lost_jobs
-- Running jobs whose lease has expired: their worker died, hung or was cut off. The lost
-- attempt counts, and its row is written from the job's (an attempt's row is written when
-- it ends). SKIP LOCKED: a job another transaction is finishing right now is not lost.
-- The attempt's error and the job's last_error are the same words. A job that ends
-- unprocessable here wakes whoever waits for finished jobs (durq.App.wait), as a failure does.
WITH lost AS (
    SELECT id, attempts, worker_id, started_at,
           'worker ' || worker_id || ' was lost: its lease expired at '
               || to_char(lease_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
               || ' during attempt ' || attempts || ' of ' || max_attempts AS why
    FROM durq_jobs
    WHERE state = 'running' AND lease_expires_at < now()
    FOR UPDATE SKIP LOCKED
), closed AS (
    INSERT INTO durq_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome,
                               error)
    SELECT id, attempts, worker_id, started_at, now(), 'lost', why FROM lost
), rescued AS (
    UPDATE durq_jobs AS j
    SET state = CASE WHEN j.attempts >= j.max_attempts THEN 'unprocessable' ELSE 'queued' END,
        last_error = lost.why,
        worker_id = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
    FROM lost WHERE j.id = lost.id
    RETURNING j.state
)
SELECT pg_notify('durq_finished', '') FROM rescued WHERE state = 'unprocessable' LIMIT 1

-- name: active_queues
SELECT name FROM durq_queues WHERE NOT paused ORDER BY name

-- name: claim
-- durq_claim (schema version 5): the next ready jobs of one queue (queue) or of several
-- (queues, queue NULL), marked running, in claim order.
SELECT * FROM durq_claim(%(queue)s, %(queues)s::text[], %(limit)s, %(worker_id)s,
                         %(claim_id)s, %(lease)s)

-- name: heartbeat
-- One statement renews a whole worker's jobs: ids and tokens pair up by position. Only the
-- token is checked, as in complete_many (it is set only while the job runs).
UPDATE durq_jobs AS j
SET lease_expires_at = now() + make_interval(secs => %(lease)s), updated_at = now()
FROM unnest(%(ids)b::text[], %(tokens)b::text[]) AS lease (id, token)
WHERE j.id = lease.id AND j.lease_token = lease.token
RETURNING j.*

-- name: claimed_by
SELECT * FROM durq_jobs
WHERE state = 'running' AND worker_id = %(worker_id)s
  AND substr(lease_token, 1, 16) = ANY(%(claims)s::text[])

-- name: states_of
SELECT id, state FROM durq_jobs WHERE id = ANY(%(ids)s::text[])

-- name: complete
WITH done AS (
    UPDATE durq_jobs
    SET state = 'succeeded', result = %(result)s::json, worker_id = NULL, lease_token = NULL,
        lease_expires_at = NULL, updated_at = now()
    WHERE id = %(id)s AND lease_token = %(token)s AND state = 'running'
    RETURNING *
), attempt AS (
    INSERT INTO durq_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome)
    SELECT id, attempts, %(worker_id)s, started_at, now(), 'succeeded' FROM done
)
SELECT * FROM done

-- name: complete_many
-- durq_complete_many (schema version 5): every success of a batch in one statement, fenced
-- per job; the ids written, with their time. The arrays go in binary format (the b
-- placeholders): dumped as text, psycopg quotes each element through a regular expression,
-- about 10 µs of client CPU a job.
SELECT * FROM durq_complete_many(%(ids)b::text[], %(tokens)b::text[], %(results)b::text[],
                                 %(workers)b::text[])

-- name: fail
WITH failed AS (
    UPDATE durq_jobs
    SET state = CASE WHEN %(retry)s AND attempts < max_attempts THEN 'queued'
                     ELSE 'unprocessable' END,
        run_at = CASE WHEN %(retry)s AND attempts < max_attempts
                      THEN now() + make_interval(secs => %(backoff)s) ELSE run_at END,
        last_error = %(error)s, worker_id = NULL, lease_token = NULL, lease_expires_at = NULL,
        updated_at = now()
    WHERE id = %(id)s AND lease_token = %(token)s AND state = 'running'
    RETURNING *
), attempt AS (
    INSERT INTO durq_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome,
                               error)
    SELECT id, attempts, %(worker_id)s, started_at, now(), %(outcome)s, %(error)s FROM failed
)
SELECT * FROM failed

-- name: release
WITH released AS (
    UPDATE durq_jobs
    SET state = 'queued', attempts = attempts - 1, run_at = now(), worker_id = NULL,
        lease_token = NULL, lease_expires_at = NULL, updated_at = now()
    WHERE id = %(id)s AND lease_token = %(token)s AND state = 'running'
    RETURNING *
), attempt AS (
    INSERT INTO durq_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome)
    SELECT id, attempts + 1, %(worker_id)s, started_at, now(), 'released' FROM released
)
SELECT * FROM released

-- name: get
SELECT * FROM durq_jobs WHERE id = %(id)s

-- name: id_neighbours
-- Two primary-key probes per id, in the key's own collation.
SELECT ids.id,
       (SELECT max(id) FROM durq_jobs WHERE id < ids.id),
       (SELECT min(id) FROM durq_jobs WHERE id > ids.id)
FROM (SELECT unnest(%(ids)s::text[]) COLLATE "C" AS id) AS ids

-- name: ids_starting
SELECT id FROM durq_jobs WHERE id >= %(low)s AND id < %(high)s ORDER BY id LIMIT %(limit)s

-- name: state_of
SELECT state FROM durq_jobs WHERE id = %(id)s

-- name: attempts
-- The finished attempts in the order they ended, then the running one, from the job's row.
SELECT job_id, attempt, worker_id, started_at, finished_at, outcome, error
FROM (SELECT job_id, attempt, worker_id, started_at, finished_at, outcome, error, id AS n
      FROM durq_attempts WHERE job_id = %(id)s
      UNION ALL
      SELECT id, attempts, worker_id, started_at, NULL, NULL, NULL, NULL
      FROM durq_jobs WHERE id = %(id)s AND state = 'running') AS history
ORDER BY n NULLS LAST

-- name: now
SELECT extract(epoch FROM now())::float8

-- name: counts
-- One leg per partial index (no index covers every state): queued from the ready index,
-- running from the lease index, finished from durq_jobs_finished.
SELECT queue, 'queued', count(*) FROM durq_jobs WHERE state = 'queued' GROUP BY queue
UNION ALL
SELECT queue, 'running', count(*) FROM durq_jobs WHERE state = 'running' GROUP BY queue
UNION ALL
SELECT queue, state, count(*) FROM durq_jobs
WHERE state IN ('succeeded', 'unprocessable', 'cancelled') GROUP BY queue, state

-- name: oldest_ready
SELECT queue, extract(epoch FROM min(run_at))::float8 FROM durq_jobs
WHERE state = 'queued' AND run_at <= now() GROUP BY queue

-- name: queues
SELECT name, paused FROM durq_queues ORDER BY name

-- name: live_worker_count
SELECT count(*) FROM durq_workers
WHERE last_seen_at >= now() - make_interval(secs => %(stale_after)s)

-- name: live_jobs_by_task
SELECT task, 'queued', count(*) FROM durq_jobs
WHERE state = 'queued' AND task IS NOT NULL GROUP BY task
UNION ALL
SELECT task, 'running', count(*) FROM durq_jobs
WHERE state = 'running' AND task IS NOT NULL GROUP BY task

-- name: finished_by_step
SELECT floor((extract(epoch FROM finished_at) - %(start)s) / %(step)s)::bigint AS step,
       outcome, count(*)
FROM durq_attempts WHERE finished_at >= to_timestamp(%(start)s)
GROUP BY step, outcome

-- name: attempt_durations
-- Finished attempts by outcome and bucket: the bucket is how many of %(bounds)s (seconds,
-- ascending) lie below the attempt's duration. One scan of the history.
SELECT outcome,
       (SELECT count(*) FROM unnest(%(bounds)s::float8[]) AS bound WHERE bound < duration)
           AS bucket,
       count(*), coalesce(sum(duration), 0)::float8
FROM (SELECT outcome, extract(epoch FROM finished_at - started_at)::float8 AS duration
      FROM durq_attempts WHERE finished_at IS NOT NULL) AS finished
GROUP BY outcome, bucket

-- name: resubmit
UPDATE durq_jobs
SET state = 'queued', attempts = 0, run_at = now(), result = NULL, last_error = NULL,
    worker_id = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
WHERE id = %(id)s AND state IN ('succeeded', 'unprocessable', 'cancelled')
RETURNING *

-- name: cancel
-- A running job's lease ends with it: its worker's later calls are refused (fencing). Its
-- attempt's row is written from the row as it was (the update clears the worker).
WITH target AS (
    SELECT id, state, attempts, worker_id, started_at FROM durq_jobs
    WHERE id = %(id)s AND state IN ('queued', 'running', 'unprocessable')
    FOR UPDATE
), cancelled AS (
    UPDATE durq_jobs AS j
    SET state = 'cancelled', worker_id = NULL, lease_token = NULL, lease_expires_at = NULL,
        updated_at = now()
    FROM target WHERE j.id = target.id
    RETURNING j.*
), attempt AS (
    INSERT INTO durq_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome)
    SELECT id, attempts, worker_id, started_at, now(), 'cancelled' FROM target
    WHERE state = 'running'
)
SELECT * FROM cancelled

-- name: ids_finished
-- A bounded batch of the ids of finished jobs in one state, after a cursor, of one queue
-- when given, from durq_jobs_finished in id order (a resubmit may leave some where they
-- are: the cursor moves past them).
SELECT id FROM durq_jobs
WHERE state IN ('succeeded', 'unprocessable', 'cancelled') AND state = %(state)s
  AND (%(queue)s::text IS NULL OR queue = %(queue)s) AND id > %(after)s
ORDER BY id LIMIT %(limit)s

-- name: ids_queued
-- Queued jobs are indexed by (queue, priority, run_at), not id: paging them by id would sort
-- the whole backlog for every batch, or walk the finished jobs' ids to reach it. The bulk
-- action on them (cancel) takes each chosen job out of the index, as does a worker that
-- claims one meanwhile, so the index's first rows are always ones not seen yet.
SELECT id FROM durq_jobs WHERE state = 'queued' LIMIT %(limit)s

-- name: ids_queued_in_queue
SELECT id FROM durq_jobs WHERE state = 'queued' AND queue = %(queue)s LIMIT %(limit)s

-- name: ids_running
-- As ids_queued: cancelling a running job takes it out of durq_jobs_lease.
SELECT id FROM durq_jobs
WHERE state = 'running' AND (%(queue)s::text IS NULL OR queue = %(queue)s) LIMIT %(limit)s

-- name: resubmit_batch
-- Like resubmit, for a batch of ids. A job whose dedupe key a live job holds stays as it is,
-- and of several with one key only the oldest is queued again (the key allows one live job).
-- Like cancel_batch, it answers how many it changed.
WITH chosen AS (
    SELECT id, queue, dedupe_key,
           row_number() OVER (PARTITION BY queue, dedupe_key ORDER BY id) AS nth
    FROM durq_jobs WHERE id = ANY(%(ids)s::text[]) AND state = %(state)s
), resubmitted AS (
    UPDATE durq_jobs AS j
    SET state = 'queued', attempts = 0, run_at = now(), result = NULL, last_error = NULL,
        worker_id = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
    FROM chosen
    WHERE j.id = chosen.id AND j.state = %(state)s
      AND (chosen.dedupe_key IS NULL
           OR (chosen.nth = 1 AND NOT EXISTS (
                   SELECT 1 FROM durq_jobs AS live
                   WHERE live.queue = chosen.queue AND live.dedupe_key = chosen.dedupe_key
                     AND live.state IN ('queued', 'running'))))
    RETURNING j.id
)
SELECT count(*) FROM resubmitted

-- name: cancel_batch
-- As cancel, for a batch of ids in one state.
WITH target AS (
    SELECT id, state, attempts, worker_id, started_at FROM durq_jobs
    WHERE id = ANY(%(ids)s::text[]) AND state = %(state)s
    FOR UPDATE
), cancelled AS (
    UPDATE durq_jobs AS j
    SET state = 'cancelled', worker_id = NULL, lease_token = NULL, lease_expires_at = NULL,
        updated_at = now()
    FROM target WHERE j.id = target.id
    RETURNING j.id
), attempt AS (
    INSERT INTO durq_attempts (job_id, attempt, worker_id, started_at, finished_at, outcome)
    SELECT id, attempts, worker_id, started_at, now(), 'cancelled' FROM target
    WHERE state = 'running'
)
SELECT count(*) FROM cancelled

-- name: delete_finished
WITH gone AS (
    DELETE FROM durq_jobs
    WHERE id = %(id)s AND state IN ('succeeded', 'unprocessable', 'cancelled')
    RETURNING *
), history AS (
    DELETE FROM durq_attempts WHERE job_id IN (SELECT id FROM gone)
)
SELECT * FROM gone

-- name: purge_batch
-- One bounded batch: the next finished jobs of one state after a cursor, in id order through
-- durq_jobs_finished; those older than the cutoff go, with their attempt history. It answers
-- the last id looked at (the next batch's cursor, NULL when none was left) and how many went.
-- A job resubmitted meanwhile is no longer in the state, and the delete passes over it.
WITH candidates AS (
    SELECT id, updated_at < now() - make_interval(secs => %(older_than)s) AS old
    FROM durq_jobs
    WHERE state IN ('succeeded', 'unprocessable', 'cancelled') AND state = %(state)s
      AND id > %(after)s
    ORDER BY id LIMIT %(limit)s
), gone AS (
    DELETE FROM durq_jobs
    WHERE id IN (SELECT id FROM candidates WHERE old) AND state = %(state)s
      AND updated_at < now() - make_interval(secs => %(older_than)s)
    RETURNING id
), history AS (
    DELETE FROM durq_attempts WHERE job_id IN (SELECT id FROM gone)
)
SELECT (SELECT max(id) FROM candidates), (SELECT count(*) FROM gone)

-- name: set_paused
INSERT INTO durq_queues (name, paused) VALUES (%(queue)s, %(paused)s)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused

-- name: worker_heartbeat
INSERT INTO durq_workers (id, host, pid, queues, started_at, last_seen_at)
VALUES (%(id)s, %(host)s, %(pid)s, %(queues)s, now(), now())
-- Another process under the same id (a restart) is a new start, not the old one's.
ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
    queues = excluded.queues, last_seen_at = excluded.last_seen_at,
    started_at = CASE WHEN durq_workers.pid = excluded.pid AND durq_workers.host = excluded.host
                      THEN durq_workers.started_at ELSE excluded.started_at END

-- name: forget_long_gone_workers
DELETE FROM durq_workers
WHERE last_seen_at < now() - make_interval(secs => %(gone_after)s)

-- name: worker_stopped
DELETE FROM durq_workers WHERE id = %(id)s

-- name: workers
SELECT w.id, w.host, w.pid, array_to_json(w.queues)::text, w.started_at, w.last_seen_at,
       (SELECT j.id FROM durq_jobs AS j
        WHERE j.state = 'running' AND j.worker_id = w.id LIMIT 1)
FROM durq_workers AS w
WHERE w.last_seen_at >= now() - make_interval(secs => %(stale_after)s)
ORDER BY w.id
