-- durq schema, version 2: tasks. A task's job records the task's name and its retry policy
-- (so whichever worker fails it backs off as the task says), and periodic tasks record the
-- last slot they were scheduled for (so each slot is scheduled once, by whichever worker).

ALTER TABLE durq_jobs ADD COLUMN task TEXT;
ALTER TABLE durq_jobs ADD COLUMN retry_base REAL;     -- NULL: the queue's retry policy
ALTER TABLE durq_jobs ADD COLUMN retry_cap REAL;
ALTER TABLE durq_jobs ADD COLUMN retry_jitter REAL;

-- Admin listing by task, newest first. A task never changes, so a job enters this index
-- once, at enqueue, and no state change touches it.
CREATE INDEX durq_jobs_task ON durq_jobs (task, id) WHERE task IS NOT NULL;

CREATE TABLE durq_periodic (
    name TEXT PRIMARY KEY,  -- the task's name
    slot REAL NOT NULL      -- the latest slot a job was stored for (Unix seconds)
);
