//! The review pipeline as one call, without GitHub or a queue: a change in a local git
//! repository, reviewed against the fake model. What `critic review` and `critic eval` run.

use critic::config::Config;
use critic::llm::{Llm, Meter};
use critic::review::{self, Change, LocalSource, Pipeline, Prompts, Source, SourceError};
use serde_json::json;

use crate::support::git::{git, write};
use crate::support::llm::{FakeLlm, Reply};

const CALC_V1: &str = "pub fn ratio(a: u32, b: u32) -> u32 {\n    a / b\n}\n";
const CALC_V2: &str = "pub fn ratio(a: u32, b: u32) -> u32 {\n    let token = \"ghp_0123456789abcdefghijklmnopqrstuvwxyzAB\";\n    a / (b - 1)\n}\n";

/// A repository with two commits on `main`: the second changes `src/calc.rs` (with a
/// secret), renames `old.txt`, deletes `gone.txt` and adds `src/new.rs`.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    write(d, "src/calc.rs", CALC_V1);
    write(d, "old.txt", "one\ntwo\nthree\nfour\nfive\n");
    write(d, "gone.txt", "bye\n");
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "first"]);
    write(d, "src/calc.rs", CALC_V2);
    std::fs::rename(d.join("old.txt"), d.join("moved.txt")).expect("rename");
    std::fs::remove_file(d.join("gone.txt")).expect("remove");
    write(d, "src/new.rs", "pub fn new() {}\n");
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "second"]);
    dir
}

fn config(llm: &FakeLlm) -> Config {
    let key = crate::support::github::app_private_key_pem();
    Config::load_from(
        None,
        [
            ("CRITIC_GITHUB__APP_ID", "1"),
            ("CRITIC_GITHUB__PRIVATE_KEY", key.as_str()),
            ("CRITIC_GITHUB__WEBHOOK_SECRET", "unused"),
            ("CRITIC_LLM__BASE_URL", llm.url()),
            ("CRITIC_LLM__MODEL", "fake-model"),
            ("CRITIC_LLM__API_KEY", "sk-test-key"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .expect("settings")
}

#[tokio::test]
async fn a_local_source_reads_the_change_as_github_lists_a_pull_requests_files() {
    let dir = repo();
    let source = LocalSource::open(dir.path(), "HEAD~1", "HEAD")
        .await
        .expect("opens");
    let files = source.changed_files().await.expect("files");
    let mut seen: Vec<(String, String, Option<String>)> = files
        .iter()
        .map(|f| {
            (
                f.file.filename.clone(),
                f.file.status.to_string(),
                f.file.previous_filename.clone(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("gone.txt".into(), "removed".into(), None),
            ("moved.txt".into(), "renamed".into(), Some("old.txt".into())),
            ("src/calc.rs".into(), "modified".into(), None),
            ("src/new.rs".into(), "added".into(), None),
        ]
    );
    let calc = files
        .iter()
        .find(|f| f.file.filename == "src/calc.rs")
        .expect("calc");
    assert_eq!((calc.file.additions, calc.file.deletions), (2, 1));
    let patch = calc.patch.as_ref().expect("parsed patch");
    assert!(patch.is_commentable(critic::domain::Side::Right, 3));
    assert!(
        calc.file
            .patch
            .as_deref()
            .is_some_and(|p| p.starts_with("@@"))
    );

    assert_eq!(
        source.file("src/calc.rs").await.expect("read"),
        Some(CALC_V2.as_bytes().to_vec())
    );
    assert_eq!(source.file("gone.txt").await.expect("read"), None);
    let tree = source.tree().await.expect("tree");
    let mut paths: Vec<&str> = tree.files.iter().map(|(p, _)| p.as_str()).collect();
    paths.sort();
    assert_eq!(paths, ["moved.txt", "src/calc.rs", "src/new.rs"]);
    assert_eq!(
        tree.files
            .iter()
            .find(|(p, _)| p == "src/new.rs")
            .and_then(|(_, s)| *s),
        Some(16)
    );
}

#[tokio::test]
async fn a_revision_that_does_not_resolve_is_named() {
    let dir = repo();
    let err = LocalSource::open(dir.path(), "no-such-branch", "HEAD")
        .await
        .expect_err("no such base");
    assert!(
        matches!(&err, SourceError::Local(why) if why.contains("`no-such-branch` is not a commit")),
        "{err}"
    );
    let not_a_repo = tempfile::tempdir().expect("tempdir");
    let err = LocalSource::open(not_a_repo.path(), "main", "HEAD")
        .await
        .expect_err("not a repository");
    assert!(matches!(err, SourceError::Local(_)), "{err}");
}

#[tokio::test]
async fn the_pipeline_reviews_a_local_change_with_no_github() {
    let llm = FakeLlm::start().await;
    llm.respond_with(|_| {
        Reply::findings(json!([
            {"path": "src/calc.rs", "line": 3, "severity": "critical", "category": "bug",
             "title": "Underflow when b is 0", "body": "`b - 1` underflows for `b == 0`."},
            {"path": "src/calc.rs", "line": 40, "severity": "warning", "body": "No such line."}
        ]))
    });
    let config = config(&llm);
    let client = Llm::new(&config.llm).expect("llm");
    let prompts = Prompts::new().expect("prompts");
    let dir = repo();
    let source = LocalSource::open(dir.path(), "main~1", "main")
        .await
        .expect("opens");
    let policy = critic::config::repo::RepoPolicy::from_server(&config.settings.review);
    let meter = Meter::new();
    let reviewed = review::pipeline::run(
        Pipeline {
            settings: &config.settings.review,
            prompts: &prompts,
            llm: &client,
        },
        &source,
        &Change {
            repo: "local/repo",
            title: "Ratio",
            description: "",
            policy: &policy,
            since: None,
            installation: 0,
            meter: &meter,
            progress: None,
        },
    )
    .await
    .expect("reviewed");

    assert_eq!(reviewed.files.len(), 4);
    assert_eq!(reviewed.parts_read, 1);
    assert!(reviewed.unusable.is_none());
    assert_eq!(
        reviewed
            .findings
            .iter()
            .map(|f| (f.path.as_str(), f.line))
            .collect::<Vec<_>>(),
        [("src/calc.rs", 3), ("src/calc.rs", 40)],
        "validation keeps a finding off the diff: placing it is the poster's business"
    );
    assert_eq!(reviewed.model, "openai-compatible/fake-model");
    assert!(
        reviewed
            .not_reviewed
            .iter()
            .any(|(p, why)| p == "gone.txt" && why.contains("deleted")),
        "{:?}",
        reviewed.not_reviewed
    );
    let chats = llm.received();
    assert_eq!(chats.len(), 1);
    let prompt = chats[0].message("user");
    assert!(prompt.contains("a / (b - 1)"), "{prompt}");
    assert!(
        !prompt.contains("ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"),
        "the secret reached the model"
    );
    assert!(meter.total().0.prompt_tokens > 0);
}
