//! How a new job joins the queue. A burst of events for one PR keeps one queued row: a job
//! nobody asked for takes over the queued row of its key in place, a job someone asked for
//! supersedes it, and a row waiting for its retry is superseded rather than taken over.
//! [`QueuePlan`] decides, in the list's order; `queue_writes.rs` holds the statements.

use std::collections::HashMap;
use std::time::Duration;

use super::queue_writes::{insert_jobs, placeholders, replace_jobs};
use super::{Backend, StoreError};
use crate::domain::JobState;

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

/// Where a delivery's job went: the row that carries its work, and when that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct QueuedJob {
    pub id: i64,
    /// Milliseconds since the epoch; later than now while a burst of pushes is coalesced.
    pub run_at: i64,
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
pub(super) async fn queue_jobs(
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
    let mut q = sqlx::query_as::<_, QueuedRow>(&sql);
    for k in &keys {
        q = q.bind(*k);
    }
    let mut waiting: HashMap<String, Vec<i64>> = HashMap::new();
    let mut retrying = Vec::new();
    for row in q.fetch_all(&mut **tx).await? {
        if row.attempts > 0 {
            retrying.push(row.id);
        } else {
            waiting.entry(row.dedupe_key).or_default().push(row.id);
        }
    }
    queue_planned(tx, jobs, waiting, retrying, now).await
}

/// A queued row nobody asked for, as [`queue_jobs`] reads it.
#[derive(sqlx::FromRow)]
struct QueuedRow {
    id: i64,
    dedupe_key: String,
    attempts: i64,
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
                plan.insert.push((job, JobState::Queued));
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
    insert: Vec<(usize, JobState)>,
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
                plan.insert.push((i, JobState::Queued));
                if let Some(superseded) = open.remove(key) {
                    match superseded {
                        Slot::Row(id) => {
                            plan.replace.retain(|(row, _)| *row != id);
                            plan.supersede.push(id);
                        }
                        Slot::New(n) => plan.insert[n].1 = JobState::Superseded,
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
                    plan.insert.push((i, JobState::Queued));
                    Slot::New(plan.insert.len() - 1)
                }
            };
            open.insert(key, slot);
            plan.slots.push(slot);
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{job, on_both_backends, retry_in};
    use super::*;
    use crate::store::{DeliveryOutcome, JobRecord, Store, now_ms};

    on_both_backends!(
        newer_job_takes_over_the_queued_one,
        a_job_waiting_for_its_retry_is_superseded_not_taken_over,
        a_row_claimed_since_it_was_read_is_not_taken_over,
        a_batch_takes_over_in_its_order,
        a_burst_for_one_pr_runs_once_after_the_window,
        a_job_someone_asked_for_is_never_superseded,
    );

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
        let states: Vec<JobState> = rows_of(&store, "r#1")
            .await
            .into_iter()
            .map(|j| j.state)
            .collect();
        assert_eq!(states, [JobState::Running, JobState::Queued]);
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
        let states: Vec<JobState> = rows.iter().map(|j| j.state).collect();
        assert_eq!(states, [JobState::Running, JobState::Queued]);
        assert_eq!(claimed.payload, "a");
        let next = store.job(queued[0].id).await.expect("job").expect("row");
        assert_eq!(next.state, JobState::Queued);
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
                None,
            )
            .await
            .expect("fail");
        // A push replaces the failed work with a row of its own, due now; the failed row
        // keeps its attempts and its error.
        let b = store.enqueue(job_with("r#1", "b")).await.expect("b");
        assert_ne!(a, b);
        let old = store.job(a).await.expect("job").expect("row");
        assert_eq!(
            (old.state, old.attempts, old.last_error.as_deref()),
            (JobState::Superseded, 1, Some("GitHub said 502"))
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
            .finish(&claimed, JobState::Done, "reviewed", None)
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
            (last.state, last.run_at),
            (JobState::Queued, first_due + 60_000)
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
        assert_eq!(row(last.id).await.state, JobState::Superseded);
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
        assert_eq!(state_of(push).await, JobState::Superseded);
        // Later events queue beside it; the last automatic one still takes over the earlier.
        let push = store.enqueue(job("r#1")).await.expect("push");
        let newer = store.enqueue(job("r#1")).await.expect("newer");
        assert_eq!(push, newer);
        assert_eq!(state_of(review).await, JobState::Queued);
        assert_eq!(state_of(newer).await, JobState::Queued);
        // A second question does not replace the first.
        let again = store.enqueue(asked("r#1")).await.expect("again");
        assert_eq!(state_of(review).await, JobState::Queued);
        assert_eq!(state_of(again).await, JobState::Queued);
        assert_eq!(state_of(newer).await, JobState::Superseded);

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
        assert_eq!(state_of(a).await, JobState::Queued);
        assert_eq!(b, c);
        assert_eq!(state_of(c).await, JobState::Queued);
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
            store
                .finish(&j, JobState::Done, "ok", None)
                .await
                .expect("finish");
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
            [JobState::Superseded, JobState::Done, JobState::Done]
        );
        assert_eq!(states("r#2").await, [JobState::Superseded, JobState::Done]);
    }
}
