-- 1 when someone asked for the job (a slash command, `/review`, a reply in a thread) and waits
-- for its answer: a later event for the same pull request never supersedes it.
ALTER TABLE jobs ADD COLUMN requested BIGINT NOT NULL DEFAULT 0;

-- The job whose review uses the check run now, so a job that gives up completes its own runs
-- (and only those), whichever head it was reviewing.
ALTER TABLE check_runs ADD COLUMN job_id BIGINT;
