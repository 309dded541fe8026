//! Learning from reactions, end to end: a thread thumbed down, or resolved without its code
//! changing, is read on the next review run, and the finding is not posted again; the summary
//! says how many were muted. A GitHub that fails the reading never fails the review.

use serde_json::json;

use crate::support::app::{REPO, TestApp, WAIT, reply_event};
use crate::support::github::{PullFile, PullRequest};
use crate::support::llm::Reply;

const HEAD1: &str = "1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e";
const HEAD2: &str = "2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e";
const HEAD3: &str = "3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e";

const V1: &str =
    "fn ratio(a: i32, b: i32) -> i32 {\n    let q = a / b;\n    let r = q * 2;\n    r\n}\n";
/// The push changes line 4 only.
const V2: &str =
    "fn ratio(a: i32, b: i32) -> i32 {\n    let q = a / b;\n    let r = q * 2;\n    r + 1\n}\n";
const PATCH1: &str = "@@ -0,0 +1,5 @@\n+fn ratio(a: i32, b: i32) -> i32 {\n+    let q = a / b;\n+    let r = q * 2;\n+    r\n+}";
const PATCH2: &str = "@@ -0,0 +1,5 @@\n+fn ratio(a: i32, b: i32) -> i32 {\n+    let q = a / b;\n+    let r = q * 2;\n+    r + 1\n+}";
const PUSH: &str = "@@ -1,5 +1,5 @@\n fn ratio(a: i32, b: i32) -> i32 {\n     let q = a / b;\n     let r = q * 2;\n-    r\n+    r + 1\n }";

fn pull(app: &TestApp, number: u64, head: &str, patch: &str, content: &str) {
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
    app.github().set_pull_files(
        REPO,
        number,
        vec![PullFile::from_patch("src/ratio.rs", patch)],
    );
    app.github()
        .put_content(REPO, head, "src/ratio.rs", content);
}

/// The model always raises the same finding on line 2.
fn model() -> Reply {
    Reply::findings(
        json!([{"path": "src/ratio.rs", "line": 2, "severity": "warning",
        "category": "bug", "title": "Division by zero", "body": "`b` may be zero.",
        "code": "let q = a / b;", "suggestion": null}]),
    )
}

async fn deliver(app: &TestApp, action: &str, number: u64) {
    app.deliver(
        "pull_request",
        &app.pull_request_event(action, REPO, number),
    )
    .await;
    app.wait_idle().await;
}

/// Opens PR `number`, waits for its one thread and returns the thread's comment id.
async fn first_review(app: &TestApp, number: u64) -> u64 {
    deliver(app, "opened", number).await;
    let reviews = app.github().wait_for_reviews(REPO, number, 1, WAIT).await;
    assert_eq!(reviews[0].comments.len(), 1);
    app.summary_says(REPO, number, HEAD1, "**1 new finding(s)**")
        .await;
    reviews[0].comments[0].id
}

/// The push to HEAD2 that leaves the finding's line alone.
async fn push(app: &TestApp, number: u64) -> String {
    push_to(app, number, HEAD1, HEAD2).await
}

/// A push from `from` to `to` that leaves the finding's line alone; returns the summary.
async fn push_to(app: &TestApp, number: u64, from: &str, to: &str) -> String {
    pull(app, number, to, PATCH2, V2);
    app.github().set_compare(
        REPO,
        from,
        to,
        vec![PullFile::from_patch("src/ratio.rs", PUSH)],
    );
    deliver(app, "synchronize", number).await;
    app.summary_says(REPO, number, to, "").await
}

#[tokio::test]
async fn a_thumbed_down_finding_raised_again_is_muted_and_said_so() {
    let app = TestApp::start().await;
    app.llm().respond_with(|_| model());
    pull(&app, 1, HEAD1, PATCH1, V1);
    let thread = first_review(&app, 1).await;
    app.github()
        .react_to_review_comment(REPO, thread, "-1", "bob");
    let summary = push(&app, 1).await;
    assert_eq!(app.github().reviews(REPO, 1).len(), 1, "nothing new posted");
    assert!(
        summary.contains("1 finding(s) not posted: this repository turned them down before"),
        "{summary}"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_thread_resolved_without_a_change_counts_as_dismissed() {
    let app = TestApp::start().await;
    app.llm().respond_with(|_| model());
    pull(&app, 2, HEAD1, PATCH1, V1);
    let thread = first_review(&app, 2).await;
    app.github()
        .set_thread_resolved(REPO, 2, thread, Some("bob"));
    let summary = push(&app, 2).await;
    assert!(
        summary.contains("1 finding(s) not posted: this repository turned them down before"),
        "{summary}"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_thumbs_up_keeps_it_and_a_failed_reading_never_fails_the_review() {
    let app = TestApp::start().await;
    app.llm().respond_with(|_| model());
    pull(&app, 3, HEAD1, PATCH1, V1);
    let thread = first_review(&app, 3).await;
    // Liked more than disliked: not muted; the push repeats nothing either way.
    app.github()
        .react_to_review_comment(REPO, thread, "+1", "bob");
    app.github()
        .react_to_review_comment(REPO, thread, "+1", "carol");
    app.github()
        .react_to_review_comment(REPO, thread, "-1", "dave");
    // A thread resolved after its code changed (GitHub marks it outdated) was acted on: it
    // mutes nothing.
    app.github()
        .set_thread_resolved(REPO, 3, thread, Some("bob"));
    app.github().set_thread_outdated(REPO, 3, thread, true);
    let summary = push(&app, 3).await;
    assert!(!summary.contains("not posted"), "{summary}");
    assert!(
        summary.contains("already reported on this pull request were not repeated"),
        "{summary}"
    );
    // GitHub's GraphQL is down for the next run: the reading is skipped, the review goes on.
    let world = app.world.clone();
    world.github.fail_next("POST", "/graphql", 502, 50);
    let summary = push_to(&app, 3, HEAD2, HEAD3).await;
    assert!(summary.contains("were not repeated"), "{summary}");
    let jobs = app.wait_idle().await;
    assert!(
        app.github()
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/graphql") && r.status == 502),
        "the reading was tried"
    );
    assert!(
        jobs.iter()
            .all(|j| j.state == critic::domain::JobState::Done),
        "{jobs:?}"
    );
    app.finish().await;
}

/// `login` replies `text` in the thread rooted at `root`; Critic answers with `answer`.
async fn reply(app: &TestApp, number: u64, root: u64, text: &str, answer: serde_json::Value) {
    let id = app
        .github()
        .add_review_reply(REPO, number, "alice", root, text);
    app.llm().push(Reply::json(answer));
    app.deliver(
        "pull_request_review_comment",
        &reply_event(number, id, root, "alice", "MEMBER", text),
    )
    .await;
    app.wait_idle().await;
}

#[tokio::test]
async fn a_finding_argued_down_in_its_thread_is_muted_one_that_holds_is_not() {
    let app = TestApp::start().await;
    app.llm().respond_with(|_| model());
    pull(&app, 9, HEAD1, PATCH1, V1);
    let thread = first_review(&app, 9).await;
    // The reply disputes it, but the model checks the code and keeps the finding.
    reply(
        &app,
        9,
        thread,
        "Nonsense, this is fine.",
        json!({"answer": "`ratio` divides by `b` with no check; a caller may pass 0.",
               "references": [], "finding": "holds"}),
    )
    .await;
    let asked = app.llm().received().last().expect("asked").clone();
    assert!(
        asked
            .message("system")
            .contains("say in `finding` whether it holds"),
        "a thread reply asks whether the finding holds"
    );
    let summary = push(&app, 9).await;
    assert!(!summary.contains("not posted"), "{summary}");

    // Shown why it cannot happen, the model agrees: the next run mutes the finding.
    reply(
        &app,
        9,
        thread,
        "`b` is checked by the only caller, `safe_ratio`, before this runs.",
        json!({"answer": "You are right: the caller rules out zero, so this cannot divide by zero.",
               "references": [], "finding": "wrong"}),
    )
    .await;
    let summary = push_to(&app, 9, HEAD2, HEAD3).await;
    assert!(
        summary.contains("1 finding(s) not posted: this repository turned them down before"),
        "{summary}"
    );
    assert!(summary.contains("argued down in a reply"), "{summary}");
    assert_eq!(
        app.github()
            .reviews(REPO, 9)
            .iter()
            .filter(|r| r.user_login == crate::support::github::BOT_LOGIN
                && !r.comments.is_empty()
                && r.comments.iter().all(|c| c.in_reply_to_id.is_none()))
            .count(),
        1,
        "one review with threads"
    );
    app.finish().await;
}

#[tokio::test]
async fn three_dismissed_style_findings_under_one_folder_become_an_instruction() {
    let app = TestApp::start().await;
    let patch = "@@ -0,0 +1,4 @@\n+fn t1() {}\n+fn t2() {}\n+fn t3() {}\n+fn t4() {}";
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 7,
            head_sha: HEAD1.into(),
            ..Default::default()
        },
    );
    app.github()
        .set_pull_files(REPO, 7, vec![PullFile::from_patch("tests/util.rs", patch)]);
    app.llm().respond_with(|_| {
        let style = |line: u64, title: &str| {
            json!({"path": "tests/util.rs", "line": line,
            "severity": "warning", "category": "style", "title": title,
            "body": "Rename it.", "code": null, "suggestion": null})
        };
        Reply::findings(json!([
            style(1, "Name t1 better"),
            style(2, "Name t2 better"),
            style(3, "Name t3 better")
        ]))
    });
    deliver(&app, "opened", 7).await;
    let reviews = app.github().wait_for_reviews(REPO, 7, 1, WAIT).await;
    assert_eq!(reviews[0].comments.len(), 3);
    app.summary_says(REPO, 7, HEAD1, "**3 new finding(s)**")
        .await;
    for c in &reviews[0].comments {
        app.github()
            .react_to_review_comment(REPO, c.id, "-1", "bob");
    }
    // The next run reads the three 👎 before it asks the model: the prompt carries the
    // lesson, and the summary shows it.
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 7,
            head_sha: HEAD2.into(),
            ..Default::default()
        },
    );
    app.github().set_compare(
        REPO,
        HEAD1,
        HEAD2,
        vec![PullFile::from_patch(
            "tests/util.rs",
            "@@ -4 +4 @@\n-fn t4() {}\n+fn t4() { }",
        )],
    );
    deliver(&app, "synchronize", 7).await;
    let asked = app.llm().received();
    let prompt = asked
        .last()
        .expect("a second review call")
        .message("system");
    assert!(
        prompt.contains("turned down 3 `style` findings under `tests/`"),
        "{prompt}"
    );
    let summary = app
        .summary_says(
            REPO,
            7,
            HEAD2,
            "Learned from this repository's reactions (1)",
        )
        .await;
    assert!(summary.contains("3 finding(s) not posted"), "{summary}");
    app.finish().await;
}

#[tokio::test]
async fn learnings_lists_what_was_learned_and_only_maintainers_reset_it() {
    let world = crate::support::app::World::new().await;
    let app = world
        .start_with(world.options().set(
            "CRITIC_COMMANDS__ALLOWED",
            "OWNER,MEMBER,COLLABORATOR,CONTRIBUTOR",
        ))
        .await;
    app.llm().respond_with(|_| model());
    pull(&app, 8, HEAD1, PATCH1, V1);
    let thread = first_review(&app, 8).await;
    app.github()
        .react_to_review_comment(REPO, thread, "-1", "bob");
    let summary = push(&app, 8).await;
    assert!(summary.contains("1 finding(s) not posted"), "{summary}");
    let answers = |login: &str| -> Vec<String> {
        app.github()
            .issue_comments(REPO, 8)
            .into_iter()
            .filter(|c| c.body.contains(&format!("@{login} ")))
            .map(|c| c.body)
            .collect()
    };

    app.comment(REPO, 8, "alice", "OWNER", "/learnings").await;
    app.wait_idle().await;
    let said = answers("alice");
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("1 finding(s) are muted"), "{}", said[0]);
    assert!(
        said[0].contains("No instruction has been learned yet"),
        "{}",
        said[0]
    );

    app.comment(REPO, 8, "carl", "CONTRIBUTOR", "/learnings reset")
        .await;
    app.wait_idle().await;
    let refused = answers("carl");
    assert!(
        refused[0].contains("only the repository's owners, members and collaborators"),
        "{refused:?}"
    );
    assert_eq!(
        app.critic
            .store
            .muted_fingerprints(REPO)
            .await
            .expect("muted")
            .len(),
        1,
        "nothing forgotten"
    );

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.comment(REPO, 8, "mia", "MEMBER", "/learnings reset")
        .await;
    app.wait_idle().await;
    assert!(
        answers("mia")[0].contains("Critic forgot"),
        "{:?}",
        answers("mia")
    );
    assert!(
        app.critic
            .store
            .muted_fingerprints(REPO)
            .await
            .expect("muted")
            .is_empty()
    );
    app.finish().await;
}

#[tokio::test]
async fn a_closed_pull_requests_threads_are_read_a_last_time() {
    let app = TestApp::start().await;
    app.llm().respond_with(|_| model());
    pull(&app, 9, HEAD1, PATCH1, V1);
    let thread = first_review(&app, 9).await;
    app.github()
        .react_to_review_comment(REPO, thread, "-1", "bob");
    // Closed (merged or not): no review runs again, so this is when the 👎 is read.
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 9,
            title: "PR 9".into(),
            head_sha: HEAD1.into(),
            user_login: "alice".into(),
            state: "closed".into(),
            ..Default::default()
        },
    );
    deliver(&app, "closed", 9).await;
    let jobs = app.wait_idle().await;
    let learn = jobs
        .iter()
        .find(|j| j.kind == "learn")
        .expect("a learn job");
    assert_eq!(
        learn.result.as_deref(),
        Some("threads' reactions read"),
        "{jobs:?}"
    );
    // Another pull request raising the same finding on the same code: muted.
    let other = "4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e";
    pull(&app, 10, other, PATCH1, V1);
    deliver(&app, "opened", 10).await;
    assert!(app.github().reviews(REPO, 10).is_empty(), "nothing to post");
    app.summary_says(REPO, 10, other, "1 finding(s) not posted")
        .await;
    // A closed pull request Critic never commented on costs no GitHub call.
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 11,
            head_sha: other.into(),
            state: "closed".into(),
            ..Default::default()
        },
    );
    let calls = app.github().requests().len();
    deliver(&app, "closed", 11).await;
    assert_eq!(app.github().requests().len(), calls);
    app.finish().await;
}

#[tokio::test]
async fn with_require_permission_only_people_with_the_role_teach() {
    let world = crate::support::app::World::new().await;
    let mut options = world.options();
    options
        .env
        .push(("CRITIC_COMMANDS__REQUIRE_PERMISSION".into(), "write".into()));
    let app = world.start_with(options).await;
    app.llm().respond_with(|_| model());
    app.github().set_role(REPO, "bob", "maintain");
    pull(&app, 11, HEAD1, PATCH1, V1);
    let thread = first_review(&app, 11).await;
    // Two outsiders thumb it down, and the pull request's author (who can only read) resolves
    // it: none of them can speak for the repository.
    app.github()
        .react_to_review_comment(REPO, thread, "-1", "mallory");
    app.github()
        .react_to_review_comment(REPO, thread, "-1", "trudy");
    app.github()
        .set_thread_resolved(REPO, 11, thread, Some("alice"));
    let summary = push(&app, 11).await;
    assert!(!summary.contains("not posted"), "{summary}");
    assert!(
        app.github().requests().iter().any(|r| r
            .path
            .contains(&format!("/pulls/comments/{thread}/reactions?"))),
        "who reacted was read"
    );

    // A maintainer's 👎 counts.
    app.github()
        .react_to_review_comment(REPO, thread, "-1", "bob");
    let summary = push_to(&app, 11, HEAD2, HEAD3).await;
    assert!(
        summary.contains("1 finding(s) not posted: this repository turned them down before"),
        "{summary}"
    );
    app.finish().await;
}
