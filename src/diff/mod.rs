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
pub use patch::{Coverage, DiffLine, FilePatch, Hunk};
pub use snippet::SnippetMatch;

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
