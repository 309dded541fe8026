//! The operator's command line against the configured database: `critic jobs` lists the
//! queue, puts dead jobs back and cancels queued ones; `critic usage` sums a month's model
//! calls by installation and model. Each returns the text to print.

use std::fmt::Write;

use chrono::{Datelike, NaiveDate, TimeZone, Utc};

use crate::domain::JobState;
use crate::llm::cost::format_usd;
use crate::store::{JobRecord, Store, StoreError};

/// Which jobs `critic jobs` lists (`--state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateFilter {
    Queued,
    Running,
    /// Queued again after a failed attempt.
    Retry,
    Dead,
    Done,
    Superseded,
}

impl StateFilter {
    fn matches(self, job: &JobRecord) -> bool {
        match self {
            StateFilter::Queued => job.state == JobState::Queued,
            StateFilter::Running => job.state == JobState::Running,
            StateFilter::Retry => job.state == JobState::Queued && job.attempts > 0,
            StateFilter::Dead => job.state == JobState::Dead,
            StateFilter::Done => job.state == JobState::Done,
            StateFilter::Superseded => job.state == JobState::Superseded,
        }
    }
}

/// The jobs as a table, oldest first: id, kind, what it is about, state, attempts, when it
/// runs (UTC), its last error or result.
pub async fn jobs(
    store: &Store,
    state: Option<StateFilter>,
    repo: Option<&str>,
) -> Result<String, StoreError> {
    let jobs = store.jobs().await?;
    let about = repo.map(|r| format!(":{r}#"));
    let mut out = format!(
        "{:>6}  {:<8}  {:<40}  {:<10}  {:>8}  {:<16}  {}\n",
        "ID", "KIND", "ABOUT", "STATE", "ATTEMPTS", "RUN AT (UTC)", "LAST ERROR / RESULT"
    );
    let mut shown = 0;
    for j in jobs
        .iter()
        .filter(|j| state.is_none_or(|s| s.matches(j)))
        .filter(|j| {
            about
                .as_ref()
                .is_none_or(|a| j.dedupe_key.contains(a.as_str()))
        })
    {
        shown += 1;
        let subject = j
            .dedupe_key
            .split_once(':')
            .map_or(j.dedupe_key.as_str(), |(_, s)| s);
        let run_at = Utc
            .timestamp_millis_opt(j.run_at)
            .single()
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let note: String = j
            .last_error
            .as_deref()
            .or(j.result.as_deref())
            .unwrap_or("")
            .replace('\n', " ")
            .chars()
            .take(80)
            .collect();
        let _ = writeln!(
            out,
            "{:>6}  {:<8}  {:<40}  {:<10}  {:>8}  {:<16}  {}",
            j.id, j.kind, subject, j.state, j.attempts, run_at, note
        );
    }
    let _ = writeln!(out, "{shown} job(s)");
    Ok(out)
}

/// Why a month could not be read.
#[derive(Debug, thiserror::Error)]
#[error("--month must be YYYY-MM, not {0:?}")]
pub struct BadMonth(String);

/// The first instant of `month` (`YYYY-MM`, UTC) and of the month after, in Unix ms.
pub fn month_bounds(month: &str) -> Result<(i64, i64), BadMonth> {
    let start = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map_err(|_| BadMonth(month.to_string()))?;
    let next = if start.month() == 12 {
        NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
    }
    .ok_or_else(|| BadMonth(month.to_string()))?;
    let ms = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| Utc.from_utc_datetime(&t).timestamp_millis())
            .unwrap_or(0)
    };
    Ok((ms(start), ms(next)))
}

/// `critic stats`: per repository, threads posted, the share acted on, 👍 and 👎, how many
/// were turned down (muted since), and the model's cost per reviewed pull request.
pub async fn stats(store: &Store, repo: Option<&str>, since_ms: i64) -> Result<String, StoreError> {
    let rows = store.repo_stats(repo, since_ms).await?;
    let mut out = format!(
        "{:<32}  {:>12}  {:>7}  {:>8}  {:>5}  {:>5}  {:>6}  {:>5}  {:>10}  {:>10}\n",
        "REPOSITORY",
        "INSTALLATION",
        "THREADS",
        "ACTED ON",
        "UP",
        "DOWN",
        "MUTED",
        "PRS",
        "COST",
        "COST/PR"
    );
    for r in &rows {
        let share = if r.threads > 0 {
            format!("{:.0}%", r.acted_on as f64 * 100.0 / r.threads as f64)
        } else {
            "-".to_string()
        };
        let per_pr = if r.pull_requests > 0 {
            format_usd(r.cost_micros / r.pull_requests)
        } else {
            "-".to_string()
        };
        let _ = writeln!(
            out,
            "{:<32}  {:>12}  {:>7}  {:>8}  {:>5}  {:>5}  {:>6}  {:>5}  {:>10}  {:>10}",
            r.repo,
            r.installation_id,
            r.threads,
            share,
            r.thumbs_up,
            r.thumbs_down,
            r.turned_down,
            r.pull_requests,
            format_usd(r.cost_micros),
            per_pr
        );
    }
    if rows.is_empty() {
        out.push_str("no threads or model calls in that time\n");
    }
    Ok(out)
}

/// Why a day could not be read.
#[derive(Debug, thiserror::Error)]
#[error("--since must be YYYY-MM-DD, not {0:?}")]
pub struct BadDay(String);

/// A date (`YYYY-MM-DD`, UTC) as milliseconds since the epoch, for `--since`.
pub fn day_start(day: &str) -> Result<i64, BadDay> {
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| BadDay(day.to_string()))?;
    date.and_hms_opt(0, 0, 0)
        .map(|t| Utc.from_utc_datetime(&t).timestamp_millis())
        .ok_or_else(|| BadDay(day.to_string()))
}

/// A month's model calls by installation and model, with totals.
pub async fn usage(store: &Store, month: &str) -> Result<String, StoreError> {
    let Ok((since, until)) = month_bounds(month) else {
        return Ok(format!("--month must be YYYY-MM, not {month:?}\n"));
    };
    let rows = store.usage_by_model(since, until).await?;
    let mut out = format!(
        "{:>14}  {:<32}  {:>7}  {:>12}  {:>12}  {:>12}  {:>10}\n",
        "INSTALLATION", "MODEL", "CALLS", "INPUT", "OUTPUT", "CACHED", "COST"
    );
    let (mut calls, mut cost) = (0, 0);
    for r in &rows {
        calls += r.calls;
        cost += r.cost_micros;
        let _ = writeln!(
            out,
            "{:>14}  {:<32}  {:>7}  {:>12}  {:>12}  {:>12}  {:>10}",
            r.installation_id,
            r.model,
            r.calls,
            r.prompt_tokens,
            r.output_tokens,
            r.cached_tokens,
            format_usd(r.cost_micros)
        );
    }
    let _ = writeln!(out, "{month}: {calls} call(s), {}", format_usd(cost));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_its_first_instant_to_the_next_months() {
        let (a, b) = month_bounds("2026-12").expect("month");
        assert_eq!(
            a,
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(
            b,
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert!(month_bounds("2026-13").is_err());
        assert!(month_bounds("december").is_err());
    }
}
