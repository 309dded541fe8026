-- Attempts given back: a job handed back to the queue by a rate limit, or failed again by a
-- GitHub outage it was already charged for, does not spend one of `worker.max_attempts`.
-- `attempts` stays the count of claims (it fences a worker whose lease was taken over).
ALTER TABLE jobs ADD COLUMN refunds BIGINT NOT NULL DEFAULT 0;

-- When the GitHub outage that failed this job's last attempt began (Unix milliseconds), NULL
-- when its last failure was anything else; a job in an outage longer than
-- `worker.max_outage_secs` ends dead.
ALTER TABLE jobs ADD COLUMN outage_since BIGINT;
