//! What the checks of a pushed commit say: every other App's check runs and the commit
//! statuses, whether they are done and passed, and what CI reported on the failed ones.

use std::fmt::Write;

use crate::github::{
    CheckRun, CombinedStatus, GITHUB_ACTIONS_SLUG, GitHubError, Installation, RepoName,
};

/// Most characters of CI output shown to the model, and in the answer.
pub(super) const MAX_REPORT_CHARS: usize = 12_000;

/// Most lines of a failed job's log kept (its end, where the failure is).
pub(super) const LOG_TAIL_LINES: usize = 80;

/// How much of a log's end is read for its last lines.
const LOG_READ_BYTES: usize = 64 * 1024;

/// What the checks of a commit say so far.
#[derive(Debug, Default)]
pub(super) struct Checks {
    runs: Vec<CheckRun>,
    statuses: Statuses,
    /// Checks (by name) and statuses (by context) that failed on the pull request's head
    /// too: their failure is not the tests'.
    failing_before: Vec<String>,
}

/// The commit statuses, as far as they were read.
#[derive(Debug, Default)]
enum Statuses {
    #[default]
    NotRead,
    /// The App lacks `statuses: read`.
    Denied,
    Read(CombinedStatus),
}

/// A conclusion that lets the tests pass.
pub(super) fn passing(conclusion: Option<&str>) -> bool {
    matches!(conclusion, Some("success" | "neutral" | "skipped"))
}

fn failed_status(state: &str) -> bool {
    state == "failure" || state == "error"
}

impl Checks {
    /// The checks of `sha`, a commit of tests on top of the pull request's `head`.
    pub(super) async fn read(
        gh: &Installation,
        repo: &RepoName,
        sha: &str,
        head: &str,
    ) -> Result<Checks, GitHubError> {
        let runs = gh.others_check_runs(repo, sha).await?;
        let statuses = read_statuses(gh, repo, sha).await?;
        let mut checks = Checks {
            runs,
            statuses,
            failing_before: Vec::new(),
        };
        if checks.failed_anyway() {
            let before = Checks {
                runs: gh.others_check_runs(repo, head).await?,
                statuses: read_statuses(gh, repo, head).await?,
                failing_before: Vec::new(),
            };
            checks.failing_before = before
                .failed_runs()
                .map(|r| r.name.clone())
                .chain(before.failed_statuses().map(|s| s.context.clone()))
                .collect();
        }
        Ok(checks)
    }

    /// GitHub refused to show the commit statuses: the App lacks `statuses: read`.
    pub(super) fn statuses_denied(&self) -> bool {
        matches!(self.statuses, Statuses::Denied)
    }

    pub(super) fn statuses(&self) -> &[crate::github::CommitStatus] {
        match &self.statuses {
            Statuses::Read(s) => &s.statuses,
            Statuses::NotRead | Statuses::Denied => &[],
        }
    }

    pub(super) fn seen(&self) -> bool {
        !self.runs.is_empty() || !self.statuses().is_empty()
    }

    pub(super) fn pending(&self) -> bool {
        self.runs.iter().any(|r| r.status != "completed")
            || self.statuses().iter().any(|s| s.state == "pending")
    }

    /// Whether some check succeeded: checks that were all skipped ran no test.
    pub(super) fn succeeded(&self) -> bool {
        self.runs
            .iter()
            .any(|r| r.conclusion.as_deref() == Some("success"))
            || self.statuses().iter().any(|s| s.state == "success")
    }

    /// Failed checks whatever failed on the head already.
    fn failed_anyway(&self) -> bool {
        self.runs
            .iter()
            .any(|r| r.status == "completed" && !passing(r.conclusion.as_deref()))
            || self.statuses().iter().any(|s| failed_status(&s.state))
    }

    /// Failed runs that did not fail on the head: the tests' doing.
    pub(super) fn failed_runs(&self) -> impl Iterator<Item = &CheckRun> {
        self.runs.iter().filter(|r| {
            r.status == "completed"
                && !passing(r.conclusion.as_deref())
                && !self.failing_before.contains(&r.name)
        })
    }

    /// Failed statuses that did not fail on the head.
    pub(super) fn failed_statuses(&self) -> impl Iterator<Item = &crate::github::CommitStatus> {
        self.statuses()
            .iter()
            .filter(|s| failed_status(&s.state) && !self.failing_before.contains(&s.context))
    }

    pub(super) fn failed(&self) -> bool {
        self.failed_runs().next().is_some() || self.failed_statuses().next().is_some()
    }

    /// Checks that fail on the pull request's head as well.
    pub(super) fn failing_before(&self) -> &[String] {
        &self.failing_before
    }

    /// A Markdown table of every check with its result and a link.
    pub(super) fn table(&self) -> String {
        let mut out = String::from("| Check | Result |\n| --- | --- |\n");
        for r in &self.runs {
            let result = match (&*r.status, r.conclusion.as_deref()) {
                ("completed", Some(c)) => c.to_string(),
                (status, _) => status.replace('_', " "),
            };
            let link = r.html_url.as_deref().or(r.details_url.as_deref());
            let _ = writeln!(
                out,
                "| {} | {} |",
                linked(&r.name, link),
                crate::poster::markdown::table_cell(&result)
            );
        }
        for s in self.statuses() {
            let _ = writeln!(
                out,
                "| {} | {} |",
                linked(&s.context, s.target_url.as_deref()),
                crate::poster::markdown::table_cell(&s.state)
            );
        }
        out
    }
}

/// The commit's statuses, unless the App may not read them.
async fn read_statuses(
    gh: &Installation,
    repo: &RepoName,
    sha: &str,
) -> Result<Statuses, GitHubError> {
    match gh.combined_status(repo, sha).await {
        Ok(s) => Ok(Statuses::Read(s)),
        Err(e) if e.lacks_permission() => Ok(Statuses::Denied),
        Err(e) => Err(e),
    }
}

fn linked(name: &str, url: Option<&str>) -> String {
    let name = crate::poster::markdown::table_cell(name);
    match url {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            format!("[{name}]({url})")
        }
        _ => name,
    }
}

/// What CI reported on the failed checks, for the model and the answer: each failed run's
/// output and annotations, the end of a failed GitHub Actions job's log (when the App may
/// read it), and each failed status's description. Redacted (a log may print secrets), and
/// cut to [`MAX_REPORT_CHARS`].
pub(super) async fn failure_report(gh: &Installation, repo: &RepoName, checks: &Checks) -> String {
    let mut out = String::new();
    for run in checks.failed_runs() {
        let _ = writeln!(
            out,
            "### {} ({})",
            shown(&run.name, 200),
            run.conclusion.as_deref().unwrap_or("failed")
        );
        if let Some(o) = &run.output {
            for part in [&o.title, &o.summary, &o.text].into_iter().flatten() {
                let part = part.trim();
                if !part.is_empty() {
                    let _ = writeln!(out, "{}", shown(part, 3000));
                }
            }
            if o.annotations_count > 0 {
                match gh.check_run_annotations(repo, run.id).await {
                    Ok(notes) => {
                        for a in notes.iter().filter(|a| a.annotation_level != "notice") {
                            let _ = writeln!(
                                out,
                                "{}:{}: {}",
                                shown(&a.path, 300),
                                a.start_line,
                                shown(a.message.trim(), 500)
                            );
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, run = run.id, "cannot read annotations"),
                }
            }
        }
        let actions = run
            .app
            .as_ref()
            .and_then(|a| a.slug.as_deref())
            .is_some_and(|s| s == GITHUB_ACTIONS_SLUG);
        if actions {
            match gh.job_log(repo, run.id).await {
                Ok(log) => {
                    let _ = writeln!(out, "The end of its log:\n{}", log_tail(&log));
                }
                // Without `actions: read`, or a log GitHub no longer keeps.
                Err(e) => tracing::info!(error = %e, run = run.id, "cannot read the job's log"),
            }
        }
        out.push('\n');
    }
    for s in checks.failed_statuses() {
        let _ = writeln!(
            out,
            "### {} ({})\n{}\n",
            shown(&s.context, 200),
            s.state,
            shown(s.description.as_deref().unwrap_or(""), 1000)
        );
    }
    crate::llm::truncate(out.trim(), MAX_REPORT_CHARS)
}

/// CI's text as shown: secrets out first, then cut (a cut secret would no longer look like
/// one).
fn shown(text: &str, max: usize) -> String {
    crate::llm::truncate(&crate::context::redact::redact(text).text, max)
}

/// The last lines of a job's log, without the timestamps GitHub Actions starts each line
/// with or terminal colour codes.
pub(super) fn log_tail(log: &str) -> String {
    // The end of a long log, from a line's start, redacted whole before its last lines are
    // kept: a key printed over several lines is recognised by its first.
    let mut from = log.len().saturating_sub(LOG_READ_BYTES);
    while !log.is_char_boundary(from) {
        from += 1;
    }
    let end = &log[from..];
    let end = match (from > 0, end.find('\n')) {
        (true, Some(nl)) => &end[nl + 1..],
        _ => end,
    };
    let redacted = crate::context::redact::redact(end).text;
    let lines: Vec<&str> = redacted.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines[start..]
        .iter()
        .map(|l| {
            let l = match l.split_once(' ') {
                Some((stamp, rest))
                    if stamp.len() >= 20 && stamp.ends_with('Z') && stamp.contains('T') =>
                {
                    rest
                }
                _ => l,
            };
            strip_ansi(l)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_tail_drops_timestamps_and_colours() {
        let mut log = String::new();
        for i in 0..100 {
            log.push_str(&format!(
                "2026-12-07T09:00:{:02}.1234567Z line {i}\n",
                i % 60
            ));
        }
        log.push_str(
            "2026-12-07T09:01:40.0000000Z \u{1b}[31merror[E0425]\u{1b}[0m: cannot find value `x`\n",
        );
        let tail = log_tail(&log);
        assert_eq!(tail.lines().count(), LOG_TAIL_LINES);
        assert!(
            tail.ends_with("error[E0425]: cannot find value `x`"),
            "{tail}"
        );
        assert!(!tail.contains("2026-12-07T"), "{tail}");
        assert!(!tail.contains("line 20\n"), "{tail}");
        assert_eq!(log_tail("plain line"), "plain line");
    }

    #[test]
    fn passing_conclusions() {
        assert!(passing(Some("success")));
        assert!(passing(Some("skipped")));
        assert!(passing(Some("neutral")));
        assert!(!passing(Some("failure")));
        assert!(!passing(Some("cancelled")));
        assert!(!passing(Some("timed_out")));
        assert!(!passing(None));
    }
}
