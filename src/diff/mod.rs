//! Unified diffs as git and GitHub write them.
//!
//! - [`parse_diff`] splits a whole `git diff` into [`FileDiff`]s: renames, copies, modes, new,
//!   deleted and binary files, quoted and `--no-prefix` names. Each file's hunks are a
//!   [`RawPatch`], which keeps the bytes as written (not necessarily UTF-8, `\r` kept).
//! - [`FilePatch::parse`] reads GitHub's per-file `patch` field into the text model the
//!   poster and the prompts use; [`RawPatch::to_file_patch`] gives the same from a whole diff.
//! - The poster's questions: [`FilePatch::is_commentable`], [`FilePatch::hunk_of`],
//!   [`FilePatch::coverage`], [`FilePatch::find_snippet`].
//! - [`FilePatch::numbered`]: the form the model reads; why it departs from PR-Agent's layout
//!   is in `numbered.rs`.
//!
//! Hunks are read by counting their lines against the header, never by guessing from a line's
//! first characters, so a removed line reading `--- a` is content. Parsing is linear in the
//! input and never panics; `fuzz/` holds the target that checks both.

mod git;
mod hunks;
mod lines;
mod numbered;
mod patch;
mod quote;
mod snippet;
#[cfg(test)]
mod tests;

pub use git::{Binary, FileDiff, FileMode, FileStatus, RepoPath, parse_diff};
pub use hunks::{ApplyError, RawHunk, RawLine, RawPatch};
pub use snippet::SnippetMatch;

// The text model the module's files share (kept here, so that none of them imports
// another for its types).

/// One line of a hunk with its numbers in the old and new file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    pub kind: LineKind,
    pub old: Option<u32>,
    pub new: Option<u32>,
    /// The line without its diff marker and line end; invalid UTF-8 replaced (the bytes are
    /// kept in [`RawPatch`]).
    pub text: String,
}

/// A hunk: its header's numbers and its lines, which fill exactly those ranges.
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

/// One file's hunks, as in GitHub's `patch` field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilePatch {
    pub hunks: Vec<Hunk>,
}

/// What a range of lines on one side covers in a patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage<'a> {
    /// The lines of the range that are shown on that side, in order (lines between hunks are
    /// not shown and so not here).
    pub lines: Vec<&'a DiffLine>,
    /// The hunk that shows the whole range, if one does: then one thread can span it.
    pub hunk: Option<usize>,
}

pub use crate::domain::Side;

/// What a hunk line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineKind {
    /// Unchanged, shown for context; on both sides.
    Context,
    /// Only in the new file.
    Added,
    /// Only in the old file.
    Removed,
}

/// Why a diff or patch could not be read. Line numbers count from 1 in the text given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiffError {
    #[error("line {line} of the patch: malformed hunk header `{text}`")]
    BadHeader { line: usize, text: String },
    #[error("line {line} of the patch: a diff line outside any hunk")]
    OutsideHunk { line: usize },
    #[error("line {line} of the patch: `{text}` is not a context, added or removed line")]
    BadLine { line: usize, text: String },
    #[error(
        "the hunk at line {line} of the patch ends {old} old and {new} new lines short of its header"
    )]
    ShortHunk { line: usize, old: u32, new: u32 },
    #[error("line {line} of the patch: more lines than the hunk header at line {header} counts")]
    LongHunk { line: usize, header: usize },
    #[error("line {line} of the patch: the hunk starts before the previous one ends")]
    HunkOrder { line: usize },
    #[error("line {line} of the diff: malformed file header `{text}`")]
    BadFileHeader { line: usize, text: String },
    #[error("the file at line {line} of the diff names no path that can be read")]
    NoPath { line: usize },
    #[error("line {line} of the diff: combined diffs of merges are not supported")]
    Combined { line: usize },
    #[error("the diff is {bytes} bytes; at most 4 GiB can be read")]
    TooLarge { bytes: usize },
}
