-- Each command or thread reply that went on to spend the model budget, by whom: for
-- `commands.per_user_per_hour`. One row per comment, however often its job runs. Rows older
-- than the retention window are pruned.
CREATE TABLE command_uses (
    installation_id BIGINT NOT NULL,
    comment_id BIGINT NOT NULL,
    login TEXT NOT NULL,
    used_at BIGINT NOT NULL,
    PRIMARY KEY (installation_id, comment_id)
);
CREATE INDEX command_uses_by_login ON command_uses (installation_id, login, used_at);
