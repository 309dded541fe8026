//! `critic eval mine`: evaluation cases from a repository's own history. A commit whose
//! message says it fixes a bug, small and touching source files, is undone: the case is the
//! change from the fix back to the code before it, with the lines the fix changed as the bug.
//! A self-hoster measures models and settings on the bugs their own team made and fixed.
//!
//! Only the fix's source files are undone: a test the fix added stays, so the change does not
//! announce itself by deleting a test named after the bug. Its title names the files, never
//! the fix's message, which would give the answer away.

use std::path::{Path, PathBuf};

use super::case::{Bug, CaseError};
use super::public::{commit, fail, git, scratch, write_case};
use crate::diff::{FileDiff, LineKind};

/// Which commits make cases.
#[derive(Debug, Clone)]
pub struct MineOptions {
    /// Only commits since this date (anything `git log --since` reads, e.g. `2025-01-01`).
    pub since: Option<String>,
    /// At most this many cases, newest fixes first.
    pub max_cases: usize,
    /// A fix changing more source lines than this (added and removed) is not small: the bug
    /// would not be one place.
    pub max_lines: usize,
    /// At most this many source files changed by the fix.
    pub max_files: usize,
    /// The revision whose history is read.
    pub rev: String,
}

impl Default for MineOptions {
    fn default() -> Self {
        MineOptions {
            since: None,
            max_cases: 20,
            max_lines: 30,
            max_files: 3,
            rev: "HEAD".into(),
        }
    }
}

/// A commit that fixed a bug, as `git log` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub sha: String,
    pub subject: String,
    /// Source files the fix changed (tests, docs and other files left out).
    pub sources: Vec<String>,
    /// Lines added and removed in those files.
    pub changed: usize,
}

/// Words that say a commit fixes a bug.
const FIX_WORDS: &[&str] = &[
    "fix",
    "fixes",
    "fixed",
    "fixing",
    "bug",
    "bugfix",
    "crash",
    "crashes",
    "crashed",
    "crashing",
    "broken",
    "panic",
    "panics",
    "regression",
    "overflow",
    "underflow",
    "leak",
    "off-by-one",
    "deadlock",
    "race",
    "segfault",
    "npe",
    "incorrect",
    "wrong",
];

/// Words in a subject that say the "fix" is not to code's behaviour.
const NOT_A_BUG: &[&str] = &[
    "typo",
    "typos",
    "doc",
    "docs",
    "documentation",
    "readme",
    "comment",
    "comments",
    "lint",
    "clippy",
    "format",
    "formatting",
    "fmt",
    "style",
    "ci",
    "build",
    "deps",
    "dependency",
    "dependencies",
    "bump",
    "changelog",
    "test",
    "tests",
    "flaky",
    "spelling",
    "warning",
    "warnings",
    "indentation",
    "whitespace",
    "revert",
    "merge",
    "release",
    "version",
];

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// Whether a commit message says it fixes a bug in the code.
pub fn says_fix(subject: &str, body: &str) -> bool {
    if words(subject).any(|w| NOT_A_BUG.contains(&w.as_str())) {
        return false;
    }
    words(subject)
        .chain(words(body))
        .any(|w| FIX_WORDS.contains(&w.as_str()))
}

pub use crate::context::test_layout::is_test;

/// Source code Critic reviews, not a test.
fn is_source(path: &str) -> bool {
    crate::poster::suggestion::is_code(path) && !is_test(path)
}

/// The fixes in the repository at `repo`'s history, newest first, that make cases.
pub async fn find_fixes(repo: &Path, options: &MineOptions) -> Result<Vec<Fix>, CaseError> {
    let mut args = vec![
        "log".to_string(),
        "--no-merges".into(),
        "--no-renames".into(),
        "--numstat".into(),
        "--format=%x1e%H%x1f%ct%x1f%s%x1f%b%x1f".into(),
    ];
    // A calendar date is compared here, as git quietly ignores dates it cannot read (a year
    // past 2099, say); anything else (`6 months ago`) is git's to read.
    let since_day = options.since.as_deref().and_then(|s| {
        chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp())
    });
    if let Some(since) = options.since.as_ref().filter(|_| since_day.is_none()) {
        args.push(format!("--since={since}"));
    }
    args.push("--end-of-options".into());
    args.push(options.rev.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = git(repo, &args)
        .await
        .map_err(|e| fail(repo.display(), e))?;
    let log = String::from_utf8_lossy(&out);
    let mut fixes = Vec::new();
    for record in log.split('\u{1e}').filter(|r| !r.trim().is_empty()) {
        let mut fields = record.splitn(5, '\u{1f}');
        let (Some(sha), Some(time), Some(subject), Some(body), Some(stat)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        if let Some(day) = since_day
            && time.trim().parse::<i64>().is_ok_and(|t| t < day)
        {
            continue;
        }
        if !says_fix(subject, body) {
            continue;
        }
        let mut sources = Vec::new();
        let mut changed = 0;
        let mut binary = false;
        for line in stat.lines().filter(|l| !l.trim().is_empty()) {
            let mut cols = line.splitn(3, '\t');
            let (Some(added), Some(removed), Some(path)) = (cols.next(), cols.next(), cols.next())
            else {
                continue;
            };
            if !is_source(path) {
                continue;
            }
            match (added.parse::<usize>(), removed.parse::<usize>()) {
                (Ok(a), Ok(r)) => changed += a + r,
                _ => binary = true,
            }
            sources.push(path.to_string());
        }
        if binary
            || sources.is_empty()
            || sources.len() > options.max_files
            || changed > options.max_lines
        {
            continue;
        }
        fixes.push(Fix {
            sha: sha.trim().to_string(),
            subject: subject.trim().to_string(),
            sources,
            changed,
        });
        if fixes.len() == options.max_cases {
            break;
        }
    }
    Ok(fixes)
}

/// The case's folder name: the fix's short id and its subject's first words.
fn case_name(fix: &Fix) -> String {
    let slug: String = words(&fix.subject)
        .take(6)
        .collect::<Vec<_>>()
        .join("-")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(48)
        .collect();
    let short = &fix.sha[..fix.sha.len().min(10)];
    if slug.is_empty() {
        short.to_string()
    } else {
        format!("{short}-{}", slug.trim_matches('-'))
    }
}

/// The bug's lines in the undone change: the lines the fix had removed or changed, which the
/// change brings back. Where the fix only added lines, the change only removes them: the bug
/// is the missing code, so the lines either side of where it was are the bug.
pub fn bug_lines(files: &[FileDiff]) -> Vec<Bug> {
    let mut bugs = Vec::new();
    for f in files {
        let mut lines = std::collections::BTreeSet::new();
        for hunk in f.patch.hunks() {
            let hunk_lines = f.patch.lines(hunk);
            let added: Vec<u32> = hunk_lines
                .iter()
                .filter(|l| l.kind == LineKind::Added)
                .filter_map(|l| l.new)
                .collect();
            if !added.is_empty() {
                lines.extend(added);
                continue;
            }
            for (i, line) in hunk_lines.iter().enumerate() {
                if line.kind != LineKind::Removed {
                    continue;
                }
                let before = hunk_lines[..i]
                    .iter()
                    .rev()
                    .find(|l| l.kind == LineKind::Context)
                    .and_then(|l| l.new);
                let after = hunk_lines[i + 1..]
                    .iter()
                    .find(|l| l.kind == LineKind::Context)
                    .and_then(|l| l.new);
                lines.extend(before.into_iter().chain(after));
            }
        }
        if !lines.is_empty() {
            bugs.push(Bug {
                path: f.path.to_string_lossy().into_owned(),
                lines: lines.into_iter().collect(),
            });
        }
    }
    bugs
}

/// `owner/name` of the repository's `origin` on GitHub, else its folder's name.
async fn repo_name(repo: &Path) -> String {
    let from_origin = git(repo, &["remote", "get-url", "origin"])
        .await
        .ok()
        .map(|url| String::from_utf8_lossy(&url).trim().to_string())
        .and_then(|url| {
            let path = url
                .trim_end_matches('/')
                .trim_end_matches(".git")
                .rsplitn(3, ['/', ':'])
                .take(2)
                .collect::<Vec<_>>();
            (path.len() == 2 && path.iter().all(|p| !p.is_empty()))
                .then(|| format!("{}/{}", path[1], path[0]))
        });
    // The folder's own name (`.` resolved), as `critic eval --repos` names mirrors:
    // `owner+name` is `owner/name`.
    let folder = repo
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .or_else(|| {
            std::fs::canonicalize(repo)
                .ok()?
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        });
    from_origin
        .or_else(|| folder.map(|f| f.trim_end_matches(".git").replacen('+', "/", 1)))
        .unwrap_or_else(|| "local".into())
}

/// Builds the case for `fix` into `out/<name>/`: the change from the fix to its source files
/// as they were before it.
pub async fn build(repo: &Path, fix: &Fix, out: &Path) -> Result<PathBuf, CaseError> {
    let name = case_name(fix);
    let (dir, work) = scratch(repo, out, &name).await?;
    git(&work, &["checkout", "--quiet", "--detach", &fix.sha])
        .await
        .map_err(|e| fail(&name, e))?;
    let parent = format!("{}^", fix.sha);
    git(&work, &["rev-parse", "--verify", "--quiet", &parent])
        .await
        .map_err(|_| fail(&name, "the fix has no parent commit to undo it to"))?;
    for path in &fix.sources {
        // A file the fix created has no version before it: the undone change deletes it.
        let before = format!("{parent}:{path}");
        if git(&work, &["cat-file", "-e", &before]).await.is_ok() {
            git(&work, &["checkout", &parent, "--", path])
                .await
                .map_err(|e| fail(&name, e))?;
        } else {
            git(&work, &["rm", "--quiet", "--", path])
                .await
                .map_err(|e| fail(&name, e))?;
        }
    }
    let head = commit(&work, &name, "the fix, undone").await?;
    let full = repo_name(repo).await;
    let title = match fix.sources.as_slice() {
        [one] => format!("Update {one}"),
        many => format!("Update {} files", many.len()),
    };
    let mut bugs_found = Vec::new();
    write_case(&work, &dir, &fix.sha, &head, false, |files| {
        bugs_found = bug_lines(files);
        serde_json::json!({
            "repo": full,
            "base": fix.sha,
            "head": head,
            "title": title,
            "body": "",
            "bugs": bugs_found,
            "mined_from": {"commit": fix.sha, "subject": fix.subject},
        })
    })
    .await?;
    if bugs_found.is_empty() {
        // Nothing to point at (a change of whitespace only): no case.
        std::fs::remove_dir_all(&dir).map_err(|e| fail(dir.display(), e))?;
        return Err(fail(
            &name,
            "the undone fix changes no line a thread could land on",
        ));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_messages_are_told_from_other_work() {
        assert!(says_fix("Fix off-by-one in the pager", ""));
        assert!(says_fix("pager: handle empty input", "Fixes #12: a crash."));
        assert!(says_fix("Avoid panic on empty header", ""));
        assert!(!says_fix("Fix typo in README", ""));
        assert!(!says_fix("fix flaky test", ""));
        assert!(!says_fix("Add a pager", "New feature."));
        assert!(!says_fix("Revert \"Fix the pager\"", ""));
        assert!(!says_fix("prefix the names", ""), "whole words only");
    }

    #[test]
    fn tests_are_not_sources() {
        for path in [
            "tests/pager.rs",
            "src/test/java/a/PagerTest.java",
            "pkg/pager_test.go",
            "test_pager.py",
            "web/pager.test.ts",
            "web/__tests__/pager.js",
        ] {
            assert!(is_test(path), "{path}");
            assert!(!is_source(path), "{path}");
        }
        for path in [
            "src/pager.rs",
            "pkg/pager.go",
            "lib/contest.py",
            "src/Latest.java",
        ] {
            assert!(!is_test(path), "{path}");
            assert!(is_source(path), "{path}");
        }
        assert!(!is_source("README.md"));
    }

    #[test]
    fn the_bug_is_what_the_fix_changed_or_around_what_it_added() {
        let diff = b"diff --git a/a.c b/a.c\n--- a/a.c\n+++ b/a.c\n\
@@ -1,5 +1,5 @@\n int f(int n) {\n-  if (n < 0) return 0;\n+  if (n <= 0) return 0;\n   return n;\n }\n \n\
diff --git a/b.c b/b.c\n--- a/b.c\n+++ b/b.c\n\
@@ -3,6 +3,4 @@\n int g(char *p) {\n   int n = 0;\n-  if (!p)\n-    return -1;\n   n = strlen(p);\n   return n;\n";
        let files = crate::diff::parse_diff(diff).expect("diff");
        assert_eq!(
            bug_lines(&files),
            [
                Bug {
                    path: "a.c".into(),
                    lines: vec![2]
                },
                Bug {
                    path: "b.c".into(),
                    lines: vec![4, 5]
                }
            ]
        );
    }
}
