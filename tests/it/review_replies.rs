//! End to end with a model that answers badly (issue 13): fenced, cut off at the output
//! limit, empty, prose, the wrong shape. Every usable part of its answers reaches the review;
//! a model that never answers usefully gets a note and a completed check run.

use std::path::Path;

use critic::domain::JobState;
use serde_json::{Value, json};

use crate::support::app::{INSTALLATION, REPO, TestApp, WAIT};
use crate::support::github::{Scenario, scenario_dir};
use crate::support::llm::{Chat, Reply};

/// A real one-file pull request (tokio-rs/mini-redis #24): new lines 135 and 184-189 of
/// `src/server.rs` are in its diff.
const SCENARIO: &str = "tokio-rs__mini-redis__83cdedf34f";
const PATH: &str = "src/server.rs";

/// `dir` is [`SCENARIO`]'s folder, looked up before the test starts its app.
fn load(app: &TestApp, dir: &Path, number: u64) -> Scenario {
    let s = app.github().load_scenario(dir, REPO, number, INSTALLATION);
    assert!(
        s.files.iter().any(|f| f.filename == PATH),
        "{SCENARIO} changed {PATH}"
    );
    s
}

fn finding(line: u32, code: &str, title: &str, body: &str) -> Value {
    json!({"path": PATH, "line": line, "start_line": null, "severity": "warning", "category": "bug",
        "title": title, "body": body, "code": code, "suggestion": null})
}

fn channel_finding() -> Value {
    finding(
        135,
        "let (shutdown_complete_tx, shutdown_complete_rx) = mpsc::channel(1);",
        "Capacity is load-bearing",
        "`mpsc::channel(0)` panics at startup; say in a comment why the capacity is 1.",
    )
}

fn comment_finding() -> Value {
    finding(
        185,
        "// ` explicitly drop shutdown_transmitter`. This is important, as the",
        "Stray backtick in comment",
        "The comment has a stray backtick and names `shutdown_transmitter`, which does not exist.",
    )
}

fn drop_finding() -> Value {
    finding(
        189,
        "drop(shutdown_complete_tx);",
        "Dropped sender",
        "Dropping the listener's sender here is what lets the wait below finish.",
    )
}

/// The `response_format` type a request asked for, if any.
fn format_of(chat: &Chat) -> Option<String> {
    chat.body["response_format"]["type"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test]
async fn every_finding_the_replies_carried_is_posted_despite_a_cut_off_an_empty_and_a_prose_reply()
{
    let Some(dir) = scenario_dir(SCENARIO) else {
        return;
    };
    let app = TestApp::start().await;
    let s = load(&app, &dir, 31);
    // Cut off at the output limit in a fence, degenerating in its second finding: the first
    // finding is complete.
    let degenerate = "The sender must be dropped. ".repeat(200);
    app.llm().push(Reply::cut_off(&format!(
        "```json\n{{\"summary\": \"Raises the shutdown channel's capacity to 1.\", \"walkthrough\": [], \"findings\": [{}, {{\"path\": \"{PATH}\", \"line\": 187, \"body\": \"{degenerate}",
        channel_finding()
    )));
    app.llm().push(Reply::content(""));
    app.llm().push(Reply::content(
        "I have reported everything important already.",
    ));
    // The valid answer holds the rest: line 135 can only come from the cut-off reply.
    app.llm()
        .push(Reply::json(json!({"summary": "", "walkthrough": [],
        "findings": [comment_finding(), drop_finding()]})));

    app.deliver(
        "pull_request",
        &app.pull_request_event("opened", REPO, s.number),
    )
    .await;
    let reviews = app.github().wait_for_reviews(REPO, s.number, 1, WAIT).await;
    let jobs = app.wait_idle().await;
    assert_eq!(jobs[0].state, JobState::Done, "{jobs:?}");

    let review = &reviews[0];
    assert_eq!(review.commit_id, s.head_sha);
    let mut lines: Vec<u64> = review.comments.iter().map(|c| c.line).collect();
    lines.sort();
    assert_eq!(lines, [135, 185, 189], "{}", review.body);
    assert!(
        review
            .comments
            .iter()
            .any(|c| c.body.contains("Capacity is load-bearing")),
        "the cut-off reply's complete finding"
    );
    let summary = app
        .github()
        .issue_comments(REPO, s.number)
        .into_iter()
        .map(|c| c.body)
        .collect::<String>();
    assert!(
        summary.contains("Raises the shutdown channel's capacity to 1."),
        "the cut-off reply's summary: {summary}"
    );
    assert!(
        !summary.contains("cut off"),
        "the rest came, so the review is whole: {summary}"
    );
    assert!(
        !review.body.contains("The sender must be dropped"),
        "the unfinished finding is dropped: {}",
        review.body
    );

    let chats = app.llm().received();
    assert_eq!(chats.len(), 4, "cut off, empty, prose, valid");
    // Asked only for the rest, shown the complete part without its degenerate tail.
    let shown = chats[1].body["messages"][2]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(shown.contains("Capacity is load-bearing"), "{shown}");
    assert!(!shown.contains("The sender must be dropped"), "{shown}");
    assert!(
        chats[0].message("user").contains(
            "  135 +    let (shutdown_complete_tx, shutdown_complete_rx) = mpsc::channel(1);"
        ),
        "the real diff is in the prompt: {}",
        chats[0].message("user")
    );
    let last_user = |chat: &Chat| {
        chat.body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(last_user(&chats[1]).contains("only what is still missing"));
    // The empty reply was called again as it was, not shown to the model.
    assert_eq!(chats[2].body, chats[1].body);
    // The prose was shown with the reason.
    assert!(last_user(&chats[3]).contains("no JSON object"));
    assert_eq!(format_of(&chats[0]).as_deref(), Some("json_object"));
    app.finish().await;
}

#[tokio::test]
async fn a_model_that_never_answers_usefully_gets_a_note_and_a_completed_check_run() {
    let Some(dir) = scenario_dir(SCENARIO) else {
        return;
    };
    let app = TestApp::start().await;
    let s = load(&app, &dir, 32);
    // Cut off before any finding is complete, then the wrong shape, then prose.
    app.llm().push(Reply::cut_off(&format!(
        "{{\"summary\": \"Fine.\", \"findings\": [{{\"path\": \"{PATH}\", \"line\": 13"
    )));
    app.llm().push(Reply::json(
        json!({"issues": [{"file": PATH, "text": "x"}]}),
    ));
    app.llm()
        .push(Reply::content("The change looks good to me."));
    app.deliver(
        "pull_request",
        &app.pull_request_event("opened", REPO, s.number),
    )
    .await;
    let jobs = app.wait_idle().await;
    assert_eq!(
        (jobs[0].state, jobs[0].attempts),
        (JobState::Done, 1),
        "{jobs:?}"
    );
    assert!(app.github().reviews(REPO, s.number).is_empty());

    let chats = app.llm().received();
    assert_eq!(chats.len(), 3, "the first call and two repairs");
    // The second repair steps the structured-output mode down: the schema is in the prompt.
    let formats: Vec<Option<String>> = chats.iter().map(format_of).collect();
    assert_eq!(
        formats,
        [Some("json_object".into()), Some("json_object".into()), None]
    );

    let notes = app.github().issue_comments(REPO, s.number);
    assert_eq!(notes.len(), 1);
    let note = &notes[0].body;
    assert!(
        note.contains("the model's replies could not be read (openai-compatible/fake-model)"),
        "{note}"
    );
    assert!(note.contains("no JSON object"), "the last reason: {note}");
    assert!(note.contains(&s.head_sha[..7]), "{note}");

    let runs = app.github().check_runs(REPO);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "completed");
    assert_eq!(runs[0].conclusion.as_deref(), Some("neutral"));
    let output = runs[0].output.as_ref().expect("output");
    assert_eq!(output.title, "Not reviewed");
    assert!(
        output
            .summary
            .contains("could not be read (openai-compatible/fake-model)"),
        "{}",
        output.summary
    );
    app.finish().await;
}

#[tokio::test]
async fn the_complete_finding_of_a_cut_off_reply_is_posted_when_the_rest_never_comes() {
    let Some(dir) = scenario_dir(SCENARIO) else {
        return;
    };
    let app = TestApp::start().await;
    let s = load(&app, &dir, 33);
    // A small model's real failure: the first finding, then one sentence until the limit,
    // and no better when asked for the rest.
    let degenerate = "The sender must be dropped. ".repeat(200);
    app.llm().push(Reply::cut_off(&format!(
        "{{\"summary\": \"Raises the capacity.\", \"findings\": [{}, {{\"path\": \"{PATH}\", \"line\": 187, \"body\": \"{degenerate}",
        comment_finding()
    )));
    app.llm().respond_with(move |_| {
        Reply::cut_off(&format!("{{\"findings\": [{{\"body\": \"{degenerate}"))
    });
    app.deliver(
        "pull_request",
        &app.pull_request_event("opened", REPO, s.number),
    )
    .await;
    let reviews = app.github().wait_for_reviews(REPO, s.number, 1, WAIT).await;
    let jobs = app.wait_idle().await;
    assert_eq!(jobs[0].state, JobState::Done, "{jobs:?}");
    let lines: Vec<u64> = reviews[0].comments.iter().map(|c| c.line).collect();
    assert_eq!(lines, [185], "{}", reviews[0].body);
    assert_eq!(
        app.llm().received().len(),
        4,
        "the first call, the ask for the rest, two repairs"
    );
    let summary = app
        .github()
        .issue_comments(REPO, s.number)
        .into_iter()
        .map(|c| c.body)
        .collect::<String>();
    assert!(
        summary.contains("was cut off at its output limit")
            && summary.contains("openai-compatible/fake-model"),
        "the review says it is partial, and whose: {summary}"
    );
    app.finish().await;
}
