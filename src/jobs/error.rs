//! How a job attempt ends: an [`Outcome`], or a [`JobError`] and what it says about the
//! next attempt ([`Failure`]).

use crate::github::GitHubError;
use crate::review::{ReviewError, SourceError};
use crate::store::StoreError;

/// Why a job attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error(transparent)]
    Review(ReviewError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("job payload unreadable: {0}")]
    Payload(String),
    #[error("gave up after {0} attempts whose workers never finished")]
    Abandoned(i64),
    #[error("job panicked: {0}")]
    Panicked(String),
    #[error("lease lost: another worker took the job over")]
    LeaseLost,
    /// Settings that passed their checks but cannot be used (a glob that does not compile).
    #[error("invalid settings: {0}")]
    Settings(String),
}

/// GitHub's failures and bad settings met inside the pipeline are judged as if met here.
impl From<ReviewError> for JobError {
    fn from(e: ReviewError) -> JobError {
        match e {
            ReviewError::Source(SourceError::GitHub(e)) => JobError::GitHub(e),
            ReviewError::Settings(why) => JobError::Settings(why),
            other => JobError::Review(other),
        }
    }
}

/// What a failed attempt says about the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// Another attempt would fail the same way.
    Permanent,
    /// Worth another attempt, which it costs.
    Transient,
    /// GitHub was unavailable even after the client's own retries: costs an attempt once
    /// per outage, however long it lasts (up to `worker.max_outage_secs`).
    Outage,
    /// A rate limit that lifts at this time: the job waits for it at no cost.
    Deferred(chrono::DateTime<chrono::Utc>),
}

impl JobError {
    pub(super) fn is_transient(&self) -> bool {
        self.failure() != Failure::Permanent
    }

    pub(super) fn failure(&self) -> Failure {
        match self {
            JobError::GitHub(GitHubError::RateLimited { until, .. }) => Failure::Deferred(*until),
            JobError::GitHub(e) if e.is_transient() => Failure::Outage,
            JobError::GitHub(_) => Failure::Permanent,
            JobError::Review(ReviewError::Ask(e)) if e.is_transient() => Failure::Transient,
            JobError::Review(_) => Failure::Permanent,
            JobError::Store(_) | JobError::Panicked(_) => Failure::Transient,
            JobError::Payload(_)
            | JobError::Abandoned(_)
            | JobError::LeaseLost
            | JobError::Settings(_) => Failure::Permanent,
        }
    }
}

/// How a job ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    Skipped(String),
    /// Not finished: the job runs again after this long, at no cost of an attempt (waiting
    /// for CI to run pushed tests).
    Again(std::time::Duration, String),
}
