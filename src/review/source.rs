//! Where the pipeline reads a change from: a pull request on GitHub, or a local repository
//! (`critic review`, `critic eval`). The pipeline knows only [`Source`].

use std::future::Future;

use crate::domain::PrNumber;
use crate::github::{GitHubError, Installation, RepoName, TreeEntryKind};

use super::PrFile;

/// A change to review and the repository at its head.
pub trait Source: Sync {
    /// The changed files, each with its parsed patch.
    fn changed_files(&self) -> impl Future<Output = Result<Vec<PrFile>, SourceError>> + Send;

    /// A file's bytes at the head under review; None when the head has no such file.
    fn file(&self, path: &str)
    -> impl Future<Output = Result<Option<Vec<u8>>, SourceError>> + Send;

    /// The head's files, for following what a change imports.
    fn tree(&self) -> impl Future<Output = Result<RepoTree, SourceError>> + Send;
}

/// The files of a head, with their sizes when known.
#[derive(Debug, Clone, Default)]
pub struct RepoTree {
    pub files: Vec<(String, Option<u64>)>,
    /// The listing was cut short (GitHub lists at most 100,000 entries): some files are
    /// missing from it.
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Kept whole: whether a job retries, waits or gives up depends on it.
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error("{0}")]
    Local(String),
}

/// A pull request read through the GitHub API, at `head`.
pub struct GitHubSource<'a> {
    pub gh: &'a Installation,
    pub repo: &'a RepoName,
    pub number: PrNumber,
    pub head: &'a str,
}

impl Source for GitHubSource<'_> {
    async fn changed_files(&self) -> Result<Vec<PrFile>, SourceError> {
        Ok(self
            .gh
            .pull_request_files(self.repo, self.number)
            .await?
            .into_iter()
            .map(PrFile::from_github)
            .collect())
    }

    async fn file(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(self.gh.file_content(self.repo, path, self.head).await?)
    }

    async fn tree(&self) -> Result<RepoTree, SourceError> {
        let tree = self.gh.tree(self.repo, self.head).await?;
        Ok(RepoTree {
            truncated: tree.truncated,
            files: tree
                .entries
                .into_iter()
                .filter(|e| e.kind == TreeEntryKind::Blob)
                .map(|e| (e.path, e.size))
                .collect(),
        })
    }
}
