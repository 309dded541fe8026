//! How often each person ran a command that spends the model budget, for
//! `commands.per_user_per_hour`. Kept in the database, so several replicas count together.

use super::{Store, StoreError, now_ms};

impl Store {
    /// Commands `login` ran in this installation since `since_ms`.
    pub async fn command_uses_since(
        &self,
        installation_id: u64,
        login: &str,
        since_ms: i64,
    ) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM command_uses \
             WHERE installation_id = $1 AND login = $2 AND used_at >= $3",
        )
        .bind(i64::try_from(installation_id).unwrap_or(i64::MAX))
        .bind(login.to_ascii_lowercase())
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records that `login` ran a command now, with comment `comment_id` (once: a job run
    /// again for the same comment does not count twice).
    pub async fn record_command_use(
        &self,
        installation_id: u64,
        comment_id: u64,
        login: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO command_uses (installation_id, comment_id, login, used_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (installation_id, comment_id) DO NOTHING",
        )
            .bind(i64::try_from(installation_id).unwrap_or(i64::MAX))
            .bind(i64::try_from(comment_id).unwrap_or(i64::MAX))
            .bind(login.to_ascii_lowercase())
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::on_both_backends;
    use super::*;

    on_both_backends!(uses_are_counted_per_person_and_installation_since_a_time);

    async fn uses_are_counted_per_person_and_installation_since_a_time(store: Store) {
        let before = now_ms() - 1;
        for comment in 1..=3 {
            store
                .record_command_use(1, comment, "Alice")
                .await
                .expect("record");
        }
        // The same comment's job run again counts once.
        store
            .record_command_use(1, 3, "alice")
            .await
            .expect("record");
        store
            .record_command_use(2, 1, "alice")
            .await
            .expect("record");
        store.record_command_use(1, 4, "bob").await.expect("record");
        assert_eq!(
            store
                .command_uses_since(1, "alice", before)
                .await
                .expect("count"),
            3
        );
        assert_eq!(
            store
                .command_uses_since(2, "ALICE", before)
                .await
                .expect("count"),
            1
        );
        assert_eq!(
            store
                .command_uses_since(1, "alice", now_ms() + 1000)
                .await
                .expect("count"),
            0
        );
        // Old uses are pruned with the rest.
        store.prune(now_ms() + 1000).await.expect("prune");
        assert_eq!(
            store
                .command_uses_since(1, "alice", 0)
                .await
                .expect("count"),
            0
        );
    }
}
