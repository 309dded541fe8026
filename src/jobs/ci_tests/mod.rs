//! `/test --verify`: the suggested tests pushed to a branch of the pull request's repository,
//! `critic/tests/PR-N` on top of its head, so that the repository's own CI runs them (Critic's
//! server never runs a pull request's code). A [`CiTestsJob`] then looks at the branch's
//! checks (every other App's check runs, and commit statuses) until they settle or a deadline
//! passes; when they fail, it shows the model what CI reported, once, and pushes the
//! corrected tests for a second round. One comment answers the command: posted when the
//! checks start, edited with the result. The branch is deleted when the pull request closes.
//!
//! Never for a fork's pull request (its tests would run with this repository's secrets), only
//! for someone with write access (they could push the branch themselves), and only files
//! that are tests.

mod answer;
mod checks;
mod push;

use std::fmt::Write;
use std::time::Duration;

use crate::Critic;
use crate::domain::{Permission, PrNumber, Task};
use crate::github::{Installation, PullRequest, RepoName, short_sha};
use crate::llm::{AskError, Meter};
use crate::review::tasks::TestSuggestion;
use crate::review::{GitHubSource, ReviewError};

use super::error::{JobError, Outcome};
use super::notes::answer;
use super::plan::{CiTestsJob, CommandJob, Job};
use super::repo_settings;
use super::task_request::{Prepared, prepare};
use super::test_threads::{Offered, render_tests};
use answer::{Ending, final_text, say, waiting_text};
use checks::{Checks, failure_report};
use push::{branch_name, commit, only_pushable, point_branch};

/// Checks of a branch that show nothing at all by then are taken to never come (CI that does
/// not run on pushes to other branches).
pub(super) const NO_CHECKS_GRACE: Duration = Duration::from_secs(600);

/// Why `/test --verify` is not done on this pull request, as the answer says it; None when
/// it may be.
pub(super) async fn refusal(
    critic: &Critic,
    gh: &Installation,
    job: &CommandJob,
    pr: &PullRequest,
) -> Result<Option<String>, JobError> {
    const INSTEAD: &str = "`/test` suggests tests without running them.";
    if !critic.config.settings.tests.verify_in_ci {
        return Ok(Some(format!(
            "`/test --verify` is not enabled on this Critic: its administrators can turn on `tests.verify_in_ci` (the App then needs the `contents: write` permission). {INSTEAD}"
        )));
    }
    if pr.state != "open" {
        return Ok(Some(format!(
            "this pull request is closed, so no tests were pushed. {INSTEAD}"
        )));
    }
    if !pr.head_is_in(&job.repo) {
        return Ok(Some(format!(
            "this pull request's branch is in a fork, and Critic never pushes code for a fork's pull request (it would run with this repository's secrets). {INSTEAD}"
        )));
    }
    // Dependabot's and other bots' pull requests run in CI with restricted secrets; a branch
    // Critic pushes would run their code with all of them.
    if pr.user.kind.as_deref() == Some("Bot") {
        return Ok(Some(format!(
            "this pull request was opened by a bot, and its code would run with more of this repository's secrets on Critic's branch than on its own. {INSTEAD}"
        )));
    }
    let role = gh.permission(&job.repo, &job.requested.login).await?;
    if role < Permission::Write {
        return Ok(Some(format!(
            "`/test --verify` pushes a branch to this repository, which needs write access (you have {role}). {INSTEAD}"
        )));
    }
    Ok(None)
}

/// `/test --verify` once the tests are suggested: pushes them and queues the wait for their
/// checks. The command counts as answered from here; the [`CiTestsJob`] posts and edits the
/// answer.
pub(super) async fn start(
    critic: &Critic,
    gh: &Installation,
    job: &CommandJob,
    head: &str,
    tests: Vec<TestSuggestion>,
    mut notes: Vec<String>,
    model: &str,
) -> Result<Outcome, JobError> {
    let by = &job.requested;
    let tests = only_pushable(tests, &mut notes);
    if tests.is_empty() {
        let text = render_tests("`/test --verify`", &[], &Offered::default(), &notes, model);
        answer(critic, gh, job.pr(), by, &text).await?;
        return Ok(Outcome::Done("no test to verify".into()));
    }
    let message = format!(
        "Tests suggested by Critic for #{} (`/test --verify` by @{})",
        job.number, by.login
    );
    let pushed = match commit(gh, &job.repo, head, head, &tests, &message).await? {
        Ok(sha) => point_branch(gh, &job.repo, job.number, &sha)
            .await?
            .map(|()| sha),
        Err(why) => Err(why),
    };
    let sha = match pushed {
        Ok(sha) => sha,
        Err(why) => {
            let text = format!(
                "{}\n\nThey were not pushed: {why}.",
                render_tests(
                    "`/test --verify`",
                    &tests,
                    &Offered::default(),
                    &notes,
                    model
                )
            );
            answer(critic, gh, job.pr(), by, &text).await?;
            return Ok(Outcome::Done(format!("tests not pushed: {why}")));
        }
    };
    let now = crate::store::now_ms();
    let verify = CiTestsJob {
        installation_id: job.installation_id,
        repo: job.repo.clone(),
        number: job.number,
        requested: by.clone(),
        head_sha: head.to_string(),
        tests_sha: sha.clone(),
        round: 1,
        tests,
        notes,
        model: model.to_string(),
        pushed_ms: now,
        deadline_ms: now + timeout_ms(critic),
        first_report: None,
        previous_sha: None,
    };
    queue(critic, &verify).await?;
    // Answered: the wait posts and edits the answer, and a rerun of this job must not push
    // again.
    critic
        .store
        .claim_notice(&job.repo.to_string(), job.number, "command", &by.key())
        .await?;
    Ok(Outcome::Done(format!(
        "{} test(s) pushed to {} at {}",
        verify.tests.len(),
        branch_name(job.number),
        short_sha(&sha)
    )))
}

fn timeout_ms(critic: &Critic) -> i64 {
    let secs = critic.config.settings.tests.verify_timeout_secs;
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

async fn queue(critic: &Critic, job: &CiTestsJob) -> Result<(), JobError> {
    let new = Job::CiTests(job.clone())
        .to_new_job(Duration::ZERO)
        .map_err(|e| JobError::Payload(e.to_string()))?;
    critic.store.enqueue(new).await?;
    Ok(())
}

/// One look at a round's checks: waits (`Outcome::Again`) while they run, corrects the tests
/// once when they fail, and otherwise edits the answer with the result.
pub(super) async fn run(
    critic: &Critic,
    job: &CiTestsJob,
    meter: &Meter,
) -> Result<Outcome, JobError> {
    let gh = critic.github.installation(job.installation_id)?;
    let branch = branch_name(job.number);
    let pr = gh.pull_request(&job.repo, job.number).await?;
    if pr.state != "open" {
        drop_branch(&gh, &job.repo, job.number).await?;
        return finish(critic, &gh, job, &Checks::default(), Ending::Closed).await;
    }
    match gh.branch_head(&job.repo, &branch).await? {
        Some(at) if at == job.tests_sha => {}
        // The correction's push was cut short (the process died): finish it.
        Some(at) if job.previous_sha.as_deref() == Some(at.as_str()) => {
            if !gh
                .advance_branch(&job.repo, &branch, &job.tests_sha)
                .await?
            {
                return finish(critic, &gh, job, &Checks::default(), Ending::Replaced).await;
            }
        }
        // This round's correction went on top (its job reports), or someone replaced it.
        Some(at) => {
            let parents = gh.commit_parents(&job.repo, &at).await?;
            if parents.contains(&job.tests_sha) {
                return Ok(Outcome::Skipped("corrected; the next round reports".into()));
            }
            return finish(critic, &gh, job, &Checks::default(), Ending::Replaced).await;
        }
        None => return finish(critic, &gh, job, &Checks::default(), Ending::Replaced).await,
    }
    let checks = Checks::read(&gh, &job.repo, &job.tests_sha, &job.head_sha).await?;
    let now = crate::store::now_ms();
    let grace = job.pushed_ms + NO_CHECKS_GRACE.as_millis() as i64;
    let poll = Duration::from_secs(critic.config.settings.tests.verify_poll_secs);
    if !checks.seen() || checks.pending() {
        if now < job.deadline_ms && (checks.seen() || now < grace) {
            say(critic, &gh, job, &waiting_text(critic, job, &checks)).await?;
            // Looked at again on time for the deadline, however long the poll.
            let waited = Duration::from_millis((now - job.pushed_ms).max(0) as u64);
            let left = Duration::from_millis((job.deadline_ms - now).max(0) as u64);
            let again = next_look(poll, waited).min(left + Duration::from_millis(50));
            return Ok(Outcome::Again(again, "checks running".into()));
        }
        let ending = if checks.seen() {
            Ending::TimedOut
        } else {
            Ending::NoChecks
        };
        return finish(critic, &gh, job, &checks, ending).await;
    }
    if !checks.failed() {
        let ending = if !checks.failing_before().is_empty() {
            Ending::FailingBefore
        } else if checks.succeeded() {
            Ending::Passed
        } else {
            Ending::NothingRan
        };
        return finish(critic, &gh, job, &checks, ending).await;
    }
    let report = failure_report(&gh, &job.repo, &checks).await;
    if job.round >= 2 {
        return finish(critic, &gh, job, &checks, Ending::Failed(report)).await;
    }
    if let Some(budget) = critic.budget_spent(job.installation_id).await? {
        let why = format!(
            "correcting them would go past the model budget ({})",
            super::notes::budget_spent_text(budget)
        );
        return finish(
            critic,
            &gh,
            job,
            &checks,
            Ending::NotCorrected { report, why },
        )
        .await;
    }
    match correct(critic, &gh, job, &report, meter).await? {
        Ok(next) => {
            // Said before the next round is queued, which edits the same answer: one post.
            let text = waiting_text(critic, &next, &Checks::default());
            say(critic, &gh, job, &text).await?;
            queue(critic, &next).await?;
            // The branch moves last, and only forward from this round's commit: a newer
            // request's branch is never overwritten, and a push cut short here is finished
            // by the next round.
            if !gh
                .advance_branch(&job.repo, &branch, &next.tests_sha)
                .await?
            {
                tracing::info!("the tests branch moved meanwhile; the next round says so");
            }
            Ok(Outcome::Done(format!(
                "tests failed; corrected tests pushed at {}",
                short_sha(&next.tests_sha)
            )))
        }
        Err(why) => {
            finish(
                critic,
                &gh,
                job,
                &checks,
                Ending::NotCorrected { report, why },
            )
            .await
        }
    }
}

/// How long until the checks are looked at again, `waited` after the push: the poll interval
/// for the first five minutes, one more interval for every five after, at most five. Each
/// look costs four or five GitHub calls, and long builds need fewer of them.
fn next_look(poll: Duration, waited: Duration) -> Duration {
    let steps = (waited.as_secs() / 300).min(4) as u32;
    poll * (1 + steps)
}

/// Shows the model its failing tests and what CI reported, and commits the corrected tests
/// on top of this round's (no branch moves yet): the next round's job, or why there is none.
async fn correct(
    critic: &Critic,
    gh: &Installation,
    job: &CiTestsJob,
    report: &str,
    meter: &Meter,
) -> Result<Result<CiTestsJob, String>, JobError> {
    let pr = gh.pull_request(&job.repo, job.number).await?;
    let policy = repo_settings::load(critic, gh, job.pr()).await?;
    let source = GitHubSource {
        gh,
        repo: &job.repo,
        number: job.number,
        head: &job.head_sha,
    };
    let mut feedback = String::from(
        "Your earlier tests, below, were run by this repository's CI and failed. Write them again, corrected, so that they compile and pass against the code as it is; leave out a test you cannot make pass.\n",
    );
    for t in &job.tests {
        let fence = crate::poster::markdown::fence_for(&t.code);
        let _ = write!(
            feedback,
            "\n`{}` in `{}`:\n{fence}\n{}\n{fence}\n",
            t.name, t.path, t.code
        );
    }
    let _ = write!(feedback, "\nWhat CI reported:\n{report}");
    let prepared = prepare(
        critic,
        &source,
        &pr,
        &policy,
        Task::Tests,
        None,
        Some(&feedback),
    )
    .await?;
    let Prepared {
        request,
        conventions,
        ..
    } = match prepared {
        Ok(p) => p,
        Err(nothing) => return Ok(Err(nothing)),
    };
    let endpoint = policy.model_for(Task::Tests);
    let asked = critic
        .llm
        .ask_on(
            Task::Tests,
            endpoint,
            job.installation_id,
            &request,
            meter,
            conventions.validator(),
        )
        .await;
    let ((tests, new_notes), model) = match asked {
        Ok(a) => (a.value, a.model),
        Err(AskError::Unusable { model, reason }) => {
            tracing::warn!(%model, %reason, "the corrected tests were unusable");
            return Ok(Err(format!(
                "the model ({model}) did not return usable corrected tests"
            )));
        }
        Err(e) => return Err(JobError::Review(ReviewError::Ask(e))),
    };
    let mut notes = job.notes.clone();
    notes.extend(new_notes);
    let tests = only_pushable(tests, &mut notes);
    if tests.is_empty() {
        return Ok(Err(
            "the model left every test out when asked to correct them".into(),
        ));
    }
    let message = format!(
        "Tests suggested by Critic for #{}, corrected after CI failed",
        job.number
    );
    let sha = match commit(
        gh,
        &job.repo,
        &job.head_sha,
        &job.tests_sha,
        &tests,
        &message,
    )
    .await?
    {
        Ok(sha) => sha,
        Err(why) => return Ok(Err(why)),
    };
    let now = crate::store::now_ms();
    Ok(Ok(CiTestsJob {
        previous_sha: Some(job.tests_sha.clone()),
        tests_sha: sha,
        round: 2,
        tests,
        notes,
        model,
        pushed_ms: now,
        deadline_ms: now + timeout_ms(critic),
        first_report: Some(report.to_string()),
        ..job.clone()
    }))
}

/// The answer once a round has ended.
async fn finish(
    critic: &Critic,
    gh: &Installation,
    job: &CiTestsJob,
    checks: &Checks,
    ending: Ending,
) -> Result<Outcome, JobError> {
    let text = final_text(critic, job, checks, &ending);
    say(critic, gh, job, &text).await?;
    let result = match ending {
        Ending::Passed => "tests pass in CI",
        Ending::Failed(_) => "tests fail in CI",
        Ending::TimedOut => "checks did not finish in time",
        Ending::NoChecks => "no checks ran",
        Ending::Replaced => "branch replaced or deleted",
        Ending::Closed => "pull request closed",
        Ending::NothingRan => "no check ran the tests",
        Ending::FailingBefore => "only checks failing on the head failed",
        Ending::NotCorrected { .. } => "tests failed and were not corrected",
    };
    Ok(Outcome::Done(format!("round {}: {result}", job.round)))
}

/// The wait failed for good: its answer says so in place of "waiting" (whoever asked would
/// otherwise wait for an edit that never comes), or a new comment says it when the answer
/// cannot be edited; best effort (GitHub may be what failed).
pub(super) async fn gave_up(critic: &Critic, job: &CiTestsJob, error: &JobError) {
    let edited = async {
        let gh = critic.github.installation(job.installation_id)?;
        let what = super::notes::public_error(&error.to_string());
        let text = format!(
            "`/test --verify`: Critic stopped waiting for this repository's checks on {}: {what}. The tests are below; `/test --verify` again starts over.\n\n{}",
            answer::commit_link(critic, job),
            render_tests(
                "The tests",
                &job.tests,
                &Offered::default(),
                &job.notes,
                &job.model
            )
        );
        say(critic, &gh, job, &text).await
    };
    if let Err(e) = edited.await {
        tracing::warn!(error = %e, "cannot edit the answer; saying it in a new comment");
        super::notes::command_failed(
            critic,
            job.installation_id,
            job.pr(),
            &job.requested,
            "test --verify",
            error,
        )
        .await;
    }
}

/// Deletes the pull request's tests branch (the pull request closed). A GitHub failure is
/// the caller's to retry; an App without `contents: write` pushed none.
pub(super) async fn drop_branch(
    gh: &Installation,
    repo: &RepoName,
    number: PrNumber,
) -> Result<(), JobError> {
    match gh.delete_branch(repo, &branch_name(number)).await {
        Ok(true) => tracing::info!(branch = %branch_name(number), "deleted the tests branch"),
        Ok(false) => {}
        Err(e) if e.lacks_permission() => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_waits_look_less_often() {
        let poll = Duration::from_secs(30);
        let after = |mins: u64| next_look(poll, Duration::from_secs(mins * 60));
        assert_eq!(after(0), poll);
        assert_eq!(after(4), poll);
        assert_eq!(after(5), poll * 2);
        assert_eq!(after(12), poll * 3);
        assert_eq!(after(60), poll * 5, "at most five intervals");
    }
}
