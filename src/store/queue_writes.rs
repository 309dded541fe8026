//! The statements that write what `coalesce.rs` decided: queued rows taken over in place,
//! new rows inserted, each in one statement, and the SQL for when a job with a minimum gap
//! is due.

use std::collections::HashMap;
use std::time::Duration;

use super::{NewJob, QueuedJob, StoreError};
use crate::domain::JobState;

/// `$first, $first+1, ...`: `count` SQL placeholders.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Gives queued rows the work of newer jobs (`(row, index in jobs)`), each due as a new job
/// would be. Returns the rows changed, with when each is due: a row no longer queued is left
/// alone.
pub(super) async fn replace_jobs(
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
    let mut q = sqlx::query_as::<_, QueuedJob>(&sql).bind(now);
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
    Ok(q.fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| (r.id, r.run_at))
        .collect())
}

/// Inserts new rows (`(index in jobs, state)`) in one statement; returns them in order.
pub(super) async fn insert_jobs(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    jobs: &[(Option<&str>, &NewJob)],
    insert: &[(usize, JobState)],
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
    let mut q = sqlx::query_as::<_, QueuedJob>(&sql).bind(now);
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
    let mut rows = q.fetch_all(&mut **tx).await?;
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
