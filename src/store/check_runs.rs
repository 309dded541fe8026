//! The "Critic" check run of each head commit, and the job that uses it: so a later attempt
//! or job updates the same run instead of creating another, and a job that gives up
//! completes the runs it left open.

use super::{Store, StoreError, now_ms};

impl Store {
    /// The "Critic" check run of a head, once created.
    pub async fn check_run(&self, repo: &str, head_sha: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT check_run_id FROM check_runs WHERE repo = $1 AND head_sha = $2",
        )
        .bind(repo)
        .bind(head_sha)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The check runs job `job_id` uses and has not completed: (repo, head SHA, run id).
    pub async fn open_check_runs_of_job(
        &self,
        job_id: i64,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        // Tuples map columns by position, in the SELECT's order.
        Ok(sqlx::query_as(
            "SELECT repo, head_sha, check_run_id FROM check_runs WHERE job_id = $1 AND completed_at IS NULL",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn check_run_completed(&self, repo: &str, head_sha: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE check_runs SET completed_at = $1 WHERE repo = $2 AND head_sha = $3")
            .bind(now_ms())
            .bind(repo)
            .bind(head_sha)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records the head's check run as used, from now on, by job `job_id`.
    pub async fn set_check_run(
        &self,
        repo: &str,
        head_sha: &str,
        id: i64,
        job_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO check_runs (repo, head_sha, check_run_id, job_id) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repo, head_sha) DO UPDATE SET check_run_id = $3, job_id = $4, completed_at = NULL",
        )
        .bind(repo)
        .bind(head_sha)
        .bind(id)
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::on_both_backends;
    use super::*;

    on_both_backends!(a_check_run_belongs_to_the_job_that_took_it_last);

    async fn a_check_run_belongs_to_the_job_that_took_it_last(store: Store) {
        assert_eq!(store.check_run("o/r", "bbb").await.expect("q"), None);
        store.set_check_run("o/r", "bbb", 1, 7).await.expect("set");
        store
            .set_check_run("o/r", "bbb", 2, 8)
            .await
            .expect("replace");
        assert_eq!(store.check_run("o/r", "bbb").await.expect("q"), Some(2));
        // The run belongs to the job that took it over last.
        assert!(store.open_check_runs_of_job(7).await.expect("q").is_empty());
        assert_eq!(
            store.open_check_runs_of_job(8).await.expect("q"),
            [("o/r".to_string(), "bbb".to_string(), 2)]
        );
        store.check_run_completed("o/r", "bbb").await.expect("done");
        assert!(store.open_check_runs_of_job(8).await.expect("q").is_empty());
        assert_eq!(store.check_run("o/r", "bbb").await.expect("q"), Some(2));
    }
}
