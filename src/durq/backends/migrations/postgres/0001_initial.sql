-- durq schema, version 1, for PostgreSQL. Every name starts with durq_, so durq can share a
-- database (or a schema on the search_path) with an application's own tables.
-- Times are timestamptz from the server's clock; payloads and results are json (not jsonb):
-- json keeps the exact text, so floats, key order and "\u0000" escapes round-trip unchanged.

CREATE TABLE durq_jobs (
    id               text COLLATE "C" PRIMARY KEY,  -- UUIDv7: byte order is creation order
    queue            text COLLATE "C" NOT NULL,
    payload          json NOT NULL,
    state            text NOT NULL
        CHECK (state IN ('queued', 'running', 'succeeded', 'unprocessable', 'cancelled')),
    priority         bigint NOT NULL,
    run_at           timestamptz NOT NULL,
    attempts         bigint NOT NULL,
    max_attempts     bigint NOT NULL,
    timeout          double precision NOT NULL,
    dedupe_key       text COLLATE "C",
    worker_id        text,
    lease_expires_at timestamptz,
    lease_token      text,
    last_error       text,
    result           json,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- Every claim and finish leaves a dead row version behind, and until vacuum removes them the
-- claim's index scan steps over their entries. Vacuum after 1,000 + 1 % of the rows changed
-- instead of the default 50 + 20 %, so that stays short however big the table grows.
ALTER TABLE durq_jobs SET (autovacuum_vacuum_scale_factor = 0.01,
                           autovacuum_vacuum_threshold = 1000);

-- Claim walks one of these in its ORDER BY; only queued rows are in them, so finished rows
-- cost nothing. The first serves a claim from one queue, the second a claim from any queue.
CREATE INDEX durq_jobs_ready_in_queue ON durq_jobs (queue, priority DESC, run_at, id)
    WHERE state = 'queued';
CREATE INDEX durq_jobs_ready ON durq_jobs (priority DESC, run_at, id)
    WHERE state = 'queued';

-- Rescue of lost workers: running jobs by lease expiry.
CREATE INDEX durq_jobs_lease ON durq_jobs (lease_expires_at) WHERE state = 'running';

-- Admin listing (newest first within a state) and bulk resubmit / cancel.
CREATE INDEX durq_jobs_state ON durq_jobs (state, id);

-- Admin listing within a queue and state, and stats by queue and state.
CREATE INDEX durq_jobs_queue_state ON durq_jobs (queue, state, id);

-- Purge: finished jobs by age.
CREATE INDEX durq_jobs_finished ON durq_jobs (state, updated_at)
    WHERE state IN ('succeeded', 'unprocessable', 'cancelled');

CREATE UNIQUE INDEX durq_jobs_dedupe ON durq_jobs (queue, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running');

CREATE TABLE durq_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      text COLLATE "C" NOT NULL,
    attempt     bigint NOT NULL,
    worker_id   text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    outcome     text,
    error       text
);
CREATE INDEX durq_attempts_job ON durq_attempts (job_id, attempt);
-- Open attempts only (one per running job): the rescue that every claim runs first looks
-- here, so its cost follows the running jobs, never the length of the history.
CREATE INDEX durq_attempts_open ON durq_attempts (job_id) WHERE finished_at IS NULL;
CREATE INDEX durq_attempts_finished ON durq_attempts (finished_at)
    WHERE finished_at IS NOT NULL;

CREATE TABLE durq_queues (
    name   text COLLATE "C" PRIMARY KEY,
    paused boolean NOT NULL DEFAULT false
);

CREATE TABLE durq_workers (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          bigint NOT NULL,
    queues       text[],                -- NULL: every queue
    started_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);
