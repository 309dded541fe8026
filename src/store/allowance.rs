//! How often each person ran a command that spends the model budget, for
//! `commands.per_user_per_hour`. Kept in the database, so several replicas count together.

use super::{Store, StoreError, now_ms};

impl Store {
    /// Commands `login` ran in this installation since `since_ms`, other than request
    /// `except` (a job run again for its own request must not count itself).
    pub async fn command_uses_since(
        &self,
        installation_id: u64,
        login: &str,
        since_ms: i64,
        except: &str,
    ) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM command_uses \
             WHERE installation_id = $1 AND login = $2 AND used_at >= $3 AND request_key <> $4",
        )
        .bind(i64::try_from(installation_id).unwrap_or(i64::MAX))
        .bind(login.to_ascii_lowercase())
        .bind(since_ms)
        .bind(except)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records that `login` ran a command now, as request `key` (a comment, or an edit of
    /// it): once, however often its job runs.
    pub async fn record_command_use(
        &self,
        installation_id: u64,
        key: &str,
        login: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO command_uses (installation_id, request_key, login, used_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (installation_id, request_key) DO NOTHING",
        )
        .bind(i64::try_from(installation_id).unwrap_or(i64::MAX))
        .bind(key)
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
        let count = |installation: u64, login: &'static str, since: i64, except: &'static str| {
            let store = store.clone();
            async move {
                store
                    .command_uses_since(installation, login, since, except)
                    .await
                    .expect("count")
            }
        };
        for key in ["1", "2", "3"] {
            store
                .record_command_use(1, key, "Alice")
                .await
                .expect("record");
        }
        // The same request's job run again counts once; an edit is a request of its own.
        for (installation, key, login) in [
            (1, "3", "alice"),
            (1, "3@ab12", "alice"),
            (2, "1", "alice"),
            (1, "4", "bob"),
        ] {
            store
                .record_command_use(installation, key, login)
                .await
                .expect("record");
        }
        assert_eq!(count(1, "alice", before, "").await, 4);
        assert_eq!(count(1, "alice", before, "3@ab12").await, 3, "not itself");
        assert_eq!(count(2, "ALICE", before, "").await, 1);
        assert_eq!(count(1, "alice", now_ms() + 1000, "").await, 0);
        // Old uses are pruned with the rest.
        store.prune(now_ms() + 1000).await.expect("prune");
        assert_eq!(count(1, "alice", 0, "").await, 0);
    }
}
