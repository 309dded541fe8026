//! `critic eval --tests`: the real binary builds three cases of one synthetic Rust crate (a
//! fix to a paging function), a scripted model suggests a test for each (one that passes, one
//! that fails, one that does not compile, beside one that does not parse), and the tests run
//! there with `cargo test`. The coverage command is a script that writes an LCOV report, so
//! the share of the change's lines covered is known by hand: the changed line is line 2.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::git::{git, head_sha, write};
use crate::support::llm::{Chat, FakeLlm, Reply};

/// The crate with its fix; returns (base, head).
fn pager(dir: &Path) -> (String, String) {
    git(dir, &["init", "-q", "-b", "main"]);
    write(
        dir,
        "Cargo.toml",
        "[package]\nname = \"pager\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    write(dir, ".gitignore", "target/\n");
    // Line 2 is covered when the suggested tests are in place (they are named in
    // CRITIC_TEST_FILES), not without them.
    write(
        dir,
        "cov.sh",
        "hits=0\n[ -n \"$CRITIC_TEST_FILES\" ] && hits=1\nprintf 'SF:%s/src/lib.rs\\nDA:1,1\\nDA:2,%s\\nend_of_record\\n' \"$PWD\" \"$hits\" > cov.info\n",
    );
    write(
        dir,
        "src/lib.rs",
        "pub fn pages(n: u32, size: u32) -> u32 {\n    n / size\n}\n",
    );
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "pages"]);
    let base = head_sha(dir);
    write(
        dir,
        "src/lib.rs",
        "pub fn pages(n: u32, size: u32) -> u32 {\n    (n + size - 1) / size\n}\n",
    );
    git(dir, &["commit", "-qam", "round pages up"]);
    (base, head_sha(dir))
}

fn test(name: &str, body: &str) -> Value {
    json!({"path": "src/lib.rs", "name": name, "covers": "rounding up",
        "code": format!("#[test]\nfn {name}() {{\n    {body}\n}}\n")})
}

#[tokio::test]
async fn suggested_tests_are_run_and_reported_passing_failing_and_not_compiling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repos = dir.path().join("repos");
    let repo = repos.join("acme+pager");
    std::fs::create_dir_all(&repo).expect("mkdir");
    let (base, head) = pager(&repo);
    let mut list = String::new();
    for name in ["passes", "fails", "broken"] {
        list.push_str(&format!(
            r#"
[[case]]
name = "{name}"
repo = "acme/pager"
base = "{base}"
head = "{head}"
title = "Round pages up ({name})"
licence = "MIT"
language = "rust"
test = {{ cmd = "cargo test --offline", build = "cargo test --offline --no-run", coverage = "sh cov.sh", report = "cov.info" }}
"#
        ));
    }
    let cases = dir.path().join("cases.toml");
    std::fs::write(&cases, list).expect("list");
    let llm = FakeLlm::start().await;
    llm.respond_with(|chat: &Chat| {
        let user = chat.message("user");
        let tests = if user.contains("(passes)") {
            vec![test("rounds_up", "assert_eq!(pages(11, 10), 2);")]
        } else if user.contains("(fails)") {
            vec![test("rounds_down", "assert_eq!(pages(11, 10), 1);")]
        } else {
            vec![
                test("calls_a_missing_fn", "assert_eq!(pages_of(11), 2);"),
                test("does_not_parse", "let x = ;"),
            ]
        };
        Reply::json(json!({ "tests": tests }))
    });
    let out = dir.path().join("built");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_critic"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CRITIC_")) {
        command.env_remove(key);
    }
    let run = command
        .args(["eval", "--tests", "--format", "json", "--cases"])
        .arg(&cases)
        .arg("--repos")
        .arg(&repos)
        .arg("--out")
        .arg(&out)
        .current_dir(dir.path())
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env("CRITIC_LLM__BASE_URL", llm.url())
        .env("CRITIC_LLM__MODEL", "fake-model")
        .env("CRITIC_LLM__API_KEY", "sk-test-key")
        .env("CRITIC_LLM__PROVIDER", "openai-compatible")
        .output()
        .await
        .expect("critic runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("passes: 1 test(s) pass"),
        "progress: {stderr}"
    );
    let report: Value = serde_json::from_slice(&run.stdout).expect("json report");
    let case = |name: &str| {
        report["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {report}"))["outcome"]
            .clone()
    };
    let passes = case("passes");
    assert_eq!(
        (
            &passes["suggested"],
            &passes["parsed"],
            &passes["compiles"],
            &passes["passes"]
        ),
        (&json!(1), &json!(1), &json!(true), &json!(true)),
        "{passes}"
    );
    // The changed line 2 is covered with the tests, not without.
    assert_eq!(passes["coverage_before"], 0.0, "{passes}");
    assert_eq!(passes["coverage"], 1.0, "{passes}");
    assert_eq!(passes["files"], json!(["src/lib.rs"]));
    let fails = case("fails");
    assert_eq!(
        (&fails["compiles"], &fails["passes"]),
        (&json!(true), &json!(false)),
        "{fails}"
    );
    assert!(
        fails["output"]
            .as_str()
            .is_some_and(|o| o.contains("rounds_down")),
        "the failure's output: {fails}"
    );
    let broken = case("broken");
    assert_eq!(
        (
            &broken["suggested"],
            &broken["parsed"],
            &broken["compiles"],
            &broken["passes"]
        ),
        (&json!(2), &json!(1), &json!(false), &json!(false)),
        "{broken}"
    );
    assert!(
        broken["output"]
            .as_str()
            .is_some_and(|o| o.contains("pages_of")),
        "{broken}"
    );
    // Each checkout is put back as it was: the suggested tests are not left in it.
    for name in ["passes", "fails", "broken"] {
        let lib =
            std::fs::read_to_string(out.join(name).join("checkout/src/lib.rs")).expect("checkout");
        assert!(!lib.contains("critic_suggested"), "{name}: {lib}");
    }
}

#[tokio::test]
async fn a_case_without_a_checkout_is_reported_and_cases_without_tests_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let case = dir.path().join("cases/lonely");
    write(&case, "files/head/src/lib.rs", "pub fn a() {}\n");
    write(
        &case,
        "pr.diff",
        "diff --git a/src/lib.rs b/src/lib.rs\nnew file mode 100644\n--- /dev/null\n+++ b/src/lib.rs\n@@ -0,0 +1 @@\n+pub fn a() {}\n",
    );
    write(
        &case,
        "meta.json",
        json!({"title": "A", "test": {"cmd": "true"}}).to_string(),
    );
    let llm = FakeLlm::start().await;
    let run = |args: Vec<String>| {
        let url = llm.url();
        let dir = dir.path().to_path_buf();
        async move {
            let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_critic"));
            for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CRITIC_")) {
                command.env_remove(key);
            }
            command
                .arg("eval")
                .args(args)
                .current_dir(&dir)
                .env("CRITIC_LLM__BASE_URL", url)
                .env("CRITIC_LLM__MODEL", "fake-model")
                .env("CRITIC_LLM__PROVIDER", "openai-compatible")
                .output()
                .await
                .expect("critic runs")
        }
    };
    let out = run(vec!["cases".into(), "--tests".into()]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("no checkout/ folder"), "{stdout}");
    assert!(
        llm.received().is_empty(),
        "no model call without a checkout"
    );
    write(&case, "meta.json", json!({"title": "A"}).to_string());
    let out = run(vec!["cases".into(), "--tests".into()]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no case says how its tests run"));
}
