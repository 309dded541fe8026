-- Each command or thread reply that went on to spend the model budget, by whom: for
-- `commands.per_user_per_hour`. One row per request (a comment, or an edit of it that added a
-- command), however often its job runs. Rows older than the retention window are pruned.
CREATE TABLE command_uses (
    installation_id BIGINT NOT NULL,
    request_key TEXT NOT NULL,
    login TEXT NOT NULL,
    used_at BIGINT NOT NULL,
    PRIMARY KEY (installation_id, request_key)
);
CREATE INDEX command_uses_by_login ON command_uses (installation_id, login, used_at);
