//! Durable state: deliveries (dedupe), the job queue, per-PR state, what was posted.
//!
//! One set of queries runs on SQLite (embedded default) and PostgreSQL through sqlx's `Any`
//! driver; placeholders are `$N`, which both accept, and times are Unix milliseconds.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};
use std::sync::{Arc, Weak};

use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error while recording deliveries: {0}")]
    Batch(String),
    #[error("unsupported store url scheme `{0}`: use sqlite://PATH or postgres://...")]
    Url(String),
    #[error("cannot open the database's lock file {0}")]
    Lock(String),
}

/// Which SQL dialect the pool speaks, for the few queries that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A job in the queue as a worker sees it.
#[derive(Debug, Clone)]
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
}

impl ClaimedJob {
    /// Attempts that count against `worker.max_attempts`, this one included.
    pub fn counted_attempts(&self) -> i64 {
        self.attempts - self.refunds
    }
}

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
}

/// A job to add to the queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    /// A queued job with the same key that nobody asked for gives way to this one (taken over
    /// in place, or superseded by a job someone asked for); jobs with one key never run at the
    /// same time.
    pub dedupe_key: String,
    pub payload: String,
    /// The job is due no sooner than this after the latest job with its key that has started
    /// was due, so a burst of events for one PR runs once, for the newest (zero: at once).
    pub min_gap: Duration,
    /// Someone asked for it (a slash command, `/review`, a reply) and waits for its answer:
    /// it is never taken over or superseded, though it supersedes the queued job that nobody
    /// asked for.
    pub requested: bool,
}

/// Outcome of recording a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// First time seen; the job (if any) was queued.
    Accepted(Option<QueuedJob>),
    /// Seen before: nothing was done.
    Duplicate,
}

/// Where a delivery's job went: the row that carries its work, and when that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedJob {
    pub id: i64,
    /// Milliseconds since the epoch; later than now while a burst of pushes is coalesced.
    pub run_at: i64,
}

/// A row of the jobs table, for operators and tests.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: i64,
    pub kind: String,
    pub dedupe_key: String,
    pub state: String,
    pub attempts: i64,
    /// When it is (or was) due, in milliseconds since the epoch.
    pub run_at: i64,
    pub last_error: Option<String>,
    /// How a finished job ended.
    pub result: Option<String>,
}

/// Tokens and cost summed over some model calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageTotals {
    pub calls: i64,
    pub prompt_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub cost_micros: i64,
}

/// A finding as stored for a PR.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Where a job's model calls are booked.
#[derive(Debug, Clone)]
pub struct UsageOwner<'a> {
    pub job_id: Option<i64>,
    pub installation_id: u64,
    pub repo: &'a str,
    pub number: u64,
}

/// A review Critic posted.
#[derive(Debug, Clone)]
pub struct PostedReview {
    pub review_id: i64,
    pub repo: String,
    pub number: i64,
    pub head_sha: String,
    pub job_id: Option<i64>,
    pub inline_comments: i64,
    pub body_findings: i64,
}

pub mod state {
    pub const QUEUED: &str = "queued";
    pub const RUNNING: &str = "running";
    pub const DONE: &str = "done";
    pub const DEAD: &str = "dead";
    pub const SUPERSEDED: &str = "superseded";
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Deliveries go through one writer task that commits them in batches: under load many
    /// deliveries share a transaction and a handful of statements (group commit).
    deliveries: mpsc::Sender<DeliveryWrite>,
    /// The checkpointer stops when the last clone of the store is gone.
    _alive: Arc<()>,
    /// Bumped whenever this process changes a job or records a delivery, so observers
    /// (tests, an admin view) wait for changes instead of polling.
    changes: Arc<tokio::sync::watch::Sender<u64>>,
    /// SQLite: the lock file this process holds (shared) while it uses the database (see
    /// [`hold_lock`]); released by the OS when the process dies, however it dies.
    _owner: Option<Arc<std::fs::File>>,
}

/// One delivery waiting for the writer.
#[derive(Debug)]
struct DeliveryWrite {
    id: String,
    event: String,
    job: Option<NewJob>,
    reply: oneshot::Sender<Result<DeliveryOutcome, StoreError>>,
}

/// PostgreSQL advisory lock taken by every claim ("critic" in ASCII).
const CLAIM_LOCK: i64 = 0x6372_6974_6963;

/// Most deliveries in one transaction; keeps bind parameters far below both databases' caps.
const MAX_BATCH: usize = 256;

/// The lock file beside a SQLite database (`PATH-critic.lock`), held shared by every
/// process that uses the database for as long as it lives. A process that starts and can
/// take it exclusively knows no other live process uses the database: it returns
/// `(file, true)`, and holds it shared from then on (taken back by the OS when the process
/// dies, however it dies). `None` for an in-memory database.
async fn hold_lock(url: &str) -> Result<Option<(std::fs::File, bool)>, StoreError> {
    use sqlx::sqlite::SqliteConnectOptions;
    use std::fs::TryLockError;
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(None);
    }
    let options = SqliteConnectOptions::from_str(url)?;
    let db = options.get_filename();
    if db.as_os_str().is_empty() {
        return Ok(None);
    }
    let mut path = db.as_os_str().to_owned();
    path.push("-critic.lock");
    let lock_error = |e: std::io::Error| {
        StoreError::Lock(format!("{}: {e}", std::path::Path::new(&path).display()))
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_error)?;
    let alone = match file.try_lock() {
        Ok(()) => true,
        Err(TryLockError::WouldBlock) => false,
        Err(TryLockError::Error(e)) => {
            // A file system without locks: behave as if shared, and leave it to leases.
            tracing::warn!(error = %e, "cannot lock the database's lock file; jobs of a dead process wait for their leases");
            return Ok(None);
        }
    };
    // From exclusive (or nothing) to shared. Another process that starts in between sees
    // the exclusive lock or none of ours; ours has no running jobs yet either way.
    for _ in 0..100 {
        match file.try_lock_shared() {
            Ok(()) => return Ok(Some((file, alone))),
            Err(TryLockError::WouldBlock) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(TryLockError::Error(e)) => return Err(lock_error(e)),
        }
    }
    Err(StoreError::Lock(format!(
        "{}: held exclusively by another process for a second",
        std::path::Path::new(&path).display()
    )))
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Connects and applies the embedded migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            // Create the file when missing; the rest of the URL is kept as given.
            let url = if rest.contains("mode=") || rest.contains(":memory:") {
                url.to_string()
            } else if rest.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            (Backend::Postgres, url.to_string())
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::Url(format!("{scheme}:")));
        };
        let options = AnyConnectOptions::from_str(&url)?;
        // SQLite takes one writer at a time: one connection serialises work without the
        // busy-wait sleeps that several connections contending for the lock would cause.
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 1 } else { 10 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; NORMAL is durable across
                        // process crashes, which is what the queue must survive.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        // Checkpoints (and their fsync) run on their own connection, below,
                        // so a commit never waits for one.
                        sqlx::query("PRAGMA wal_autocheckpoint = 0")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&pool).await?,
        }
        let (deliveries, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_deliveries(pool.clone(), backend, rx));
        let alive = Arc::new(());
        if backend == Backend::Sqlite {
            let mut conn = sqlx::AnyConnection::connect_with(&options).await?;
            sqlx::query("PRAGMA busy_timeout = 10000")
                .execute(&mut conn)
                .await?;
            sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&mut conn)
                .await?;
            tokio::spawn(checkpoint(conn, Arc::downgrade(&alive)));
        }
        let (owner, alone) = match backend {
            Backend::Sqlite => match hold_lock(&url).await? {
                Some((file, alone)) => (Some(file), alone),
                None => (None, false),
            },
            Backend::Postgres => (None, false),
        };
        let store = Store {
            pool,
            backend,
            deliveries,
            _alive: alive,
            changes: Arc::new(tokio::sync::watch::Sender::new(0)),
            _owner: owner.map(Arc::new),
        };
        if alone {
            // No other live process uses this database: a job still `running` belonged to
            // a process that died (killed, out of memory, a lost node), and need not wait
            // for its lease.
            let released = store.release_running().await?;
            if released > 0 {
                tracing::info!(
                    jobs = released,
                    "took back jobs left running by a process that stopped"
                );
            }
        }
        Ok(store)
    }

    /// A receiver that sees a new value after every job or delivery change made here.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Readiness: the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Records a delivery and queues its job in one transaction, so a crash never leaves a
    /// delivery marked seen without its work queued. A redelivery does nothing.
    pub async fn record_delivery(
        &self,
        delivery_id: &str,
        event: &str,
        job: Option<NewJob>,
    ) -> Result<DeliveryOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let write = DeliveryWrite {
            id: delivery_id.to_string(),
            event: event.to_string(),
            job,
            reply,
        };
        self.deliveries
            .send(write)
            .await
            .map_err(|_| StoreError::Batch("the delivery writer has stopped".into()))?;
        let outcome = answer
            .await
            .map_err(|_| StoreError::Batch("the delivery writer has stopped".into()))?;
        self.changed();
        outcome
    }

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
             RETURNING id, kind, payload, attempts, refunds, outage_since, delivery_id"
        );
        let query = sqlx::query(&sql)
            .bind(now + lease.as_millis() as i64)
            .bind(now);
        let row = match self.backend {
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
                let row = query.fetch_optional(&mut *tx).await?;
                tx.commit().await?;
                row
            }
        };
        Ok(match row {
            Some(row) => Some(ClaimedJob {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                payload: row.try_get("payload")?,
                attempts: row.try_get("attempts")?,
                refunds: row.try_get("refunds")?,
                outage_since: row.try_get("outage_since")?,
                delivery_id: row.try_get("delivery_id")?,
            }),
            None => None,
        })
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
    pub async fn finish(
        &self,
        job: &ClaimedJob,
        final_state: &str,
        result: &str,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE jobs SET state = $1, lease_until = NULL, updated_at = $2, result = $5 \
             WHERE id = $3 AND state = 'running' AND attempts = $4",
        )
        .bind(final_state)
        .bind(now_ms())
        .bind(job.id)
        .bind(job.attempts)
        .bind(result)
        .execute(&self.pool)
        .await?
        .rows_affected();
        self.changed();
        Ok(n == 1)
    }

    /// Records a failed attempt: queued again, or dead.
    pub async fn fail(
        &self,
        job: &ClaimedJob,
        error: &str,
        next: Next,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        // outage: 1 starts (or continues) an outage, 0 ends it.
        let (state, run_at, refund, outage) = match next {
            Next::Retry {
                after,
                counted,
                outage,
            } => (
                state::QUEUED,
                now.saturating_add(after.as_millis().min(i64::MAX as u128) as i64),
                i64::from(!counted),
                i64::from(outage),
            ),
            Next::Dead => (state::DEAD, now, 0, 0),
        };
        let n = sqlx::query(
            "UPDATE jobs SET state = $1, run_at = $2, last_error = $3, lease_until = NULL, updated_at = $4, \
                refunds = refunds + $7, \
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
        .execute(&self.pool)
        .await?
        .rows_affected();
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
        Ok((deliveries, jobs))
    }

    pub async fn job(&self, id: i64) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, kind, dedupe_key, state, attempts, run_at, last_error, result FROM jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| job_record(&r)).transpose()
    }

    pub async fn jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, dedupe_key, state, attempts, run_at, last_error, result FROM jobs ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_record).collect()
    }

    pub async fn delivery_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM deliveries")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// The head SHA Critic last reviewed on this PR.
    pub async fn last_reviewed_sha(
        &self,
        repo: &str,
        number: u64,
    ) -> Result<Option<String>, StoreError> {
        self.pull_request_field(repo, number, "last_reviewed_sha")
            .await
    }

    /// One nullable column of the PR's row (`column` is one of ours, never user input).
    async fn pull_request_field<T>(
        &self,
        repo: &str,
        number: u64,
        column: &'static str,
    ) -> Result<Option<T>, StoreError>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + Unpin,
    {
        let row = sqlx::query(&format!(
            "SELECT {column} FROM pull_requests WHERE repo = $1 AND number = $2"
        ))
        .bind(repo)
        .bind(number as i64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => r.try_get(column)?,
            None => None,
        })
    }

    /// Books model calls (failed jobs' calls too: they were paid for).
    pub async fn record_usage(
        &self,
        owner: &UsageOwner<'_>,
        calls: &[crate::llm::Spent],
    ) -> Result<(), StoreError> {
        if calls.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for c in calls {
            sqlx::query(
                "INSERT INTO llm_usage (job_id, installation_id, repo, number, task, endpoint, model, \
                 prompt_tokens, output_tokens, cached_tokens, cost_micros, estimated, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(owner.job_id)
            .bind(owner.installation_id as i64)
            .bind(owner.repo)
            .bind(owner.number as i64)
            .bind(c.task)
            .bind(&c.endpoint)
            .bind(&c.model)
            .bind(c.usage.prompt_tokens as i64)
            .bind(c.usage.output_tokens as i64)
            .bind(c.usage.cached_tokens as i64)
            .bind(c.cost_micros)
            .bind(i64::from(c.estimated))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// What one installation's calls cost since `since_ms` (the budget's month).
    pub async fn installation_usage_since(
        &self,
        installation_id: u64,
        since_ms: i64,
    ) -> Result<UsageTotals, StoreError> {
        self.usage_totals(
            "WHERE installation_id = $1 AND created_at >= $2",
            &[installation_id as i64, since_ms],
        )
        .await
    }

    /// What all of a pull request's calls cost.
    pub async fn pr_usage(&self, repo: &str, number: u64) -> Result<UsageTotals, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USAGE_SUMS} FROM llm_usage WHERE repo = $1 AND number = $2"
        ))
        .bind(repo)
        .bind(number as i64)
        .fetch_one(&self.pool)
        .await?;
        usage_totals(&row)
    }

    /// What one job's calls cost, over all its attempts.
    pub async fn job_usage(&self, job_id: i64) -> Result<UsageTotals, StoreError> {
        self.usage_totals("WHERE job_id = $1", &[job_id]).await
    }

    async fn usage_totals(&self, filter: &str, binds: &[i64]) -> Result<UsageTotals, StoreError> {
        let sql = format!("SELECT {USAGE_SUMS} FROM llm_usage {filter}");
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(*b);
        }
        usage_totals(&q.fetch_one(&self.pool).await?)
    }

    /// Whether a once-only note was claimed (posted, or being posted).
    pub async fn notice_claimed(
        &self,
        repo: &str,
        number: u64,
        kind: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM notices WHERE repo = $1 AND number = $2 AND kind = $3 AND notice_key = $4",
        )
        .bind(repo)
        .bind(number as i64)
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
        number: u64,
        kind: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO notices (repo, number, kind, notice_key, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (repo, number, kind, notice_key) DO NOTHING",
        )
        .bind(repo)
        .bind(number as i64)
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
        number: u64,
        kind: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM notices WHERE repo = $1 AND number = $2 AND kind = $3 AND notice_key = $4",
        )
        .bind(repo)
        .bind(number as i64)
        .bind(kind)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Findings posted on a PR, oldest first.
    pub async fn findings(
        &self,
        repo: &str,
        number: u64,
    ) -> Result<Vec<StoredFinding>, StoreError> {
        let rows = sqlx::query(
            "SELECT fingerprint, path, line, severity, place, head_sha, review_id, comment_id, addressed_sha \
             FROM findings WHERE repo = $1 AND number = $2 ORDER BY created_at, fingerprint",
        )
        .bind(repo)
        .bind(number as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredFinding {
                    fingerprint: r.try_get("fingerprint")?,
                    path: r.try_get("path")?,
                    line: r.try_get("line")?,
                    severity: r.try_get("severity")?,
                    place: r.try_get("place")?,
                    head_sha: r.try_get("head_sha")?,
                    review_id: r.try_get("review_id")?,
                    comment_id: r.try_get("comment_id")?,
                    addressed_sha: r.try_get("addressed_sha")?,
                })
            })
            .collect()
    }

    /// Remembers posted findings; one already known keeps its first record.
    pub async fn record_findings(
        &self,
        repo: &str,
        number: u64,
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
            .bind(number as i64)
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
        number: u64,
        fingerprint: &str,
        sha: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE findings SET addressed_sha = $1 WHERE repo = $2 AND number = $3 AND fingerprint = $4",
        )
        .bind(sha)
        .bind(repo)
        .bind(number as i64)
        .bind(fingerprint)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves the PR's reviewed head forward when the run posted no review (nothing new).
    pub async fn mark_reviewed(
        &self,
        repo: &str,
        number: u64,
        head_sha: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pull_requests (repo, number, last_reviewed_sha, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repo, number) DO UPDATE SET last_reviewed_sha = $3, updated_at = $4",
        )
        .bind(repo)
        .bind(number as i64)
        .bind(head_sha)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The summary comment's id, once known.
    pub async fn summary_comment(
        &self,
        repo: &str,
        number: u64,
    ) -> Result<Option<i64>, StoreError> {
        self.pull_request_field(repo, number, "summary_comment_id")
            .await
    }

    pub async fn set_summary_comment(
        &self,
        repo: &str,
        number: u64,
        id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pull_requests (repo, number, summary_comment_id, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repo, number) DO UPDATE SET summary_comment_id = $3, updated_at = $4",
        )
        .bind(repo)
        .bind(number as i64)
        .bind(id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The "Critic" check run of a head, once created.
    pub async fn check_run(&self, repo: &str, head_sha: &str) -> Result<Option<i64>, StoreError> {
        let row =
            sqlx::query("SELECT check_run_id FROM check_runs WHERE repo = $1 AND head_sha = $2")
                .bind(repo)
                .bind(head_sha)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("check_run_id")?),
            None => None,
        })
    }

    /// The check runs job `job_id` uses and has not completed: (repo, head SHA, run id).
    pub async fn open_check_runs_of_job(
        &self,
        job_id: i64,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT repo, head_sha, check_run_id FROM check_runs WHERE job_id = $1 AND completed_at IS NULL",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("repo")?,
                    r.try_get("head_sha")?,
                    r.try_get("check_run_id")?,
                ))
            })
            .collect()
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
        number: u64,
    ) -> Result<Vec<PostedReview>, StoreError> {
        let rows = sqlx::query(
            "SELECT review_id, repo, number, head_sha, job_id, inline_comments, body_findings \
             FROM posted_reviews WHERE repo = $1 AND number = $2 ORDER BY created_at",
        )
        .bind(repo)
        .bind(number as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PostedReview {
                    review_id: r.try_get("review_id")?,
                    repo: r.try_get("repo")?,
                    number: r.try_get("number")?,
                    head_sha: r.try_get("head_sha")?,
                    job_id: r.try_get("job_id")?,
                    inline_comments: r.try_get("inline_comments")?,
                    body_findings: r.try_get("body_findings")?,
                })
            })
            .collect()
    }
}

/// How often the WAL is moved into the database file. Each checkpoint ends in an fsync that
/// briefly slows writes to the WAL; rarer checkpoints mean rarer slow acknowledgements.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Moves the WAL into the database file in the background, off the writer's path.
async fn checkpoint(mut conn: sqlx::AnyConnection, alive: Weak<()>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    while alive.upgrade().is_some() {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed; will try again");
        }
    }
}

/// The delivery writer: takes whatever deliveries are waiting (at least one) and commits
/// them together.
async fn write_deliveries(pool: AnyPool, backend: Backend, mut rx: mpsc::Receiver<DeliveryWrite>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match write_batch(&pool, backend, &batch).await {
            Ok(outcomes) => {
                for (write, outcome) in batch.drain(..).zip(outcomes) {
                    let _ = write.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for write in batch.drain(..) {
                    let _ = write.reply.send(Err(StoreError::Batch(message.clone())));
                }
            }
        }
    }
}

/// Records a batch of deliveries and their jobs in one transaction: one statement for the
/// deliveries, two or three for their jobs (see [`queue_jobs`]).
/// Returns one outcome per write, in order.
async fn write_batch(
    pool: &AnyPool,
    backend: Backend,
    batch: &[DeliveryWrite],
) -> Result<Vec<DeliveryOutcome>, StoreError> {
    let now = now_ms();
    // Within the batch, only the first write of a delivery id can be new.
    let mut seen = HashSet::new();
    let first: Vec<bool> = batch.iter().map(|w| seen.insert(w.id.as_str())).collect();
    let unique: Vec<&DeliveryWrite> = batch
        .iter()
        .zip(&first)
        .filter(|(_, f)| **f)
        .map(|(w, _)| w)
        .collect();

    let mut tx = pool.begin().await?;
    let mut sql = String::from("INSERT INTO deliveries (id, event, received_at) VALUES ");
    for i in 0..unique.len() {
        let b = i * 2;
        sql.push_str(&format!(
            "{}(${}, ${}, $1)",
            if i > 0 { ", " } else { "" },
            b + 2,
            b + 3
        ));
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING RETURNING id");
    let mut q = sqlx::query(&sql).bind(now);
    for w in &unique {
        q = q.bind(w.id.as_str()).bind(w.event.as_str());
    }
    let inserted: HashSet<String> = q
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect::<Result<_, _>>()?;

    // New jobs, in arrival order.
    let jobs: Vec<(Option<&str>, &NewJob)> = unique
        .iter()
        .filter(|w| inserted.contains(&w.id))
        .filter_map(|w| w.job.as_ref().map(|j| (Some(w.id.as_str()), j)))
        .collect();
    let queued = queue_jobs(&mut tx, backend, &jobs, now).await?;
    let job_ids: HashMap<&str, QueuedJob> = jobs
        .iter()
        .zip(queued)
        .filter_map(|((delivery, _), q)| delivery.map(|d| (d, q)))
        .collect();
    tx.commit().await?;

    Ok(batch
        .iter()
        .zip(&first)
        .map(|(w, is_first)| {
            if *is_first && inserted.contains(&w.id) {
                DeliveryOutcome::Accepted(job_ids.get(w.id.as_str()).copied())
            } else {
                DeliveryOutcome::Duplicate
            }
        })
        .collect())
}

/// Queues jobs (each with the delivery that brought it, if any). Returns, in the list's order,
/// the row that carries each job's work.
///
/// A job nobody asked for takes over the queued job of its key that nobody asked for, when
/// there is one: that row gets the newer payload and delivery, in place. So a burst of pushes
/// to one PR keeps one queued row (one row changed per push instead of one inserted and one
/// superseded: fewer pages written on the acknowledgement's path). A job someone asked for is
/// always a row of its own, and supersedes the queued job of its key that nobody asked for.
/// Only a row never claimed is taken over: one waiting for a retry is superseded, so its
/// attempts (which fence a stalled worker's late writes) and its error stay with it.
async fn queue_jobs(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    jobs: &[(Option<&str>, &NewJob)],
    now: i64,
) -> Result<Vec<QueuedJob>, StoreError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<&str> = {
        let mut k: Vec<&str> = jobs.iter().map(|(_, j)| j.dedupe_key.as_str()).collect();
        k.sort_unstable();
        k.dedup();
        k
    };
    // On PostgreSQL the rows are locked here, in id order, so replicas queueing for the same
    // PRs wait for each other instead of deadlocking, and a claim skips them meanwhile.
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "SELECT id, dedupe_key, attempts FROM jobs WHERE state = 'queued' AND requested = 0 AND dedupe_key IN ({}) ORDER BY id{lock}",
        placeholders(1, keys.len())
    );
    let mut q = sqlx::query(&sql);
    for k in &keys {
        q = q.bind(*k);
    }
    let mut waiting: HashMap<String, Vec<i64>> = HashMap::new();
    let mut retrying = Vec::new();
    for row in q.fetch_all(&mut **tx).await? {
        let id: i64 = row.try_get("id")?;
        if row.try_get::<i64, _>("attempts")? > 0 {
            retrying.push(id);
        } else {
            waiting
                .entry(row.try_get("dedupe_key")?)
                .or_default()
                .push(id);
        }
    }
    queue_planned(tx, jobs, waiting, retrying, now).await
}

/// The rest of [`queue_jobs`], given the queued rows nobody asked for and nobody claimed yet
/// per key (oldest first), and those waiting for a retry (superseded), as read in this
/// transaction. Should a row have been claimed since, its job gets a row of its own.
async fn queue_planned(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    jobs: &[(Option<&str>, &NewJob)],
    waiting: HashMap<String, Vec<i64>>,
    retrying: Vec<i64>,
    now: i64,
) -> Result<Vec<QueuedJob>, StoreError> {
    let mut plan = QueuePlan::new(jobs, waiting);
    plan.supersede.extend(retrying);

    if !plan.supersede.is_empty() {
        let sql = format!(
            "UPDATE jobs SET state = 'superseded', updated_at = $1 WHERE state = 'queued' AND id IN ({})",
            placeholders(2, plan.supersede.len())
        );
        let mut q = sqlx::query(&sql).bind(now);
        for id in &plan.supersede {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }

    let mut taken = HashMap::new();
    if !plan.replace.is_empty() {
        taken = replace_jobs(tx, jobs, &plan.replace, now).await?;
        // Another replica may have claimed a row since it was read: its job gets a row of its
        // own after all.
        for (row, job) in std::mem::take(&mut plan.replace) {
            if !taken.contains_key(&row) {
                plan.insert.push((job, state::QUEUED));
                let slot = Slot::New(plan.insert.len() - 1);
                for s in plan.slots.iter_mut() {
                    if *s == Slot::Row(row) {
                        *s = slot;
                    }
                }
            }
        }
    }

    let inserted = insert_jobs(tx, jobs, &plan.insert, now).await?;
    plan.slots
        .iter()
        .map(|slot| match *slot {
            Slot::Row(id) => taken
                .get(&id)
                .map(|&run_at| QueuedJob { id, run_at })
                .ok_or_else(|| StoreError::Batch("a job taken over was not returned".into())),
            Slot::New(i) => inserted
                .get(i)
                .copied()
                .ok_or_else(|| StoreError::Batch("the job insert returned too few ids".into())),
        })
        .collect()
}

/// `$first, $first+1, ...`: `count` SQL placeholders.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a job's work ends up: a row already queued, or the n-th row to insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Row(i64),
    New(usize),
}

/// What [`queue_jobs`] does with a list of jobs, decided in the list's order.
#[derive(Debug, Default, PartialEq, Eq)]
struct QueuePlan {
    /// Queued rows that no longer run.
    supersede: Vec<i64>,
    /// Queued rows that take the payload of the job at this index of the list.
    replace: Vec<(i64, usize)>,
    /// New rows: the job at this index of the list, and its state.
    insert: Vec<(usize, &'static str)>,
    /// Per job of the list, the row that carries its work.
    slots: Vec<Slot>,
}

impl QueuePlan {
    /// `waiting`: the ids of the queued rows nobody asked for, per key, oldest first.
    fn new(jobs: &[(Option<&str>, &NewJob)], mut waiting: HashMap<String, Vec<i64>>) -> QueuePlan {
        let mut plan = QueuePlan::default();
        // Normally a key has at most one such row; should two replicas have queued one each,
        // the newest is kept.
        let mut open: HashMap<&str, Slot> = HashMap::new();
        for (_, j) in jobs {
            let key = j.dedupe_key.as_str();
            if let Some(mut ids) = waiting.remove(key)
                && let Some(newest) = ids.pop()
            {
                plan.supersede.extend(ids);
                open.insert(key, Slot::Row(newest));
            }
        }
        for (i, (_, j)) in jobs.iter().enumerate() {
            let key = j.dedupe_key.as_str();
            if j.requested {
                // The question's job does the work of the automatic one it supersedes.
                let asked = Slot::New(plan.insert.len());
                plan.insert.push((i, state::QUEUED));
                if let Some(superseded) = open.remove(key) {
                    match superseded {
                        Slot::Row(id) => {
                            plan.replace.retain(|(row, _)| *row != id);
                            plan.supersede.push(id);
                        }
                        Slot::New(n) => plan.insert[n].1 = state::SUPERSEDED,
                    }
                    for s in plan.slots.iter_mut().filter(|s| **s == superseded) {
                        *s = asked;
                    }
                }
                plan.slots.push(asked);
                continue;
            }
            let slot = match open.get(key) {
                Some(Slot::Row(id)) => {
                    plan.replace.retain(|(row, _)| row != id);
                    plan.replace.push((*id, i));
                    Slot::Row(*id)
                }
                Some(Slot::New(n)) => {
                    plan.insert[*n].0 = i;
                    Slot::New(*n)
                }
                None => {
                    plan.insert.push((i, state::QUEUED));
                    Slot::New(plan.insert.len() - 1)
                }
            };
            open.insert(key, slot);
            plan.slots.push(slot);
        }
        plan
    }
}

/// Gives queued rows the work of newer jobs (`(row, index in jobs)`), each due as a new job
/// would be. Returns the rows changed, with when each is due: a row no longer queued is left
/// alone.
async fn replace_jobs(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    jobs: &[(Option<&str>, &NewJob)],
    replace: &[(i64, usize)],
    now: i64,
) -> Result<HashMap<i64, i64>, StoreError> {
    let mut next = params();
    let mut rows = Vec::with_capacity(replace.len());
    for (_, i) in replace {
        let (id, kind, payload, delivery, key) = (next(), next(), next(), next(), next());
        let run_at = due_at(jobs[*i].1.min_gap, &key, &mut next);
        rows.push(format!(
            "SELECT {id} AS id, {kind} AS kind, {payload} AS payload, {delivery} AS delivery_id, {run_at} AS run_at"
        ));
    }
    let sql = format!(
        "UPDATE jobs SET kind = v.kind, payload = v.payload, delivery_id = v.delivery_id, \
         run_at = v.run_at, updated_at = $1 \
         FROM ({}) AS v WHERE jobs.id = v.id AND jobs.state = 'queued' AND jobs.attempts = 0 \
         RETURNING jobs.id, jobs.run_at",
        rows.join(" UNION ALL ")
    );
    let mut q = sqlx::query(&sql).bind(now);
    for (row, i) in replace {
        let (delivery, j) = jobs[*i];
        q = q
            .bind(*row)
            .bind(j.kind.as_str())
            .bind(j.payload.as_str())
            .bind(delivery)
            .bind(j.dedupe_key.as_str());
        if !j.min_gap.is_zero() {
            q = q.bind(gap_ms(j.min_gap));
        }
    }
    q.fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("run_at")?)))
        .collect()
}

/// Inserts new rows (`(index in jobs, state)`) in one statement; returns them in order.
async fn insert_jobs(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    jobs: &[(Option<&str>, &NewJob)],
    insert: &[(usize, &'static str)],
    now: i64,
) -> Result<Vec<QueuedJob>, StoreError> {
    if insert.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = String::from(
        "INSERT INTO jobs (kind, dedupe_key, payload, state, attempts, run_at, delivery_id, requested, created_at, updated_at) VALUES ",
    );
    let mut next = params();
    for (k, (i, _)) in insert.iter().enumerate() {
        let (kind, key, payload, state, delivery, requested) =
            (next(), next(), next(), next(), next(), next());
        let run_at = due_at(jobs[*i].1.min_gap, &key, &mut next);
        sql.push_str(&format!(
            "{}({kind}, {key}, {payload}, {state}, 0, {run_at}, {delivery}, {requested}, $1, $1)",
            if k > 0 { ", " } else { "" },
        ));
    }
    sql.push_str(" RETURNING id, run_at");
    let mut q = sqlx::query(&sql).bind(now);
    for (i, state) in insert {
        let (delivery, j) = jobs[*i];
        q = q
            .bind(j.kind.as_str())
            .bind(j.dedupe_key.as_str())
            .bind(j.payload.as_str())
            .bind(*state)
            .bind(delivery)
            .bind(i64::from(j.requested));
        if !j.min_gap.is_zero() {
            q = q.bind(gap_ms(j.min_gap));
        }
    }
    // Ids grow in insertion order, which is the list's order; RETURNING's order is not
    // promised, so sort.
    let mut rows: Vec<QueuedJob> = q
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| {
            Ok(QueuedJob {
                id: r.try_get("id")?,
                run_at: r.try_get("run_at")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    rows.sort_unstable_by_key(|q| q.id);
    Ok(rows)
}

/// Numbered SQL placeholders from `$2` on (`$1` is always now).
fn params() -> impl FnMut() -> String {
    let mut n = 1;
    move || {
        n += 1;
        format!("${n}")
    }
}

/// SQL for when a job with this gap and the key in placeholder `key` is due: now, or after
/// the gap, whose placeholder it takes from `next`.
fn due_at(gap: Duration, key: &str, next: &mut impl FnMut() -> String) -> String {
    if gap.is_zero() {
        "$1".to_string()
    } else {
        run_at_after_gap("$1", key, &next())
    }
}

/// SQL for a new job's `run_at`: `now`, or `gap` milliseconds after the latest job with the
/// same key that has started (running, done or dead) was due, whichever is later. Jobs still
/// waiting do not count (a `/review` waiting for its retry does not hold a push back), so a
/// burst of events keeps the window of the last job that ran. The arguments are SQL
/// placeholders: `$n` for now, the key and the gap in milliseconds.
fn run_at_after_gap(now: &str, key: &str, gap: &str) -> String {
    format!(
        "(SELECT CASE WHEN MAX(p.run_at) + {gap} > {now} THEN MAX(p.run_at) + {gap} ELSE {now} END \
         FROM jobs p WHERE p.dedupe_key = {key} AND p.state IN ('running', 'done', 'dead'))"
    )
}

/// A gap in milliseconds, capped at a day so the SQL addition cannot overflow.
fn gap_ms(gap: Duration) -> i64 {
    gap.min(Duration::from_secs(86_400)).as_millis() as i64
}

/// Postgres sums BIGINTs as NUMERIC, which the Any driver cannot read: cast back.
const USAGE_SUMS: &str = "CAST(COUNT(*) AS BIGINT) AS calls, \
     CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, \
     CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
     CAST(COALESCE(SUM(cached_tokens), 0) AS BIGINT) AS cached_tokens, \
     CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS cost_micros";

fn usage_totals(r: &sqlx::any::AnyRow) -> Result<UsageTotals, StoreError> {
    Ok(UsageTotals {
        calls: r.try_get("calls")?,
        prompt_tokens: r.try_get("prompt_tokens")?,
        output_tokens: r.try_get("output_tokens")?,
        cached_tokens: r.try_get("cached_tokens")?,
        cost_micros: r.try_get("cost_micros")?,
    })
}

fn job_record(r: &sqlx::any::AnyRow) -> Result<JobRecord, StoreError> {
    Ok(JobRecord {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        dedupe_key: r.try_get("dedupe_key")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        run_at: r.try_get("run_at")?,
        last_error: r.try_get("last_error")?,
        result: r.try_get("result")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_in(after: Duration) -> Next {
        Next::Retry {
            after,
            counted: true,
            outage: false,
        }
    }

    async fn sqlite() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        (Store::connect(&url).await.expect("connect"), dir)
    }

    /// The PostgreSQL server of these machines (CI starts it): trust auth, database `test`.
    /// `CRITIC_TEST_POSTGRES_URL` points elsewhere.
    fn postgres_url() -> String {
        std::env::var("CRITIC_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    /// A fresh database per test, so tests run in parallel and start empty; dropped after.
    struct PgDb {
        admin: String,
        name: String,
    }

    impl PgDb {
        async fn create() -> (Store, PgDb) {
            use sqlx::Connection;
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let admin = postgres_url();
            let name = format!(
                "critic_t{}_{}_{}",
                std::process::id(),
                now_ms(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| {
                    panic!("PostgreSQL at {admin} (start it, or set CRITIC_TEST_POSTGRES_URL): {e}")
                });
            sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create database");
            let (base, _) = admin.rsplit_once('/').expect("url with a database");
            let store = Store::connect(&format!("{base}/{name}"))
                .await
                .expect("connect to the new database");
            (store, PgDb { admin, name })
        }

        async fn drop_db(self, store: Store) {
            use sqlx::Connection;
            store.pool.close().await;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
                let _ = sqlx::raw_sql(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .execute(&mut conn)
                .await;
            }
        }
    }

    /// Each store test runs against both backends: the same SQL must hold on SQLite and
    /// PostgreSQL.
    macro_rules! on_both_backends {
        ($($name:ident),* $(,)?) => {
            mod on_sqlite {
                $(
                    #[tokio::test]
                    async fn $name() {
                        let (store, _dir) = super::sqlite().await;
                        super::$name(store).await;
                    }
                )*
            }
            mod on_postgres {
                $(
                    #[tokio::test]
                    async fn $name() {
                        let (store, db) = super::PgDb::create().await;
                        super::$name(store.clone()).await;
                        db.drop_db(store).await;
                    }
                )*
            }
        };
    }

    on_both_backends!(
        delivery_dedupe_queues_once,
        concurrent_deliveries_batch_correctly,
        newer_job_takes_over_the_queued_one,
        a_job_waiting_for_its_retry_is_superseded_not_taken_over,
        a_row_claimed_since_it_was_read_is_not_taken_over,
        a_batch_takes_over_in_its_order,
        a_burst_for_one_pr_runs_once_after_the_window,
        a_job_someone_asked_for_is_never_superseded,
        claims_at_the_same_time_take_one_job_per_pr,
        claim_finish_and_fencing,
        one_pr_runs_one_job_at_a_time,
        renew_keeps_a_live_lease_and_reports_a_lost_one,
        expired_lease_is_claimed_again,
        failure_retries_then_dies_with_error_kept,
        refunded_attempts_and_outages_are_remembered,
        review_state_round_trip,
        prune_forgets_old_deliveries_and_finished_jobs_only,
        findings_summary_check_runs_usage_and_notices,
    );

    fn job(key: &str) -> NewJob {
        NewJob {
            kind: "review".into(),
            dedupe_key: key.into(),
            payload: "{}".into(),
            min_gap: Duration::ZERO,
            requested: false,
        }
    }

    #[tokio::test]
    async fn deliveries_seen_before_an_upgrade_are_still_duplicates() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        // The schema as it was before deliveries were keyed by id alone.
        let mut old = sqlx::migrate!("migrations/sqlite");
        old.migrations = std::borrow::Cow::Owned(
            old.migrations
                .iter()
                .filter(|m| m.version < 6)
                .cloned()
                .collect(),
        );
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        old.run(&mut conn).await.expect("old migrations");
        sqlx::query("INSERT INTO deliveries (id, event, received_at) VALUES ('d1', 'ping', 1)")
            .execute(&mut conn)
            .await
            .expect("insert");
        conn.close().await.expect("close");

        let store = Store::connect(&url).await.expect("upgrade");
        let again = store
            .record_delivery("d1", "pull_request", Some(job("a#1")))
            .await
            .expect("record");
        assert_eq!(again, DeliveryOutcome::Duplicate);
        assert_eq!(store.delivery_count().await.expect("n"), 1);
        let new = store
            .record_delivery("d2", "pull_request", None)
            .await
            .expect("record");
        assert_eq!(new, DeliveryOutcome::Accepted(None));
    }

    async fn delivery_dedupe_queues_once(store: Store) {
        let first = store
            .record_delivery("d1", "pull_request", Some(job("a#1")))
            .await
            .expect("ok");
        assert!(matches!(first, DeliveryOutcome::Accepted(Some(_))));
        let again = store
            .record_delivery("d1", "pull_request", Some(job("a#1")))
            .await
            .expect("ok");
        assert_eq!(again, DeliveryOutcome::Duplicate);
        assert_eq!(store.jobs().await.expect("jobs").len(), 1);
        assert_eq!(store.delivery_count().await.expect("n"), 1);
    }

    async fn concurrent_deliveries_batch_correctly(store: Store) {
        let mut tasks = Vec::new();
        for i in 0..300 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                // Ten PRs; delivery ids repeat once each (redeliveries racing the original).
                let id = format!("d{}", i % 150);
                let job = (i % 3 != 0).then(|| job(&format!("pr#{}", i % 10)));
                store
                    .record_delivery(&id, "pull_request", job)
                    .await
                    .expect("recorded")
            }));
        }
        let mut accepted = 0;
        let mut duplicates = 0;
        for t in tasks {
            match t.await.expect("task") {
                DeliveryOutcome::Accepted(_) => accepted += 1,
                DeliveryOutcome::Duplicate => duplicates += 1,
            }
        }
        assert_eq!((accepted, duplicates), (150, 150));
        assert_eq!(store.delivery_count().await.expect("n"), 150);
        let jobs = store.jobs().await.expect("jobs");
        for pr in 0..10 {
            let key = format!("pr#{pr}");
            let queued = jobs
                .iter()
                .filter(|j| j.dedupe_key == key && j.state == state::QUEUED)
                .count();
            assert!(queued <= 1, "{key}: {queued} queued");
        }
        assert!(jobs.iter().any(|j| j.state == state::QUEUED));
    }

    fn job_with(key: &str, payload: &str) -> NewJob {
        NewJob {
            payload: payload.into(),
            ..job(key)
        }
    }

    /// The rows of one key, as (state, payload of the job a claim would run).
    async fn rows_of(store: &Store, key: &str) -> Vec<JobRecord> {
        let mut rows: Vec<JobRecord> = store
            .jobs()
            .await
            .expect("jobs")
            .into_iter()
            .filter(|j| j.dedupe_key == key)
            .collect();
        rows.sort_by_key(|j| j.id);
        rows
    }

    async fn newer_job_takes_over_the_queued_one(store: Store) {
        let a = store.enqueue(job_with("r#1", "a")).await.expect("a");
        let other = store
            .enqueue(job_with("r#2", "other"))
            .await
            .expect("other");
        let b = store.enqueue(job_with("r#1", "b")).await.expect("b");
        // One row for r#1, which now runs b's payload; r#2 is left alone.
        assert_eq!(a, b);
        assert_eq!(rows_of(&store, "r#1").await.len(), 1);
        let lease = Duration::from_secs(60);
        let mut payloads = Vec::new();
        while let Some(j) = store.claim(lease).await.expect("claim") {
            payloads.push((j.id, j.payload));
        }
        payloads.sort();
        assert_eq!(
            payloads,
            vec![(b, "b".to_string()), (other, "other".to_string())]
        );

        // A running job is not taken over: the next push queues a row of its own.
        let c = store.enqueue(job_with("r#1", "c")).await.expect("c");
        assert_ne!(c, b);
        let states: Vec<String> = rows_of(&store, "r#1")
            .await
            .into_iter()
            .map(|j| j.state)
            .collect();
        assert_eq!(states, [state::RUNNING, state::QUEUED]);
    }

    async fn a_row_claimed_since_it_was_read_is_not_taken_over(store: Store) {
        let a = store.enqueue(job_with("r#1", "a")).await.expect("a");
        let lease = Duration::from_secs(60);
        let claimed = store.claim(lease).await.expect("claim").expect("due");
        // As if another replica claimed `a` between this transaction's read and its update.
        let stale = HashMap::from([("r#1".to_string(), vec![a])]);
        let push = job_with("r#1", "b");
        let mut tx = store.pool.begin().await.expect("tx");
        let queued = queue_planned(&mut tx, &[(None, &push)], stale, Vec::new(), now_ms())
            .await
            .expect("queue");
        tx.commit().await.expect("commit");
        assert_eq!(queued.len(), 1);
        assert_ne!(queued[0].id, a);
        let rows = rows_of(&store, "r#1").await;
        let states: Vec<&str> = rows.iter().map(|j| j.state.as_str()).collect();
        assert_eq!(states, [state::RUNNING, state::QUEUED]);
        assert_eq!(claimed.payload, "a");
        let next = store.job(queued[0].id).await.expect("job").expect("row");
        assert_eq!(next.state, state::QUEUED);
    }

    async fn a_job_waiting_for_its_retry_is_superseded_not_taken_over(store: Store) {
        let lease = Duration::from_secs(60);
        let a = store.enqueue(job_with("r#1", "a")).await.expect("a");
        let claimed = store.claim(lease).await.expect("claim").expect("due");
        store
            .fail(
                &claimed,
                "GitHub said 502",
                retry_in(Duration::from_secs(600)),
            )
            .await
            .expect("fail");
        // A push replaces the failed work with a row of its own, due now; the failed row
        // keeps its attempts and its error.
        let b = store.enqueue(job_with("r#1", "b")).await.expect("b");
        assert_ne!(a, b);
        let old = store.job(a).await.expect("job").expect("row");
        assert_eq!(
            (old.state.as_str(), old.attempts, old.last_error.as_deref()),
            (state::SUPERSEDED, 1, Some("GitHub said 502"))
        );
        let claimed = store.claim(lease).await.expect("claim").expect("due now");
        assert_eq!(
            (claimed.id, claimed.payload.as_str(), claimed.attempts),
            (b, "b", 1)
        );
    }

    async fn a_burst_for_one_pr_runs_once_after_the_window(store: Store) {
        let gap = Duration::from_secs(60);
        let spaced = |key: &str| NewJob {
            min_gap: gap,
            ..job(key)
        };
        let lease = Duration::from_secs(60);
        let record = |id: &'static str, job: NewJob| {
            let store = store.clone();
            async move {
                match store.record_delivery(id, "pull_request", Some(job)).await {
                    Ok(DeliveryOutcome::Accepted(Some(job))) => job.id,
                    other => panic!("{id}: {other:?}"),
                }
            }
        };
        let row = |id: i64| {
            let store = store.clone();
            async move { store.job(id).await.expect("job").expect("row") }
        };

        // The first event of a PR is due at once, and runs.
        let first = record("d1", spaced("r#1")).await;
        let first_due = row(first).await.run_at;
        assert!(first_due <= now_ms());
        let claimed = store.claim(lease).await.expect("claim").expect("due");
        assert_eq!(claimed.id, first);
        store
            .finish(&claimed, state::DONE, "reviewed")
            .await
            .expect("finish");

        // The next waits for the rest of the window; a third replaces it in the same window,
        // and so do two arriving together.
        let second = record("d2", spaced("r#1")).await;
        assert_eq!(row(second).await.run_at, first_due + 60_000);
        assert!(
            store.claim(lease).await.expect("claim").is_none(),
            "not due"
        );
        let third = record("d3", spaced("r#1")).await;
        let (fourth, fifth) =
            tokio::join!(record("d4", spaced("r#1")), record("d5", spaced("r#1")));
        // All of them are one queued row, due when the window ends.
        assert_eq!([third, fourth, fifth], [second; 3]);
        let last = row(second).await;
        assert_eq!(
            (last.state.as_str(), last.run_at),
            (state::QUEUED, first_due + 60_000)
        );
        assert_eq!(rows_of(&store, "r#1").await.len(), 2);

        // Another PR is not held back, and neither is a job someone asked for (`/review`,
        // which has no gap): it replaces the waiting one and runs at once.
        let other = record("d6", spaced("r#2")).await;
        assert!(row(other).await.run_at <= now_ms());
        let asked = store
            .enqueue(NewJob {
                requested: true,
                ..job("r#1")
            })
            .await
            .expect("asked");
        assert_eq!(row(last.id).await.state, state::SUPERSEDED);
        let mut due = Vec::new();
        while let Some(j) = store.claim(lease).await.expect("claim") {
            due.push(j.id);
        }
        due.sort_unstable();
        assert_eq!(due, vec![other, asked]);
    }

    async fn a_job_someone_asked_for_is_never_superseded(store: Store) {
        let asked = |key: &str| NewJob {
            requested: true,
            ..job(key)
        };
        let state_of = |id: i64| {
            let store = store.clone();
            async move { store.job(id).await.expect("job").expect("row").state }
        };
        // A push, then `/review`: the question replaces the push's job.
        let push = store.enqueue(job("r#1")).await.expect("push");
        let review = store.enqueue(asked("r#1")).await.expect("review");
        assert_eq!(state_of(push).await, state::SUPERSEDED);
        // Later events queue beside it; the last automatic one still takes over the earlier.
        let push = store.enqueue(job("r#1")).await.expect("push");
        let newer = store.enqueue(job("r#1")).await.expect("newer");
        assert_eq!(push, newer);
        assert_eq!(state_of(review).await, state::QUEUED);
        assert_eq!(state_of(newer).await, state::QUEUED);
        // A second question does not replace the first.
        let again = store.enqueue(asked("r#1")).await.expect("again");
        assert_eq!(state_of(review).await, state::QUEUED);
        assert_eq!(state_of(again).await, state::QUEUED);
        assert_eq!(state_of(newer).await, state::SUPERSEDED);

        // The same within one batch of deliveries.
        let (a, b, c) = tokio::join!(
            store.record_delivery("d1", "issue_comment", Some(asked("r#2"))),
            store.record_delivery("d2", "pull_request", Some(job("r#2"))),
            store.record_delivery("d3", "pull_request", Some(job("r#2"))),
        );
        let id = |o: Result<DeliveryOutcome, StoreError>| match o {
            Ok(DeliveryOutcome::Accepted(Some(q))) => q.id,
            other => panic!("{other:?}"),
        };
        let (a, b, c) = (id(a), id(b), id(c));
        assert_eq!(state_of(a).await, state::QUEUED);
        assert_eq!(b, c);
        assert_eq!(state_of(c).await, state::QUEUED);
    }

    async fn a_batch_takes_over_in_its_order(store: Store) {
        let asked = |key: &str, payload: &str| NewJob {
            requested: true,
            ..job_with(key, payload)
        };
        store.enqueue(job_with("r#1", "old")).await.expect("old");
        // One batch: a push (takes over the queued row), a question (supersedes it), a push
        // (a new row), another push (takes that one over); and on r#2 a push then a question.
        let deliveries = [
            ("d1", job_with("r#1", "p1")),
            ("d2", asked("r#1", "q1")),
            ("d3", job_with("r#1", "p2")),
            ("d4", job_with("r#1", "p3")),
            ("d5", job_with("r#2", "p4")),
            ("d6", asked("r#2", "q2")),
        ];
        let outcomes = futures_util::future::join_all(
            deliveries
                .iter()
                .map(|(d, j)| store.record_delivery(d, "pull_request", Some(j.clone()))),
        )
        .await;
        let ids: Vec<i64> = outcomes
            .into_iter()
            .map(|o| match o {
                Ok(DeliveryOutcome::Accepted(Some(q))) => q.id,
                other => panic!("{other:?}"),
            })
            .collect();
        // Each delivery names the job that does its work: d1's push is done by d2's question.
        assert_eq!((ids[0], ids[2], ids[4]), (ids[1], ids[3], ids[5]));
        let lease = Duration::from_secs(60);
        let mut ran = Vec::new();
        while let Some(j) = store.claim(lease).await.expect("claim") {
            ran.push(j.payload.clone());
            store.finish(&j, state::DONE, "ok").await.expect("finish");
        }
        ran.sort();
        assert_eq!(ran, ["p3", "q1", "q2"]);
        let states = |key: &'static str| {
            let store = store.clone();
            async move {
                rows_of(&store, key)
                    .await
                    .into_iter()
                    .map(|j| j.state)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            states("r#1").await,
            [state::SUPERSEDED, state::DONE, state::DONE]
        );
        assert_eq!(states("r#2").await, [state::SUPERSEDED, state::DONE]);
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
            .filter(|j| j.state == state::RUNNING)
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
            !store.finish(&stale, state::DONE, "").await.expect("finish"),
            "fenced"
        );
        assert!(
            store
                .finish(&claimed, state::DONE, "ok")
                .await
                .expect("finish")
        );
        assert_eq!(
            store.job(id).await.expect("job").expect("row").state,
            state::DONE
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
        store.finish(&first, state::DONE, "").await.expect("finish");
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
                .finish(&first, state::DONE, "")
                .await
                .expect("old worker"),
            "old lease lost"
        );
        assert!(
            store
                .finish(&second, state::DONE, "")
                .await
                .expect("new worker")
        );
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
                .fail(&c, "502", retry(true, true))
                .await
                .expect("fail")
        );
        let c = claim_due(&store).await;
        let began = c.outage_since.expect("outage remembered");
        assert_eq!((c.attempts, c.counted_attempts()), (2, 2));
        // Still down: given back, and the outage keeps its start.
        assert!(
            store
                .fail(&c, "502", retry(false, true))
                .await
                .expect("fail")
        );
        let c = claim_due(&store).await;
        assert_eq!((c.attempts, c.counted_attempts()), (3, 2));
        assert_eq!(c.outage_since, Some(began));
        // Something else: the outage is over.
        assert!(
            store
                .fail(&c, "model", retry(true, false))
                .await
                .expect("fail")
        );
        let c = claim_due(&store).await;
        assert_eq!((c.counted_attempts(), c.outage_since), (3, None));
    }

    #[tokio::test]
    async fn a_restart_on_a_database_no_one_holds_takes_back_running_jobs_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let first = Store::connect(&url).await.expect("connect");
        first.enqueue(job("k")).await.expect("enqueue");
        let running = first
            .claim(Duration::from_secs(3600))
            .await
            .expect("claim")
            .expect("job");
        // A second process while the first lives: the lease stands.
        let second = Store::connect(&url).await.expect("connect");
        assert!(
            second
                .claim(Duration::from_secs(60))
                .await
                .expect("claim")
                .is_none()
        );
        // The first dies; a third starts while the second lives: the second may be running
        // that job by now, so it is not taken back.
        drop(first);
        let third = Store::connect(&url).await.expect("connect");
        assert!(
            third
                .claim(Duration::from_secs(60))
                .await
                .expect("claim")
                .is_none()
        );
        drop(second);
        drop(third);
        // Alone on the database: what was left running is taken back at once.
        let restarted = Store::connect(&url).await.expect("connect");
        let again = restarted
            .claim(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("taken back without waiting an hour");
        assert_eq!((again.id, again.attempts), (running.id, 2));
        // An in-memory database has nothing to share and takes no lock file.
        let memory = Store::connect("sqlite::memory:").await.expect("memory");
        assert!(memory._owner.is_none());
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
                .fail(&c, "boom", retry_in(Duration::from_secs(3600)))
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
            (row.state.as_str(), row.last_error.as_deref()),
            (state::QUEUED, Some("boom"))
        );
        let c2 = ClaimedJob { attempts: 1, ..c };
        // Failing a job that is not running (queued again) changes nothing.
        assert!(!store.fail(&c2, "boom", Next::Dead).await.expect("fail"));
        let row = store.job(id).await.expect("job").expect("row");
        assert_eq!(
            row.state,
            state::QUEUED,
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
                .fail(&c3, "final boom", Next::Dead)
                .await
                .expect("fail")
        );
        let row = store.job(id).await.expect("job").expect("row");
        assert_eq!(
            (row.state.as_str(), row.last_error.as_deref()),
            (state::DEAD, Some("final boom"))
        );
    }

    async fn review_state_round_trip(store: Store) {
        assert_eq!(store.last_reviewed_sha("o/r", 1).await.expect("q"), None);
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
                .last_reviewed_sha("o/r", 1)
                .await
                .expect("q")
                .as_deref(),
            Some("bbb")
        );
        assert_eq!(store.posted_reviews("o/r", 1).await.expect("q").len(), 2);
    }

    async fn findings_summary_check_runs_usage_and_notices(store: Store) {
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
        assert!(store.findings("o/r", 1).await.expect("q").is_empty());
        store
            .record_findings("o/r", 1, &[finding("f1", Some(70)), finding("f2", None)])
            .await
            .expect("record");
        // The same fingerprint again is kept once, as first recorded; only a thread id
        // learnt later is added.
        store
            .record_findings("o/r", 1, &[finding("f1", Some(99))])
            .await
            .expect("record again");
        store
            .record_findings("o/r", 1, &[finding("f2", Some(71))])
            .await
            .expect("thread id learnt");
        store
            .mark_addressed("o/r", 1, "f1", "bbb")
            .await
            .expect("addressed");
        let got = store.findings("o/r", 1).await.expect("q");
        assert_eq!(got.len(), 2);
        let f2 = got.iter().find(|f| f.fingerprint == "f2").expect("f2");
        assert_eq!(f2.comment_id, Some(71));
        let f1 = got.iter().find(|f| f.fingerprint == "f1").expect("f1");
        assert_eq!(
            (f1.comment_id, f1.addressed_sha.as_deref()),
            (Some(70), Some("bbb"))
        );
        assert!(store.findings("o/r", 2).await.expect("q").is_empty());

        assert_eq!(store.summary_comment("o/r", 1).await.expect("q"), None);
        store.set_summary_comment("o/r", 1, 55).await.expect("set");
        store
            .mark_reviewed("o/r", 1, "bbb")
            .await
            .expect("reviewed");
        assert_eq!(store.summary_comment("o/r", 1).await.expect("q"), Some(55));
        assert_eq!(
            store
                .last_reviewed_sha("o/r", 1)
                .await
                .expect("q")
                .as_deref(),
            Some("bbb")
        );

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

        let spent = crate::llm::Spent {
            endpoint: "default".into(),
            model: "m".into(),
            task: "review",
            usage: crate::llm::Usage {
                prompt_tokens: 100,
                output_tokens: 20,
                cached_tokens: 5,
            },
            cost_micros: 300,
            estimated: false,
            unpriced: false,
        };
        let owner = UsageOwner {
            job_id: Some(3),
            installation_id: 77,
            repo: "o/r",
            number: 1,
        };
        store
            .record_usage(&owner, &[spent.clone(), spent])
            .await
            .expect("usage");
        let pr = store.pr_usage("o/r", 1).await.expect("q");
        assert_eq!((pr.calls, pr.prompt_tokens, pr.cost_micros), (2, 200, 600));
        assert_eq!(store.job_usage(3).await.expect("q").output_tokens, 40);
        let month = store.installation_usage_since(77, 0).await.expect("q");
        assert_eq!(month.cached_tokens, 10);
        let later = store
            .installation_usage_since(77, now_ms() + 60_000)
            .await
            .expect("q");
        assert_eq!(later.calls, 0);

        assert!(
            store
                .claim_notice("o/r", 1, "budget", "2026-11")
                .await
                .expect("q")
        );
        assert!(
            !store
                .claim_notice("o/r", 1, "budget", "2026-11")
                .await
                .expect("q")
        );
        store
            .release_notice("o/r", 1, "budget", "2026-11")
            .await
            .expect("release");
        assert!(
            store
                .claim_notice("o/r", 1, "budget", "2026-11")
                .await
                .expect("q")
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
        store.finish(&c, state::DONE, "").await.expect("finish");
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

    #[tokio::test]
    async fn bad_url_is_a_clear_error() {
        let err = Store::connect("mysql://u:secret@x")
            .await
            .expect_err("unsupported")
            .to_string();
        assert!(err.contains("mysql:"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}
