//! The durable queue's jobs, the pure decision of which event makes which job, and the
//! worker pool that runs them.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Critic;
use crate::backoff::Backoff;
use crate::commands::{Command, may_run};
use crate::config::{Settings, WorkerSettings};
use crate::domain::{CommitSha, JobState, PrNumber};
use crate::github::{GitHubError, RepoName};
use crate::llm::Meter;
use crate::review::{ReviewError, SourceError};
use crate::store::{Booking, ClaimedJob, NewJob, Next, StoreError, UsageOwner};
use crate::webhook::{Event, PullRequestAction};

mod check_run;
mod command;
mod incremental;
mod notes;
mod reply;
mod repo_settings;
mod review_pr;

/// Work Critic does later, stored as JSON in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Review one head commit of a pull request.
    Review(ReviewJob),
    /// Answer a slash command (other than `/review`, which is a review job).
    Command(CommandJob),
    /// Answer a reply to one of Critic's review threads.
    Reply(ReplyJob),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyJob {
    pub installation_id: u64,
    pub repo: RepoName,
    pub number: PrNumber,
    /// The thread's first comment (Critic's, if the thread is Critic's).
    pub root_id: u64,
    /// The reply to answer.
    pub requested: Requester,
}

impl ReplyJob {
    pub fn pr(&self) -> PrRef<'_> {
        PrRef {
            repo: &self.repo,
            number: self.number.get(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewJob {
    pub installation_id: u64,
    pub repo: RepoName,
    pub number: PrNumber,
    /// The head the event named; empty for `/review` (the PR's head when the job runs).
    pub head_sha: CommitSha,
    /// Set when someone asked with `/review`: the automatic review's skip rules do not
    /// apply, and the comment gets an answer when there is nothing to review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<Requester>,
}

/// The pull request a job is about.
#[derive(Debug, Clone, Copy)]
pub struct PrRef<'a> {
    pub repo: &'a RepoName,
    pub number: u64,
}

impl ReviewJob {
    pub fn pr(&self) -> PrRef<'_> {
        PrRef {
            repo: &self.repo,
            number: self.number.get(),
        }
    }
}

impl CommandJob {
    pub fn pr(&self) -> PrRef<'_> {
        PrRef {
            repo: &self.repo,
            number: self.number.get(),
        }
    }
}

/// The comment that asked for a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub comment_id: u64,
    pub login: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandJob {
    pub installation_id: u64,
    pub repo: RepoName,
    pub number: PrNumber,
    pub requested: Requester,
    pub command: Command,
}

impl Job {
    /// Who a job's model calls are booked to: its installation and pull request.
    fn usage_owner(&self) -> (u64, PrRef<'_>) {
        match self {
            Job::Review(j) => (j.installation_id, j.pr()),
            Job::Command(j) => (j.installation_id, j.pr()),
            Job::Reply(j) => (j.installation_id, j.pr()),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Job::Review(_) => "review",
            Job::Command(_) => "command",
            Job::Reply(_) => "reply",
        }
    }

    /// The queue's view of this job. Reviews of one PR share a key, so a newer push takes
    /// over queued work (and `/review` is the same work); each command is its own. An
    /// automatic review keeps `coalesce` after the previous review of its PR (see
    /// `review.coalesce_secs`); `/review` and every other job are due at once.
    pub fn to_new_job(&self, coalesce: Duration) -> Result<NewJob, serde_json::Error> {
        let dedupe_key = match self {
            Job::Review(r) => format!("review:{}#{}", r.repo, r.number),
            // One `/describe` at a time per PR: they all edit the same comment.
            Job::Command(c) if c.command == Command::Describe => {
                format!("describe:{}#{}", c.repo, c.number)
            }
            Job::Command(c) => {
                format!("command:{}#{}:{}", c.repo, c.number, c.requested.comment_id)
            }
            Job::Reply(r) => {
                format!("reply:{}#{}:{}", r.repo, r.number, r.requested.comment_id)
            }
        };
        // Someone waits for an answer to everything but an automatic review.
        let requested = !matches!(self, Job::Review(r) if r.requested.is_none());
        Ok(NewJob {
            kind: self.kind().to_string(),
            dedupe_key,
            payload: serde_json::to_string(self)?,
            min_gap: if requested { Duration::ZERO } else { coalesce },
            requested,
        })
    }
}

/// The event's repository, or None (logged) when GitHub sent a name that is not
/// `owner/name`: such an event cannot be acted on, and saying so beats dropping it unseen.
fn repo_of(full_name: &str) -> Option<RepoName> {
    match full_name.parse() {
        Ok(repo) => Some(repo),
        Err(e) => {
            tracing::warn!(repo = full_name, error = %e, "event ignored: malformed repository name");
            None
        }
    }
}

/// Which job, if any, an event asks for. Pure: no I/O.
pub fn plan(event: &Event, settings: &Settings) -> Option<Job> {
    let review_drafts = settings.review.review_drafts;
    match event {
        Event::PullRequestReviewComment(e) => {
            // A reply in a thread; whether the thread is Critic's is the job's question (it
            // needs the store).
            let root_id = e.comment.in_reply_to_id?;
            let commands = &settings.commands;
            if !commands.enabled || e.action != "created" || e.comment.user.is_bot() {
                return None;
            }
            if e.comment.body.trim().is_empty()
                || !may_run(e.comment.author_association.as_deref(), &commands.allowed)
            {
                return None;
            }
            Some(Job::Reply(ReplyJob {
                installation_id: e.installation.as_ref()?.id,
                repo: repo_of(&e.repository.full_name)?,
                number: PrNumber(e.pull_request.number),
                root_id,
                requested: Requester {
                    comment_id: e.comment.id,
                    login: e.comment.user.login.clone(),
                },
            }))
        }
        Event::IssueComment(e) => {
            let commands = &settings.commands;
            // Only new comments on pull requests; edits would run a command twice.
            if !commands.enabled || e.action != "created" || e.issue.pull_request.is_none() {
                return None;
            }
            if e.comment.user.is_bot() {
                return None;
            }
            let command = Command::parse(&e.comment.body)?;
            let association = e.comment.author_association.as_deref();
            if !may_run(association, &commands.allowed) {
                tracing::info!(
                    user = %e.comment.user.login,
                    association = association.unwrap_or("unknown"),
                    command = command.name(),
                    "command ignored: the commenter may not run commands"
                );
                return None;
            }
            let installation_id = e.installation.as_ref()?.id;
            let repo: RepoName = repo_of(&e.repository.full_name)?;
            let requested = Requester {
                comment_id: e.comment.id,
                login: e.comment.user.login.clone(),
            };
            Some(match command {
                Command::Review => Job::Review(ReviewJob {
                    installation_id,
                    repo,
                    number: PrNumber(e.issue.number),
                    head_sha: CommitSha::default(),
                    requested: Some(requested),
                }),
                command => Job::Command(CommandJob {
                    installation_id,
                    repo,
                    number: PrNumber(e.issue.number),
                    requested,
                    command,
                }),
            })
        }
        Event::PullRequest(e) => {
            let wanted = matches!(
                e.action,
                PullRequestAction::Opened
                    | PullRequestAction::Reopened
                    | PullRequestAction::ReadyForReview
                    | PullRequestAction::Synchronize
            );
            let pr = &e.pull_request;
            if !wanted || pr.state != "open" || (pr.draft && !review_drafts) {
                return None;
            }
            let installation_id = e.installation.as_ref()?.id;
            let repo = repo_of(&e.repository.full_name)?;
            Some(Job::Review(ReviewJob {
                installation_id,
                repo,
                number: PrNumber(e.number),
                head_sha: CommitSha::from(pr.head.sha.as_str()),
                requested: None,
            }))
        }
        _ => None,
    }
}

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
enum Failure {
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
    fn is_transient(&self) -> bool {
        self.failure() != Failure::Permanent
    }

    fn failure(&self) -> Failure {
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

/// The job's GitHub outage (or rate limit) has lasted longer than `worker.max_outage_secs`.
fn outlasted(claimed: &ClaimedJob, worker: &WorkerSettings, now: i64) -> bool {
    claimed
        .outage_since
        .is_some_and(|since| now - since > (worker.max_outage_secs as i64).saturating_mul(1000))
}

/// What becomes of a job after a failed attempt (pure, for testing): `now` in Unix ms.
fn next_after(e: &JobError, claimed: &ClaimedJob, worker: &WorkerSettings, now: i64) -> Next {
    let counted = claimed.counted_attempts();
    let more = counted < i64::from(worker.max_attempts);
    let base = Duration::from_secs(worker.retry_base_secs);
    let delay = || retry_delay(base, claimed.attempts.clamp(1, 64) as u32);
    match e.failure() {
        Failure::Permanent => Next::Dead,
        Failure::Transient if more => Next::Retry {
            after: delay(),
            counted: true,
            outage: false,
        },
        Failure::Transient => Next::Dead,
        // A limit that never lifts (a proxy that always answers 429) is an outage too.
        Failure::Deferred(_) if outlasted(claimed, worker, now) => Next::Dead,
        Failure::Deferred(until) => Next::Retry {
            // A moment after, so that jobs limited together do not all return at once.
            after: Duration::from_millis((until.timestamp_millis() - now).max(0) as u64)
                + retry_delay(Duration::from_secs(1), 1),
            counted: false,
            outage: true,
        },
        Failure::Outage => match claimed.outage_since {
            Some(_) if outlasted(claimed, worker, now) => Next::Dead,
            // The outage was charged when it began.
            Some(_) => Next::Retry {
                after: delay(),
                counted: false,
                outage: true,
            },
            None if more => Next::Retry {
                after: delay(),
                counted: true,
                outage: true,
            },
            None => Next::Dead,
        },
    }
}

/// How a job ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    Skipped(String),
}

/// Delay before attempt `attempts + 1`: base doubled per attempt, at most an hour, ±25% jitter.
pub fn retry_delay(base: Duration, attempts: u32) -> Duration {
    Backoff {
        base,
        max: Duration::from_secs(3600),
        jitter: (0.75, 1.25),
    }
    .delay(attempts)
}

/// The runtime the workers run on: threads of their own, so that reviews (parsing,
/// tokenizing, prompts) never hold up the threads that answer webhooks.
pub fn worker_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("critic-worker")
        .enable_all()
        .build()
}

/// Runs `concurrency` workers until `shutdown`; each finishes its current job first.
pub async fn run_workers(critic: Arc<Critic>, shutdown: CancellationToken) {
    let mut set = tokio::task::JoinSet::new();
    for n in 0..critic.config.settings.worker.concurrency {
        let critic = critic.clone();
        let shutdown = shutdown.clone();
        set.spawn(worker(critic, shutdown).instrument(tracing::info_span!("worker", n)));
    }
    set.spawn(janitor(critic.clone(), shutdown.clone()));
    while set.join_next().await.is_some() {}
}

/// Deletes old deliveries and finished jobs once an hour, so the store stays small.
async fn janitor(critic: Arc<Critic>, shutdown: CancellationToken) {
    let retention = Duration::from_secs(
        critic
            .config
            .settings
            .store
            .retention_days
            .saturating_mul(86_400),
    );
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let before = crate::store::now_ms() - retention.as_millis() as i64;
        match critic.store.prune(before).await {
            Ok((deliveries, jobs)) if deliveries + jobs > 0 => {
                tracing::info!(deliveries, jobs, "pruned old records")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning failed; will try again"),
        }
    }
}

async fn worker(critic: Arc<Critic>, shutdown: CancellationToken) {
    let poll = Duration::from_millis(critic.config.settings.worker.poll_interval_ms);
    while !shutdown.is_cancelled() {
        match critic.store.claim(critic.config.lease()).await {
            Ok(Some(job)) => {
                let span = tracing::info_span!("job", id = job.id, kind = %job.kind, delivery = job.delivery_id.as_deref().unwrap_or("-"), attempt = job.attempts);
                process(&critic, job).instrument(span).await;
            }
            Ok(None) => {
                tokio::select! {
                    _ = critic.wake.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot claim jobs");
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
    }
}

async fn process(critic: &Arc<Critic>, claimed: ClaimedJob) {
    let max = i64::from(critic.config.settings.worker.max_attempts);
    let job = serde_json::from_str::<Job>(&claimed.payload);
    let meter = Arc::new(Meter::new());
    let result = match &job {
        // Only reachable when leases kept expiring: the worker died mid-job each time.
        _ if claimed.counted_attempts() > max => {
            Err(JobError::Abandoned(claimed.counted_attempts() - 1))
        }
        Ok(job) => run_leased(critic, &claimed, job.clone(), meter.clone()).await,
        Err(e) => Err(JobError::Payload(e.to_string())),
    };
    // What the attempt's model calls cost, booked with its outcome (failed attempts were
    // paid for too).
    let calls = meter.calls();
    let owner = job.as_ref().ok().map(Job::usage_owner);
    let repo = owner.as_ref().map(|(_, pr)| pr.repo.to_string());
    let booking = match (&owner, &repo) {
        (Some((installation_id, pr)), Some(repo)) if !calls.is_empty() => Some(Booking {
            owner: UsageOwner {
                job_id: Some(claimed.id),
                installation_id: *installation_id,
                repo,
                number: pr.number,
            },
            calls: &calls,
        }),
        _ => None,
    };
    let stored = match result {
        Ok(outcome) => {
            tracing::info!(?outcome, "job finished");
            let result = match &outcome {
                Outcome::Done(s) => s.clone(),
                Outcome::Skipped(s) => format!("skipped: {s}"),
            };
            critic
                .store
                .finish(&claimed, JobState::Done, &result, booking.as_ref())
                .await
        }
        Err(JobError::LeaseLost) => {
            // Another worker runs the job now: nothing here is ours to record or finish but
            // what this attempt spent.
            tracing::warn!("lease lost; another worker owns the job");
            if let Some(b) = &booking
                && let Err(e) = critic.store.record_usage(&b.owner, b.calls).await
            {
                tracing::error!(error = %e, calls = b.calls.len(), "cannot record model usage");
            }
            return;
        }
        Err(e) => {
            let next = next_after(
                &e,
                &claimed,
                &critic.config.settings.worker,
                crate::store::now_ms(),
            );
            match next {
                Next::Retry { after, counted, .. } => {
                    tracing::warn!(error = %e, retry_in = ?after, counted, "job failed; will retry")
                }
                Next::Dead => tracing::error!(error = %e, "job failed for good"),
            }
            let stored = critic
                .store
                .fail(&claimed, &e.to_string(), next, booking.as_ref())
                .await;
            // Only the job's last owner says it gave up: a review whose task panicked or
            // whose workers kept dying could not finish its check run itself.
            if next == Next::Dead
                && matches!(stored, Ok(true))
                && let Ok(Job::Review(r)) = &job
            {
                check_run::CheckRun::give_up(critic, claimed.id, r, &e.to_string()).await;
            }
            stored
        }
    };
    match stored {
        Ok(true) => {}
        Ok(false) => tracing::warn!("lease lost before the job finished; another worker owns it"),
        Err(e) => {
            tracing::error!(error = %e, "cannot record job result; the lease will expire and it runs again")
        }
    }
}

/// Runs the job in its own task while renewing its lease. A panic becomes an error (the
/// worker lives on); a lost lease stops the job before it can post anything twice.
async fn run_leased(
    critic: &Arc<Critic>,
    claimed: &ClaimedJob,
    job: Job,
    meter: Arc<Meter>,
) -> Result<Outcome, JobError> {
    let lease = critic.config.lease();
    let task_critic = critic.clone();
    let job_id = claimed.id;
    let task = tokio::spawn(
        async move {
            match job {
                Job::Review(job) => {
                    let span = tracing::info_span!("review", repo = %job.repo, pr = job.number.get(), sha = %job.head_sha);
                    review_pr::run(&task_critic, job_id, &job, &meter).instrument(span).await
                }
                Job::Reply(job) => {
                    let span = tracing::info_span!("reply", repo = %job.repo, pr = job.number.get(), thread = job.root_id, by = %job.requested.login);
                    reply::run(&task_critic, &job, &meter).instrument(span).await
                }
                Job::Command(job) => {
                    let span = tracing::info_span!("command", repo = %job.repo, pr = job.number.get(), command = job.command.name(), by = %job.requested.login);
                    command::run(&task_critic, &job, &meter).instrument(span).await
                }
            }
        }
        .in_current_span(),
    );
    let abort = task.abort_handle();
    tokio::pin!(task);
    let mut beat = tokio::time::interval((lease / 3).max(Duration::from_millis(100)));
    beat.tick().await;
    loop {
        tokio::select! {
            joined = &mut task => {
                return match joined {
                    Ok(result) => result,
                    Err(e) if e.is_panic() => Err(JobError::Panicked(panic_message(e.into_panic()))),
                    Err(_) => Err(JobError::LeaseLost),
                };
            }
            _ = beat.tick() => match critic.store.renew(claimed, lease).await {
                Ok(true) => {}
                Ok(false) => {
                    abort.abort();
                    return Err(JobError::LeaseLost);
                }
                Err(e) => tracing::warn!(error = %e, "cannot renew the lease; will try again"),
            }
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_run_on_threads_of_their_own() {
        let rt = worker_runtime().expect("runtime");
        let name = rt.block_on(async {
            tokio::spawn(async { std::thread::current().name().map(str::to_string) })
                .await
                .expect("task")
        });
        rt.shutdown_background();
        assert_eq!(name.as_deref(), Some("critic-worker"));
    }

    fn settings(review_drafts: bool) -> Settings {
        let mut s = Settings::defaults().expect("defaults");
        s.review.review_drafts = review_drafts;
        s
    }

    fn event(file: &str) -> Event {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/webhooks")
            .join(file);
        Event::parse("pull_request", &std::fs::read(path).expect("payload")).expect("parse")
    }

    #[test]
    fn opened_pull_request_plans_a_review() {
        let Some(Job::Review(job)) = plan(&event("pull_request.opened.2.json"), &settings(false))
        else {
            panic!("expected a review")
        };
        assert_eq!(job.installation_id, 1);
        assert_eq!(job.head_sha.as_str().len(), 40);
    }

    #[test]
    fn other_actions_and_missing_installation_plan_nothing() {
        assert_eq!(
            plan(&event("pull_request.labeled.1.json"), &settings(false)),
            None
        );
        assert_eq!(
            plan(&event("pull_request.closed.1.json"), &settings(false)),
            None
        );
        assert_eq!(
            plan(&event("pull_request.opened.1.json"), &settings(false)),
            None,
            "no installation"
        );
    }

    #[test]
    fn drafts_only_when_asked() {
        let Event::PullRequest(mut e) = event("pull_request.opened.2.json") else {
            panic!()
        };
        e.pull_request.draft = true;
        let ev = Event::PullRequest(e);
        assert_eq!(plan(&ev, &settings(false)), None);
        assert!(plan(&ev, &settings(true)).is_some());
    }

    #[test]
    fn same_pr_shares_a_dedupe_key() {
        let job = |sha: &str| {
            Job::Review(ReviewJob {
                installation_id: 1,
                repo: "o/r".parse().expect("repo"),
                number: PrNumber(3),
                head_sha: sha.into(),
                requested: None,
            })
        };
        let (a, b) = (
            job("a").to_new_job(Duration::from_secs(10)).expect("a"),
            job("b").to_new_job(Duration::ZERO).expect("b"),
        );
        assert_eq!(a.dedupe_key, b.dedupe_key);
        assert_ne!(a.payload, b.payload);
        assert_eq!(a.min_gap, Duration::from_secs(10));
        assert!(!a.requested);
        let back: Job = serde_json::from_str(&a.payload).expect("round trip");
        assert_eq!(back, job("a"));
    }

    /// Payloads as they were stored before the pull request's number and the commit had
    /// types of their own: jobs queued by an older Critic must still run, and the newtypes
    /// must write the same JSON back.
    #[test]
    fn payloads_stored_before_the_newtypes_read_and_write_the_same() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let stored = [
            format!(
                r#"{{"kind":"review","installation_id":1,"repo":"o/r","number":3,"head_sha":"{sha}"}}"#
            ),
            r#"{"kind":"review","installation_id":1,"repo":"o/r","number":3,"head_sha":"","requested":{"comment_id":9,"login":"a"}}"#.to_owned(),
            r#"{"kind":"command","installation_id":5,"repo":"o/r","number":7,"requested":{"comment_id":9,"login":"a"},"command":{"name":"ask","question":"why?"}}"#.to_owned(),
            r#"{"kind":"reply","installation_id":1,"repo":"o/r","number":2,"root_id":11,"requested":{"comment_id":12,"login":"b"}}"#.to_owned(),
        ];
        let jobs: Vec<Job> = stored
            .iter()
            .map(|s| serde_json::from_str(s).expect("an old payload"))
            .collect();
        let Job::Review(review) = &jobs[0] else {
            panic!("a review: {jobs:?}")
        };
        assert_eq!(
            (review.number, review.head_sha.as_str()),
            (PrNumber(3), sha)
        );
        let Job::Reply(reply) = &jobs[3] else {
            panic!("a reply: {jobs:?}")
        };
        assert_eq!((reply.number, reply.root_id), (PrNumber(2), 11));
        for (job, old) in jobs.iter().zip(&stored) {
            assert_eq!(&serde_json::to_string(job).expect("json"), old);
        }
        assert_eq!(
            jobs[2].to_new_job(Duration::ZERO).expect("job").dedupe_key,
            "command:o/r#7:9"
        );
    }

    fn comment(file: &str, body: &str, association: &str) -> Event {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/webhooks")
            .join(file);
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("payload")).expect("json");
        v["comment"]["body"] = body.into();
        v["comment"]["author_association"] = association.into();
        v["issue"]["pull_request"] =
            serde_json::json!({"url": "https://api.github.com/repos/o/r/pulls/1"});
        v["installation"] = serde_json::json!({"id": 5});
        Event::parse("issue_comment", &serde_json::to_vec(&v).expect("json")).expect("parse")
    }

    #[test]
    fn a_members_command_plans_a_job_and_review_is_a_review() {
        let s = settings(false);
        let ask = comment("issue_comment.created.1.json", "/ask why?", "MEMBER");
        let Some(Job::Command(job)) = plan(&ask, &s) else {
            panic!("a command job")
        };
        assert_eq!(
            job.command,
            Command::Ask {
                question: "why?".into()
            }
        );
        assert_eq!(job.installation_id, 5);
        let review = comment("issue_comment.created.1.json", "/review", "OWNER");
        let Some(Job::Review(job)) = plan(&review, &s) else {
            panic!("a review job")
        };
        assert!(job.requested.is_some() && job.head_sha.is_empty());
        // Two commands on one PR do not supersede each other; /review shares the review key.
        let mut other = comment("issue_comment.created.1.json", "/ask why?", "MEMBER");
        if let Event::IssueComment(e) = &mut other {
            e.comment.id += 1;
        }
        let queued = |e: &Event| {
            plan(e, &s)
                .expect("job")
                .to_new_job(Duration::from_secs(10))
                .expect("job")
        };
        assert_ne!(queued(&ask).dedupe_key, queued(&other).dedupe_key);
        assert!(queued(&review).dedupe_key.starts_with("review:"));
        // Someone asked: neither `/review` nor a command waits for the coalescing window.
        assert_eq!(queued(&review).min_gap, Duration::ZERO);
        assert_eq!(queued(&ask).min_gap, Duration::ZERO);
        // And a later push does not take their place.
        assert!(queued(&review).requested && queued(&ask).requested);
    }

    #[test]
    fn outsiders_bots_plain_comments_and_issues_plan_nothing() {
        let s = settings(false);
        let file = "issue_comment.created.1.json";
        assert_eq!(plan(&comment(file, "/review", "CONTRIBUTOR"), &s), None);
        assert_eq!(plan(&comment(file, "/review", "NONE"), &s), None);
        assert_eq!(plan(&comment(file, "looks good", "OWNER"), &s), None);
        let Event::IssueComment(mut e) = comment(file, "/review", "OWNER") else {
            panic!()
        };
        e.comment.user.kind = "Bot".into();
        assert_eq!(
            plan(&Event::IssueComment(e.clone()), &s),
            None,
            "bots never"
        );
        e.comment.user.kind = "User".into();
        e.issue.pull_request = None;
        assert_eq!(
            plan(&Event::IssueComment(e.clone()), &s),
            None,
            "issues are not PRs"
        );
        let mut off = settings(false);
        off.commands.enabled = false;
        assert_eq!(plan(&comment(file, "/review", "OWNER"), &off), None);
        let mut edited = comment(file, "/review", "OWNER");
        if let Event::IssueComment(e) = &mut edited {
            e.action = "edited".into();
        }
        assert_eq!(plan(&edited, &s), None, "an edit does not run it again");
    }

    fn claimed(attempts: i64, refunds: i64, outage_since: Option<i64>) -> ClaimedJob {
        ClaimedJob {
            id: 1,
            kind: "review".into(),
            payload: "{}".into(),
            attempts,
            refunds,
            outage_since,
            delivery_id: None,
        }
    }

    #[test]
    fn an_outage_costs_one_attempt_a_rate_limit_none() {
        let mut worker = Settings::defaults().expect("defaults").worker;
        worker.max_attempts = 2;
        worker.max_outage_secs = 60;
        let outage = JobError::GitHub(GitHubError::Status {
            status: 502,
            message: "Server Error".into(),
            errors: vec![],
        });
        let now = 1_000_000;
        // The first failure of an outage counts and starts it.
        assert!(matches!(
            next_after(&outage, &claimed(1, 0, None), &worker, now),
            Next::Retry {
                counted: true,
                outage: true,
                ..
            }
        ));
        // Within the outage, failures cost nothing, even past max_attempts...
        assert!(matches!(
            next_after(&outage, &claimed(5, 3, Some(now - 59_000)), &worker, now),
            Next::Retry {
                counted: false,
                outage: true,
                ..
            }
        ));
        // ...until it has lasted longer than max_outage_secs.
        assert_eq!(
            next_after(&outage, &claimed(5, 3, Some(now - 61_000)), &worker, now),
            Next::Dead
        );
        // A new outage after the attempts are spent: dead.
        assert_eq!(
            next_after(&outage, &claimed(2, 0, None), &worker, now),
            Next::Dead
        );
        // A rate limit waits until it lifts, free.
        let limited = JobError::GitHub(GitHubError::RateLimited {
            until: chrono::DateTime::from_timestamp_millis(now + 30_000).expect("time"),
            message: "limit".into(),
        });
        match next_after(&limited, &claimed(2, 0, None), &worker, now) {
            Next::Retry { after, counted, .. } => {
                assert!(!counted);
                assert!(
                    after >= Duration::from_secs(30) && after < Duration::from_secs(32),
                    "{after:?}"
                );
            }
            Next::Dead => panic!("a rate limit costs no attempt"),
        }
        // But a limit that never lifts ends like an outage that never does.
        assert_eq!(
            next_after(&limited, &claimed(9, 8, Some(now - 61_000)), &worker, now),
            Next::Dead
        );
        // A model failure counts each time; a bad payload never retries.
        let model = JobError::Panicked("boom".into());
        assert!(matches!(
            next_after(&model, &claimed(1, 0, Some(now)), &worker, now),
            Next::Retry {
                counted: true,
                outage: false,
                ..
            }
        ));
        assert_eq!(
            next_after(&model, &claimed(2, 0, None), &worker, now),
            Next::Dead
        );
        assert_eq!(
            next_after(
                &JobError::Payload("x".into()),
                &claimed(1, 0, None),
                &worker,
                now
            ),
            Next::Dead
        );
    }

    #[test]
    fn retry_delay_grows_and_is_capped() {
        let base = Duration::from_secs(10);
        let d1 = retry_delay(base, 1);
        let d3 = retry_delay(base, 3);
        assert!(
            d1 >= Duration::from_millis(7500) && d1 <= Duration::from_millis(12500),
            "{d1:?}"
        );
        assert!(d3 >= Duration::from_secs(30), "{d3:?}");
        assert!(retry_delay(base, 40) <= Duration::from_secs(4500));
    }
}
