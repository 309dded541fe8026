//! The review job: fetch the PR, ask the model, post one review, remember it.

use crate::Critic;
use crate::github::Review;
use crate::poster::{self, SummaryInput, review_marker};
use crate::review::{self, PrFile, ReviewInput};
use crate::store::PostedReview;

use super::{JobError, Outcome, ReviewJob};

pub(super) async fn run(
    critic: &Critic,
    job_id: i64,
    job: &ReviewJob,
) -> Result<Outcome, JobError> {
    let gh = critic.github.installation(job.installation_id)?;
    let pr = gh.pull_request(&job.repo, job.number).await?;
    if pr.state != "open" {
        return Ok(Outcome::Skipped(format!("pull request is {}", pr.state)));
    }
    if pr.draft && !critic.config.settings.review.review_drafts {
        return Ok(Outcome::Skipped("draft".into()));
    }
    // Deliveries can arrive out of order and a newer one supersedes older queued jobs, so
    // whatever the event said, the head to review is the PR's head now.
    let head = pr.head.sha.as_str();
    if head != job.head_sha {
        tracing::info!(event_sha = %job.head_sha, head, "head moved since the event; reviewing the current head");
    }
    let repo = job.repo.to_string();
    if critic
        .store
        .last_reviewed_sha(&repo, job.number)
        .await?
        .as_deref()
        == Some(head)
    {
        return Ok(Outcome::Skipped(format!(
            "head {head} was already reviewed"
        )));
    }
    // A previous attempt may have posted and then died before recording it.
    let bot = critic.github.bot_login().await?;
    let existing = gh.reviews(&job.repo, job.number).await?;
    if let Some(found) = own_review_of(&existing, &bot, head) {
        record(critic, job_id, job, head, found.id, 0, 0).await?;
        return Ok(Outcome::Skipped(format!(
            "review {} already posted",
            found.id
        )));
    }

    let files: Vec<PrFile> = gh
        .pull_request_files(&job.repo, job.number)
        .await?
        .into_iter()
        .map(PrFile::from_github)
        .collect();
    let (request, omitted) = review::build_request(
        &critic.prompts,
        &ReviewInput {
            repo: &repo,
            title: &pr.title,
            description: pr.body.as_deref().unwrap_or(""),
            files: &files,
            max_diff_chars: critic.config.settings.review.max_diff_chars,
        },
    )?;
    let model_review = review::ask_model(critic.model.as_ref(), &request, &files).await?;
    if !model_review.rejected.is_empty() {
        tracing::info!(rejected = ?model_review.rejected, "model findings dropped by validation");
    }
    let model = critic.model.describe();
    let draft = poster::draft_review(
        &model_review.findings,
        &files,
        &SummaryInput {
            head_sha: head,
            summary: &model_review.summary,
            omitted_files: &omitted,
            model: &model,
            max_inline: critic.config.settings.review.max_comments,
        },
    );
    let posted = poster::post(&gh, &job.repo, job.number, &draft).await?;
    let (inline, in_body) = if posted.fell_back {
        (0, draft.inline + draft.in_body)
    } else {
        (draft.inline, draft.in_body)
    };
    record(critic, job_id, job, head, posted.review.id, inline, in_body).await?;
    Ok(Outcome::Done(format!(
        "review {} of {head} posted: {inline} inline, {in_body} in body",
        posted.review.id
    )))
}

/// Critic's own review of `head`: carries the marker and was posted by Critic's bot, so a
/// PR author cannot silence Critic by pasting the marker into a review of their own.
fn own_review_of<'a>(reviews: &'a [Review], bot_login: &str, head: &str) -> Option<&'a Review> {
    let marker = review_marker(head);
    reviews.iter().find(|r| {
        r.user.as_ref().is_some_and(|u| u.login == bot_login)
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
            number: job.number as i64,
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
            }),
            body: Some(body.into()),
            commit_id: None,
            state: None,
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
    }
}
