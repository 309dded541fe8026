-- Deliveries seen, for dedupe on X-GitHub-Delivery.
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    event TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

-- The durable job queue.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    -- Jobs with the same key supersede each other (one PR's review).
    dedupe_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_error TEXT,
    delivery_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_key ON jobs (dedupe_key, state);

-- What Critic knows of each pull request.
CREATE TABLE pull_requests (
    repo TEXT NOT NULL,
    number BIGINT NOT NULL,
    last_reviewed_sha TEXT,
    last_review_id BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repo, number)
);

-- Every review Critic posted.
CREATE TABLE posted_reviews (
    review_id BIGINT PRIMARY KEY NOT NULL,
    repo TEXT NOT NULL,
    number BIGINT NOT NULL,
    head_sha TEXT NOT NULL,
    job_id BIGINT,
    inline_comments BIGINT NOT NULL,
    body_findings BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX posted_reviews_pr ON posted_reviews (repo, number);
