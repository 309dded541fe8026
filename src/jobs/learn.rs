//! Learning from how people answer Critic's threads. GitHub sends no webhook for reactions,
//! so each review run of a pull request reads its threads: the 👍 and 👎 on each, and whether
//! it was resolved. A finding the repository turned down (more 👎 than 👍, or resolved while
//! its code was never changed) is not posted there again, on any pull request.
//!
//! Reading is best effort: a GitHub error, a thread or comment that no longer exists, skips
//! the step for this run (the next run reads again); it never fails or delays a review.

use std::collections::HashMap;

use crate::Critic;
use crate::github::Installation;
use crate::store::{Feedback, Learned, StoredFinding};

use super::error::{JobError, Outcome};
use super::plan::{LearnJob, PrRef};

/// Turned-down findings of one category under one folder that make a learned instruction.
const LEARN_AFTER: usize = 3;

/// The instructions learned for `repo` (none when the store cannot say: never a failure).
pub(super) async fn instructions(critic: &Critic, repo: &str) -> Vec<String> {
    match critic.store.learned(repo, LEARN_AFTER).await {
        Ok(learned) => learned.iter().map(Learned::instruction).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "learned instructions not read");
            Vec::new()
        }
    }
}

/// Reads the reactions and resolution of this PR's threads and records them.
pub(super) async fn collect(
    critic: &Critic,
    gh: &Installation,
    job: PrRef<'_>,
    stored: &[StoredFinding],
) {
    let threads: Vec<&StoredFinding> = stored.iter().filter(|f| f.comment_id.is_some()).collect();
    if threads.is_empty() {
        return;
    }
    let comments = match gh.review_comments(job.repo, job.number).await {
        Ok(comments) => comments,
        Err(e) => {
            tracing::warn!(error = %e, "threads' reactions not read; learning skipped this run");
            return;
        }
    };
    // Resolved while its code is unchanged at the current head (GitHub marks a thread outdated
    // once its lines change): dismissed. Resolved after a change: acted on, not a dismissal.
    let resolved: HashMap<u64, bool> = match gh.review_threads(job.repo, job.number).await {
        Ok(found) => found
            .into_iter()
            .filter_map(|t| Some((*t.comment_ids.first()?, t.is_resolved && !t.is_outdated)))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "threads' resolution not read; learning skipped this run");
            return;
        }
    };
    let feedback: Vec<Feedback> = threads
        .iter()
        .filter_map(|f| {
            let id = u64::try_from(f.comment_id?).ok()?;
            // A deleted comment says nothing either way.
            let comment = comments.iter().find(|c| c.id == id)?;
            let reactions = comment.reactions.clone().unwrap_or_default();
            Some(Feedback {
                fingerprint: f.fingerprint.clone(),
                thumbs_up: i64::try_from(reactions.plus_one).unwrap_or(i64::MAX),
                thumbs_down: i64::try_from(reactions.minus_one).unwrap_or(i64::MAX),
                resolved: resolved.get(&id).copied().unwrap_or(false),
            })
        })
        .collect();
    let repo = job.repo.to_string();
    if let Err(e) = critic
        .store
        .record_feedback(&repo, job.number, &feedback)
        .await
    {
        tracing::warn!(error = %e, "threads' feedback not recorded; learning skipped this run");
    }
}

/// A closed pull request's threads, read a last time. Nothing to read (no thread of Critic's
/// there) costs no GitHub call.
pub(super) async fn run(critic: &Critic, job: &LearnJob) -> Result<Outcome, JobError> {
    let repo = job.repo.to_string();
    let stored = critic.store.findings(&repo, job.number).await?;
    if !stored.iter().any(|f| f.comment_id.is_some()) {
        return Ok(Outcome::Skipped(
            "no threads of Critic's to learn from".into(),
        ));
    }
    let gh = critic.github.installation(job.installation_id)?;
    collect(critic, &gh, job.pr(), &stored).await;
    Ok(Outcome::Done("threads' reactions read".into()))
}
