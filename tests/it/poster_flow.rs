//! Issue 6 end to end: threads on the right lines whatever the model cites, one summary
//! comment kept current, the check run, incremental reviews after a push with no repeats and
//! answered threads, and per-repository settings.

use critic::domain::JobState;
use serde_json::{Value, json};

use crate::support::app::{REPO, TestApp, World};
use crate::support::github::{PullFile, PullRequest};
use crate::support::llm::{Chat, Reply};

const HEAD1: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const HEAD2: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";

/// Two hunks in `src/lib.rs`; new lines 10-14 and 40-42.
const PATCH1: &str = "@@ -10,4 +10,5 @@ fn parse() {\n     let a = read();\n-    let b = a + 1;\n+    let b = a / 0;\n+    let c = b.unwrap();\n     let d = 4;\n     done();\n@@ -40,2 +41,3 @@ fn other() {\n     keep();\n+    leak(secret);\n     end();";

fn add_pr(app: &TestApp, number: u64, head: &str, files: Vec<PullFile>) {
    app.github().add_pull(
        REPO,
        PullRequest {
            number,
            title: format!("PR {number}"),
            head_sha: head.into(),
            user_login: "alice".into(),
            ..Default::default()
        },
    );
    app.github().set_pull_files(REPO, number, files);
}

fn finding(
    path: &str,
    line: u64,
    start: Option<u64>,
    code: &str,
    severity: &str,
    category: &str,
) -> Value {
    json!({"path": path, "line": line, "start_line": start, "severity": severity,
        "category": category, "title": format!("{category} at {line}"), "body": "Explain.", "code": code})
}

async fn run(app: &TestApp, action: &str, number: u64) {
    app.deliver(
        "pull_request",
        &app.pull_request_event(action, REPO, number),
    )
    .await;
    app.wait_idle().await;
}

#[tokio::test]
async fn whatever_lines_the_model_cites_the_review_is_accepted_with_threads_where_the_code_is() {
    let app = TestApp::start().await;
    let renamed = PullFile {
        status: "renamed".into(),
        previous_filename: Some("src/old_name.rs".into()),
        ..PullFile::from_patch(
            "src/new_name.rs",
            "@@ -1,2 +1,2 @@\n fn f() {\n-    old();\n+    new_call();",
        )
    };
    add_pr(
        &app,
        1,
        HEAD1,
        vec![PullFile::from_patch("src/lib.rs", PATCH1), renamed],
    );
    app.llm().push(Reply::findings(json!([
        // Cites line 30 (between hunks) but quotes line 11.
        finding("src/lib.rs", 30, None, "let b = a / 0;", "critical", "bug"),
        // Outside the diff, quoting nothing: goes to the review body.
        finding("src/lib.rs", 90, None, "", "warning", "bug"),
        // A range across the two hunks: kept on its end line only.
        finding("src/lib.rs", 42, Some(12), "", "warning", "security"),
        // start_line == line: a one-line thread.
        finding("src/lib.rs", 12, Some(12), "", "warning", "performance"),
        // A removed line's text quoted: it is not on the new side, so the cited line wins.
        finding(
            "src/lib.rs",
            13,
            None,
            "let b = a + 1;",
            "warning",
            "maintainability"
        ),
        // The renamed file, by its new name.
        finding(
            "src/new_name.rs",
            2,
            None,
            "new_call();",
            "warning",
            "tests"
        ),
    ])));
    run(&app, "opened", 1).await;
    let reviews = app.github().reviews(REPO, 1);
    assert_eq!(reviews.len(), 1, "one review, accepted the first time");
    let r = &reviews[0];
    assert_eq!(r.event.as_deref(), Some("COMMENT"));
    let mut threads: Vec<(String, Option<u64>, u64)> = r
        .comments
        .iter()
        .map(|c| (c.path.clone(), c.start_line, c.line))
        .collect();
    threads.sort();
    assert_eq!(
        threads,
        [
            ("src/lib.rs".to_string(), None, 11),
            ("src/lib.rs".to_string(), None, 12),
            ("src/lib.rs".to_string(), None, 13),
            ("src/lib.rs".to_string(), None, 42),
            ("src/new_name.rs".to_string(), None, 2),
        ]
    );
    assert!(r.body.contains("`src/lib.rs` line 90"), "{}", r.body);
    assert!(r.comments.iter().all(|c| c.side == "RIGHT"));
    app.summary_says(REPO, 1, "a1a1a1a", "**6 new finding(s)**")
        .await;
    app.finish().await;
}

#[tokio::test]
async fn a_push_reviews_only_the_new_change_never_repeats_and_answers_the_fixed_thread() {
    let world = World::new().await;
    let app = world
        .start_with(
            world
                .options()
                .set("CRITIC_REVIEW__RESOLVE_ADDRESSED", "true"),
        )
        .await;
    let other = PullFile::from_patch("src/other.rs", "@@ -1,1 +1,2 @@\n a();\n+b();");
    add_pr(
        &app,
        2,
        HEAD1,
        vec![PullFile::from_patch("src/lib.rs", PATCH1), other.clone()],
    );
    app.llm().push(Reply::findings(json!([
        finding("src/lib.rs", 11, None, "let b = a / 0;", "critical", "bug"),
        finding(
            "src/lib.rs",
            42,
            None,
            "leak(secret);",
            "critical",
            "security"
        ),
    ])));
    run(&app, "opened", 2).await;
    let first = app.github().reviews(REPO, 2);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].comments.len(), 2);
    let div_thread = first[0]
        .comments
        .iter()
        .find(|c| c.line == 11)
        .expect("thread")
        .id;
    let leak_thread = first[0]
        .comments
        .iter()
        .find(|c| c.line == 42)
        .expect("thread")
        .id;

    // The push fixes the division (old line 11) and adds a line; the leak stays.
    let patch2 = "@@ -10,4 +10,6 @@ fn parse() {\n     let a = read();\n-    let b = a + 1;\n+    let b = a.checked_div(2);\n+    let c = b.unwrap();\n+    log(c);\n     let d = 4;\n     done();\n@@ -40,2 +42,3 @@ fn other() {\n     keep();\n+    leak(secret);\n     end();";
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 2,
            title: "PR 2".into(),
            head_sha: HEAD2.into(),
            user_login: "alice".into(),
            ..Default::default()
        },
    );
    app.github().set_pull_files(
        REPO,
        2,
        vec![PullFile::from_patch("src/lib.rs", patch2), other],
    );
    app.github().set_compare(
        REPO,
        HEAD1,
        HEAD2,
        vec![PullFile::from_patch(
            "src/lib.rs",
            "@@ -10,3 +10,4 @@ fn parse() {\n     let a = read();\n-    let b = a / 0;\n+    let b = a.checked_div(2);\n     let c = b.unwrap();\n+    log(c);",
        )],
    );
    // The model repeats the leak (now on line 44), finds one new thing on the new line 13,
    // and one on an untouched line of the first hunk.
    app.llm().push(Reply::findings(json!([
        finding(
            "src/lib.rs",
            44,
            None,
            "leak(secret);",
            "critical",
            "security"
        ),
        finding("src/lib.rs", 13, None, "log(c);", "warning", "security"),
        finding("src/lib.rs", 15, None, "done();", "warning", "bug"),
    ])));
    run(&app, "synchronize", 2).await;
    let chats = app.llm().received();
    assert_eq!(chats.len(), 2);
    let prompt = chats[1].message("user");
    assert!(prompt.contains("src/lib.rs"), "{prompt}");
    assert!(
        !prompt.contains("## src/other.rs"),
        "an untouched file is not reviewed again"
    );
    assert!(
        prompt.contains("whose commit a1a1a1a was reviewed already"),
        "{prompt}"
    );
    assert!(prompt.contains("src/other.rs"), "but it is named: {prompt}");

    let reviews: Vec<_> = app
        .github()
        .reviews(REPO, 2)
        .into_iter()
        .filter(|r| r.body.contains("critic:review"))
        .collect();
    assert_eq!(
        reviews.len(),
        2,
        "a reply to a thread is its own review on GitHub"
    );
    let second = &reviews[1];
    let lines: Vec<u64> = second.comments.iter().map(|c| c.line).collect();
    assert_eq!(
        lines,
        [13],
        "only the new finding on the changed line: {}",
        second.body
    );

    // The division thread's code changed: it got one reply and was resolved.
    let comments = app.github().review_comments(REPO, 2);
    let replies: Vec<_> = comments
        .iter()
        .filter(|c| c.in_reply_to_id == Some(div_thread))
        .collect();
    assert_eq!(replies.len(), 1);
    assert!(replies[0].body.contains("b2b2b2b"), "{}", replies[0].body);
    assert!(app.github().thread_resolved(REPO, 2, div_thread));
    assert!(
        !comments
            .iter()
            .any(|c| c.in_reply_to_id == Some(leak_thread))
    );
    assert!(!app.github().thread_resolved(REPO, 2, leak_thread));

    // One summary comment, edited in place, now about the push.
    let notes = app.github().issue_comments(REPO, 2);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].body.contains("changes since a1a1a1a"),
        "{}",
        notes[0].body
    );
    assert!(
        notes[0].body.contains("1 finding(s) already reported"),
        "{}",
        notes[0].body
    );

    // A redelivery of the same push changes nothing.
    let before = app.github().reviews(REPO, 2).len();
    run(&app, "synchronize", 2).await;
    assert_eq!(app.github().reviews(REPO, 2).len(), before);
    assert_eq!(app.llm().received().len(), 2);
    app.finish().await;
}

#[tokio::test]
async fn the_summary_and_the_check_run_say_what_happened() {
    let app = TestApp::start().await;
    add_pr(
        &app,
        3,
        HEAD1,
        vec![PullFile::from_patch("src/lib.rs", PATCH1)],
    );
    app.llm().push(Reply::json(json!({
        "summary": "Parses input and leaks a secret.",
        "walkthrough": [{"path": "src/lib.rs", "change": "Divides by zero in parse"}],
        "findings": [
            finding("src/lib.rs", 11, None, "let b = a / 0;", "critical", "bug"),
            finding("src/lib.rs", 12, None, "let c = b.unwrap();", "nit", "style"),
        ]
    })));
    run(&app, "opened", 3).await;
    let review = &app.github().reviews(REPO, 3)[0];
    assert_eq!(
        review.comments.len(),
        1,
        "the nit is below the default threshold"
    );
    assert!(
        review.body.contains("1 more: below the warning threshold"),
        "{}",
        review.body
    );
    let notes = app.github().issue_comments(REPO, 3);
    assert_eq!(notes.len(), 1);
    let summary = &notes[0].body;
    assert!(
        summary.contains("Parses input and leaks a secret."),
        "{summary}"
    );
    assert!(
        summary.contains("| `src/lib.rs` | Divides by zero in parse | +3 −1 |"),
        "{summary}"
    );
    assert!(
        summary.contains("🔴 1 critical, 🟠 0 warning, ⚪ 1 nit"),
        "{summary}"
    );
    // The review call's tokens and the verify pass's.
    assert!(summary.contains("Tokens: 38 in, 20 out"), "{summary}");
    // The nit is listed collapsed whatever a verifier says: only the critical is verified.
    assert!(
        summary.contains("Verification: 0 of 1 candidate finding(s) dropped by verification"),
        "{summary}"
    );
    let runs = app.github().check_runs(REPO);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(
        (run.name.as_str(), run.head_sha.as_str()),
        ("Critic", HEAD1)
    );
    assert_eq!(run.status, "completed");
    assert_eq!(run.conclusion.as_deref(), Some("neutral"));
    let output = run.output.as_ref().expect("output");
    assert_eq!(output.title, "1 critical, 0 warning, 1 nit");
    assert!(output.summary.contains("Parses input"));
    app.finish().await;
}

#[tokio::test]
async fn a_push_with_nothing_new_edits_the_summary_and_posts_no_review() {
    let app = TestApp::start().await;
    add_pr(
        &app,
        4,
        HEAD1,
        vec![PullFile::from_patch("src/lib.rs", PATCH1)],
    );
    app.llm()
        .respond_with(|_: &Chat| Reply::findings(json!([])));
    run(&app, "opened", 4).await;
    assert!(
        app.github().reviews(REPO, 4).is_empty(),
        "nothing to say, no review"
    );
    let notes = app.github().issue_comments(REPO, 4);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].body.contains("No new findings"),
        "{}",
        notes[0].body
    );
    // Redelivered: the head is known to be reviewed.
    run(&app, "synchronize", 4).await;
    assert_eq!(app.llm().received().len(), 1);
    assert_eq!(app.github().issue_comments(REPO, 4).len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn repository_settings_from_the_default_branch_steer_and_broken_ones_are_reported() {
    let app = TestApp::start().await;
    // The organisation asks for German; the repository skips a label and adds a rule.
    app.github()
        .add_repo("acme/.github", crate::support::app::INSTALLATION);
    app.github().put_content(
        "acme/.github",
        "main",
        "critic.toml",
        "[review]\nlanguage = \"German\"\n",
    );
    app.github().put_content(
        REPO,
        "main",
        ".github/critic.toml",
        "[review]\nskip_labels = [\"no-review\"]\ninstructions = \"Errors use thiserror.\"\n",
    );
    // A PR cannot loosen its own review: settings on its head are not read.
    app.github().put_content(
        REPO,
        HEAD1,
        ".github/critic.toml",
        "[review]\nenabled = false\n",
    );
    add_pr(
        &app,
        5,
        HEAD1,
        vec![PullFile::from_patch("src/lib.rs", PATCH1)],
    );
    app.llm()
        .respond_with(|_: &Chat| Reply::findings(json!([])));
    run(&app, "opened", 5).await;
    let chats = app.llm().received();
    assert_eq!(chats.len(), 1, "reviewed despite the head's settings");
    let system = chats[0].message("system");
    assert!(system.contains("Errors use thiserror."), "{system}");
    assert!(system.contains("in German"), "{system}");

    // A file with an unknown key: said on the PR once, and the review goes on without it.
    app.github().put_content(
        REPO,
        "main",
        ".github/critic.toml",
        "[review]\nenabeld = false\n",
    );
    add_pr(
        &app,
        6,
        HEAD2,
        vec![PullFile::from_patch("src/lib.rs", PATCH1)],
    );
    run(&app, "opened", 6).await;
    run(&app, "reopened", 6).await;
    let notes: Vec<_> = app
        .github()
        .issue_comments(REPO, 6)
        .into_iter()
        .filter(|c| c.body.contains("could not use the settings"))
        .collect();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].body.contains("enabeld"), "{}", notes[0].body);
    assert_eq!(app.llm().received().len(), 2, "PR 6 was still reviewed");

    // Read again for PR 6: the organisation's file, unchanged, came back as a 304 (no quota
    // spent) and still applies; the repository's, changed, was read in full.
    let statuses = |path: &str| -> Vec<u16> {
        app.github()
            .requests()
            .iter()
            .filter(|r| r.path_only() == path)
            .map(|r| r.status)
            .collect()
    };
    let org = statuses("/repos/acme/.github/contents/critic.toml");
    assert_eq!(org[..2], [200, 304], "{org:?}");
    let repo = statuses(&format!("/repos/{REPO}/contents/.github/critic.toml"));
    assert_eq!(repo[..2], [200, 200], "{repo:?}");
    let system = app.llm().received()[1].message("system");
    assert!(system.contains("in German"), "{system}");
    app.summary_says(REPO, 5, "a1a1a1a", "**No new findings**")
        .await;
    app.finish().await;
}

#[tokio::test]
async fn skip_rules_stop_automatic_reviews() {
    let app = TestApp::start().await;
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 7,
            title: "Bump serde".into(),
            head_sha: HEAD1.into(),
            user_login: "dependabot[bot]".into(),
            ..Default::default()
        },
    );
    app.github()
        .set_pull_files(REPO, 7, vec![PullFile::from_patch("src/lib.rs", PATCH1)]);
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 8,
            title: "WIP [skip review] experiments".into(),
            head_sha: HEAD2.into(),
            user_login: "alice".into(),
            ..Default::default()
        },
    );
    app.github()
        .set_pull_files(REPO, 8, vec![PullFile::from_patch("src/lib.rs", PATCH1)]);
    run(&app, "opened", 7).await;
    run(&app, "opened", 8).await;
    assert!(app.llm().received().is_empty());
    let jobs = app.jobs().await;
    let results: Vec<&str> = jobs.iter().filter_map(|j| j.result.as_deref()).collect();
    assert!(
        results.iter().any(|r| r.contains("dependabot[bot]")),
        "{results:?}"
    );
    assert!(
        results.iter().any(|r| r.contains("[skip review]")),
        "{results:?}"
    );
    app.finish().await;
}

/// The head of `src/lib.rs` that PATCH1 leads to.
fn lib_rs_at_head() -> String {
    (1..=45)
        .map(|n| match n {
            10 => "    let a = read();".to_string(),
            11 => "    let b = a / 0;".to_string(),
            12 => "    let c = b.unwrap();".to_string(),
            13 => "    let d = 4;".to_string(),
            14 => "    done();".to_string(),
            41 => "    keep();".to_string(),
            42 => "    leak(secret);".to_string(),
            43 => "    end();".to_string(),
            n => format!("// line {n}"),
        })
        .map(|l| l + "\n")
        .collect()
}

#[tokio::test]
async fn only_suggestions_that_replace_exactly_their_lines_are_posted_as_suggestions() {
    let app = TestApp::start().await;
    add_pr(
        &app,
        9,
        HEAD1,
        vec![PullFile::from_patch("src/lib.rs", PATCH1)],
    );
    app.github()
        .put_content(REPO, HEAD1, "src/lib.rs", lib_rs_at_head());
    let with = |mut f: Value, suggestion: &str| {
        f["suggestion"] = json!(suggestion);
        f
    };
    app.llm().push(Reply::findings(json!([
        // Right, but without the file's indentation: posted, indented like the file.
        with(
            finding("src/lib.rs", 11, None, "let b = a / 0;", "critical", "bug"),
            "let b = a.checked_div(2);"
        ),
        // Also rewrites line 13 (`let d = 4;`), outside the thread: no block.
        with(
            finding(
                "src/lib.rs",
                12,
                None,
                "let c = b.unwrap();",
                "warning",
                "bug"
            ),
            "    let c = b.unwrap_or(0);\n    let d = 4;\n    let e = 5;"
        ),
        // Changes nothing: no block.
        with(
            finding(
                "src/lib.rs",
                42,
                None,
                "leak(secret);",
                "critical",
                "security"
            ),
            "    leak(secret);"
        ),
    ])));
    run(&app, "opened", 9).await;
    let reviews = app.github().reviews(REPO, 9);
    assert_eq!(reviews.len(), 1);
    let body_at = |line: u64| {
        reviews[0]
            .comments
            .iter()
            .find(|c| c.line == line)
            .map(|c| c.body.clone())
            .unwrap_or_else(|| panic!("no thread on line {line}: {:?}", reviews[0].comments))
    };
    assert!(
        body_at(11).ends_with("```suggestion\n    let b = a.checked_div(2);\n```"),
        "{}",
        body_at(11)
    );
    for line in [12, 42] {
        let body = body_at(line);
        assert!(!body.contains("```suggestion"), "line {line}: {body}");
        assert!(
            body.contains("Explain."),
            "the finding itself is kept: {body}"
        );
    }
    app.summary_says(REPO, 9, "a1a1a1a", "**3 new finding(s)**")
        .await;
    app.finish().await;
}

#[tokio::test]
async fn a_review_that_fails_for_good_still_completes_its_check_run() {
    let app = TestApp::start().await;
    add_pr(
        &app,
        10,
        HEAD1,
        vec![PullFile::from_patch("src/lib.rs", PATCH1)],
    );
    app.llm().push(Reply::findings(json!([finding(
        "src/lib.rs",
        11,
        None,
        "let b = a / 0;",
        "critical",
        "bug"
    ),])));
    // GitHub refuses the review for good (403 is not worth a retry).
    app.github()
        .fail_next("POST", &format!("/repos/{REPO}/pulls/10/reviews"), 403, 10);
    run(&app, "opened", 10).await;
    let jobs = app.jobs().await;
    assert_eq!(jobs[0].state, JobState::Dead, "{jobs:?}");
    let runs = app.github().check_runs(REPO);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "completed");
    assert_eq!(runs[0].conclusion.as_deref(), Some("neutral"));
    let output = runs[0].output.as_ref().expect("output");
    assert_eq!(output.title, "Not reviewed");
    // And the pull request says why, once.
    let notes = app.github().issue_comments(REPO, 10);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].body.contains("could not review") && notes[0].body.contains("403"),
        "{}",
        notes[0].body
    );
    app.expect_dead(jobs[0].id);
    app.finish().await;
}

#[tokio::test]
async fn a_summary_failure_after_posting_keeps_the_review_and_the_check_run() {
    let app = TestApp::start().await;
    add_pr(
        &app,
        11,
        HEAD1,
        vec![PullFile::from_patch("src/lib.rs", PATCH1)],
    );
    app.llm().respond_with(|_| {
        Reply::findings(json!([finding(
            "src/lib.rs",
            11,
            None,
            "let b = a / 0;",
            "critical",
            "bug"
        ),]))
    });
    // The summary comment fails once, after the review was posted.
    app.github()
        .fail_next("POST", &format!("/repos/{REPO}/issues/11/comments"), 502, 1);
    run(&app, "opened", 11).await;
    let jobs = app.jobs().await;
    assert_eq!(
        (jobs[0].state, jobs[0].attempts),
        (JobState::Done, 1),
        "{jobs:?}"
    );
    let reviews = app.github().reviews(REPO, 11);
    assert_eq!(reviews.len(), 1);
    // A redelivery of the same head posts nothing more.
    run(&app, "reopened", 11).await;
    assert_eq!(app.github().reviews(REPO, 11).len(), 1);
    assert_eq!(app.llm().received().len(), 1);
    let runs = app.github().check_runs(REPO);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "completed");
    let title = &runs[0].output.as_ref().expect("output").title;
    assert_eq!(
        title, "1 critical, 0 warning, 0 nit",
        "the real outcome, not 'Not reviewed'"
    );
    app.summary_says(REPO, 11, "a1a1a1a", "**1 new finding(s)**")
        .await;
    app.finish().await;
}
