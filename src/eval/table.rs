//! `critic eval`'s report as a table for the terminal, and the comparison with a baseline.

use std::fmt::Write;

use super::EvalReport;
use super::score::CaseResult;

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| format!("{:.0}%", x * 100.0))
}

fn outcome(r: &CaseResult) -> &'static str {
    match (&r.error, r.hit) {
        (Some(_), _) => "FAILED",
        (None, Some(true)) => "hit",
        (None, Some(false)) => "miss",
        (None, None) if r.threads.is_empty() => "clean, quiet",
        (None, None) => "clean, false alarm",
    }
}

/// One line per case, then the totals.
pub fn render(report: &EvalReport) -> String {
    let mut out = String::new();
    let width = report
        .cases
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:<width$}  {:<18}  {:>7}  {:>4}  {:>6}  {:>8}  {:>7}",
        "case", "result", "threads", "hits", "chance", "tokens", "seconds"
    );
    for r in &report.cases {
        let hits = r.threads.iter().filter(|t| t.hits).count();
        let _ = writeln!(
            out,
            "{:<width$}  {:<18}  {:>7}  {:>4}  {:>6}  {:>8}  {:>7.1}",
            r.name,
            outcome(r),
            r.threads.len(),
            hits,
            percent(r.chance),
            r.input_tokens + r.output_tokens,
            r.seconds
        );
        if let Some(e) = &r.error {
            let _ = writeln!(
                out,
                "{:<width$}  error: {}",
                "",
                crate::llm::truncate(e, 160)
            );
        }
    }
    let t = &report.totals;
    let _ = writeln!(
        out,
        "\nmodel {}, verify {}: {} case(s), {} failed",
        if report.model.is_empty() {
            "-"
        } else {
            &report.model
        },
        if report.verify { "on" } else { "off" },
        t.cases,
        t.failed
    );
    let _ = writeln!(
        out,
        "bugs found: {} of {} case(s) with a known bug ({}; chance level {})",
        t.hits,
        t.with_bugs,
        percent((t.with_bugs > 0).then(|| t.hits as f64 / t.with_bugs as f64)),
        percent(t.mean_chance)
    );
    let _ = writeln!(
        out,
        "threads: {} in all; on cases with a bug, {} of {} near it ({})",
        t.threads,
        t.hitting_threads,
        t.threads_on_bug_cases,
        percent(t.thread_precision())
    );
    let _ = writeln!(
        out,
        "false alarms: {} thread(s) on {} of {} clean case(s)",
        t.false_alarms, t.clean_with_threads, t.clean
    );
    let _ = writeln!(
        out,
        "cost: {} input ({} cached) and {} output tokens (verifying: {} tokens, {} cached; without cached input, {} of the review calls'), ${:.4}, {:.1} s of reviews",
        t.input_tokens,
        t.cached_tokens,
        t.output_tokens,
        t.verify_tokens,
        t.verify_cached_tokens,
        percent(t.verify_share()),
        t.cost_usd,
        t.seconds
    );
    out
}

/// Case by case against `baseline`: what got better or worse, then the totals side by side.
pub fn compare(report: &EvalReport, baseline: &EvalReport) -> String {
    let mut out = String::from("\nagainst the baseline:\n");
    let (mut better, mut worse) = (0, 0);
    for r in &report.cases {
        let Some(b) = baseline.cases.iter().find(|b| b.name == r.name) else {
            let _ = writeln!(out, "  {}: new case", r.name);
            continue;
        };
        let score = |c: &CaseResult| -> i64 {
            // A hit counts most; on a clean case, fewer threads is better; a failure is worst.
            if c.error.is_some() {
                return -1000;
            }
            match c.hit {
                Some(true) => 100 - c.threads.iter().filter(|t| !t.hits).count() as i64,
                Some(false) => -(c.threads.len() as i64),
                None => -(c.threads.len() as i64),
            }
        };
        let (now, then) = (score(r), score(b));
        let verdict = match now.cmp(&then) {
            std::cmp::Ordering::Greater => {
                better += 1;
                "better"
            }
            std::cmp::Ordering::Less => {
                worse += 1;
                "worse"
            }
            std::cmp::Ordering::Equal => continue,
        };
        let _ = writeln!(
            out,
            "  {}: {verdict} ({}, {} thread(s); was {}, {} thread(s))",
            r.name,
            outcome(r),
            r.threads.len(),
            outcome(b),
            b.threads.len()
        );
    }
    for b in &baseline.cases {
        if !report.cases.iter().any(|r| r.name == b.name) {
            let _ = writeln!(out, "  {}: not in this run", b.name);
        }
    }
    let (t, b) = (&report.totals, &baseline.totals);
    let _ = writeln!(
        out,
        "  {better} better, {worse} worse; bugs found {} (was {}), threads near a bug {} (was {}), false alarms {} (was {}), output tokens {} (was {}), seconds {:.0} (was {:.0})",
        t.hits,
        b.hits,
        percent(t.thread_precision()),
        percent(b.thread_precision()),
        t.false_alarms,
        b.false_alarms,
        t.output_tokens,
        b.output_tokens,
        t.seconds,
        b.seconds
    );
    out
}
