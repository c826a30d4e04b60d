-- durq schema, version 2: tasks. A task's job records the task's name and its retry policy
-- (so whichever worker fails it backs off as the task says), and periodic tasks record the
-- last slot they were scheduled for (so each slot is scheduled once, by whichever worker).

ALTER TABLE durq_jobs ADD COLUMN task text COLLATE "C";
ALTER TABLE durq_jobs ADD COLUMN retry_base double precision;  -- NULL: the queue's policy
ALTER TABLE durq_jobs ADD COLUMN retry_cap double precision;
ALTER TABLE durq_jobs ADD COLUMN retry_jitter double precision;

-- Admin listing by task, newest first. A task never changes, so a job enters this index
-- once, at enqueue.
CREATE INDEX durq_jobs_task ON durq_jobs (task, id) WHERE task IS NOT NULL;

CREATE TABLE durq_periodic (
    name text COLLATE "C" PRIMARY KEY,  -- the task's name
    slot timestamptz NOT NULL           -- the latest slot a job was stored for
);
