//! Git data: a commit made through the API (a tree on top of another commit's, then the commit),
//! a branch pointed at it and deleted again, and the commit's combined status. What `/test
//! --verify` pushes its tests with, so that the repository's own CI runs them: Critic's server
//! never runs a pull request's code itself.
//!
//! Trees and commits are content-addressed (the same request makes the same object), so they
//! are sent again after a failure like reads.

use serde::{Deserialize, Serialize};

use super::client::to_json;
use super::names::encode_path;
use super::transport::{Answer, Call, send_idempotent};
use super::{GitHubError, Installation, RepoName};

/// A file to write in a new tree: its path from the repository's root and its whole text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub path: String,
    pub content: String,
}

/// A commit's combined status: `success`, `failure`, `pending` (GitHub's word also for a
/// commit with no status at all), and each context's.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CombinedStatus {
    pub state: String,
    #[serde(default)]
    pub statuses: Vec<CommitStatus>,
    #[serde(default)]
    pub total_count: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CommitStatus {
    pub context: String,
    /// `error`, `failure`, `pending` or `success`.
    pub state: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub target_url: Option<String>,
}

#[derive(Deserialize)]
struct Sha {
    sha: String,
}

impl Installation {
    /// The tree of commit `sha`.
    pub async fn commit_tree(&self, repo: &RepoName, sha: &str) -> Result<String, GitHubError> {
        #[derive(Deserialize)]
        struct Commit {
            tree: Sha,
        }
        let call = Call::get(format!("/repos/{repo}/git/commits/{}", encode_path(sha)));
        let commit: Commit = self.get_json(call).await?;
        Ok(commit.tree.sha)
    }

    /// A new commit on top of `parent`: the tree of commit `base` with `files` written
    /// (added or replaced), and `message`. Returns the new commit's SHA; no branch points at
    /// it yet. `base` and `parent` differ for a commit that replaces an earlier one of
    /// Critic's: the same files of the pull request's head, a history that shows the change.
    pub async fn commit_files(
        &self,
        repo: &RepoName,
        base: &str,
        parent: &str,
        files: &[TreeFile],
        message: &str,
    ) -> Result<String, GitHubError> {
        #[derive(Serialize)]
        struct Entry<'a> {
            path: &'a str,
            mode: &'static str,
            #[serde(rename = "type")]
            kind: &'static str,
            content: &'a str,
        }
        #[derive(Serialize)]
        struct NewTree<'a> {
            base_tree: &'a str,
            tree: Vec<Entry<'a>>,
        }
        #[derive(Serialize)]
        struct NewCommit<'a> {
            message: &'a str,
            tree: &'a str,
            parents: [&'a str; 1],
        }
        let base_tree = self.commit_tree(repo, base).await?;
        let tree = NewTree {
            base_tree: &base_tree,
            tree: files
                .iter()
                .map(|f| Entry {
                    path: &f.path,
                    mode: "100644",
                    kind: "blob",
                    content: &f.content,
                })
                .collect(),
        };
        let call = Call::new(
            http::Method::POST,
            format!("/repos/{repo}/git/trees"),
            Some(to_json(&tree)?),
        );
        let tree: Sha = send_idempotent(self.via(), &call, Answer::json).await?;
        let commit = NewCommit {
            message,
            tree: &tree.sha,
            parents: [parent],
        };
        let call = Call::new(
            http::Method::POST,
            format!("/repos/{repo}/git/commits"),
            Some(to_json(&commit)?),
        );
        let commit: Sha = send_idempotent(self.via(), &call, Answer::json).await?;
        Ok(commit.sha)
    }

    /// Points branch `name` at `sha`, making it if it does not exist (forced: the branch is
    /// Critic's own).
    pub async fn set_branch(
        &self,
        repo: &RepoName,
        name: &str,
        sha: &str,
    ) -> Result<(), GitHubError> {
        let update = self.update_ref(repo, name, sha, true)?;
        match self.send_ignoring_answer(update.clone()).await {
            Err(e) if e.status() == Some(422) && e.to_string().contains("does not exist") => {}
            other => return other,
        }
        let create = Call::new(
            http::Method::POST,
            format!("/repos/{repo}/git/refs"),
            Some(to_json(&serde_json::json!({
                "ref": format!("refs/heads/{name}"),
                "sha": sha,
            }))?),
        );
        match self.send_ignoring_answer(create).await {
            // Made meanwhile (by another job, or by this call before a retry): move it.
            Err(e) if e.status() == Some(422) && e.to_string().contains("already exists") => {
                self.send_ignoring_answer(update).await
            }
            other => other,
        }
    }

    /// Moves branch `name` forward to `sha`, a descendant of where it points. False when it
    /// cannot be: the branch is gone, or someone moved it elsewhere meanwhile.
    pub async fn advance_branch(
        &self,
        repo: &RepoName,
        name: &str,
        sha: &str,
    ) -> Result<bool, GitHubError> {
        let update = self.update_ref(repo, name, sha, false)?;
        match self.send_ignoring_answer(update).await {
            Ok(()) => Ok(true),
            // "Update is not a fast forward", "Reference does not exist".
            Err(e) if e.status() == Some(422) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn update_ref(
        &self,
        repo: &RepoName,
        name: &str,
        sha: &str,
        force: bool,
    ) -> Result<Call, GitHubError> {
        Ok(Call::new(
            http::Method::PATCH,
            format!("/repos/{repo}/git/refs/heads/{}", encode_path(name)),
            Some(to_json(&serde_json::json!({ "sha": sha, "force": force }))?),
        ))
    }

    /// The parents of commit `sha`.
    pub async fn commit_parents(
        &self,
        repo: &RepoName,
        sha: &str,
    ) -> Result<Vec<String>, GitHubError> {
        #[derive(Deserialize)]
        struct Commit {
            #[serde(default)]
            parents: Vec<Sha>,
        }
        let call = Call::get(format!("/repos/{repo}/git/commits/{}", encode_path(sha)));
        let commit: Commit = self.get_json(call).await?;
        Ok(commit.parents.into_iter().map(|p| p.sha).collect())
    }

    /// Where branch `name` points, or None when there is no such branch.
    pub async fn branch_head(
        &self,
        repo: &RepoName,
        name: &str,
    ) -> Result<Option<String>, GitHubError> {
        #[derive(Deserialize)]
        struct Ref {
            object: Sha,
        }
        let call = Call::get(format!("/repos/{repo}/git/ref/heads/{}", encode_path(name)));
        let found: Option<Ref> = super::client::none_if_missing(self.get_json(call).await)?;
        Ok(found.map(|r| r.object.sha))
    }

    /// Deletes branch `name`; false when there was none.
    pub async fn delete_branch(&self, repo: &RepoName, name: &str) -> Result<bool, GitHubError> {
        let call = Call::new(
            http::Method::DELETE,
            format!("/repos/{repo}/git/refs/heads/{}", encode_path(name)),
            None,
        );
        match self.send_ignoring_answer(call).await {
            Ok(()) => Ok(true),
            // GitHub answers 422 "Reference does not exist" (404 on some versions).
            Err(e) if matches!(e.status(), Some(404 | 422)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The combined status of a commit (the statuses API; check runs are listed apart).
    pub async fn combined_status(
        &self,
        repo: &RepoName,
        sha: &str,
    ) -> Result<CombinedStatus, GitHubError> {
        let call = Call::get(format!("/repos/{repo}/commits/{}/status", encode_path(sha)))
            .query(&[("per_page", super::client::PER_PAGE)]);
        self.get_json(call).await
    }
}
