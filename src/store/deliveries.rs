//! Webhook deliveries: each is recorded once (GitHub redelivers), with its job, in the same
//! transaction. One writer task takes whatever deliveries are waiting and commits them
//! together (group commit), so a burst of webhooks costs a handful of statements.

use std::collections::{HashMap, HashSet};

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::coalesce::queue_jobs;
use super::{Backend, NewJob, QueuedJob, Store, StoreError, now_ms};

/// Outcome of recording a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// First time seen; the job (if any) was queued.
    Accepted(Option<QueuedJob>),
    /// Seen before: nothing was done.
    Duplicate,
}

/// One delivery waiting for the writer.
#[derive(Debug)]
pub(super) struct DeliveryWrite {
    id: String,
    event: String,
    job: Option<NewJob>,
    reply: oneshot::Sender<Result<DeliveryOutcome, StoreError>>,
}

/// Most deliveries in one transaction; keeps bind parameters far below both databases' caps.
pub(super) const MAX_BATCH: usize = 256;

impl Store {
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

    pub async fn delivery_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) AS n FROM deliveries")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// The delivery writer: takes whatever deliveries are waiting (at least one) and commits
/// them together.
pub(super) async fn write_deliveries(
    pool: AnyPool,
    backend: Backend,
    mut rx: mpsc::Receiver<DeliveryWrite>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut lost = 0;
        let written = loop {
            match write_batch(&pool, backend, &batch).await {
                Err(e) if lost < RACE_RETRIES && lost_a_race(&e) => {
                    lost += 1;
                    tracing::info!(error = %e, lost, "a delivery batch lost a race with another replica's; writing it again");
                    tokio::time::sleep(RACE_BACKOFF.delay(lost)).await;
                }
                other => break other,
            }
        };
        match written {
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

/// How many times a batch that lost a race is written again before its deliveries are
/// refused (503). GitHub does not redeliver a refused delivery by itself: a review would be
/// lost.
const RACE_RETRIES: u32 = 3;

/// The wait before writing such a batch again: short (later deliveries queue behind it), and
/// jittered, so that the two batches that raced do not come back together.
const RACE_BACKOFF: crate::backoff::Backoff = crate::backoff::Backoff {
    base: std::time::Duration::from_millis(20),
    max: std::time::Duration::from_millis(80),
    jitter: (0.5, 1.0),
};

/// PostgreSQL ended the transaction to settle a race with another one (another replica's
/// batch taking the same rows in another order: a deadlock, or a serialisation failure).
/// Written again, it succeeds.
fn lost_a_race(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
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
    // Rows are taken in id order, whatever order they arrived in, so two replicas' batches
    // that share deliveries (GitHub redelivering to another replica) take them in the same
    // order and wait for each other instead of deadlocking.
    let mut in_id_order = unique.clone();
    in_id_order.sort_by(|a, b| a.id.cmp(&b.id));

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
    let mut q = sqlx::query_scalar(&sql).bind(now);
    for w in &in_id_order {
        q = q.bind(w.id.as_str()).bind(w.event.as_str());
    }
    let inserted: HashSet<String> = q.fetch_all(&mut *tx).await?.into_iter().collect();

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

#[cfg(test)]
mod tests {
    use super::super::test_support::{job, on_both_backends};
    use super::*;
    use crate::domain::JobState;

    on_both_backends!(
        delivery_dedupe_queues_once,
        concurrent_deliveries_batch_correctly,
    );

    #[tokio::test]
    async fn a_batch_that_deadlocks_with_another_replicas_is_written_again() {
        use sqlx::{Connection, Executor};
        use std::time::Duration;
        let Some((store, db)) = super::super::test_support::postgres().await else {
            return;
        };
        let connect = || sqlx::PgConnection::connect(&db.url);
        let (mut blocker, mut other) = (connect().await.expect("a"), connect().await.expect("b"));
        let insert = |id: &str| {
            format!("INSERT INTO deliveries (id, event, received_at) VALUES ('{id}', 'ping', 0)")
        };
        // `blocker` holds the writer on d0 while d1 and d2 queue up behind it, so that they
        // are written together, in one batch; `other` (another replica's batch) holds d2.
        blocker.execute("BEGIN").await.expect("begin");
        blocker.execute(insert("d0").as_str()).await.expect("d0");
        other.execute("BEGIN").await.expect("begin");
        other.execute(insert("d2").as_str()).await.expect("d2");
        let record = |id: &'static str| {
            let store = store.clone();
            tokio::spawn(async move { store.record_delivery(id, "ping", None).await })
        };
        let d0 = record("d0");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (d2, d1) = (record("d2"), record("d1"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The writer writes d0, then d1 and d2 in id order: d1, then it waits for d2.
        blocker.execute("ROLLBACK").await.expect("rollback");
        tokio::time::sleep(Duration::from_millis(300)).await;
        // `other` now waits for d1, which the writer holds: a deadlock. PostgreSQL ends the
        // transaction that waited first, the writer's, and `other` gets d1.
        other
            .execute(insert("d1").as_str())
            .await
            .expect("d1 once the writer gave way");
        other.execute("ROLLBACK").await.expect("rollback");
        for (name, outcome) in [("d0", d0), ("d1", d1), ("d2", d2)] {
            let outcome = outcome.await.expect("joined");
            assert!(
                matches!(outcome, Ok(DeliveryOutcome::Accepted(None))),
                "{name}: {outcome:?}"
            );
        }
        assert_eq!(store.delivery_count().await.expect("n"), 3);
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
                .filter(|j| j.dedupe_key == key && j.state == JobState::Queued)
                .count();
            assert!(queued <= 1, "{key}: {queued} queued");
        }
        assert!(jobs.iter().any(|j| j.state == JobState::Queued));
    }
}
