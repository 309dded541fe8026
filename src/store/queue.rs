//! The job queue as workers use it: queueing a job outside a delivery, claiming the next
//! due one under a lease (one job per PR at a time), renewing the lease, finishing, taking
//! back a dead process's jobs, and listing and pruning rows. A job's attempt count fences
//! every write, so a worker whose lease was lost cannot finish a job someone else runs.
//! Failed attempts are in `retry.rs`; how new jobs join queued ones, in `coalesce.rs`.

use std::time::Duration;

use super::coalesce::queue_jobs;
use super::usage::{Booking, insert_usage};
use super::{Backend, NewJob, Store, StoreError, now_ms};
use crate::domain::JobState;

/// A job in the queue as a worker sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    /// Claims so far including this one; also fences completion against a reclaimed lease.
    pub attempts: i64,
    /// Attempts given back (rate limits, a GitHub outage already charged once): the
    /// attempts that count against `worker.max_attempts` are `attempts - refunds`.
    pub refunds: i64,
    /// When the GitHub outage that failed the previous attempt began (Unix ms).
    pub outage_since: Option<i64>,
    pub delivery_id: Option<String>,
    /// When the job was queued (Unix ms): a command answered late says how long it waited.
    pub created_at: i64,
}

impl ClaimedJob {
    /// Attempts that count against `worker.max_attempts`, this one included.
    pub fn counted_attempts(&self) -> i64 {
        self.attempts - self.refunds
    }
}

/// A row of the jobs table, for operators and tests.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRecord {
    pub id: i64,
    pub kind: String,
    pub dedupe_key: String,
    /// Stored as text; a name this version does not know fails the read (see below).
    pub state: JobState,
    pub attempts: i64,
    /// When it is (or was) due, in milliseconds since the epoch.
    pub run_at: i64,
    pub last_error: Option<String>,
    /// How a finished job ended.
    pub result: Option<String>,
}

// A job's state crosses the database edge here, as the text the SQL's literals
// (`'queued'`, ...) name. `#[sqlx(try_from = "String")]` would do too, but sqlx 0.8.6 drops
// the conversion's error message ("unprintable error"); decoding here keeps "unknown job
// state `x`" in the `ColumnDecode` error an operator sees.
impl sqlx::Type<sqlx::Any> for JobState {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <String as sqlx::Type<sqlx::Any>>::type_info()
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for JobState {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let name = <String as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
        Ok(JobState::try_from(name)?)
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Any> for JobState {
    fn encode_by_ref(
        &self,
        buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as sqlx::Encode<'q, sqlx::Any>>::encode(self.as_str(), buf)
    }
}

/// PostgreSQL advisory lock taken by every claim ("critic" in ASCII).
const CLAIM_LOCK: i64 = 0x6372_6974_6963;

impl Store {
    /// Queues a job outside any delivery (commands, re-runs, tests).
    pub async fn enqueue(&self, job: NewJob) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let queued = queue_jobs(&mut tx, self.backend, &[(None, &job)], now_ms()).await?;
        let id = queued
            .first()
            .map(|q| q.id)
            .ok_or_else(|| StoreError::Batch("the job insert returned no id".into()))?;
        tx.commit().await?;
        self.changed();
        Ok(id)
    }

    /// Claims the next due job: a queued one whose time has come, or a running one whose
    /// lease expired (its worker died). The lease is extended by `lease`. A job is not
    /// claimed while another job with the same key (the same PR) is running, so one PR is
    /// never reviewed by two workers at once.
    pub async fn claim(&self, lease: Duration) -> Result<Option<ClaimedJob>, StoreError> {
        // Two narrow lookups rather than one `OR`, so each uses the (state, run_at) index
        // instead of scanning every finished job.
        for due in [
            "j.state = 'queued' AND j.run_at <= $2",
            "j.state = 'running' AND j.lease_until < $2",
        ] {
            if let Some(job) = self.claim_where(due, lease).await? {
                self.changed();
                return Ok(Some(job));
            }
        }
        Ok(None)
    }

    async fn claim_where(
        &self,
        due: &str,
        lease: Duration,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        let now = now_ms();
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $1, updated_at = $2 \
             WHERE id = (SELECT j.id FROM jobs j WHERE {due} \
                AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.dedupe_key = j.dedupe_key AND r.id <> j.id \
                    AND r.state = 'running' AND r.lease_until >= $2) \
                ORDER BY j.run_at, j.id LIMIT 1{lock}) \
             RETURNING id, kind, payload, attempts, refunds, outage_since, delivery_id, created_at"
        );
        let query = sqlx::query_as::<_, ClaimedJob>(&sql)
            .bind(now + lease.as_millis() as i64)
            .bind(now);
        let job = match self.backend {
            Backend::Sqlite => query.fetch_optional(&self.pool).await?,
            Backend::Postgres => {
                // Replicas claim one at a time. The row lock alone would let two claims that
                // start together each take a different job of the same PR: neither sees the
                // other's running job in its snapshot. Under the lock, each claim's snapshot
                // is taken after the previous claim committed.
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(CLAIM_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let job = query.fetch_optional(&mut *tx).await?;
                tx.commit().await?;
                job
            }
        };
        Ok(job)
    }

    /// Extends a running job's lease. False when the lease was lost (the job was reclaimed
    /// after this worker stalled): the worker must stop before doing anything visible.
    pub async fn renew(&self, job: &ClaimedJob, lease: Duration) -> Result<bool, StoreError> {
        let now = now_ms();
        let n = sqlx::query(
            "UPDATE jobs SET lease_until = $1, updated_at = $2 \
             WHERE id = $3 AND state = 'running' AND attempts = $4 AND lease_until >= $2",
        )
        .bind(now + lease.as_millis() as i64)
        .bind(now)
        .bind(job.id)
        .bind(job.attempts)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Marks a claimed job finished. Returns false if the lease was lost meanwhile
    /// (another worker reclaimed it), in which case nothing changes.
    /// The job's model calls are booked in the same transaction, whoever owns the job now:
    /// they were paid for either way.
    pub async fn finish(
        &self,
        job: &ClaimedJob,
        final_state: JobState,
        result: &str,
        usage: Option<&Booking<'_>>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(b) = usage {
            insert_usage(&mut tx, &b.owner, b.calls).await?;
        }
        let n = sqlx::query(
            "UPDATE jobs SET state = $1, lease_until = NULL, updated_at = $2, result = $5 \
             WHERE id = $3 AND state = 'running' AND attempts = $4",
        )
        .bind(final_state)
        .bind(now_ms())
        .bind(job.id)
        .bind(job.attempts)
        .bind(result)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        self.changed();
        Ok(n == 1)
    }

    /// Makes every running job claimable at once: for a process that knows no other live
    /// process holds this database (SQLite, under its lock file), so the jobs a killed
    /// process was running need not wait for their leases to expire. Returns how many.
    pub async fn release_running(&self) -> Result<u64, StoreError> {
        let now = now_ms();
        let n = sqlx::query(
            "UPDATE jobs SET lease_until = $1, updated_at = $2 WHERE state = 'running'",
        )
        .bind(now - 1)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n > 0 {
            self.changed();
        }
        Ok(n)
    }

    /// Forgets deliveries older than `before_ms` (GitHub redelivers only recent ones) and
    /// finished jobs last touched before it. Returns (deliveries, jobs) removed.
    pub async fn prune(&self, before_ms: i64) -> Result<(u64, u64), StoreError> {
        let deliveries = sqlx::query("DELETE FROM deliveries WHERE received_at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let jobs = sqlx::query(
            "DELETE FROM jobs WHERE state IN ('done', 'superseded', 'dead') AND updated_at < $1",
        )
        .bind(before_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        // Only the last hour of command uses counts; older ones go with the rest.
        sqlx::query("DELETE FROM command_uses WHERE used_at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok((deliveries, jobs))
    }

    pub async fn job(&self, id: i64) -> Result<Option<JobRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, kind, dedupe_key, state, attempts, run_at, last_error, result FROM jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, kind, dedupe_key, state, attempts, run_at, last_error, result FROM jobs ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{job, on_both_backends};
    use super::*;
    use crate::domain::PrNumber;
    use crate::store::DeliveryOutcome;

    on_both_backends!(
        claims_at_the_same_time_take_one_job_per_pr,
        claim_finish_and_fencing,
        one_pr_runs_one_job_at_a_time,
        renew_keeps_a_live_lease_and_reports_a_lost_one,
        expired_lease_is_claimed_again,
        prune_forgets_old_deliveries_and_finished_jobs_only,
        a_jobs_usage_is_booked_with_its_outcome_even_when_its_lease_was_lost,
        a_state_this_version_does_not_know_is_an_error_when_read,
    );

    async fn a_state_this_version_does_not_know_is_an_error_when_read(store: Store) {
        let id = store.enqueue(job("o/r#1")).await.expect("enqueue");
        // As a newer (or hand-edited) database might hold.
        sqlx::query("UPDATE jobs SET state = 'paused' WHERE id = $1")
            .bind(id)
            .execute(&store.pool)
            .await
            .expect("update");
        let error = store.job(id).await.expect_err("an unknown state");
        assert!(
            matches!(&error, StoreError::Database(sqlx::Error::ColumnDecode { index, .. }) if index.contains("state")),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("unknown job state `paused`"),
            "{error}"
        );
        assert!(store.jobs().await.is_err());
    }

    async fn a_jobs_usage_is_booked_with_its_outcome_even_when_its_lease_was_lost(store: Store) {
        let spent = crate::domain::Spent {
            endpoint: "default".into(),
            model: "m".into(),
            task: "review",
            usage: crate::domain::Usage {
                prompt_tokens: 100,
                output_tokens: 10,
                cached_tokens: 0,
            },
            cost_micros: 7,
            estimated: false,
            unpriced: false,
        };
        let id = store.enqueue(job("k")).await.expect("enqueue");
        let claimed = store
            .claim(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("job");
        let calls = [spent.clone()];
        let booking = Booking {
            owner: crate::store::UsageOwner {
                job_id: Some(id),
                installation_id: 1,
                repo: "o/r",
                number: PrNumber(2),
            },
            calls: &calls,
        };
        // Finished: the job is done and its cost booked, in one transaction.
        assert!(
            store
                .finish(&claimed, JobState::Done, "ok", Some(&booking))
                .await
                .expect("finish")
        );
        assert_eq!(store.job_usage(id).await.expect("usage").cost_micros, 7);
        // A worker whose lease was taken over changes nothing of the job, but what it spent
        // was paid for: booked all the same.
        let stale = ClaimedJob {
            attempts: 0,
            ..claimed
        };
        assert!(
            !store
                .fail(&stale, "late", crate::store::Next::Dead, Some(&booking))
                .await
                .expect("fail")
        );
        let row = store.job(id).await.expect("job").expect("row");
        assert_eq!(row.state, JobState::Done);
        let usage = store.job_usage(id).await.expect("usage");
        assert_eq!((usage.calls, usage.cost_micros), (2, 14));
    }

    async fn claims_at_the_same_time_take_one_job_per_pr(store: Store) {
        // Several jobs of one PR can wait together when people asked for them.
        let asked = |key: &str| NewJob {
            requested: true,
            ..job(key)
        };
        for key in ["r#1", "r#1", "r#1", "r#2", "r#2"] {
            store.enqueue(asked(key)).await.expect("enqueue");
        }
        let claims = (0..6).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim(Duration::from_secs(60)).await })
        });
        let mut claimed = Vec::new();
        for c in claims {
            if let Some(job) = c.await.expect("task").expect("claim") {
                claimed.push(job.id);
            }
        }
        let running: Vec<String> = store
            .jobs()
            .await
            .expect("jobs")
            .into_iter()
            .filter(|j| j.state == JobState::Running)
            .map(|j| j.dedupe_key)
            .collect();
        assert_eq!(claimed.len(), 2, "{running:?}");
        assert_eq!(running.len(), 2);
        assert_ne!(running[0], running[1], "two jobs of one PR running at once");
    }

    async fn claim_finish_and_fencing(store: Store) {
        let id = store.enqueue(job("k")).await.expect("enqueue");
        let claimed = store
            .claim(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("a job");
        assert_eq!(claimed.id, id);
        assert_eq!(claimed.attempts, 1);
        assert!(
            store
                .claim(Duration::from_secs(60))
                .await
                .expect("claim")
                .is_none(),
            "leased"
        );
        let stale = ClaimedJob {
            attempts: 0,
            ..claimed.clone()
        };
        assert!(
            !store
                .finish(&stale, JobState::Done, "", None)
                .await
                .expect("finish"),
            "fenced"
        );
        assert!(
            store
                .finish(&claimed, JobState::Done, "ok", None)
                .await
                .expect("finish")
        );
        assert_eq!(
            store.job(id).await.expect("job").expect("row").state,
            JobState::Done
        );
    }

    async fn one_pr_runs_one_job_at_a_time(store: Store) {
        store.enqueue(job("pr#1")).await.expect("a");
        let first = store
            .claim(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("job");
        let second_id = store.enqueue(job("pr#1")).await.expect("b");
        let other_id = store.enqueue(job("pr#2")).await.expect("c");
        let next = store
            .claim(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("job");
        assert_eq!(next.id, other_id, "the same PR's job waits");
        assert!(
            store
                .claim(Duration::from_secs(60))
                .await
                .expect("claim")
                .is_none()
        );
        store
            .finish(&first, JobState::Done, "", None)
            .await
            .expect("finish");
        let later = store
            .claim(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("job");
        assert_eq!(later.id, second_id);
    }

    async fn renew_keeps_a_live_lease_and_reports_a_lost_one(store: Store) {
        store.enqueue(job("k")).await.expect("enqueue");
        let c = store
            .claim(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("job");
        assert!(
            store
                .renew(&c, Duration::from_secs(60))
                .await
                .expect("renew")
        );
        let short = store.claim(Duration::from_millis(1)).await.expect("claim");
        assert!(short.is_none());
        sqlx::query("UPDATE jobs SET lease_until = 0")
            .execute(&store.pool)
            .await
            .expect("expire");
        let taken = store
            .claim(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("reclaimed");
        assert!(
            !store
                .renew(&c, Duration::from_secs(60))
                .await
                .expect("renew"),
            "lost"
        );
        assert!(
            store
                .renew(&taken, Duration::from_secs(60))
                .await
                .expect("renew")
        );
    }

    async fn expired_lease_is_claimed_again(store: Store) {
        store.enqueue(job("k")).await.expect("enqueue");
        let first = store
            .claim(Duration::from_millis(1))
            .await
            .expect("claim")
            .expect("job");
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = store
            .claim(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("reclaimed");
        assert_eq!(second.id, first.id);
        assert_eq!(second.attempts, 2);
        assert!(
            !store
                .finish(&first, JobState::Done, "", None)
                .await
                .expect("old worker"),
            "old lease lost"
        );
        assert!(
            store
                .finish(&second, JobState::Done, "", None)
                .await
                .expect("new worker")
        );
    }

    async fn prune_forgets_old_deliveries_and_finished_jobs_only(store: Store) {
        store
            .record_delivery("old", "ping", None)
            .await
            .expect("delivery");
        let done = store.enqueue(job("a")).await.expect("a");
        let c = store
            .claim(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("job");
        store
            .finish(&c, JobState::Done, "", None)
            .await
            .expect("finish");
        let queued = store.enqueue(job("b")).await.expect("b");
        let (d, j) = store.prune(now_ms() + 1).await.expect("prune");
        assert_eq!((d, j), (1, 1));
        assert!(store.job(done).await.expect("q").is_none());
        assert!(
            store.job(queued).await.expect("q").is_some(),
            "queued work is kept"
        );
        let again = store
            .record_delivery("new", "ping", None)
            .await
            .expect("delivery");
        assert_eq!(again, DeliveryOutcome::Accepted(None));
        assert_eq!(store.prune(0).await.expect("prune"), (0, 0));
    }
}
