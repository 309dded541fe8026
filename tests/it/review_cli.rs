//! `critic review`: the real binary on a temporary git repository, against the fake model.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::support::git::{git, write};
use crate::support::llm::{FakeLlm, Reply};

const V1: &str = "pub fn ratio(a: u32, b: u32) -> u32 {\n    a / b\n}\n";
const V2: &str = "pub fn ratio(a: u32, b: u32) -> u32 {\n    let token = \"ghp_0123456789abcdefghijklmnopqrstuvwxyzAB\";\n    a / (b - 1)\n}\n";
const SECRET: &str = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";

/// Two commits on `main`; the second changes `src/calc.rs`.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    write(d, "src/calc.rs", V1);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "first"]);
    write(d, "src/calc.rs", V2);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "Ratio of the rest"]);
    dir
}

fn model() -> Reply {
    Reply::findings(json!([
        {"path": "src/calc.rs", "line": 3, "severity": "critical", "category": "bug",
         "title": "Underflow when b is 0", "body": "`b - 1` underflows for `b == 0`.",
         "suggestion": "    a / b.saturating_sub(1).max(1)"},
        {"path": "src/calc.rs", "line": 40, "severity": "warning", "category": "style",
         "title": "Far away", "body": "Not a line of this change."}
    ]))
}

async fn critic(llm_url: &str, dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_critic"))
        .arg("review")
        .arg(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("CRITIC_LLM__BASE_URL", llm_url)
        .env("CRITIC_LLM__MODEL", "fake-model")
        .env("CRITIC_LLM__API_KEY", "sk-test-key")
        .env("CRITIC_LLM__PROVIDER", "openai-compatible")
        .output()
        .await
        .expect("critic runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_local_change_is_reviewed_in_every_format_with_no_github() {
    let llm = FakeLlm::start().await;
    llm.respond_with(|_| model());
    let dir = repo();

    let out = critic(
        llm.url(),
        dir.path(),
        &["--base", "main~1", "--format", "json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("stdout is the JSON alone");
    assert_eq!(report["version"], 1);
    let findings = report["findings"].as_array().expect("findings");
    let placed: Vec<(&str, &str, u64)> = findings
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap_or_default(),
                f["placement"].as_str().unwrap_or_default(),
                f["end_line"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        placed,
        [
            ("critical", "inline", 3),
            ("warning", "not_on_changed_line", 40)
        ]
    );
    assert_eq!(
        findings[0]["suggestion"], "    a / b.saturating_sub(1).max(1)",
        "{report}"
    );
    assert!(
        stderr(&out).contains("1 of 1 request(s) finished ("),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("1 file(s) to review in 1 request(s)"),
        "{}",
        stderr(&out)
    );
    let prompt = llm.received()[0].message("user");
    assert!(prompt.contains("a / (b - 1)"), "{prompt}");
    assert!(!prompt.contains(SECRET), "the secret reached the model");

    let text = critic(llm.url(), dir.path(), &["--base", "main~1"]).await;
    let text_out = stdout(&text);
    assert!(
        text_out.contains("src/calc.rs:3: critical (bug): Underflow when b is 0"),
        "{text_out}"
    );
    assert!(text_out.contains("(not on a changed line)"), "{text_out}");
    assert!(
        text_out.contains(">     3 |     a / (b - 1)"),
        "the cited line is quoted: {text_out}"
    );
    assert!(
        text_out.contains("+    a / b.saturating_sub(1).max(1)"),
        "{text_out}"
    );
    assert!(
        !text_out.contains("\x1b["),
        "no colour when stdout is not a terminal"
    );

    let md = critic(
        llm.url(),
        dir.path(),
        &["--base", "main~1", "--format", "markdown"],
    )
    .await;
    let md_out = stdout(&md);
    assert!(md_out.contains("## Critic summary"), "{md_out}");
    assert!(md_out.contains("**2 new finding(s)**"), "{md_out}");
    assert!(md_out.contains("```suggestion"), "{md_out}");

    let sarif = critic(
        llm.url(),
        dir.path(),
        &["--base", "main~1", "--format", "sarif"],
    )
    .await;
    let sarif: Value = serde_json::from_str(&stdout(&sarif)).expect("SARIF is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    assert_valid_sarif(&sarif);
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["level"], "error");
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        3
    );
    assert_eq!(
        results[0]["fixes"][0]["artifactChanges"][0]["replacements"][0]["insertedContent"]["text"],
        "    a / b.saturating_sub(1).max(1)\n"
    );
    assert_eq!(results[1]["properties"]["onChangedLine"], false);
}

#[tokio::test]
async fn fail_on_sets_the_exit_status() {
    let llm = FakeLlm::start().await;
    llm.respond_with(|_| model());
    let dir = repo();
    let critical = critic(
        llm.url(),
        dir.path(),
        &["--base", "main~1", "--fail-on", "critical"],
    )
    .await;
    assert_eq!(critical.status.code(), Some(1), "{}", stderr(&critical));
    llm.respond_with(|_| {
        Reply::findings(
            json!([{"path": "src/calc.rs", "line": 3, "severity": "nit", "body": "Naming."}]),
        )
    });
    let nit = critic(
        llm.url(),
        dir.path(),
        &["--base", "main~1", "--fail-on", "warning"],
    )
    .await;
    assert_eq!(
        nit.status.code(),
        Some(0),
        "a nit is below warning: {}",
        stderr(&nit)
    );
}

#[tokio::test]
async fn a_base_that_does_not_resolve_and_an_unreachable_model_are_errors_that_say_so() {
    let llm = FakeLlm::start().await;
    llm.respond_with(|_| model());
    let dir = repo();
    let bad = critic(llm.url(), dir.path(), &["--base", "no-such-branch"]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("`no-such-branch` is not a commit"),
        "{}",
        stderr(&bad)
    );
    assert!(stdout(&bad).is_empty(), "nothing on stdout on an error");

    // No base named and none to find: the repository's only branch is `trunk`.
    let lone = tempfile::tempdir().expect("tempdir");
    git(lone.path(), &["init", "-q", "-b", "trunk"]);
    write(lone.path(), "a.txt", "a\n");
    git(lone.path(), &["add", "-A"]);
    git(lone.path(), &["commit", "-q", "-m", "one"]);
    let none = critic(llm.url(), lone.path(), &[]).await;
    assert_eq!(none.status.code(), Some(2));
    assert!(stderr(&none).contains("--base"), "{}", stderr(&none));

    // Nothing listens at the model's address.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let down = critic(&closed, dir.path(), &["--base", "main~1"]).await;
    assert_eq!(down.status.code(), Some(2), "{}", stderr(&down));
    assert!(
        stderr(&down).contains(&closed),
        "the URL is named: {}",
        stderr(&down)
    );
    assert!(!stderr(&down).contains("ollama pull"), "{}", stderr(&down));

    // No model configured at all: the default local Ollama at 127.0.0.1:11434, which does
    // not run on a test machine; the message says how to get it.
    let default = tokio::process::Command::new(env!("CARGO_BIN_EXE_critic"))
        .arg("review")
        .arg(dir.path())
        .args(["--base", "main~1"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .await
        .expect("critic runs");
    assert_eq!(default.status.code(), Some(2));
    assert!(
        stderr(&default).contains("ollama pull qwen2.5-coder:7b"),
        "{}",
        stderr(&default)
    );
}

#[tokio::test]
async fn the_default_base_is_main_when_there_is_no_remote() {
    let llm = FakeLlm::start().await;
    llm.respond_with(|_| model());
    let dir = repo();
    git(dir.path(), &["checkout", "-q", "-b", "feature", "main~1"]);
    write(dir.path(), "src/calc.rs", V2);
    git(dir.path(), &["commit", "-q", "-am", "On a branch"]);
    let out = critic(llm.url(), dir.path(), &["--format", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json");
    // main is ahead of the branch's fork point: the diff starts at the merge base, so the
    // branch's own change is what is reviewed.
    assert_eq!(report["files"], 1, "{report}");
    assert_eq!(report["findings"][0]["end_line"], 3, "{report}");
}

fn assert_valid_sarif(log: &Value) {
    let errors = sarif_errors(log);
    assert!(
        errors.is_empty(),
        "not valid SARIF 2.1.0: {errors:#?}\n{log:#}"
    );
}

/// What the SARIF 2.1.0 schema (vendored in `tests/fixtures/sarif`) finds wrong in `log`.
fn sarif_errors(log: &Value) -> Vec<String> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sarif/sarif-schema-2.1.0.json");
    let schema: Value =
        serde_json::from_slice(&std::fs::read(path).expect("schema")).expect("schema is JSON");
    // The published schema's own `language` patterns have a stray `]` that the validator's
    // check of the schema refuses; Critic writes no `language`, so those patterns are dropped
    // here rather than the whole schema left unchecked.
    let mut schema = schema;
    drop_pattern(&mut schema, "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    validator
        .iter_errors(log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn drop_pattern(schema: &mut Value, pattern: &str) {
    match schema {
        Value::Object(map) => {
            if map.get("pattern").and_then(Value::as_str) == Some(pattern) {
                map.remove("pattern");
            }
            map.values_mut().for_each(|v| drop_pattern(v, pattern));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| drop_pattern(v, pattern)),
        _ => {}
    }
}

#[test]
fn the_schema_check_refuses_a_log_that_is_not_sarif() {
    // The check must be able to fail: a level SARIF does not know, and no `runs`.
    let bad = json!({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Critic"}}, "results": [{"message": {"text": "x"}, "level": "fatal"}]}]});
    let errors = sarif_errors(&bad);
    assert!(errors.iter().any(|e| e.contains("fatal")), "{errors:?}");
    let errors = sarif_errors(&json!({"version": "2.1.0"}));
    assert!(errors.iter().any(|e| e.contains("runs")), "{errors:?}");
}

#[tokio::test]
async fn a_pull_request_is_reviewed_dry_through_the_app_and_nothing_is_written() {
    use crate::support::app::{REPO, World};
    use crate::support::github::{PullFile, PullRequest};
    let world = World::new().await;
    world.github.add_pull(
        REPO,
        PullRequest {
            number: 31,
            title: "Ratio".into(),
            ..Default::default()
        },
    );
    world.github.set_pull_files(
        REPO,
        31,
        vec![PullFile::from_patch(
            "a.txt",
            "@@ -0,0 +1,2 @@\n+hello\n+world",
        )],
    );
    world.llm.respond_with(|_| {
        Reply::findings(json!([{"path": "a.txt", "line": 2, "severity": "warning", "body": "Spelling?"},
                               {"path": "a.txt", "line": 9, "severity": "nit", "body": "Not a changed line."}]))
    });
    world.github.clear_requests();
    let url = format!("{}/{REPO}/pull/31", world.github.url());
    let run = |dry: bool| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_critic"));
        cmd.arg("review").arg(&url);
        if dry {
            cmd.arg("--dry-run");
        }
        cmd.args(["--format", "json"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(
                world
                    .options()
                    .set("CRITIC_GITHUB__WEB_URL", &world.github.url())
                    .env,
            )
            .output()
    };
    let refused = run(false).await.expect("critic runs");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("--dry-run"),
        "{}",
        stderr(&refused)
    );

    let out = run(true).await.expect("critic runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json");
    let placed: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["placement"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(placed, ["inline", "not_on_changed_line"], "{report}");
    assert_eq!(report["head"], PullRequest::default().head_sha);
    let writes: Vec<String> = world
        .github
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.path.ends_with("/access_tokens"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "a dry run wrote to GitHub: {writes:?}");
    assert!(world.github.reviews(REPO, 31).is_empty());
    assert!(world.github.issue_comments(REPO, 31).is_empty());

    // With a person's GITHUB_TOKEN and no App settings at all.
    world
        .github
        .add_personal_token("ghp_person", crate::support::app::INSTALLATION);
    world.github.clear_requests();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_critic"))
        .arg("review")
        .arg(&url)
        .args(["--dry-run", "--format", "json"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GITHUB_TOKEN", "ghp_person")
        .env("CRITIC_GITHUB__API_URL", world.github.url())
        .env("CRITIC_GITHUB__WEB_URL", world.github.url())
        .env("CRITIC_LLM__BASE_URL", world.llm.url())
        .env("CRITIC_LLM__MODEL", "fake-model")
        .output()
        .await
        .expect("critic runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(report["findings"].as_array().map(Vec::len), Some(2));
    assert!(
        world.github.requests().iter().all(|r| r.method == "GET"),
        "only reads with a person's token"
    );
}
