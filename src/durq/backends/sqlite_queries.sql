-- Named queries of the SQLite backend. Times are Unix seconds, from the caller's clock.
-- Lists travel as one JSON text parameter read with json_each, so every statement is fixed
-- text with plain placeholders, however many ids or queues it is given.
--
-- Each state's rows are reached through the partial index that holds just them (no index
-- covers every state: moving every job through one on each transition cost the drain dearly).
-- The planner uses a partial index only when the query's WHERE names the index's own WHERE
-- term, so queries on finished jobs repeat it word for word beside "state = :state".

-- name: insert_job
INSERT INTO durq_jobs (id, queue, payload, state, priority, run_at, attempts, max_attempts,
                       timeout, dedupe_key, created_at, updated_at, task, retry_base,
                       retry_cap, retry_jitter)
VALUES (?, ?, ?, 'queued', ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: insert_jobs_json
-- A batch in one statement: :rows is a JSON list of [id, payload] pairs, the rest is shared.
-- `->` gives each payload back as the JSON text it was sent as (checked once per process).
INSERT INTO durq_jobs (id, queue, payload, state, priority, run_at, attempts, max_attempts,
                       timeout, dedupe_key, created_at, updated_at, task, retry_base,
                       retry_cap, retry_jitter)
SELECT value ->> 0, :queue, value -> 1, 'queued', :priority, :run_at, 0, :max_attempts,
       :timeout, :dedupe_key, :now, :now, :task, :retry_base, :retry_cap, :retry_jitter
FROM json_each(:rows)

-- name: import_job
INSERT OR IGNORE INTO durq_jobs (id, queue, payload, state, priority, run_at, attempts,
                                 max_attempts, timeout, dedupe_key, created_at, updated_at,
                                 task, retry_base, retry_cap, retry_jitter)
VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: take_periodic_slot
-- Record a periodic task's slot as its latest; changes no row when it has this one or later.
INSERT INTO durq_periodic (name, slot) VALUES (?1, ?2)
ON CONFLICT (name) DO UPDATE SET slot = excluded.slot WHERE durq_periodic.slot < excluded.slot

-- name: find_live_duplicate
SELECT * FROM durq_jobs
WHERE queue = ? AND dedupe_key = ? AND state IN ('queued', 'running')

-- name: register_queue
INSERT OR IGNORE INTO durq_queues (name) VALUES (?)

-- name: any_lease_expired
SELECT 1 FROM durq_jobs WHERE state = 'running' AND lease_expires_at < :now LIMIT 1

-- name: close_lost_attempts
-- The same words as rescue_lost_jobs gives the job's last_error.
UPDATE durq_attempts
SET finished_at = :now, outcome = 'lost',
    error = (SELECT 'worker ' || j.worker_id || ' was lost: its lease expired at '
                    || strftime('%Y-%m-%dT%H:%M:%fZ', j.lease_expires_at, 'unixepoch')
                    || ' during attempt ' || j.attempts || ' of ' || j.max_attempts
             FROM durq_jobs AS j WHERE j.id = durq_attempts.job_id)
WHERE finished_at IS NULL
  AND job_id IN (SELECT id FROM durq_jobs WHERE state = 'running' AND lease_expires_at < :now)

-- name: rescue_lost_jobs
UPDATE durq_jobs
SET state = CASE WHEN attempts >= max_attempts THEN 'unprocessable' ELSE 'queued' END,
    last_error = 'worker ' || worker_id || ' was lost: its lease expired at '
                 || strftime('%Y-%m-%dT%H:%M:%fZ', lease_expires_at, 'unixepoch')
                 || ' during attempt ' || attempts || ' of ' || max_attempts,
    worker_id = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = :now
WHERE state = 'running' AND lease_expires_at < :now

-- name: claim_from
-- Up to :limit ready jobs of the queues named in :queues (a JSON list), best first. Each queue
-- is one seek into durq_jobs_ready, already in claim order, so no claim sorts more than
-- :limit rows a queue. Each claimed job gets a token of its own (randomblob runs per row),
-- after the claim's id.
UPDATE durq_jobs
SET state = 'running', attempts = attempts + 1, worker_id = :worker_id,
    lease_token = :claim_id || '.' || lower(hex(randomblob(8))), lease_expires_at = :until,
    updated_at = :now
WHERE id IN (
    SELECT j.id FROM json_each(:queues) AS q
    JOIN durq_jobs AS j ON j.id IN (
        SELECT id FROM durq_jobs INDEXED BY durq_jobs_ready
        WHERE queue = q.value AND state = 'queued' AND run_at <= :now
        ORDER BY priority DESC, run_at, id LIMIT :limit)
    WHERE q.value NOT IN (SELECT name FROM durq_queues WHERE paused)
    ORDER BY j.priority DESC, j.run_at, j.id LIMIT :limit)
RETURNING *

-- name: claim_one
-- As claim_from, for a single queue: no candidates from several queues to merge, so no sort.
UPDATE durq_jobs
SET state = 'running', attempts = attempts + 1, worker_id = :worker_id,
    lease_token = :claim_id || '.' || lower(hex(randomblob(8))), lease_expires_at = :until,
    updated_at = :now
WHERE id IN (
    SELECT id FROM durq_jobs INDEXED BY durq_jobs_ready
    WHERE queue = :queue AND state = 'queued' AND run_at <= :now
      AND NOT EXISTS (SELECT 1 FROM durq_queues WHERE name = :queue AND paused)
    ORDER BY priority DESC, run_at, id LIMIT :limit)
RETURNING *

-- name: active_queues
SELECT name FROM durq_queues WHERE NOT paused

-- name: start_attempt
INSERT INTO durq_attempts (job_id, attempt, worker_id, started_at) VALUES (?, ?, ?, ?)

-- name: finish_attempt
UPDATE durq_attempts SET finished_at = ?, outcome = ?, error = ?
WHERE job_id = ? AND attempt = ? AND finished_at IS NULL

-- name: heartbeat
-- :leases is a JSON list of [id, token] pairs: one statement renews a whole worker's jobs.
UPDATE durq_jobs SET lease_expires_at = :until, updated_at = :now
WHERE state = 'running'
  AND (id, lease_token) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
                            FROM json_each(:leases))
RETURNING *

-- name: claimed_by
-- :claims is a JSON list of claim ids: the running jobs of :worker_id they took.
SELECT * FROM durq_jobs INDEXED BY durq_jobs_lease
WHERE state = 'running' AND worker_id = :worker_id
  AND substr(lease_token, 1, 16) IN (SELECT value FROM json_each(:claims))

-- name: states_of
SELECT id, state FROM durq_jobs WHERE id IN (SELECT value FROM json_each(:ids))

-- name: complete_many
-- Every success of a batch in one statement: :batch is a JSON list of [id, token, result],
-- the result as JSON text. Fenced per job: a stale token leaves that job out.
UPDATE durq_jobs
SET state = 'succeeded', result = done.result, worker_id = NULL, lease_token = NULL,
    lease_expires_at = NULL, updated_at = :now
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS token,
             json_extract(value, '$[2]') AS result
      FROM json_each(:batch)) AS done
WHERE durq_jobs.id = done.id AND durq_jobs.lease_token = done.token
  AND durq_jobs.state = 'running'
RETURNING durq_jobs.id, durq_jobs.attempts

-- name: finish_attempts_succeeded
-- :done is a JSON list of [job id, attempt].
UPDATE durq_attempts SET finished_at = :now, outcome = 'succeeded'
WHERE finished_at IS NULL
  AND (job_id, attempt) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
                            FROM json_each(:done))

-- name: complete
UPDATE durq_jobs
SET state = 'succeeded', result = ?, worker_id = NULL, lease_token = NULL,
    lease_expires_at = NULL, updated_at = ?
WHERE id = ? AND lease_token = ? AND state = 'running'
RETURNING *

-- name: fail
UPDATE durq_jobs
SET state = CASE WHEN :retry AND attempts < max_attempts THEN 'queued' ELSE 'unprocessable' END,
    run_at = CASE WHEN :retry AND attempts < max_attempts THEN :now + :backoff ELSE run_at END,
    last_error = :error, worker_id = NULL, lease_token = NULL, lease_expires_at = NULL,
    updated_at = :now
WHERE id = :id AND lease_token = :token AND state = 'running'
RETURNING *

-- name: release
UPDATE durq_jobs
SET state = 'queued', attempts = attempts - 1, run_at = ?, worker_id = NULL,
    lease_token = NULL, lease_expires_at = NULL, updated_at = ?
WHERE id = ? AND lease_token = ? AND state = 'running'
RETURNING *

-- name: get
SELECT * FROM durq_jobs WHERE id = ?

-- name: id_neighbours
-- :ids is a JSON list; two primary-key probes per id.
SELECT ids.value,
       (SELECT max(id) FROM durq_jobs WHERE id < ids.value),
       (SELECT min(id) FROM durq_jobs WHERE id > ids.value)
FROM json_each(?) AS ids

-- name: ids_starting
SELECT id FROM durq_jobs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?

-- name: state_of
SELECT state FROM durq_jobs WHERE id = ?

-- name: attempts
SELECT job_id, attempt, worker_id, started_at, finished_at, outcome, error
FROM durq_attempts WHERE job_id = ? ORDER BY id

-- name: counts
-- One leg per partial index (no index covers every state).
SELECT queue, 'queued', count(*) FROM durq_jobs WHERE state = 'queued' GROUP BY queue
UNION ALL
SELECT queue, 'running', count(*) FROM durq_jobs WHERE state = 'running' GROUP BY queue
UNION ALL
SELECT queue, state, count(*) FROM durq_jobs
WHERE state = 'succeeded' OR state = 'unprocessable' OR state = 'cancelled'
GROUP BY queue, state

-- name: oldest_ready
SELECT queue, min(run_at) FROM durq_jobs
WHERE state = 'queued' AND run_at <= ? GROUP BY queue

-- name: queues
SELECT name, paused FROM durq_queues ORDER BY name

-- name: live_worker_count
SELECT count(*) FROM durq_workers WHERE last_seen_at >= ?

-- name: long_backlog
-- Whether at least :enough jobs are queued (in :queue, when given); reads at most that many
-- entries of durq_jobs_ready.
SELECT count(*) >= :enough FROM (
    SELECT 1 FROM durq_jobs INDEXED BY durq_jobs_ready
    WHERE state = 'queued' AND (:queue IS NULL OR queue = :queue) LIMIT :enough)

-- name: live_jobs_by_task
SELECT task, 'queued', count(*) FROM durq_jobs
WHERE state = 'queued' AND task IS NOT NULL GROUP BY task
UNION ALL
SELECT task, 'running', count(*) FROM durq_jobs
WHERE state = 'running' AND task IS NOT NULL GROUP BY task

-- name: finished_by_step
SELECT CAST((finished_at - :start) / :step AS INTEGER) AS step, outcome, count(*)
FROM durq_attempts WHERE finished_at >= :start
GROUP BY step, outcome

-- name: attempt_durations
-- Finished attempts by outcome and bucket: the bucket is how many of :bounds (a JSON list of
-- seconds) lie below the attempt's duration. One scan of the history.
WITH bound AS MATERIALIZED (SELECT value FROM json_each(:bounds))
SELECT outcome, (SELECT count(*) FROM bound WHERE value < duration) AS bucket,
       count(*), total(duration)
FROM (SELECT outcome, finished_at - started_at AS duration
      FROM durq_attempts WHERE finished_at IS NOT NULL)
GROUP BY outcome, bucket

-- name: resubmit
UPDATE durq_jobs
SET state = 'queued', attempts = 0, run_at = ?, result = NULL, last_error = NULL,
    worker_id = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ?
WHERE id = ? AND state IN ('succeeded', 'unprocessable', 'cancelled')
RETURNING *

-- name: cancel
-- A running job's lease ends with it: its worker's later calls are refused (fencing).
UPDATE durq_jobs
SET state = 'cancelled', worker_id = NULL, lease_token = NULL, lease_expires_at = NULL,
    updated_at = :now
WHERE id = :id AND state IN ('queued', 'running', 'unprocessable')
RETURNING *

-- name: close_cancelled_attempts
-- The attempts that were running when their jobs were cancelled (:ids, a JSON list).
UPDATE durq_attempts SET finished_at = :now, outcome = 'cancelled'
WHERE finished_at IS NULL AND job_id IN (SELECT value FROM json_each(:ids))

-- name: ids_finished
-- A bounded batch of the finished :state's ids after :after, of :queue when given.
SELECT id FROM durq_jobs INDEXED BY durq_jobs_finished
WHERE (state = 'succeeded' OR state = 'unprocessable' OR state = 'cancelled')
  AND state = :state AND (:queue IS NULL OR queue = :queue) AND id > :after
ORDER BY id LIMIT :limit

-- name: ids_queued
-- Queued jobs are indexed by (queue, priority, run_at), not id: paging them by id would sort
-- the whole index for every batch. The bulk action on them (cancel) takes each chosen job out
-- of the index, so the index's first rows are always ones not seen yet: no cursor needed.
SELECT id FROM durq_jobs INDEXED BY durq_jobs_ready WHERE state = 'queued' LIMIT :limit

-- name: ids_running
-- As ids_queued: cancelling a running job takes it out of durq_jobs_lease.
SELECT id FROM durq_jobs INDEXED BY durq_jobs_lease
WHERE state = 'running' AND (:queue IS NULL OR queue = :queue) LIMIT :limit

-- name: ids_queued_in_queue
SELECT id FROM durq_jobs INDEXED BY durq_jobs_ready
WHERE state = 'queued' AND queue = :queue LIMIT :limit

-- name: resubmit_chosen
-- OR IGNORE: a job whose dedupe_key a live job holds stays where it is.
UPDATE OR IGNORE durq_jobs SET state = 'queued', attempts = 0, run_at = :now,
    result = NULL, last_error = NULL, updated_at = :now
WHERE state = :state AND id IN (SELECT value FROM json_each(:ids))

-- name: cancel_chosen
UPDATE durq_jobs
SET state = 'cancelled', worker_id = NULL, lease_token = NULL, lease_expires_at = NULL,
    updated_at = :now
WHERE state = :state AND id IN (SELECT value FROM json_each(:ids))

-- name: delete_attempts
DELETE FROM durq_attempts WHERE job_id = ?

-- name: delete_finished
DELETE FROM durq_jobs WHERE id = ? AND state IN ('succeeded', 'unprocessable', 'cancelled')
RETURNING *

-- name: delete_job
DELETE FROM durq_jobs WHERE id = ?

-- name: purge_candidates
SELECT id, updated_at < :cutoff FROM durq_jobs INDEXED BY durq_jobs_finished
WHERE (state = 'succeeded' OR state = 'unprocessable' OR state = 'cancelled')
  AND state = :state AND id > :after
ORDER BY id LIMIT :limit

-- name: set_paused
INSERT INTO durq_queues (name, paused) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused

-- name: worker_heartbeat
INSERT INTO durq_workers (id, host, pid, queues, started_at, last_seen_at)
VALUES (:id, :host, :pid, :queues, :now, :now)
-- Another process under the same id (a restart) is a new start, not the old one's.
ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
    queues = excluded.queues, last_seen_at = excluded.last_seen_at,
    started_at = CASE WHEN durq_workers.pid = excluded.pid AND durq_workers.host = excluded.host
                      THEN durq_workers.started_at ELSE excluded.started_at END

-- name: forget_long_gone_workers
DELETE FROM durq_workers WHERE last_seen_at < ?

-- name: worker_stopped
DELETE FROM durq_workers WHERE id = ?

-- name: workers
SELECT w.id, w.host, w.pid, w.queues, w.started_at, w.last_seen_at,
       (SELECT j.id FROM durq_jobs AS j
        WHERE j.state = 'running' AND j.worker_id = w.id LIMIT 1)
FROM durq_workers AS w WHERE w.last_seen_at >= ? ORDER BY w.id
