-- 1 once someone answered the finding's thread and Critic's answer agreed the finding was
-- wrong: a finding the repository argued down is not posted there again, like one thumbed
-- down.
ALTER TABLE findings ADD COLUMN disputed BIGINT NOT NULL DEFAULT 0;
