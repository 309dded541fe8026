//! What Critic knows about each pull request between runs: the head it last reviewed, its
//! summary comment, the reviews it posted, and once-only notices (claimed before posting,
//! so two runs never post the same note).

use super::{Store, StoreError, now_ms};
use crate::domain::PrNumber;

/// A review Critic posted.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PostedReview {
    pub review_id: i64,
    pub repo: String,
    pub number: i64,
    pub head_sha: String,
    pub job_id: Option<i64>,
    pub inline_comments: i64,
    pub body_findings: i64,
}

impl Store {
    /// The head SHA Critic last reviewed on this PR.
    pub async fn last_reviewed_sha(
        &self,
        repo: &str,
        number: PrNumber,
    ) -> Result<Option<String>, StoreError> {
        self.pull_request_field(repo, number, "last_reviewed_sha")
            .await
    }

    /// Who paused automatic reviews of the PR with `/pause`; `None` when they run.
    pub async fn paused_by(
        &self,
        repo: &str,
        number: PrNumber,
    ) -> Result<Option<String>, StoreError> {
        self.pull_request_field(repo, number, "paused_by").await
    }

    /// Pauses automatic reviews of the PR (`Some(login)`) or resumes them (`None`).
    pub async fn set_paused(
        &self,
        repo: &str,
        number: PrNumber,
        by: Option<&str>,
    ) -> Result<(), StoreError> {
        self.set_pull_request_field(repo, number, "paused_by", by.map(str::to_owned))
            .await
    }

    /// One nullable column of the PR's row (`column` is one of ours, never user input).
    async fn pull_request_field<T>(
        &self,
        repo: &str,
        number: PrNumber,
        column: &'static str,
    ) -> Result<Option<T>, StoreError>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + Unpin,
    {
        let value: Option<Option<T>> = sqlx::query_scalar(&format!(
            "SELECT {column} FROM pull_requests WHERE repo = $1 AND number = $2"
        ))
        .bind(repo)
        .bind(number.to_i64())
        .fetch_optional(&self.pool)
        .await?;
        Ok(value.flatten())
    }

    /// Sets one column of the PR's row, making the row if there is none (`column` is one of
    /// ours, never user input).
    async fn set_pull_request_field<T>(
        &self,
        repo: &str,
        number: PrNumber,
        column: &'static str,
        value: T,
    ) -> Result<(), StoreError>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + 'static,
    {
        let sql = format!(
            "INSERT INTO pull_requests (repo, number, {column}, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repo, number) DO UPDATE SET {column} = $3, updated_at = $4"
        );
        sqlx::query(&sql)
            .bind(repo)
            .bind(number.to_i64())
            .bind(value)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves the PR's reviewed head forward when the run posted no review (nothing new).
    pub async fn mark_reviewed(
        &self,
        repo: &str,
        number: PrNumber,
        head_sha: &str,
    ) -> Result<(), StoreError> {
        self.set_pull_request_field(repo, number, "last_reviewed_sha", head_sha.to_owned())
            .await
    }

    /// The summary comment's id, once known.
    pub async fn summary_comment(
        &self,
        repo: &str,
        number: PrNumber,
    ) -> Result<Option<i64>, StoreError> {
        self.pull_request_field(repo, number, "summary_comment_id")
            .await
    }

    pub async fn set_summary_comment(
        &self,
        repo: &str,
        number: PrNumber,
        id: i64,
    ) -> Result<(), StoreError> {
        self.set_pull_request_field(repo, number, "summary_comment_id", id)
            .await
    }

    /// Records a posted review and moves the PR's reviewed head forward, atomically.
    pub async fn record_review(&self, review: &PostedReview) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO posted_reviews (review_id, repo, number, head_sha, job_id, inline_comments, body_findings, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (review_id) DO NOTHING",
        )
        .bind(review.review_id)
        .bind(&review.repo)
        .bind(review.number)
        .bind(&review.head_sha)
        .bind(review.job_id)
        .bind(review.inline_comments)
        .bind(review.body_findings)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO pull_requests (repo, number, last_reviewed_sha, last_review_id, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (repo, number) DO UPDATE SET last_reviewed_sha = $3, last_review_id = $4, updated_at = $5",
        )
        .bind(&review.repo)
        .bind(review.number)
        .bind(&review.head_sha)
        .bind(review.review_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn posted_reviews(
        &self,
        repo: &str,
        number: PrNumber,
    ) -> Result<Vec<PostedReview>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT review_id, repo, number, head_sha, job_id, inline_comments, body_findings \
             FROM posted_reviews WHERE repo = $1 AND number = $2 ORDER BY created_at",
        )
        .bind(repo)
        .bind(number.to_i64())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whether a once-only note was claimed (posted, or being posted).
    pub async fn notice_claimed(
        &self,
        repo: &str,
        number: PrNumber,
        kind: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM notices WHERE repo = $1 AND number = $2 AND kind = $3 AND notice_key = $4",
        )
        .bind(repo)
        .bind(number.to_i64())
        .bind(kind)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Claims the right to post a once-only note; false when it was already claimed. A
    /// caller whose post then fails gives it back with [`Store::release_notice`].
    pub async fn claim_notice(
        &self,
        repo: &str,
        number: PrNumber,
        kind: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO notices (repo, number, kind, notice_key, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (repo, number, kind, notice_key) DO NOTHING",
        )
        .bind(repo)
        .bind(number.to_i64())
        .bind(kind)
        .bind(key)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn release_notice(
        &self,
        repo: &str,
        number: PrNumber,
        kind: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM notices WHERE repo = $1 AND number = $2 AND kind = $3 AND notice_key = $4",
        )
        .bind(repo)
        .bind(number.to_i64())
        .bind(kind)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::on_both_backends;
    use super::*;

    on_both_backends!(
        review_state_round_trip,
        summary_comment_and_reviewed_head_round_trip,
        a_notice_is_claimed_once_until_released,
    );

    async fn review_state_round_trip(store: Store) {
        assert_eq!(
            store
                .last_reviewed_sha("o/r", PrNumber(1))
                .await
                .expect("q"),
            None
        );
        for (id, sha) in [(10, "aaa"), (11, "bbb")] {
            store
                .record_review(&PostedReview {
                    review_id: id,
                    repo: "o/r".into(),
                    number: 1,
                    head_sha: sha.into(),
                    job_id: Some(1),
                    inline_comments: 2,
                    body_findings: 1,
                })
                .await
                .expect("record");
        }
        assert_eq!(
            store
                .last_reviewed_sha("o/r", PrNumber(1))
                .await
                .expect("q")
                .as_deref(),
            Some("bbb")
        );
        assert_eq!(
            store
                .posted_reviews("o/r", PrNumber(1))
                .await
                .expect("q")
                .len(),
            2
        );
    }

    async fn summary_comment_and_reviewed_head_round_trip(store: Store) {
        assert_eq!(
            store.summary_comment("o/r", PrNumber(1)).await.expect("q"),
            None
        );
        store
            .set_summary_comment("o/r", PrNumber(1), 55)
            .await
            .expect("set");
        store
            .mark_reviewed("o/r", PrNumber(1), "bbb")
            .await
            .expect("reviewed");
        assert_eq!(
            store.summary_comment("o/r", PrNumber(1)).await.expect("q"),
            Some(55)
        );
        assert_eq!(
            store
                .last_reviewed_sha("o/r", PrNumber(1))
                .await
                .expect("q")
                .as_deref(),
            Some("bbb")
        );
    }

    async fn a_notice_is_claimed_once_until_released(store: Store) {
        assert!(
            store
                .claim_notice("o/r", PrNumber(1), "budget", "2026-11")
                .await
                .expect("q")
        );
        assert!(
            !store
                .claim_notice("o/r", PrNumber(1), "budget", "2026-11")
                .await
                .expect("q")
        );
        store
            .release_notice("o/r", PrNumber(1), "budget", "2026-11")
            .await
            .expect("release");
        assert!(
            store
                .claim_notice("o/r", PrNumber(1), "budget", "2026-11")
                .await
                .expect("q")
        );
    }
}
