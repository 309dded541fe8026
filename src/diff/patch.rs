//! The questions the poster asks of one file's hunks ([`FilePatch`], defined in the module's
//! root with the other types its files share): is a line commentable, which hunk holds it,
//! what a range covers.

use super::hunks::{RawPatch, Spans, shows};
use super::snippet::{self, SnippetMatch};
use super::{Coverage, DiffError, DiffLine, FilePatch, Hunk, LineKind, Side, numbered};

impl Hunk {
    /// Whether this hunk shows `line` of `side` (as a context line or a changed one).
    pub fn shows(&self, side: Side, line: u32) -> bool {
        shows(
            Spans {
                old: (self.old_start, self.old_len),
                new: (self.new_start, self.new_len),
            },
            side,
            line,
        )
    }

    /// The index in [`Hunk::lines`] of the line numbered `line` on `side`.
    pub fn position(&self, side: Side, line: u32) -> Option<usize> {
        self.lines
            .iter()
            .position(|l| number(l, side) == Some(line))
    }
}

/// The number a line has on `side`, if it is there at all.
fn number(line: &DiffLine, side: Side) -> Option<u32> {
    match side {
        Side::Left => line.old,
        Side::Right => line.new,
    }
}

impl FilePatch {
    /// Parses the hunks of a patch. Lines before the first `@@` (git headers) are skipped;
    /// each hunk's lines must match its header's counts.
    pub fn parse(patch: &str) -> Result<FilePatch, DiffError> {
        Ok(RawPatch::parse(patch.as_bytes())?.to_file_patch())
    }

    /// The index of the hunk that shows `line` on `side`.
    pub fn hunk_of(&self, side: Side, line: u32) -> Option<usize> {
        self.hunks.iter().position(|h| h.shows(side, line))
    }

    /// GitHub accepts a review thread only on a line shown in a hunk.
    pub fn is_commentable(&self, side: Side, line: u32) -> bool {
        self.hunk_of(side, line).is_some()
    }

    /// Whether `start..=end` on `side` may carry one multi-line thread: both ends shown, in
    /// the same hunk, start before end.
    pub fn is_commentable_range(&self, side: Side, start: u32, end: u32) -> bool {
        start < end && self.hunk_of_range(side, start, end).is_some()
    }

    /// The hunk that shows every line of `start..=end` on `side`. Hunks are contiguous on
    /// each side, so both ends in the same hunk means the whole range is.
    pub fn hunk_of_range(&self, side: Side, start: u32, end: u32) -> Option<usize> {
        if start > end {
            return None;
        }
        let hunk = self.hunk_of(side, end)?;
        self.hunks[hunk].shows(side, start).then_some(hunk)
    }

    /// The lines `start..=end` on `side` covers, and whether one hunk holds them all.
    pub fn coverage(&self, side: Side, start: u32, end: u32) -> Coverage<'_> {
        let lines = self
            .hunks
            .iter()
            .flat_map(|h| &h.lines)
            .filter(|l| number(l, side).is_some_and(|n| (start..=end).contains(&n)))
            .collect();
        Coverage {
            lines,
            hunk: self.hunk_of_range(side, start, end),
        }
    }

    /// The largest part of `start..=end` that one thread can span: it keeps `end` (where
    /// GitHub shows the comment) and starts no earlier than `end`'s hunk. `None` if `end` is
    /// not shown; `Some((end, end))` when only `end` is left.
    pub fn clamp_range(&self, side: Side, start: u32, end: u32) -> Option<(u32, u32)> {
        let h = &self.hunks[self.hunk_of(side, end)?];
        let first = match side {
            Side::Left => h.old_start,
            Side::Right => h.new_start,
        };
        Some((start.clamp(first, end), end))
    }

    /// Where `snippet` (code the model quoted, one or more lines, compared without
    /// whitespace) sits among the lines shown on the right side, preferring whole-line matches,
    /// then the match nearest `near` (the line the model cited). Moves a finding that cites a
    /// wrong line to the code it quotes. Time is the patch's lines times the snippet's.
    pub fn find_snippet(&self, snippet: &str, near: Option<u32>) -> Option<SnippetMatch> {
        snippet::find(self, snippet, near)
    }

    /// The form the model reads: each hunk with new-file numbers on added and context lines,
    /// removed lines marked `-` with no number so they are never cited as new:
    ///
    /// ```text
    /// @@ -10,3 +10,4 @@ fn main()
    ///    10  let a = 1;
    ///       -let b = 2;
    ///    11 +let b = 3;
    ///    12 +let c = 4;
    ///    13  run(a, b);
    /// ```
    pub fn numbered(&self) -> String {
        let mut out = String::new();
        for h in &self.hunks {
            numbered::header(
                &mut out,
                h.old_start,
                h.old_len,
                h.new_start,
                h.new_len,
                &h.section,
            );
            for l in &h.lines {
                numbered::line(&mut out, l.kind, l.new, &l.text);
            }
        }
        out
    }

    /// How many lines are added and removed.
    pub fn changed_lines(&self) -> (usize, usize) {
        let lines = self.hunks.iter().flat_map(|h| &h.lines);
        lines.fold((0, 0), |(a, r), l| match l.kind {
            LineKind::Added => (a + 1, r),
            LineKind::Removed => (a, r + 1),
            LineKind::Context => (a, r),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "@@ -10,6 +10,7 @@ unreleased\n * a\n * b\n-* old\n+* new\n+* newer\n * c\n * d\n@@ -40,3 +41,2 @@ fn x()\n keep\n-gone\n keep2";

    #[test]
    fn numbers_lines_on_both_sides() {
        let p = FilePatch::parse(PATCH).expect("parse");
        assert_eq!(p.hunks.len(), 2);
        let h = &p.hunks[0];
        assert_eq!(
            h.lines[2],
            DiffLine {
                kind: LineKind::Removed,
                old: Some(12),
                new: None,
                text: "* old".into()
            }
        );
        assert_eq!(h.lines[3].new, Some(12));
        assert_eq!(h.lines[4].new, Some(13));
        assert_eq!(
            h.lines[5],
            DiffLine {
                kind: LineKind::Context,
                old: Some(13),
                new: Some(14),
                text: "* c".into()
            }
        );
        assert_eq!(p.hunks[1].lines[2].new, Some(42));
        assert_eq!(p.changed_lines(), (2, 2));
    }

    #[test]
    fn commentable_lines() {
        let p = FilePatch::parse(PATCH).expect("parse");
        assert!(p.is_commentable(Side::Right, 12));
        assert!(p.is_commentable(Side::Right, 10));
        assert!(!p.is_commentable(Side::Right, 17), "between hunks");
        assert!(!p.is_commentable(Side::Right, 100));
        assert!(p.is_commentable(Side::Left, 12), "removed line");
        assert!(p.is_commentable(Side::Left, 41));
        assert!(p.is_commentable_range(Side::Right, 10, 14));
        assert!(!p.is_commentable_range(Side::Right, 14, 41), "across hunks");
        assert!(!p.is_commentable_range(Side::Right, 12, 12), "start == end");
        assert_eq!(p.hunk_of(Side::Right, 42), Some(1));
        assert_eq!(p.hunk_of(Side::Left, 16), None, "old 10..=15 only");
        assert_eq!(p.hunks[0].position(Side::Left, 12), Some(2));
    }

    #[test]
    fn what_a_range_covers() {
        let p = FilePatch::parse(PATCH).expect("parse");
        let c = p.coverage(Side::Right, 11, 13);
        let texts: Vec<&str> = c.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["* b", "* new", "* newer"]);
        assert_eq!(c.hunk, Some(0));
        // The first hunk's header counts one line more than it has: trimmed to new 10..=15.
        let across = p.coverage(Side::Right, 15, 41);
        assert_eq!(across.lines.len(), 2, "15 and 41; 16..=40 are not shown");
        assert_eq!(across.hunk, None);
        assert_eq!(p.clamp_range(Side::Right, 3, 42), Some((41, 42)));
        assert_eq!(p.clamp_range(Side::Right, 12, 14), Some((12, 14)));
        assert_eq!(p.clamp_range(Side::Right, 12, 30), None);
        assert_eq!(p.clamp_range(Side::Left, 50, 41), Some((41, 41)));
    }

    #[test]
    fn numbered_form_never_numbers_removed_lines() {
        let p = FilePatch::parse(PATCH).expect("parse");
        let text = p.numbered();
        assert!(text.contains("   12 +* new"), "{text}");
        assert!(text.contains("      -* old"), "{text}");
        assert!(text.contains("   10  * a"), "{text}");
        // The header counts one line more than the hunk has, and is corrected.
        assert!(text.starts_with("@@ -10,5 +10,6 @@ unreleased\n"), "{text}");
    }

    #[test]
    fn no_newline_marker_and_crlf() {
        let p = FilePatch::parse("@@ -1 +1 @@\r\n-a\r\n\\ No newline at end of file\r\n+b\r\n\\ No newline at end of file")
            .expect("parse");
        assert_eq!(p.hunks[0].lines.len(), 2);
        assert_eq!(p.hunks[0].lines[1].text, "b");
        assert_eq!(p.hunks[0].section, "");
    }

    #[test]
    fn bad_header_is_an_error() {
        assert!(matches!(
            FilePatch::parse("@@ -x +1 @@\n+a"),
            Err(DiffError::BadHeader { line: 1, .. })
        ));
    }

    #[test]
    fn git_headers_before_the_first_hunk_are_skipped() {
        let p = FilePatch::parse(
            "diff --git a/x b/x\nindex 1..2 100644\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n",
        )
        .expect("parse");
        assert_eq!(p.hunks.len(), 1);
        assert_eq!(p.hunks[0].lines[1].new, Some(1));
    }

    #[test]
    fn real_scenario_patches_parse() {
        let Some(dir) = crate::test_env::data("scenarios") else {
            return;
        };
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("scenarios") {
            let diff = std::fs::read_to_string(entry.expect("entry").path().join("pr.diff"))
                .expect("every scenario has a pr.diff");
            for file in diff.split("\ndiff --git ") {
                if let Some(start) = file.find("\n@@") {
                    let p = FilePatch::parse(&file[start + 1..]).expect("real patch parses");
                    assert!(!p.hunks.is_empty());
                    n += 1;
                }
            }
        }
        assert!(n > 40);
    }
}
