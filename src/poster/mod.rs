//! Findings -> one GitHub review. Every inline thread is checked against the parsed diff
//! first, because GitHub rejects the whole review (422) if one thread is off the diff.

use std::fmt::Write;

use crate::diff::Side;
use crate::github::{GitHubError, Installation, NewReview, RepoName, Review, ReviewComment};
use crate::review::{Finding, PrFile};

/// Hidden marker that identifies Critic's review of one head commit; a retried job finds it
/// and does not post again.
pub fn review_marker(head_sha: &str) -> String {
    format!("<!-- critic:review sha={head_sha} -->")
}

/// A review ready to post, with the findings that could not go inline.
#[derive(Debug, Clone)]
pub struct DraftReview {
    pub review: NewReview,
    pub inline: usize,
    pub in_body: usize,
}

/// What the run says besides the findings.
pub struct SummaryInput<'a> {
    pub head_sha: &'a str,
    pub summary: &'a str,
    /// Files not reviewed, with the reason (skipped on purpose, or over the budget).
    pub not_reviewed: &'a [(String, String)],
    pub model: &'a str,
    pub max_inline: usize,
}

/// Places each finding inline if GitHub will accept it there, else in the body.
pub fn draft_review(findings: &[Finding], files: &[PrFile], s: &SummaryInput<'_>) -> DraftReview {
    let mut comments = Vec::new();
    let mut in_body: Vec<&Finding> = Vec::new();
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| f.severity);
    for f in sorted {
        match anchor(f, files) {
            Some(c) if comments.len() < s.max_inline => comments.push(c),
            _ => in_body.push(f),
        }
    }
    let inline = comments.len();
    let body = fit_body(&summary_body(s, inline, &in_body), s.head_sha);
    DraftReview {
        review: NewReview::comment(s.head_sha.to_string(), body, comments),
        inline,
        in_body: in_body.len(),
    }
}

/// The thread for a finding, if its lines are shown in the diff. When the model quoted the
/// code, the thread goes where that code really is (models often cite a line or two off);
/// otherwise on the cited line, if GitHub will accept it there.
fn anchor(f: &Finding, files: &[PrFile]) -> Option<ReviewComment> {
    let patch = files
        .iter()
        .find(|p| p.file.filename == f.path)?
        .patch
        .as_ref()?;
    let found = f
        .quote
        .as_deref()
        .and_then(|q| patch.find_snippet(q, Some(f.line)))
        .filter(|m| m.side() == f.side);
    let (start_line, line) = match found {
        Some(m) => ((m.start < m.end).then_some(m.start), m.end),
        None => {
            if !patch.is_commentable(f.side, f.line) {
                return None;
            }
            let start = f
                .start_line
                .filter(|s| patch.is_commentable_range(f.side, *s, f.line));
            (start, f.line)
        }
    };
    Some(ReviewComment {
        path: f.path.clone(),
        line,
        side: f.side,
        start_line,
        start_side: start_line.map(|_| f.side),
        body: finding_markdown(f),
    })
}

fn finding_markdown(f: &Finding) -> String {
    let icon = match f.severity {
        crate::review::Severity::Critical => "🔴",
        crate::review::Severity::Warning => "🟠",
        crate::review::Severity::Nit => "⚪",
    };
    let mut out = format!("{icon} **{}** ({})", f.severity.label(), f.category);
    if !f.title.is_empty() {
        let _ = write!(out, ": {}", f.title);
    }
    let _ = write!(out, "\n\n{}", f.body);
    out
}

fn summary_body(s: &SummaryInput<'_>, inline: usize, in_body: &[&Finding]) -> String {
    let mut out = String::from("## Critic review\n\n");
    if !s.summary.is_empty() {
        let _ = writeln!(out, "{}\n", s.summary);
    }
    let total = inline + in_body.len();
    if total == 0 {
        out.push_str("No problems found in this change.\n");
    } else {
        let _ = writeln!(out, "{total} finding(s), {inline} inline.");
    }
    if !in_body.is_empty() {
        out.push_str("\n<details><summary>Findings not on a line of the diff</summary>\n\n");
        for f in in_body {
            let side = if f.side == Side::Left { " (old)" } else { "" };
            let lines = match f.start_line {
                Some(start) => format!("{start}-{}", f.line),
                None => f.line.to_string(),
            };
            let _ = writeln!(
                out,
                "- `{}` line {lines}{side}: {}\n",
                f.path,
                finding_markdown(f).replace("\n\n", "\n  ")
            );
        }
        out.push_str("</details>\n");
    }
    if !s.not_reviewed.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>{} file(s) not reviewed</summary>\n",
            s.not_reviewed.len()
        );
        for (path, why) in s.not_reviewed {
            let _ = writeln!(out, "- `{path}`: {why}");
        }
        out.push_str("\n</details>\n");
    }
    let _ = write!(
        out,
        "\n<sub>Model: {}. Critic comments only; it never approves or blocks.</sub>\n{}",
        s.model,
        review_marker(s.head_sha)
    );
    out
}

/// GitHub refuses a review body over 65,536 characters; stay well under it, cutting at a
/// line and keeping the marker.
const MAX_REVIEW_BODY: usize = 60_000;

fn fit_body(body: &str, head_sha: &str) -> String {
    if body.chars().count() <= MAX_REVIEW_BODY {
        return body.to_string();
    }
    let marker = review_marker(head_sha);
    let budget = MAX_REVIEW_BODY - marker.len() - 200;
    let mut cut = 0;
    for (i, _) in body.match_indices('\n') {
        if body[..i].chars().count() > budget {
            break;
        }
        cut = i;
    }
    let omitted = body[cut..].chars().count();
    format!(
        "{}\n\n… {omitted} more characters left out (GitHub's size limit).\n{marker}",
        &body[..cut]
    )
}

/// How a draft was posted.
#[derive(Debug)]
pub struct Posted {
    pub review: Review,
    /// True when GitHub refused the threads and they were folded into the body instead.
    pub fell_back: bool,
}

/// Posts the draft. If GitHub still refuses a thread (422), the review is posted again with
/// every finding in the body, so the review is never lost.
pub async fn post(
    gh: &Installation,
    repo: &RepoName,
    number: u64,
    draft: &DraftReview,
) -> Result<Posted, GitHubError> {
    match gh.create_review(repo, number, &draft.review).await {
        Ok(review) => Ok(Posted {
            review,
            fell_back: false,
        }),
        Err(e) if e.status() == Some(422) && !draft.review.comments.is_empty() => {
            tracing::warn!(error = %e, "GitHub refused inline threads; posting them in the body");
            let mut body = String::new();
            for c in &draft.review.comments {
                let _ = writeln!(
                    body,
                    "- `{}` line {}: {}\n",
                    c.path,
                    c.line,
                    c.body.replace("\n\n", "\n  ")
                );
            }
            let folded = draft.review.body.replacen(
                "\n<sub>",
                &format!("\n<details><summary>Findings (GitHub refused them as inline threads)</summary>\n\n{body}</details>\n\n<sub>"),
                1,
            );
            let folded = fit_body(&folded, &draft.review.commit_id);
            let retry = NewReview::comment(draft.review.commit_id.clone(), folded, Vec::new());
            let review = gh.create_review(repo, number, &retry).await?;
            Ok(Posted {
                review,
                fell_back: true,
            })
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::ChangedFile;
    use crate::review::Severity;

    fn files() -> Vec<PrFile> {
        vec![PrFile::from_github(ChangedFile {
            filename: "a.py".into(),
            status: "modified".into(),
            additions: 2,
            deletions: 1,
            patch: Some(
                "@@ -10,4 +10,5 @@ def f():\n x\n-y\n+z\n+w\n q\n@@ -40,2 +41,2 @@\n m\n-n\n+o"
                    .into(),
            ),
            previous_filename: None,
        })]
    }

    fn finding(line: u32, start: Option<u32>) -> Finding {
        Finding {
            path: "a.py".into(),
            line,
            start_line: start,
            side: Side::Right,
            severity: Severity::Warning,
            category: "bug".into(),
            title: "t".into(),
            body: "b".into(),
            quote: None,
        }
    }

    fn input() -> SummaryInput<'static> {
        SummaryInput {
            head_sha: "abc",
            summary: "S",
            not_reviewed: &[],
            model: "m",
            max_inline: 10,
        }
    }

    #[test]
    fn lines_in_the_diff_go_inline_others_in_the_body() {
        let d = draft_review(&[finding(11, None), finding(30, None)], &files(), &input());
        assert_eq!((d.inline, d.in_body), (1, 1));
        assert_eq!(d.review.comments[0].line, 11);
        assert!(d.review.body.contains("`a.py` line 30"));
        assert!(d.review.body.ends_with(&review_marker("abc")));
    }

    #[test]
    fn ranges_across_hunks_lose_their_start() {
        let d = draft_review(
            &[finding(42, Some(11)), finding(12, Some(10))],
            &files(),
            &input(),
        );
        let starts: Vec<_> = d
            .review
            .comments
            .iter()
            .map(|c| (c.start_line, c.line))
            .collect();
        assert!(starts.contains(&(None, 42)));
        assert!(starts.contains(&(Some(10), 12)));
    }

    #[test]
    fn a_wrong_line_is_moved_to_the_code_it_quotes() {
        // Cited line 30 is outside the diff, but the quoted code is new line 12 (`+w`).
        let f = Finding {
            quote: Some("w".into()),
            ..finding(30, None)
        };
        let d = draft_review(&[f], &files(), &input());
        assert_eq!(d.inline, 1);
        assert_eq!(d.review.comments[0].line, 12);
        // A quote of two lines becomes a range.
        let f = Finding {
            quote: Some("z\nw".into()),
            ..finding(10, None)
        };
        let d = draft_review(&[f], &files(), &input());
        assert_eq!(
            (d.review.comments[0].start_line, d.review.comments[0].line),
            (Some(11), 12)
        );
    }

    #[test]
    fn a_quote_found_nowhere_falls_back_to_the_cited_line() {
        let f = Finding {
            quote: Some("not in this diff".into()),
            ..finding(11, None)
        };
        let d = draft_review(&[f], &files(), &input());
        assert_eq!(d.review.comments[0].line, 11);
        let f = Finding {
            quote: Some("not in this diff".into()),
            ..finding(30, None)
        };
        let d = draft_review(&[f], &files(), &input());
        assert_eq!((d.inline, d.in_body), (0, 1));
    }

    #[test]
    fn inline_cap_moves_the_rest_to_the_body() {
        let s = SummaryInput {
            max_inline: 1,
            ..input()
        };
        let d = draft_review(&[finding(11, None), finding(12, None)], &files(), &s);
        assert_eq!((d.inline, d.in_body), (1, 1));
    }

    #[test]
    fn huge_bodies_fit_github_and_keep_the_marker() {
        let long: Vec<Finding> = (0..60)
            .map(|i| Finding {
                line: 500 + i,
                body: "y".repeat(3000),
                ..finding(1, None)
            })
            .collect();
        let d = draft_review(&long, &files(), &input());
        assert!(
            d.review.body.chars().count() <= MAX_REVIEW_BODY,
            "{}",
            d.review.body.len()
        );
        assert!(d.review.body.ends_with(&review_marker("abc")));
        assert!(d.review.body.contains("left out"));
    }

    #[test]
    fn files_not_reviewed_are_named_with_the_reason() {
        let not = [("Cargo.lock".to_string(), "lock file".to_string())];
        let s = SummaryInput {
            not_reviewed: &not,
            ..input()
        };
        let d = draft_review(&[], &files(), &s);
        assert!(
            d.review.body.contains("- `Cargo.lock`: lock file"),
            "{}",
            d.review.body
        );
    }

    #[test]
    fn no_findings_says_so() {
        let d = draft_review(&[], &files(), &input());
        assert!(d.review.body.contains("No problems found"));
        assert!(d.review.comments.is_empty());
    }
}
