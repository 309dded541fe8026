-- When the "Critic" check run was completed (milliseconds since the epoch); NULL while it
-- is queued or in progress, so a job that gives up can finish the ones it left open.
ALTER TABLE check_runs ADD COLUMN completed_at BIGINT;
