//! All forty real pull requests of the test data (`scenarios/`) get exactly one accepted
//! review from a scripted model that cites real lines (and one line outside the diff).

use critic::domain::JobState;
use serde_json::json;

use crate::support::app::{INSTALLATION, REPO, WAIT, World};
use crate::support::github::scenario_dirs;
use crate::support::llm::{Chat, Reply};
use crate::support::test_env;

/// Plays a model that read the prompt: one finding on the first added line it was shown, one
/// on a line far outside any hunk of the same file.
fn scripted_model(chat: &Chat) -> Reply {
    Reply::findings(match chat.first_added_line() {
        Some((p, line)) => json!([
            {"path": p, "line": line, "severity": "warning", "category": "bug", "body": "Check this added line."},
            {"path": p, "line": 999_999, "severity": "nit", "body": "Far outside the diff."}
        ]),
        None => json!([]),
    })
}

#[tokio::test]
async fn every_scenario_gets_exactly_one_accepted_review() {
    let Some(scenarios) = test_env::data("scenarios") else {
        return;
    };
    let world = World::new().await;
    let app = world
        .start_with(world.options().set("CRITIC_WORKER__CONCURRENCY", "4"))
        .await;
    app.llm().respond_with(scripted_model);
    let dirs = scenario_dirs(&scenarios);
    assert_eq!(dirs.len(), 40);
    let mut loaded = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let number = 100 + i as u64;
        let s = app.github().load_scenario(dir, REPO, number, INSTALLATION);
        loaded.push((s.name.clone(), s));
    }
    for (_, s) in &loaded {
        let (status, _) = app
            .deliver(
                "pull_request",
                &app.pull_request_event("opened", REPO, s.number),
            )
            .await;
        assert_eq!(status, 202);
    }
    for (name, s) in &loaded {
        let reviews = app.github().wait_for_reviews(REPO, s.number, 1, WAIT).await;
        assert_eq!(reviews.len(), 1, "{name}");
        let r = &reviews[0];
        assert_eq!(
            (r.state.as_str(), r.commit_id.as_str()),
            ("COMMENTED", s.head_sha.as_str()),
            "{name}"
        );
        let has_added_line = s.files.iter().any(|f| {
            f.patch
                .as_deref()
                .is_some_and(|p| p.lines().any(|l| l.starts_with('+')))
        });
        if has_added_line {
            assert_eq!(
                r.comments.len(),
                1,
                "{name}: the finding on an added line is inline"
            );
            assert!(
                r.body.contains("Far outside the diff"),
                "{name}: {}",
                r.body
            );
        }
    }
    let jobs = app.wait_idle().await;
    assert!(jobs.iter().all(|j| j.state == JobState::Done), "{jobs:?}");
    for (name, s) in &loaded {
        assert_eq!(app.github().reviews(REPO, s.number).len(), 1, "{name}");
        let summaries: Vec<_> = app
            .github()
            .issue_comments(REPO, s.number)
            .into_iter()
            .filter(|c| c.body.starts_with("<!-- critic:summary -->"))
            .collect();
        assert_eq!(summaries.len(), 1, "{name}: one summary");
        assert!(
            summaries[0].body.contains("new finding(s)"),
            "{name}: {}",
            summaries[0].body
        );
    }
    let rejected: Vec<_> = app
        .github()
        .requests()
        .into_iter()
        .filter(|r| r.status == 422)
        .collect();
    assert!(rejected.is_empty(), "GitHub refused: {rejected:?}");
    app.finish().await;
}
