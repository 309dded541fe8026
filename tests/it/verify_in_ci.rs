//! `/test --verify` end to end against the fake GitHub: the tests pushed to
//! `critic/tests/PR-N` on top of the head, the repository's checks awaited, a failure shown
//! to the model once (redacted) and the corrected tests pushed, one answer edited with the
//! result, the branch deleted when the pull request closes; and every refusal (setting off,
//! a fork, no write access, no `contents: write`) without a push.

use std::time::Duration;

use serde_json::json;

use crate::support::app::{REPO, TestApp, World};
use crate::support::github::{
    Annotation, BOT_LOGIN, CompletedRun, GITHUB_ACTIONS_APP_ID, IssueComment, PullFile, PullRequest,
};
use crate::support::llm::Reply;

const HEAD: &str = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0";
const BRANCH: &str = "critic/tests/PR-";
const WAIT: Duration = Duration::from_secs(20);

async fn start(env: &[(&str, &str)]) -> TestApp {
    let world = World::new().await;
    let mut options = world.options().set("CRITIC_TESTS__VERIFY_POLL_SECS", "1");
    for (k, v) in env {
        options = options.set(k, v);
    }
    world.start_with(options).await
}

/// A pull request changing `pkg/pager.py`, with a test file at its head; bob may write.
fn pager_pr(app: &TestApp, number: u64) {
    app.github().add_pull(
        REPO,
        PullRequest {
            number,
            title: "Round pages up".into(),
            head_sha: HEAD.into(),
            user_login: "alice".into(),
            ..Default::default()
        },
    );
    let patch = "@@ -1,2 +1,2 @@\n def pages(n, size):\n-    return n // size\n+    return (n + size - 1) // size";
    app.github().set_pull_files(
        REPO,
        number,
        vec![PullFile::from_patch("pkg/pager.py", patch)],
    );
    app.put_pager_files(REPO, HEAD);
    app.github().set_role(REPO, "bob", "write");
}

fn tests_reply(expected_for_one: u32) -> Reply {
    Reply::json(json!({"tests": [
        {"path": "tests/test_pager.py", "name": "test_one_item", "covers": "one item is one page",
         "code": format!("def test_one_item():\n    assert pages(1, 10) == {expected_for_one}\n")}
    ]}))
}

/// A run of a CI App's on `sha`, completed with `conclusion` and a title.
fn completed(app: &TestApp, sha: &str, name: &str, conclusion: &'static str, title: &'static str) {
    let run = app.github().add_foreign_check_run(REPO, sha, name, 777);
    app.github().complete_foreign_check_run(
        REPO,
        run,
        CompletedRun {
            conclusion,
            title,
            summary: "",
            annotations: Vec::new(),
            log: None,
        },
    );
}

/// bob asks `/test --verify` on a new pager pull request `number`, and the model suggests
/// one test expecting `pages(1, 10) == expected`; returns the command comment's id.
async fn verify_asked(app: &TestApp, number: u64, expected: u32) -> u64 {
    pager_pr(app, number);
    app.llm().push(tests_reply(expected));
    app.comment(REPO, number, "bob", "MEMBER", "/test --verify")
        .await
}

fn critics(app: &TestApp, number: u64) -> Vec<IssueComment> {
    app.github()
        .issue_comments(REPO, number)
        .into_iter()
        .filter(|c| c.user_login == BOT_LOGIN)
        .collect()
}

/// Waits until the tests branch of PR `number` points at a commit other than `not`.
async fn branch_moves(app: &TestApp, number: u64, not: Option<&str>) -> String {
    let name = format!("{BRANCH}{number}");
    let github = app.github();
    github
        .wait_until("the tests branch to move", WAIT, |w| {
            w.branch(REPO, &name)
                .filter(|sha| Some(*sha) != not)
                .map(str::to_owned)
        })
        .await
}

async fn comment_says(app: &TestApp, number: u64, says: &str) -> String {
    let github = app.github();
    github
        .wait_until(&format!("Critic's comment to say {says:?}"), WAIT, |w| {
            w.issue_comments(REPO, number)
                .iter()
                .find(|c| c.user_login == BOT_LOGIN && c.body.contains(says))
                .map(|c| c.body.clone())
        })
        .await
}

#[tokio::test]
async fn failing_tests_are_corrected_once_from_what_ci_said_and_the_result_is_one_comment() {
    let app = start(&[("CRITIC_TESTS__VERIFY_IN_CI", "true")]).await;
    for permission in ["contents", "statuses"] {
        app.github().grant(permission, "write");
    }
    app.github().grant("actions", "read");
    verify_asked(&app, 90, 2).await;

    // Round 1: the tests on top of the head, in the test file, as pytest has them.
    let first = branch_moves(&app, 90, None).await;
    assert_eq!(app.github().commit_parents(REPO, &first), [HEAD]);
    let file = app
        .github()
        .file_at(REPO, &first, "tests/test_pager.py")
        .expect("the test file");
    assert_eq!(
        String::from_utf8(file).expect("utf-8"),
        "from pkg.pager import pages\n\n\ndef test_pages_rounds_up():\n    assert pages(11, 10) == 2\n\n\ndef test_one_item():\n    assert pages(1, 10) == 2\n"
    );
    // CI starts: the answer says Critic waits, and shows the check.
    let run = app
        .github()
        .add_foreign_check_run(REPO, &first, "pytest", GITHUB_ACTIONS_APP_ID);
    let waiting = comment_says(&app, 90, "| in progress |").await;
    assert!(waiting.contains("| [pytest](https://"), "{waiting}");
    assert!(waiting.contains("@bob"), "{waiting}");
    assert!(
        waiting.contains("1 test(s) pushed to [`critic/tests/PR-90`]"),
        "{waiting}"
    );

    // It fails; its log ends with the assertion (and a token a step printed).
    let token = concat!("ghp_", "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa");
    let log = format!(
        "2026-12-07T09:00:00.0000000Z collected 2 items\n2026-12-07T09:00:01.0000000Z using token {token}\n2026-12-07T09:00:02.0000000Z E       assert 1 == 2\n2026-12-07T09:00:02.0000000Z FAILED tests/test_pager.py::test_one_item\n"
    );
    app.llm().push(tests_reply(1));
    app.github().complete_foreign_check_run(
        REPO,
        run,
        CompletedRun {
            conclusion: "failure",
            title: "1 failed, 1 passed",
            summary: "pytest reported a failure",
            annotations: vec![Annotation {
                path: "tests/test_pager.py".into(),
                line: 9,
                level: "failure".into(),
                message: "AssertionError: assert 1 == 2".into(),
            }],
            log: Some(log),
        },
    );

    // Round 2: the model saw its tests and what CI said, without the token.
    let second = branch_moves(&app, 90, Some(&first)).await;
    assert_eq!(
        app.github().commit_parents(REPO, &second),
        std::slice::from_ref(&first),
        "on top of the first tests, whose history shows the correction"
    );
    let asked = app.llm().received()[1].message("user");
    for said in [
        "def test_one_item():\n    assert pages(1, 10) == 2",
        "### pytest (failure)",
        "1 failed, 1 passed",
        "tests/test_pager.py:9: AssertionError: assert 1 == 2",
        "FAILED tests/test_pager.py::test_one_item",
    ] {
        assert!(
            asked.contains(said),
            "the model was not shown {said:?}: {asked}"
        );
    }
    assert!(!asked.contains("ghp_Zx9"), "a secret reached the model");
    assert!(
        String::from_utf8(
            app.github()
                .file_at(REPO, &second, "tests/test_pager.py")
                .expect("file")
        )
        .expect("utf-8")
        .ends_with("assert pages(1, 10) == 1\n")
    );
    comment_says(&app, 90, "after the first ones failed and were corrected").await;

    // It passes, and a status service agrees.
    let run = app
        .github()
        .add_foreign_check_run(REPO, &second, "pytest", GITHUB_ACTIONS_APP_ID);
    app.github()
        .set_status(REPO, &second, "ci/lint", "success", "Lint passed");
    app.github().complete_foreign_check_run(
        REPO,
        run,
        CompletedRun {
            conclusion: "success",
            title: "2 passed",
            summary: "",
            annotations: Vec::new(),
            log: None,
        },
    );
    let done = comment_says(
        &app,
        90,
        "pass in this repository's CI after one correction",
    )
    .await;
    app.wait_idle().await;
    let mine = critics(&app, 90);
    assert_eq!(mine.len(), 1, "one answer, edited: {mine:?}");
    for said in [
        "| [pytest](",
        "| success |",
        "| [ci/lint](https://ci.example.com/",
        "What CI reported on the first tests",
        "assert pages(1, 10) == 1",
        "The branch is deleted when the pull request closes.",
    ] {
        assert!(
            done.contains(said),
            "the answer does not say {said:?}: {done}"
        );
    }
    assert!(!done.contains("ghp_Zx9"), "{done}");
    assert!(!done.contains("Commit statuses: Read-only"), "read: {done}");
    assert_eq!(app.llm().received().len(), 2, "asked once, corrected once");

    // Closed: the branch goes.
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 90,
            title: "Round pages up".into(),
            head_sha: HEAD.into(),
            user_login: "alice".into(),
            state: "closed".into(),
            ..Default::default()
        },
    );
    // GitHub fails the first deletes: the job is run again, and the branch still goes.
    app.github().fail_next(
        "DELETE",
        &format!("/repos/{REPO}/git/refs/heads/{BRANCH}90"),
        502,
        6,
    );
    app.deliver("pull_request", &app.pull_request_event("closed", REPO, 90))
        .await;
    let jobs = app.wait_idle().await;
    let learn = jobs
        .iter()
        .find(|j| j.kind == "learn")
        .expect("the close's job");
    assert!(learn.attempts >= 2, "run again: {learn:?}");
    assert_eq!(app.github().branch(REPO, &format!("{BRANCH}90")), None);
    app.finish().await;
}

#[tokio::test]
async fn tests_failing_twice_are_reported_with_what_ci_said() {
    let app = start(&[("CRITIC_TESTS__VERIFY_IN_CI", "true")]).await;
    app.github().grant("contents", "write");
    pager_pr(&app, 91);
    app.llm().push(tests_reply(2));
    app.llm().push(tests_reply(3));
    app.comment(REPO, 91, "bob", "MEMBER", "/test --verify")
        .await;
    let mut sha = None;
    for round in 0..2 {
        let pushed = branch_moves(&app, 91, sha.as_deref()).await;
        // No `statuses: read`: check runs alone decide.
        let title = if round == 0 {
            "first failure"
        } else {
            "second failure"
        };
        completed(&app, &pushed, "ci", "failure", title);
        sha = Some(pushed);
    }
    let done = comment_says(
        &app,
        91,
        "still fail in this repository's CI after one correction",
    )
    .await;
    assert!(done.contains("`Commit statuses: Read-only`"), "{done}");
    assert!(done.contains("second failure"), "{done}");
    assert!(done.contains("first failure"), "{done}");
    app.wait_idle().await;
    assert_eq!(critics(&app, 91).len(), 1);
    assert_eq!(app.llm().received().len(), 2, "corrected once, not twice");
    app.finish().await;
}

#[tokio::test]
async fn a_branch_no_check_runs_on_is_said_at_the_deadline() {
    let app = start(&[
        ("CRITIC_TESTS__VERIFY_IN_CI", "true"),
        ("CRITIC_TESTS__VERIFY_TIMEOUT_SECS", "3"),
    ])
    .await;
    app.github().grant("contents", "write");
    app.github().grant("statuses", "read");
    verify_asked(&app, 92, 1).await;
    let done = comment_says(&app, 92, "no check ran on the branch within 3 seconds").await;
    assert!(
        done.contains("`on: push` without a `branches` filter"),
        "{done}"
    );
    app.wait_idle().await;
    assert_eq!(critics(&app, 92).len(), 1);
    // A check that never ends: the deadline is said, and the check as it stood.
    verify_asked(&app, 97, 1).await;
    let sha = branch_moves(&app, 97, None).await;
    app.github().add_foreign_check_run(REPO, &sha, "slow", 777);
    let done = comment_says(&app, 97, "did not finish within 3 seconds").await;
    assert!(
        done.contains("| in progress |") && done.contains("[slow]("),
        "{done}"
    );
    app.wait_idle().await;
    assert_eq!(critics(&app, 97).len(), 1, "one answer, edited");
    app.finish().await;
}

#[tokio::test]
async fn a_newer_verify_replaces_the_branch_and_the_older_answer_says_so() {
    let app = start(&[("CRITIC_TESTS__VERIFY_IN_CI", "true")]).await;
    app.github().grant("contents", "write");
    let older = verify_asked(&app, 98, 1).await;
    let first = branch_moves(&app, 98, None).await;
    comment_says(&app, 98, "waiting for this repository's checks").await;
    app.llm().push(tests_reply(5));
    app.comment(REPO, 98, "bob", "MEMBER", "/test --verify again")
        .await;
    let second = branch_moves(&app, 98, Some(&first)).await;
    let replaced = comment_says(&app, 98, "a newer `/test --verify` replaced them").await;
    assert!(
        replaced.starts_with(&format!("<!-- critic:ci-tests {older} -->")),
        "the older request's answer: {replaced}"
    );
    completed(&app, &second, "ci", "success", "ok");
    let passed = comment_says(&app, 98, "the 1 suggested test(s) pass").await;
    assert!(
        !passed.starts_with(&format!("<!-- critic:ci-tests {older} -->")),
        "the newer request's answer: {passed}"
    );
    assert!(passed.contains("== 5"), "the newer tests: {passed}");
    app.wait_idle().await;
    assert_eq!(critics(&app, 98).len(), 2, "one answer per request");
    app.finish().await;
}

#[tokio::test]
async fn verify_is_refused_without_the_setting_for_forks_and_readers_and_without_the_permission() {
    // Off on this Critic: said, no model call.
    let app = start(&[]).await;
    pager_pr(&app, 93);
    app.comment(REPO, 93, "bob", "MEMBER", "/test --verify")
        .await;
    app.wait_idle().await;
    let said = &critics(&app, 93)[0].body;
    assert!(said.contains("`tests.verify_in_ci`"), "{said}");
    assert!(app.llm().received().is_empty());
    app.finish().await;

    let app = start(&[("CRITIC_TESTS__VERIFY_IN_CI", "true")]).await;
    // A fork's pull request: never pushed for.
    pager_pr(&app, 94);
    app.github().set_head_fork(REPO, 94, "mallory/fork");
    app.comment(REPO, 94, "bob", "MEMBER", "/test --verify")
        .await;
    // Someone who may not write: refused.
    pager_pr(&app, 95);
    app.github().set_role(REPO, "tina", "triage");
    app.comment(REPO, 95, "tina", "MEMBER", "/test --verify")
        .await;
    app.wait_idle().await;
    let said = &critics(&app, 94)[0].body;
    assert!(said.contains("is in a fork"), "{said}");
    let said = &critics(&app, 95)[0].body;
    assert!(
        said.contains("needs write access (you have triage)"),
        "{said}"
    );
    assert!(app.llm().received().is_empty());

    // The App without `contents: write`: the tests are given as code, and why they were not
    // pushed.
    verify_asked(&app, 96, 1).await;
    app.wait_idle().await;
    let said = &critics(&app, 96)[0].body;
    assert!(said.contains("`contents: write` permission"), "{said}");
    assert!(said.contains("def test_one_item():"), "{said}");
    assert_eq!(app.github().branch(REPO, &format!("{BRANCH}96")), None);
    for n in [94, 95] {
        assert_eq!(app.github().branch(REPO, &format!("{BRANCH}{n}")), None);
    }
    app.finish().await;
}

#[tokio::test]
async fn github_failing_while_checks_are_awaited_loses_nothing() {
    let app = start(&[("CRITIC_TESTS__VERIFY_IN_CI", "true")]).await;
    app.github().grant("contents", "write");
    verify_asked(&app, 99, 1).await;
    let sha = branch_moves(&app, 99, None).await;
    comment_says(&app, 99, "waiting for this repository's checks").await;
    // Reading the checks fails past the client's own retries: the job waits it out.
    app.github().fail_next(
        "GET",
        &format!("/repos/{REPO}/commits/{sha}/check-runs"),
        502,
        8,
    );
    completed(&app, &sha, "ci", "success", "ok");
    comment_says(&app, 99, "the 1 suggested test(s) pass").await;
    app.wait_idle().await;
    assert_eq!(critics(&app, 99).len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn checks_failing_on_the_head_too_or_all_skipped_are_not_called_a_result() {
    let app = start(&[("CRITIC_TESTS__VERIFY_IN_CI", "true")]).await;
    app.github().grant("contents", "write");
    // lint fails on the pull request's head already; on the tests' commit too, and pytest
    // passes: not the tests' doing, and nothing to correct.
    pager_pr(&app, 100);
    completed(&app, HEAD, "lint", "failure", "failure");
    app.llm().push(tests_reply(1));
    app.comment(REPO, 100, "bob", "MEMBER", "/test --verify")
        .await;
    let sha = branch_moves(&app, 100, None).await;
    completed(&app, &sha, "lint", "failure", "failure");
    completed(&app, &sha, "pytest", "success", "success");
    let done = comment_says(&app, 100, "fail on the pull request's head as well").await;
    assert!(
        done.contains("(lint)") && done.contains("the other checks pass"),
        "{done}"
    );
    // Every check skipped: no test ran.
    verify_asked(&app, 101, 1).await;
    let sha = branch_moves(&app, 101, None).await;
    completed(&app, &sha, "tests", "skipped", "skipped");
    comment_says(
        &app,
        101,
        "every check on the branch was skipped or neutral",
    )
    .await;
    app.wait_idle().await;
    assert_eq!(app.llm().received().len(), 2, "no correction asked for");
    for n in [100, 101] {
        assert_eq!(critics(&app, n).len(), 1);
    }
    app.finish().await;
}

#[tokio::test]
async fn a_pull_request_closed_while_checks_run_loses_its_branch_and_a_bots_is_refused() {
    let app = start(&[("CRITIC_TESTS__VERIFY_IN_CI", "true")]).await;
    app.github().grant("contents", "write");
    verify_asked(&app, 102, 1).await;
    let sha = branch_moves(&app, 102, None).await;
    app.github().add_foreign_check_run(REPO, &sha, "slow", 777);
    comment_says(&app, 102, "waiting for this repository's checks").await;
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 102,
            title: "Round pages up".into(),
            head_sha: HEAD.into(),
            user_login: "alice".into(),
            state: "closed".into(),
            ..Default::default()
        },
    );
    comment_says(
        &app,
        102,
        "the pull request was closed before the checks finished",
    )
    .await;
    app.wait_idle().await;
    assert_eq!(app.github().branch(REPO, &format!("{BRANCH}102")), None);
    assert_eq!(critics(&app, 102).len(), 1);

    // Dependabot's pull request: its code is not run with all the secrets.
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 103,
            title: "Bump a dependency".into(),
            head_sha: HEAD.into(),
            user_login: "dependabot[bot]".into(),
            ..Default::default()
        },
    );
    app.comment(REPO, 103, "bob", "MEMBER", "/test --verify")
        .await;
    app.wait_idle().await;
    let said = &critics(&app, 103)[0].body;
    assert!(said.contains("opened by a bot"), "{said}");
    assert_eq!(app.llm().received().len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn a_wait_that_fails_for_good_tells_whoever_asked() {
    let app = start(&[("CRITIC_TESTS__VERIFY_IN_CI", "true")]).await;
    app.github().grant("contents", "write");
    verify_asked(&app, 104, 1).await;
    branch_moves(&app, 104, None).await;
    comment_says(&app, 104, "waiting for this repository's checks").await;
    // The pull request can no longer be read: a permanent failure.
    app.github()
        .fail_next("GET", &format!("/repos/{REPO}/pulls/104"), 404, 50);
    let said = comment_says(
        &app,
        104,
        "Critic stopped waiting for this repository's checks",
    )
    .await;
    assert!(said.contains("404"), "what went wrong: {said}");
    assert!(said.contains("def test_one_item():"), "the tests: {said}");
    assert!(!said.contains("This comment is updated"), "{said}");
    let jobs = app.wait_idle().await;
    let dead = jobs
        .iter()
        .find(|j| j.kind == "ci_tests" && j.state == critic::domain::JobState::Dead)
        .expect("the wait died");
    app.expect_dead(dead.id);
    assert_eq!(critics(&app, 104).len(), 1, "the answer, edited");
    app.finish().await;
}
