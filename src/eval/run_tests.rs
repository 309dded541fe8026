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
    /// `cmd` exited 0 with the tests in place and named every one of them in its output (a
    /// test it did not run has not passed); None when there was no test to run.
    pub passes: Option<bool>,
    /// Suggested tests whose names the test command's output shows.
    #[serde(default)]
    pub ran: usize,
    /// Share of the change's instrumented lines covered with the suggested tests in place.
    pub coverage: Option<f64>,
    /// The same share without them: what the suggested tests add is the difference.
    pub coverage_before: Option<f64>,
    /// Files the tests were written to.
    pub files: Vec<String>,
    /// The end of the failing command's output.
    pub output: String,
}

/// A command's end: whether it exited 0, the tail of its output, and all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub ok: bool,
    pub tail: String,
    pub output: String,
}

impl Ran {
    fn failed(why: String) -> Ran {
        Ran {
            ok: false,
            tail: why.clone(),
            output: why,
        }
    }
}

/// Output kept of a failing command.
const TAIL_BYTES: usize = 4000;

/// Runs `cmd` with `sh -c` in `dir`, in a process group of its own that is killed whole
/// after `timeout` (a test runner's children too, not only the shell). `CRITIC_TEST_FILES`
/// holds the files the suggested tests were written to, space-separated, so a command can run
/// only them.
pub async fn shell(dir: &Path, cmd: &str, files: &[String], timeout: Duration) -> Ran {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .env("CRITIC_TEST_FILES", files.join(" "))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return Ran::failed(format!("could not start `sh -c {cmd}`: {e}")),
    };
    let group = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            Ran {
                ok: out.status.success(),
                tail: tail(&text),
                output: text,
            }
        }
        Ok(Err(e)) => Ran::failed(format!("`{cmd}` failed: {e}")),
        Err(_) => {
            if let Some(pid) = group {
                // The whole group: `kill -KILL -PID`.
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status();
            }
            Ran::failed(format!(
                "`{cmd}` did not finish within {} s",
                timeout.as_secs()
            ))
        }
    }
}

fn tail(text: &str) -> String {
    let mut start = text.len().saturating_sub(TAIL_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// Writes the tests into the checkout at `root`, those of one file together: appended to an
/// existing file as they stand in such a file (Rust unit tests in one `#[cfg(test)]` module,
/// Java and Kotlin methods inside the class), or a new file. Go tests each get a file of
/// their own beside the target (a package clause and imports cannot be appended mid-file).
/// Returns the files written, or why a test could not be (a path that leaves the checkout,
/// goes into `.git`, or through a link).
pub fn write_tests(root: &Path, tests: &[TestSuggestion]) -> Result<Vec<String>, String> {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for (i, t) in tests.iter().enumerate() {
        let relative = Path::new(&t.path);
        let normal = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if t.path.is_empty() || !normal || relative.starts_with(".git") {
            return Err(format!(
                "test `{}`: path {:?} leaves the checkout",
                t.name, t.path
            ));
        }
        let path = if t.path.ends_with(".go") && root.join(relative).exists() {
            let stem = t.path.trim_end_matches("_test.go").trim_end_matches(".go");
            format!("{stem}_critic{}_test.go", i + 1)
        } else {
            t.path.clone()
        };
        match groups.iter_mut().find(|(p, _)| *p == path) {
            Some((_, codes)) => codes.push(&t.code),
            None => groups.push((path, vec![&t.code])),
        }
    }
    let canonical_root = root
        .canonicalize()
        .map_err(|e| format!("{}: {e}", root.display()))?;
    let mut written = Vec::new();
    for (path, codes) in groups {
        let full = root.join(&path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
            let inside = parent
                .canonicalize()
                .is_ok_and(|p| p.starts_with(&canonical_root));
            let linked = std::fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink());
            if !inside || linked {
                return Err(format!("{path}: goes through a link out of the checkout"));
            }
        }
        let text = match std::fs::read_to_string(&full).ok() {
            Some(current) => with_tests(&path, &current, &codes),
            None => new_file(root, &path, &codes.join("\n\n")),
        };
        std::fs::write(&full, text).map_err(|e| format!("{}: {e}", full.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// `current` (an existing file) with the tests' `codes` added where tests of its language go.
fn with_tests(path: &str, current: &str, codes: &[&str]) -> String {
    let joined = codes
        .iter()
        .map(|c| c.trim_matches('\n'))
        .collect::<Vec<_>>()
        .join("\n\n");
    let code = joined.as_str();
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
/// covers. Reports give absolute paths or (Go) import paths, so a changed path is matched by
/// its end. None when no changed line is instrumented.
pub fn covered_share(
    coverage: &HashMap<String, HashMap<u32, bool>>,
    changed: &[(String, Vec<u32>)],
) -> Option<f64> {
    let (mut instrumented, mut covered) = (0usize, 0usize);
    for (path, lines) in changed {
        // The report's path for this file: the same, else the shortest that ends with it
        // (`/tmp/x/pkg/a.go` or `example.com/m/pkg/a.go` for `pkg/a.go`, not
        // `example.com/m/sub/pkg/a.go`), else one it ends with.
        let matching: Vec<&HashMap<u32, bool>> = coverage
            .get(path)
            .or_else(|| {
                coverage
                    .iter()
                    .filter(|(p, _)| p.ends_with(&format!("/{path}")))
                    .min_by_key(|(p, _)| p.len())
                    .map(|(_, l)| l)
            })
            .or_else(|| {
                coverage
                    .iter()
                    .filter(|(p, _)| path.ends_with(&format!("/{p}")))
                    .max_by_key(|(p, _)| p.len())
                    .map(|(_, l)| l)
            })
            .into_iter()
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
    let put_back = || async {
        crate::review::local::git(&checkout, &["checkout", "--quiet", "--", "."]).await?;
        crate::review::local::git(&checkout, &["clean", "-fdq"]).await?;
        Ok::<(), String>(())
    };
    // What an interrupted run left must not be shown to the model as the repository's tests.
    if let Err(e) = put_back().await {
        return Err((outcome, format!("the checkout could not be reset: {e}")));
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
    // The report as this run wrote it (one left by an earlier run is removed first): read
    // even when a test failed, as Go and node write it all the same.
    let report = test.report.as_deref().map(|r| checkout.join(r));
    let coverage = |files: Vec<String>| {
        let report = report.clone();
        let checkout = checkout.clone();
        let changed = &changed;
        async move {
            let (cmd, report) = (test.coverage.as_deref()?, report?);
            let _ = std::fs::remove_file(&report);
            shell(&checkout, cmd, &files, options.timeout).await;
            let text = std::fs::read_to_string(&report).ok()?;
            covered_share(&read_coverage(&text), changed)
        }
    };
    if test.coverage.is_some() {
        outcome.coverage_before = coverage(Vec::new()).await;
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
        // A test the command did not run has not passed: its name must be in the output.
        outcome.ran = suggested
            .tests
            .iter()
            .filter(|t| !t.name.trim().is_empty() && ran.output.contains(t.name.trim()))
            .count();
        outcome.passes = Some(ran.ok && outcome.ran == suggested.tests.len());
        if ran.ok {
            outcome.compiles = Some(true);
            if outcome.ran < suggested.tests.len() {
                outcome.output = format!(
                    "the command passed but ran {} of the {} suggested test(s) (their names are not in its output)\n{}",
                    outcome.ran,
                    suggested.tests.len(),
                    ran.tail
                );
            }
        } else {
            outcome.output = ran.tail;
        }
        if test.coverage.is_some() {
            outcome.coverage = coverage(outcome.files.clone()).await;
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
        assert!(write_tests(root, &[suggestion(".git/config", "x")]).is_err());
        std::os::unix::fs::symlink(std::env::temp_dir(), root.join("out")).expect("link");
        assert!(write_tests(root, &[suggestion("out/test_x.py", "x")]).is_err());
    }

    #[test]
    fn two_tests_for_one_file_go_in_together_and_go_tests_beside_an_existing_file() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        std::fs::write(root.join("src/lib.rs"), "pub fn one() -> u32 {\n    1\n}\n").expect("w");
        std::fs::write(root.join("pager.go"), "package pager\n").expect("w");
        std::fs::write(
            root.join("pager_test.go"),
            "package pager\n\nimport \"testing\"\n",
        )
        .expect("w");
        let written = write_tests(
            root,
            &[
                suggestion("src/lib.rs", "#[test]\nfn a() {}"),
                suggestion("src/lib.rs", "#[test]\nfn b() {}"),
                suggestion(
                    "pager_test.go",
                    "import \"testing\"\n\nfunc TestQ(t *testing.T) {}",
                ),
            ],
        )
        .expect("written");
        assert_eq!(written, ["src/lib.rs", "pager_critic3_test.go"]);
        let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("read");
        assert_eq!(lib.matches("mod critic_suggested").count(), 1, "{lib}");
        assert!(
            lib.contains("    fn a() {}\n\n    #[test]\n    fn b() {}"),
            "{lib}"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("pager_critic3_test.go")).expect("read"),
            "package pager\n\nimport \"testing\"\n\nfunc TestQ(t *testing.T) {}\n"
        );
    }

    #[test]
    fn lcov_and_go_profiles_give_the_share_of_changed_lines_covered() {
        let lcov = "TN:\nSF:/tmp/x/pkg/pager.py\nDA:1,1\nDA:2,0\nDA:3,4\nend_of_record\nSF:other.py\nDA:2,1\nend_of_record\n";
        let cov = read_coverage(lcov);
        // Lines 2 and 3 changed and instrumented, 3 covered; line 9 is not instrumented.
        let changed = vec![("pkg/pager.py".to_string(), vec![2, 3, 9])];
        assert_eq!(covered_share(&cov, &changed), Some(0.5));
        // `context.go` is the root's, not `middleware/context.go`'s, whichever comes first.
        let two = "mode: set\nexample.com/m/middleware/context.go:1.1,1.9 1 1\nexample.com/m/context.go:1.1,1.9 1 0\n";
        let cov2 = read_coverage(two);
        assert_eq!(
            covered_share(&cov2, &[("context.go".into(), vec![1])]),
            Some(0.0)
        );
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
        assert_eq!((ok.ok, ok.tail.as_str()), (true, "a b\n"));
        let failed = shell(
            dir.path(),
            "echo broken >&2; exit 3",
            &[],
            Duration::from_secs(10),
        )
        .await;
        assert!(!failed.ok);
        assert_eq!(failed.tail, "broken\n");
        // The whole process group goes: a runner's child would otherwise live on.
        let slow = shell(
            dir.path(),
            "(sleep 1; touch left-behind) & sleep 5",
            &[],
            Duration::from_millis(200),
        )
        .await;
        assert!(!slow.ok && slow.tail.contains("did not finish"), "{slow:?}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!dir.path().join("left-behind").exists());
    }
}
