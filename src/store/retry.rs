//! What becomes of a job whose attempt failed: queued again after a delay, the attempt
//! counted or given back (rate limits, an outage already charged once), a GitHub outage
//! begun, continued or ended; or dead, its error kept. Fenced like every write to a
//! claimed job (see `queue.rs`).

use std::time::Duration;

use super::usage::{Booking, insert_usage};
use super::{ClaimedJob, Store, StoreError, now_ms};
use crate::domain::JobState;

/// What becomes of a job whose attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Queued again after `after`. `counted: false` gives the attempt back. `outage`
    /// says whether the failure was GitHub being unavailable (the outage starts now unless
    /// it had already begun), or something else (which ends it).
    Retry {
        after: Duration,
        counted: bool,
        outage: bool,
    },
    /// No more attempts: the job is dead, its error kept.
    Dead,
    /// Not a failure: the job waits for something outside (CI) and runs again after
    /// `after`, as if this attempt had not been made (its backoff does not grow).
    Wait { after: Duration },
}

impl Store {
    /// Records a failed attempt: queued again, or dead.
    pub async fn fail(
        &self,
        job: &ClaimedJob,
        error: &str,
        next: Next,
        usage: Option<&Booking<'_>>,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        if let Some(b) = usage {
            insert_usage(&mut tx, &b.owner, b.calls).await?;
        }
        // outage: 1 starts (or continues) an outage, 0 ends it.
        let later =
            |after: Duration| now.saturating_add(after.as_millis().min(i64::MAX as u128) as i64);
        // (state, run_at, attempts refunded, outage, attempts taken back)
        let (state, run_at, refund, outage, undo) = match next {
            Next::Retry {
                after,
                counted,
                outage,
            } => (
                JobState::Queued,
                later(after),
                i64::from(!counted),
                i64::from(outage),
                0,
            ),
            Next::Wait { after } => (JobState::Queued, later(after), 0, 0, 1),
            Next::Dead => (JobState::Dead, now, 0, 0, 0),
        };
        let n = sqlx::query(
            "UPDATE jobs SET state = $1, run_at = $2, last_error = $3, lease_until = NULL, updated_at = $4, \
                refunds = refunds + $7, attempts = attempts - $9, \
                outage_since = CASE WHEN $8 = 1 THEN COALESCE(outage_since, $4) ELSE NULL END \
             WHERE id = $5 AND state = 'running' AND attempts = $6",
        )
        .bind(state)
        .bind(run_at)
        .bind(error)
        .bind(now)
        .bind(job.id)
        .bind(job.attempts)
        .bind(refund)
        .bind(outage)
        .bind(undo)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        self.changed();
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{job, on_both_backends, retry_in};
    use super::*;

    on_both_backends!(
        failure_retries_then_dies_with_error_kept,
        refunded_attempts_and_outages_are_remembered,
        a_wait_takes_its_attempt_back,
    );

    async fn a_wait_takes_its_attempt_back(store: Store) {
        store.enqueue(job("k")).await.expect("enqueue");
        for _ in 0..3 {
            let c = claim_due(&store).await;
            assert_eq!((c.attempts, c.refunds), (1, 0), "however often it waits");
            let wait = Next::Wait {
                after: Duration::ZERO,
            };
            assert!(store.fail(&c, "waiting", wait, None).await.expect("wait"));
        }
        // A failure after the waits is the first attempt's.
        let c = claim_due(&store).await;
        let retry = Next::Retry {
            after: Duration::ZERO,
            counted: true,
            outage: false,
        };
        assert!(store.fail(&c, "boom", retry, None).await.expect("fail"));
        let c = claim_due(&store).await;
        assert_eq!(c.counted_attempts(), 2);
    }

    async fn claim_due(store: &Store) -> ClaimedJob {
        sqlx::query("UPDATE jobs SET run_at = 0 WHERE state = 'queued'")
            .execute(&store.pool)
            .await
            .expect("due");
        store
            .claim(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("job")
    }

    async fn refunded_attempts_and_outages_are_remembered(store: Store) {
        store.enqueue(job("k")).await.expect("enqueue");
        let retry = |counted, outage| Next::Retry {
            after: Duration::ZERO,
            counted,
            outage,
        };
        let c = claim_due(&store).await;
        assert_eq!((c.attempts, c.refunds, c.outage_since), (1, 0, None));
        // GitHub is down: counted, and the outage begins.
        assert!(
            store
                .fail(&c, "502", retry(true, true), None)
                .await
                .expect("fail")
        );
        let c = claim_due(&store).await;
        let began = c.outage_since.expect("outage remembered");
        assert_eq!((c.attempts, c.counted_attempts()), (2, 2));
        // Still down: given back, and the outage keeps its start.
        assert!(
            store
                .fail(&c, "502", retry(false, true), None)
                .await
                .expect("fail")
        );
        let c = claim_due(&store).await;
        assert_eq!((c.attempts, c.counted_attempts()), (3, 2));
        assert_eq!(c.outage_since, Some(began));
        // Something else: the outage is over.
        assert!(
            store
                .fail(&c, "model", retry(true, false), None)
                .await
                .expect("fail")
        );
        let c = claim_due(&store).await;
        assert_eq!((c.counted_attempts(), c.outage_since), (3, None));
    }

    async fn failure_retries_then_dies_with_error_kept(store: Store) {
        let id = store.enqueue(job("k")).await.expect("enqueue");
        let c = store
            .claim(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("job");
        assert!(
            store
                .fail(&c, "boom", retry_in(Duration::from_secs(3600)), None)
                .await
                .expect("fail")
        );
        assert!(
            store
                .claim(Duration::from_secs(60))
                .await
                .expect("claim")
                .is_none(),
            "not due yet"
        );
        let row = store.job(id).await.expect("job").expect("row");
        assert_eq!(
            (row.state, row.last_error.as_deref()),
            (JobState::Queued, Some("boom"))
        );
        let c2 = ClaimedJob { attempts: 1, ..c };
        // Failing a job that is not running (queued again) changes nothing.
        assert!(
            !store
                .fail(&c2, "boom", Next::Dead, None)
                .await
                .expect("fail")
        );
        let row = store.job(id).await.expect("job").expect("row");
        assert_eq!(
            row.state,
            JobState::Queued,
            "fail on a non-running job changes nothing"
        );
        sqlx::query("UPDATE jobs SET run_at = 0")
            .execute(&store.pool)
            .await
            .expect("due");
        let c3 = store
            .claim(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("job");
        assert!(
            store
                .fail(&c3, "final boom", Next::Dead, None)
                .await
                .expect("fail")
        );
        let row = store.job(id).await.expect("job").expect("row");
        assert_eq!(
            (row.state, row.last_error.as_deref()),
            (JobState::Dead, Some("final boom"))
        );
    }
}
