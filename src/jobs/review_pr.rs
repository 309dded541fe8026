//! The review job: decide whether the head needs a review (state, skip rules, already
//! reviewed, budget), run the pipeline on it through GitHub, and hand the result to
//! `publish`.

use std::time::Instant;

use crate::Critic;
use crate::config::repo::{PrFacts, RepoPolicy};
use crate::github::{Installation, PullRequest, Review, short_sha};
use crate::llm::Meter;
use crate::poster::review_marker;
use crate::review::{self, Change, GitHubSource, Unusable};

use super::check_run::CheckRun;
use super::error::{JobError, Outcome};
use super::notes::{month_key, next_month_start, notice_marker, post_once};
use super::plan::ReviewJob;
use super::publish::{self, Publish, record};
use super::{incremental, repo_settings};

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
    let last_reviewed = critic.store.last_reviewed_sha(&repo, job.number).await?;
    if job.requested.is_none()
        && !job.head_sha.is_empty()
        && last_reviewed.as_deref() == Some(job.head_sha.as_str())
    {
        return Ok(Outcome::Skipped(format!(
            "head {} was already reviewed",
            job.head_sha
        )));
    }
    // `/pause`d: pushes are not reviewed (asking with `/review` still works).
    if job.requested.is_none()
        && let Some(by) = critic.store.paused_by(&repo, job.number).await?
    {
        return Ok(Outcome::Skipped(format!(
            "automatic reviews of this pull request were paused by {by}"
        )));
    }
    // `/review --full`: the whole pull request again, whatever was reviewed before.
    let full = job.full && job.requested.is_some();
    let first_review = last_reviewed.is_none();
    let last_reviewed = if full { None } else { last_reviewed };
    let gh = critic.github.installation(job.installation_id)?;
    let pr = gh.pull_request(&job.repo, job.number).await?;
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
    let mut policy = repo_settings::load(critic, &gh, job.pr()).await?;
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
    let existing = gh.reviews(&job.repo, job.number).await?;
    if !full && let Some(found) = own_review_of(&existing, &bot, head) {
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
    if let Some(by) = &job.requested
        && let Err(refused) =
            super::gate::admit(critic, &gh, job.installation_id, job.pr(), by).await?
    {
        if let Some(text) = &refused.answer {
            super::notes::answer(critic, &gh, job.pr(), by, text).await?;
        }
        return Ok(Outcome::Skipped(refused.reason));
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

    // What people made of this PR's threads so far, read before the model is asked: what
    // they turned down is muted, and a pattern of it becomes an instruction in the prompt.
    let stored = critic.store.findings(&repo, job.number).await?;
    super::learn::collect(critic, &gh, job.pr(), &stored).await;
    policy.learned = super::learn::instructions(critic, &repo).await;
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
    // `review.suggest_tests`: the first review of a pull request brings tests for it. Best
    // effort: the review is posted whatever happens here.
    if first_review
        && policy.suggest_tests
        && matches!(result, Ok(Outcome::Done(_)))
        && let Err(e) =
            super::first_review_tests::with_first_review(critic, &gh, job, &pr, &policy, meter)
                .await
    {
        tracing::warn!(error = %e, "tests were not suggested with the first review");
    }
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
    if let Some(check) = &check {
        check.in_progress(r.critic, gh).await;
    }
    let reviewed = review::pipeline::run(
        critic.pipeline(),
        &GitHubSource {
            gh,
            repo: &job.repo,
            number: job.number,
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
            progress: None,
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
    publish::publish(
        &Publish {
            critic,
            gh,
            job,
            job_id,
            head,
            repo,
            policy,
            since: since.as_ref(),
            bot,
            meter,
            started,
            check,
        },
        reviewed,
    )
    .await
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
