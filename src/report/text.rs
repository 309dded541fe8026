//! The report for a terminal: each finding with its place, the lines it is about and the
//! suggested change as a diff. Colour only when asked (a terminal without `NO_COLOR`).

use std::fmt::Write;

use crate::domain::Severity;

use super::{Item, Placement, Report};

/// `colour`: ANSI colours, for a terminal.
pub fn text(report: &Report, colour: bool) -> String {
    let heads = |path: &str| report.heads.get(path);
    let paint = |code: &str, s: &str| {
        if colour {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    for f in &report.findings {
        let severity = match f.severity {
            Severity::Critical => paint("1;31", "critical"),
            Severity::Warning => paint("33", "warning"),
            Severity::Nit => paint("2", "nit"),
        };
        let lines = if f.start_line == f.end_line {
            format!("{}", f.end_line)
        } else {
            format!("{}-{}", f.start_line, f.end_line)
        };
        let _ = write!(out, "{}:{lines}: {severity}", paint("1", &f.path));
        if !f.category.is_empty() {
            let _ = write!(out, " ({})", f.category);
        }
        let _ = writeln!(out, ": {}", f.title);
        match f.placement {
            Placement::Inline => {}
            Placement::NotOnChangedLine => {
                let _ = writeln!(out, "  (not on a changed line)");
            }
            Placement::Collapsed => {
                let _ = writeln!(
                    out,
                    "  (collapsed: below the severity shown as threads, or over the cap)"
                );
            }
        }
        for line in f.body.lines() {
            let _ = writeln!(out, "  {line}");
        }
        // Lines the change removed are not in the head: nothing to quote from it.
        if let Some(head) = heads(&f.path).filter(|_| f.side == crate::domain::Side::Right) {
            quote(&mut out, head, f);
        }
        if let Some(s) = &f.suggestion {
            let _ = writeln!(out, "  suggested change:");
            if let Some(head) = heads(&f.path) {
                for line in lines_of(head, f.start_line, f.end_line) {
                    let _ = writeln!(out, "  {}", paint("31", &format!("-{line}")));
                }
            }
            for line in s.lines() {
                let _ = writeln!(out, "  {}", paint("32", &format!("+{line}")));
            }
        }
        out.push('\n');
    }
    let count = |s: Severity| report.findings.iter().filter(|f| f.severity == s).count();
    let _ = writeln!(
        out,
        "{} finding(s): {} critical, {} warning, {} nit; {} file(s) changed, model {}, {} input and {} output tokens",
        report.findings.len(),
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Nit),
        report.files,
        if report.model.is_empty() {
            "-"
        } else {
            &report.model
        },
        report.usage.input,
        report.usage.output,
    );
    if let Some(v) = &report.verification {
        let _ = writeln!(out, "verification: {v}");
    }
    for n in &report.not_reviewed {
        let _ = writeln!(out, "not reviewed: {} ({})", n.path, n.reason);
    }
    out
}

/// The finding's lines with their numbers, and one line of context either side.
fn quote(out: &mut String, head: &str, f: &Item) {
    let from = f.start_line.saturating_sub(1).max(1);
    let to = f.end_line.saturating_add(1);
    for (n, line) in head.lines().enumerate() {
        let n = n as u32 + 1;
        if n < from {
            continue;
        }
        if n > to {
            break;
        }
        let mark = if (f.start_line..=f.end_line).contains(&n) {
            '>'
        } else {
            ' '
        };
        let _ = writeln!(out, "  {mark} {n:>5} | {line}");
    }
}

fn lines_of(head: &str, start: u32, end: u32) -> impl Iterator<Item = &str> {
    head.lines()
        .enumerate()
        .filter(move |(n, _)| (start..=end).contains(&(*n as u32 + 1)))
        .map(|(_, l)| l)
}
