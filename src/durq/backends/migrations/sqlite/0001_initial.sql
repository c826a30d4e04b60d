-- durq schema, version 1. Times are Unix seconds (REAL, UTC).

CREATE TABLE durq_jobs (
    id               TEXT PRIMARY KEY,  -- UUIDv7: sorts by creation
    queue            TEXT NOT NULL,
    payload          TEXT NOT NULL,     -- JSON
    state            TEXT NOT NULL,
    priority         INTEGER NOT NULL,
    run_at           REAL NOT NULL,
    attempts         INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    timeout          REAL NOT NULL,
    dedupe_key       TEXT,
    worker_id        TEXT,
    lease_expires_at REAL,
    lease_token      TEXT,
    last_error       TEXT,
    result           TEXT,              -- JSON
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL
);

-- Claim walks this in its ORDER BY; only queued rows are in it, so finished rows cost nothing.
CREATE INDEX durq_jobs_ready ON durq_jobs (queue, priority DESC, run_at, id)
    WHERE state = 'queued';

-- Rescue of lost workers: running jobs by lease expiry.
CREATE INDEX durq_jobs_lease ON durq_jobs (lease_expires_at) WHERE state = 'running';

-- Admin listing (newest first within a state) and purge.
CREATE INDEX durq_jobs_state ON durq_jobs (state, id);

-- Admin listing within a queue and state, and stats by queue and state (a covering scan).
CREATE INDEX durq_jobs_queue_state ON durq_jobs (queue, state, id);

CREATE UNIQUE INDEX durq_jobs_dedupe ON durq_jobs (queue, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running');

CREATE TABLE durq_attempts (
    id          INTEGER PRIMARY KEY,
    job_id      TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    worker_id   TEXT NOT NULL,
    started_at  REAL NOT NULL,
    finished_at REAL,
    outcome     TEXT,
    error       TEXT
);
CREATE INDEX durq_attempts_job ON durq_attempts (job_id, attempt);
CREATE INDEX durq_attempts_finished ON durq_attempts (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE durq_queues (
    name   TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE durq_workers (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    queues       TEXT,                  -- JSON list, or NULL for every queue
    started_at   REAL NOT NULL,
    last_seen_at REAL NOT NULL
);
