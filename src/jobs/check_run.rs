//! The "Critic" check run on the head commit: queued when the review starts, in progress
//! while the model works, completed with the summary. Best effort: an installation that
//! did not grant `checks: write` still gets its review, and a failed update is only logged.

use crate::Critic;
use crate::github::{
    CheckConclusion, CheckOutput, CheckRunUpdate, CheckStatus, Installation,
    MAX_CHECK_OUTPUT_CHARS, NewCheckRun, RepoName,
};

pub const NAME: &str = "Critic";

pub struct CheckRun {
    repo: RepoName,
    id: u64,
}

impl CheckRun {
    /// The head's check run: the one an earlier attempt created, or a new queued one.
    pub async fn start(
        critic: &Critic,
        gh: &Installation,
        repo: &RepoName,
        head: &str,
    ) -> Option<CheckRun> {
        let key = repo.to_string();
        match critic.store.check_run(&key, head).await {
            Ok(Some(id)) => {
                return Some(CheckRun {
                    repo: repo.clone(),
                    id: id as u64,
                });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the check run record"),
        }
        let new = NewCheckRun {
            name: NAME.into(),
            head_sha: head.into(),
            status: CheckStatus::Queued,
            conclusion: None,
            output: None,
            external_id: None,
        };
        match gh.create_check_run(repo, &new).await {
            Ok(run) => {
                if let Err(e) = critic.store.set_check_run(&key, head, run.id as i64).await {
                    tracing::warn!(error = %e, "cannot record the check run");
                }
                Some(CheckRun {
                    repo: repo.clone(),
                    id: run.id,
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot create the check run (does the App have checks: write?); reviewing without it");
                None
            }
        }
    }

    pub async fn in_progress(&self, gh: &Installation) {
        self.update(
            gh,
            CheckRunUpdate {
                status: Some(CheckStatus::InProgress),
                ..CheckRunUpdate::default()
            },
        )
        .await;
    }

    /// `conclusion`: `neutral`, or `failure` when settings ask for it on critical findings.
    pub async fn complete(&self, gh: &Installation, conclusion: &str, title: &str, summary: &str) {
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
        self.update(
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
    }

    async fn update(&self, gh: &Installation, update: CheckRunUpdate) {
        if let Err(e) = gh.update_check_run(&self.repo, self.id, &update).await {
            tracing::warn!(error = %e, check_run = self.id, "cannot update the check run");
        }
    }
}
