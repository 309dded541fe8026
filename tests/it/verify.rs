//! The verify pass end to end, with scripted models: what the verifier rejects is not
//! posted, taste becomes a nit, a critical finding needs the verifier's confidence, an
//! unreadable verify reply keeps every finding and says "unverified", praise is never a
//! finding, and a finding two chunks both raise is posted once. Against the fake model server
//! (a server of one's own, unpriced) the verify call continues the review's conversation by
//! default; a review in several calls, a repaired reply, or `review.verify_context =
//! "separate"` gets a call of its own.

use serde_json::{Value, json};

use crate::support::app::{REPO, TestApp, World};
use crate::support::github::{PullFile, PullRequest};
use crate::support::llm::Reply;

const HEAD: &str = "9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e";

/// New lines 1-6 of `src/calc.rs`, all added.
const PATCH: &str = "@@ -0,0 +1,6 @@\n+fn ratio(a: i32, b: i32) -> i32 {\n+    let q = a / b;\n+    let r = q.pow(2);\n+    let s = r + 1;\n+    s\n+}";

fn add_pr(app: &TestApp, number: u64) {
    app.github().add_pull(
        REPO,
        PullRequest {
            number,
            title: format!("PR {number}"),
            head_sha: HEAD.into(),
            user_login: "alice".into(),
            ..Default::default()
        },
    );
    app.github().set_pull_files(
        REPO,
        number,
        vec![PullFile::from_patch("src/calc.rs", PATCH)],
    );
    let head: String = PATCH
        .lines()
        .skip(1)
        .map(|l| format!("{}\n", &l[1..]))
        .collect();
    app.github().put_content(REPO, HEAD, "src/calc.rs", head);
}

fn finding(line: u64, severity: &str, title: &str) -> Value {
    json!({"path": "src/calc.rs", "line": line, "start_line": null, "severity": severity,
        "category": "bug", "title": title, "body": format!("{title}: explained."),
        "code": null, "suggestion": null})
}

async fn review(app: &TestApp, number: u64) {
    app.deliver(
        "pull_request",
        &app.pull_request_event("opened", REPO, number),
    )
    .await;
    app.github()
        .wait_for_reviews(REPO, number, 1, crate::support::app::WAIT)
        .await;
    app.wait_idle().await;
}

#[tokio::test]
async fn the_verifier_drops_what_is_wrong_or_unsure_and_makes_taste_a_nit() {
    let world = World::new().await;
    let app = world
        .start_with(
            world
                .options()
                .set("CRITIC_REVIEW__VERIFY_CONTEXT", "separate"),
        )
        .await;
    add_pr(&app, 1);
    app.llm().push(Reply::findings(json!([
        finding(2, "critical", "Division by zero"),
        finding(3, "warning", "pow overflows"),
        finding(4, "warning", "Off by one"),
        finding(5, "warning", "Name it better"),
        finding(2, "critical", "b may be negative"),
    ])));
    app.llm().push_verify(Reply::verdicts(json!([
        {"id": 1, "verdict": "real", "confidence": 9, "fix_ok": null},
        {"id": 2, "verdict": "real", "confidence": 5, "fix_ok": null},
        {"id": 3, "verdict": "wrong", "confidence": 9, "fix_ok": null},
        {"id": 4, "verdict": "taste", "confidence": 8, "fix_ok": null},
        {"id": 5, "verdict": "real", "confidence": 7, "fix_ok": null}
    ])));
    review(&app, 1).await;
    // The verifier saw each candidate with its code, the finding's line marked.
    let asked = app.llm().verify_received();
    assert_eq!(asked.len(), 1);
    assert!(
        !asked[0].continues_review(),
        "review.verify_context = separate"
    );
    assert_eq!(asked[0].roles(), ["system", "user"]);
    let prompt = asked[0].message("user");
    assert!(
        prompt.contains("### Finding 1: src/calc.rs, line 2"),
        "{prompt}"
    );
    assert!(prompt.contains(">    2     let q = a / b;"), "{prompt}");
    assert_eq!(asked[0].finding_ids(), [1, 2, 3, 4, 5]);

    let reviews = app.github().reviews(REPO, 1);
    let threads: Vec<(u64, &str)> = reviews[0]
        .comments
        .iter()
        .map(|c| (c.line, c.body.as_str()))
        .collect();
    assert_eq!(threads.len(), 2, "{threads:#?}");
    assert!(
        threads[0].1.starts_with("🔴 **critical**"),
        "9 of 10 keeps critical"
    );
    assert!(threads[0].1.contains("Division by zero"));
    assert!(
        threads[1].1.starts_with("🟠 **warning**") && threads[1].1.contains("b may be negative"),
        "critical with 7 of 10 is a warning: {}",
        threads[1].1
    );
    let all: String = reviews[0].body.clone();
    assert!(!all.contains("pow overflows") && !all.contains("Off by one"));
    let summary = app
        .summary_says(
            REPO,
            1,
            HEAD,
            "Verification: 2 of 5 candidate finding(s) dropped by verification; 1 wrong, 1 not sure enough; 1 made nits; 1 critical made warnings.",
        )
        .await;
    assert!(summary.contains("1 collapsed"), "the nit: {summary}");
    let run = &app.github().check_runs(REPO)[0];
    let output = run.output.as_ref().expect("output");
    assert!(
        output
            .summary
            .contains("2 of 5 candidate finding(s) dropped"),
        "{output:?}"
    );
    app.finish().await;
}

#[tokio::test]
async fn an_unreadable_verify_reply_keeps_every_finding_and_says_unverified() {
    let app = TestApp::start().await;
    add_pr(&app, 2);
    app.llm().push(Reply::findings(json!([
        finding(2, "critical", "Division by zero"),
        finding(3, "warning", "pow overflows"),
    ])));
    app.llm()
        .verify_with(|_| Reply::content("I think they are both fine, mostly."));
    review(&app, 2).await;
    assert!(
        app.llm().verify_received().len() >= 2,
        "asked again with the reason before giving up"
    );
    let reviews = app.github().reviews(REPO, 2);
    assert_eq!(reviews[0].comments.len(), 2, "nothing lost");
    assert!(reviews[0].comments[0].body.starts_with("🔴 **critical**"));
    app.summary_says(REPO, 2, HEAD, "Verification: unverified")
        .await;
    app.finish().await;
}

#[tokio::test]
async fn praise_is_not_posted_and_verify_can_be_off() {
    let world = World::new().await;
    let app = world
        .start_with(world.options().set("CRITIC_REVIEW__VERIFY", "false"))
        .await;
    add_pr(&app, 3);
    app.llm().push(Reply::findings(json!([
        finding(2, "critical", "Division by zero"),
        {"path": "src/calc.rs", "line": 5, "severity": "warning", "category": "bug",
         "title": "No issues", "body": "This change does not introduce any bugs.", "code": null,
         "suggestion": null},
    ])));
    review(&app, 3).await;
    assert!(
        app.llm().verify_received().is_empty(),
        "review.verify = false"
    );
    let reviews = app.github().reviews(REPO, 3);
    assert_eq!(reviews[0].comments.len(), 1);
    assert!(reviews[0].comments[0].body.contains("Division by zero"));
    assert!(
        reviews[0].comments[0].body.starts_with("🔴 **critical**"),
        "unverified findings keep their severity"
    );
    app.summary_says(
        REPO,
        3,
        HEAD,
        "Verification: 1 candidate(s) that reported no problem dropped.",
    )
    .await;
    app.finish().await;
}

#[tokio::test]
async fn a_finding_two_chunks_both_raise_is_verified_and_posted_once() {
    let world = World::new().await;
    let app = world
        .start_with(world.options().set("CRITIC_REVIEW__BUDGET_TOKENS", "1000"))
        .await;
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 4,
            head_sha: HEAD.into(),
            ..Default::default()
        },
    );
    let body: String = (1..=40)
        .map(|i| format!("+    let value_{i} = compute_something({i});\n"))
        .collect();
    let patch = format!("@@ -0,0 +1,40 @@\n{}", body.trim_end());
    let files: Vec<PullFile> = (0..4)
        .map(|i| PullFile::from_patch(&format!("src/m{i}.rs"), &patch))
        .collect();
    app.github().set_pull_files(REPO, 4, files);
    // Every chunk's model reports the same problem in src/m0.rs.
    app.llm().respond_with(|_| {
        Reply::findings(
            json!([{"path": "src/m0.rs", "line": 3, "severity": "warning",
            "category": "bug", "title": "compute_something can fail", "body": "Unchecked.",
            "code": null, "suggestion": null}]),
        )
    });
    review(&app, 4).await;
    assert!(app.llm().received().len() >= 2, "several chunks");
    let asked = app.llm().verify_received();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].finding_ids(), [1], "merged before verifying");
    assert!(
        !asked[0].continues_review(),
        "a review in several calls has no one conversation to continue"
    );
    let reviews = app.github().reviews(REPO, 4);
    assert_eq!(reviews[0].comments.len(), 1);
    app.summary_says(REPO, 4, HEAD, "0 of 1 candidate finding(s) dropped")
        .await;
    app.finish().await;
}

#[tokio::test]
async fn a_fix_that_is_prose_or_does_not_parse_is_not_offered() {
    let app = TestApp::start().await;
    add_pr(&app, 5);
    let with_fix = |line: u64, title: &str, fix: &str| {
        let mut f = finding(line, "warning", title);
        f["suggestion"] = fix.into();
        f
    };
    app.llm().push(Reply::findings(json!([
        with_fix(
            2,
            "Division by zero",
            "    let q = if b == 0 { 0 } else { a / b };"
        ),
        with_fix(3, "pow overflows", "    Use checked_pow here instead."),
        with_fix(4, "Unchecked add", "    let s = r +;"),
    ])));
    review(&app, 5).await;
    let reviews = app.github().reviews(REPO, 5);
    let bodies: Vec<&str> = reviews[0]
        .comments
        .iter()
        .map(|c| c.body.as_str())
        .collect();
    assert_eq!(bodies.len(), 3, "every finding is posted");
    assert!(
        bodies[0].contains("```suggestion\n    let q = if b == 0"),
        "{}",
        bodies[0]
    );
    assert!(!bodies[1].contains("```suggestion"), "prose: {}", bodies[1]);
    assert!(
        !bodies[2].contains("```suggestion"),
        "does not parse: {}",
        bodies[2]
    );
    app.summary_says(REPO, 5, HEAD, "**3 new finding(s)**")
        .await;
    app.finish().await;
}

#[tokio::test]
async fn only_findings_bound_for_a_thread_are_verified_and_one_file_asks_no_walkthrough() {
    let app = TestApp::start().await;
    add_pr(&app, 7);
    app.llm().push(Reply::findings(json!([
        finding(5, "nit", "Name it better"),
        finding(2, "warning", "Division by zero"),
    ])));
    app.llm().push_verify(Reply::verdicts(json!([
        {"id": 1, "verdict": "real", "confidence": 9, "fix_ok": null}
    ])));
    review(&app, 7).await;
    // A one-file change: its summary says what a walkthrough would, so none is asked for.
    let asked = app.llm().received();
    let system = asked[0].message("system");
    assert!(system.contains("\"summary\""), "{system}");
    assert!(!system.contains("\"walkthrough\""), "{system}");
    // The nit (under review.min_severity, so listed collapsed) is not worth a verdict.
    let verified = app.llm().verify_received();
    assert_eq!(verified[0].finding_ids(), [1]);
    let prompt = verified[0].last_message("user");
    assert!(prompt.contains("Division by zero"), "{prompt}");
    assert!(!prompt.contains("Name it better"), "{prompt}");
    let reviews = app.github().reviews(REPO, 7);
    assert_eq!(reviews[0].comments.len(), 1);
    assert!(reviews[0].body.contains("Name it better"), "still listed");
    app.summary_says(
        REPO,
        7,
        HEAD,
        "Verification: 0 of 1 candidate finding(s) dropped by verification",
    )
    .await;
    app.finish().await;
}

#[tokio::test]
async fn with_suggestions_off_no_fix_is_asked_for_or_posted() {
    let world = World::new().await;
    let app = world
        .start_with(world.options().set("CRITIC_REVIEW__SUGGESTIONS", "false"))
        .await;
    no_fix_is_asked_for_or_posted(app).await;
}

#[tokio::test]
async fn a_small_model_on_llama_cpp_is_asked_for_no_fix_by_default() {
    let app = TestApp::start().await;
    app.llm().list_as_llama_cpp(1_777_088_000);
    no_fix_is_asked_for_or_posted(app).await;
}

#[tokio::test]
async fn a_larger_model_on_llama_cpp_is_asked_for_fixes_by_default() {
    let app = TestApp::start().await;
    app.llm().list_as_llama_cpp(7_615_616_512);
    add_pr(&app, 8);
    let mut with_fix = finding(2, "warning", "Division by zero");
    with_fix["suggestion"] = json!("    let q = a.checked_div(b).unwrap_or(0);");
    app.llm().push(Reply::findings(json!([with_fix])));
    app.llm().push_verify(Reply::verdicts(json!([
        {"id": 1, "verdict": "real", "confidence": 9, "fix_ok": true}
    ])));
    review(&app, 8).await;
    let system = app.llm().received()[0].message("system");
    assert!(system.contains("suggestion"), "{system}");
    let reviews = app.github().reviews(REPO, 8);
    assert!(
        reviews[0].comments[0].body.contains("```suggestion"),
        "{}",
        reviews[0].comments[0].body
    );
    app.summary_says(REPO, 8, HEAD, "Verification:").await;
    app.finish().await;
}

/// A review whose model volunteers a fix though none was asked for: the request asks for no
/// fix, and none is posted.
async fn no_fix_is_asked_for_or_posted(app: TestApp) {
    add_pr(&app, 8);
    let mut volunteered = finding(2, "warning", "Division by zero");
    volunteered["suggestion"] = json!("    let q = a.checked_div(b).unwrap_or(0);");
    app.llm().push(Reply::findings(json!([volunteered])));
    app.llm().push_verify(Reply::verdicts(json!([
        {"id": 1, "verdict": "real", "confidence": 9, "fix_ok": true}
    ])));
    review(&app, 8).await;
    let system = app.llm().received()[0].message("system");
    assert!(!system.contains("suggestion"), "{system}");
    let reviews = app.github().reviews(REPO, 8);
    assert_eq!(reviews[0].comments.len(), 1);
    assert!(
        !reviews[0].comments[0].body.contains("```suggestion"),
        "{}",
        reviews[0].comments[0].body
    );
    app.summary_says(
        REPO,
        8,
        HEAD,
        "Verification: 0 of 1 candidate finding(s) dropped by verification",
    )
    .await;
    app.finish().await;
}

#[tokio::test]
async fn the_verify_call_continues_the_reviews_conversation_on_a_free_server_of_ones_own() {
    let app = TestApp::start().await;
    add_pr(&app, 9);
    app.llm().push(Reply::findings(json!([
        finding(2, "critical", "Division by zero"),
        finding(3, "warning", "pow overflows"),
    ])));
    app.llm().push_verify(Reply::verdicts(json!([
        {"id": 1, "verdict": "real", "confidence": 9, "fix_ok": null},
        {"id": 2, "verdict": "wrong", "confidence": 8, "fix_ok": null}
    ])));
    review(&app, 9).await;
    let review_call = &app.llm().received()[0];
    let asked = app.llm().verify_received();
    assert_eq!(asked.len(), 1);
    let verify_call = &asked[0];
    assert!(verify_call.continues_review());
    // The review's own turns, unchanged, then its reply and the ask: a server's cache of
    // the review's prompt holds.
    assert_eq!(verify_call.roles(), ["system", "user", "assistant", "user"]);
    let messages = verify_call.body["messages"].as_array().expect("messages");
    assert_eq!(
        messages[..2],
        review_call.body["messages"].as_array().expect("messages")[..]
    );
    let reply = messages[2]["content"].as_str().expect("the review's reply");
    assert!(
        reply.contains("Division by zero") && reply.contains("pow overflows"),
        "{reply}"
    );
    let ask = verify_call.last_message("user");
    assert!(
        ask.contains("1. src/calc.rs, line 2: Division by zero"),
        "{ask}"
    );
    assert!(
        ask.contains("2. src/calc.rs, line 3: pow overflows"),
        "{ask}"
    );
    assert!(ask.contains("\"verdict\""), "{ask}");
    assert_eq!(verify_call.finding_ids(), [1, 2]);
    // The verdicts apply as they do to a call of its own.
    let reviews = app.github().reviews(REPO, 9);
    assert_eq!(reviews[0].comments.len(), 1);
    assert!(reviews[0].comments[0].body.contains("Division by zero"));
    app.summary_says(
        REPO,
        9,
        HEAD,
        "Verification: 1 of 2 candidate finding(s) dropped by verification; 1 wrong",
    )
    .await;
    app.finish().await;
}

#[tokio::test]
async fn a_review_reply_that_had_to_be_asked_again_is_verified_in_a_call_of_its_own() {
    let app = TestApp::start().await;
    add_pr(&app, 10);
    // The review's first reply is unreadable: the conversation a repair makes is not one the
    // server has cached, so there is nothing worth continuing.
    app.llm()
        .push(Reply::content("Here are my findings, mostly."));
    app.llm().push(Reply::findings(json!([finding(
        2,
        "warning",
        "Division by zero"
    )])));
    review(&app, 10).await;
    assert_eq!(app.llm().received().len(), 2, "asked again once");
    let asked = app.llm().verify_received();
    assert_eq!(asked.len(), 1);
    assert!(!asked[0].continues_review());
    assert_eq!(asked[0].roles(), ["system", "user"]);
    assert_eq!(asked[0].finding_ids(), [1]);
    let reviews = app.github().reviews(REPO, 10);
    assert_eq!(reviews[0].comments.len(), 1);
    app.summary_says(
        REPO,
        10,
        HEAD,
        "Verification: 0 of 1 candidate finding(s) dropped by verification",
    )
    .await;
    app.finish().await;
}

#[tokio::test]
async fn a_continued_verify_call_that_fails_is_asked_again_in_a_call_of_its_own() {
    let app = TestApp::start().await;
    add_pr(&app, 11);
    app.llm().push(Reply::findings(json!([
        finding(2, "critical", "Division by zero"),
        finding(3, "warning", "pow overflows"),
    ])));
    // The server refuses the continued conversation (as one would a prompt over its
    // context), then answers the call of its own.
    app.llm().push_verify(Reply::error(400));
    app.llm().push_verify(Reply::verdicts(json!([
        {"id": 1, "verdict": "real", "confidence": 9, "fix_ok": null},
        {"id": 2, "verdict": "wrong", "confidence": 9, "fix_ok": null}
    ])));
    review(&app, 11).await;
    let asked = app.llm().verify_received();
    assert_eq!(asked.len(), 2, "{asked:#?}");
    assert!(asked[0].continues_review());
    assert!(!asked[1].continues_review());
    assert_eq!(asked[1].roles(), ["system", "user"]);
    assert_eq!(asked[1].finding_ids(), [1, 2]);
    let reviews = app.github().reviews(REPO, 11);
    assert_eq!(
        reviews[0].comments.len(),
        1,
        "the verdicts of the second call apply"
    );
    app.summary_says(
        REPO,
        11,
        HEAD,
        "Verification: 1 of 2 candidate finding(s) dropped by verification",
    )
    .await;
    app.finish().await;
}

#[tokio::test]
async fn a_priced_model_is_verified_in_a_call_of_its_own_unless_continue_is_set() {
    // `gpt-4.1-mini` has a price in Critic's table: a gateway that serves it bills input,
    // so `auto` does not re-send the review's prompt to verify.
    for (context, continued) in [(None, false), (Some("continue"), true)] {
        let world = World::new().await;
        let mut options = world.options().set("CRITIC_LLM__MODEL", "gpt-4.1-mini");
        if let Some(context) = context {
            options = options.set("CRITIC_REVIEW__VERIFY_CONTEXT", context);
        }
        let app = world.start_with(options).await;
        add_pr(&app, 12);
        app.llm().push(Reply::findings(json!([finding(
            2,
            "warning",
            "Division by zero"
        )])));
        review(&app, 12).await;
        let asked = app.llm().verify_received();
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].continues_review(), continued, "{context:?}");
        let reviews = app.github().reviews(REPO, 12);
        assert_eq!(reviews[0].comments.len(), 1);
        app.summary_says(
            REPO,
            12,
            HEAD,
            "Verification: 0 of 1 candidate finding(s) dropped by verification",
        )
        .await;
        app.finish().await;
    }
}
