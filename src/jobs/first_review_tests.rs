//! `review.suggest_tests`: the tests `/test` would suggest, brought by the first review of a
//! pull request. Apart from `suggest_tests` (the conventions and checks, which `/test` uses too)
//! and `command` (how tests are shown), which this joins.

use crate::Critic;
use crate::config::repo::RepoPolicy;
use crate::domain::Task;
use crate::github::{Installation, PullRequest};
use crate::llm::Meter;
use crate::review::source::Source;
use crate::review::{self, GitHubSource, PromptInput, ReviewError, gather};

use super::error::JobError;
use super::plan::ReviewJob;
use super::suggest_tests::TestConventions;
use super::test_threads;

/// Marks the comment holding the tests suggested with a pull request's first review.
const FIRST_REVIEW_MARKER: &str = "<!-- critic:tests -->";

/// `review.suggest_tests`: after the first review of a pull request, the tests `/test` would
/// suggest, in one comment (once per pull request). Called by the review job once its review
/// is posted; the caller treats a failure as the review's note, not its failure.
pub(super) async fn with_first_review(
    critic: &Critic,
    gh: &Installation,
    job: &ReviewJob,
    pr: &PullRequest,
    policy: &RepoPolicy,
    meter: &Meter,
) -> Result<(), JobError> {
    let repo = job.repo.to_string();
    if critic
        .store
        .notice_claimed(&repo, job.number, "tests", "first-review")
        .await?
    {
        return Ok(());
    }
    let endpoint = policy.model_for(Task::Tests);
    let source = GitHubSource {
        gh,
        repo: &job.repo,
        number: job.number,
        head: &pr.head.sha,
    };
    let files = source.changed_files().await.map_err(ReviewError::from)?;
    let gathered = gather(
        &critic.config.settings.review,
        &source,
        &files,
        None,
        policy,
        critic.llm.model_name_for(Task::Tests, endpoint),
    )
    .await?;
    let Some(shown) = gathered.context.chunks.first().filter(|c| !c.is_empty()) else {
        return Ok(());
    };
    let changed: Vec<String> = shown.iter().map(|f| f.path.clone()).collect();
    let conventions = TestConventions::read_or_none(&source, &changed).await;
    let tests_context = conventions.prompt_text();
    let instructions = policy.instructions_for(changed.iter().map(String::as_str));
    let request = review::build_task_request(
        &critic.prompts,
        Task::Tests,
        &PromptInput {
            repo: &repo,
            title: &pr.title,
            description: pr.body.as_deref().unwrap_or(""),
            files: shown,
            part: (1, 1),
            instructions: Some(instructions.as_str()),
            tests_context: Some(tests_context.as_str()),
            ..Default::default()
        },
    )?;
    let answer = critic
        .llm
        .ask_on(
            Task::Tests,
            endpoint,
            job.installation_id,
            &request,
            meter,
            conventions.validator(),
        )
        .await
        .map_err(|e| JobError::Review(ReviewError::Ask(e)))?;
    let (tests, notes) = answer.value;
    if tests.is_empty() {
        return Ok(());
    }
    let (placed, mut tests) = test_threads::place_all(&source, &files, tests)
        .await
        .map_err(ReviewError::from)?;
    let (offered, refused) = test_threads::offer(gh, job.pr(), &pr.head.sha, placed).await?;
    tests.extend(refused);
    let heading = "Tests for this change (`review.suggest_tests`; `/test` asks again)";
    let body = format!(
        "{FIRST_REVIEW_MARKER}\n{}",
        super::notes::fit(&super::command::render_tests(
            heading,
            &tests,
            &offered,
            &notes,
            &answer.model
        ))
    );
    super::notes::post_once(critic, gh, job.pr(), "tests", "first-review", &body).await
}
