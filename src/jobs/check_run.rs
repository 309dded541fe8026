//! The "Critic" check run on the head commit: queued when the review starts, in progress
//! while the model works, completed with the summary. Best effort: an installation that
//! did not grant `checks: write` still gets its review, and a failed update is only logged.
//! A run GitHub failed to create for a passing reason (a 5xx, a rate limit that outlasted
//! the call's retries) is created by its next update, so a bad moment at the start does not
//! leave the head without one.

use std::sync::atomic::{AtomicBool, Ordering};

use super::plan::ReviewJob;
use crate::Critic;
use crate::github::{
    CheckConclusion, CheckOutput, CheckRunUpdate, CheckStatus, GitHubError, Installation,
    MAX_CHECK_OUTPUT_CHARS, NewCheckRun, RepoName,
};

pub const NAME: &str = "Critic";

pub struct CheckRun {
    repo: RepoName,
    head: String,
    /// None until GitHub has created it.
    id: tokio::sync::Mutex<Option<u64>>,
    /// The job it is recorded as (see [`CheckRun::give_up`]).
    job_id: i64,
    /// Set once this run showed its outcome on it.
    completed: AtomicBool,
}

impl CheckRun {
    /// The head's check run: the one an earlier attempt (or job) created, or a new queued
    /// one. Either way it is recorded as job `job_id`'s, for [`CheckRun::give_up`].
    pub async fn start(
        critic: &Critic,
        gh: &Installation,
        repo: &RepoName,
        head: &str,
        job_id: i64,
    ) -> Option<CheckRun> {
        let key = repo.to_string();
        match critic.store.check_run(&key, head).await {
            Ok(Some(id)) => {
                if let Err(e) = critic.store.set_check_run(&key, head, id, job_id).await {
                    tracing::warn!(error = %e, "cannot record the check run");
                }
                return Some(CheckRun {
                    repo: repo.clone(),
                    head: head.to_string(),
                    id: tokio::sync::Mutex::new(Some(id as u64)),
                    job_id,
                    completed: AtomicBool::new(false),
                });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the check run record"),
        }
        let run = CheckRun {
            repo: repo.clone(),
            head: head.to_string(),
            id: tokio::sync::Mutex::new(None),
            job_id,
            completed: AtomicBool::new(false),
        };
        match run
            .create(critic, gh, CheckStatus::Queued, CheckRunUpdate::default())
            .await
        {
            Ok(()) => Some(run),
            Err(e) if e.lacks_permission() => {
                tracing::warn!(error = %e, "cannot create the check run (the App lacks checks: write); reviewing without it");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot create the check run now; its next update creates it");
                Some(run)
            }
        }
    }

    /// Creates the run with `status` and the rest of `update`, and records it.
    async fn create(
        &self,
        critic: &Critic,
        gh: &Installation,
        status: CheckStatus,
        update: CheckRunUpdate,
    ) -> Result<(), GitHubError> {
        let mut id = self.id.lock().await;
        if id.is_some() {
            return Ok(());
        }
        let new = NewCheckRun {
            name: NAME.into(),
            head_sha: self.head.clone(),
            status,
            conclusion: update.conclusion,
            output: update.output,
            external_id: None,
        };
        let run = gh.create_check_run(&self.repo, &new).await?;
        *id = Some(run.id);
        if let Err(e) = critic
            .store
            .set_check_run(
                &self.repo.to_string(),
                &self.head,
                run.id as i64,
                self.job_id,
            )
            .await
        {
            tracing::warn!(error = %e, "cannot record the check run");
        }
        Ok(())
    }

    pub async fn in_progress(&self, critic: &Critic, gh: &Installation) {
        let _ = self
            .update(
                critic,
                gh,
                CheckRunUpdate {
                    status: Some(CheckStatus::InProgress),
                    ..CheckRunUpdate::default()
                },
            )
            .await;
    }

    /// `conclusion`: `neutral`, or `failure` when settings ask for it on critical findings.
    pub async fn complete(
        &self,
        critic: &Critic,
        gh: &Installation,
        conclusion: &str,
        title: &str,
        summary: &str,
    ) {
        let conclusion = match conclusion {
            "failure" => CheckConclusion::Failure,
            _ => CheckConclusion::Neutral,
        };
        let summary: String = if summary.chars().count() > MAX_CHECK_OUTPUT_CHARS {
            let mut cut: String = summary.chars().take(MAX_CHECK_OUTPUT_CHARS - 20).collect();
            cut.push_str("\n\n… (cut)");
            cut
        } else {
            summary.to_string()
        };
        let done = self
            .update(
                critic,
                gh,
                CheckRunUpdate {
                    status: Some(CheckStatus::Completed),
                    conclusion: Some(conclusion),
                    output: Some(CheckOutput {
                        title: title.to_string(),
                        summary,
                        text: None,
                    }),
                },
            )
            .await;
        self.completed.store(true, Ordering::Relaxed);
        if done
            && let Err(e) = critic
                .store
                .check_run_completed(&self.repo.to_string(), &self.head)
                .await
        {
            tracing::warn!(error = %e, "cannot record the check run as completed");
        }
    }

    /// Whether this run already completed it (then a later error leaves it as it is).
    pub fn is_completed(&self) -> bool {
        self.completed.load(Ordering::Relaxed)
    }

    /// Whether GitHub took the update: on the run, or, when GitHub has not created it yet,
    /// as a new run in that state.
    async fn update(&self, critic: &Critic, gh: &Installation, update: CheckRunUpdate) -> bool {
        let id = *self.id.lock().await;
        let Some(id) = id else {
            let status = update.status.unwrap_or(CheckStatus::Queued);
            return match self.create(critic, gh, status, update).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create the check run");
                    false
                }
            };
        };
        match gh.update_check_run(&self.repo, id, &update).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, check_run = id, "cannot update the check run");
                false
            }
        }
    }

    /// Completes the check runs job `job_id` left open and will not come back to (it failed
    /// for good, panicked on its last attempt, or its workers kept dying), whichever head it
    /// was reviewing (a `/review` job names none in advance), and says why on the pull
    /// request, once per head, if GitHub takes it.
    pub async fn give_up(critic: &Critic, job_id: i64, job: &ReviewJob, why: &str) {
        let open = match critic.store.open_check_runs_of_job(job_id).await {
            Ok(open) if !open.is_empty() => open,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the check run records");
                return;
            }
        };
        let gh = match critic.github.installation(job.installation_id) {
            Ok(gh) => gh,
            Err(e) => {
                tracing::warn!(error = %e, "cannot complete the check run");
                return;
            }
        };
        for (repo, head, id) in open {
            let Ok(repo) = repo.parse::<RepoName>() else {
                tracing::warn!(repo = %repo, "check run record with a bad repository name");
                continue;
            };
            let run = CheckRun {
                repo,
                head,
                id: tokio::sync::Mutex::new(Some(id as u64)),
                job_id,
                completed: AtomicBool::new(false),
            };
            run.complete(
                critic,
                &gh,
                "neutral",
                "Not reviewed",
                &format!("Critic could not finish this review: {why}"),
            )
            .await;
            super::notes::say_not_reviewed(critic, &gh, job, &run.head, why).await;
        }
    }
}
