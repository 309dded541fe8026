//! Cases from public history, listed as data of our own (`eval/cases.toml`: the repository, the
//! commits, the bug's lines, the title and body, the licence) and built on the machine that
//! runs the evaluation from a local clone or bare mirror of each repository, so that nobody's
//! code is committed here. A case is the change `base..head`; with `reverse`, the head is the
//! given head with that fix reverted on top, so the bug comes back inside a larger change.
//!
//! Each case is written out in the folder layout [`super::Case`] reads (`meta.json`,
//! `pr.diff`, `files/head/...`), into a folder the caller owns.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::case::{Bug, CaseError, TestCommand};
use crate::diff::{FileDiff, parse_diff};

/// `eval/cases.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseList {
    #[serde(rename = "case")]
    pub cases: Vec<PublicCase>,
}

/// One public case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicCase {
    pub name: String,
    /// `owner/name` on GitHub.
    pub repo: String,
    pub base: String,
    pub head: String,
    /// A commit that fixed the bug: reverted on top of `head` to bring the bug back.
    #[serde(default)]
    pub reverse: Option<String>,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// The licence of the repository's code (the case is ours; the code stays theirs).
    pub licence: String,
    #[serde(default)]
    pub language: Option<String>,
    /// Head-side lines (of the change as built, after `reverse`); empty for a clean change.
    #[serde(default)]
    pub bugs: Vec<Bug>,
    /// How the repository's tests run, for `critic eval --tests`: the case then keeps a
    /// checkout of its head.
    #[serde(default)]
    pub test: Option<TestCommand>,
}

pub(super) fn fail(what: impl std::fmt::Display, why: impl std::fmt::Display) -> CaseError {
    CaseError::Read {
        path: what.to_string(),
        message: why.to_string(),
    }
}

impl CaseList {
    pub fn read(path: &Path) -> Result<CaseList, CaseError> {
        let text = std::fs::read_to_string(path).map_err(|e| fail(path.display(), e))?;
        let list: CaseList = toml::from_str(&text).map_err(|e| fail(path.display(), e))?;
        if list.cases.is_empty() {
            return Err(CaseError::Empty(path.display().to_string()));
        }
        for c in &list.cases {
            let safe = !c.name.is_empty()
                && c.name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
                && !c.name.starts_with('.');
            if !safe {
                return Err(fail(
                    path.display(),
                    format!("case name {:?}: letters, digits, - _ . only", c.name),
                ));
            }
            if c.repo.split('/').count() != 2 {
                return Err(fail(
                    path.display(),
                    format!("{}: repo must be owner/name", c.name),
                ));
            }
        }
        Ok(list)
    }
}

/// Where the repository of `repo` (`owner/name`) is under `repos`: `owner/name` or
/// `owner+name` (as the search tool's `fetch` leaves it), a clone or a bare mirror.
pub fn find_repo(repos: &Path, repo: &str) -> Option<PathBuf> {
    let (owner, name) = repo.split_once('/')?;
    let candidates = [
        repos.join(owner).join(name),
        repos.join(format!("{owner}+{name}")),
        repos.join(owner).join(format!("{name}.git")),
    ];
    candidates.into_iter().find(|p| p.is_dir())
}

/// git for building a case: the project's one runner, with a committer of its own for the
/// revert (the machine may have none configured).
pub(super) async fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let mut all = vec![
        "-c",
        "user.name=critic-eval",
        "-c",
        "user.email=critic-eval@localhost",
        "-c",
        "commit.gpgSign=false",
    ];
    all.extend_from_slice(args);
    crate::review::local::git(dir, &all).await
}

/// A scratch clone of `mirror` sharing its objects, at `out/.<name>.git`, and the case's folder
/// `out/<name>/` (neither there yet: an earlier run's are removed).
pub(super) async fn scratch(
    mirror: &Path,
    out: &Path,
    name: &str,
) -> Result<(PathBuf, PathBuf), CaseError> {
    std::fs::create_dir_all(out).map_err(|e| fail(out.display(), e))?;
    // git runs inside `out`: relative paths (`--out cases`, `--repo .`) would be read from
    // there, not from where the command was started.
    let out = &std::path::absolute(out).map_err(|e| fail(out.display(), e))?;
    let mirror = &std::path::absolute(mirror).map_err(|e| fail(mirror.display(), e))?;
    let dir = out.join(name);
    let work = out.join(format!(".{name}.git"));
    for d in [&dir, &work] {
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(|e| fail(d.display(), e))?;
        }
    }
    let mirror_str = mirror.to_string_lossy().into_owned();
    let work_str = work.to_string_lossy().into_owned();
    git(
        out,
        &[
            "clone",
            "--quiet",
            "--shared",
            "--no-checkout",
            &mirror_str,
            &work_str,
        ],
    )
    .await
    .map_err(|e| fail(name, e))?;
    Ok((dir, work))
}

/// Commits what is staged in `work` and returns the new commit.
pub(super) async fn commit(work: &Path, name: &str, message: &str) -> Result<String, CaseError> {
    git(work, &["commit", "--quiet", "--no-verify", "-m", message])
        .await
        .map_err(|e| fail(name, e))?;
    let sha = git(work, &["rev-parse", "HEAD"])
        .await
        .map_err(|e| fail(name, e))?;
    Ok(String::from_utf8_lossy(&sha).trim().to_string())
}

/// Writes the case folder `dir` for the change `base..head` of `work` (`pr.diff`, the files
/// at head, `meta.json` as `meta` makes it from the parsed diff), then removes `work`, or with
/// `keep` makes it the case's `checkout/` at head.
pub(super) async fn write_case(
    work: &Path,
    dir: &Path,
    base: &str,
    head: &str,
    keep: bool,
    meta: impl FnOnce(&[FileDiff]) -> serde_json::Value,
) -> Result<(), CaseError> {
    let name = dir.display();
    let diff = crate::review::local::raw_diff(work, base, head)
        .await
        .map_err(|e| fail(&name, e))?;
    let files = parse_diff(&diff).map_err(|e| fail(&name, format!("the diff: {e}")))?;
    std::fs::create_dir_all(dir.join("files/head")).map_err(|e| fail(dir.display(), e))?;
    for f in &files {
        let path = f.path.to_string_lossy().into_owned();
        let Ok(bytes) = git(work, &["show", &format!("{head}:{path}")]).await else {
            continue; // deleted at head
        };
        let target = dir.join("files/head").join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(parent.display(), e))?;
        }
        std::fs::write(&target, bytes).map_err(|e| fail(target.display(), e))?;
    }
    std::fs::write(dir.join("pr.diff"), &diff).map_err(|e| fail(dir.display(), e))?;
    std::fs::write(dir.join("meta.json"), meta(&files).to_string())
        .map_err(|e| fail(dir.display(), e))?;
    if keep {
        git(work, &["checkout", "--quiet", "--force", "--detach", head])
            .await
            .map_err(|e| fail(&name, e))?;
        let checkout = dir.join("checkout");
        std::fs::rename(work, &checkout).map_err(|e| fail(checkout.display(), e))?;
    } else {
        std::fs::remove_dir_all(work).map_err(|e| fail(work.display(), e))?;
    }
    Ok(())
}

/// Builds `case` from the repository under `repos` into `out/<name>/` (made afresh).
pub async fn materialise(
    case: &PublicCase,
    repos: &Path,
    out: &Path,
) -> Result<PathBuf, CaseError> {
    let name = &case.name;
    let mirror = find_repo(repos, &case.repo).ok_or_else(|| {
        fail(
            name,
            format!(
                "no clone of {} under {} (as OWNER/NAME or OWNER+NAME)",
                case.repo,
                repos.display()
            ),
        )
    })?;
    let (dir, work) = scratch(&mirror, out, name).await?;
    let head = match &case.reverse {
        None => case.head.clone(),
        Some(fix) => {
            git(&work, &["checkout", "--quiet", "--detach", &case.head])
                .await
                .map_err(|e| fail(name, e))?;
            git(&work, &["revert", "--no-commit", fix])
                .await
                .map_err(|e| fail(name, format!("the fix does not revert cleanly: {e}")))?;
            commit(&work, name, "the fix, reverted").await?
        }
    };
    write_case(&work, &dir, &case.base, &head, case.test.is_some(), |_| {
        serde_json::json!({
            "repo": case.repo,
            "base": case.base,
            "head": head,
            "title": case.title,
            "body": case.body,
            "bugs": case.bugs,
            "licence": case.licence,
            "test": case.test,
        })
    })
    .await?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundled list keeps what it promises: at least 12 cases with a bug in at least four
    /// languages, half of them inside a larger change; clean cases for false alarms; every
    /// case named once, with its licence.
    #[test]
    fn the_bundled_public_cases_are_what_the_readme_says() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/cases.toml");
        let list = CaseList::read(&path).expect("eval/cases.toml reads");
        let (bugged, clean): (Vec<&PublicCase>, Vec<&PublicCase>) =
            list.cases.iter().partition(|c| !c.bugs.is_empty());
        assert!(bugged.len() >= 12, "{}", bugged.len());
        let larger = bugged
            .iter()
            .filter(|c| c.reverse.as_deref().is_some_and(|fix| fix != c.head))
            .count();
        assert!(2 * larger >= bugged.len(), "{larger} of {}", bugged.len());
        let languages: std::collections::BTreeSet<&str> = bugged
            .iter()
            .filter_map(|c| c.language.as_deref())
            .collect();
        assert!(languages.len() >= 4, "{languages:?}");
        assert!(clean.len() >= 5, "{}", clean.len());
        assert!(
            clean.iter().all(|c| c.reverse.is_none()),
            "a clean case undoes nothing"
        );
        // `critic eval --tests`: runnable cases in Python, Rust, JavaScript and Go.
        let runnable: std::collections::BTreeSet<&str> = list
            .cases
            .iter()
            .filter(|c| c.test.is_some())
            .filter_map(|c| c.language.as_deref())
            .collect();
        assert_eq!(
            runnable,
            ["go", "javascript", "python", "rust"].into_iter().collect(),
            "{runnable:?}"
        );
        let mut names: Vec<&str> = list.cases.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), list.cases.len(), "names are unique");
        assert!(
            list.cases
                .iter()
                .all(|c| !c.licence.is_empty() && !c.title.is_empty())
        );
    }
}
