//! `critic eval`: the real binary on synthetic cases the test writes (a bug the model finds,
//! one it misses, a clean change it raises a false alarm on, and one whose diff cannot be
//! read), against a scripted model; the scores are checked against hand-computed ones, and a
//! second run against the first as its baseline.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::support::llm::{Chat, FakeLlm, Reply};

/// Ten added lines of `path`, as a new file.
fn case(root: &Path, name: &str, path: &str, bugs: Value) {
    let dir = root.join(name);
    let body: Vec<String> = (1..=10).map(|i| format!("x{i} = compute({i})")).collect();
    let diff = format!(
        "diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,10 @@\n{}\n",
        body.iter()
            .map(|l| format!("+{l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    std::fs::create_dir_all(dir.join("files/head").join(path).parent().expect("parent"))
        .expect("mkdir");
    std::fs::write(dir.join("files/head").join(path), body.join("\n") + "\n").expect("head");
    std::fs::write(dir.join("pr.diff"), diff).expect("diff");
    std::fs::write(
        dir.join("meta.json"),
        json!({"title": format!("Change {name}"), "body": "", "bugs": bugs}).to_string(),
    )
    .expect("meta");
}

/// The model finds one problem per case, on a line chosen by the case's file.
fn model(miss_line: u32) -> impl Fn(&Chat) -> Reply + Send + Sync + 'static {
    move |chat: &Chat| {
        let Some((path, _)) = chat.first_added_line() else {
            return Reply::findings(json!([]));
        };
        let line = match path.as_str() {
            "src/hit.py" => 6,
            "src/miss.py" => miss_line,
            _ => 4,
        };
        Reply::findings(json!([{"path": path, "line": line, "severity": "warning",
            "category": "bug", "title": format!("Problem at {line}"),
            "body": "compute can fail here.", "code": null, "suggestion": null}]))
    }
}

async fn eval(llm: &FakeLlm, cases: &Path, args: &[&str]) -> Output {
    let mut all = vec![cases.to_str().expect("utf-8")];
    all.extend_from_slice(args);
    eval_in(llm, cases, &all).await
}

/// `critic eval ARGS` run in `dir`.
async fn eval_in(llm: &FakeLlm, dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_critic"))
        .arg("eval")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .current_dir(dir)
        .env("CRITIC_LLM__BASE_URL", llm.url())
        .env("CRITIC_LLM__MODEL", "fake-model")
        .env("CRITIC_LLM__API_KEY", "sk-test-key")
        .env("CRITIC_LLM__PROVIDER", "openai-compatible")
        .output()
        .await
        .expect("critic runs")
}

#[tokio::test]
async fn eval_scores_hits_misses_and_false_alarms_and_compares_with_a_baseline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = dir.path().join("cases");
    case(
        &cases,
        "a-hit",
        "src/hit.py",
        json!([{"path": "src/hit.py", "lines": [6]}]),
    );
    case(
        &cases,
        "b-miss",
        "src/miss.py",
        json!([{"path": "src/miss.py", "lines": [2]}]),
    );
    case(&cases, "c-clean", "src/clean.py", json!([]));
    let llm = FakeLlm::start().await;
    llm.respond_with(model(9));

    let out = eval(&llm, &cases, &["--format", "json"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("[3/3]"), "progress on stderr: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["version"], 1);
    assert_eq!(report["verify"], true);
    let by_name = |name: &str| -> Value {
        report["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}"))
    };
    // Hand-computed: a thread on line 6 of a bug at 6 hits; 9 is more than 3 from 2.
    assert_eq!(by_name("a-hit")["hit"], true);
    assert_eq!(by_name("b-miss")["hit"], false);
    assert!(by_name("c-clean")["hit"].is_null());
    // Chance: lines 3..=9 of 10 are within 3 of line 6; lines 1..=5 within 3 of line 2.
    assert_eq!(by_name("a-hit")["chance"], 0.7);
    assert_eq!(by_name("b-miss")["chance"], 0.5);
    let t = &report["totals"];
    assert_eq!(t["cases"], 3);
    assert_eq!(t["failed"], 0);
    assert_eq!(t["with_bugs"], 2);
    assert_eq!(t["hits"], 1);
    assert_eq!(t["mean_chance"], 0.6);
    assert_eq!(t["threads"], 3);
    assert_eq!(t["threads_on_bug_cases"], 2);
    assert_eq!(t["hitting_threads"], 1);
    assert_eq!(t["clean"], 1);
    assert_eq!(t["false_alarms"], 1);
    assert!(t["output_tokens"].as_u64().expect("tokens") > 0);
    // A server that does not say how large its model is: the whole enclosing scope.
    assert_eq!(by_name("a-hit")["scope_lines"], 200, "{report}");
    assert_eq!(by_name("a-hit")["suggestions"], true, "{report}");
    assert!(
        by_name("a-hit")["verification"]
            .as_str()
            .unwrap_or_default()
            .contains("0 of 1"),
        "{report}"
    );

    // The model gets better on the missed case: the comparison says so, case by case.
    let baseline = dir.path().join("baseline.json");
    std::fs::write(&baseline, &out.stdout).expect("baseline");
    llm.respond_with(model(3));
    let out = eval(
        &llm,
        &cases,
        &["--baseline", baseline.to_str().expect("utf-8")],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("bugs found: 2 of 2 case(s)"), "{text}");
    assert!(text.contains("b-miss: better (hit"), "{text}");
    assert!(
        !text.contains("a-hit: "),
        "unchanged cases are not listed: {text}"
    );
    assert!(text.contains("1 better, 0 worse"), "{text}");
    assert!(
        text.contains("false alarms: 1 thread(s) on 1 of 1 clean case(s)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_case_that_cannot_be_read_is_an_error_and_a_failed_review_is_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = dir.path().join("cases");
    case(
        &cases,
        "a-hit",
        "src/hit.py",
        json!([{"path": "src/hit.py", "lines": [6]}]),
    );
    let llm = FakeLlm::start().await;
    // The model answers nothing usable, even when asked again: the case fails, is kept
    // in the report with the reason, and the run exits 1.
    llm.respond_with(|_| Reply::content("no JSON here"));
    let out = eval(&llm, &cases, &[]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("a-hit") && text.contains("FAILED"), "{text}");
    assert!(text.contains("1 case(s), 1 failed"), "{text}");
    assert!(
        !text.contains("cost: 0 input"),
        "the failed review's calls were paid for and are counted: {text}"
    );

    // A bug line 0 is refused before any model call, naming the file.
    std::fs::write(
        cases.join("a-hit/meta.json"),
        json!({"title": "t", "bugs": [{"path": "src/hit.py", "lines": [0]}]}).to_string(),
    )
    .expect("meta");
    let out = eval(&llm, &cases, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("meta.json"));
    // An empty folder too.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let out = eval(&llm, &empty, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no case folders"));
}

/// A repository where a bug was fixed, then the same file grew: commit 1 has the bug, commit
/// 2 fixes it, commit 3 adds a neighbouring function. Returns the three SHAs.
fn history(dir: &Path) -> [String; 3] {
    use crate::support::git::{git, head_sha as sha, write};
    git(dir, &["init", "-q", "-b", "main"]);
    let file = |ratio: &str, half: &str| {
        format!("def ratio(a, b):\n    {ratio}\n\n\n# Halves.\ndef half(x):\n    {half}\n")
    };
    write(dir, "calc.py", file("return a / b", "return x / 2"));
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "ratio"]);
    let first = sha(dir);
    write(
        dir,
        "calc.py",
        file("return a / b if b else 0", "return x / 2"),
    );
    git(dir, &["commit", "-qam", "fix: no division by zero"]);
    let fix = sha(dir);
    write(
        dir,
        "calc.py",
        file("return a / b if b else 0", "return x * 0.5"),
    );
    git(dir, &["commit", "-qam", "half without division"]);
    [first, fix, sha(dir)]
}

#[tokio::test]
async fn public_cases_are_built_from_clones_with_the_fix_reversed_and_scored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repos = dir.path().join("repos");
    let repo = repos.join("acme+calc");
    std::fs::create_dir_all(&repo).expect("mkdir");
    let [_, fix, neighbour] = history(&repo);
    let list = dir.path().join("cases.toml");
    std::fs::write(
        &list,
        format!(
            r#"
[[case]]
name = "calc-zero"
repo = "acme/calc"
base = "{fix}"
head = "{neighbour}"
reverse = "{fix}"
title = "Add double"
licence = "MIT"
language = "python"
bugs = [{{ path = "calc.py", lines = [2] }}]

[[case]]
name = "not-here"
repo = "acme/missing"
base = "{fix}"
head = "{neighbour}"
licence = "MIT"
"#
        ),
    )
    .expect("list");
    let out = dir.path().join("built");
    let llm = FakeLlm::start().await;
    llm.respond_with(|chat: &Chat| {
        let Some((path, _)) = chat.first_added_line() else {
            return Reply::findings(json!([]));
        };
        Reply::findings(json!([{"path": path, "line": 2, "severity": "warning",
            "category": "bug", "title": "Division by zero", "body": "`b` may be zero.",
            "code": "return a / b", "suggestion": null}]))
    });
    let run = eval_in(
        &llm,
        dir.path(),
        &[
            "--cases",
            list.to_str().expect("utf-8"),
            "--repos",
            repos.to_str().expect("utf-8"),
            "--out",
            out.to_str().expect("utf-8"),
            "--format",
            "json",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&run.stderr);
    // The case whose repository is missing is named and left out; the run says so with 1.
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("acme/missing"), "{stderr}");
    // The change is the neighbouring commit plus the fix reversed: the bug is back in it.
    let diff = std::fs::read_to_string(out.join("calc-zero/pr.diff")).expect("diff");
    assert!(
        diff.contains("-    return a / b if b else 0\n+    return a / b\n"),
        "{diff}"
    );
    assert!(diff.contains("+    return x * 0.5"), "{diff}");
    let head = std::fs::read_to_string(out.join("calc-zero/files/head/calc.py")).expect("head");
    assert!(
        head.starts_with("def ratio(a, b):\n    return a / b\n"),
        "{head}"
    );
    let report: Value = serde_json::from_slice(&run.stdout).expect("json");
    assert_eq!(report["totals"]["cases"], 1);
    assert_eq!(report["cases"][0]["name"], "calc-zero");
    assert_eq!(report["cases"][0]["hit"], true, "{report}");
    // Nothing of the clone is left in the output folder but the case.
    let left: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["calc-zero"]);
}

/// A repository with two small fixes among other work: an off-by-one fixed with a test, a
/// crash fixed by adding a guard; also a typo fixed in the README, a large "fix", a feature.
fn fixes(dir: &Path) {
    use crate::support::git::{git, write};
    git(dir, &["init", "-q", "-b", "main"]);
    let pager = |pages: &str, guard: &str| {
        format!(
            "def pages(n, size):\n    if size <= 0:\n        raise ValueError(\"size\")\n    {pages}\n\n\ndef last_page(n, size):\n    return pages(n, size)\n\n\ndef clamp(page, n, size):\n{guard}    return max(0, min(page, last_page(n, size)))\n"
        )
    };
    write(dir, "src/pager.py", pager("return n // size", ""));
    write(dir, "README.md", "A pagre.\n");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "pager"]);
    write(
        dir,
        "src/pager.py",
        pager("return (n + size - 1) // size", ""),
    );
    write(
        dir,
        "tests/test_pager.py",
        "from src.pager import pages\n\n\ndef test_partial_page():\n    assert pages(11, 10) == 2\n",
    );
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "Fix off-by-one in pages()"]);
    write(dir, "README.md", "A pager.\n");
    git(dir, &["commit", "-qam", "Fix typo in README"]);
    write(
        dir,
        "src/pager.py",
        pager(
            "return (n + size - 1) // size",
            "    if page < 0:\n        return 0\n",
        ),
    );
    git(
        dir,
        &[
            "commit",
            "-qam",
            "Guard against a negative page",
            "-m",
            "clamp(-1, ...) crashed the caller.",
        ],
    );
    let many: String = (0..40).map(|i| format!("X{i} = {i}\n")).collect();
    write(dir, "src/consts.py", many);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "Fix all the constants"]);
    write(dir, "src/more.py", "def more():\n    return 1\n");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "Add more"]);
}

#[tokio::test]
async fn mined_cases_undo_small_fixes_and_score_against_the_lines_they_fixed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("acme+pager");
    std::fs::create_dir_all(&repo).expect("mkdir");
    fixes(&repo);
    let out = dir.path().join("mined");
    let llm = FakeLlm::start().await;
    // A model that always points at line 4 of the first file it is shown with added lines.
    llm.respond_with(|chat: &Chat| {
        let Some((path, _)) = chat.first_added_line() else {
            return Reply::findings(json!([]));
        };
        Reply::findings(json!([{"path": path, "line": 4, "severity": "warning",
            "category": "bug", "title": "Pages are rounded down", "body": "A partial page is lost.",
            "code": null, "suggestion": null}]))
    });
    let mine = eval_in(
        &llm,
        dir.path(),
        // Relative paths, from where the command runs.
        &["mine", "--repo", "acme+pager", "--out", "mined"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&mine.stderr);
    assert_eq!(mine.status.code(), Some(0), "{stderr}");
    assert!(
        String::from_utf8_lossy(&mine.stdout).contains("2 case(s)"),
        "{stderr}"
    );
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        2,
        "only the two small fixes of code: {names:?}"
    );
    let off_by_one = out.join(
        names
            .iter()
            .find(|n| n.ends_with("fix-off-by-one-in-pages"))
            .expect("off-by-one"),
    );
    let guard = out.join(
        names
            .iter()
            .find(|n| n.ends_with("guard-against-a-negative-page"))
            .expect("guard"),
    );

    // The off-by-one: the fix's line undone, the test it added kept, a title that tells nothing.
    let diff = std::fs::read_to_string(off_by_one.join("pr.diff")).expect("diff");
    assert!(
        diff.contains("-    return (n + size - 1) // size\n+    return n // size\n"),
        "{diff}"
    );
    assert!(!diff.contains("test_pager"), "the fix's test stays: {diff}");
    let meta: Value =
        serde_json::from_slice(&std::fs::read(off_by_one.join("meta.json")).expect("meta"))
            .expect("json");
    assert_eq!(
        meta["bugs"],
        json!([{"path": "src/pager.py", "lines": [4]}])
    );
    assert_eq!(meta["title"], "Update src/pager.py");
    assert_eq!(meta["repo"], "acme/pager");
    // The guard: the undone fix only removes lines, so the bug is either side of the gap.
    let meta: Value =
        serde_json::from_slice(&std::fs::read(guard.join("meta.json")).expect("meta"))
            .expect("json");
    assert_eq!(
        meta["bugs"],
        json!([{"path": "src/pager.py", "lines": [11, 12]}])
    );
    let head = std::fs::read_to_string(guard.join("files/head/src/pager.py")).expect("head");
    assert!(!head.contains("page < 0"), "{head}");

    // Scored: a thread on line 4 hits the off-by-one; the guard's change has no added line,
    // so the model says nothing there: a miss.
    let run = eval(&llm, &out, &["--format", "json"]).await;
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: Value = serde_json::from_slice(&run.stdout).expect("json");
    let totals = &report["totals"];
    assert_eq!(
        (
            &totals["with_bugs"],
            &totals["hits"],
            &totals["threads"],
            &totals["hitting_threads"]
        ),
        (&json!(2), &json!(1), &json!(1), &json!(1)),
        "{report}"
    );

    // Nothing to mine: said, exit 1; no repository: exit 2.
    let none = eval_in(
        &llm,
        dir.path(),
        &[
            "mine",
            "--repo",
            repo.to_str().expect("utf-8"),
            "--since",
            "2999-01-01",
        ],
    )
    .await;
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no commit in"));
    let missing = eval_in(&llm, dir.path(), &["mine", "--repo", "no-such-repo"]).await;
    assert_eq!(missing.status.code(), Some(2));
}
