-- Every finding Critic posted on a PR, by fingerprint, so none is ever posted twice, and
-- threads whose code a later push changed can be answered ("addressed in ...").
CREATE TABLE findings (
    repo TEXT NOT NULL,
    number BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    path TEXT NOT NULL,
    line BIGINT NOT NULL,
    severity TEXT NOT NULL,
    -- 'inline', 'body' or 'collapsed'.
    place TEXT NOT NULL,
    head_sha TEXT NOT NULL,
    review_id BIGINT,
    -- The thread's first comment, when the finding is a thread.
    comment_id BIGINT,
    -- The head that changed the finding's code, once it did.
    addressed_sha TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repo, number, fingerprint)
);

-- The summary comment Critic edits in place.
ALTER TABLE pull_requests ADD COLUMN summary_comment_id BIGINT;

-- The "Critic" check run of each head commit.
CREATE TABLE check_runs (
    repo TEXT NOT NULL,
    head_sha TEXT NOT NULL,
    check_run_id BIGINT NOT NULL,
    PRIMARY KEY (repo, head_sha)
);
