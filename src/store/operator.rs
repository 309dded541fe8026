//! What an operator does to the queue and asks of the usage, from the command line
//! (`critic jobs`, `critic usage`): dead jobs put back, queued ones cancelled, spending by
//! installation and model.

use super::usage::USAGE_SUMS;
use super::{Store, StoreError, now_ms};

/// How a repository's people took Critic's threads, and what its reviews cost.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepoStats {
    pub repo: String,
    /// The installation the repository's model calls were made for (0 when none were).
    pub installation_id: i64,
    /// Threads posted (findings placed inline).
    pub threads: i64,
    /// Threads whose code a later push changed (acted on before merge).
    pub acted_on: i64,
    pub thumbs_up: i64,
    pub thumbs_down: i64,
    /// Threads turned down (more 👎 than 👍, or resolved without a change): muted since.
    pub turned_down: i64,
    /// Pull requests with model calls, and what those calls cost.
    pub pull_requests: i64,
    pub cost_micros: i64,
}

#[derive(sqlx::FromRow)]
struct ThreadRow {
    repo: String,
    threads: i64,
    acted_on: i64,
    thumbs_up: i64,
    thumbs_down: i64,
    turned_down: i64,
}

#[derive(sqlx::FromRow)]
struct CostRow {
    repo: String,
    installation_id: i64,
    pull_requests: i64,
    cost_micros: i64,
}

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

    /// Per repository (or only `repo`), since `since_ms`: threads posted and how they were
    /// taken, and the model calls' cost over the pull requests they were for.
    pub async fn repo_stats(
        &self,
        repo: Option<&str>,
        since_ms: i64,
    ) -> Result<Vec<RepoStats>, StoreError> {
        let only = if repo.is_some() { " AND repo = $2" } else { "" };
        let threads: Vec<ThreadRow> = sqlx::query_as(&format!(
            "SELECT repo, CAST(COUNT(*) AS BIGINT) AS threads, \
             CAST(COALESCE(SUM(CASE WHEN addressed_sha IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS acted_on, \
             CAST(COALESCE(SUM(thumbs_up), 0) AS BIGINT) AS thumbs_up, \
             CAST(COALESCE(SUM(thumbs_down), 0) AS BIGINT) AS thumbs_down, \
             CAST(COALESCE(SUM(CASE WHEN {TURNED_DOWN} THEN 1 ELSE 0 END), 0) AS BIGINT) AS turned_down \
             FROM findings WHERE place = 'inline' AND created_at >= $1{only} GROUP BY repo",
            TURNED_DOWN = super::findings::TURNED_DOWN
        ))
        .bind(since_ms)
        .bind(repo.unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        let costs: Vec<CostRow> = sqlx::query_as(&format!(
            "SELECT repo, CAST(MIN(installation_id) AS BIGINT) AS installation_id, \
             CAST(COUNT(DISTINCT number) AS BIGINT) AS pull_requests, \
             CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS cost_micros \
             FROM llm_usage WHERE created_at >= $1{only} GROUP BY repo"
        ))
        .bind(since_ms)
        .bind(repo.unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        let mut out: std::collections::BTreeMap<String, RepoStats> = Default::default();
        for t in threads {
            out.insert(
                t.repo.clone(),
                RepoStats {
                    repo: t.repo,
                    threads: t.threads,
                    acted_on: t.acted_on,
                    thumbs_up: t.thumbs_up,
                    thumbs_down: t.thumbs_down,
                    turned_down: t.turned_down,
                    ..RepoStats::default()
                },
            );
        }
        for c in costs {
            let s = out.entry(c.repo.clone()).or_insert_with(|| RepoStats {
                repo: c.repo.clone(),
                ..RepoStats::default()
            });
            s.installation_id = c.installation_id;
            s.pull_requests = c.pull_requests;
            s.cost_micros = c.cost_micros;
        }
        Ok(out.into_values().collect())
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

    async fn stats_say_how_threads_were_taken_and_what_reviews_cost(store: Store) {
        use crate::domain::PrNumber;
        use crate::store::{Feedback, StoredFinding};
        let finding = |fp: &str, place: &str| StoredFinding {
            fingerprint: fp.into(),
            path: "src/a.rs".into(),
            line: 3,
            severity: "warning".into(),
            place: place.into(),
            head_sha: "aaa".into(),
            review_id: Some(7),
            comment_id: Some(70),
            addressed_sha: None,
            category: "bug".into(),
        };
        store
            .record_findings(
                "o/r",
                PrNumber(1),
                &[
                    finding("a", "inline"),
                    finding("b", "inline"),
                    finding("c", "inline"),
                    finding("d", "collapsed"),
                ],
            )
            .await
            .expect("record");
        store
            .record_feedback(
                "o/r",
                PrNumber(1),
                &[
                    Feedback {
                        fingerprint: "a".into(),
                        thumbs_up: 2,
                        thumbs_down: 0,
                        resolved: false,
                    },
                    Feedback {
                        fingerprint: "b".into(),
                        thumbs_up: 0,
                        thumbs_down: 1,
                        resolved: false,
                    },
                ],
            )
            .await
            .expect("feedback");
        store
            .mark_addressed("o/r", PrNumber(1), "c", "bbb")
            .await
            .expect("addressed");
        let spent = |cost: i64| crate::domain::Spent {
            endpoint: "default".into(),
            model: "m".into(),
            task: "review",
            usage: crate::domain::Usage::default(),
            cost_micros: cost,
            estimated: false,
            unpriced: false,
        };
        for (number, cost) in [(1, 300), (2, 500)] {
            store
                .record_usage(
                    &crate::store::UsageOwner {
                        job_id: None,
                        installation_id: 42,
                        repo: "o/r",
                        number: PrNumber(number),
                    },
                    &[spent(cost)],
                )
                .await
                .expect("usage");
        }
        let stats = store.repo_stats(None, 0).await.expect("stats");
        assert_eq!(
            stats,
            [RepoStats {
                repo: "o/r".into(),
                installation_id: 42,
                threads: 3,
                acted_on: 1,
                thumbs_up: 2,
                thumbs_down: 1,
                turned_down: 1,
                pull_requests: 2,
                cost_micros: 800,
            }]
        );
        assert!(
            store
                .repo_stats(Some("o/other"), 0)
                .await
                .expect("stats")
                .is_empty()
        );
        assert!(
            store
                .repo_stats(None, now_ms() + 60_000)
                .await
                .expect("stats")
                .is_empty()
        );
    }

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
        usage_is_summed_by_installation_and_model,
        stats_say_how_threads_were_taken_and_what_reviews_cost
    );
}
