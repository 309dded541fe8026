-- What people made of each finding's thread, read from GitHub on every review run of its pull
-- request: its reactions and whether the thread was resolved. A finding a repository
-- thumbed down, or resolved without changing its lines, is not posted there again.
ALTER TABLE findings ADD COLUMN category TEXT NOT NULL DEFAULT '';
ALTER TABLE findings ADD COLUMN thumbs_up BIGINT NOT NULL DEFAULT 0;
ALTER TABLE findings ADD COLUMN thumbs_down BIGINT NOT NULL DEFAULT 0;
-- 1 once the thread was seen resolved.
ALTER TABLE findings ADD COLUMN resolved BIGINT NOT NULL DEFAULT 0;
CREATE INDEX findings_by_repo ON findings (repo);

-- `/learnings reset`: a repository's findings from before this instant no longer mute or teach.
CREATE TABLE learning_resets (
    repo TEXT NOT NULL PRIMARY KEY,
    reset_at BIGINT NOT NULL
);
