//! The worker pool: claims due jobs, runs each under a lease, and settles it (done, a retry
//! after backoff, a wait for a rate limit, or dead), with its model usage booked in the same
//! write.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Critic;
use crate::backoff::Backoff;
use crate::config::WorkerSettings;
use crate::domain::JobState;
use crate::llm::Meter;
use crate::store::{Booking, ClaimedJob, Next, UsageOwner};

use super::error::{Failure, JobError, Outcome};
use super::plan::Job;
use super::{check_run, ci_tests, command, learn, reply, review_pr};

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
    let started = std::time::Instant::now();
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
    let kind = match &job {
        Ok(j) => j.kind(),
        Err(_) => "unreadable",
    };
    metrics::histogram!("critic_job_duration_seconds", "kind" => kind)
        .record(started.elapsed().as_secs_f64());
    let stored = match result {
        Ok(Outcome::Again(after, why)) => {
            metrics::counter!("critic_jobs_total", "kind" => kind, "outcome" => "again")
                .increment(1);
            tracing::info!(%why, again_in = ?after, "job waits");
            let next = Next::Wait { after };
            critic
                .store
                .fail(&claimed, &format!("waiting: {why}"), next, booking.as_ref())
                .await
        }
        Ok(Outcome::Done(result)) => {
            metrics::counter!("critic_jobs_total", "kind" => kind, "outcome" => "done")
                .increment(1);
            tracing::info!(%result, "job finished");
            critic
                .store
                .finish(&claimed, JobState::Done, &result, booking.as_ref())
                .await
        }
        Ok(Outcome::Skipped(why)) => {
            metrics::counter!("critic_jobs_total", "kind" => kind, "outcome" => "skipped")
                .increment(1);
            tracing::info!(%why, "job skipped");
            let result = format!("skipped: {why}");
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
            let label = if next == Next::Dead { "dead" } else { "retry" };
            metrics::counter!("critic_jobs_total", "kind" => kind, "outcome" => label).increment(1);
            match next {
                Next::Retry { after, counted, .. } => {
                    tracing::warn!(error = %e, retry_in = ?after, counted, "job failed; will retry")
                }
                Next::Dead => tracing::error!(error = %e, "job failed for good"),
                Next::Wait { .. } => {}
            }
            let stored = critic
                .store
                .fail(&claimed, &e.to_string(), next, booking.as_ref())
                .await;
            // Only the job's last owner says it gave up: a review whose task panicked or
            // whose workers kept dying could not finish its check run itself.
            if next == Next::Dead && matches!(stored, Ok(true)) {
                match &job {
                    Ok(Job::Review(r)) => {
                        check_run::CheckRun::give_up(critic, claimed.id, r, &e.to_string()).await;
                        // A non-transient failure was said on the pull request already
                        // ("could not review"); a lasting outage was not.
                        if let Some(by) = &r.requested
                            && e.is_transient()
                        {
                            super::notes::command_failed(
                                critic,
                                r.installation_id,
                                r.pr(),
                                by,
                                "review",
                                &e,
                            )
                            .await;
                        }
                    }
                    Ok(Job::Command(c)) => {
                        super::notes::command_failed(
                            critic,
                            c.installation_id,
                            c.pr(),
                            &c.requested,
                            c.command.name(),
                            &e,
                        )
                        .await;
                    }
                    Ok(Job::CiTests(v)) => ci_tests::gave_up(critic, v, &e).await,
                    _ => {}
                }
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
    let queued_ms = crate::store::now_ms().saturating_sub(claimed.created_at);
    let waited = Duration::from_millis(u64::try_from(queued_ms).unwrap_or(0));
    let task = tokio::spawn(
        async move {
            match job {
                Job::Review(job) => {
                    let span = tracing::info_span!("review", installation = job.installation_id, repo = %job.repo, pr = job.number.get(), sha = %job.head_sha);
                    review_pr::run(&task_critic, job_id, &job, &meter).instrument(span).await
                }
                Job::Reply(job) => {
                    let span = tracing::info_span!("reply", installation = job.installation_id, repo = %job.repo, pr = job.number.get(), thread = job.root_id, by = %job.requested.login);
                    reply::run(&task_critic, &job, &meter).instrument(span).await
                }
                Job::CiTests(job) => {
                    let span = tracing::info_span!("ci_tests", installation = job.installation_id, repo = %job.repo, pr = job.number.get(), round = job.round);
                    ci_tests::run(&task_critic, &job, &meter).instrument(span).await
                }
                Job::Learn(job) => {
                    let span = tracing::info_span!("learn", installation = job.installation_id, repo = %job.repo, pr = job.number.get());
                    learn::run(&task_critic, &job).instrument(span).await
                }
                Job::Command(job) => {
                    let span = tracing::info_span!("command", installation = job.installation_id, repo = %job.repo, pr = job.number.get(), command = job.command.name(), by = %job.requested.login);
                    command::run(&task_critic, &job, &meter, waited)
                        .instrument(span)
                        .await
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
    use crate::config::Settings;
    use crate::github::GitHubError;

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

    fn claimed(attempts: i64, refunds: i64, outage_since: Option<i64>) -> ClaimedJob {
        ClaimedJob {
            id: 1,
            kind: "review".into(),
            payload: "{}".into(),
            attempts,
            refunds,
            outage_since,
            delivery_id: None,
            created_at: 0,
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
            Next::Dead | Next::Wait { .. } => panic!("a rate limit costs no attempt"),
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
