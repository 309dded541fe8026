//! The path a model gives for a file -> the pull request's own name for it.
//!
//! Models copy paths from diff headers (`b/src/x.rs`), write them relative (`./src/x.rs`) or
//! absolute (`/src/x.rs`), with Windows separators, or in the wrong case. Every model path is
//! resolved here, once, against the PR's file list, so the poster only ever compares exact
//! names.

use super::PrFile;

/// The path as the model wrote it, tidied: trimmed, `\` read as `/`, without leading `./`
/// and `/`. For showing a path that names no file of the PR, and for resolving one.
pub fn tidy(raw: &str) -> String {
    let mut path = raw.trim().replace('\\', "/");
    loop {
        let rest = path
            .strip_prefix("./")
            .or_else(|| path.strip_prefix('/'))
            .map(str::to_string);
        match rest {
            Some(rest) => path = rest,
            None => return path,
        }
    }
}

/// The PR file `raw` names, if one does: taken as written, then tidied, then without git's
/// `a/` or `b/` prefix; at each step an exact name wins, else a name that differs only in
/// case when exactly one does. A real directory called `a/` or `b/` is matched first.
pub fn resolve<'f>(raw: &str, files: &'f [PrFile]) -> Option<&'f str> {
    let tidied = tidy(raw);
    let unprefixed = tidied
        .strip_prefix("a/")
        .or_else(|| tidied.strip_prefix("b/"))
        .map(tidy);
    let candidates = [
        Some(raw.trim()),
        Some(tidied.as_str()),
        unprefixed.as_deref(),
    ];
    let names = || files.iter().map(|f| f.file.filename.as_str());
    for candidate in candidates.into_iter().flatten() {
        if let Some(exact) = names().find(|n| *n == candidate) {
            return Some(exact);
        }
    }
    for candidate in candidates.into_iter().flatten() {
        let lower = candidate.to_lowercase();
        let mut same = names().filter(|n| n.to_lowercase() == lower);
        match (same.next(), same.next()) {
            (Some(only), None) => return Some(only),
            // Two files differ only in case: guessing could put a thread on the wrong one.
            (Some(_), Some(_)) => return None,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FileStatus;
    use crate::github::ChangedFile;

    fn files(names: &[&str]) -> Vec<PrFile> {
        names
            .iter()
            .map(|n| {
                PrFile::from_github(ChangedFile {
                    filename: (*n).into(),
                    status: FileStatus::Modified,
                    additions: 1,
                    deletions: 0,
                    patch: None,
                    previous_filename: None,
                })
            })
            .collect()
    }

    #[test]
    fn tidy_drops_what_is_not_part_of_a_repository_path() {
        assert_eq!(tidy("  ./src/a.rs "), "src/a.rs");
        assert_eq!(tidy("/src/a.rs"), "src/a.rs");
        assert_eq!(tidy(".//./src/a.rs"), "src/a.rs");
        assert_eq!(tidy("src\\win\\a.rs"), "src/win/a.rs");
        assert_eq!(
            tidy("b/src/a.rs"),
            "b/src/a.rs",
            "a prefix is resolved, not tidied"
        );
    }

    #[test]
    fn git_prefixes_relative_and_absolute_paths_resolve() {
        let f = files(&["src/a.rs", "README.md"]);
        for raw in [
            "src/a.rs",
            "./src/a.rs",
            "/src/a.rs",
            "a/src/a.rs",
            "b/src/a.rs",
            "b/./src/a.rs",
            " src\\a.rs ",
        ] {
            assert_eq!(resolve(raw, &f), Some("src/a.rs"), "{raw}");
        }
        assert_eq!(resolve("c/src/a.rs", &f), None);
        assert_eq!(resolve("src/b.rs", &f), None);
        assert_eq!(resolve("", &f), None);
    }

    #[test]
    fn a_real_directory_named_like_a_git_prefix_wins() {
        let f = files(&["b/lib.rs", "lib.rs"]);
        assert_eq!(resolve("b/lib.rs", &f), Some("b/lib.rs"));
        assert_eq!(resolve("a/lib.rs", &f), Some("lib.rs"));
        let f = files(&["b/lib.rs"]);
        assert_eq!(resolve("b/b/lib.rs", &f), Some("b/lib.rs"));
    }

    #[test]
    fn case_is_forgiven_only_when_one_file_matches() {
        let f = files(&["src/Main.java", "docs/readme.md", "docs/README.md"]);
        assert_eq!(resolve("src/main.java", &f), Some("src/Main.java"));
        assert_eq!(resolve("b/SRC/MAIN.JAVA", &f), Some("src/Main.java"));
        assert_eq!(resolve("docs/README.md", &f), Some("docs/README.md"));
        assert_eq!(
            resolve("docs/Readme.md", &f),
            None,
            "two files differ only in case"
        );
    }
}
