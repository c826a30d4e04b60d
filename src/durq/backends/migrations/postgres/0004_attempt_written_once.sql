-- durq schema, version 4: an attempt's row is written once, when the attempt ends. It was
-- inserted at the claim and rewritten at the end, each time with index entries of its own
-- (finished_at is indexed, so the rewrite could not be a heap-only update): about a tenth
-- of a 4-process drain's server CPU. The running attempt now lives on the job's row, which
-- the claim writes anyway: its worker_id and attempts were there already, and started_at
-- says when it began. Reading a job's history adds that attempt, unfinished, to the rows.
-- Stop the workers of an older durq before this runs: one still running would write an
-- unfinished row that nothing closes.

ALTER TABLE durq_jobs ADD COLUMN started_at timestamptz;  -- the running attempt's start

-- A running job's open attempt moves onto its row (its last update, should one be missing).
UPDATE durq_jobs AS j
SET started_at = coalesce(
        (SELECT a.started_at FROM durq_attempts AS a
         WHERE a.job_id = j.id AND a.attempt = j.attempts AND a.finished_at IS NULL
         ORDER BY a.id DESC LIMIT 1),
        j.updated_at)
WHERE j.state = 'running';

-- Only a running job has an unfinished attempt (every way out of running finishes it), so
-- these are found through the running jobs, not by reading the whole history while the
-- ALTER TABLE above holds up writes to durq_jobs.
DELETE FROM durq_attempts AS a
USING durq_jobs AS j
WHERE j.state = 'running' AND a.job_id = j.id AND a.finished_at IS NULL;
