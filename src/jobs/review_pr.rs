//! The review job: fetch the PR, ask the model, post one review, remember it.

use crate::Critic;
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
    if pr.head.sha != job.head_sha {
        return Ok(Outcome::Skipped(format!(
            "superseded: head is now {}",
            pr.head.sha
        )));
    }
    if pr.draft && !critic.config.settings.review.review_drafts {
        return Ok(Outcome::Skipped("draft".into()));
    }
    let repo = job.repo.to_string();
    if critic
        .store
        .last_reviewed_sha(&repo, job.number)
        .await?
        .as_deref()
        == Some(job.head_sha.as_str())
    {
        return Ok(Outcome::Skipped("this head was already reviewed".into()));
    }
    // A previous attempt may have posted and then died before recording it.
    let marker = review_marker(&job.head_sha);
    let existing = gh.reviews(&job.repo, job.number).await?;
    if let Some(found) = existing
        .iter()
        .find(|r| r.body.as_deref().is_some_and(|b| b.contains(&marker)))
    {
        record(critic, job_id, job, found.id, 0, 0).await?;
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
            head_sha: &job.head_sha,
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
    record(critic, job_id, job, posted.review.id, inline, in_body).await?;
    Ok(Outcome::Done(format!(
        "review {} posted: {inline} inline, {in_body} in body",
        posted.review.id
    )))
}

async fn record(
    critic: &Critic,
    job_id: i64,
    job: &ReviewJob,
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
            head_sha: job.head_sha.clone(),
            job_id: Some(job_id),
            inline_comments: inline as i64,
            body_findings: in_body as i64,
        })
        .await?;
    Ok(())
}
