//! The unified-diff model: GitHub's per-file `patch` field parsed into hunks, which lines a
//! review thread may sit on, and the numbered form shown to the model.

use std::fmt::Write;

/// Which version of the file a line belongs to, as GitHub's review API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    /// The base (old) file: removed and context lines.
    Left,
    /// The head (new) file: added and context lines.
    Right,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Context,
    Added,
    Removed,
}

/// One line of a hunk with its numbers in the old and new file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    pub kind: LineKind,
    pub old: Option<u32>,
    pub new: Option<u32>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    pub old_start: u32,
    pub old_len: u32,
    pub new_start: u32,
    pub new_len: u32,
    /// The text after the second `@@` (often the enclosing function).
    pub section: String,
    pub lines: Vec<DiffLine>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiffError {
    #[error("line {line} of the patch: malformed hunk header `{text}`")]
    BadHeader { line: usize, text: String },
    #[error("line {line} of the patch: a diff line outside any hunk")]
    OutsideHunk { line: usize },
}

/// One file's hunks, as in GitHub's `patch` field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilePatch {
    pub hunks: Vec<Hunk>,
}

impl FilePatch {
    /// Parses the hunks of a patch. Lines before the first `@@` (git headers) are skipped.
    pub fn parse(patch: &str) -> Result<FilePatch, DiffError> {
        let mut hunks: Vec<Hunk> = Vec::new();
        let (mut old, mut new) = (0u32, 0u32);
        for (i, raw) in patch.split('\n').enumerate() {
            let text = raw.strip_suffix('\r').unwrap_or(raw);
            if text.starts_with("@@") {
                let hunk = parse_header(text).ok_or_else(|| DiffError::BadHeader {
                    line: i + 1,
                    text: text.to_string(),
                })?;
                old = hunk.old_start;
                new = hunk.new_start;
                hunks.push(hunk);
                continue;
            }
            let Some(hunk) = hunks.last_mut() else {
                continue;
            };
            let (kind, body) = match text.as_bytes().first() {
                Some(b'+') => (LineKind::Added, &text[1..]),
                Some(b'-') => (LineKind::Removed, &text[1..]),
                Some(b' ') => (LineKind::Context, &text[1..]),
                Some(b'\\') => continue, // "\ No newline at end of file"
                None => {
                    // An empty line: a context line whose leading space was trimmed, unless the
                    // hunk is already complete (the patch's trailing newline).
                    if hunk_complete(hunk, old, new) {
                        continue;
                    }
                    (LineKind::Context, "")
                }
                Some(_) => {
                    if hunk_complete(hunk, old, new) {
                        continue;
                    }
                    return Err(DiffError::OutsideHunk { line: i + 1 });
                }
            };
            let line = match kind {
                LineKind::Added => {
                    new += 1;
                    DiffLine {
                        kind,
                        old: None,
                        new: Some(new - 1),
                        text: body.to_string(),
                    }
                }
                LineKind::Removed => {
                    old += 1;
                    DiffLine {
                        kind,
                        old: Some(old - 1),
                        new: None,
                        text: body.to_string(),
                    }
                }
                LineKind::Context => {
                    old += 1;
                    new += 1;
                    DiffLine {
                        kind,
                        old: Some(old - 1),
                        new: Some(new - 1),
                        text: body.to_string(),
                    }
                }
            };
            hunk.lines.push(line);
        }
        Ok(FilePatch { hunks })
    }

    /// The index of the hunk that shows `line` on `side`.
    pub fn hunk_of(&self, side: Side, line: u32) -> Option<usize> {
        self.hunks.iter().position(|h| {
            h.lines.iter().any(|l| match side {
                Side::Right => l.new == Some(line),
                Side::Left => l.old == Some(line),
            })
        })
    }

    /// GitHub accepts a review thread only on a line shown in a hunk.
    pub fn is_commentable(&self, side: Side, line: u32) -> bool {
        self.hunk_of(side, line).is_some()
    }

    /// Whether `start..=end` on `side` may carry one multi-line thread: both ends shown, in
    /// the same hunk, start before end.
    pub fn is_commentable_range(&self, side: Side, start: u32, end: u32) -> bool {
        start < end
            && match (self.hunk_of(side, start), self.hunk_of(side, end)) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            }
    }

    /// The form the model reads: each hunk with new-file numbers on added and context lines,
    /// removed lines marked `-` with no number so they are never cited as new.
    pub fn numbered(&self) -> String {
        let mut out = String::new();
        for h in &self.hunks {
            let _ = writeln!(
                out,
                "@@ -{},{} +{},{} @@{}",
                h.old_start, h.old_len, h.new_start, h.new_len, h.section
            );
            for l in &h.lines {
                let _ = match (l.kind, l.new) {
                    (LineKind::Added, Some(n)) => writeln!(out, "{n:>5} +{}", l.text),
                    (LineKind::Context, Some(n)) => writeln!(out, "{n:>5}  {}", l.text),
                    _ => writeln!(out, "      -{}", l.text),
                };
            }
        }
        out
    }
}

fn hunk_complete(h: &Hunk, old: u32, new: u32) -> bool {
    old >= h.old_start + h.old_len && new >= h.new_start + h.new_len
}

/// `@@ -a[,b] +c[,d] @@ section`
fn parse_header(text: &str) -> Option<Hunk> {
    let rest = text.strip_prefix("@@ -")?;
    let (ranges, section) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let (old_start, old_len) = parse_range(old)?;
    let (new_start, new_len) = parse_range(new)?;
    Some(Hunk {
        old_start,
        old_len,
        new_start,
        new_len,
        section: section.to_string(),
        lines: Vec::new(),
    })
}

fn parse_range(s: &str) -> Option<(u32, u32)> {
    match s.split_once(',') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => Some((s.parse().ok()?, 1)),
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
    }

    #[test]
    fn numbered_form_never_numbers_removed_lines() {
        let p = FilePatch::parse(PATCH).expect("parse");
        let text = p.numbered();
        assert!(text.contains("   12 +* new"), "{text}");
        assert!(text.contains("      -* old"), "{text}");
        assert!(text.contains("   10  * a"), "{text}");
    }

    #[test]
    fn no_newline_marker_and_crlf() {
        let p = FilePatch::parse("@@ -1 +1 @@\r\n-a\r\n\\ No newline at end of file\r\n+b\r\n\\ No newline at end of file")
            .expect("parse");
        assert_eq!(p.hunks[0].lines.len(), 2);
        assert_eq!(p.hunks[0].lines[1].text, "b");
    }

    #[test]
    fn bad_header_is_an_error() {
        assert!(matches!(
            FilePatch::parse("@@ -x +1 @@\n+a"),
            Err(DiffError::BadHeader { line: 1, .. })
        ));
    }

    #[test]
    fn real_scenario_patches_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/scenarios");
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
