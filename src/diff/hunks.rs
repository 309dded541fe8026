//! One file's hunks kept as the bytes git wrote ([`RawPatch`]), and the hunk parser shared by
//! both inputs. Lines are counted against each hunk header, so a removed line that reads
//! `-- x` is never taken for a file header, and a hunk that ends early is an error rather
//! than wrong line numbers.

use std::borrow::Cow;
use std::ops::Range;

use super::lines::{Cursor, excerpt, trim_cr};
use super::{DiffError, DiffLine, FilePatch, Hunk, LineKind, Side, numbered};

/// One file's hunks with their bytes exactly as written (not necessarily UTF-8; a CRLF
/// file's `\r` kept), each line indexed by its numbers in the old and new file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawPatch {
    /// The hunks' text, from the first `@@` to the end of the last hunk.
    bytes: Vec<u8>,
    hunks: Vec<RawHunk>,
    lines: Vec<RawLine>,
}

/// A hunk of a [`RawPatch`]: its header's numbers; lines and section text are read through
/// the patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHunk {
    pub old_start: u32,
    pub old_len: u32,
    pub new_start: u32,
    pub new_len: u32,
    /// The text after the second `@@`, as offsets into the patch's bytes.
    section: Range<u32>,
    /// This hunk's lines, as indexes into the patch's lines.
    lines: Range<u32>,
}

/// A line of a [`RawPatch`]: kind, numbers, and where its text sits in the patch's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    pub kind: LineKind,
    pub old: Option<u32>,
    pub new: Option<u32>,
    /// `\ No newline at end of file` follows this line: it ends its file(s) without `\n`.
    pub no_newline: bool,
    text: Range<u32>,
}

/// Why a patch could not be applied to a file's old content.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    #[error("the hunk needs old line {line}, past the end of the old file")]
    PastEnd { line: u32 },
    #[error("old line {line} differs from what the hunk says it is")]
    Mismatch { line: u32 },
    #[error("a hunk starting at old line {line} overlaps the one before it")]
    OutOfOrder { line: u32 },
}

impl RawHunk {
    /// Whether this hunk shows `line` of `side` (as a context line or a changed one).
    pub fn shows(&self, side: Side, line: u32) -> bool {
        shows(self.spans(), side, line)
    }

    fn spans(&self) -> Spans {
        Spans {
            old: (self.old_start, self.old_len),
            new: (self.new_start, self.new_len),
        }
    }
}

/// A hunk's line ranges on both sides, as its header states them.
#[derive(Clone, Copy)]
pub(super) struct Spans {
    pub old: (u32, u32),
    pub new: (u32, u32),
}

/// Whether a hunk with these header numbers shows `line` of `side`. The parser checks that a
/// hunk's lines fill exactly its header's ranges, so the header alone answers.
pub(super) fn shows(spans: Spans, side: Side, line: u32) -> bool {
    let (start, len) = match side {
        Side::Left => spans.old,
        Side::Right => spans.new,
    };
    len > 0 && line >= start && line - start < len
}

impl RawPatch {
    /// Parses GitHub's per-file `patch` field (or any text of hunks): lines before the first
    /// `@@` (git's file headers) are skipped, blank lines after the last hunk ignored.
    ///
    /// A hunk cut short by the next `@@` or the end of the text (a truncated or hand-edited
    /// patch) keeps the lines it has and its header counts are lowered to match them, so the
    /// lines shown are still numbered right and no missing line is ever called commentable.
    pub fn parse(patch: &[u8]) -> Result<RawPatch, DiffError> {
        check_size(patch)?;
        let mut cur = Cursor::new(patch);
        while let Some(line) = cur.peek_bytes() {
            if line.starts_with(b"@@") {
                break;
            }
            cur.next_line();
        }
        let parsed = parse_hunks(&mut cur, Short::Trim)?;
        while let Some(line) = cur.next_bytes() {
            if !trim_cr(line).is_empty() {
                return Err(DiffError::OutsideHunk {
                    line: cur.line_no(),
                });
            }
        }
        Ok(parsed)
    }

    pub fn hunks(&self) -> &[RawHunk] {
        &self.hunks
    }

    /// The lines of one of this patch's hunks.
    pub fn lines(&self, hunk: &RawHunk) -> &[RawLine] {
        self.lines
            .get(hunk.lines.start as usize..hunk.lines.end as usize)
            .unwrap_or_default()
    }

    /// Every line of every hunk, in order.
    pub fn all_lines(&self) -> &[RawLine] {
        &self.lines
    }

    /// A line's exact bytes, without its diff marker and `\n` (a `\r` before it is kept).
    pub fn bytes(&self, line: &RawLine) -> &[u8] {
        self.slice(&line.text)
    }

    /// A line's text for people and prompts: invalid UTF-8 replaced, a final `\r` dropped.
    pub fn text(&self, line: &RawLine) -> Cow<'_, str> {
        String::from_utf8_lossy(trim_cr(self.bytes(line)))
    }

    /// The text after a hunk header's second `@@` (often the enclosing function).
    pub fn section(&self, hunk: &RawHunk) -> Cow<'_, str> {
        String::from_utf8_lossy(self.slice(&hunk.section))
    }

    /// The hunks exactly as they were written, from the first `@@` on.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.hunks.is_empty()
    }

    /// The text model the poster and the prompts use; invalid UTF-8 is replaced.
    pub fn to_file_patch(&self) -> FilePatch {
        let hunks = self
            .hunks
            .iter()
            .map(|h| Hunk {
                old_start: h.old_start,
                old_len: h.old_len,
                new_start: h.new_start,
                new_len: h.new_len,
                section: self.section(h).into_owned(),
                lines: self
                    .lines(h)
                    .iter()
                    .map(|l| DiffLine {
                        kind: l.kind,
                        old: l.old,
                        new: l.new,
                        text: self.text(l).into_owned(),
                    })
                    .collect(),
            })
            .collect();
        FilePatch { hunks }
    }

    /// The numbered form the model reads; the same text as [`FilePatch::numbered`].
    pub fn numbered(&self) -> String {
        let mut out = String::with_capacity(self.bytes.len() + self.lines.len() * 6);
        for h in &self.hunks {
            numbered::header(
                &mut out,
                h.old_start,
                h.old_len,
                h.new_start,
                h.new_len,
                &self.section(h),
            );
            for l in self.lines(h) {
                numbered::line(&mut out, l.kind, l.new, &self.text(l));
            }
        }
        out
    }

    /// The index of the hunk that shows `line` on `side`.
    pub fn hunk_of(&self, side: Side, line: u32) -> Option<usize> {
        self.hunks.iter().position(|h| h.shows(side, line))
    }

    /// GitHub accepts a review thread only on a line shown in a hunk.
    pub fn is_commentable(&self, side: Side, line: u32) -> bool {
        self.hunk_of(side, line).is_some()
    }

    /// Rebuilds the new file from the old one, checking every context and removed line
    /// against it. Byte-exact, line ends and a missing final newline included.
    pub fn apply(&self, old: &[u8]) -> Result<Vec<u8>, ApplyError> {
        let mut out = Vec::with_capacity(old.len() + self.bytes.len());
        let mut rest = old;
        // The number of the next old line `rest` starts with.
        let mut next_old = 1u32;
        for h in &self.hunks {
            // A hunk with no old lines inserts after line `old_start`.
            let first = if h.old_len == 0 {
                h.old_start.saturating_add(1)
            } else {
                h.old_start
            };
            if first < next_old {
                return Err(ApplyError::OutOfOrder { line: h.old_start });
            }
            while next_old < first {
                let (line, tail) =
                    split_line(rest).ok_or(ApplyError::PastEnd { line: next_old })?;
                out.extend_from_slice(line);
                rest = tail;
                next_old = next_old.saturating_add(1);
            }
            for l in self.lines(h) {
                let text = self.bytes(l);
                if l.kind != LineKind::Added {
                    let (line, tail) =
                        split_line(rest).ok_or(ApplyError::PastEnd { line: next_old })?;
                    let content = line.strip_suffix(b"\n").unwrap_or(line);
                    if content != text || (l.no_newline && content.len() != line.len()) {
                        return Err(ApplyError::Mismatch { line: next_old });
                    }
                    rest = tail;
                    next_old = next_old.saturating_add(1);
                }
                if l.kind != LineKind::Removed {
                    out.extend_from_slice(text);
                    if !l.no_newline {
                        out.push(b'\n');
                    }
                }
            }
        }
        out.extend_from_slice(rest);
        Ok(out)
    }

    fn slice(&self, range: &Range<u32>) -> &[u8] {
        self.bytes
            .get(range.start as usize..range.end as usize)
            .unwrap_or_default()
    }
}

/// The first line of `s` with its `\n`, and the rest; `None` when `s` is empty.
fn split_line(s: &[u8]) -> Option<(&[u8], &[u8])> {
    if s.is_empty() {
        return None;
    }
    let end = super::lines::find_newline(s).map_or(s.len(), |i| i + 1);
    Some(s.split_at(end))
}

/// Offsets are kept as `u32` to halve the index's size; larger inputs are refused whole.
pub(super) fn check_size(input: &[u8]) -> Result<(), DiffError> {
    if u32::try_from(input.len()).is_err() {
        return Err(DiffError::TooLarge { bytes: input.len() });
    }
    Ok(())
}

/// What to do with a hunk that has fewer lines than its header counts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Short {
    /// An error: in a whole diff the counts are what find the end of a file's hunks.
    Refuse,
    /// Keep the lines there are and lower the header's counts to them.
    Trim,
}

/// Parses consecutive hunks from the cursor, which stands before a `@@` line (or before
/// anything else, giving an empty patch). Stops before the first line that neither belongs to
/// a hunk nor starts one. The input must have passed [`check_size`].
pub(super) fn parse_hunks(cur: &mut Cursor<'_>, short: Short) -> Result<RawPatch, DiffError> {
    let input = cur.input();
    let base = cur.pos();
    // Offsets relative to `base` fit in u32 because the whole input does.
    let offset = |at: usize| (at - base) as u32;
    let mut hunks = Vec::new();
    let mut lines: Vec<RawLine> = Vec::new();
    let mut end = base;
    while let Some(header) = cur.peek() {
        let text = &input[header.start..header.end];
        if !text.starts_with(b"@@") {
            break;
        }
        cur.next_line();
        let header_no = cur.line_no();
        let parsed = parse_header(trim_cr(text)).ok_or_else(|| DiffError::BadHeader {
            line: header_no,
            text: excerpt(text),
        })?;
        if let Some(prev) = hunks.last()
            && !follows(prev, &parsed)
        {
            return Err(DiffError::HunkOrder { line: header_no });
        }
        let section_start = header.start + parsed.section_at;
        let section_end = header.start + trim_cr(text).len();
        let first_line = lines.len();
        let (mut old, mut new) = (parsed.old_start, parsed.new_start);
        let (mut old_left, mut new_left) = (parsed.old_len, parsed.new_len);
        while old_left > 0 || new_left > 0 {
            let cut_short = match cur.peek_bytes() {
                None => true,
                Some(next) => next.starts_with(b"@@"),
            };
            if cut_short {
                if short == Short::Refuse {
                    return Err(DiffError::ShortHunk {
                        line: header_no,
                        old: old_left,
                        new: new_left,
                    });
                }
                break;
            }
            let Some(line) = cur.next_line() else {
                break;
            };
            let body = &input[line.start..line.end];
            let (kind, text_start) = match body.first() {
                Some(b' ') => (LineKind::Context, line.start + 1),
                Some(b'+') => (LineKind::Added, line.start + 1),
                Some(b'-') => (LineKind::Removed, line.start + 1),
                Some(b'\\') => {
                    mark_no_newline(&mut lines[first_line..]);
                    continue;
                }
                // A context line whose leading space was stripped (by an editor or a mail
                // client); git apply accepts these too.
                None | Some(b'\r') if body.len() <= 1 => (LineKind::Context, line.start),
                _ => {
                    return Err(DiffError::BadLine {
                        line: cur.line_no(),
                        text: excerpt(body),
                    });
                }
            };
            let (takes_old, takes_new) = match kind {
                LineKind::Context => (true, true),
                LineKind::Added => (false, true),
                LineKind::Removed => (true, false),
            };
            if (takes_old && old_left == 0) || (takes_new && new_left == 0) {
                return Err(DiffError::LongHunk {
                    line: cur.line_no(),
                    header: header_no,
                });
            }
            lines.push(RawLine {
                kind,
                old: takes_old.then_some(old),
                new: takes_new.then_some(new),
                no_newline: false,
                text: offset(text_start)..offset(line.end),
            });
            if takes_old {
                old += 1;
                old_left -= 1;
            }
            if takes_new {
                new += 1;
                new_left -= 1;
            }
        }
        if cur.peek_bytes().is_some_and(|l| l.first() == Some(&b'\\')) {
            cur.next_line();
            mark_no_newline(&mut lines[first_line..]);
        }
        end = cur.pos();
        hunks.push(RawHunk {
            old_start: parsed.old_start,
            old_len: parsed.old_len - old_left,
            new_start: parsed.new_start,
            new_len: parsed.new_len - new_left,
            section: offset(section_start)..offset(section_end),
            lines: first_line as u32..lines.len() as u32,
        });
    }
    Ok(RawPatch {
        bytes: input[base..end].to_vec(),
        hunks,
        lines,
    })
}

/// Whether a hunk starts after the previous one ends on both sides, as git writes them: then
/// every line belongs to at most one hunk and the hunks apply in order.
fn follows(prev: &RawHunk, next: &Header) -> bool {
    // A hunk with no lines on a side sits just after line `start` there. In u64: a start
    // of u32::MAX is valid for an empty range.
    let end = |start: u32, len: u32| u64::from(start) + u64::from(len.max(1));
    let first = |start: u32, len: u32| u64::from(start) + u64::from(len == 0);
    first(next.old_start, next.old_len) >= end(prev.old_start, prev.old_len)
        && first(next.new_start, next.new_len) >= end(prev.new_start, prev.new_len)
}

/// `\ No newline at end of file` speaks of the line just before it.
fn mark_no_newline(hunk_lines: &mut [RawLine]) {
    if let Some(last) = hunk_lines.last_mut() {
        last.no_newline = true;
    }
}

/// A hunk header's numbers and where its section text starts within the line.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    old_start: u32,
    old_len: u32,
    new_start: u32,
    new_len: u32,
    section_at: usize,
}

/// `@@ -a[,b] +c[,d] @@[section]`, with numbers that keep every line number in `u32` and a
/// start of at least 1 whenever the range is not empty.
fn parse_header(text: &[u8]) -> Option<Header> {
    let rest = text.strip_prefix(b"@@ -")?;
    let (old_start, old_len, rest) = parse_range(rest)?;
    let rest = rest.strip_prefix(b" +")?;
    let (new_start, new_len, rest) = parse_range(rest)?;
    let rest = rest.strip_prefix(b" @@")?;
    for (start, len) in [(old_start, old_len), (new_start, new_len)] {
        start.checked_add(len)?;
        if len > 0 && start == 0 {
            return None;
        }
    }
    Some(Header {
        old_start,
        old_len,
        new_start,
        new_len,
        section_at: text.len() - rest.len(),
    })
}

/// `a[,b]`; a missing length means 1, as git writes it.
fn parse_range(s: &[u8]) -> Option<(u32, u32, &[u8])> {
    let (start, rest) = parse_number(s)?;
    match rest.strip_prefix(b",") {
        Some(rest) => {
            let (len, rest) = parse_number(rest)?;
            Some((start, len, rest))
        }
        None => Some((start, 1, rest)),
    }
}

fn parse_number(s: &[u8]) -> Option<(u32, &[u8])> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut n: u32 = 0;
    for &d in &s[..digits] {
        n = n.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
    }
    Some((n, &s[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_forms() {
        let h = parse_header(b"@@ -1 +0,0 @@").expect("valid");
        assert_eq!(
            (h.old_start, h.old_len, h.new_start, h.new_len),
            (1, 1, 0, 0)
        );
        let h = parse_header(b"@@ -10,6 +10,7 @@ fn x()").expect("valid");
        assert_eq!(&b"@@ -10,6 +10,7 @@ fn x()"[h.section_at..], b" fn x()");
        for bad in [
            &b"@@ -x +1 @@"[..],
            b"@@ -+1 +1 @@",
            b"@@ -1 +1",
            b"@@ -1,2+1 @@",
            b"@@ -0,3 +1 @@",
            b"@@ -4294967295,2 +1 @@",
            b"@@ -99999999999 +1 @@",
        ] {
            assert_eq!(parse_header(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn keeps_bytes_losslessly() {
        let patch = b"@@ -1,2 +1,2 @@\n-caf\xe9\r\n+caf\xc3\xa9\r\n \xff\xfe\n";
        let p = RawPatch::parse(patch).expect("parse");
        let l = p.all_lines();
        assert_eq!(p.bytes(&l[0]), b"caf\xe9\r");
        assert_eq!(p.text(&l[0]), "caf\u{fffd}");
        assert_eq!(p.text(&l[1]), "café");
        assert_eq!(p.bytes(&l[2]), b"\xff\xfe");
        assert_eq!(p.as_bytes(), patch);
        assert_eq!(
            p.apply(b"caf\xe9\r\n\xff\xfe\n").expect("applies"),
            b"caf\xc3\xa9\r\n\xff\xfe\n"
        );
    }

    #[test]
    fn missing_newlines_on_either_side() {
        let p = RawPatch::parse(
            b"@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n\\ No newline at end of file\n",
        )
        .expect("parse");
        let l = p.all_lines();
        assert!(!l[0].no_newline && l[1].no_newline && l[2].no_newline);
        assert_eq!(p.apply(b"a\nb").expect("applies"), b"a\nb");
        assert_eq!(
            p.apply(b"a\nb\n"),
            Err(ApplyError::Mismatch { line: 2 }),
            "the old file must lack the newline too"
        );
        let added =
            RawPatch::parse(b"@@ -1 +1,2 @@\n a\n+b\n\\ No newline at end of file").expect("parse");
        assert_eq!(added.apply(b"a\n").expect("applies"), b"a\nb");
    }

    #[test]
    fn zero_context_insertions_and_deletions() {
        let p =
            RawPatch::parse(b"@@ -0,0 +1 @@\n+top\n@@ -2 +2,0 @@\n-two\n@@ -3,0 +4,2 @@\n+x\n+y\n")
                .expect("parse");
        assert_eq!(
            p.apply(b"one\ntwo\nthree\n").expect("applies"),
            b"top\none\nthree\nx\ny\n"
        );
        assert!(!p.is_commentable(Side::Right, 3));
        assert!(p.is_commentable(Side::Left, 2));
        assert!(!p.is_commentable(Side::Left, 3));
    }

    #[test]
    fn short_hunks_are_refused_in_a_whole_diff() {
        for text in [
            &b"@@ -1,2 +1,2 @@\n a\n"[..],
            b"@@ -1,2 +1,2 @@\n a\n@@ -5 +5 @@\n x\n",
        ] {
            assert_eq!(
                parse_hunks(&mut Cursor::new(text), Short::Refuse),
                Err(DiffError::ShortHunk {
                    line: 1,
                    old: 1,
                    new: 1
                })
            );
        }
    }

    #[test]
    fn short_hunks_in_a_patch_keep_the_lines_they_have() {
        let p = RawPatch::parse(b"@@ -1,3 +1,4 @@\n a\n+b\n@@ -9,2 +10,2 @@\n x\n").expect("parse");
        let lens: Vec<(u32, u32)> = p.hunks().iter().map(|h| (h.old_len, h.new_len)).collect();
        assert_eq!(lens, [(1, 2), (1, 1)]);
        assert!(p.is_commentable(Side::Right, 2));
        assert!(
            !p.is_commentable(Side::Right, 3),
            "counted by the header, never shown"
        );
        assert!(!p.is_commentable(Side::Right, 11));
    }

    #[test]
    fn counts_are_enforced() {
        assert_eq!(
            RawPatch::parse(b"@@ -1,2 +1 @@\n a\n+b\n"),
            Err(DiffError::LongHunk { line: 3, header: 1 })
        );
        assert!(matches!(
            RawPatch::parse(b"@@ -1 +1 @@\n*a\n"),
            Err(DiffError::BadLine { line: 2, .. })
        ));
        assert_eq!(
            RawPatch::parse(b"@@ -1 +1 @@\n-a\n+b\n+c\n"),
            Err(DiffError::OutsideHunk { line: 4 })
        );
    }

    #[test]
    fn removed_lines_that_look_like_headers_are_content() {
        let p = RawPatch::parse(b"@@ -1,2 +1 @@\n--- a/x\n-+++ b/x\n+kept\n").expect("parse");
        assert_eq!(p.all_lines().len(), 3);
        assert_eq!(p.text(&p.all_lines()[0]), "-- a/x");
    }

    #[test]
    fn hunks_must_come_in_order() {
        assert_eq!(
            RawPatch::parse(b"@@ -2 +2 @@\n-b\n+B\n@@ -1 +1 @@\n-a\n+A\n"),
            Err(DiffError::HunkOrder { line: 4 })
        );
        assert_eq!(
            RawPatch::parse(b"@@ -1,2 +1,2 @@\n a\n b\n@@ -3 +2 @@\n c\n"),
            Err(DiffError::HunkOrder { line: 4 }),
            "overlaps on the new side"
        );
        let touching = RawPatch::parse(b"@@ -1,0 +2 @@\n+x\n@@ -2 +3 @@\n-b\n+c\n");
        assert!(touching.is_ok(), "{touching:?}");
    }

    #[test]
    fn apply_checks_the_old_file() {
        let p = RawPatch::parse(b"@@ -2 +2 @@\n-b\n+B\n").expect("parse");
        assert_eq!(p.apply(b"a\nb\nc\n").expect("applies"), b"a\nB\nc\n");
        assert_eq!(p.apply(b"a\nx\n"), Err(ApplyError::Mismatch { line: 2 }));
        assert_eq!(p.apply(b"a\n"), Err(ApplyError::PastEnd { line: 2 }));
    }
}
