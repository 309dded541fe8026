//! What reaches the model: enclosing code, no secrets, chunks for large PRs, skipped files named.

use serde_json::json;

use crate::support::app::{INSTALLATION, REPO, TestApp, WAIT, World};
use crate::support::github::{PullFile, PullRequest, scenario_dir};
use crate::support::llm::{Chat, Reply};

#[tokio::test]
async fn the_model_sees_the_enclosing_function_of_a_real_change() {
    let Some(dir) = scenario_dir("expressjs__express__327af123a1") else {
        return;
    };
    let app = TestApp::start().await;
    let s = app.github().load_scenario(&dir, REPO, 40, INSTALLATION);
    app.deliver(
        "pull_request",
        &app.pull_request_event("opened", REPO, s.number),
    )
    .await;
    app.github()
        .wait_for_summary(REPO, 40, &s.head_sha, WAIT)
        .await;
    let prompt = app.llm().received()[0].message("user");
    // The change sits inside res.sendFile; its head lines around the hunk are shown.
    assert!(prompt.contains("Enclosing code at head"), "{prompt}");
    assert!(
        prompt.contains("res.sendFile = function sendFile(path, options, callback) {"),
        "{prompt}"
    );
    assert!(prompt.contains("## lib/response.js (modified)"));
    app.finish().await;
}

#[tokio::test]
async fn secrets_in_the_diff_and_the_description_never_reach_the_model() {
    let app = TestApp::start().await;
    let token = concat!("ghp_", "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa");
    let aws = concat!("AKIA", "IOSFODNN7EXAMPLQ");
    let head = "6666666666666666666666666666666666666666";
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 41,
            head_sha: head.into(),
            body: format!("Uses {token} for now"),
            ..Default::default()
        },
    );
    let patch = format!(
        "@@ -1,2 +1,3 @@\n import os\n-TOKEN = os.environ['T']\n+TOKEN = \"{token}\"\n+AWS_KEY = \"{aws}\""
    );
    app.github().set_pull_files(
        REPO,
        41,
        vec![PullFile::from_patch("app/settings.py", &patch)],
    );
    app.github().put_content(
        REPO,
        head,
        "app/settings.py",
        format!("import os\nTOKEN = \"{token}\"\nAWS_KEY = \"{aws}\"\n"),
    );
    app.deliver("pull_request", &app.pull_request_event("opened", REPO, 41))
        .await;
    app.github().wait_for_summary(REPO, 41, head, WAIT).await;
    let sent: String = app
        .llm()
        .received()
        .iter()
        .map(|c| c.body.to_string())
        .collect();
    assert!(!sent.contains(token), "the GitHub token reached the model");
    assert!(!sent.contains(aws), "the AWS key reached the model");
    assert!(sent.contains("[REDACTED github-token]"), "{sent}");
    app.finish().await;
}

/// Critic with a budget of 1,000 tokens per request, so a PR of a few files is split.
async fn app_with_small_budget() -> TestApp {
    let world = World::new().await;
    world
        .start_with(world.options().set("CRITIC_REVIEW__BUDGET_TOKENS", "1000"))
        .await
}

/// PR `number`, and six files of forty added lines each for it (not yet set on the PR).
fn large_pull(app: &TestApp, number: u64) -> Vec<PullFile> {
    app.github().add_pull(
        REPO,
        PullRequest {
            number,
            ..Default::default()
        },
    );
    let body: String = (1..=40)
        .map(|i| format!("+    let value_{i} = compute_something({i});\n"))
        .collect();
    let patch = format!("@@ -0,0 +1,40 @@\n{}", body.trim_end());
    (0..6)
        .map(|i| PullFile::from_patch(&format!("src/m{i}.rs"), &patch))
        .collect()
}

#[tokio::test]
async fn a_large_pull_request_is_reviewed_in_chunks_and_merged_into_one_review() {
    let app = app_with_small_budget().await;
    let mut files = large_pull(&app, 42);
    files.push(PullFile::from_patch("Cargo.lock", "@@ -1 +1 @@\n-a\n+b"));
    app.github().set_pull_files(REPO, 42, files);
    // Each request gets one finding on the first file it was shown.
    app.llm().respond_with(|chat: &Chat| {
        let prompt = chat.message("user");
        let path = prompt
            .lines()
            .find_map(|l| l.strip_prefix("## "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or("none");
        Reply::findings(json!([{"path": path, "line": 1, "body": format!("Finding in {path}.")}]))
    });
    app.deliver("pull_request", &app.pull_request_event("opened", REPO, 42))
        .await;
    let reviews = app.github().wait_for_reviews(REPO, 42, 1, WAIT).await;
    let chats = app.llm().received();
    assert!(chats.len() >= 2, "split into {} request(s)", chats.len());
    assert!(chats.len() <= 4, "at most max_chunks requests");
    // The chunks are asked for in parallel, so they arrive in any order.
    assert!(
        chats
            .iter()
            .any(|c| c.message("user").contains("part 1 of")),
        "the first part was asked for"
    );
    let review = &reviews[0];
    assert_eq!(
        review.comments.len(),
        chats.len(),
        "one finding per chunk, merged into one review"
    );
    let head = PullRequest::default().head_sha;
    let summary = app.github().wait_for_summary(REPO, 42, &head, WAIT).await;
    assert!(
        summary.body.contains("`Cargo.lock`: lock file"),
        "{}",
        summary.body
    );
    assert!(
        chats
            .iter()
            .all(|c| !c.message("user").contains("## Cargo.lock"))
    );
    assert_eq!(app.wait_idle().await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn the_model_sees_definitions_from_files_the_change_imports() {
    let app = TestApp::start().await;
    let head = "4343434343434343434343434343434343434343";
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 43,
            head_sha: head.into(),
            ..Default::default()
        },
    );
    let main_head = "from .limits import clamp\n\n\ndef handle(value):\n    checked = clamp(value, 0, 10)\n    return checked\n";
    app.github().set_pull_files(
        REPO,
        43,
        vec![PullFile::from_patch(
            "app/handler.py",
            "@@ -4,2 +4,3 @@\n def handle(value):\n+    checked = clamp(value, 0, 10)\n     return checked",
        )],
    );
    app.github()
        .put_content(REPO, head, "app/handler.py", main_head);
    // Not changed by the PR: only in the repository at head.
    app.github().put_content(
        REPO,
        head,
        "app/limits.py",
        "def unrelated():\n    pass\n\n\ndef clamp(value, low, high):\n    \"\"\"Raises on NaN.\"\"\"\n    return max(low, min(high, value))\n",
    );
    app.github().put_content(
        REPO,
        head,
        "app/other.py",
        "def clamp_not_imported():\n    pass\n",
    );
    app.deliver("pull_request", &app.pull_request_event("opened", REPO, 43))
        .await;
    app.github().wait_for_summary(REPO, 43, head, WAIT).await;
    let prompt = app.llm().received()[0].message("user");
    assert!(
        prompt.contains("`clamp`, defined in app/limits.py"),
        "{prompt}"
    );
    assert!(prompt.contains("Raises on NaN."), "{prompt}");
    assert!(
        !prompt.contains("def unrelated"),
        "only what the change calls: {prompt}"
    );
    assert!(!prompt.contains("app/other.py"), "{prompt}");
    // One tree and one file fetch for the import, nothing else of the repository.
    let fetched: Vec<String> = app
        .github()
        .requests()
        .iter()
        .map(|r| r.path_only().to_string())
        .filter(|p| p.contains("/contents/app/") || p.contains("/git/trees/"))
        .collect();
    assert_eq!(fetched.len(), 3, "{fetched:?}");
    assert!(
        !app.github()
            .issue_comments(REPO, 43)
            .iter()
            .any(|c| c.body.contains("the repository's other files")),
        "the whole tree was listed"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_file_list_github_cut_short_is_named_in_the_summary() {
    let app = TestApp::start().await;
    let head = "4444444444444444444444444444444444444444";
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 44,
            head_sha: head.into(),
            ..Default::default()
        },
    );
    app.github().set_pull_files(
        REPO,
        44,
        vec![PullFile::from_patch(
            "app/handler.py",
            "@@ -4,2 +4,3 @@\n def handle(value):\n+    checked = clamp(value, 0, 10)\n     return checked",
        )],
    );
    app.github().put_content(
        REPO,
        head,
        "app/handler.py",
        "from .limits import clamp\n\n\ndef handle(value):\n    checked = clamp(value, 0, 10)\n    return checked\n",
    );
    app.github().put_content(
        REPO,
        head,
        "app/limits.py",
        "def clamp(v, lo, hi):\n    return v\n",
    );
    // GitHub lists one entry of the repository's tree and says it cut the rest.
    app.github().set_tree_entry_limit(1);
    app.deliver("pull_request", &app.pull_request_event("opened", REPO, 44))
        .await;
    app.summary_says(REPO, 44, head, "the repository's other files")
        .await;
    app.finish().await;
}

#[tokio::test]
async fn a_chunk_the_model_cannot_answer_is_named_and_the_other_chunks_are_posted() {
    let app = app_with_small_budget().await;
    let files = large_pull(&app, 43);
    app.github().set_pull_files(REPO, 43, files);
    // The part that shows src/m0.rs only ever gets prose; the others a finding.
    app.llm().respond_with(|chat: &Chat| {
        let prompt = chat.message("user");
        if prompt.contains("## src/m0.rs") {
            return Reply::content("I looked at it and it seems mostly fine to me.");
        }
        let path = prompt
            .lines()
            .find_map(|l| l.strip_prefix("## "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or("none");
        Reply::findings(json!([{"path": path, "line": 1, "body": format!("Finding in {path}.")}]))
    });
    app.deliver("pull_request", &app.pull_request_event("opened", REPO, 43))
        .await;
    let reviews = app.github().wait_for_reviews(REPO, 43, 1, WAIT).await;
    let chats = app.llm().received();
    let parts: std::collections::BTreeSet<String> = chats
        .iter()
        .filter_map(|c| {
            let prompt = c.message("user");
            prompt
                .lines()
                .find_map(|l| l.strip_prefix("## "))
                .and_then(|l| l.split(' ').next())
                .map(str::to_string)
        })
        .collect();
    assert!(parts.len() >= 2, "split into parts: {parts:?}");
    // Every readable part's finding is posted; none about the unreadable part.
    assert_eq!(
        reviews[0].comments.len(),
        parts.len() - 1,
        "{:?}",
        reviews[0]
    );
    assert!(reviews[0].comments.iter().all(|c| c.path != "src/m0.rs"));
    let head = PullRequest::default().head_sha;
    let summary = app.github().wait_for_summary(REPO, 43, &head, WAIT).await;
    assert!(
        summary
            .body
            .contains("`src/m0.rs`: the model's replies could not be read"),
        "{}",
        summary.body
    );
    assert!(
        summary
            .body
            .contains("Part of this pull request was not reviewed")
    );
    // Nothing else was noted: the review itself carries the news.
    assert!(
        app.github()
            .issue_comments(REPO, 43)
            .iter()
            .all(|c| !c.body.contains("could not review")),
    );
    app.finish().await;
}

#[tokio::test]
async fn a_patch_that_cannot_be_read_is_named_not_taken_for_a_binary_file() {
    let app = TestApp::start().await;
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 44,
            ..Default::default()
        },
    );
    let mut broken = PullFile::from_patch("src/broken.rs", "@@ -1 +1 @@\n-a\n+b");
    broken.patch = Some("@@ this is not a hunk header @@\n+b".into());
    app.github().set_pull_files(
        REPO,
        44,
        vec![
            PullFile::from_patch("src/ok.rs", "@@ -1,2 +1,3 @@\n a\n+b\n c"),
            broken,
        ],
    );
    app.llm().respond_with(|_| {
        Reply::findings(json!([{"path": "src/ok.rs", "line": 2, "body": "Hm."}]))
    });
    app.deliver("pull_request", &app.pull_request_event("opened", REPO, 44))
        .await;
    app.github().wait_for_reviews(REPO, 44, 1, WAIT).await;
    let head = PullRequest::default().head_sha;
    let summary = app.github().wait_for_summary(REPO, 44, &head, WAIT).await;
    assert!(
        summary
            .body
            .contains("`src/broken.rs`: the patch could not be read"),
        "{}",
        summary.body
    );
    let prompt = app.llm().received()[0].message("user");
    assert!(!prompt.contains("## src/broken.rs"), "{prompt}");
    app.finish().await;
}

#[tokio::test]
async fn a_command_on_a_pr_whose_only_patch_cannot_be_read_names_the_file() {
    let app = TestApp::start().await;
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 45,
            ..Default::default()
        },
    );
    let mut broken = PullFile::from_patch("src/broken.rs", "@@ -1 +1 @@\n-a\n+b");
    broken.patch = Some("@@ this is not a hunk header @@\n+b".into());
    app.github().set_pull_files(REPO, 45, vec![broken]);
    app.comment(REPO, 45, "alice", "OWNER", "/describe").await;
    let comments = app
        .github()
        .wait_for_issue_comments(REPO, 45, 2, WAIT)
        .await;
    let answer = comments.last().expect("an answer");
    assert!(
        answer
            .body
            .contains("`src/broken.rs` (the patch could not be read"),
        "{}",
        answer.body
    );
    assert!(
        app.llm().received().is_empty(),
        "no model call about nothing"
    );
    app.finish().await;
}

/// A 24-line function with a one-line change near its end: its first lines are outside the
/// hunk, so only the enclosing code shows them.
fn long_function_change(app: &TestApp, number: u64, head: &str) {
    let mut lines = vec![
        "use std::collections::HashMap;".to_string(),
        String::new(),
        "pub fn invoice_total(items: &HashMap<String, u64>) -> u64 {".to_string(),
        "    let opening_balance_marker = 0;".to_string(),
    ];
    lines.extend((0..16).map(|i| format!("    let step_{i} = {i};")));
    lines.extend([
        "    let sum: u64 = items.values().sum();".to_string(),
        "    sum + opening_balance_marker + step_0 + step_15".to_string(),
        "}".to_string(),
    ]);
    let content = lines.join("\n") + "\n";
    app.github().add_pull(
        REPO,
        PullRequest {
            number,
            head_sha: head.into(),
            ..Default::default()
        },
    );
    let patch = "@@ -18,4 +18,4 @@\n     let step_14 = 14;\n     let step_15 = 15;\n-    let sum: u64 = items.values().count() as u64;\n+    let sum: u64 = items.values().sum();\n     sum + opening_balance_marker + step_0 + step_15";
    app.github().set_pull_files(
        REPO,
        number,
        vec![PullFile::from_patch("src/bill.rs", patch)],
    );
    app.github().put_content(REPO, head, "src/bill.rs", content);
}

async fn review_prompt_with_model_of(params: Option<u64>, scope_lines: Option<&str>) -> String {
    let world = World::new().await;
    let mut options = world.options();
    if let Some(lines) = scope_lines {
        options = options.set("CRITIC_REVIEW__MAX_SCOPE_LINES", lines);
    }
    let app = world.start_with(options).await;
    if let Some(params) = params {
        app.llm().list_as_llama_cpp(params);
    }
    let head = "7777777777777777777777777777777777777777";
    long_function_change(&app, 42, head);
    app.deliver("pull_request", &app.pull_request_event("opened", REPO, 42))
        .await;
    app.github().wait_for_summary(REPO, 42, head, WAIT).await;
    let prompt = app.llm().received()[0].message("user");
    assert!(prompt.contains("## src/bill.rs (modified)"), "{prompt}");
    assert!(prompt.contains("items.values().sum()"), "{prompt}");
    assert_eq!(app.llm().models_asked(), 1, "the server is asked once");
    app.finish().await;
    prompt
}

#[tokio::test]
async fn a_small_model_on_llama_cpp_reads_the_hunks_without_their_enclosing_code() {
    let prompt = review_prompt_with_model_of(Some(1_777_088_000), None).await;
    assert!(!prompt.contains("opening_balance_marker = 0"), "{prompt}");
    assert!(!prompt.contains("Enclosing code at head"), "{prompt}");
}

#[tokio::test]
async fn a_larger_or_unknown_model_reads_the_whole_enclosing_function() {
    for params in [Some(7_615_616_512), None] {
        let prompt = review_prompt_with_model_of(params, None).await;
        assert!(
            prompt.contains("Enclosing code at head"),
            "{params:?}: {prompt}"
        );
        assert!(
            prompt.contains("    4  ") && prompt.contains("opening_balance_marker = 0"),
            "{params:?}: {prompt}"
        );
    }
}

#[tokio::test]
async fn a_number_of_scope_lines_set_holds_whatever_the_model() {
    let prompt = review_prompt_with_model_of(Some(1_777_088_000), Some("200")).await;
    assert!(prompt.contains("opening_balance_marker = 0"), "{prompt}");
}
