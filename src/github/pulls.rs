//! A pull request and what it changes: its fields, changed files, comparisons between
//! commits, a commit's tree, and file contents (at a commit or on the default branch).

use serde::Deserialize;

use super::client::none_if_missing;
use super::names::encode_path;
use super::transport::{Call, send_idempotent};
use super::{GitHubError, Installation, RepoName};
use crate::domain::{FileStatus, PrNumber};

/// The pull request fields the pipeline uses.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    pub number: PrNumber,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub state: String,
    #[serde(default)]
    pub draft: bool,
    pub head: GitRef,
    pub base: GitRef,
    pub user: User,
    #[serde(default)]
    pub labels: Vec<Label>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitRef {
    #[serde(rename = "ref")]
    pub name: String,
    pub sha: String,
    /// The repository the branch is in; `null` when a fork was deleted.
    #[serde(default)]
    pub repo: Option<RefRepo>,
}

/// The repository a branch of a pull request is in.
#[derive(Debug, Clone, Deserialize)]
pub struct RefRepo {
    pub full_name: String,
}

impl PullRequest {
    /// Whether the head branch is in `repo` itself, not a fork (or a deleted one): only then
    /// may Critic push beside it.
    pub fn head_is_in(&self, repo: &RepoName) -> bool {
        self.head
            .repo
            .as_ref()
            .is_some_and(|r| r.full_name.eq_ignore_ascii_case(&repo.to_string()))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub login: String,
    /// `User`, `Bot` or `Organization`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// One entry of the PR's files list. `patch` is absent for binary and very large files.
#[derive(Debug, Clone, Deserialize)]
pub struct ChangedFile {
    pub filename: String,
    pub status: FileStatus,
    #[serde(default)]
    pub additions: u64,
    #[serde(default)]
    pub deletions: u64,
    #[serde(default)]
    pub patch: Option<String>,
    #[serde(default)]
    pub previous_filename: Option<String>,
}

/// `base...head` as GitHub compares it: changes on `head` since the merge base.
#[derive(Debug, Clone, Deserialize)]
pub struct Comparison {
    /// `ahead`, `behind`, `diverged` or `identical`.
    pub status: String,
    pub ahead_by: u64,
    pub behind_by: u64,
    /// Commits between the merge base and `head`.
    #[serde(rename = "total_commits")]
    pub commits: u64,
    /// GitHub lists at most 300 files here.
    #[serde(default)]
    pub files: Vec<ChangedFile>,
}

/// A recursive listing of a commit's tree.
#[derive(Debug, Clone, Deserialize)]
pub struct Tree {
    /// The tree's own SHA (not the commit's).
    pub sha: String,
    /// GitHub cut the listing (over 100,000 entries or 7 MB): some paths are missing.
    #[serde(default)]
    pub truncated: bool,
    #[serde(rename = "tree")]
    pub entries: Vec<TreeEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TreeEntry {
    pub path: String,
    /// Git's file mode, e.g. `100644`, `100755`, `120000` (symlink), `040000`.
    pub mode: String,
    #[serde(rename = "type")]
    pub kind: TreeEntryKind,
    /// Blobs only.
    #[serde(default)]
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TreeEntryKind {
    Blob,
    Tree,
    /// A submodule.
    Commit,
}

impl Installation {
    pub async fn pull_request(
        &self,
        repo: &RepoName,
        number: PrNumber,
    ) -> Result<PullRequest, GitHubError> {
        self.get_json(Call::get(format!("/repos/{repo}/pulls/{number}")))
            .await
    }

    /// Every changed file of the PR, all pages.
    pub async fn pull_request_files(
        &self,
        repo: &RepoName,
        number: PrNumber,
    ) -> Result<Vec<ChangedFile>, GitHubError> {
        self.all_pages(&format!("/repos/{repo}/pulls/{number}/files"))
            .await
    }

    /// A file's bytes at a commit, or None if it does not exist there. Uses the raw media
    /// type, which also serves files over the JSON API's 1 MB limit.
    pub async fn file_content(
        &self,
        repo: &RepoName,
        path: &str,
        sha: &str,
    ) -> Result<Option<Vec<u8>>, GitHubError> {
        let call = Call::get(format!("/repos/{repo}/contents/{}", encode_path(path)))
            .query(&[("ref", sha)])
            .header(http::header::ACCEPT, raw_media_type());
        let got = send_idempotent(self.via(), &call, |a| Ok(a.body.to_vec())).await;
        none_if_missing(got)
    }

    /// A file on the repository's default branch (the contents API's default without a
    /// `ref`), or None when the file (or the repository, for this installation) does not
    /// exist. A file read before is asked for with its ETag, and unchanged costs no quota.
    pub async fn default_branch_file(
        &self,
        repo: &RepoName,
        path: &str,
    ) -> Result<Option<Vec<u8>>, GitHubError> {
        let route = format!("/repos/{repo}/contents/{}", encode_path(path));
        let mut call = Call::get(route.clone()).header(http::header::ACCEPT, raw_media_type());
        let cached = self.owner.files.get(&route);
        if let Some(etag) = cached
            .as_ref()
            .and_then(|(etag, _)| http::HeaderValue::from_str(etag).ok())
        {
            call = call.header(http::header::IF_NONE_MATCH, etag);
        }
        let got = send_idempotent(self.via(), &call, |a| {
            let etag = a
                .headers
                .get(http::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Ok((a.status, etag, a.body.to_vec()))
        })
        .await;
        let (status, etag, body) = match none_if_missing(got) {
            Ok(Some(got)) => got,
            Ok(None) => {
                self.owner.files.put(&route, None);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if status == http::StatusCode::NOT_MODIFIED
            && let Some((_, bytes)) = cached
        {
            return Ok(Some(bytes));
        }
        self.owner
            .files
            .put(&route, etag.map(|e| (e, body.clone())));
        Ok(Some(body))
    }

    /// What changed from `base` to `head` (e.g. since the last reviewed head), with patches.
    pub async fn compare(
        &self,
        repo: &RepoName,
        base: &str,
        head: &str,
    ) -> Result<Comparison, GitHubError> {
        self.get_json(Call::get(format!(
            "/repos/{repo}/compare/{}...{}",
            encode_path(base),
            encode_path(head)
        )))
        .await
    }

    /// Every path of a commit (or tree) in one call; check `truncated` on huge repositories.
    pub async fn tree(&self, repo: &RepoName, sha: &str) -> Result<Tree, GitHubError> {
        let call = Call::get(format!("/repos/{repo}/git/trees/{}", encode_path(sha)))
            .query(&[("recursive", "1")]);
        self.get_json(call).await
    }
}

/// `application/vnd.github.raw`: a file's bytes rather than its JSON description.
fn raw_media_type() -> http::HeaderValue {
    http::HeaderValue::from_static("application/vnd.github.v3.raw")
}
