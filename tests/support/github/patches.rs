//! Patch parsing independent of Critic's own diff code: numbered patch lines to validate review
//! comments against, and splitting a `git diff` into GitHub's file entries.

use super::world::PullFile;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LineKind {
    HunkHeader,
    Context,
    Added,
    Removed,
    NoNewline,
}

/// One line of a patch: `position` is its index in the patch (GitHub's diff position, the
/// first `@@` being 0), `hunk` the index of the hunk it belongs to.
#[derive(Clone, Copy, Debug)]
pub(super) struct PatchLine {
    pub(super) kind: LineKind,
    pub(super) old: Option<u64>,
    pub(super) new: Option<u64>,
    pub(super) hunk: usize,
    pub(super) position: usize,
}

/// Parses a GitHub `patch` into numbered lines.
pub(super) fn parse_patch(patch: &str) -> Vec<PatchLine> {
    let mut out = Vec::new();
    let (mut old, mut new) = (0u64, 0u64);
    let mut hunk: Option<usize> = None;
    for (position, line) in patch.split('\n').enumerate() {
        if line.starts_with("@@") {
            let (o, n) = parse_hunk_header(line).unwrap_or(((0, 0), (0, 0)));
            old = o.0;
            new = n.0;
            hunk = Some(hunk.map_or(0, |h| h + 1));
            out.push(PatchLine {
                kind: LineKind::HunkHeader,
                old: None,
                new: None,
                hunk: hunk.unwrap_or(0),
                position,
            });
            continue;
        }
        let Some(h) = hunk else { continue };
        let (kind, o, n) = match line.as_bytes().first() {
            Some(b'+') => (LineKind::Added, None, Some(new)),
            Some(b'-') => (LineKind::Removed, Some(old), None),
            Some(b'\\') => (LineKind::NoNewline, None, None),
            _ => (LineKind::Context, Some(old), Some(new)),
        };
        if o.is_some() {
            old += 1;
        }
        if n.is_some() {
            new += 1;
        }
        out.push(PatchLine {
            kind,
            old: o,
            new: n,
            hunk: h,
            position,
        });
    }
    out
}

/// `@@ -a,b +c,d @@` → ((a, b), (c, d)); counts default to 1.
fn parse_hunk_header(line: &str) -> Option<((u64, u64), (u64, u64))> {
    let mut parts = line.split_whitespace().skip(1);
    let range = |s: &str| -> Option<(u64, u64)> {
        let (start, count) = s.split_once(',').unwrap_or((s, "1"));
        Some((start.parse().ok()?, count.parse().ok()?))
    };
    let old = range(parts.next()?.strip_prefix('-')?)?;
    let new = range(parts.next()?.strip_prefix('+')?)?;
    Some((old, new))
}

/// The patch line a (side, line) comment points at, if the diff shows it.
pub(super) fn find_line(lines: &[PatchLine], side: &str, line: u64) -> Option<PatchLine> {
    lines.iter().copied().find(|l| match side {
        "RIGHT" => matches!(l.kind, LineKind::Context | LineKind::Added) && l.new == Some(line),
        _ => matches!(l.kind, LineKind::Context | LineKind::Removed) && l.old == Some(line),
    })
}

impl PullFile {
    /// A `modified` file with the given patch; additions/deletions counted from it.
    pub fn from_patch(filename: &str, patch: &str) -> PullFile {
        let (additions, deletions) = count_changes(patch);
        PullFile {
            filename: filename.to_owned(),
            status: "modified".to_owned(),
            additions,
            deletions,
            changes: additions + deletions,
            patch: Some(patch.trim_end_matches('\n').to_owned()),
            previous_filename: None,
        }
    }

    /// A binary file (no patch) with the given status.
    pub fn binary(filename: &str, status: &str) -> PullFile {
        PullFile {
            filename: filename.to_owned(),
            status: status.to_owned(),
            additions: 0,
            deletions: 0,
            changes: 0,
            patch: None,
            previous_filename: None,
        }
    }

    /// Splits a whole `git diff -M` into entries the way GitHub's files API presents them:
    /// `patch` = the hunks only (from the first `@@`), without trailing newline; status from
    /// the extended headers; binary files and hunk-less changes (pure renames, mode changes)
    /// without patch. Hunk bodies are consumed by their line counts, so content lines that look
    /// like headers (`--- x`, `diff --git`) are not misread.
    pub fn from_diff(diff: &str) -> Vec<PullFile> {
        let lines: Vec<&str> = diff.split('\n').collect();
        let mut files = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let Some(git_line) = lines[i].strip_prefix("diff --git ") else {
                i += 1;
                continue;
            };
            i += 1;
            let (git_old, git_new) = parse_git_line(git_line.trim_end_matches('\r'));
            let mut header = FileHeader::default();
            while i < lines.len()
                && !lines[i].starts_with("diff --git ")
                && !lines[i].starts_with("@@")
            {
                header.read(lines[i].trim_end_matches('\r'));
                i += 1;
            }
            let mut patch: Vec<&str> = Vec::new();
            let (mut additions, mut deletions) = (0u64, 0u64);
            while i < lines.len() && lines[i].starts_with("@@") {
                let Some(((_, mut old_left), (_, mut new_left))) = parse_hunk_header(lines[i])
                else {
                    break;
                };
                patch.push(lines[i]);
                i += 1;
                while i < lines.len() && (old_left > 0 || new_left > 0) {
                    let line = lines[i];
                    match line.as_bytes().first() {
                        Some(b'+') => {
                            new_left = new_left.saturating_sub(1);
                            additions += 1;
                        }
                        Some(b'-') => {
                            old_left = old_left.saturating_sub(1);
                            deletions += 1;
                        }
                        Some(b'\\') => {}
                        // A context line; an empty line is a context line whose space was stripped.
                        Some(b' ') | None => {
                            old_left = old_left.saturating_sub(1);
                            new_left = new_left.saturating_sub(1);
                        }
                        Some(_) => break,
                    }
                    patch.push(line);
                    i += 1;
                }
                while i < lines.len() && lines[i].starts_with('\\') {
                    patch.push(lines[i]);
                    i += 1;
                }
            }

            let old_name = header
                .rename_from
                .clone()
                .or(header.minus.clone())
                .or(git_old);
            let new_name = header.rename_to.clone().or(header.plus.clone()).or(git_new);
            let status = if header.new_file {
                "added"
            } else if header.deleted_file {
                "removed"
            } else if header.rename_to.is_some() {
                if header.copy { "copied" } else { "renamed" }
            } else if header.mode_change && patch.is_empty() && !header.binary {
                "changed"
            } else {
                "modified"
            };
            let filename = if header.deleted_file {
                old_name.clone()
            } else {
                new_name.clone()
            }
            .unwrap_or_default();
            let previous_filename =
                matches!(status, "renamed" | "copied").then(|| old_name.unwrap_or_default());
            let patch = (!header.binary && !patch.is_empty()).then(|| patch.join("\n"));
            let (additions, deletions) = if header.binary {
                (0, 0)
            } else {
                (additions, deletions)
            };
            files.push(PullFile {
                filename,
                status: status.to_owned(),
                additions,
                deletions,
                changes: additions + deletions,
                patch,
                previous_filename,
            });
        }
        files
    }
}

fn count_changes(patch: &str) -> (u64, u64) {
    parse_patch(patch)
        .iter()
        .fold((0, 0), |(a, d), l| match l.kind {
            LineKind::Added => (a + 1, d),
            LineKind::Removed => (a, d + 1),
            _ => (a, d),
        })
}

/// What the extended header lines of one file in a `git diff` say.
#[derive(Default)]
struct FileHeader {
    new_file: bool,
    deleted_file: bool,
    copy: bool,
    mode_change: bool,
    binary: bool,
    rename_from: Option<String>,
    rename_to: Option<String>,
    minus: Option<String>,
    plus: Option<String>,
}

impl FileHeader {
    fn read(&mut self, line: &str) {
        if line.starts_with("new file mode") {
            self.new_file = true;
        } else if line.starts_with("deleted file mode") {
            self.deleted_file = true;
        } else if line.starts_with("old mode") || line.starts_with("new mode") {
            self.mode_change = true;
        } else if let Some(name) = line.strip_prefix("rename from ") {
            self.rename_from = Some(unquote(name));
        } else if let Some(name) = line.strip_prefix("rename to ") {
            self.rename_to = Some(unquote(name));
        } else if let Some(name) = line.strip_prefix("copy from ") {
            self.copy = true;
            self.rename_from = Some(unquote(name));
        } else if let Some(name) = line.strip_prefix("copy to ") {
            self.copy = true;
            self.rename_to = Some(unquote(name));
        } else if let Some(name) = line.strip_prefix("--- ") {
            self.minus = strip_side_prefix(name, "a/");
        } else if let Some(name) = line.strip_prefix("+++ ") {
            self.plus = strip_side_prefix(name, "b/");
        } else if (line.starts_with("Binary files ") && line.ends_with(" differ"))
            || line == "GIT binary patch"
        {
            self.binary = true;
        }
    }
}

/// `a/path` / `/dev/null` from a `---`/`+++` line (git appends a tab to names with spaces).
fn strip_side_prefix(name: &str, prefix: &str) -> Option<String> {
    let name = unquote(name.trim_end_matches('\t'));
    if name == "/dev/null" {
        return None;
    }
    Some(name.strip_prefix(prefix).map(str::to_owned).unwrap_or(name))
}

/// The two names of `diff --git a/X b/Y` (used only when no other header names the file).
fn parse_git_line(rest: &str) -> (Option<String>, Option<String>) {
    if rest.starts_with('"') {
        // Quoted names: `"a/x y" "b/x y"` or a mix of quoted and plain.
        let (first, tail) = split_quoted(rest);
        let second = unquote(tail.trim_start());
        return (
            first.strip_prefix("a/").map(str::to_owned),
            second.strip_prefix("b/").map(str::to_owned),
        );
    }
    // Unquoted: when both names are equal the line is `a/X b/X`, which is unambiguous even if
    // X contains " b/".
    let len = rest.len();
    if len > 5 && (len - 5).is_multiple_of(2) {
        let x = (len - 5) / 2;
        if rest.is_char_boundary(2 + x)
            && rest.starts_with("a/")
            && rest[2 + x..].starts_with(" b/")
            && rest[2..2 + x] == rest[5 + x..]
        {
            let name = rest[2..2 + x].to_owned();
            return (Some(name.clone()), Some(name));
        }
    }
    match rest.split_once(" b/") {
        Some((a, b)) => (a.strip_prefix("a/").map(str::to_owned), Some(unquote(b))),
        None => (None, None),
    }
}

/// Splits a leading C-quoted string off `s`, returning it unquoted and the rest.
fn split_quoted(s: &str) -> (String, &str) {
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return (unquote(&s[..=i]), &s[i + 1..]),
            _ => i += 1,
        }
    }
    (unquote(s), "")
}

/// Undoes git's C-style quoting of path names (`"a/t\303\251st\tx"`); plain names pass through.
fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return s.to_owned();
    };
    let bytes = inner.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let escaped = bytes[i + 1];
        i += 2;
        match escaped {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut value = u32::from(escaped - b'0');
                for _ in 0..2 {
                    if i < bytes.len() && (b'0'..=b'7').contains(&bytes[i]) {
                        value = value * 8 + u32::from(bytes[i] - b'0');
                        i += 1;
                    }
                }
                out.push(value as u8);
            }
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
