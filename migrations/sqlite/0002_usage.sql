-- Why a finished job ended as it did ("review 12 posted", "skipped: draft").
ALTER TABLE jobs ADD COLUMN result TEXT;

-- Every model call, for cost per job, per PR and per installation, and monthly budgets.
CREATE TABLE llm_usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id BIGINT,
    installation_id BIGINT NOT NULL,
    repo TEXT NOT NULL,
    number BIGINT NOT NULL,
    task TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    -- Millionths of a US dollar.
    cost_micros BIGINT NOT NULL,
    -- 1 when the server reported no usage and the tokens are estimated.
    estimated BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX llm_usage_installation ON llm_usage (installation_id, created_at);
CREATE INDEX llm_usage_pr ON llm_usage (repo, number);
CREATE INDEX llm_usage_job ON llm_usage (job_id);

-- Notes posted on a PR that must be posted once only (budget spent this month, ...).
CREATE TABLE notices (
    repo TEXT NOT NULL,
    number BIGINT NOT NULL,
    kind TEXT NOT NULL,
    notice_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repo, number, kind, notice_key)
);
