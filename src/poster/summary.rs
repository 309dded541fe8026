//! The one summary comment per PR, found again by its hidden marker and edited in place on
//! every run: what the PR does, a walkthrough of its files, findings by severity, what was
//! skipped and why, and what the run cost.

use std::fmt::Write;

use super::markdown::table_cell as cell;
use crate::github::short_sha;
use crate::llm::Usage;
use crate::llm::cost::format_usd;
use crate::review::PrFile;

/// Marks Critic's summary comment; the head it covers follows on the next marker.
pub const SUMMARY_MARKER: &str = "<!-- critic:summary -->";

/// The head a summary covers, hidden in it so a retried job sees the run is complete.
pub fn head_marker(head_sha: &str) -> String {
    format!("<!-- critic:summary-head sha={head_sha} -->")
}

/// New findings of the run, by severity and by where they went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub critical: usize,
    pub warning: usize,
    pub nit: usize,
    pub inline: usize,
    pub in_body: usize,
    pub collapsed: usize,
    /// Reported before on this PR and not repeated.
    pub repeated: usize,
    /// Turned down on this repository before (👎, or resolved without a change): not posted.
    pub muted: usize,
}

pub struct RunSummary<'a> {
    pub head_sha: &'a str,
    /// Set on an incremental run: the head reviewed before.
    pub since_sha: Option<&'a str>,
    pub summary: &'a str,
    pub walkthrough: &'a [(String, String)],
    pub files: &'a [PrFile],
    pub counts: Counts,
    /// Link to the review posted by this run, if one was.
    pub review_url: Option<&'a str>,
    pub not_reviewed: &'a [(String, String)],
    pub model: &'a str,
    pub usage: Usage,
    pub cost_micros: i64,
    /// What the verify pass did, in a line (see `review::verify::Verification::describe`).
    pub verification: Option<&'a str>,
    /// Instructions learned from the repository's reactions, in force for this review.
    pub learned: &'a [String],
    /// Who paused automatic reviews of the pull request (`/pause`), if someone did.
    pub paused_by: Option<&'a str>,
}

/// GitHub's limit on a comment body is 65,536 characters; keep well under it.
const MAX_COMMENT: usize = 60_000;

pub fn render(s: &RunSummary<'_>) -> String {
    let mut out = format!("{SUMMARY_MARKER}\n## Critic summary\n\n");
    if !s.summary.is_empty() {
        let _ = writeln!(out, "{}\n", s.summary.trim());
    }
    let c = s.counts;
    let total = c.critical + c.warning + c.nit;
    let scope = match s.since_sha {
        Some(since) => format!(
            "changes since {} (up to {})",
            short_sha(since),
            short_sha(s.head_sha)
        ),
        None => short_sha(s.head_sha).to_string(),
    };
    if total == 0 {
        let _ = writeln!(out, "**No new findings** in {scope}.");
    } else {
        let _ = writeln!(
            out,
            "**{total} new finding(s)** in {scope}: 🔴 {} critical, 🟠 {} warning, ⚪ {} nit. {} inline{}{}.",
            c.critical,
            c.warning,
            c.nit,
            c.inline,
            if c.in_body > 0 {
                format!(", {} in the review body", c.in_body)
            } else {
                String::new()
            },
            if c.collapsed > 0 {
                format!(", {} collapsed", c.collapsed)
            } else {
                String::new()
            },
        );
    }
    if c.muted > 0 {
        let _ = writeln!(
            out,
            "\n{} finding(s) not posted: this repository turned them down before (👎 on the thread, resolved without changing the code, or argued down in a reply).",
            c.muted
        );
    }
    if c.repeated > 0 {
        let _ = writeln!(
            out,
            "\n{} finding(s) already reported on this pull request were not repeated.",
            c.repeated
        );
    }
    if let Some(line) = s.verification {
        let _ = writeln!(out, "\nVerification: {line}.");
    }
    if let Some(url) = s.review_url {
        let _ = writeln!(out, "\n[See the review]({url})");
    }
    if !s.files.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>Walkthrough ({} file(s))</summary>\n\n| File | Change | |\n| --- | --- | --- |",
            s.files.len()
        );
        let mut table = String::new();
        for (n, f) in s.files.iter().enumerate() {
            let change = s
                .walkthrough
                .iter()
                .find(|(p, _)| *p == f.file.filename)
                .map(|(_, c)| cell(c))
                .unwrap_or_else(|| f.file.status.to_string());
            let row = format!(
                "| `{}` | {} | +{} −{} |\n",
                cell(&f.file.filename),
                change,
                f.file.additions,
                f.file.deletions
            );
            if table.len() + row.len() > MAX_COMMENT / 2 {
                let _ = writeln!(table, "| … {} more | | |", s.files.len() - n);
                break;
            }
            table.push_str(&row);
        }
        out.push_str(&table);
        out.push_str("\n</details>\n");
    }
    if !s.not_reviewed.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>{} file(s) not reviewed</summary>\n",
            s.not_reviewed.len()
        );
        let mut list = String::new();
        for (n, (path, why)) in s.not_reviewed.iter().enumerate() {
            let row = format!("- `{path}`: {why}\n");
            if list.len() + row.len() > MAX_COMMENT / 4 {
                let _ = writeln!(list, "- … {} more", s.not_reviewed.len() - n);
                break;
            }
            list.push_str(&row);
        }
        out.push_str(&list);
        out.push_str("\n</details>\n");
    }
    if let Some(by) = s.paused_by {
        let _ = writeln!(
            out,
            "\n_Automatic reviews of this pull request are paused (by @{by}): pushes are not reviewed until someone comments `/resume`._"
        );
    }
    if !s.learned.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>Learned from this repository's reactions ({})</summary>\n",
            s.learned.len()
        );
        for l in s.learned {
            let _ = writeln!(out, "- {l}");
        }
        out.push_str("\n</details>\n");
    }
    let u = s.usage;
    let cached = if u.cached_tokens > 0 {
        format!(" ({} cached)", u.cached_tokens)
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "\n<sub>Model: {}. Tokens: {} in{cached}, {} out. Cost: {}. Critic comments only; it never approves or blocks.</sub>\n{}",
        if s.model.is_empty() { "none" } else { s.model },
        u.prompt_tokens,
        u.output_tokens,
        format_usd(s.cost_micros),
        head_marker(s.head_sha)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FileStatus;
    use crate::github::ChangedFile;

    fn files() -> Vec<PrFile> {
        ["src/a.rs", "docs/x|y.md"]
            .iter()
            .map(|p| {
                PrFile::from_github(ChangedFile {
                    filename: p.to_string(),
                    status: FileStatus::Modified,
                    additions: 3,
                    deletions: 1,
                    patch: None,
                    previous_filename: None,
                })
            })
            .collect()
    }

    fn summary<'a>(files: &'a [PrFile], walkthrough: &'a [(String, String)]) -> RunSummary<'a> {
        RunSummary {
            head_sha: "0123456789abcdef",
            since_sha: None,
            summary: "Adds retries.",
            walkthrough,
            files,
            counts: Counts {
                critical: 1,
                warning: 2,
                nit: 0,
                inline: 2,
                in_body: 1,
                collapsed: 0,
                repeated: 3,
                muted: 0,
            },
            review_url: Some("https://github.com/o/r/pull/1#pullrequestreview-9"),
            not_reviewed: &[],
            model: "openai/gpt-4.1",
            usage: Usage {
                prompt_tokens: 1200,
                output_tokens: 300,
                cached_tokens: 200,
            },
            cost_micros: 4_800,
            verification: None,
            learned: &[],
            paused_by: None,
        }
    }

    #[test]
    fn says_what_the_run_found_and_cost() {
        let files = files();
        let walk = [("src/a.rs".to_string(), "Retries | backs off".to_string())];
        let text = render(&summary(&files, &walk));
        assert!(text.starts_with(SUMMARY_MARKER));
        assert!(text.ends_with(&head_marker("0123456789abcdef")));
        assert!(text.contains("Adds retries."));
        assert!(
            text.contains("**3 new finding(s)** in 0123456: 🔴 1 critical, 🟠 2 warning"),
            "{text}"
        );
        assert!(text.contains("2 inline, 1 in the review body."), "{text}");
        assert!(text.contains("3 finding(s) already reported"));
        assert!(
            text.contains("| `src/a.rs` | Retries \\| backs off | +3 −1 |"),
            "{text}"
        );
        assert!(text.contains("| `docs/x\\|y.md` | modified |"), "{text}");
        assert!(
            text.contains("Tokens: 1200 in (200 cached), 300 out. Cost: $0.0048"),
            "{text}"
        );
    }

    #[test]
    fn incremental_runs_name_the_range_and_huge_prs_stay_under_the_limit() {
        let many: Vec<PrFile> = (0..5000)
            .map(|i| {
                PrFile::from_github(ChangedFile {
                    filename: format!("src/generated/module_{i}/file_with_a_long_name.rs"),
                    status: FileStatus::Added,
                    additions: 10,
                    deletions: 0,
                    patch: None,
                    previous_filename: None,
                })
            })
            .collect();
        let skipped: Vec<(String, String)> = (0..5000)
            .map(|i| (format!("vendor/{i}.js"), "vendored".to_string()))
            .collect();
        let mut s = summary(&many, &[]);
        s.since_sha = Some("fedcba9876543210");
        s.counts = Counts::default();
        s.not_reviewed = &skipped;
        let text = render(&s);
        assert!(
            text.contains("**No new findings** in changes since fedcba9 (up to 0123456)"),
            "{}",
            &text[..400]
        );
        assert!(text.chars().count() < 65_536, "{}", text.len());
        assert!(text.contains("more |"));
        assert!(text.ends_with(&head_marker("0123456789abcdef")));
    }
}
