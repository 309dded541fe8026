//! What an operator does to the queue and asks of the usage, from the command line
//! (`critic jobs`, `critic usage`): dead jobs put back, queued ones cancelled, spending by
//! installation and model.

use super::usage::USAGE_SUMS;
use super::{Store, StoreError, now_ms};

/// What one installation spent on one model.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ModelUsage {
    pub installation_id: i64,
    pub model: String,
    pub calls: i64,
    pub prompt_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub cost_micros: i64,
}

/// How many jobs are in each state, and when the oldest due queued job came due.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub by_state: Vec<(crate::domain::JobState, i64)>,
    /// Unix ms; None when no queued job is due.
    pub oldest_due: Option<i64>,
}

impl Store {
    /// The queue's depth, counted by the database (what `/metrics` reports at each scrape).
    pub async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        // The state column decodes as a JobState (an unknown name is an error naming it).
        let by_state: Vec<(crate::domain::JobState, i64)> = sqlx::query_as(
            "SELECT state, CAST(COUNT(*) AS BIGINT) FROM jobs GROUP BY state ORDER BY state",
        )
        .fetch_all(&self.pool)
        .await?;
        let oldest_due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(run_at) FROM jobs WHERE state = 'queued' AND run_at <= $1",
        )
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(QueueDepth {
            by_state,
            oldest_due,
        })
    }

    /// Puts dead job `id`, or every dead job, back in the queue: due now, its attempts
    /// counted afresh, its last error kept until it fails again. Returns how many.
    pub async fn requeue_dead(&self, id: Option<i64>) -> Result<u64, StoreError> {
        let now = now_ms();
        let sql = "UPDATE jobs SET state = 'queued', run_at = $1, attempts = 0, refunds = 0, outage_since = NULL, lease_until = NULL, updated_at = $1 WHERE state = 'dead' AND ($2 = 0 OR id = $3)";
        let n = sqlx::query(sql)
            .bind(now)
            .bind(i64::from(id.is_some()))
            .bind(id.unwrap_or(0))
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n > 0 {
            self.changed();
        }
        Ok(n)
    }

    /// Ends queued job `id` without running it (dead, saying why). A running job is left to
    /// finish: stopping it half-way could leave a review half-posted. Returns whether it did.
    pub async fn cancel(&self, id: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE jobs SET state = 'dead', last_error = 'cancelled by an operator', updated_at = $1 WHERE id = $2 AND state = 'queued'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n > 0 {
            self.changed();
        }
        Ok(n == 1)
    }

    /// Model calls from `since_ms` to before `until_ms`, by installation and model.
    pub async fn usage_by_model(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<ModelUsage>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT installation_id, model, {USAGE_SUMS} FROM llm_usage WHERE created_at >= $1 AND created_at < $2 GROUP BY installation_id, model ORDER BY installation_id, model"
        ))
        .bind(since_ms)
        .bind(until_ms)
        .fetch_all(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{job, on_both_backends};
    use super::*;
    use crate::domain::JobState;

    async fn an_operator_requeues_dead_jobs_and_cancels_queued_ones(store: Store) {
        let dead = store.enqueue(job("review:o/r#1")).await.expect("enqueue");
        let queued = store.enqueue(job("review:o/r#2")).await.expect("enqueue");
        // Kill the first: claim it and fail it for good.
        let claimed = store
            .claim(std::time::Duration::from_secs(30))
            .await
            .expect("claim")
            .expect("a job");
        assert_eq!(claimed.id, dead);
        store
            .fail(&claimed, "boom", super::super::Next::Dead, None)
            .await
            .expect("fail");
        assert_eq!(
            store.job(dead).await.expect("q").expect("job").state,
            JobState::Dead
        );

        assert!(
            !store.cancel(dead).await.expect("cancel"),
            "a dead job is not cancelled"
        );
        assert_eq!(
            store.requeue_dead(Some(queued)).await.expect("requeue"),
            0,
            "not dead"
        );
        assert_eq!(store.requeue_dead(Some(dead)).await.expect("requeue"), 1);
        let back = store.job(dead).await.expect("q").expect("job");
        assert_eq!((back.state, back.attempts), (JobState::Queued, 0));
        assert_eq!(
            back.last_error.as_deref(),
            Some("boom"),
            "kept until it fails again"
        );

        assert!(store.cancel(queued).await.expect("cancel"));
        let cancelled = store.job(queued).await.expect("q").expect("job");
        assert_eq!(cancelled.state, JobState::Dead);
        assert_eq!(
            cancelled.last_error.as_deref(),
            Some("cancelled by an operator")
        );
        // Every dead job at once.
        assert_eq!(store.requeue_dead(None).await.expect("requeue"), 1);
        let depth = store.queue_depth().await.expect("depth");
        assert_eq!(depth.by_state, [(JobState::Queued, 2)]);
        assert!(depth.oldest_due.is_some_and(|t| t <= now_ms()));
    }

    async fn usage_is_summed_by_installation_and_model(store: Store) {
        use crate::domain::{Spent, Usage};
        let spent = |model: &str, cost: i64| Spent {
            endpoint: "default".into(),
            model: model.into(),
            task: "review",
            usage: Usage {
                prompt_tokens: 100,
                output_tokens: 10,
                cached_tokens: 0,
            },
            cost_micros: cost,
            estimated: false,
            unpriced: false,
        };
        for (installation, model) in [(1, "a"), (1, "a"), (1, "b"), (2, "a")] {
            store
                .record_usage(
                    &crate::store::UsageOwner {
                        job_id: None,
                        installation_id: installation,
                        repo: "o/r",
                        number: crate::domain::PrNumber(1),
                    },
                    &[spent(model, 5)],
                )
                .await
                .expect("record");
        }
        let rows = store
            .usage_by_model(0, now_ms() + 1000)
            .await
            .expect("usage");
        let summary: Vec<(i64, &str, i64, i64, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r.installation_id,
                    r.model.as_str(),
                    r.calls,
                    r.prompt_tokens,
                    r.cost_micros,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, "a", 2, 200, 10),
                (1, "b", 1, 100, 5),
                (2, "a", 1, 100, 5)
            ]
        );
        assert!(
            store.usage_by_model(0, 1).await.expect("usage").is_empty(),
            "outside the month"
        );
    }

    on_both_backends!(
        an_operator_requeues_dead_jobs_and_cancels_queued_ones,
        usage_is_summed_by_installation_and_model
    );
}
