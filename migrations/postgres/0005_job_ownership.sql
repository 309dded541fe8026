-- 1 when someone asked for the job (a slash command, `/review`, a reply in a thread) and waits
-- for its answer: a later event for the same pull request never supersedes it.
ALTER TABLE jobs ADD COLUMN requested BIGINT NOT NULL DEFAULT 0;
