//! Durable state: deliveries (dedupe), the job queue, per-PR state, what was posted.
//!
//! One set of queries runs on SQLite (embedded default) and PostgreSQL through sqlx's `Any`
//! driver; placeholders are `$N`, which both accept, and times are Unix milliseconds.
//! Rows are read with `#[derive(sqlx::FromRow)]` (generic over the row type, so it serves
//! `AnyRow`), tuples (by position) or `query_scalar`; every column is an integer or text
//! the Any driver decodes (sums are cast back to BIGINT, see `usage.rs`). A job's state is
//! text in the table and [`JobState`](crate::domain::JobState) everywhere else; it is
//! encoded and decoded in one place, `queue.rs`.
//!
//! This file holds the [`Store`] itself: connecting (SQLite's pragmas, its lock file and
//! WAL checkpoints), the dialect, errors and the clock. Each concern's queries live in a
//! file of their own, as more `impl Store` blocks, and their types are re-exported here:
//! - `deliveries`: webhook deliveries, deduped and recorded in batches by one writer task;
//! - `queue`: claiming, renewing and finishing jobs, listing and pruning them;
//! - `retry`: what becomes of a failed attempt (retry, refunds, outages, dead);
//! - `coalesce` and `queue_writes`: how new jobs take over or supersede queued ones;
//! - `usage`, `pr_state`, `findings`, `check_runs`: what Critic spent, knows and posted.

mod allowance;
mod check_runs;
mod coalesce;
mod deliveries;
mod findings;
mod operator;
mod pr_state;
mod queue;
mod queue_writes;
mod retry;
#[cfg(test)]
mod test_support;
mod usage;

use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::AnyPool;
use sqlx::Connection;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use tokio::sync::mpsc;

pub use coalesce::{NewJob, QueuedJob};
pub use deliveries::DeliveryOutcome;
use deliveries::{DeliveryWrite, MAX_BATCH, write_deliveries};
pub use findings::{Feedback, Learned, StoredFinding};
pub use operator::{ModelUsage, QueueDepth, RepoStats};
pub use pr_state::PostedReview;
pub use queue::{ClaimedJob, JobRecord};
pub use retry::Next;
pub use usage::{Booking, UsageOwner, UsageTotals};

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

#[cfg(test)]
mod tests {
    use super::test_support::job;
    use super::*;

    /// A managed PostgreSQL asks for TLS: `sslmode=require` in `store.url` connects over it
    /// (rustls, the system's roots for `verify-full`).
    #[tokio::test]
    async fn postgres_speaks_tls_when_the_url_asks_for_it() {
        let Some(db) = crate::test_env::PgDatabase::create().await else {
            return;
        };
        let plain = Store::connect(&db.url).await.expect("connect");
        let on: String = sqlx::query_scalar("SHOW ssl")
            .fetch_one(&plain.pool)
            .await
            .expect("show ssl");
        plain.pool.close().await;
        if on != "on" {
            crate::test_env::skipped("the test PostgreSQL server has ssl off");
            db.drop().await;
            return;
        }
        let sep = if db.url.contains('?') { '&' } else { '?' };
        let store = Store::connect(&format!("{}{sep}sslmode=require", db.url))
            .await
            .expect("a TLS connection");
        let tls: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&store.pool)
                .await
                .expect("pg_stat_ssl");
        assert!(tls, "the connection is encrypted");
        store
            .enqueue(job("k"))
            .await
            .expect("the store works over TLS");
        store.pool.close().await;
        db.drop().await;
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
