-- Named queries of the SQLite backend. The claim statement is built in sqlite.py (one
-- index-ordered leg per queue); everything else is here. Times are Unix seconds.

-- name: insert_job
INSERT INTO durq_jobs (id, queue, payload, state, priority, run_at, attempts, max_attempts,
                       timeout, dedupe_key, created_at, updated_at)
VALUES (?, ?, ?, 'queued', ?, ?, 0, ?, ?, ?, ?, ?)

-- name: import_job
INSERT OR IGNORE INTO durq_jobs (id, queue, payload, state, priority, run_at, attempts,
                                 max_attempts, timeout, dedupe_key, created_at, updated_at)
VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)

-- name: find_live_duplicate
SELECT * FROM durq_jobs
WHERE queue = ? AND dedupe_key = ? AND state IN ('queued', 'running')

-- name: register_queue
INSERT OR IGNORE INTO durq_queues (name) VALUES (?)

-- name: any_lease_expired
SELECT 1 FROM durq_jobs WHERE state = 'running' AND lease_expires_at < :now LIMIT 1

-- name: close_lost_attempts
UPDATE durq_attempts
SET finished_at = :now, outcome = 'lost',
    error = 'worker ' || worker_id || ' was lost: its lease expired before the attempt finished'
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

-- name: start_attempt
INSERT INTO durq_attempts (job_id, attempt, worker_id, started_at) VALUES (?, ?, ?, ?)

-- name: finish_attempt
UPDATE durq_attempts SET finished_at = ?, outcome = ?, error = ?
WHERE job_id = ? AND attempt = ? AND finished_at IS NULL

-- name: heartbeat
UPDATE durq_jobs SET lease_expires_at = ?, updated_at = ?
WHERE id = ? AND lease_token = ? AND state = 'running'
RETURNING *

-- name: complete
UPDATE durq_jobs
SET state = 'succeeded', result = ?, worker_id = NULL, lease_token = NULL,
    lease_expires_at = NULL, updated_at = ?
WHERE id = ? AND lease_token = ? AND state = 'running'
RETURNING *

-- name: fail
UPDATE durq_jobs
SET state = CASE WHEN :retry AND attempts < max_attempts THEN 'queued' ELSE 'unprocessable' END,
    run_at = CASE WHEN :retry AND attempts < max_attempts THEN :retry_at ELSE run_at END,
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

-- name: attempts
SELECT job_id, attempt, worker_id, started_at, finished_at, outcome, error
FROM durq_attempts WHERE job_id = ? ORDER BY id

-- name: counts
-- One leg per partial index (no index covers every state: see durq_jobs_finished).
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

-- name: finished_by_step
SELECT CAST((finished_at - :start) / :step AS INTEGER) AS step, outcome, count(*)
FROM durq_attempts WHERE finished_at >= :start
GROUP BY step, outcome

-- name: resubmit
UPDATE durq_jobs
SET state = 'queued', attempts = 0, run_at = ?, result = NULL, last_error = NULL,
    worker_id = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ?
WHERE id = ? AND state IN ('succeeded', 'unprocessable', 'cancelled')
RETURNING *

-- name: cancel
UPDATE durq_jobs SET state = 'cancelled', updated_at = ?
WHERE id = ? AND state IN ('queued', 'unprocessable')
RETURNING *

-- name: ids_in_state
-- The next three are templates: jobs_in_state() in sqlite.py fills in the state's index.
SELECT id FROM {jobs_in_state} AND id > :after ORDER BY id LIMIT :limit

-- name: ids_in_state_and_queue
SELECT id FROM {jobs_in_state} AND queue = :queue AND id > :after ORDER BY id LIMIT :limit

-- name: resubmit_chosen
-- Templates for _in_batches: {marks} becomes one ? per chosen id. OR IGNORE: a job whose
-- dedupe_key a live job holds stays where it is.
UPDATE OR IGNORE durq_jobs SET state = 'queued', attempts = 0, run_at = ?1,
    result = NULL, last_error = NULL, updated_at = ?1
WHERE state = ?2 AND id IN ({marks})

-- name: cancel_chosen
UPDATE durq_jobs SET state = 'cancelled', updated_at = ?1 WHERE state = ?2 AND id IN ({marks})

-- name: ids_queued
-- Queued jobs are indexed by (queue, priority, run_at), not id: paging them by id would sort
-- the whole index for every batch. The bulk action on them (cancel) takes each chosen job out
-- of the index, so the index's first rows are always ones not seen yet: no cursor needed.
SELECT id FROM durq_jobs INDEXED BY durq_jobs_ready WHERE state = 'queued' LIMIT :limit

-- name: ids_queued_in_queue
SELECT id FROM durq_jobs INDEXED BY durq_jobs_ready
WHERE state = 'queued' AND queue = :queue LIMIT :limit

-- name: delete_attempts
DELETE FROM durq_attempts WHERE job_id = ?

-- name: delete_finished
DELETE FROM durq_jobs WHERE id = ? AND state IN ('succeeded', 'unprocessable', 'cancelled')

-- name: purge_candidates
SELECT id, updated_at < :cutoff FROM {jobs_in_state} AND id > :after ORDER BY id LIMIT :limit

-- name: set_paused
INSERT INTO durq_queues (name, paused) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused

-- name: worker_heartbeat
INSERT INTO durq_workers (id, host, pid, queues, started_at, last_seen_at)
VALUES (:id, :host, :pid, :queues, :now, :now)
ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
    queues = excluded.queues, last_seen_at = excluded.last_seen_at

-- name: forget_long_gone_workers
DELETE FROM durq_workers WHERE last_seen_at < ?

-- name: worker_stopped
DELETE FROM durq_workers WHERE id = ?

-- name: workers
SELECT w.id, w.host, w.pid, w.queues, w.started_at, w.last_seen_at,
       (SELECT j.id FROM durq_jobs AS j
        WHERE j.state = 'running' AND j.worker_id = w.id LIMIT 1)
FROM durq_workers AS w WHERE w.last_seen_at >= ? ORDER BY w.id
