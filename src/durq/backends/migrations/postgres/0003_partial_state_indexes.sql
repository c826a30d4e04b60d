-- durq schema, version 3: no index over every state. durq_jobs_state (state, id) and
-- durq_jobs_queue_state (queue, state, id) took a new entry each time a job changed state,
-- twice a run (queued -> running -> succeeded) besides the one at enqueue: about a fifth of
-- the server's work per job in a 4-process drain. Queued jobs are found through the ready
-- indexes and running ones through durq_jobs_lease; finished jobs, which is where most rows
-- end, get a partial index of their own that a job enters once, when it finishes.

DROP INDEX durq_jobs_state;
DROP INDEX durq_jobs_queue_state;

-- Admin listing of finished jobs (newest first within a state, optionally by queue), bulk
-- resubmit and stats of finished jobs by queue (read from the index alone).
CREATE INDEX durq_jobs_done ON durq_jobs (state, id, queue)
    WHERE state IN ('succeeded', 'unprocessable', 'cancelled');
