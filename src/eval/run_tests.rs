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

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::case::{Case, CaseSource, TestCommand};
use super::coverage::{covered_share, read_coverage};
use super::shell::shell;
use crate::review::tasks::TestSuggestion;
use crate::review::test_files::write_tests;

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
        .filter(|(path, _)| !super::mine::is_test(path))
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
            .filter(|t| names_of(t).iter().any(|n| ran.output.contains(n.as_str())))
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

/// What a test runner may call a suggested test in its output: its name, and (JavaScript's
/// `test('...', ...)`, `it("...")`) the titles its code gives.
fn names_of(t: &TestSuggestion) -> Vec<String> {
    let mut names = vec![t.name.trim().to_string()];
    for call in ["test(", "it("] {
        for (i, _) in t.code.match_indices(call) {
            let before = t.code[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                continue;
            }
            let rest = t.code[i + call.len()..].trim_start();
            let Some(quote) = rest.chars().next().filter(|c| "'\"`".contains(*c)) else {
                continue;
            };
            if let Some(end) = rest[1..].find(quote) {
                names.push(rest[1..1 + end].to_string());
            }
        }
    }
    names.retain(|n| !n.is_empty());
    names
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

    #[test]
    fn a_test_is_known_by_its_name_or_its_javascript_titles() {
        let t = TestSuggestion {
            path: "test/a.test.js".into(),
            name: "skips the stack".into(),
            covers: "c".into(),
            code: "test('creates an error without a stack', () => {});\nit(\"keeps the code\", () => {});\nretest('x')".into(),
        };
        assert_eq!(
            names_of(&t),
            [
                "skips the stack",
                "creates an error without a stack",
                "keeps the code"
            ]
        );
    }
}
