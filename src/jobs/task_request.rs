//! The model request of a command (`/describe`, `/improve`, `/ask`, `/test`): what the
//! model reads of the pull request, within one request's budget, and the test conventions
//! for `/test`. `/test --verify`'s correction round asks with it too.

use crate::Critic;
use crate::domain::Task;
use crate::review::test_conventions::TestConventions;
use crate::review::{
    self, Gathered, GitHubSource, PrFile, PromptInput, Reader, ReviewError, Source, gather,
};

use super::error::JobError;

/// A model request for a command, and what reading its answer needs.
pub(super) struct Prepared {
    pub request: crate::llm::ChatRequest,
    /// The pull request's changed files.
    pub files: Vec<PrFile>,
    /// How the repository tests (read for `/test` only).
    pub conventions: TestConventions,
    /// Files over one request's budget, named to the model instead of shown.
    pub not_shown: Vec<String>,
}

/// Gathers what the model reads for `task` on the pull request `source` reads: the most
/// valuable files within one request's budget, the rest named. `tests_feedback` (`/test
/// --verify`'s second round) follows the test conventions in the prompt. `Err` says, for the
/// answer, why there is nothing to show the model (no files, or only lock, generated,
/// binary... files): an answer about nothing would be invented.
pub(super) async fn prepare(
    critic: &Critic,
    source: &GitHubSource<'_>,
    pr: &crate::github::PullRequest,
    policy: &crate::config::repo::RepoPolicy,
    task: Task,
    question: Option<&str>,
    tests_feedback: Option<&str>,
) -> Result<Result<Prepared, String>, JobError> {
    let files: Vec<PrFile> = source.changed_files().await.map_err(ReviewError::from)?;
    let Gathered {
        context,
        not_reviewed,
        ..
    } = gather(
        &critic.config.settings.review,
        source,
        &files,
        None,
        policy,
        Reader::of(
            &critic.llm,
            &critic.config.settings.review,
            task,
            policy.model_for(task),
        )
        .await,
    )
    .await?;
    let shown: &[_] = context.chunks.first().map(Vec::as_slice).unwrap_or(&[]);
    if shown.is_empty() {
        let skipped: Vec<String> = not_reviewed
            .iter()
            .chain(&context.skipped)
            .chain(&context.left_out)
            .map(|(p, why)| format!("`{p}` ({why})"))
            .take(20)
            .collect();
        return Ok(Err(if skipped.is_empty() {
            "this pull request has no changed files Critic can read.".to_string()
        } else {
            format!(
                "none of this pull request's files is one Critic reads: {}.",
                skipped.join(", ")
            )
        }));
    }
    let mut not_shown: Vec<String> = context.left_out.iter().map(|(p, _)| p.clone()).collect();
    for chunk in context.chunks.iter().skip(1) {
        not_shown.extend(chunk.iter().map(|f| f.path.clone()));
    }
    let instructions = policy.instructions_for(shown.iter().map(|f| f.path.as_str()));
    let repo = source.repo.to_string();
    // `/test`: how this repository tests.
    let conventions = if task == Task::Tests {
        let changed: Vec<String> = shown.iter().map(|f| f.path.clone()).collect();
        TestConventions::read_or_none(source, &changed).await
    } else {
        TestConventions::default()
    };
    let mut tests_context = conventions.prompt_text();
    if let Some(feedback) = tests_feedback {
        tests_context.push_str("\n\n");
        tests_context.push_str(feedback);
    }
    let request = review::build_task_request(
        &critic.prompts,
        task,
        &PromptInput {
            repo: &repo,
            title: &pr.title,
            description: pr.body.as_deref().unwrap_or(""),
            files: shown,
            part: (1, 1),
            not_shown: &not_shown,
            question,
            thread: false,
            instructions: Some(instructions.as_str()),
            since: None,
            tests_context: Some(tests_context.as_str()),
            ..Default::default()
        },
    )?;
    Ok(Ok(Prepared {
        request,
        files,
        conventions,
        not_shown,
    }))
}
