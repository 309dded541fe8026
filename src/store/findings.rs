//! Findings posted on each PR, by fingerprint: so a later run does not post one again,
//! learns the thread a finding was posted in, and knows which were addressed.

use super::{Store, StoreError, now_ms};
use crate::domain::PrNumber;

/// A finding as stored for a PR.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredFinding {
    pub fingerprint: String,
    pub path: String,
    pub line: i64,
    pub severity: String,
    pub place: String,
    pub head_sha: String,
    pub review_id: Option<i64>,
    pub comment_id: Option<i64>,
    pub addressed_sha: Option<String>,
}

impl Store {
    /// Findings posted on a PR, oldest first.
    pub async fn findings(
        &self,
        repo: &str,
        number: PrNumber,
    ) -> Result<Vec<StoredFinding>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT fingerprint, path, line, severity, place, head_sha, review_id, comment_id, addressed_sha \
             FROM findings WHERE repo = $1 AND number = $2 ORDER BY created_at, fingerprint",
        )
        .bind(repo)
        .bind(number.to_i64())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Remembers posted findings; one already known keeps its first record.
    pub async fn record_findings(
        &self,
        repo: &str,
        number: PrNumber,
        findings: &[StoredFinding],
    ) -> Result<(), StoreError> {
        if findings.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for f in findings {
            sqlx::query(
                "INSERT INTO findings (repo, number, fingerprint, path, line, severity, place, head_sha, \
                 review_id, comment_id, addressed_sha, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (repo, number, fingerprint) DO UPDATE SET \
                 comment_id = COALESCE(findings.comment_id, excluded.comment_id)",
            )
            .bind(repo)
            .bind(number.to_i64())
            .bind(&f.fingerprint)
            .bind(&f.path)
            .bind(f.line)
            .bind(&f.severity)
            .bind(&f.place)
            .bind(&f.head_sha)
            .bind(f.review_id)
            .bind(f.comment_id)
            .bind(&f.addressed_sha)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks a finding's code as changed by `sha` (its thread was answered).
    pub async fn mark_addressed(
        &self,
        repo: &str,
        number: PrNumber,
        fingerprint: &str,
        sha: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE findings SET addressed_sha = $1 WHERE repo = $2 AND number = $3 AND fingerprint = $4",
        )
        .bind(sha)
        .bind(repo)
        .bind(number.to_i64())
        .bind(fingerprint)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::on_both_backends;
    use super::*;

    on_both_backends!(findings_are_kept_once_and_marked_addressed);

    async fn findings_are_kept_once_and_marked_addressed(store: Store) {
        let finding = |fp: &str, comment: Option<i64>| StoredFinding {
            fingerprint: fp.into(),
            path: "src/a.rs".into(),
            line: 12,
            severity: "warning".into(),
            place: "inline".into(),
            head_sha: "aaa".into(),
            review_id: comment.map(|_| 7),
            comment_id: comment,
            addressed_sha: None,
        };
        assert!(
            store
                .findings("o/r", PrNumber(1))
                .await
                .expect("q")
                .is_empty()
        );
        store
            .record_findings(
                "o/r",
                PrNumber(1),
                &[finding("f1", Some(70)), finding("f2", None)],
            )
            .await
            .expect("record");
        // The same fingerprint again is kept once, as first recorded; only a thread id
        // learnt later is added.
        store
            .record_findings("o/r", PrNumber(1), &[finding("f1", Some(99))])
            .await
            .expect("record again");
        store
            .record_findings("o/r", PrNumber(1), &[finding("f2", Some(71))])
            .await
            .expect("thread id learnt");
        store
            .mark_addressed("o/r", PrNumber(1), "f1", "bbb")
            .await
            .expect("addressed");
        let got = store.findings("o/r", PrNumber(1)).await.expect("q");
        assert_eq!(got.len(), 2);
        let f2 = got.iter().find(|f| f.fingerprint == "f2").expect("f2");
        assert_eq!(f2.comment_id, Some(71));
        let f1 = got.iter().find(|f| f.fingerprint == "f1").expect("f1");
        assert_eq!(
            (f1.comment_id, f1.addressed_sha.as_deref()),
            (Some(70), Some("bbb"))
        );
        assert!(
            store
                .findings("o/r", PrNumber(2))
                .await
                .expect("q")
                .is_empty()
        );
    }
}
