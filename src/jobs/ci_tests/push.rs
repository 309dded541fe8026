//! Pushing suggested tests: which files Critic may push, what the files become with the
//! tests in them (read from the head on GitHub), and the commit and branch.

use crate::domain::PrNumber;
use crate::github::{GitHubError, Installation, RepoName, TreeFile};
use crate::review::tasks::TestSuggestion;
use crate::review::test_files::{TestTree, files_with_tests, package_clause};

use super::super::error::JobError;

/// The branch the tests of pull request `number` are pushed to.
pub(super) fn branch_name(number: PrNumber) -> String {
    format!("critic/tests/PR-{number}")
}

/// Whether Critic may push a file at `path`: a file of code that is a test (by its name or
/// folder), or a Rust source file other than a build script (its unit tests live in it, in
/// a `#[cfg(test)]` module); never under a dot-folder (`.github/workflows` would run with
/// the repository's secrets).
pub(super) fn pushable(path: &str) -> bool {
    let hidden = path
        .split('/')
        .any(|part| part.starts_with('.') || part.is_empty());
    let name = path.rsplit('/').next().unwrap_or(path);
    let unit_tests = path.ends_with(".rs") && name != "build.rs";
    !hidden
        && crate::poster::suggestion::is_code(path)
        && (crate::context::test_layout::is_test(path) || unit_tests)
}

/// The tests of `tests` that may be pushed; each one left out is named in `notes`.
pub(super) fn only_pushable(
    tests: Vec<TestSuggestion>,
    notes: &mut Vec<String>,
) -> Vec<TestSuggestion> {
    let (tests, refused): (Vec<_>, Vec<_>) = tests.into_iter().partition(|t| pushable(&t.path));
    for t in &refused {
        notes.push(format!(
            "`{}` was left out: `{}` is not a test file, and Critic pushes only tests.",
            t.name.trim(),
            t.path
        ));
    }
    tests
}

/// The files of a commit on GitHub that the tests go into, read before they are written.
pub(super) struct Fetched {
    texts: Vec<(String, Option<String>)>,
    /// (folder, package) of Go folders the tests go into.
    packages: Vec<(String, String)>,
}

impl TestTree for Fetched {
    fn text(&self, path: &str) -> Option<String> {
        self.texts
            .iter()
            .find(|(p, _)| p == path)
            .and_then(|(_, t)| t.clone())
    }

    fn go_package(&self, dir: &str) -> Option<String> {
        self.packages
            .iter()
            .find(|(d, _)| d == dir)
            .map(|(_, p)| p.clone())
    }
}

/// Reads at `sha` what writing `tests` needs: their files, and for Go the package of each
/// folder (one of its other files).
pub(super) async fn fetch_for(
    gh: &Installation,
    repo: &RepoName,
    sha: &str,
    tests: &[TestSuggestion],
) -> Result<Fetched, GitHubError> {
    let text = |bytes: Option<Vec<u8>>| bytes.map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut texts = Vec::new();
    for t in tests {
        if texts.iter().any(|(p, _)| p == &t.path) {
            continue;
        }
        let got = text(gh.file_content(repo, &t.path, sha).await?);
        texts.push((t.path.clone(), got));
    }
    let mut packages = Vec::new();
    let go_dirs: Vec<&str> = tests
        .iter()
        .filter(|t| t.path.ends_with(".go"))
        .map(|t| t.path.rsplit_once('/').map_or("", |(dir, _)| dir))
        .collect();
    if !go_dirs.is_empty() {
        let tree = gh.tree(repo, sha).await?;
        for dir in go_dirs {
            if packages.iter().any(|(d, _): &(String, String)| d == dir) {
                continue;
            }
            let source = tree.entries.iter().find(|e| {
                let (folder, name) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
                folder == dir && name.ends_with(".go") && !name.ends_with("_test.go")
            });
            if let Some(entry) = source
                && let Some(package) = text(gh.file_content(repo, &entry.path, sha).await?)
                    .as_deref()
                    .and_then(package_clause)
            {
                packages.push((dir.to_string(), package));
            }
        }
    }
    Ok(Fetched { texts, packages })
}

/// Commits `tests` written into the files of the pull request's `head`, on top of `parent`
/// (the head, or the earlier commit of tests they replace). `Ok(Err(why))` when they cannot
/// be: a path Critic does not write, or an App without `contents: write`.
pub(super) async fn commit(
    gh: &Installation,
    repo: &RepoName,
    head: &str,
    parent: &str,
    tests: &[TestSuggestion],
    message: &str,
) -> Result<Result<String, String>, JobError> {
    let fetched = fetch_for(gh, repo, head, tests).await?;
    let files = match files_with_tests(&fetched, tests) {
        Ok(files) => files,
        Err(why) => return Ok(Err(why)),
    };
    let files: Vec<TreeFile> = files
        .into_iter()
        .map(|(path, content)| TreeFile { path, content })
        .collect();
    match gh.commit_files(repo, head, parent, &files, message).await {
        Ok(sha) => Ok(Ok(sha)),
        Err(e) if e.lacks_permission() => Ok(Err(NO_CONTENTS_WRITE.into())),
        Err(e) => Err(e.into()),
    }
}

const NO_CONTENTS_WRITE: &str = "the App may not push to this repository: an administrator of the GitHub App must grant it the `contents: write` permission (and accept it on the installation)";

/// Points the pull request's tests branch at `sha` (made or moved, whatever it held).
pub(super) async fn point_branch(
    gh: &Installation,
    repo: &RepoName,
    number: PrNumber,
    sha: &str,
) -> Result<Result<(), String>, JobError> {
    match gh.set_branch(repo, &branch_name(number), sha).await {
        Ok(()) => Ok(Ok(())),
        Err(e) if e.lacks_permission() => Ok(Err(NO_CONTENTS_WRITE.into())),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_left_out_is_named_in_the_answer() {
        let test = |path: &str, name: &str| TestSuggestion {
            path: path.into(),
            name: name.into(),
            covers: "parse".into(),
            code: "#[test]\nfn t() {}\n".into(),
        };
        let mut notes = vec!["earlier".to_string()];
        let kept = only_pushable(
            vec![
                test(".github/workflows/ci.yml", " runs_on_push "),
                test("tests/parse.rs", "parses"),
            ],
            &mut notes,
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].path, "tests/parse.rs");
        assert_eq!(
            notes,
            [
                "earlier",
                "`runs_on_push` was left out: `.github/workflows/ci.yml` is not a test file, and Critic pushes only tests."
            ]
        );
    }

    #[test]
    fn only_test_files_outside_dot_folders_are_pushed() {
        assert!(pushable("tests/parse.rs"));
        assert!(pushable("src/lib.rs"));
        assert!(pushable("pkg/router_test.go"));
        assert!(pushable("test/test_cache.py"));
        assert!(pushable("src/__tests__/a.test.js"));
        assert!(!pushable(".github/workflows/tests/run.yml"));
        assert!(!pushable("Makefile"));
        assert!(!pushable("setup.py"));
        assert!(!pushable("pkg/router.go"));
        assert!(!pushable("tests/.hidden/x_test.py"));
        assert!(!pushable("build.rs"));
        assert!(!pushable("tests/Dockerfile"));
        assert!(!pushable("/tests/a_test.py"));
        assert!(!pushable("tests/../a_test.py"));
        assert!(!pushable("tests//a_test.py"));
    }
}
