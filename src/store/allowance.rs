//! How often each person ran a command that spends the model budget, for
//! `commands.per_user_per_hour`. Kept in the database, so several replicas count together.

use super::{Store, StoreError, now_ms};

/// What [`Store::take_command_use`] decided for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandUse {
    /// Whether the request is within the allowance (and now counts toward it).
    pub admitted: bool,
    /// The person's requests in the window that came before it.
    pub before: u64,
}

impl Store {
    /// Counts request `key` (a comment, or an edit of it) of `login` toward an allowance of
    /// `limit` requests since `since_ms`, once however often its job runs: admitted when
    /// fewer than `limit` of that person's requests in the window came before it (by time,
    /// then key). The request is written before it is counted, so replicas taking requests
    /// at the same moment agree: the first `limit` are admitted, and each refused one
    /// removes its own row, so it counts for nothing.
    pub async fn take_command_use(
        &self,
        installation_id: u64,
        key: &str,
        login: &str,
        since_ms: i64,
        limit: u64,
    ) -> Result<CommandUse, StoreError> {
        let installation = i64::try_from(installation_id).unwrap_or(i64::MAX);
        let login = login.to_ascii_lowercase();
        let inserted = sqlx::query(
            "INSERT INTO command_uses (installation_id, request_key, login, used_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (installation_id, request_key) DO NOTHING",
        )
        .bind(installation)
        .bind(key)
        .bind(&login)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        let (used_at,): (i64,) = sqlx::query_as(
            "SELECT used_at FROM command_uses WHERE installation_id = $1 AND request_key = $2",
        )
        .bind(installation)
        .bind(key)
        .fetch_one(&self.pool)
        .await?;
        let (before,): (i64,) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM command_uses \
             WHERE installation_id = $1 AND login = $2 AND used_at >= $3 \
             AND (used_at < $4 OR (used_at = $4 AND request_key < $5))",
        )
        .bind(installation)
        .bind(&login)
        .bind(since_ms)
        .bind(used_at)
        .bind(key)
        .fetch_one(&self.pool)
        .await?;
        let before = u64::try_from(before).unwrap_or(0);
        let admitted = before < limit;
        if !admitted && inserted {
            sqlx::query("DELETE FROM command_uses WHERE installation_id = $1 AND request_key = $2")
                .bind(installation)
                .bind(key)
                .execute(&self.pool)
                .await?;
        }
        Ok(CommandUse { admitted, before })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::on_both_backends;
    use super::*;

    on_both_backends!(
        the_first_requests_in_the_window_are_admitted_once_each,
        requests_taken_at_once_admit_exactly_the_allowance,
    );

    async fn the_first_requests_in_the_window_are_admitted_once_each(store: Store) {
        let before = now_ms() - 1;
        let take = |installation: u64, key: &'static str, login: &'static str, since: i64| {
            let store = store.clone();
            async move {
                store
                    .take_command_use(installation, key, login, since, 2)
                    .await
                    .expect("take")
            }
        };
        assert!(take(1, "1", "Alice", before).await.admitted);
        assert!(take(1, "2", "alice", before).await.admitted);
        // The same request's job run again is admitted again, counting once.
        assert_eq!(
            take(1, "2", "alice", before).await,
            CommandUse {
                admitted: true,
                before: 1
            }
        );
        // A third is refused, and counts for nothing: refused again, not "3 before".
        assert_eq!(take(1, "3", "ALICE", before).await.before, 2);
        assert!(!take(1, "4", "alice", before).await.admitted);
        assert_eq!(take(1, "5", "alice", before).await.before, 2);
        // Other people and installations count apart; an old window counts nothing.
        assert!(take(1, "6", "bob", before).await.admitted);
        assert!(take(2, "1", "alice", before).await.admitted);
        assert!(take(1, "7", "alice", now_ms() + 1000).await.admitted);
        // Old uses are pruned with the rest.
        store.prune(now_ms() + 2000).await.expect("prune");
        assert!(take(1, "8", "alice", 0).await.admitted);
    }

    async fn requests_taken_at_once_admit_exactly_the_allowance(store: Store) {
        let since = now_ms() - 1;
        let takes = (0..8).map(|i| {
            let store = store.clone();
            async move {
                store
                    .take_command_use(1, &format!("k{i}"), "carol", since, 3)
                    .await
                    .expect("take")
            }
        });
        let taken = futures_util::future::join_all(takes).await;
        let admitted = taken.iter().filter(|t| t.admitted).count();
        assert_eq!(admitted, 3, "{taken:?}");
        let (rows,): (i64,) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM command_uses WHERE login = 'carol'",
        )
        .fetch_one(&store.pool)
        .await
        .expect("count");
        assert_eq!(rows, 3, "refused requests leave no row");
    }
}
