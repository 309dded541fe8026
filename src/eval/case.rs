//! An evaluation case on disk, in the layout of the test data's scenarios: `meta.json`
//! (title, body and, for a case with a known bug, `"bugs": [{"path": ..., "lines": [...]}]`
//! in head-side line numbers), `pr.diff`, and the head versions of the files under
//! `files/head/` (`files/base/` is not read). Read as a [`Source`], so the review pipeline
//! sees it as it sees a pull request.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diff::parse_diff;
use crate::review::PrFile;
use crate::review::source::{RepoTree, Source, SourceError};

/// A known bug: the lines (head side, 1-based) where it is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Bug {
    pub path: String,
    pub lines: Vec<u32>,
}

#[derive(Debug, Clone, Deserialize)]
struct Meta {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    repo: Option<String>,
    #[serde(default)]
    bugs: Vec<Bug>,
    #[serde(default)]
    test: Option<TestCommand>,
}

/// How a case's tests are run, from `eval/cases.toml` (`test = { ... }`) or `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCommand {
    /// Runs the tests; exit 0 means they pass.
    pub cmd: String,
    /// Builds the tests without running them (`cargo test --no-run`, `go vet ./...`); exit 0
    /// means they compile. Without it, "compiles" is known only when the tests pass.
    #[serde(default)]
    pub build: Option<String>,
    /// Runs the tests with coverage, writing `report`.
    #[serde(default)]
    pub coverage: Option<String>,
    /// The coverage report `coverage` writes, relative to the checkout: LCOV (`SF:`/`DA:`
    /// records) or a Go cover profile (`mode:` first).
    #[serde(default)]
    pub report: Option<String>,
}

/// One case, loaded.
#[derive(Debug, Clone)]
pub struct Case {
    /// The folder's name.
    pub name: String,
    pub dir: PathBuf,
    /// `owner/name` when the case names where it comes from, else the case's name.
    pub repo: String,
    pub title: String,
    pub body: String,
    pub bugs: Vec<Bug>,
    /// The diff, as read.
    pub diff: Vec<u8>,
    /// How the case's tests run (`critic eval --tests`), in its `checkout/`.
    pub test: Option<TestCommand>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{0}: no case folders (each needs meta.json and pr.diff)")]
    Empty(String),
}

fn read_error(path: &Path, e: impl std::fmt::Display) -> CaseError {
    CaseError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl Case {
    pub fn load(dir: &Path) -> Result<Case, CaseError> {
        let meta_path = dir.join("meta.json");
        let text = std::fs::read(&meta_path).map_err(|e| read_error(&meta_path, e))?;
        let meta: Meta = serde_json::from_slice(&text).map_err(|e| read_error(&meta_path, e))?;
        let diff_path = dir.join("pr.diff");
        let diff = std::fs::read(&diff_path).map_err(|e| read_error(&diff_path, e))?;
        parse_diff(&diff).map_err(|e| read_error(&diff_path, e))?;
        for bug in &meta.bugs {
            if bug.lines.is_empty() || bug.lines.contains(&0) {
                return Err(read_error(
                    &meta_path,
                    format!("bug in {}: lines must be 1-based and not empty", bug.path),
                ));
            }
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Case {
            repo: meta.repo.unwrap_or_else(|| name.clone()),
            name,
            dir: dir.to_path_buf(),
            title: meta.title,
            body: meta.body.unwrap_or_default(),
            bugs: meta.bugs,
            diff,
            test: meta.test,
        })
    }

    /// Every case folder under `dir` (those with a `meta.json`), sorted by name.
    pub fn load_all(dir: &Path) -> Result<Vec<Case>, CaseError> {
        let entries = std::fs::read_dir(dir).map_err(|e| read_error(dir, e))?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("meta.json").is_file())
            .collect();
        dirs.sort();
        if dirs.is_empty() {
            return Err(CaseError::Empty(dir.display().to_string()));
        }
        dirs.iter().map(|d| Case::load(d)).collect()
    }

    /// The head-side lines the change adds, by path: what a thread can be put on.
    pub fn added_lines(&self) -> Vec<(String, Vec<u32>)> {
        let Ok(files) = parse_diff(&self.diff) else {
            return Vec::new();
        };
        files
            .iter()
            .map(|f| {
                let lines = f
                    .patch
                    .all_lines()
                    .iter()
                    .filter(|l| l.kind == crate::diff::LineKind::Added)
                    .filter_map(|l| l.new)
                    .collect();
                (f.path.to_string_lossy().into_owned(), lines)
            })
            .collect()
    }
}

/// A case read as a change to review.
pub struct CaseSource<'a> {
    pub case: &'a Case,
}

impl Case {
    /// The whole repository at the case's head, a git work tree, when the case has one
    /// (`critic eval --tests` runs the tests there).
    pub fn checkout(&self) -> Option<PathBuf> {
        let dir = self.dir.join("checkout");
        dir.join(".git").exists().then_some(dir)
    }
}

impl CaseSource<'_> {
    /// The head's files: the whole checkout when there is one, else the changed files.
    fn head_root(&self) -> PathBuf {
        self.case
            .checkout()
            .unwrap_or_else(|| self.case.dir.join("files").join("head"))
    }
}

/// `path` inside `root`, refusing anything that would leave it.
fn inside(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path);
    relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| root.join(relative))
}

impl Source for CaseSource<'_> {
    async fn changed_files(&self) -> Result<Vec<PrFile>, SourceError> {
        let files = parse_diff(&self.case.diff)
            .map_err(|e| SourceError::Local(format!("{}: pr.diff: {e}", self.case.name)))?;
        Ok(files
            .iter()
            .map(crate::review::local::changed_file)
            .collect())
    }

    async fn file(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let Some(full) = inside(&self.head_root(), path) else {
            return Ok(None);
        };
        match std::fs::read(&full) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SourceError::Local(format!("{}: {e}", full.display()))),
        }
    }

    async fn tree(&self) -> Result<RepoTree, SourceError> {
        if let Some(checkout) = self.case.checkout() {
            // The repository's own files, not its `.git` or what a build left.
            let out = crate::review::local::git(&checkout, &["ls-files", "-z"])
                .await
                .map_err(SourceError::Local)?;
            let files = out
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let path = String::from_utf8_lossy(p).into_owned();
                    let size = std::fs::metadata(checkout.join(&path))
                        .ok()
                        .map(|m| m.len());
                    (path, size)
                })
                .collect();
            return Ok(RepoTree {
                files,
                truncated: false,
            });
        }
        let root = self.head_root();
        let mut files = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    stack.push(path);
                } else if kind.is_file()
                    && let Ok(relative) = path.strip_prefix(&root)
                {
                    let size = entry.metadata().ok().map(|m| m.len());
                    files.push((relative.to_string_lossy().replace('\\', "/"), size));
                }
            }
        }
        files.sort();
        Ok(RepoTree {
            files,
            truncated: false,
        })
    }
}
