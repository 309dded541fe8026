//! Path globs from settings (`review.ignore`, `review.paths`, `path_instructions.paths`),
//! compiled. They live with the settings because what a glob in them means is the settings'
//! business: the settings are checked with them when read, and the stages that filter files
//! use them as compiled here.
//!
//! A glob reads like a `.gitignore` line without negation, matched by the `ignore` crate
//! against paths relative to the repository root: `*.snap` matches at any depth,
//! `/CHANGELOG.md` only at the root, `docs/` or `docs` everything under `docs`.

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// A glob from the settings that cannot be used; said so to whoever edits them.
#[derive(Debug, thiserror::Error)]
pub enum GlobError {
    #[error("glob `{glob}` is not valid: {source}")]
    Bad { glob: String, source: ignore::Error },
    #[error("glob `{glob}`: negated globs (`!...`) are not supported; list only what to match")]
    Negated { glob: String },
    #[error("glob `{glob}` matches nothing; remove it or name a path")]
    Empty { glob: String },
}

/// A list of globs from the settings, each compiled on its own so that a match can name the
/// first of them, in the user's order (a single gitignore names the last).
#[derive(Debug, Clone, Default)]
pub struct IgnoreGlobs {
    globs: Vec<(String, Gitignore)>,
}

impl IgnoreGlobs {
    pub fn new(globs: &[String]) -> Result<IgnoreGlobs, GlobError> {
        let globs = globs
            .iter()
            .map(|glob| compile(glob).map(|matcher| (glob.clone(), matcher)))
            .collect::<Result<_, _>>()?;
        Ok(IgnoreGlobs { globs })
    }

    /// The first of the user's globs (in their order) that matches the file at `path`
    /// (relative to the repository root) or one of its directories.
    pub fn first_match(&self, path: &str) -> Option<&str> {
        // Relative, as the matcher requires (it panics on a path with a root).
        let path = path.trim_start_matches('/');
        self.globs
            .iter()
            .find(|(_, matcher)| matcher.matched_path_or_any_parents(path, false).is_ignore())
            .map(|(glob, _)| glob.as_str())
    }
}

fn compile(glob: &str) -> Result<Gitignore, GlobError> {
    let line = glob.trim();
    if line.starts_with('!') {
        return Err(GlobError::Negated { glob: glob.into() });
    }
    let bare = line.strip_suffix('/').unwrap_or(line);
    if bare.strip_prefix('/').unwrap_or(bare).is_empty() {
        return Err(GlobError::Empty { glob: glob.into() });
    }
    // In a list there are no comments: `#x` names a file.
    let line = if line.starts_with('#') {
        format!("\\{line}")
    } else {
        line.to_string()
    };
    let bad = |source| GlobError::Bad {
        glob: glob.into(),
        source,
    };
    let mut builder = GitignoreBuilder::new("");
    // Settings are checked when read: a typo like `src/[a-` is an error, not a literal.
    builder.allow_unclosed_class(false);
    builder.add_line(None, &line).map_err(bad)?;
    builder.build().map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_globs_are_typed_errors() {
        let bad = |glob: &str| IgnoreGlobs::new(&[glob.to_string()]).err();
        assert!(matches!(bad("src/[a-"), Some(GlobError::Bad { glob, .. }) if glob == "src/[a-"));
        assert!(matches!(bad("!keep.md"), Some(GlobError::Negated { .. })));
        assert!(matches!(bad("/"), Some(GlobError::Empty { .. })));
        assert!(matches!(bad("  "), Some(GlobError::Empty { .. })));
        let message = bad("src/[a-").map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("`src/[a-`"), "{message}");
        assert!(IgnoreGlobs::new(&[]).is_ok());
    }

    #[test]
    fn globs_read_like_gitignore_lines() {
        let lines = ["docs/", "/CHANGELOG.md", "#notes", "src/**/*.gen.rs"].map(String::from);
        let g = IgnoreGlobs::new(&lines).expect("valid globs");
        assert_eq!(g.first_match("docs/a/b.md"), Some("docs/"));
        assert_eq!(g.first_match("web/docs/a.md"), Some("docs/"));
        assert_eq!(g.first_match("docs"), None, "a file is not a directory");
        assert_eq!(g.first_match("/CHANGELOG.md"), Some("/CHANGELOG.md"));
        assert_eq!(g.first_match("a/CHANGELOG.md"), None);
        assert_eq!(g.first_match("#notes"), Some("#notes"));
        assert_eq!(g.first_match("src/a/b/x.gen.rs"), Some("src/**/*.gen.rs"));
        assert_eq!(g.first_match("lib/src/x.gen.rs"), None);
    }
}
