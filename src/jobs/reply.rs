//! Replies in Critic's review threads: someone answers a finding ("this can't be zero: the
//! caller checks it"), and Critic answers in the thread, with the PR's code in view. Only
//! threads Critic started (known from the store) are answered, once per reply.

use std::fmt::Write;

use crate::Critic;
use crate::github::{Installation, PullReviewComment};
use crate::llm::{AskError, Meter, Task};
use crate::review::tasks::parse_answer;
use crate::review::{self, PrFile, PromptInput, ReviewError};

use super::command::budget_spent_text;
use super::gather::{Gathered, gather};
use super::{JobError, Outcome, ReplyJob, repo_settings};

/// The last messages of a thread shown to the model; older ones add little.
const MAX_THREAD_MESSAGES: usize = 10;
const MAX_MESSAGE_CHARS: usize = 2000;
const NOTICE_KIND: &str = "reply";

pub(super) async fn run(critic: &Critic, job_id: i64, job: &ReplyJob) -> Result<Outcome, JobError> {
    let meter = Meter::new();
    let result = execute(critic, job, &meter).await;
    super::book_usage(critic, job_id, job.installation_id, job.pr(), &meter).await;
    result
}

async fn execute(critic: &Critic, job: &ReplyJob, meter: &Meter) -> Result<Outcome, JobError> {
    let repo = job.repo.to_string();
    let ours = critic
        .store
        .findings(&repo, job.number)
        .await?
        .iter()
        .any(|f| f.comment_id == Some(job.root_id as i64));
    if !ours {
        return Ok(Outcome::Skipped("not a thread Critic started".into()));
    }
    let key = job.requested.comment_id.to_string();
    if critic
        .store
        .notice_claimed(&repo, job.number, NOTICE_KIND, &key)
        .await?
    {
        return Ok(Outcome::Skipped("already answered".into()));
    }
    let gh = critic.github.installation(job.installation_id)?;
    if let Some(budget) = critic.budget_spent(job.installation_id).await? {
        reply_once(critic, &gh, job, &budget_spent_text(budget)).await?;
        return Ok(Outcome::Skipped("monthly model budget spent".into()));
    }

    let pr = gh.pull_request(&job.repo, job.number).await?;
    let policy = repo_settings::load(critic, &gh, job.pr()).await?;
    let mut thread: Vec<PullReviewComment> = gh
        .review_comments(&job.repo, job.number)
        .await?
        .into_iter()
        .filter(|c| c.id == job.root_id || c.in_reply_to_id == Some(job.root_id))
        .collect();
    thread.sort_by_key(|c| c.id);
    let Some(root) = thread.first() else {
        return Ok(Outcome::Skipped("the thread is gone".into()));
    };
    let path = root.path.clone();
    let line = root.line.or(root.original_line).unwrap_or(0);
    let bot = critic.github.bot_login().await?;
    let question = thread_text(&thread, &bot, &path, line);

    let files: Vec<PrFile> = gh
        .pull_request_files(&job.repo, job.number)
        .await?
        .into_iter()
        .map(PrFile::from_github)
        .collect();
    let endpoint = policy.review_model.as_deref();
    let Gathered { context, .. } = gather(
        critic,
        &gh,
        &job.repo,
        &pr.head.sha,
        &files,
        None,
        &policy,
        critic.llm.model_name_for(Task::Ask, endpoint),
    )
    .await?;
    // The request holding the thread's file; the model needs that code most.
    let chunk = context
        .chunks
        .iter()
        .find(|c| c.iter().any(|f| f.path == path))
        .or(context.chunks.first())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let not_shown: Vec<String> = files
        .iter()
        .map(|f| f.file.filename.clone())
        .filter(|p| !chunk.iter().any(|f| &f.path == p))
        .collect();
    let redact = |t: &str| crate::context::redact::redact(t).text;
    let (title, description, question) = (
        redact(&pr.title),
        redact(pr.body.as_deref().unwrap_or("")),
        redact(&question),
    );
    let instructions = policy.instructions_for(chunk.iter().map(|f| f.path.as_str()));
    let request = review::build_task_request(
        &critic.prompts,
        Task::Ask,
        &PromptInput {
            repo: &repo,
            title: &title,
            description: &description,
            files: chunk,
            part: (1, 1),
            not_shown: &not_shown,
            question: Some(&question),
            instructions: Some(instructions.as_str()),
            since: None,
        },
    )?;
    let answer = critic
        .llm
        .ask_on(
            Task::Ask,
            endpoint,
            job.installation_id,
            &request,
            meter,
            |v| parse_answer(v, &files),
        )
        .await;
    let text = match answer {
        Ok(a) => format!(
            "{}\n\n<sub>Model: {}. Critic comments only; it never approves or blocks.</sub>",
            a.value.answer.trim(),
            a.model
        ),
        Err(AskError::Unusable { model, reason }) => {
            tracing::warn!(%model, %reason, "the model's answer to a thread reply was unusable");
            format!(
                "Critic could not answer: the model ({model}) did not return a usable answer, even when asked again."
            )
        }
        Err(e) => return Err(JobError::Review(ReviewError::Ask(e))),
    };
    reply_once(critic, &gh, job, &text).await?;
    Ok(Outcome::Done("thread answered".into()))
}

/// The thread as the model reads it: who said what, oldest first, the last few messages.
fn thread_text(thread: &[PullReviewComment], bot: &str, path: &str, line: u32) -> String {
    let mut out = format!(
        "A reply in the review thread Critic started on `{path}` line {line}. Answer the last message, in the thread's language; if it shows the finding was wrong, say so plainly.\n"
    );
    let skip = thread.len().saturating_sub(MAX_THREAD_MESSAGES);
    for c in thread.iter().skip(skip) {
        let who = match c.user.as_ref().map(|u| u.login.as_str()) {
            Some(login) if login == bot => "Critic".to_string(),
            Some(login) => format!("@{login}"),
            None => "someone".to_string(),
        };
        let body = review::cap(c.body.trim(), MAX_MESSAGE_CHARS);
        let _ = write!(out, "\n{who} wrote:\n{body}\n");
    }
    out
}

/// Replies in the thread once per reply comment, however often the job runs.
async fn reply_once(
    critic: &Critic,
    gh: &Installation,
    job: &ReplyJob,
    text: &str,
) -> Result<(), JobError> {
    let repo = job.repo.to_string();
    let key = job.requested.comment_id.to_string();
    if !critic
        .store
        .claim_notice(&repo, job.number, NOTICE_KIND, &key)
        .await?
    {
        return Ok(());
    }
    let body = crate::llm::truncate(text, 60_000);
    if let Err(e) = gh
        .reply_to_review_comment(&job.repo, job.number, job.root_id, &body)
        .await
    {
        critic
            .store
            .release_notice(&repo, job.number, NOTICE_KIND, &key)
            .await?;
        return Err(e.into());
    }
    Ok(())
}
