//! A whole `git diff` (or a `.diff` file) split into files: git's extended headers (renames,
//! copies, modes, new and deleted files, binary files), path names in every form git writes
//! them, and each file's hunks as a [`RawPatch`].

pub use crate::domain::FileStatus;
use std::borrow::Cow;
use std::fmt;

use super::FilePatch;
use super::hunks::{RawPatch, Short, check_size, parse_hunks};
use super::lines::{Cursor, excerpt, trim_cr};
use super::{DiffError, quote};

/// A path in the repository, as bytes: git paths need not be UTF-8.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RepoPath(Vec<u8>);

impl RepoPath {
    pub fn new(bytes: impl Into<Vec<u8>>) -> RepoPath {
        RepoPath(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The path for people, prompts and GitHub's API; invalid UTF-8 replaced.
    pub fn to_string_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl fmt::Debug for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string_lossy(), f)
    }
}

/// A git file mode such as `100644` (file), `100755` (executable) or `120000` (symlink).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileMode(pub u32);

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06o}", self.0)
    }
}

impl fmt::Debug for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileMode({self})")
    }
}

/// How a diff says a file is binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binary {
    /// `Binary files a/x and b/x differ`: no content in the diff.
    Differs,
    /// `GIT binary patch` (from `git diff --binary`): base85 data, not kept.
    Patch,
}

/// One file's entry in a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    /// The file's path after the change; before it for a deleted file.
    pub path: RepoPath,
    /// Where a renamed or copied file came from.
    pub previous_path: Option<RepoPath>,
    pub status: FileStatus,
    /// The mode before the change, when the diff states it (not for added files).
    pub old_mode: Option<FileMode>,
    /// The mode after the change, when the diff states it (not for deleted files).
    pub new_mode: Option<FileMode>,
    /// `similarity index`: for renames and copies, how much of the file is unchanged (%).
    pub similarity: Option<u8>,
    /// `dissimilarity index`: for rewrites broken up by `git diff -B` (%).
    pub dissimilarity: Option<u8>,
    /// The blob id before the change, from the `index` line (abbreviated as git wrote it).
    pub old_blob: Option<String>,
    /// The blob id after the change, from the `index` line.
    pub new_blob: Option<String>,
    pub binary: Option<Binary>,
    /// The file's hunks; empty for binary files, pure renames, mode changes, empty files.
    pub patch: RawPatch,
}

impl FileDiff {
    /// The text model of the hunks, as [`FilePatch::parse`] gives for GitHub's `patch`.
    pub fn file_patch(&self) -> FilePatch {
        self.patch.to_file_patch()
    }

    /// The mode changed (e.g. a file became executable).
    pub fn mode_changed(&self) -> bool {
        matches!((self.old_mode, self.new_mode), (Some(a), Some(b)) if a != b)
    }
}

/// Splits a whole diff into files. Accepts what `git diff`, `git show` and `git format-patch`
/// write (text around the diffs, e.g. commit messages, is skipped) and plain unified diffs
/// (`--- a` / `+++ b` without `diff --git`). Each hunk must have the lines its header counts;
/// combined diffs of merges (`diff --cc`) are refused.
///
/// Linear in the input; never panics (fuzzed, see `fuzz/`).
pub fn parse_diff(input: &[u8]) -> Result<Vec<FileDiff>, DiffError> {
    check_size(input)?;
    let mut cur = Cursor::new(input);
    let mut files = Vec::new();
    while let Some(line) = cur.peek_bytes() {
        if let Some(rest) = line.strip_prefix(b"diff --git ") {
            cur.next_line();
            files.push(git_file(&mut cur, trim_cr(rest))?);
        } else if line.starts_with(b"diff --cc ") || line.starts_with(b"diff --combined ") {
            return Err(DiffError::Combined {
                line: cur.line_no() + 1,
            });
        } else if line.starts_with(b"--- ") && starts_plain_diff(&cur) {
            files.push(plain_file(&mut cur)?);
        } else {
            cur.next_line();
        }
    }
    Ok(files)
}

/// Whether the cursor stands at `--- x`, `+++ y`, `@@ -`: a unified diff without git's
/// header.
fn starts_plain_diff(cur: &Cursor<'_>) -> bool {
    let mut ahead = Cursor::new(&cur.input()[cur.pos()..]);
    ahead.next_line();
    ahead.next_bytes().is_some_and(|l| l.starts_with(b"+++ "))
        && ahead.next_bytes().is_some_and(|l| l.starts_with(b"@@ -"))
}

/// What a file's header lines said, gathered before deciding its paths and status.
#[derive(Default)]
struct Header {
    old_mode: Option<FileMode>,
    new_mode: Option<FileMode>,
    deleted: bool,
    added: bool,
    rename_from: Option<Vec<u8>>,
    rename_to: Option<Vec<u8>>,
    copy_from: Option<Vec<u8>>,
    copy_to: Option<Vec<u8>>,
    similarity: Option<u8>,
    dissimilarity: Option<u8>,
    old_blob: Option<String>,
    new_blob: Option<String>,
    /// The names on the `---` and `+++` lines; `Some(None)` is `/dev/null`.
    minus: Option<Option<Vec<u8>>>,
    plus: Option<Option<Vec<u8>>>,
    binary: Option<Binary>,
}

/// One `diff --git` entry; the cursor stands after that line.
fn git_file(cur: &mut Cursor<'_>, names: &[u8]) -> Result<FileDiff, DiffError> {
    let first_line = cur.line_no();
    let mut h = Header::default();
    let mut patch = RawPatch::default();
    while let Some(raw) = cur.peek_bytes() {
        let line = trim_cr(raw);
        let line_no = cur.line_no() + 1;
        let bad = || DiffError::BadFileHeader {
            line: line_no,
            text: excerpt(raw),
        };
        if let Some(v) = line.strip_prefix(b"old mode ") {
            h.old_mode = Some(mode(v).ok_or_else(bad)?);
        } else if let Some(v) = line.strip_prefix(b"new mode ") {
            h.new_mode = Some(mode(v).ok_or_else(bad)?);
        } else if let Some(v) = line.strip_prefix(b"deleted file mode ") {
            h.old_mode = Some(mode(v).ok_or_else(bad)?);
            h.deleted = true;
        } else if let Some(v) = line.strip_prefix(b"new file mode ") {
            h.new_mode = Some(mode(v).ok_or_else(bad)?);
            h.added = true;
        } else if let Some(v) = strip_either(line, b"rename from ", b"rename old ") {
            h.rename_from = Some(name(v).ok_or_else(bad)?);
        } else if let Some(v) = strip_either(line, b"rename to ", b"rename new ") {
            h.rename_to = Some(name(v).ok_or_else(bad)?);
        } else if let Some(v) = line.strip_prefix(b"copy from ") {
            h.copy_from = Some(name(v).ok_or_else(bad)?);
        } else if let Some(v) = line.strip_prefix(b"copy to ") {
            h.copy_to = Some(name(v).ok_or_else(bad)?);
        } else if let Some(v) = line.strip_prefix(b"similarity index ") {
            h.similarity = Some(percent(v).ok_or_else(bad)?);
        } else if let Some(v) = line.strip_prefix(b"dissimilarity index ") {
            h.dissimilarity = Some(percent(v).ok_or_else(bad)?);
        } else if let Some(v) = line.strip_prefix(b"index ") {
            index(&mut h, v).ok_or_else(bad)?;
        } else if let Some(v) = line.strip_prefix(b"--- ") {
            h.minus = Some(side_name(v).ok_or_else(bad)?);
            cur.next_line();
            let plus = cur.peek_bytes().map(trim_cr);
            let v = plus.and_then(|l| l.strip_prefix(b"+++ ")).ok_or_else(|| {
                DiffError::BadFileHeader {
                    line: cur.line_no() + 1,
                    text: excerpt(plus.unwrap_or_default()),
                }
            })?;
            h.plus = Some(side_name(v).ok_or_else(|| DiffError::BadFileHeader {
                line: cur.line_no() + 1,
                text: excerpt(v),
            })?);
            cur.next_line();
            patch = parse_hunks(cur, Short::Refuse)?;
            break;
        } else if line.starts_with(b"@@ -") {
            patch = parse_hunks(cur, Short::Refuse)?;
            break;
        } else if line.starts_with(b"Binary files ") && line.ends_with(b" differ") {
            h.binary = Some(Binary::Differs);
            cur.next_line();
            break;
        } else if line == b"GIT binary patch" {
            h.binary = Some(Binary::Patch);
            cur.next_line();
            // Base85 lines never hold a space, so none of them starts with `diff `.
            while cur.peek_bytes().is_some_and(|l| !l.starts_with(b"diff ")) {
                cur.next_line();
            }
            break;
        } else {
            break;
        }
        cur.next_line();
    }
    finish(h, names, patch, first_line)
}

/// A unified diff without git's header: `--- old[\tdate]`, `+++ new[\tdate]`, hunks.
fn plain_file(cur: &mut Cursor<'_>) -> Result<FileDiff, DiffError> {
    let mut h = Header::default();
    let first_line = cur.line_no() + 1;
    for slot in [&mut h.minus, &mut h.plus] {
        let raw = cur.next_bytes().unwrap_or_default();
        let line = trim_cr(raw);
        let name = line.get(4..).and_then(side_name);
        *slot = Some(name.ok_or_else(|| DiffError::BadFileHeader {
            line: cur.line_no(),
            text: excerpt(raw),
        })?);
    }
    let patch = parse_hunks(cur, Short::Refuse)?;
    finish(h, b"", patch, first_line)
}

/// Decides the file's paths and status from what its header said.
fn finish(
    mut h: Header,
    git_names: &[u8],
    patch: RawPatch,
    first_line: usize,
) -> Result<FileDiff, DiffError> {
    let no_path = || DiffError::NoPath { line: first_line };
    let (minus, plus) = (h.minus.take(), h.plus.take());
    let added = h.added || matches!(minus, Some(None));
    let deleted = h.deleted || matches!(plus, Some(None));
    let (status, path, previous_path) =
        if let (Some(from), Some(to)) = (&h.rename_from, &h.rename_to) {
            (FileStatus::Renamed, to.clone(), Some(from.clone()))
        } else if let (Some(from), Some(to)) = (&h.copy_from, &h.copy_to) {
            (FileStatus::Copied, to.clone(), Some(from.clone()))
        } else {
            // Outside renames and copies both sides name the same file: the `diff --git` line
            // says which, unless its names cannot be split; then the `---`/`+++` lines do.
            let path = match same_name(git_names) {
                Some(name) => name,
                None => {
                    let from_lines = if deleted {
                        minus.flatten().map(|n| strip_prefix(n, b"a/"))
                    } else {
                        plus.flatten().map(|n| strip_prefix(n, b"b/"))
                    };
                    from_lines.ok_or_else(no_path)?
                }
            };
            let status = match (added, deleted) {
                (true, false) => FileStatus::Added,
                (false, true) => FileStatus::Deleted,
                _ => FileStatus::Modified,
            };
            (status, path, None)
        };
    if path.is_empty() || previous_path.as_ref().is_some_and(Vec::is_empty) {
        return Err(no_path());
    }
    Ok(FileDiff {
        path: RepoPath(path),
        previous_path: previous_path.map(RepoPath),
        status,
        old_mode: if status == FileStatus::Added {
            None
        } else {
            h.old_mode
        },
        new_mode: if status == FileStatus::Deleted {
            None
        } else {
            h.new_mode
        },
        similarity: h.similarity,
        dissimilarity: h.dissimilarity,
        old_blob: h.old_blob,
        new_blob: h.new_blob,
        binary: h.binary,
        patch,
    })
}

fn strip_either<'a>(line: &'a [u8], a: &[u8], b: &[u8]) -> Option<&'a [u8]> {
    line.strip_prefix(a).or_else(|| line.strip_prefix(b))
}

fn strip_prefix(name: Vec<u8>, prefix: &[u8]) -> Vec<u8> {
    match name.strip_prefix(prefix) {
        Some(rest) => rest.to_vec(),
        None => name,
    }
}

/// An octal mode of up to seven digits.
fn mode(v: &[u8]) -> Option<FileMode> {
    if v.is_empty() || v.len() > 7 || !v.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return None;
    }
    Some(FileMode(
        v.iter().fold(0, |m, &d| (m << 3) | u32::from(d - b'0')),
    ))
}

/// `87%`.
fn percent(v: &[u8]) -> Option<u8> {
    let digits = v.strip_suffix(b"%")?;
    if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    u8::try_from(n).ok().filter(|n| *n <= 100)
}

/// `index abc123..def456[ 100644]`: the mode, when there, is the same on both sides.
fn index(h: &mut Header, v: &[u8]) -> Option<()> {
    let (ids, mode_text) = match v.iter().position(|&b| b == b' ') {
        Some(i) => (&v[..i], Some(&v[i + 1..])),
        None => (v, None),
    };
    let dots = ids.windows(2).position(|w| w == b"..")?;
    let (old, new) = (&ids[..dots], &ids[dots + 2..]);
    let hex = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_hexdigit);
    if !hex(old) || !hex(new) {
        return None;
    }
    h.old_blob = Some(String::from_utf8_lossy(old).into_owned());
    h.new_blob = Some(String::from_utf8_lossy(new).into_owned());
    if let Some(m) = mode_text {
        let m = mode(m)?;
        h.old_mode = Some(m);
        h.new_mode = Some(m);
    }
    Some(())
}

/// A whole-line name (`rename from x`): quoted or as is.
fn name(v: &[u8]) -> Option<Vec<u8>> {
    quote::name_value(v).filter(|n| !n.is_empty())
}

/// The name on a `---` or `+++` line; `Some(None)` for `/dev/null`. Unquoted names end at a
/// tab: git adds one after a name with a space, and plain diffs put a date after it.
fn side_name(v: &[u8]) -> Option<Option<Vec<u8>>> {
    let name = if v.first() == Some(&b'"') {
        quote::unquote(v)?.0
    } else {
        let end = v.iter().position(|&b| b == b'\t').unwrap_or(v.len());
        v[..end].to_vec()
    };
    if name == b"/dev/null" {
        return Some(None);
    }
    (!name.is_empty()).then_some(Some(name))
}

/// The one file named on a `diff --git` line, when both names are the same file: `a/x b/x`,
/// `x x` (`--no-prefix`), `"a/\303\251" "b/\303\251"`. Names with spaces are not quoted,
/// so the split is found the way git does: where both halves name the same path.
fn same_name(names: &[u8]) -> Option<Vec<u8>> {
    let (first, second) = if names.first() == Some(&b'"') {
        let (first, rest) = quote::unquote(names)?;
        let rest = rest.strip_prefix(b" ")?;
        let second = if rest.first() == Some(&b'"') {
            let (second, tail) = quote::unquote(rest)?;
            if !tail.is_empty() {
                return None;
            }
            second
        } else {
            rest.to_vec()
        };
        (first, second)
    } else if names.last() == Some(&b'"') {
        // An unquoted name holds no `"`, so the first one opens the second name.
        let open = names.iter().position(|&b| b == b'"')?;
        let first = names[..open].strip_suffix(b" ")?;
        let (second, tail) = quote::unquote(&names[open..])?;
        if !tail.is_empty() {
            return None;
        }
        (first.to_vec(), second)
    } else {
        return split_unquoted(names).map(<[u8]>::to_vec);
    };
    if first == second {
        return Some(first);
    }
    let (a, b) = (after_slash(&first)?, after_slash(&second)?);
    (a == b && !a.is_empty()).then(|| a.to_vec())
}

/// `x x` or `p/x q/x` with no quoting: the name `x`. Linear: with the prefix `p/` fixed by
/// the first `/`, each space fixes where `q/` would have to start, and as the space moves
/// right that point moves left while the next `/` can only move right, so at most one space
/// needs the full comparison.
fn split_unquoted(names: &[u8]) -> Option<&[u8]> {
    let len = names.len();
    // `--no-prefix`: two equal halves around the middle space.
    if len % 2 == 1 {
        let mid = len / 2;
        if names[mid] == b' ' && names[..mid] == names[mid + 1..] {
            return Some(&names[..mid]);
        }
    }
    let first_slash = names.iter().position(|&b| b == b'/')?;
    // For each position, the index of the first `/` at or after it.
    let mut next_slash = vec![len; len + 1];
    for i in (0..len).rev() {
        next_slash[i] = if names[i] == b'/' {
            i
        } else {
            next_slash[i + 1]
        };
    }
    for (space, _) in names
        .iter()
        .enumerate()
        .skip(first_slash + 1)
        .filter(|(_, b)| **b == b' ')
    {
        let name = &names[first_slash + 1..space];
        // `q/` would sit just before the last `name.len()` bytes.
        let Some(slash) = len.checked_sub(name.len() + 1) else {
            break;
        };
        if slash <= space + 1 {
            break;
        }
        if next_slash[space + 1] == slash && !name.is_empty() && names[slash + 1..] == *name {
            return Some(name);
        }
    }
    None
}

/// A name without its first path component (`a/x` → `x`).
fn after_slash(name: &[u8]) -> Option<&[u8]> {
    let slash = name.iter().position(|&b| b == b'/')?;
    Some(&name[slash + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{LineKind, Side};

    fn one(diff: &str) -> FileDiff {
        let files = parse_diff(diff.as_bytes()).expect("parses");
        assert_eq!(files.len(), 1, "{files:#?}");
        files.into_iter().next().expect("one file")
    }

    #[test]
    fn splits_names_with_spaces() {
        assert_eq!(split_unquoted(b"a/x y b/x y"), Some(&b"x y"[..]));
        assert_eq!(split_unquoted(b"x y x y"), Some(&b"x y"[..]));
        assert_eq!(split_unquoted(b"a/b c/d b/b c/d"), Some(&b"b c/d"[..]));
        assert_eq!(split_unquoted(b"dir/x dir/x"), Some(&b"dir/x"[..]));
        assert_eq!(split_unquoted(b"a/old b/new"), None);
        assert_eq!(split_unquoted(b"a/x  b/x "), Some(&b"x "[..]));
        assert_eq!(split_unquoted(b""), None);
        assert_eq!(split_unquoted(b"a/ b/"), None);
    }

    #[test]
    fn modified_file_with_hunks() {
        let f = one(
            "diff --git a/src/lib.rs b/src/lib.rs\nindex 83db48f..bf269f4 100644\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,2 +1,2 @@\n fn a() {}\n-fn b() {}\n+fn c() {}\n",
        );
        assert_eq!(f.path.as_bytes(), b"src/lib.rs");
        assert_eq!(f.status, FileStatus::Modified);
        assert_eq!(f.old_mode, Some(FileMode(0o100644)));
        assert_eq!(f.new_mode, f.old_mode);
        assert!(!f.mode_changed());
        assert_eq!(f.old_blob.as_deref(), Some("83db48f"));
        assert_eq!(f.patch.hunks().len(), 1);
        let p = f.file_patch();
        assert_eq!(p.hunks[0].lines[2].kind, LineKind::Added);
        assert!(p.is_commentable(Side::Right, 2));
    }

    #[test]
    fn renames_and_copies_with_and_without_changes() {
        let files = parse_diff(
            b"diff --git a/old name.txt b/new name.txt\nsimilarity index 100%\nrename from old name.txt\nrename to new name.txt\n\
diff --git a/a.c b/b.c\nsimilarity index 87%\ncopy from a.c\ncopy to b.c\nindex 1111111..2222222 100644\n--- a/a.c\n+++ b/b.c\n@@ -1 +1 @@\n-x\n+y\n",
        )
        .expect("parses");
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].status, FileStatus::Renamed);
        assert_eq!(files[0].path.to_string(), "new name.txt");
        assert_eq!(
            files[0].previous_path.as_ref().map(ToString::to_string),
            Some("old name.txt".into())
        );
        assert_eq!(files[0].similarity, Some(100));
        assert!(files[0].patch.is_empty());
        assert_eq!(files[1].status, FileStatus::Copied);
        assert_eq!(files[1].path.to_string(), "b.c");
        assert_eq!(files[1].similarity, Some(87));
        assert_eq!(files[1].patch.hunks().len(), 1);
    }

    #[test]
    fn new_deleted_empty_and_mode_changes() {
        let files = parse_diff(
            b"diff --git a/empty b/empty\nnew file mode 100644\nindex 0000000..e69de29\n\
diff --git a/gone b/gone\ndeleted file mode 100755\nindex e69de29..0000000\n\
diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n\
diff --git a/new.rs b/new.rs\nnew file mode 100644\nindex 0000000..1234567\n--- /dev/null\n+++ b/new.rs\n@@ -0,0 +1 @@\n+fn main() {}\n",
        )
        .expect("parses");
        let statuses: Vec<FileStatus> = files.iter().map(|f| f.status).collect();
        assert_eq!(
            statuses,
            [
                FileStatus::Added,
                FileStatus::Deleted,
                FileStatus::Modified,
                FileStatus::Added
            ]
        );
        assert_eq!(files[0].new_mode, Some(FileMode(0o100644)));
        assert_eq!(files[0].old_mode, None);
        assert_eq!(files[1].old_mode, Some(FileMode(0o100755)));
        assert_eq!(files[1].new_mode, None);
        assert!(files[2].mode_changed());
        assert_eq!(
            files[2].new_mode.map(|m| m.to_string()),
            Some("100755".into())
        );
        assert_eq!(files[3].path.to_string(), "new.rs");
        assert_eq!(files[3].patch.all_lines()[0].new, Some(1));
    }

    #[test]
    fn binary_files_both_ways() {
        let files = parse_diff(
            b"diff --git a/logo.png b/logo.png\nindex 1234567..89abcde 100644\nBinary files a/logo.png and b/logo.png differ\n\
diff --git a/icon.gif b/icon.gif\nnew file mode 100644\nindex 0000000000000000000000000000000000000000..d3b2a1c4e5f60718293a4b5c6d7e8f9012345678\nGIT binary patch\nliteral 43\nzcmZ?wbhEHbWMp7uXkcLY4+c66G%WtFz9\n\nliteral 0\nHcmV?d00001\n\n\
diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n",
        )
        .expect("parses");
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].binary, Some(Binary::Differs));
        assert_eq!(files[1].binary, Some(Binary::Patch));
        assert_eq!(files[1].status, FileStatus::Added);
        assert!(files[1].patch.is_empty());
        assert_eq!(files[2].binary, None);
        assert_eq!(files[2].patch.all_lines().len(), 2);
    }

    #[test]
    fn quoted_names() {
        let f = one(
            "diff --git \"a/caf\\303\\251 \\\"x\\\"\\t.txt\" \"b/caf\\303\\251 \\\"x\\\"\\t.txt\"\nnew file mode 100644\nindex 0000000..e69de29\n",
        );
        assert_eq!(f.path.as_bytes(), "café \"x\"\t.txt".as_bytes());
        let f = one(
            "diff --git a/plain \"b/t\\303\\251\"\nsimilarity index 100%\nrename from plain\nrename to \"t\\303\\251\"\n",
        );
        assert_eq!(f.path.to_string(), "té");
        assert_eq!(same_name(b"a/x \"b/x\""), Some(b"x".to_vec()));
        assert_eq!(same_name(b"\"a/x\" b/x"), Some(b"x".to_vec()));
        assert_eq!(same_name(b"\"a/x\" \"b/y\""), None);
        assert_eq!(same_name(b"\"a/x"), None);
    }

    #[test]
    fn names_with_spaces_and_tabs_on_the_file_lines() {
        let f = one(
            "diff --git a/my file.c b/my file.c\nindex 1..2 100644\n--- a/my file.c\t\n+++ b/my file.c\t\n@@ -1 +1 @@\n-a\n+b\n",
        );
        assert_eq!(f.path.to_string(), "my file.c");
    }

    #[test]
    fn no_prefix_diffs() {
        let f = one(
            "diff --git src/a b.rs src/a b.rs\nindex 1..2 100644\n--- src/a b.rs\n+++ src/a b.rs\n@@ -1 +1 @@\n-a\n+b\n",
        );
        assert_eq!(f.path.to_string(), "src/a b.rs");
        let f = one("diff --git x x\nnew file mode 100644\nindex 0000000..e69de29\n");
        assert_eq!(f.path.to_string(), "x");
    }

    #[test]
    fn text_around_diffs_is_skipped() {
        let files = parse_diff(
            b"From 1234 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] x\n\n---\n x | 2 +-\n\n\
diff --git a/x b/x\nindex 1..2 100644\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n-- \n2.39.0\n\n",
        )
        .expect("parses");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].patch.all_lines().len(), 2);
    }

    #[test]
    fn plain_unified_diffs() {
        let files = parse_diff(
            b"--- a/x.c\t2024-01-01 00:00:00\n+++ b/x.c\t2024-01-02 00:00:00\n@@ -1 +1 @@\n-a\n+b\n--- /dev/null\n+++ b/y.c\n@@ -0,0 +1 @@\n+y\n",
        )
        .expect("parses");
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path.to_string(), "x.c");
        assert_eq!(files[0].status, FileStatus::Modified);
        assert_eq!(files[1].path.to_string(), "y.c");
        assert_eq!(files[1].status, FileStatus::Added);
    }

    #[test]
    fn crlf_diffs_keep_content_and_read_headers() {
        let f = one(
            "diff --git a/w.txt b/w.txt\r\nindex 1..2 100644\r\n--- a/w.txt\r\n+++ b/w.txt\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n",
        );
        assert_eq!(f.path.to_string(), "w.txt");
        let l = &f.patch.all_lines()[1];
        assert_eq!(f.patch.bytes(l), b"b\r");
        assert_eq!(f.patch.text(l), "b");
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(matches!(
            parse_diff(b"diff --git a/x b/x\nold mode 99\n"),
            Err(DiffError::BadFileHeader { line: 2, .. })
        ));
        assert!(matches!(
            parse_diff(b"diff --git a/x b/x\n--- a/x\nnot plus\n"),
            Err(DiffError::BadFileHeader { line: 3, .. })
        ));
        assert!(matches!(
            parse_diff(
                b"diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\ndiff --git a/y b/y\n"
            ),
            Err(DiffError::BadLine { line: 6, .. })
        ));
        assert_eq!(
            parse_diff(b"diff --git a/x b/y\nindex 1..2\n"),
            Err(DiffError::NoPath { line: 1 })
        );
        assert_eq!(
            parse_diff(b"x\ndiff --cc f\n"),
            Err(DiffError::Combined { line: 2 })
        );
        assert!(matches!(
            parse_diff(b"diff --git a/x b/x\nsimilarity index 101%\n"),
            Err(DiffError::BadFileHeader { .. })
        ));
    }

    #[test]
    fn empty_and_headerless_input() {
        assert_eq!(parse_diff(b""), Ok(Vec::new()));
        assert_eq!(parse_diff(b"just words\n"), Ok(Vec::new()));
    }
}
