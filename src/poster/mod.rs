//! Findings -> one GitHub review. Every inline thread is checked against the parsed diff
//! first, because GitHub rejects the whole review (422) if one thread is off the diff.

pub mod bisect;

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use crate::diff::Side;
use crate::domain::{Finding, Severity};
use crate::github::{NewReview, PullReviewComment, ReviewComment};
use crate::review::PrFile;
use crate::store::StoredFinding;

pub mod fingerprint;
pub mod markdown;
pub mod suggestion;
pub mod summary;

/// Hidden marker that identifies Critic's review of one head commit; a retried job finds it
/// and does not post again.
pub fn review_marker(head_sha: &str) -> String {
    format!("<!-- critic:review sha={head_sha} -->")
}

/// Where each new finding went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A thread; the index into the review's comments.
    Inline(usize),
    /// Listed in the review body: its lines are not part of the diff, or its path names no
    /// file of the PR.
    Body,
    /// Counted and listed collapsed: below the severity threshold or over the thread cap.
    Collapsed,
}

/// One new finding and where it went, with its fingerprint for the store.
#[derive(Debug, Clone)]
pub struct Placed {
    /// Which of the findings given to [`draft_review`] this is.
    pub finding: usize,
    pub fingerprint: String,
    pub path: String,
    pub line: u32,
    pub severity: Severity,
    pub category: String,
    pub place: Place,
}

/// A review ready to post. Empty (nothing new to say) means nothing is posted.
#[derive(Debug, Clone)]
pub struct DraftReview {
    pub review: NewReview,
    pub placed: Vec<Placed>,
    /// Findings already posted on this PR in an earlier run, dropped.
    pub repeated: usize,
    /// Findings the repository dismissed or thumbed down before, dropped.
    pub muted: usize,
}

impl DraftReview {
    pub fn count(&self, place: fn(&Place) -> bool) -> usize {
        self.placed.iter().filter(|p| place(&p.place)).count()
    }

    pub fn inline(&self) -> usize {
        self.count(|p| matches!(p, Place::Inline(_)))
    }

    pub fn in_body(&self) -> usize {
        self.count(|p| *p == Place::Body)
    }

    pub fn collapsed(&self) -> usize {
        self.count(|p| *p == Place::Collapsed)
    }

    /// Nothing new to post.
    pub fn is_empty(&self) -> bool {
        self.placed.is_empty()
    }

    /// New findings of one severity, wherever they went.
    pub fn of_severity(&self, severity: Severity) -> usize {
        self.placed
            .iter()
            .filter(|p| p.severity == severity)
            .count()
    }
}

/// Whether (path, first line, last line) at head is in a run's scope.
pub type InScope<'a> = dyn Fn(&str, u32, u32) -> bool + Sync + 'a;

/// How findings become a review.
pub struct DraftInput<'a> {
    pub head_sha: &'a str,
    /// Most inline threads; the rest are counted and collapsed.
    pub max_inline: usize,
    /// The lowest severity posted as a thread; lower ones are counted and collapsed.
    pub min_severity: Severity,
    /// Fingerprints of findings already posted on this PR.
    pub known: &'a HashSet<String>,
    /// Fingerprints the repository's people thumbed down or dismissed on earlier threads:
    /// not posted again, counted as muted.
    pub muted: &'a HashSet<String>,
    /// On a push after a review: whether (path, first line, last line) at head is code the
    /// push changed. New findings elsewhere are dropped (the last review covered that code);
    /// repeated ones are still counted as repeated.
    pub in_scope: Option<&'a InScope<'a>>,
    /// Head contents of the PR's files, by path: a suggestion is checked against them, and
    /// posted without its block when the file is not here.
    pub heads: &'a HashMap<String, Vec<u8>>,
}

/// Places each new finding: inline if GitHub will accept it there and it is severe enough
/// and under the cap, in the body if its lines are not in the diff or its path is no file of
/// the PR, collapsed otherwise. Findings posted before (same fingerprint) are dropped.
pub fn draft_review(findings: &[Finding], files: &[PrFile], s: &DraftInput<'_>) -> DraftReview {
    let mut comments = Vec::new();
    let mut placed = Vec::new();
    let mut in_body: Vec<&Finding> = Vec::new();
    let mut collapsed: Vec<&Finding> = Vec::new();
    let mut seen = HashSet::new();
    let mut repeated = 0;
    let mut muted = 0;
    let mut sorted: Vec<(usize, &Finding)> = findings.iter().enumerate().collect();
    // The most severe first and, within a severity, what the verify pass was surest of: the
    // cap on threads keeps those.
    sorted.sort_by_key(|(_, f)| (f.severity, std::cmp::Reverse(f.confidence)));
    for (index, f) in sorted {
        let thread = anchor(f, files).map(|c| with_suggestion(c, f, s.heads));
        let (fingerprint, legacy) = fingerprints_of(f, thread.as_ref(), files);
        // Turned down before counts first: a push that raises a thumbed-down finding again is
        // told as muted, not as a repeat.
        if s.muted.contains(&fingerprint) || s.muted.contains(&legacy) {
            if seen.insert(fingerprint.clone()) {
                muted += 1;
            }
            continue;
        }
        if s.known.contains(&fingerprint)
            || s.known.contains(&legacy)
            || !seen.insert(fingerprint.clone())
        {
            repeated += 1;
            continue;
        }
        // A path that names no file of the PR has no changed code to scope by: listed.
        let on_pr_file = files.iter().any(|p| p.file.filename == f.path);
        if let Some(in_scope) = s.in_scope.filter(|_| on_pr_file) {
            let (start, end) = match &thread {
                Some(c) if c.side == Side::Right => (c.start_line.unwrap_or(c.line), c.line),
                _ => (f.start_line.unwrap_or(f.line), f.line),
            };
            if !in_scope(&f.path, start, end) {
                continue;
            }
        }
        let place = match thread {
            Some(_) if f.severity > s.min_severity => Place::Collapsed,
            Some(_) if comments.len() >= s.max_inline => Place::Collapsed,
            Some(c) => {
                comments.push(c);
                Place::Inline(comments.len() - 1)
            }
            None => Place::Body,
        };
        match place {
            Place::Body => in_body.push(f),
            Place::Collapsed => collapsed.push(f),
            Place::Inline(_) => {}
        }
        placed.push(Placed {
            finding: index,
            fingerprint,
            path: f.path.clone(),
            line: f.line,
            severity: f.severity,
            category: f.category.clone(),
            place,
        });
    }
    let body = fit_body(
        &review_body(s, comments.len(), &in_body, &collapsed, repeated),
        s.head_sha,
    );
    DraftReview {
        review: NewReview::comment(s.head_sha.to_string(), body, comments),
        placed,
        repeated,
        muted,
    }
}

/// What to remember of each posted finding: its fingerprint, where it went, and the id of
/// its thread (found among the PR's review comments by review, path and line).
pub fn finding_records(
    draft: &DraftReview,
    posted: &bisect::Resilient,
    comments: &[PullReviewComment],
    head: &str,
) -> Vec<StoredFinding> {
    // Two findings can share a line: a thread is told apart by its whole body too, and each
    // posted comment is taken by one finding only.
    let mut taken: HashSet<u64> = HashSet::new();
    draft
        .placed
        .iter()
        .map(|p| {
            let thread = match p.place {
                Place::Inline(i) => draft.review.comments.get(i),
                _ => None,
            };
            let refused = thread.is_some_and(|t| posted.refused.iter().any(|r| r == t));
            let comment_id = thread.filter(|_| !refused).and_then(|t| {
                let found = comments.iter().find(|c| {
                    c.pull_request_review_id == Some(posted.review.id)
                        && c.in_reply_to_id.is_none()
                        && c.path == t.path
                        && c.line == Some(t.line)
                        && c.body == t.body
                        && !taken.contains(&c.id)
                })?;
                taken.insert(found.id);
                Some(found.id as i64)
            });
            let place = match (&p.place, refused) {
                (Place::Inline(_), false) => "inline",
                (Place::Inline(_), true) | (Place::Body, _) => "body",
                (Place::Collapsed, _) => "collapsed",
            };
            StoredFinding {
                fingerprint: p.fingerprint.clone(),
                path: p.path.clone(),
                line: i64::from(thread.map(|t| t.line).unwrap_or(p.line)),
                severity: p.severity.label().to_string(),
                place: place.to_string(),
                head_sha: head.to_string(),
                review_id: Some(posted.review.id as i64),
                comment_id,
                addressed_sha: None,
                category: p.category.clone(),
            }
        })
        .collect()
}

/// The finding's fingerprint and its legacy one (see [`fingerprint`]). The code is the lines
/// of its thread when it has one, else what the model quoted, else (weakest) the cited line's
/// number; a quote that holds more than the thread's lines is added, since it tells apart
/// findings on look-alike lines.
fn fingerprints_of(
    f: &Finding,
    thread: Option<&ReviewComment>,
    files: &[PrFile],
) -> (String, String) {
    let shown = thread.and_then(|c| {
        let patch = files
            .iter()
            .find(|p| p.file.filename == c.path)?
            .patch
            .as_ref()?;
        let lines = patch
            .coverage(c.side, c.start_line.unwrap_or(c.line), c.line)
            .lines;
        (!lines.is_empty()).then(|| {
            lines
                .iter()
                .map(|l| l.text.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
    });
    let extra = match (&shown, &f.quote) {
        (Some(code), Some(quote)) if !fingerprint::covers(code, quote) => Some(quote),
        _ => None,
    };
    let code = shown
        .or_else(|| f.quote.clone())
        .unwrap_or_else(|| format!("line {}", f.line));
    let legacy = fingerprint::legacy_fingerprint(&f.path, &code, &f.category);
    let context = match extra {
        Some(quote) => format!("{code}\n{quote}"),
        None => code,
    };
    let current = fingerprint::fingerprint(&f.path, &context, &f.category, &f.title);
    (current, legacy)
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

/// Appends the finding's suggestion to its thread when it replaces exactly the thread's
/// lines of the head file (see [`suggestion::check_suggestion`]); otherwise the thread goes
/// without it.
fn with_suggestion(
    mut thread: ReviewComment,
    f: &Finding,
    heads: &HashMap<String, Vec<u8>>,
) -> ReviewComment {
    let Some(proposed) = f.suggestion.as_deref() else {
        return thread;
    };
    // The model saw secrets as placeholders: a fix that writes one back would break the code.
    if crate::context::redact::has_placeholder(proposed) || thread.side != Side::Right {
        return thread;
    }
    let Some(head) = heads
        .get(&thread.path)
        .and_then(|b| std::str::from_utf8(b).ok())
    else {
        return thread;
    };
    let start = thread.start_line.unwrap_or(thread.line);
    let cited = (f.start_line.unwrap_or(f.line), f.line);
    let proposed = suggestion::fit_to_thread(head, cited, (start, thread.line), proposed);
    let checked =
        suggestion::check_suggestion(head, start, thread.line, &proposed).and_then(|checked| {
            suggestion::reads_as_code(&thread.path, head, start, thread.line, &checked.replacement)
                .map(|()| checked)
        });
    match checked {
        Ok(checked) => {
            thread.body.push_str("\n\n");
            thread.body.push_str(&checked.block);
        }
        Err(why) => {
            tracing::debug!(path = %thread.path, line = thread.line, %why, "suggestion left out");
        }
    }
    thread
}

fn finding_markdown(f: &Finding) -> String {
    let icon = match f.severity {
        Severity::Critical => "🔴",
        Severity::Warning => "🟠",
        Severity::Nit => "⚪",
    };
    let mut out = format!("{icon} **{}** ({})", f.severity.label(), f.category);
    if !f.title.is_empty() {
        let _ = write!(out, ": {}", f.title);
    }
    let _ = write!(out, "\n\n{}", f.body);
    out
}

fn review_body(
    s: &DraftInput<'_>,
    inline: usize,
    in_body: &[&Finding],
    collapsed: &[&Finding],
    repeated: usize,
) -> String {
    let total = inline + in_body.len() + collapsed.len();
    let mut out = format!("## Critic review\n\n**{total} new finding(s)**: {inline} inline");
    if !in_body.is_empty() {
        let _ = write!(out, ", {} not on a changed line", in_body.len());
    }
    if !collapsed.is_empty() {
        let _ = write!(out, ", {} collapsed below", collapsed.len());
    }
    out.push('.');
    if repeated > 0 {
        let _ = write!(
            out,
            " {repeated} finding(s) reported on this pull request before were not repeated."
        );
    }
    out.push('\n');
    list_section(&mut out, "Findings not on a line of the diff", in_body);
    list_section(
        &mut out,
        &format!(
            "{} more: below the {} threshold or over the limit of {} threads",
            collapsed.len(),
            s.min_severity.label(),
            s.max_inline
        ),
        collapsed,
    );
    let _ = write!(
        out,
        "\n<sub>Critic comments only; it never approves or blocks.</sub>\n{}",
        review_marker(s.head_sha)
    );
    out
}

fn list_section(out: &mut String, title: &str, findings: &[&Finding]) {
    if findings.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n<details><summary>{title}</summary>\n");
    for f in findings {
        let side = if f.side == Side::Left { " (old)" } else { "" };
        let lines = match f.start_line {
            Some(start) => format!("{start}-{}", f.line),
            None => f.line.to_string(),
        };
        // A path the model made up is shown as it gave it, and must not break the list.
        let path = match f.path.as_str() {
            "" => "(no file named)".to_string(),
            path => markdown::inline_code(path),
        };
        let _ = writeln!(
            out,
            "- {path} line {lines}{side}: {}\n",
            finding_markdown(f).replace("\n\n", "\n  ")
        );
    }
    out.push_str("</details>\n");
}

/// GitHub refuses a review body over 65,536 characters; stay well under it, cutting at a
/// line and keeping the marker.
pub(crate) const MAX_REVIEW_BODY: usize = 60_000;

pub(crate) fn fit_body(body: &str, head_sha: &str) -> String {
    if body.chars().count() <= MAX_REVIEW_BODY {
        return body.to_string();
    }
    let marker = review_marker(head_sha);
    let (kept, omitted) = cut_at_line(body, MAX_REVIEW_BODY - marker.len() - 200);
    format!("{kept}{}{marker}", left_out(kept, omitted))
}

/// The longest start of `text` with at most `budget` characters that ends before a line
/// break (all of it when it fits; mid-line when its first line is longer than `budget`), and
/// how many characters are left after it.
pub(crate) fn cut_at_line(text: &str, budget: usize) -> (&str, usize) {
    let total = text.chars().count();
    if total <= budget {
        return (text, 0);
    }
    let (mut cut, mut cut_chars) = (None, 0);
    let mut at_budget = text.len();
    for (chars, (i, c)) in text.char_indices().enumerate() {
        // A break at character `chars` keeps `chars` characters.
        if c == '\n' {
            (cut, cut_chars) = (Some(i), chars);
        }
        if chars == budget {
            at_budget = i;
            break;
        }
    }
    match cut {
        Some(i) => (&text[..i], total - cut_chars),
        None => (&text[..at_budget], total - budget),
    }
}

/// What goes after text cut by [`cut_at_line`]: nothing when nothing was cut, else the
/// `<details>` blocks the cut left open, closed, and a note of how much was left out.
pub(crate) fn left_out(kept: &str, omitted: usize) -> String {
    if omitted == 0 {
        return String::new();
    }
    let open = kept
        .matches("<details>")
        .count()
        .saturating_sub(kept.matches("</details>").count());
    format!(
        "{}\n\n… {omitted} more characters left out (GitHub's size limit).\n",
        "\n</details>".repeat(open)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FileStatus;
    use crate::domain::Severity;
    use crate::github::ChangedFile;

    #[test]
    fn a_muted_finding_is_not_posted_and_is_counted() {
        let f = finding(21, None);
        let files = files();
        let first = draft_review(std::slice::from_ref(&f), &files, &input());
        let fingerprint = first.placed[0].fingerprint.clone();
        let muted: HashSet<String> = [fingerprint].into_iter().collect();
        let s = DraftInput {
            muted: &muted,
            ..input()
        };
        let d = draft_review(&[f, finding(22, None)], &files, &s);
        assert_eq!(d.muted, 1);
        assert_eq!(d.placed.len(), 1);
        assert_eq!(d.placed[0].line, 22);
    }

    #[test]
    fn cut_at_line_counts_characters_and_cuts_mid_line_only_when_it_must() {
        assert_eq!(cut_at_line("ab\ncd", 5), ("ab\ncd", 0));
        assert_eq!(cut_at_line("ab\ncd", 4), ("ab", 3));
        assert_eq!(cut_at_line("ab\ncd\n", 5), ("ab\ncd", 1));
        // Characters, not bytes, and never inside one.
        assert_eq!(cut_at_line("éé\néé", 4), ("éé", 3));
        assert_eq!(cut_at_line("éééé", 3), ("ééé", 1));
        assert_eq!(left_out("x", 0), "");
        assert!(left_out("<details>a", 3).starts_with("\n</details>\n\n… 3 more"));
    }

    fn files() -> Vec<PrFile> {
        vec![PrFile::from_github(ChangedFile {
            filename: "a.py".into(),
            status: FileStatus::Modified,
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
            suggestion: None,
            confidence: None,
        }
    }

    fn input() -> DraftInput<'static> {
        static NONE: std::sync::LazyLock<HashSet<String>> = std::sync::LazyLock::new(HashSet::new);
        static NO_FILES: std::sync::LazyLock<HashMap<String, Vec<u8>>> =
            std::sync::LazyLock::new(HashMap::new);
        DraftInput {
            head_sha: "abc",
            max_inline: 10,
            min_severity: Severity::Nit,
            known: &NONE,
            muted: &NONE,
            in_scope: None,
            heads: &NO_FILES,
        }
    }

    #[test]
    fn lines_in_the_diff_go_inline_others_in_the_body() {
        let d = draft_review(&[finding(11, None), finding(30, None)], &files(), &input());
        assert_eq!((d.inline(), d.in_body()), (1, 1));
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
        assert_eq!(d.inline(), 1);
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
        assert_eq!((d.inline(), d.in_body()), (0, 1));
    }

    #[test]
    fn the_cap_and_the_threshold_collapse_the_rest_most_severe_first() {
        let s = DraftInput {
            max_inline: 1,
            min_severity: Severity::Warning,
            ..input()
        };
        let nit = Finding {
            severity: Severity::Nit,
            title: "naming".into(),
            category: "style".into(),
            ..finding(41, None)
        };
        let critical = Finding {
            severity: Severity::Critical,
            ..finding(12, None)
        };
        let d = draft_review(&[finding(11, None), nit, critical], &files(), &s);
        assert_eq!((d.inline(), d.in_body(), d.collapsed()), (1, 0, 2));
        assert_eq!(
            d.review.comments[0].line, 12,
            "the critical one goes inline"
        );
        assert_eq!(d.of_severity(Severity::Nit), 1);
        assert!(
            d.review
                .body
                .contains("2 more: below the warning threshold"),
            "{}",
            d.review.body
        );
        assert!(
            d.review.body.contains("naming"),
            "collapsed findings are listed"
        );
    }

    #[test]
    fn findings_posted_before_are_not_repeated_even_when_their_code_moved() {
        let first = draft_review(&[finding(11, None)], &files(), &input());
        let known: HashSet<String> = first.placed.iter().map(|p| p.fingerprint.clone()).collect();
        // The same code (`+z`) now at line 21 of a shifted hunk, cited with other words.
        let moved = vec![PrFile::from_github(ChangedFile {
            filename: "a.py".into(),
            status: FileStatus::Modified,
            additions: 1,
            deletions: 0,
            patch: Some("@@ -20,2 +20,3 @@\n x\n+z\n q".into()),
            previous_filename: None,
        })];
        let again = Finding {
            body: "Reworded.".into(),
            ..finding(21, None)
        };
        let s = DraftInput {
            known: &known,
            ..input()
        };
        let d = draft_review(&[again.clone(), again], &moved, &s);
        assert!(d.is_empty(), "{:?}", d.placed);
        assert_eq!(d.repeated, 2);
        // A different problem on the same code is new.
        let other = Finding {
            category: "security".into(),
            ..finding(21, None)
        };
        assert_eq!(draft_review(&[other], &moved, &s).inline(), 1);
    }

    #[test]
    fn after_a_push_only_findings_on_changed_code_are_new() {
        let first = draft_review(&[finding(11, None)], &files(), &input());
        let known: HashSet<String> = first.placed.iter().map(|p| p.fingerprint.clone()).collect();
        let only_12 = |_: &str, start: u32, end: u32| start <= 12 && 12 <= end;
        let s = DraftInput {
            known: &known,
            in_scope: Some(&only_12),
            ..input()
        };
        let d = draft_review(
            &[finding(11, None), finding(12, None), finding(41, None)],
            &files(),
            &s,
        );
        assert_eq!(d.repeated, 1, "a repeat is counted wherever it is");
        let lines: Vec<u32> = d.review.comments.iter().map(|c| c.line).collect();
        assert_eq!(lines, [12], "{:?}", d.placed);
        assert_eq!(d.placed.len(), 1, "line 41 was not touched by the push");
    }

    #[test]
    fn a_suggestion_is_checked_against_the_head_and_never_writes_a_placeholder_back() {
        let head: String = (1..=13)
            .map(|n| match n {
                10 => "x = 1\n".to_string(),
                11 => "z = token\n".to_string(),
                12 => "w = 2\n".to_string(),
                13 => "q = 3\n".to_string(),
                n => format!("# {n}\n"),
            })
            .collect();
        let heads = HashMap::from([("a.py".to_string(), head.into_bytes())]);
        let s = DraftInput {
            heads: &heads,
            ..input()
        };
        let with = |fix: &str| Finding {
            suggestion: Some(fix.into()),
            ..finding(11, None)
        };
        let fixed = draft_review(&[with("z = os.environ[\"TOKEN\"]")], &files(), &s);
        assert!(
            fixed.review.comments[0]
                .body
                .ends_with("```suggestion\nz = os.environ[\"TOKEN\"]\n```"),
            "{}",
            fixed.review.comments[0].body
        );
        let leaked = draft_review(&[with("z = \"[REDACTED github-token]\"")], &files(), &s);
        assert!(!leaked.review.comments[0].body.contains("```suggestion"));
        let no_head = draft_review(&[with("z = 2")], &files(), &input());
        assert!(!no_head.review.comments[0].body.contains("```suggestion"));
    }

    #[test]
    fn a_path_outside_the_pr_is_listed_in_the_body_as_the_model_gave_it() {
        let stray = Finding {
            path: "src/elsewhere.py".into(),
            ..finding(11, None)
        };
        let nameless = Finding {
            path: String::new(),
            ..finding(3, None)
        };
        // After a push that changed nothing: a path outside the PR has no code to scope by.
        let nothing = |_: &str, _: u32, _: u32| false;
        let s = DraftInput {
            in_scope: Some(&nothing),
            ..input()
        };
        let d = draft_review(&[stray, nameless], &files(), &s);
        assert_eq!((d.inline(), d.in_body()), (0, 2), "{:?}", d.placed);
        assert!(
            d.review.body.contains("- `src/elsewhere.py` line 11: "),
            "{}",
            d.review.body
        );
        assert!(
            d.review.body.contains("- (no file named) line 3: "),
            "{}",
            d.review.body
        );
        assert!(
            d.review.body.contains("2 not on a changed line"),
            "{}",
            d.review.body
        );
    }

    #[test]
    fn distinct_findings_on_identical_lines_are_both_posted_and_each_known_once() {
        // Lines 11 and 13 of the new file are both `@Override`.
        let java = vec![PrFile::from_github(ChangedFile {
            filename: "A.java".into(),
            status: FileStatus::Modified,
            additions: 2,
            deletions: 0,
            patch: Some("@@ -10,2 +10,4 @@\n class A {\n+@Override\n x\n+@Override".into()),
            previous_filename: None,
        })];
        let on = |line: u32, title: &str| Finding {
            path: "A.java".into(),
            title: title.into(),
            quote: Some("@Override".into()),
            ..finding(line, None)
        };
        let found = [
            on(11, "equals without hashCode"),
            on(13, "toString leaks a secret"),
        ];
        let d = draft_review(&found, &java, &input());
        let lines: Vec<u32> = d.review.comments.iter().map(|c| c.line).collect();
        assert_eq!((lines, d.repeated), (vec![11, 13], 0));
        // Raised again after a push, reworded and shifted: both known.
        let known: HashSet<String> = d.placed.iter().map(|p| p.fingerprint.clone()).collect();
        let again = found.map(|f| Finding {
            body: "Other words.".into(),
            line: f.line + 1,
            ..f
        });
        let s = DraftInput {
            known: &known,
            ..input()
        };
        let d = draft_review(&again, &java, &s);
        assert_eq!((d.placed.len(), d.repeated), (0, 2), "{:?}", d.placed);
    }

    #[test]
    fn findings_stored_under_the_old_fingerprint_are_not_repeated() {
        let f = finding(11, None);
        // The thread's code is `+z`: what the old formula hashed, without the title.
        let known = HashSet::from([fingerprint::legacy_fingerprint("a.py", "z", "bug")]);
        let s = DraftInput {
            known: &known,
            ..input()
        };
        let d = draft_review(std::slice::from_ref(&f), &files(), &s);
        assert_eq!((d.placed.len(), d.repeated), (0, 1));
        assert_eq!(draft_review(&[f], &files(), &input()).inline(), 1);
    }

    #[test]
    fn a_quote_that_holds_more_than_the_thread_tells_findings_apart() {
        // Both cite line 11 (`+z`) with the same title; their quotes are found nowhere.
        let quoting = |q: &str| Finding {
            quote: Some(q.into()),
            ..finding(11, None)
        };
        let d = draft_review(
            &[quoting("z = f(a)"), quoting("z = g(b)")],
            &files(),
            &input(),
        );
        assert_eq!((d.inline(), d.repeated), (2, 0), "{:?}", d.placed);
        // A quote that is part of the thread's code adds nothing: still one finding.
        let d = draft_review(&[quoting("z"), finding(11, None)], &files(), &input());
        assert_eq!((d.inline(), d.repeated), (1, 1));
    }

    #[test]
    fn a_suggestion_loses_the_blank_lines_its_thread_lost() {
        let patch = "@@ -1,2 +1,5 @@\n fn f() {\n+\n+    b();\n+    c();\n }";
        let file = vec![PrFile::from_github(ChangedFile {
            filename: "a.rs".into(),
            status: FileStatus::Modified,
            additions: 3,
            deletions: 0,
            patch: Some(patch.into()),
            previous_filename: None,
        })];
        let head = "fn f() {\n\n    b();\n    c();\n}\n";
        let heads = HashMap::from([("a.rs".to_string(), head.as_bytes().to_vec())]);
        let s = DraftInput {
            heads: &heads,
            ..input()
        };
        // The range 2..=4 starts on the blank line; the thread is the quoted code, 3..=4.
        let f = Finding {
            path: "a.rs".into(),
            quote: Some("b();\nc();".into()),
            suggestion: Some("\n    b(1);\n    c();\n".into()),
            ..finding(4, Some(2))
        };
        let d = draft_review(&[f], &file, &s);
        let c = &d.review.comments[0];
        assert_eq!((c.start_line, c.line), (Some(3), 4));
        assert!(
            c.body
                .ends_with("\n\n```suggestion\n    b(1);\n    c();\n```"),
            "{}",
            c.body
        );
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
    fn no_findings_is_an_empty_draft() {
        let d = draft_review(&[], &files(), &input());
        assert!(d.is_empty());
        assert!(d.review.comments.is_empty());
    }
}
