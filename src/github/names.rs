//! Names as GitHub spells them: a checked `owner/name` and a commit's short SHA.

use serde::{Deserialize, Serialize};

/// `owner/name`, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName {
    owner: String,
    name: String,
}

impl RepoName {
    pub fn owner(&self) -> &str {
        &self.owner
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl TryFrom<String> for RepoName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for RepoName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('/') {
            Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => Ok(RepoName {
                owner: o.to_string(),
                name: n.to_string(),
            }),
            _ => Err(format!("`{s}` is not an owner/name repository")),
        }
    }
}

impl From<RepoName> for String {
    fn from(r: RepoName) -> String {
        r.to_string()
    }
}

impl std::fmt::Display for RepoName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// A commit SHA as people read it on GitHub: its first seven characters.
pub fn short_sha(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// Percent-encodes each segment of a repository path (spaces, `#`, `?`, non-ASCII) and keeps
/// the slashes between them.
pub(super) fn encode_path(path: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    path.split('/')
        .map(|seg| utf8_percent_encode(seg, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(encode_path("src/a b/c#d.rs"), "src/a%20b/c%23d.rs");
        assert_eq!(encode_path("docs/é.md"), "docs/%C3%A9.md");
        assert_eq!(
            encode_path("plain/file-name_1.txt"),
            "plain/file-name_1.txt"
        );
    }

    #[test]
    fn repo_names() {
        let r: RepoName = "octo/cat".parse().expect("valid");
        assert_eq!((r.owner(), r.name()), ("octo", "cat"));
        assert!("octo".parse::<RepoName>().is_err());
        assert!("a/b/c".parse::<RepoName>().is_err());
        assert!("/b".parse::<RepoName>().is_err());
    }
}
