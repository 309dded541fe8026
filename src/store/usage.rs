//! What the model calls cost: each call booked to its job, installation and PR (failed
//! jobs' calls too: they were paid for), and summed for budgets and reports.

use super::{Store, StoreError, now_ms};
use crate::domain::PrNumber;

/// Tokens and cost summed over some model calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageTotals {
    pub calls: i64,
    pub prompt_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub cost_micros: i64,
}

/// Where a job's model calls are booked.
#[derive(Debug, Clone)]
pub struct UsageOwner<'a> {
    pub job_id: Option<i64>,
    pub installation_id: u64,
    pub repo: &'a str,
    pub number: PrNumber,
}

/// A job's model calls, booked with the job's outcome ([`Store::finish`], [`Store::fail`]).
#[derive(Debug, Clone)]
pub struct Booking<'a> {
    pub owner: UsageOwner<'a>,
    pub calls: &'a [crate::domain::Spent],
}

impl Store {
    /// Books model calls (failed jobs' calls too: they were paid for).
    pub async fn record_usage(
        &self,
        owner: &UsageOwner<'_>,
        calls: &[crate::domain::Spent],
    ) -> Result<(), StoreError> {
        if calls.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        insert_usage(&mut tx, owner, calls).await?;
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
    pub async fn pr_usage(&self, repo: &str, number: PrNumber) -> Result<UsageTotals, StoreError> {
        let totals = sqlx::query_as(&format!(
            "SELECT {USAGE_SUMS} FROM llm_usage WHERE repo = $1 AND number = $2"
        ))
        .bind(repo)
        .bind(number.to_i64())
        .fetch_one(&self.pool)
        .await?;
        Ok(totals)
    }

    /// What one job's calls cost, over all its attempts.
    pub async fn job_usage(&self, job_id: i64) -> Result<UsageTotals, StoreError> {
        self.usage_totals("WHERE job_id = $1", &[job_id]).await
    }

    async fn usage_totals(&self, filter: &str, binds: &[i64]) -> Result<UsageTotals, StoreError> {
        let sql = format!("SELECT {USAGE_SUMS} FROM llm_usage {filter}");
        let mut q = sqlx::query_as(&sql);
        for b in binds {
            q = q.bind(*b);
        }
        Ok(q.fetch_one(&self.pool).await?)
    }
}

/// Postgres sums BIGINTs as NUMERIC, which the Any driver cannot read: cast back.
pub(super) const USAGE_SUMS: &str = "CAST(COUNT(*) AS BIGINT) AS calls, \
     CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, \
     CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
     CAST(COALESCE(SUM(cached_tokens), 0) AS BIGINT) AS cached_tokens, \
     CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS cost_micros";

/// Inserts the rows of `calls` in the caller's transaction: a job's usage is booked together
/// with its outcome, so a finished job never lacks the cost of its calls.
pub(super) async fn insert_usage(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    owner: &UsageOwner<'_>,
    calls: &[crate::domain::Spent],
) -> Result<(), StoreError> {
    let now = now_ms();
    for c in calls {
        sqlx::query(
            "INSERT INTO llm_usage (job_id, installation_id, repo, number, task, endpoint, model, \
                 prompt_tokens, output_tokens, cached_tokens, cost_micros, estimated, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(owner.job_id)
        .bind(owner.installation_id as i64)
        .bind(owner.repo)
        .bind(owner.number.to_i64())
        .bind(c.task)
        .bind(&c.endpoint)
        .bind(&c.model)
        .bind(c.usage.prompt_tokens as i64)
        .bind(c.usage.output_tokens as i64)
        .bind(c.usage.cached_tokens as i64)
        .bind(c.cost_micros)
        .bind(i64::from(c.estimated))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::on_both_backends;
    use super::*;

    on_both_backends!(usage_is_summed_per_pr_job_and_installation);

    async fn usage_is_summed_per_pr_job_and_installation(store: Store) {
        let spent = crate::domain::Spent {
            endpoint: "default".into(),
            model: "m".into(),
            task: "review",
            usage: crate::domain::Usage {
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
            number: PrNumber(1),
        };
        store
            .record_usage(&owner, &[spent.clone(), spent])
            .await
            .expect("usage");
        let pr = store.pr_usage("o/r", PrNumber(1)).await.expect("q");
        assert_eq!((pr.calls, pr.prompt_tokens, pr.cost_micros), (2, 200, 600));
        assert_eq!(store.job_usage(3).await.expect("q").output_tokens, 40);
        let month = store.installation_usage_since(77, 0).await.expect("q");
        assert_eq!(month.cached_tokens, 10);
        let later = store
            .installation_usage_since(77, now_ms() + 60_000)
            .await
            .expect("q");
        assert_eq!(later.calls, 0);
    }
}
