//! Posting a finished review: the draft (placed, deduplicated, capped), one PR review,
//! the findings remembered, the check run completed, the threads a push addressed answered,
//! the summary comment updated, and last the head marked reviewed.

use std::collections::HashSet;
use std::time::Instant;

use crate::Critic;
use crate::config::repo::RepoPolicy;
use crate::domain::Severity;
use crate::github::{Installation, short_sha};
use crate::llm::Meter;
use crate::poster::summary::{Counts, RunSummary};
use crate::poster::{self, DraftInput};
use crate::review::{Changes, Reviewed};
use crate::store::PostedReview;

use super::check_run::CheckRun;
use super::error::{JobError, Outcome};
use super::incremental;
use super::notes::own_marked_comment;
use super::plan::ReviewJob;

/// Where a review goes and what is known of it by the time the model has answered.
pub(super) struct Publish<'a> {
    pub critic: &'a Critic,
    pub gh: &'a Installation,
    pub job: &'a ReviewJob,
    pub job_id: i64,
    pub head: &'a str,
    pub repo: &'a str,
    pub policy: &'a RepoPolicy,
    pub since: Option<&'a Changes>,
    pub bot: &'a str,
    pub meter: &'a Meter,
    pub started: Instant,
    pub check: Option<&'a CheckRun>,
}

/// Posts what the pipeline found. Each step is safe to run again: a retry finds the posted
/// review by its marker and the findings by their fingerprints.
pub(super) async fn publish(p: &Publish<'_>, reviewed: Reviewed) -> Result<Outcome, JobError> {
    let Publish {
        critic,
        gh,
        job,
        job_id,
        head,
        repo,
        policy,
        since,
        bot,
        meter,
        started,
        check,
    } = *p;
    let settings = &critic.config.settings;
    let Reviewed {
        files,
        contents,
        findings,
        summary,
        walkthrough,
        model,
        not_reviewed,
        verification,
        no_problem,
        ..
    } = reviewed;
    let verified = crate::review::verify::summary_line(&verification, no_problem);
    let stored = critic.store.findings(repo, job.number).await?;
    let known: HashSet<String> = stored.iter().map(|f| f.fingerprint.clone()).collect();
    // What the repository's people turned down (read before the model was asked) is muted,
    // here and on its other pull requests.
    let muted = critic
        .store
        .muted_fingerprints(repo)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "muted findings not read; none muted this run");
            HashSet::new()
        });
    let in_scope = since.map(|changes| {
        move |path: &str, start: u32, end: u32| changes.changed_line(path, start, end)
    });
    let draft = poster::draft_review(
        &findings,
        &files,
        &DraftInput {
            head_sha: head,
            max_inline: policy.max_comments,
            min_severity: policy.min_severity,
            known: &known,
            muted: &muted,
            // Findings on code this push did not touch were the last review's business.
            in_scope: in_scope.as_ref().map(|f| f as &poster::InScope),
            heads: &contents,
        },
    );
    let mut review_url = None;
    let mut posted_review = None;
    let mut refused = 0;
    let mut outcome = format!("{head} reviewed: nothing new to post");
    if !draft.is_empty() {
        let posted =
            poster::bisect::post_resilient(gh, &job.repo, job.number, &draft.review).await?;
        // Remembered at once, so that nothing after the post can make a retry post them
        // again; the threads' ids (for answering them after a push) are added next.
        let records = poster::finding_records(&draft, &posted, &[], head);
        critic
            .store
            .record_findings(repo, job.number, &records)
            .await?;
        match gh.review_comments(&job.repo, job.number).await {
            Ok(comments) => {
                let records = poster::finding_records(&draft, &posted, &comments, head);
                critic
                    .store
                    .record_findings(repo, job.number, &records)
                    .await?;
            }
            Err(e) => {
                tracing::warn!(error = %e, "threads' ids unknown; they will not be answered after a push")
            }
        }
        refused = posted.refused.len();
        let inline = draft.review.comments.len() - refused;
        let in_body = draft.placed.len() - inline;
        metrics::counter!("critic_reviews_posted_total").increment(1);
        metrics::counter!("critic_findings_total", "place" => "inline").increment(inline as u64);
        metrics::counter!("critic_findings_total", "place" => "body").increment(in_body as u64);
        metrics::counter!("critic_threads_refused_total").increment(refused as u64);
        if posted.attempts > 1 {
            // GitHub refused the review as first sent (422) and took it without the threads
            // it refused.
            metrics::counter!("critic_review_rejections_recovered_total").increment(1);
        }
        posted_review = Some((posted.review.id, inline, in_body));
        review_url = posted.review.html_url.clone();
        outcome = format!(
            "review {} of {head} posted: {inline} inline, {in_body} in body ({} refused by GitHub)",
            posted.review.id,
            posted.refused.len()
        );
    }
    let (usage, cost) = meter.total();
    let counts = Counts {
        critical: draft.of_severity(Severity::Critical),
        warning: draft.of_severity(Severity::Warning),
        nit: draft.of_severity(Severity::Nit),
        // Threads GitHub refused went into the review body.
        inline: draft.inline() - refused,
        in_body: draft.in_body() + refused,
        collapsed: draft.collapsed(),
        repeated: draft.repeated,
        muted: draft.muted,
    };
    let paused_by = critic.store.paused_by(repo, job.number).await?;
    let summary_text = poster::summary::render(&RunSummary {
        head_sha: head,
        since_sha: since.map(|c| c.base.as_str()),
        summary: &summary,
        walkthrough: &walkthrough,
        files: &files,
        counts,
        review_url: review_url.as_deref(),
        not_reviewed: &not_reviewed,
        model: &model,
        usage,
        cost_micros: cost,
        verification: verified.as_deref(),
        learned: &policy.learned,
        paused_by: paused_by.as_deref(),
    });
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "review posted"
    );
    // The check run first: whatever fails after this, it does not stay in progress.
    if let Some(check) = &check {
        let conclusion = if counts.critical > 0 && settings.review.fail_on_critical {
            "failure"
        } else {
            "neutral"
        };
        let title = if counts.critical + counts.warning + counts.nit == 0 {
            "No new findings".to_string()
        } else {
            format!(
                "{} critical, {} warning, {} nit",
                counts.critical, counts.warning, counts.nit
            )
        };
        check
            .complete(critic, gh, conclusion, &title, &summary_text)
            .await;
    }
    if let Some(changes) = since {
        incremental::answer_addressed(critic, gh, job, policy, changes, &stored, head).await?;
    }
    if let Err(e) = upsert_summary(critic, gh, job, bot, &summary_text).await {
        // With a review posted, a retry would find it and stop there, so the summary would
        // not come either way: it is brought up to date by the next run. Without one, the
        // summary is all this run says, and a retry redoes it.
        if posted_review.is_none() {
            return Err(e);
        }
        tracing::warn!(error = %e, "summary comment not updated; the next run will");
    }
    // Last, the head counts as reviewed: a retry of anything above runs again (the posted
    // review is found by its marker, the findings by their fingerprints).
    match posted_review {
        Some((id, inline, in_body)) => {
            record(critic, job_id, job, head, id, inline, in_body).await?;
        }
        None => {
            critic.store.mark_reviewed(repo, job.number, head).await?;
            // Whoever asked with `/review` hears that it ran, though nothing was posted (a
            // push may have moved the head since they asked, and earlier findings are never
            // posted twice). A retry of this answer finds the head reviewed and answers too.
            if let Some(by) = &job.requested {
                let text = format!(
                    "Critic reviewed {}: nothing new to post (findings already posted are not repeated); the summary is up to date.",
                    short_sha(head)
                );
                super::notes::answer(critic, gh, job.pr(), by, &text).await?;
            }
        }
    }
    Ok(Outcome::Done(outcome))
}

/// Edits the PR's summary comment in place, or posts it the first time. The comment is
/// found by its id once known, else by its marker among the bot's own comments (a marker
/// pasted by someone else does not count).
async fn upsert_summary(
    critic: &Critic,
    gh: &Installation,
    job: &ReviewJob,
    bot: &str,
    text: &str,
) -> Result<(), JobError> {
    let repo = job.repo.to_string();
    let known = critic.store.summary_comment(&repo, job.number).await?;
    let id = match known {
        Some(id) => Some(id as u64),
        None => {
            own_marked_comment(
                gh,
                &job.repo,
                job.number,
                bot,
                poster::summary::SUMMARY_MARKER,
            )
            .await?
        }
    };
    if let Some(id) = id {
        match gh.update_issue_comment(&job.repo, id, text).await {
            Ok(_) => {
                if known.is_none() {
                    critic
                        .store
                        .set_summary_comment(&repo, job.number, id as i64)
                        .await?;
                }
                return Ok(());
            }
            // Deleted by someone: post a new one.
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let posted = gh.post_issue_comment(&job.repo, job.number, text).await?;
    critic
        .store
        .set_summary_comment(&repo, job.number, posted.id as i64)
        .await?;
    Ok(())
}

pub(super) async fn record(
    critic: &Critic,
    job_id: i64,
    job: &ReviewJob,
    head: &str,
    review_id: u64,
    inline: usize,
    in_body: usize,
) -> Result<(), JobError> {
    critic
        .store
        .record_review(&PostedReview {
            review_id: review_id as i64,
            repo: job.repo.to_string(),
            number: job.number.to_i64(),
            head_sha: head.to_string(),
            job_id: Some(job_id),
            inline_comments: inline as i64,
            body_findings: in_body as i64,
        })
        .await?;
    Ok(())
}
