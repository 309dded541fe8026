//! The one comment that answers `/test --verify`: posted while the checks run, edited with
//! the result.

use std::fmt::Write;

use crate::Critic;
use crate::github::{Installation, short_sha};

use super::super::error::JobError;
use super::super::notes::{fit, notice_marker};
use super::super::plan::{CiTestsJob, Requester};
use super::super::test_threads::{Offered, render_tests};
use super::NO_CHECKS_GRACE;
use super::checks::Checks;
use super::push::branch_name;

/// How a round of checks ended.
pub(super) enum Ending {
    Passed,
    Failed(String),
    TimedOut,
    NoChecks,
    /// The branch no longer holds this round's commit: a newer `/test --verify` replaced
    /// it, or someone deleted it.
    Replaced,
    /// The pull request was closed while its checks ran (the branch is deleted).
    Closed,
    /// Every check was skipped or neutral: none ran the tests.
    NothingRan,
    /// Only checks that fail on the pull request's head as well failed.
    FailingBefore,
    /// The model could not correct the tests (an unusable answer, nothing to show it).
    NotCorrected {
        report: String,
        why: String,
    },
}

/// The answer's hidden marker, by which it is found again and edited.
pub(super) fn marker(by: &Requester) -> String {
    format!("<!-- critic:ci-tests {} -->", by.key())
}

/// Posts the answer the first time, edits it after.
pub(super) async fn say(
    critic: &Critic,
    gh: &Installation,
    job: &CiTestsJob,
    text: &str,
) -> Result<(), JobError> {
    let marker = marker(&job.requested);
    let body = fit(&format!(
        "{marker}\n{}@{} {text}",
        notice_marker("ci-tests"),
        job.requested.login
    ));
    let bot = critic.github.bot_login().await?;
    let posted = gh
        .issue_comments(&job.repo, job.number)
        .await?
        .into_iter()
        .find(|c| {
            c.user.as_ref().is_some_and(|u| u.login == bot)
                && c.body.as_deref().is_some_and(|b| b.starts_with(&marker))
        });
    match posted {
        // Unchanged while the checks run: no edit.
        Some(c) if c.body.as_deref() == Some(body.as_str()) => {}
        Some(c) => {
            gh.update_issue_comment(&job.repo, c.id, &body).await?;
        }
        None => {
            gh.post_issue_comment(&job.repo, job.number, &body).await?;
        }
    }
    Ok(())
}

pub(super) fn commit_link(critic: &Critic, job: &CiTestsJob) -> String {
    let web = critic
        .config
        .settings
        .github
        .web_url
        .as_str()
        .trim_end_matches('/');
    let branch = branch_name(job.number);
    format!(
        "[`{branch}`]({web}/{}/tree/{branch}) at [{}]({web}/{}/commit/{})",
        job.repo,
        short_sha(&job.tests_sha),
        job.repo,
        job.tests_sha
    )
}

pub(super) fn waiting_text(critic: &Critic, job: &CiTestsJob, checks: &Checks) -> String {
    let wait = duration(critic.config.settings.tests.verify_timeout_secs);
    let mut out = format!(
        "`/test --verify`: {} test(s) pushed to {}{}; waiting for this repository's checks (up to {wait}). This comment is updated with the result.",
        job.tests.len(),
        commit_link(critic, job),
        if job.round > 1 {
            " after the first ones failed and were corrected"
        } else {
            ""
        }
    );
    if checks.seen() {
        let _ = write!(out, "\n\n{}", checks.table());
    }
    out
}

pub(super) fn final_text(
    critic: &Critic,
    job: &CiTestsJob,
    checks: &Checks,
    ending: &Ending,
) -> String {
    let timeout = critic.config.settings.tests.verify_timeout_secs;
    let n = job.tests.len();
    let corrected = if job.round > 1 {
        " after one correction"
    } else {
        ""
    };
    let headline = match ending {
        Ending::Passed => {
            format!("the {n} suggested test(s) pass in this repository's CI{corrected}.")
        }
        Ending::Failed(_) => format!(
            "the suggested tests still fail in this repository's CI{corrected}; they need a person's look."
        ),
        Ending::TimedOut => format!(
            "this repository's checks did not finish within {}, so whether the tests pass is unknown.",
            duration(timeout)
        ),
        Ending::NoChecks => format!(
            "no check ran on the branch within {}. Does CI run on pushes to every branch? (In GitHub Actions: `on: push` without a `branches` filter.)",
            duration(NO_CHECKS_GRACE.as_secs().min(timeout))
        ),
        Ending::Replaced => format!(
            "the branch `{}` no longer holds these tests: a newer `/test --verify` replaced them, or someone deleted it.",
            branch_name(job.number)
        ),
        Ending::Closed => format!(
            "the pull request was closed before the checks finished, so the branch `{}` was deleted.",
            branch_name(job.number)
        ),
        Ending::NothingRan => {
            "every check on the branch was skipped or neutral, so none ran the tests: does CI run them on pushes to other branches?".to_string()
        }
        Ending::FailingBefore => format!(
            "the only checks that failed ({}) fail on the pull request's head as well, so the tests are not what broke them{}.",
            checks.failing_before().join(", "),
            if checks.succeeded() {
                "; the other checks pass"
            } else {
                ""
            }
        ),
        Ending::NotCorrected { why, .. } => {
            format!("the suggested tests fail in this repository's CI, and {why}.")
        }
    };
    let mut out = format!(
        "`/test --verify`: {headline}\n\nBranch: {}.\n",
        commit_link(critic, job)
    );
    if checks.seen() {
        let _ = write!(out, "\n{}", checks.table());
    }
    if checks.statuses_denied() {
        out.push_str("\n<sub>Commit statuses (what CI services that do not use checks report) could not be read: the App needs the `Commit statuses: Read-only` permission.</sub>\n");
    }
    let report = match ending {
        Ending::Failed(r) | Ending::NotCorrected { report: r, .. } => Some(r.as_str()),
        _ => None,
    };
    if let Some(first) = &job.first_report {
        let _ = write!(
            out,
            "\n<details><summary>What CI reported on the first tests</summary>\n\n{}\n\n</details>\n",
            fenced(first)
        );
    }
    if let Some(report) = report {
        let _ = write!(
            out,
            "\n<details><summary>What CI reported</summary>\n\n{}\n\n</details>\n",
            fenced(report)
        );
    }
    let tests = render_tests(
        "The tests",
        &job.tests,
        &Offered::default(),
        &job.notes,
        &job.model,
    );
    let _ = write!(
        out,
        "\n{tests}\n\n<sub>The branch is deleted when the pull request closes.</sub>"
    );
    out
}

/// `90 seconds`, `30 minutes`.
pub(super) fn duration(secs: u64) -> String {
    if secs.is_multiple_of(60) {
        format!("{} minute(s)", secs / 60)
    } else {
        format!("{secs} seconds")
    }
}

pub(super) fn fenced(text: &str) -> String {
    let fence = crate::poster::markdown::fence_for(text);
    format!("{fence}text\n{text}\n{fence}")
}
