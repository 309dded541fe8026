//! `review.suggest_tests`: the tests `/test` would suggest, brought by the first review of a
//! pull request: [`review::suggest_tests`] asks for them, `test_threads` offers those for a
//! changed test file as suggestions there, and `command` shows the rest.

use crate::Critic;
use crate::config::repo::RepoPolicy;
use crate::github::{Installation, PullRequest};
use crate::llm::Meter;
use crate::review::{self, GitHubSource};

use super::error::JobError;
use super::plan::ReviewJob;
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
    let source = GitHubSource {
        gh,
        repo: &job.repo,
        number: job.number,
        head: &pr.head.sha,
    };
    let pipeline = review::Pipeline {
        settings: &critic.config.settings.review,
        prompts: &critic.prompts,
        llm: &critic.llm,
    };
    let change = review::Change {
        repo: &repo,
        title: &pr.title,
        description: pr.body.as_deref().unwrap_or(""),
        policy,
        since: None,
        installation: job.installation_id,
        meter,
        progress: None,
    };
    let Some(suggested) = review::suggest_tests(pipeline, &source, &change).await? else {
        return Ok(());
    };
    let review::SuggestedTests {
        files,
        tests,
        notes,
        model,
    } = suggested;
    if tests.is_empty() {
        return Ok(());
    }
    let (placed, mut tests) = test_threads::place_all(&source, &files, tests).await;
    let bot = critic.github.bot_login().await?;
    let (offered, refused) =
        test_threads::offer(gh, job.pr(), &pr.head.sha, placed, ("first-review", &bot)).await?;
    tests.extend(refused);
    let heading = "Tests for this change (`review.suggest_tests`; `/test` asks again)";
    let body = format!(
        "{FIRST_REVIEW_MARKER}\n{}",
        super::notes::fit(&super::test_threads::render_tests(
            heading, &tests, &offered, &notes, &model
        ))
    );
    super::notes::post_once(critic, gh, job.pr(), "tests", "first-review", &body).await
}
