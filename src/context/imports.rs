//! Files a changed file imports, found in the repository at head.
//!
//! What we chose, and why: the model gets the *definitions* a change calls from the files it
//! imports (see `assemble`'s related code), not those files whole. A whole imported file
//! costs thousands of tokens for the one function the change uses; the definition costs tens.
//! Only imports that name a file of this repository count (relative imports, the crate's own
//! modules, the project's packages); third-party packages are not in the repository and the
//! model knows the popular ones anyway. Finding them takes one GitHub call (the repository's
//! tree at head) plus one per imported file, bounded by [`MAX_IMPORTED_FILES`] and only made
//! when the budget has room left.
//!
//! The imports themselves come from the file's syntax tree (`scope::related`), the same
//! parse that gives the file's scopes and calls.

use std::collections::{BTreeSet, HashSet};

use super::scope::{Language, SourceFile, import_candidates};

/// Imported files fetched for one review at most.
pub const MAX_IMPORTED_FILES: usize = 30;
/// Imported files taken from one changed file at most.
const MAX_PER_FILE: usize = 8;
/// Files of one imported directory (a Go package, a Java wildcard import) taken at most.
const MAX_PACKAGE_FILES: usize = 3;

/// The repository's file paths at head.
pub struct RepoFiles {
    paths: BTreeSet<String>,
}

impl RepoFiles {
    pub fn new(paths: impl IntoIterator<Item = String>) -> RepoFiles {
        RepoFiles {
            paths: paths.into_iter().collect(),
        }
    }

    /// The files a candidate names: itself if it is a file; for a directory (`dir/`), its
    /// source files that are not tests, a few, in name order.
    fn resolve(&self, candidate: &str) -> Vec<String> {
        if !candidate.ends_with('/') {
            return self
                .paths
                .get(candidate)
                .map(|p| vec![p.clone()])
                .unwrap_or_default();
        }
        self.paths
            .range(candidate.to_string()..)
            .take_while(|p| p.starts_with(candidate))
            .filter(|p| !p[candidate.len()..].contains('/'))
            .filter(|p| !is_test_file(p))
            .filter(|p| Language::from_path(p).is_some())
            .take(MAX_PACKAGE_FILES)
            .cloned()
            .collect()
    }
}

fn is_test_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with("_test.go") || name.ends_with("Test.java") || name.starts_with("test_")
}

/// Paths of repository files that the parsed changed file `file` (at `path`) imports, most
/// specific first, without `path` itself: for each import, the first candidate that exists.
pub fn imported_files(path: &str, file: &SourceFile<'_>, repo: &RepoFiles) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for import in file.imports() {
        let found = import_candidates(path, &import)
            .iter()
            .map(|c| repo.resolve(c))
            .find(|files| !files.is_empty())
            .unwrap_or_default();
        for f in found {
            if f != path && seen.insert(f.clone()) {
                out.push(f);
            }
            if out.len() == MAX_PER_FILE {
                return out;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(paths: &[&str]) -> RepoFiles {
        RepoFiles::new(paths.iter().map(|p| p.to_string()))
    }

    fn found(path: &str, source: &str, r: &RepoFiles) -> Vec<String> {
        imported_files(path, &SourceFile::parse(path, source), r)
    }

    #[test]
    fn rust_modules_and_crate_paths() {
        let r = repo(&[
            "src/lib.rs",
            "src/config/mod.rs",
            "src/config/repo.rs",
            "src/diff.rs",
            "src/jobs/mod.rs",
            "src/jobs/review_pr.rs",
        ]);
        let source = "use std::io;\nuse crate::config::repo::RepoPolicy;\nuse crate::diff::{FilePatch, LineKind};\npub mod review_pr;\nmod missing;\n";
        let got = found("src/jobs/mod.rs", source, &r);
        for want in ["src/config/repo.rs", "src/diff.rs", "src/jobs/review_pr.rs"] {
            assert!(got.contains(&want.to_string()), "{want} in {got:?}");
        }
        assert!(!got.iter().any(|p| p.contains("missing")), "{got:?}");
    }

    #[test]
    fn python_and_javascript_relative_imports() {
        let r = repo(&[
            "pkg/__init__.py",
            "pkg/util.py",
            "src/a.ts",
            "src/lib/index.ts",
        ]);
        assert_eq!(
            found("pkg/main.py", "import os\nfrom .util import parse\n", &r),
            ["pkg/util.py"]
        );
        let got = found(
            "src/main.ts",
            "import React from 'react';\nimport { a } from './a';\nimport lib from './lib';\n",
            &r,
        );
        assert_eq!(got, ["src/a.ts", "src/lib/index.ts"]);
    }

    #[test]
    fn a_go_package_is_a_few_of_its_files_without_tests() {
        let r = repo(&[
            "internal/store/sql.go",
            "internal/store/store.go",
            "internal/store/store_test.go",
            "internal/store/sub/deep.go",
            "cmd/app/main.go",
        ]);
        let source = "package main\n\nimport (\n\t\"fmt\"\n\t\"github.com/acme/app/internal/store\"\n)\n\nfunc main() { store.Open() }\n";
        let got = found("cmd/app/main.go", source, &r);
        assert_eq!(
            got,
            ["internal/store/sql.go", "internal/store/store.go"],
            "{got:?}"
        );
    }

    #[test]
    fn files_without_imports_or_language_find_nothing() {
        let r = repo(&["a.py", "README.md"]);
        assert!(found("README.md", "import a\n", &r).is_empty());
        assert!(found("b.py", "x = 1\n", &r).is_empty());
        assert!(
            found("a.py", "from . import a\n", &r).is_empty(),
            "not itself"
        );
    }
}
