//! The review job: fetch the PR, ask the model, post one review, remember it.

use std::time::Instant;

use crate::Critic;
use crate::config::repo::{PrFacts, RepoPolicy};
use crate::domain::Severity;
use crate::github::{Installation, PullRequest, Review, short_sha};
use crate::llm::Meter;
use crate::poster::summary::{Counts, RunSummary};
use crate::poster::{self, DraftInput, review_marker};
use std::collections::HashSet;

use super::check_run::CheckRun;
use super::notes::{month_key, next_month_start, notice_marker, own_marked_comment, post_once};
use super::{incremental, repo_settings};
use crate::review::{self, Change, GitHubSource, Reviewed, Unusable};
use crate::store::PostedReview;

use super::{JobError, Outcome, ReviewJob};

/// A failure that another attempt will not mend completes the check run here; one that
/// leaves the job dead after its last attempt is completed by the worker
/// ([`CheckRun::give_up`]). Model calls go on `meter`, booked by the worker with the job's
/// outcome.
pub(super) async fn run(
    critic: &Critic,
    job_id: i64,
    job: &ReviewJob,
    meter: &Meter,
) -> Result<Outcome, JobError> {
    let started = Instant::now();
    let repo = job.repo.to_string();
    // A redelivery or a duplicate event of a head already reviewed costs no GitHub call. If
    // the PR has moved on since, the push that moved it brings its own event.
    let last_reviewed = critic
        .store
        .last_reviewed_sha(&repo, job.number.get())
        .await?;
    if job.requested.is_none()
        && !job.head_sha.is_empty()
        && last_reviewed.as_deref() == Some(job.head_sha.as_str())
    {
        return Ok(Outcome::Skipped(format!(
            "head {} was already reviewed",
            job.head_sha
        )));
    }
    let gh = critic.github.installation(job.installation_id)?;
    let pr = gh.pull_request(&job.repo, job.number.get()).await?;
    if pr.state != "open" {
        if let Some(by) = &job.requested {
            let text = format!(
                "this pull request is {}; Critic reviews open ones.",
                pr.state
            );
            super::notes::answer(critic, &gh, job.pr(), by, &text).await?;
        }
        return Ok(Outcome::Skipped(format!("pull request is {}", pr.state)));
    }
    // Deliveries can arrive out of order and a newer one takes over the queued job, so
    // whatever the event said, the head to review is the PR's head now.
    let head = pr.head.sha.as_str();
    if head != job.head_sha.as_str() && !job.head_sha.is_empty() {
        tracing::info!(event_sha = %job.head_sha, head, "head moved since the event; reviewing the current head");
    }
    if let Some(by) = &job.requested {
        super::notes::acknowledge(&gh, &job.repo, by).await;
    }
    let policy = repo_settings::load(critic, &gh, job.pr()).await?;
    let labels: Vec<String> = pr.labels.iter().map(|l| l.name.clone()).collect();
    let facts = PrFacts {
        draft: pr.draft,
        author: &pr.user.login,
        author_is_bot: pr.user.kind.as_deref() == Some("Bot"),
        labels: &labels,
        title: &pr.title,
    };
    // Someone who asks with `/review` gets a review whatever the automatic rules say (a
    // repository with automatic reviews off gets reviews on demand).
    if job.requested.is_none()
        && let Some(skip) = policy.skip(&facts)
    {
        return Ok(Outcome::Skipped(skip.to_string()));
    }
    let already = format!(
        "Critic already reviewed {}, the head of this pull request; findings are never posted twice, so there is nothing new to post. A push gets a new review.",
        short_sha(head)
    );
    if last_reviewed.as_deref() == Some(head) {
        if let Some(by) = &job.requested {
            super::notes::answer(critic, &gh, job.pr(), by, &already).await?;
        }
        return Ok(Outcome::Skipped(format!(
            "head {head} was already reviewed"
        )));
    }
    // A previous attempt may have posted and then died before recording it.
    let bot = critic.github.bot_login().await?;
    let existing = gh.reviews(&job.repo, job.number.get()).await?;
    if let Some(found) = own_review_of(&existing, &bot, head) {
        record(critic, job_id, job, head, found.id, 0, 0).await?;
        if let Some(by) = &job.requested {
            super::notes::answer(critic, &gh, job.pr(), by, &already).await?;
        }
        return Ok(Outcome::Skipped(format!(
            "review {} already posted",
            found.id
        )));
    }

    if let Some(by) = &job.requested
        && let Some(budget) = critic.budget_spent(job.installation_id).await?
    {
        super::notes::answer(
            critic,
            &gh,
            job.pr(),
            by,
            &super::notes::budget_spent_text(budget),
        )
        .await?;
        return Ok(Outcome::Skipped("monthly model budget spent".into()));
    }
    if let Some(budget) = critic.budget_spent(job.installation_id).await? {
        let note = format!(
            "{}Critic did not review this pull request: this installation's model budget for the month (${budget:.2}) is spent. Automatic reviews resume on {}, or when an administrator raises `llm.monthly_budget_usd`.",
            notice_marker("budget"),
            next_month_start().format("%B %-d")
        );
        post_once(critic, &gh, job.pr(), "budget", &month_key(), &note).await?;
        return Ok(Outcome::Skipped("monthly model budget spent".into()));
    }

    let check = CheckRun::start(critic, &gh, &job.repo, head, job_id).await;
    // Everything after the check run started: a failure that no retry will follow completes
    // it (unless this run already did), so a required check never stays "in progress".
    let ready = Ready {
        critic,
        gh: &gh,
        job,
        job_id,
        pr: &pr,
        head,
        repo: &repo,
        policy: &policy,
        last_reviewed: last_reviewed.as_deref(),
        bot: &bot,
        meter,
        started,
        check: check.as_ref(),
    };
    let result = review_head(&ready).await;
    if let (Err(e), Some(check)) = (&result, &check)
        && !e.is_transient()
        && !check.is_completed()
    {
        check
            .complete(
                critic,
                &gh,
                "neutral",
                "Not reviewed",
                &format!("Critic could not finish this review: {e}"),
            )
            .await;
        super::notes::say_not_reviewed(critic, &gh, job, head, &e.to_string()).await;
    }
    result
}

/// What a review knows once it will ask the model: the PR, its settings, its check run.
struct Ready<'a> {
    critic: &'a Critic,
    gh: &'a Installation,
    job: &'a ReviewJob,
    job_id: i64,
    pr: &'a PullRequest,
    head: &'a str,
    repo: &'a str,
    policy: &'a RepoPolicy,
    last_reviewed: Option<&'a str>,
    bot: &'a str,
    meter: &'a Meter,
    started: Instant,
    check: Option<&'a CheckRun>,
}

/// Reviews the head: context, model, one review, the findings remembered, the check run,
/// the threads a push addressed, the summary, and last the head marked reviewed.
async fn review_head(r: &Ready<'_>) -> Result<Outcome, JobError> {
    let Ready {
        critic,
        gh,
        job,
        job_id,
        pr,
        head,
        repo,
        policy,
        last_reviewed,
        bot,
        meter,
        started,
        check,
    } = *r;

    // On a push after a review, only what changed since the reviewed head is reviewed
    // (the PR's whole diff stays the context of each file).
    let since = match last_reviewed {
        Some(base) => incremental::changes_since(gh, &job.repo, base, head).await?,
        None => None,
    };
    let settings = &critic.config.settings;
    if let Some(check) = &check {
        check.in_progress(gh).await;
    }
    let reviewed = review::pipeline::run(
        critic.pipeline(),
        &GitHubSource {
            gh,
            repo: &job.repo,
            number: job.number.get(),
            head,
        },
        &Change {
            repo,
            title: &pr.title,
            description: pr.body.as_deref().unwrap_or(""),
            policy,
            since: since.as_ref(),
            installation: job.installation_id,
            meter,
        },
    )
    .await?;
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        files = reviewed.files.len(),
        "model answered"
    );
    if let Some(Unusable { model, reason }) = reviewed.nothing_read() {
        let note = format!(
            "{}Critic could not review {}: the model's replies could not be read ({model}), even when asked again. Nothing was posted; a new push will try again.\n\n<details><summary>Why</summary>\n\n{}\n</details>",
            notice_marker("unusable"),
            short_sha(head),
            crate::llm::truncate(reason, 500).replace('<', "&lt;")
        );
        post_once(critic, gh, job.pr(), "unusable", head, &note).await?;
        if let Some(check) = &check {
            check
                .complete(
                    critic,
                    gh,
                    "neutral",
                    "Not reviewed",
                    &format!(
                        "The model's replies could not be read ({model}): {}",
                        crate::llm::truncate(reason, 300)
                    ),
                )
                .await;
        }
        return Ok(Outcome::Done(format!(
            "not reviewed: the model's reply was unusable ({model}): {reason}"
        )));
    }
    let Reviewed {
        files,
        contents,
        findings,
        summary,
        walkthrough,
        model,
        not_reviewed,
        ..
    } = reviewed;
    let stored = critic.store.findings(repo, job.number.get()).await?;
    let known: HashSet<String> = stored.iter().map(|f| f.fingerprint.clone()).collect();
    let in_scope = since.as_ref().map(|changes| {
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
            poster::bisect::post_resilient(gh, &job.repo, job.number.get(), &draft.review).await?;
        // Remembered at once, so that nothing after the post can make a retry post them
        // again; the threads' ids (for answering them after a push) are added next.
        let records = poster::finding_records(&draft, &posted, &[], head);
        critic
            .store
            .record_findings(repo, job.number.get(), &records)
            .await?;
        match gh.review_comments(&job.repo, job.number.get()).await {
            Ok(comments) => {
                let records = poster::finding_records(&draft, &posted, &comments, head);
                critic
                    .store
                    .record_findings(repo, job.number.get(), &records)
                    .await?;
            }
            Err(e) => {
                tracing::warn!(error = %e, "threads' ids unknown; they will not be answered after a push")
            }
        }
        refused = posted.refused.len();
        let inline = draft.review.comments.len() - refused;
        let in_body = draft.placed.len() - inline;
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
    };
    let summary_text = poster::summary::render(&RunSummary {
        head_sha: head,
        since_sha: since.as_ref().map(|c| c.base.as_str()),
        summary: &summary,
        walkthrough: &walkthrough,
        files: &files,
        counts,
        review_url: review_url.as_deref(),
        not_reviewed: &not_reviewed,
        model: &model,
        usage,
        cost_micros: cost,
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
    if let Some(changes) = &since {
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
            critic
                .store
                .mark_reviewed(repo, job.number.get(), head)
                .await?
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
    let known = critic
        .store
        .summary_comment(&repo, job.number.get())
        .await?;
    let id = match known {
        Some(id) => Some(id as u64),
        None => {
            own_marked_comment(
                gh,
                &job.repo,
                job.number.get(),
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
                        .set_summary_comment(&repo, job.number.get(), id as i64)
                        .await?;
                }
                return Ok(());
            }
            // Deleted by someone: post a new one.
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let posted = gh
        .post_issue_comment(&job.repo, job.number.get(), text)
        .await?;
    critic
        .store
        .set_summary_comment(&repo, job.number.get(), posted.id as i64)
        .await?;
    Ok(())
}

/// Critic's own review of `head`: carries the marker and was posted by Critic's bot, so a
/// PR author cannot silence Critic by pasting the marker into a review of their own.
fn own_review_of<'a>(reviews: &'a [Review], bot_login: &str, head: &str) -> Option<&'a Review> {
    let marker = review_marker(head);
    reviews.iter().find(|r| {
        r.user.as_ref().is_some_and(|u| u.login == bot_login)
            && r.state.as_deref() != Some("PENDING")
            && r.body.as_deref().is_some_and(|b| b.contains(&marker))
    })
}

async fn record(
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
            number: job.number.get() as i64,
            head_sha: head.to_string(),
            job_id: Some(job_id),
            inline_comments: inline as i64,
            body_findings: in_body as i64,
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::User;

    fn review(login: &str, body: &str) -> Review {
        Review {
            id: 1,
            user: Some(User {
                login: login.into(),
                kind: Some("Bot".into()),
            }),
            body: Some(body.into()),
            commit_id: None,
            state: Some("COMMENTED".into()),
            html_url: None,
        }
    }

    #[test]
    fn only_critics_own_marker_counts() {
        let marker = review_marker("abc");
        let mine = [review("critic[bot]", &format!("x {marker}"))];
        let forged = [review("mallory", &format!("x {marker}"))];
        let other_head = [review("critic[bot]", &review_marker("def"))];
        assert!(own_review_of(&mine, "critic[bot]", "abc").is_some());
        assert!(own_review_of(&forged, "critic[bot]", "abc").is_none());
        assert!(own_review_of(&other_head, "critic[bot]", "abc").is_none());
        // A PENDING review is a probe of the 422 search, not a posted review.
        let mut pending = review("critic[bot]", &format!("x {marker}"));
        pending.state = Some("PENDING".into());
        assert!(own_review_of(&[pending], "critic[bot]", "abc").is_none());
    }
}
