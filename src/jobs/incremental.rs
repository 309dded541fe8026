//! Reviews after a push: what changed since the reviewed head (the compare API), and the
//! threads whose code that push changed, which get a short "addressed in" reply.

use crate::Critic;
use crate::config::repo::RepoPolicy;
use crate::github::{GitHubError, Installation, RepoName};
use crate::review::Changes;
use crate::store::StoredFinding;

use super::error::JobError;
use super::plan::ReviewJob;
/// The changes since `base`, or None when an incremental review would mislead: the base is
/// gone or not an ancestor (a force push), or GitHub's list is cut at 300 files.
pub async fn changes_since(
    gh: &Installation,
    repo: &RepoName,
    base: &str,
    head: &str,
) -> Result<Option<Changes>, GitHubError> {
    let comparison = match gh.compare(repo, base, head).await {
        Ok(c) => c,
        Err(e) if matches!(e.status(), Some(404 | 422)) => {
            tracing::info!(
                base,
                head,
                "the reviewed head is gone (force push?); reviewing the whole PR"
            );
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    if comparison.status != "ahead" || comparison.files.len() >= 300 {
        tracing::info!(base, head, status = %comparison.status, files = comparison.files.len(), "reviewing the whole PR");
        return Ok(None);
    }
    Ok(Some(Changes::new(base, comparison.files)))
}

/// Replies "addressed in" to each of Critic's threads whose code the push rewrote, and
/// resolves it when the repository asks for that. Each thread is answered once.
pub async fn answer_addressed(
    critic: &Critic,
    gh: &Installation,
    job: &ReviewJob,
    policy: &RepoPolicy,
    changes: &Changes,
    stored: &[StoredFinding],
    head: &str,
) -> Result<usize, JobError> {
    let repo = job.repo.to_string();
    let addressed: Vec<&StoredFinding> = stored
        .iter()
        .filter(|f| f.addressed_sha.is_none() && f.comment_id.is_some())
        .filter(|f| u32::try_from(f.line).is_ok_and(|line| changes.rewrote(&f.path, line)))
        .collect();
    if addressed.is_empty() {
        return Ok(0);
    }
    let short = crate::github::short_sha(head);
    let threads = if policy.resolve_addressed {
        match gh.review_threads(&job.repo, job.number).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list review threads; replying without resolving");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    for f in &addressed {
        let Some(comment_id) = f.comment_id.map(|c| c as u64) else {
            continue;
        };
        // Marked first: a crash after the reply must not reply twice.
        critic
            .store
            .mark_addressed(&repo, job.number, &f.fingerprint, head)
            .await?;
        let body =
            format!("The code this thread is about changed in {short}; it may be addressed.");
        if let Err(e) = gh
            .reply_to_review_comment(&job.repo, job.number, comment_id, &body)
            .await
        {
            tracing::warn!(error = %e, comment_id, "cannot reply to the thread");
            continue;
        }
        if let Some(thread) = threads
            .iter()
            .find(|t| !t.is_resolved && t.comment_ids.first() == Some(&comment_id))
            && let Err(e) = gh.resolve_review_thread(&thread.id).await
        {
            tracing::warn!(error = %e, thread = %thread.id, "cannot resolve the thread");
        }
    }
    Ok(addressed.len())
}
