//! A change in a local git repository: the diff between two commits, and the files at the
//! later one, read with the `git` command. What `critic review` and `critic eval` review.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::diff::{FileDiff, parse_diff};
use crate::github::ChangedFile;

use super::PrFile;
use super::source::{RepoTree, Source, SourceError};

/// The change from `base` to `head` (commits as git resolved them) in the repository at
/// `dir`.
#[derive(Debug, Clone)]
pub struct LocalSource {
    dir: PathBuf,
    pub base: String,
    pub head: String,
}

impl LocalSource {
    /// Resolves `base` and `head` (any revision git understands) to commits of the
    /// repository at `dir`. The diff is taken from their merge base, as a pull request's is.
    pub async fn open(dir: &Path, base: &str, head: &str) -> Result<LocalSource, SourceError> {
        let head = resolve(dir, head).await?;
        let base_commit = resolve(dir, base).await?;
        let merge_base = git(dir, &["merge-base", &base_commit, &head])
            .await
            .map_err(|e| {
                SourceError::Local(format!("`{base}` and the head have no common history: {e}"))
            })?;
        Ok(LocalSource {
            dir: dir.to_path_buf(),
            base: text(merge_base).trim().to_string(),
            head,
        })
    }
}

/// The revision a change is reviewed against when none is named: the remote's default branch
/// (what `origin/HEAD` points at), else `main`, else `master`.
pub async fn default_base(dir: &Path) -> Result<String, SourceError> {
    if let Ok(out) = git(
        dir,
        &["symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"],
    )
    .await
    {
        let name = text(out);
        if let Some(branch) = name.trim().strip_prefix("refs/remotes/") {
            return Ok(branch.to_string());
        }
    }
    for branch in ["main", "master"] {
        if resolve(dir, branch).await.is_ok() {
            return Ok(branch.to_string());
        }
    }
    Err(SourceError::Local(format!(
        "no base to compare with in {}: no origin/HEAD, no `main`, no `master`; name one with --base",
        dir.display()
    )))
}

impl LocalSource {
    /// The head commit's subject line.
    pub async fn subject(&self) -> Result<String, SourceError> {
        let out = git(&self.dir, &["log", "-1", "--format=%s", &self.head])
            .await
            .map_err(SourceError::Local)?;
        Ok(text(out).trim().to_string())
    }

    /// A file's bytes at the base (where a repository's own settings are read: a change
    /// must not decide how it is reviewed).
    pub async fn base_file(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        file_at(&self.dir, &self.base, path).await
    }
}

/// A file's bytes at commit `rev`; None when it has no such file. One `git` run for a file
/// that is there; a failure is told apart from a missing file by a second.
async fn file_at(dir: &Path, rev: &str, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
    let spec = format!("{rev}:{path}");
    match git(dir, &["cat-file", "blob", &spec]).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(_) if git(dir, &["cat-file", "-e", &spec]).await.is_err() => Ok(None),
        Err(e) => Err(SourceError::Local(e)),
    }
}

/// The full commit id of `rev`.
async fn resolve(dir: &Path, rev: &str) -> Result<String, SourceError> {
    let spec = format!("{rev}^{{commit}}");
    let out = git(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    )
    .await
    .map_err(|e| SourceError::Local(format!("`{rev}` is not a commit here: {e}")))?;
    Ok(text(out).trim().to_string())
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The diff from `base` to `head` as text, with fixed options whatever the user's git
/// configuration says: renames found, paths with `a/` and `b/` prefixes, no colour, no
/// external diff tool. `critic review` and `critic eval`'s public cases read the same.
pub(crate) async fn raw_diff(dir: &Path, base: &str, head: &str) -> Result<Vec<u8>, String> {
    git(
        dir,
        &[
            "-c",
            "core.quotePath=true",
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--find-renames",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            base,
            head,
        ],
    )
    .await
}

/// Runs git in `dir` and returns its output, or what it said on failure.
pub(crate) async fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(if said.is_empty() {
            format!("git {} failed ({})", args.join(" "), out.status)
        } else {
            said
        })
    }
}

/// A file of a local diff in the shape GitHub's files API gives.
pub(crate) fn changed_file(diff: &FileDiff) -> PrFile {
    let additions = diff
        .patch
        .all_lines()
        .iter()
        .filter(|l| l.kind == crate::diff::LineKind::Added)
        .count() as u64;
    let deletions = diff
        .patch
        .all_lines()
        .iter()
        .filter(|l| l.kind == crate::diff::LineKind::Removed)
        .count() as u64;
    let patch = (diff.binary.is_none() && !diff.patch.is_empty())
        .then(|| String::from_utf8_lossy(diff.patch.as_bytes()).into_owned());
    PrFile::from_github(ChangedFile {
        filename: diff.path.to_string_lossy().into_owned(),
        status: diff.status,
        additions,
        deletions,
        patch,
        previous_filename: diff
            .previous_path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
    })
}

impl Source for LocalSource {
    async fn changed_files(&self) -> Result<Vec<PrFile>, SourceError> {
        let out = raw_diff(&self.dir, &self.base, &self.head)
            .await
            .map_err(SourceError::Local)?;
        let files = parse_diff(&out)
            .map_err(|e| SourceError::Local(format!("git's diff could not be read: {e}")))?;
        Ok(files.iter().map(changed_file).collect())
    }

    async fn file(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        file_at(&self.dir, &self.head, path).await
    }

    async fn tree(&self) -> Result<RepoTree, SourceError> {
        let out = git(&self.dir, &["ls-tree", "-r", "-l", "-z", &self.head])
            .await
            .map_err(SourceError::Local)?;
        // `<mode> SP <type> SP <object> SP+ <size> TAB <path>`, NUL-terminated.
        let files = out
            .split(|b| *b == 0)
            .filter_map(|entry| {
                let entry = std::str::from_utf8(entry).ok()?;
                let (meta, path) = entry.split_once('\t')?;
                let mut fields = meta.split_whitespace();
                let (_mode, kind, _id, size) = (
                    fields.next()?,
                    fields.next()?,
                    fields.next()?,
                    fields.next()?,
                );
                (kind == "blob").then(|| (path.to_string(), size.parse().ok()))
            })
            .collect();
        Ok(RepoTree {
            files,
            truncated: false,
        })
    }
}
