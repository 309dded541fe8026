//! Learning from how people answer Critic's threads. GitHub sends no webhook for reactions,
//! so each review run of a pull request reads its threads: the 👍 and 👎 on each, and whether
//! it was resolved. A finding the repository turned down (more 👎 than 👍, or resolved while
//! its code was never changed) is not posted there again, on any pull request.
//!
//! Reading is best effort: a GitHub error, a thread or comment that no longer exists, skips
//! the step for this run (the next run reads again); it never fails or delays a review.

use crate::Critic;
use crate::domain::Permission;
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
    let threads_state = match gh.review_threads(job.repo, job.number).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "threads' resolution not read; learning skipped this run");
            return;
        }
    };
    let needed = critic.config.settings.commands.require_permission.0;
    let mut feedback = Vec::new();
    for f in &threads {
        let Some(id) = f.comment_id.and_then(|id| u64::try_from(id).ok()) else {
            continue;
        };
        // A deleted comment says nothing either way.
        let Some(comment) = comments.iter().find(|c| c.id == id) else {
            continue;
        };
        let totals = comment.reactions.clone().unwrap_or_default();
        let thread = threads_state
            .iter()
            .find(|t| t.comment_ids.first() == Some(&id));
        let dismissed = thread.is_some_and(|t| t.is_resolved && !t.is_outdated);
        let counted = match needed {
            None => Ok((totals.plus_one, totals.minus_one, dismissed)),
            Some(needed) => {
                let resolver = thread.and_then(|t| t.resolved_by.as_deref());
                with_role(gh, job, id, &totals, dismissed, resolver, needed).await
            }
        };
        let (up, down, resolved) = match counted {
            Ok(counted) => counted,
            Err(e) => {
                tracing::warn!(error = %e, "reactions' authors not read; learning skipped this run");
                return;
            }
        };
        feedback.push(Feedback {
            fingerprint: f.fingerprint.clone(),
            thumbs_up: i64::try_from(up).unwrap_or(i64::MAX),
            thumbs_down: i64::try_from(down).unwrap_or(i64::MAX),
            resolved,
        });
    }
    let repo = job.repo.to_string();
    if let Err(e) = critic
        .store
        .record_feedback(&repo, job.number, &feedback)
        .await
    {
        tracing::warn!(error = %e, "threads' feedback not recorded; learning skipped this run");
    }
}

/// With `commands.require_permission`, only people with that role on the repository teach
/// Critic: on a public repository anyone can react, and a pull request's author may resolve
/// its threads without write access. Returns (👍, 👎, dismissed) counting only them.
async fn with_role(
    gh: &Installation,
    job: PrRef<'_>,
    comment_id: u64,
    totals: &crate::github::Reactions,
    dismissed: bool,
    resolver: Option<&str>,
    needed: Permission,
) -> Result<(u64, u64, bool), crate::github::GitHubError> {
    let mut up = 0;
    let mut down = 0;
    if totals.plus_one + totals.minus_one > 0 {
        for r in gh.review_comment_reactions(job.repo, comment_id).await? {
            let Some(user) = r.user else { continue };
            let counts = match r.content.as_str() {
                "+1" => &mut up,
                "-1" => &mut down,
                _ => continue,
            };
            if gh.permission(job.repo, &user.login).await? >= needed {
                *counts += 1;
            }
        }
    }
    let resolved = match (dismissed, resolver) {
        (true, Some(login)) => gh.permission(job.repo, login).await? >= needed,
        _ => false,
    };
    Ok((up, down, resolved))
}

/// A closed pull request's threads, read a last time, and its `/test --verify` branch
/// deleted (one call when `tests.verify_in_ci` is on). Nothing to read (no thread of
/// Critic's there) costs no other GitHub call.
pub(super) async fn run(critic: &Critic, job: &LearnJob) -> Result<Outcome, JobError> {
    // The branch `/test --verify` pushed is of no use once the pull request is closed.
    if critic.config.settings.tests.verify_in_ci {
        let gh = critic.github.installation(job.installation_id)?;
        super::ci_tests::drop_branch(&gh, &job.repo, job.number).await?;
    }
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
