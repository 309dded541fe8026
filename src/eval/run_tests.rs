//! `critic eval --tests`: the tests Critic suggests for a case, written into a checkout of the
//! case's head and run there with the case's own commands, on the evaluating machine only (the
//! server never runs a pull request's code). Per case: how many suggested tests parse, whether
//! they compile (the case's `build` command), whether they pass (`cmd`), and the share of the
//! change's lines they cover (`coverage`, which writes an LCOV or Go cover profile), against the
//! same share without them.
//!
//! The checkout is the case's `checkout/` folder, a git work tree at the case's head; it is put
//! back (`git checkout -- .` and `git clean -fd`, which keeps ignored build folders) after each
//! run.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::case::{Case, CaseSource, TestCommand};
use crate::review::tasks::TestSuggestion;

/// What became of one case's suggested tests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestOutcome {
    pub suggested: usize,
    /// Of `suggested`, those whose code parsed (Critic leaves out the rest before posting).
    pub parsed: usize,
    /// `build` exited 0; None when there is no `build` and the tests did not pass.
    pub compiles: Option<bool>,
    /// `cmd` exited 0 with the tests in place; None when there was no test to run.
    pub passes: Option<bool>,
    /// Share of the change's instrumented lines covered with the suggested tests in place.
    pub coverage: Option<f64>,
    /// The same share without them: what the suggested tests add is the difference.
    pub coverage_before: Option<f64>,
    /// Files the tests were written to.
    pub files: Vec<String>,
    /// The end of the failing command's output.
    pub output: String,
}

/// A command's end: whether it exited 0, and the tail of its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub ok: bool,
    pub tail: String,
}

/// Output kept of a failing command.
const TAIL_BYTES: usize = 4000;

/// Runs `cmd` with `sh -c` in `dir`, killed after `timeout`. `CRITIC_TEST_FILES` holds the
/// files the suggested tests were written to, space-separated, so a command can run only them.
pub async fn shell(dir: &Path, cmd: &str, files: &[String], timeout: Duration) -> Ran {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .env("CRITIC_TEST_FILES", files.join(" "))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            return Ran {
                ok: false,
                tail: format!("could not start `sh -c {cmd}`: {e}"),
            };
        }
    };
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            Ran {
                ok: out.status.success(),
                tail: tail(&text),
            }
        }
        Ok(Err(e)) => Ran {
            ok: false,
            tail: format!("`{cmd}` failed: {e}"),
        },
        Err(_) => Ran {
            ok: false,
            tail: format!("`{cmd}` did not finish within {} s", timeout.as_secs()),
        },
    }
}

fn tail(text: &str) -> String {
    let mut start = text.len().saturating_sub(TAIL_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// Writes the tests into the checkout at `root`, each into its file: appended to an existing
/// one as it stands in such a file (Rust unit tests in a `#[cfg(test)]` module of their own,
/// Java and Kotlin methods inside the class), or a new file (a Go one with its folder's package
/// clause). Returns the files written, or why a test could not be.
pub fn write_tests(root: &Path, tests: &[TestSuggestion]) -> Result<Vec<String>, String> {
    let mut written: Vec<String> = Vec::new();
    for t in tests {
        let relative = Path::new(&t.path);
        if t.path.is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(format!(
                "test `{}`: path {:?} leaves the checkout",
                t.name, t.path
            ));
        }
        let full = root.join(relative);
        let existing = std::fs::read_to_string(&full).ok();
        let text = match existing {
            Some(current) => with_test(&t.path, &current, &t.code),
            None => new_file(root, &t.path, &t.code),
        };
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&full, text).map_err(|e| format!("{}: {e}", full.display()))?;
        if !written.contains(&t.path) {
            written.push(t.path.clone());
        }
    }
    Ok(written)
}

/// `current` (an existing file) with `code` added where a test of its language goes.
fn with_test(path: &str, current: &str, code: &str) -> String {
    let code = code.trim_matches('\n');
    let body = current.trim_end();
    let lower = path.to_ascii_lowercase();
    let in_class = lower.ends_with(".java") || lower.ends_with(".kt");
    if in_class
        && !code.contains("class ")
        && let Some(close) = body.rfind('}')
    {
        let indented: Vec<String> = code.lines().map(|l| format!("    {l}")).collect();
        return format!(
            "{}\n\n{}\n}}\n",
            body[..close].trim_end(),
            indented.join("\n")
        );
    }
    let unit_tests = lower.ends_with(".rs")
        && !path.split('/').any(|d| d == "tests" || d == "benches")
        && !code.contains("mod ");
    if unit_tests {
        let indented: Vec<String> = code
            .lines()
            .map(|l| {
                if l.is_empty() {
                    String::new()
                } else {
                    format!("    {l}")
                }
            })
            .collect();
        return format!(
            "{body}\n\n#[cfg(test)]\nmod critic_suggested {{\n    use super::*;\n\n{}\n}}\n",
            indented.join("\n")
        );
    }
    format!("{body}\n\n\n{code}\n")
}

/// A new test file holding `code`. A Go file's package clause is its folder's (a model often
/// names the package after the file): the package of the folder's other files, or its
/// `_test` variant when the code says so.
fn new_file(root: &Path, path: &str, code: &str) -> String {
    let code = code.trim_matches('\n');
    if !path.ends_with(".go") {
        return format!("{code}\n");
    }
    let dir = root.join(Path::new(path).parent().unwrap_or(Path::new("")));
    let folder = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "go"))
        .filter(|e| !e.file_name().to_string_lossy().ends_with("_test.go"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .find_map(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("package "))
                .map(|p| p.trim().to_string())
        });
    let (said, rest) = match code.trim_start().strip_prefix("package ") {
        Some(after) => {
            let (name, rest) = after.split_once('\n').unwrap_or((after, ""));
            (Some(name.trim().to_string()), rest)
        }
        None => (None, code),
    };
    let package = match (folder, said) {
        (Some(f), Some(s)) if s == format!("{f}_test") => s,
        (Some(f), _) => f,
        (None, Some(s)) => s,
        (None, None) => "main".to_string(),
    };
    format!("package {package}\n\n{}\n", rest.trim_matches('\n'))
}

/// Lines covered, by file, from a coverage report: LCOV (`SF:path`, `DA:line,hits`) or a Go
/// cover profile (`mode: ...`, then `path:l1.c1,l2.c2 statements count`). Lines a report
/// lists are instrumented; those with a count above 0 covered. Paths as the report gives them.
pub fn read_coverage(report: &str) -> HashMap<String, HashMap<u32, bool>> {
    let mut files: HashMap<String, HashMap<u32, bool>> = HashMap::new();
    if report.trim_start().starts_with("mode:") {
        for line in report.lines().skip(1) {
            let Some((path, rest)) = line.rsplit_once(':') else {
                continue;
            };
            let parts: Vec<&str> = rest.split([',', ' ']).collect();
            let (Some(from), Some(to), Some(count)) = (parts.first(), parts.get(1), parts.get(3))
            else {
                continue;
            };
            let line_of = |p: &str| p.split('.').next().and_then(|l| l.parse::<u32>().ok());
            let (Some(from), Some(to), Ok(count)) =
                (line_of(from), line_of(to), count.parse::<u64>())
            else {
                continue;
            };
            let lines = files.entry(path.to_string()).or_default();
            for l in from..=to {
                let covered = lines.entry(l).or_insert(false);
                *covered |= count > 0;
            }
        }
        return files;
    }
    let mut current: Option<String> = None;
    for line in report.lines() {
        if let Some(path) = line.strip_prefix("SF:") {
            current = Some(path.trim().to_string());
        } else if let (Some(path), Some(da)) = (&current, line.strip_prefix("DA:")) {
            let mut parts = da.split(',');
            let (Some(Ok(n)), Some(hits)) = (parts.next().map(str::parse::<u32>), parts.next())
            else {
                continue;
            };
            let hit = hits.trim().parse::<f64>().is_ok_and(|h| h > 0.0);
            let covered = files
                .entry(path.clone())
                .or_default()
                .entry(n)
                .or_insert(false);
            *covered |= hit;
        } else if line.trim() == "end_of_record" {
            current = None;
        }
    }
    files
}

/// The share of `changed` lines (path, head-side lines) that the report instruments and
/// covers. A report's path matches a changed path when either ends with the other (reports
/// give absolute paths, Go gives import paths). None when no changed line is instrumented.
pub fn covered_share(
    coverage: &HashMap<String, HashMap<u32, bool>>,
    changed: &[(String, Vec<u32>)],
) -> Option<f64> {
    let (mut instrumented, mut covered) = (0usize, 0usize);
    for (path, lines) in changed {
        let matching: Vec<&HashMap<u32, bool>> = coverage
            .iter()
            .filter(|(p, _)| {
                p.as_str() == path.as_str()
                    || p.ends_with(&format!("/{path}"))
                    || path.ends_with(&format!("/{p}"))
            })
            .map(|(_, l)| l)
            .collect();
        let lines: HashSet<&u32> = lines.iter().collect();
        for line in lines {
            let seen: Vec<bool> = matching
                .iter()
                .filter_map(|m| m.get(line).copied())
                .collect();
            if !seen.is_empty() {
                instrumented += 1;
                if seen.contains(&true) {
                    covered += 1;
                }
            }
        }
    }
    (instrumented > 0).then(|| covered as f64 / instrumented as f64)
}

/// One case's run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestResult {
    pub name: String,
    pub outcome: TestOutcome,
    /// Why the case could not be run (no checkout, the model's reply unusable, ...).
    pub error: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub seconds: f64,
}

/// What `critic eval --tests` found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestsReport {
    pub model: String,
    pub cases: Vec<TestResult>,
}

/// Told after each case: (done, total, its result).
pub type TestProgressFn<'a> = &'a (dyn Fn(usize, usize, &TestResult) + Sync);

/// How `critic eval --tests` runs.
pub struct TestOptions<'a> {
    /// An endpoint of the settings to ask instead of the tests task's.
    pub model: Option<&'a str>,
    /// Each command is stopped after this long.
    pub timeout: Duration,
    pub progress: Option<TestProgressFn<'a>>,
}

/// Suggests and runs tests for every case that says how its tests run, one case at a time
/// (the commands build and run code, on all cores).
pub async fn run(
    settings: &crate::config::Settings,
    client: &crate::llm::Llm,
    cases: &[Case],
    options: &TestOptions<'_>,
) -> TestsReport {
    let runnable: Vec<(&Case, &TestCommand)> = cases
        .iter()
        .filter_map(|c| c.test.as_ref().map(|t| (c, t)))
        .collect();
    let mut results = Vec::new();
    for (i, (case, test)) in runnable.iter().enumerate() {
        let started = std::time::Instant::now();
        let meter = crate::llm::Meter::new();
        let (outcome, error) = match one(settings, client, case, test, options, &meter).await {
            Ok(o) => (o, None),
            Err((o, e)) => (o, Some(e)),
        };
        let (usage, _) = meter.total();
        let result = TestResult {
            name: case.name.clone(),
            outcome,
            error,
            input_tokens: usage.prompt_tokens,
            output_tokens: usage.output_tokens,
            seconds: started.elapsed().as_secs_f64(),
        };
        if let Some(progress) = options.progress {
            progress(i + 1, runnable.len(), &result);
        }
        results.push(result);
    }
    TestsReport {
        model: client
            .model_name_for(crate::domain::Task::Tests, options.model)
            .to_string(),
        cases: results,
    }
}

/// One case: suggest, then (coverage without the tests,) write them, build, run, coverage
/// with them; the checkout put back after each step that changes it. An error keeps what was
/// found before it.
async fn one(
    settings: &crate::config::Settings,
    client: &crate::llm::Llm,
    case: &Case,
    test: &TestCommand,
    options: &TestOptions<'_>,
    meter: &crate::llm::Meter,
) -> Result<TestOutcome, (TestOutcome, String)> {
    let mut outcome = TestOutcome::default();
    let Some(checkout) = case.checkout() else {
        return Err((
            outcome,
            "no checkout/ folder (a git work tree at the case's head): build the case from a list whose entry has `test`".into(),
        ));
    };
    let mut policy = crate::config::repo::RepoPolicy::from_server(&settings.review);
    if let Some(model) = options.model {
        policy.models.tests = Some(model.to_string());
    }
    let prompts = match crate::review::Prompts::new() {
        Ok(p) => p,
        Err(e) => return Err((outcome, e.to_string())),
    };
    let suggested = crate::review::suggest_tests(
        crate::review::Pipeline {
            settings: &settings.review,
            prompts: &prompts,
            llm: client,
        },
        &CaseSource { case },
        &crate::review::Change {
            repo: &case.repo,
            title: &case.title,
            description: &case.body,
            policy: &policy,
            since: None,
            installation: 0,
            meter,
            progress: None,
        },
    )
    .await;
    let suggested = match suggested {
        Ok(Some(s)) => s,
        Ok(None) => return Err((outcome, "no file of the change is one Critic reads".into())),
        Err(e) => return Err((outcome, e.to_string())),
    };
    outcome.parsed = suggested.tests.len();
    outcome.suggested = suggested.tests.len() + suggested.notes.len();
    let changed: Vec<(String, Vec<u32>)> = case
        .added_lines()
        .into_iter()
        .filter(|(path, _)| !looks_like_test(path))
        .collect();
    let coverage_of = |ran: &Ran| -> Option<f64> {
        let report = test.report.as_deref()?;
        if !ran.ok {
            return None;
        }
        let text = std::fs::read_to_string(checkout.join(report)).ok()?;
        covered_share(&read_coverage(&text), &changed)
    };
    let put_back = || async {
        crate::review::local::git(&checkout, &["checkout", "--quiet", "--", "."]).await?;
        crate::review::local::git(&checkout, &["clean", "-fdq"]).await?;
        Ok::<(), String>(())
    };
    if let Err(e) = put_back().await {
        return Err((outcome, format!("the checkout could not be reset: {e}")));
    }
    if let Some(coverage) = &test.coverage {
        let ran = shell(&checkout, coverage, &[], options.timeout).await;
        outcome.coverage_before = coverage_of(&ran);
        if let Err(e) = put_back().await {
            return Err((outcome, format!("the checkout could not be reset: {e}")));
        }
    }
    if suggested.tests.is_empty() {
        return Ok(outcome);
    }
    outcome.files = match write_tests(&checkout, &suggested.tests) {
        Ok(files) => files,
        Err(e) => return Err((outcome, e)),
    };
    if let Some(build) = &test.build {
        let ran = shell(&checkout, build, &outcome.files, options.timeout).await;
        outcome.compiles = Some(ran.ok);
        if !ran.ok {
            outcome.output = ran.tail;
        }
    }
    if outcome.compiles != Some(false) {
        let ran = shell(&checkout, &test.cmd, &outcome.files, options.timeout).await;
        outcome.passes = Some(ran.ok);
        if ran.ok {
            outcome.compiles = Some(true);
        } else {
            outcome.output = ran.tail;
        }
        if let Some(coverage) = &test.coverage {
            let ran = shell(&checkout, coverage, &outcome.files, options.timeout).await;
            outcome.coverage = coverage_of(&ran);
        }
    } else {
        outcome.passes = Some(false);
    }
    if let Err(e) = put_back().await {
        return Err((outcome, format!("the checkout could not be reset: {e}")));
    }
    Ok(outcome)
}

/// A test file by its name or folder, in the conventions Critic knows: not part of what the
/// change's coverage measures.
fn looks_like_test(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    path.split('/')
        .any(|d| matches!(d, "tests" | "test" | "__tests__" | "spec" | "testdata"))
        || name.starts_with("test_")
        || name.ends_with("_test.go")
        || name.ends_with("_test.py")
        || [".test.", ".spec."].iter().any(|m| name.contains(m))
        || name.ends_with("Test.java")
        || name.ends_with("Tests.java")
}

/// The report as a table.
pub fn render(report: &TestsReport) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "Suggested tests, run (model {}): {} case(s)\n\n",
        report.model,
        report.cases.len()
    );
    let _ = writeln!(
        out,
        "{:<36} {:>9} {:>8} {:>8} {:>8} {:>17} {:>7}",
        "case", "suggested", "parse", "compile", "pass", "coverage", "time"
    );
    let yes = |b: Option<bool>| match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    };
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.0}%", v * 100.0));
    for r in &report.cases {
        let o = &r.outcome;
        let _ = writeln!(
            out,
            "{:<36} {:>9} {:>8} {:>8} {:>8} {:>17} {:>6.0}s",
            r.name,
            o.suggested,
            format!("{}/{}", o.parsed, o.suggested),
            yes(o.compiles),
            yes(o.passes),
            format!("{} -> {}", pct(o.coverage_before), pct(o.coverage)),
            r.seconds
        );
        if let Some(e) = &r.error {
            let _ = writeln!(out, "  failed: {e}");
        } else if o.passes == Some(false) && !o.output.is_empty() {
            let last: Vec<&str> = o.output.lines().rev().take(5).collect();
            for line in last.into_iter().rev() {
                let _ = writeln!(out, "  | {line}");
            }
        }
    }
    let ran: Vec<&TestOutcome> = report
        .cases
        .iter()
        .filter(|r| r.error.is_none() && r.outcome.passes.is_some())
        .map(|r| &r.outcome)
        .collect();
    let count = |f: &dyn Fn(&TestOutcome) -> bool| ran.iter().filter(|o| f(o)).count();
    let _ = writeln!(
        out,
        "\nof {} case(s) with tests run: {} compile, {} pass",
        ran.len(),
        count(&|o| o.compiles == Some(true)),
        count(&|o| o.passes == Some(true))
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggestion(path: &str, code: &str) -> TestSuggestion {
        TestSuggestion {
            path: path.into(),
            name: "t".into(),
            covers: "c".into(),
            code: code.into(),
        }
    }

    #[test]
    fn tests_go_where_their_language_puts_them() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        std::fs::create_dir_all(root.join("pkg")).expect("mkdir");
        std::fs::write(root.join("src/lib.rs"), "pub fn one() -> u32 {\n    1\n}\n").expect("w");
        std::fs::write(root.join("Test.java"), "class Test {\n    void a() {}\n}\n").expect("w");
        std::fs::write(
            root.join("pkg/pager.go"),
            "package pager\n\nfunc P() int { return 1 }\n",
        )
        .expect("w");
        let written = write_tests(
            root,
            &[
                suggestion(
                    "src/lib.rs",
                    "#[test]\nfn is_one() {\n    assert_eq!(one(), 1);\n}",
                ),
                suggestion("Test.java", "@Test\nvoid b() {}"),
                suggestion("pkg/pager_test.go", "func TestP(t *testing.T) {}"),
                suggestion(
                    "pkg/named_test.go",
                    "package named\n\nfunc TestN(t *testing.T) {}",
                ),
                suggestion(
                    "pkg/black_test.go",
                    "package pager_test\n\nfunc TestB(t *testing.T) {}",
                ),
                suggestion("tests/test_new.py", "def test_x():\n    assert True\n"),
            ],
        )
        .expect("written");
        assert_eq!(
            written,
            [
                "src/lib.rs",
                "Test.java",
                "pkg/pager_test.go",
                "pkg/named_test.go",
                "pkg/black_test.go",
                "tests/test_new.py"
            ]
        );
        let read = |p: &str| std::fs::read_to_string(root.join(p)).expect("read");
        assert_eq!(
            read("src/lib.rs"),
            "pub fn one() -> u32 {\n    1\n}\n\n#[cfg(test)]\nmod critic_suggested {\n    use super::*;\n\n    #[test]\n    fn is_one() {\n        assert_eq!(one(), 1);\n    }\n}\n"
        );
        assert_eq!(
            read("Test.java"),
            "class Test {\n    void a() {}\n\n    @Test\n    void b() {}\n}\n"
        );
        assert_eq!(
            read("pkg/pager_test.go"),
            "package pager\n\nfunc TestP(t *testing.T) {}\n"
        );
        assert_eq!(
            read("tests/test_new.py"),
            "def test_x():\n    assert True\n"
        );
        // A package named after the file is the folder's; an external test package is kept.
        assert_eq!(
            read("pkg/named_test.go"),
            "package pager\n\nfunc TestN(t *testing.T) {}\n"
        );
        assert_eq!(
            read("pkg/black_test.go"),
            "package pager_test\n\nfunc TestB(t *testing.T) {}\n"
        );
        assert!(write_tests(root, &[suggestion("../escape.py", "x")]).is_err());
    }

    #[test]
    fn lcov_and_go_profiles_give_the_share_of_changed_lines_covered() {
        let lcov = "TN:\nSF:/tmp/x/pkg/pager.py\nDA:1,1\nDA:2,0\nDA:3,4\nend_of_record\nSF:other.py\nDA:2,1\nend_of_record\n";
        let cov = read_coverage(lcov);
        // Lines 2 and 3 changed and instrumented, 3 covered; line 9 is not instrumented.
        let changed = vec![("pkg/pager.py".to_string(), vec![2, 3, 9])];
        assert_eq!(covered_share(&cov, &changed), Some(0.5));
        let go = "mode: set\nexample.com/m/pkg/pager.go:3.14,5.2 1 1\nexample.com/m/pkg/pager.go:7.1,8.2 1 0\n";
        let cov = read_coverage(go);
        let changed = vec![("pkg/pager.go".to_string(), vec![4, 5, 7, 20])];
        assert_eq!(covered_share(&cov, &changed), Some(2.0 / 3.0));
        assert_eq!(covered_share(&cov, &[("nope.go".into(), vec![1])]), None);
    }

    #[tokio::test]
    async fn commands_report_their_exit_and_the_end_of_their_output() {
        let dir = tempfile::tempdir().expect("dir");
        let files = vec!["a b".to_string()];
        let ok = shell(
            dir.path(),
            "echo \"$CRITIC_TEST_FILES\"",
            &files,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(
            ok,
            Ran {
                ok: true,
                tail: "a b\n".into()
            }
        );
        let failed = shell(
            dir.path(),
            "echo broken >&2; exit 3",
            &[],
            Duration::from_secs(10),
        )
        .await;
        assert!(!failed.ok);
        assert_eq!(failed.tail, "broken\n");
        let slow = shell(dir.path(), "sleep 5", &[], Duration::from_millis(200)).await;
        assert!(!slow.ok && slow.tail.contains("did not finish"), "{slow:?}");
    }
}
