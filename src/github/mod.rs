//! The only module that knows octocrab: App auth, pull requests, files, reviews, comments,
//! check runs, and the two GraphQL calls REST cannot do (review threads and resolving them).
//!
//! Installation clients are cached per installation: octocrab keeps the installation token
//! inside the client and renews it shortly before it expires, so the cache is what keeps us
//! from minting a token per call.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::diff::Side;

mod checks;
mod client;
mod error;
mod graphql;
mod names;
mod retry;
mod transport;

pub use checks::{
    CheckConclusion, CheckOutput, CheckRun, CheckRunApp, CheckRunUpdate, CheckStatus,
    MAX_CHECK_OUTPUT_CHARS, NewCheckRun,
};
pub use client::{GitHub, Installation};
use client::{encode_path, none_if_missing, to_json};
pub use error::GitHubError;
pub use graphql::ReviewThread;
pub use names::{RepoName, short_sha};
pub use retry::RetryPolicy;
use transport::{Answer, Call, send, send_idempotent};

/// The pull request fields the pipeline uses.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    pub number: u64,
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
    pub status: String,
    #[serde(default)]
    pub additions: u64,
    #[serde(default)]
    pub deletions: u64,
    #[serde(default)]
    pub patch: Option<String>,
    #[serde(default)]
    pub previous_filename: Option<String>,
}

/// A review as listed by GitHub.
#[derive(Debug, Clone, Deserialize)]
pub struct Review {
    pub id: u64,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub commit_id: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
}

/// An inline thread of a new review.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReviewComment {
    pub path: String,
    pub line: u32,
    pub side: Side,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_side: Option<Side>,
    pub body: String,
}

/// A review to post. Critic only ever posts `COMMENT`: it never approves or blocks.
#[derive(Debug, Clone, Serialize)]
pub struct NewReview {
    pub commit_id: String,
    pub body: String,
    /// `None` leaves the review PENDING (visible to Critic only): the poster uses that to
    /// test threads before it submits anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'static str>,
    pub comments: Vec<ReviewComment>,
}

impl NewReview {
    pub fn comment(commit_id: String, body: String, comments: Vec<ReviewComment>) -> Self {
        NewReview {
            commit_id,
            body,
            event: Some("COMMENT"),
            comments,
        }
    }

    /// A review GitHub keeps PENDING until it is deleted; never submitted by Critic.
    pub fn pending(commit_id: String, body: String, comments: Vec<ReviewComment>) -> Self {
        NewReview {
            commit_id,
            body,
            event: None,
            comments,
        }
    }
}

/// A comment on the PR's conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct IssueComment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    /// `null` for comments of deleted accounts.
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// An inline review comment as listed by GitHub (a thread's root or one of its replies).
#[derive(Debug, Clone, Deserialize)]
pub struct PullReviewComment {
    pub id: u64,
    #[serde(default)]
    pub node_id: String,
    pub path: String,
    /// `null` once the line is no longer in the PR's diff (the comment is outdated).
    #[serde(default)]
    pub line: Option<u32>,
    #[serde(default)]
    pub original_line: Option<u32>,
    #[serde(default)]
    pub start_line: Option<u32>,
    /// `null` for comments made with the legacy `position`.
    #[serde(default)]
    pub side: Option<Side>,
    #[serde(default)]
    pub commit_id: String,
    #[serde(default)]
    pub original_commit_id: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub user: Option<User>,
    /// The thread's root comment when this is a reply.
    #[serde(default)]
    pub in_reply_to_id: Option<u64>,
    #[serde(default)]
    pub pull_request_review_id: Option<u64>,
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
        number: u64,
    ) -> Result<PullRequest, GitHubError> {
        self.get_json(Call::get(format!("/repos/{repo}/pulls/{number}")))
            .await
    }

    /// Every changed file of the PR, all pages.
    pub async fn pull_request_files(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<Vec<ChangedFile>, GitHubError> {
        self.all_pages(&format!("/repos/{repo}/pulls/{number}/files"))
            .await
    }

    /// Every review on the PR (to find one Critic already posted).
    pub async fn reviews(&self, repo: &RepoName, number: u64) -> Result<Vec<Review>, GitHubError> {
        self.all_pages(&format!("/repos/{repo}/pulls/{number}/reviews"))
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
        let got = send_idempotent(&self.crab, &self.owner.policy, &call, |a| {
            Ok(a.body.to_vec())
        })
        .await;
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
        let got = send_idempotent(&self.crab, &self.owner.policy, &call, |a| {
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

    /// Posts a review with its inline threads. A post that failed in a way that may have
    /// created it (a 5xx, a dropped connection) is looked for before it is sent again: the
    /// bot's review of the same commit with the same body.
    pub async fn create_review(
        &self,
        repo: &RepoName,
        number: u64,
        review: &NewReview,
    ) -> Result<Review, GitHubError> {
        let route = format!("/repos/{repo}/pulls/{number}/reviews");
        let call = Call::new(http::Method::POST, route, Some(to_json(review)?));
        let pending = review.event.is_none();
        let find = || async {
            let bot = self.owner.bot_login().await?;
            let reviews = self.reviews(repo, number).await?;
            Ok(reviews.into_iter().rev().find(|r| {
                r.user.as_ref().is_some_and(|u| u.login == bot)
                    && r.commit_id.as_deref() == Some(review.commit_id.as_str())
                    && r.body.as_deref().map(str::trim) == Some(review.body.trim())
                    && (r.state.as_deref() == Some("PENDING")) == pending
            }))
        };
        send(&self.crab, &self.owner.policy, &call, Answer::json, find).await
    }

    /// Adds a reaction (`eyes`, `+1`, `confused`, ...) to a conversation comment: how Critic
    /// says "seen, working on it" to a slash command. GitHub answers 200 when it was there,
    /// so sending it again is harmless.
    pub async fn add_reaction(
        &self,
        repo: &RepoName,
        comment_id: u64,
        content: &str,
    ) -> Result<(), GitHubError> {
        let route = format!("/repos/{repo}/issues/comments/{comment_id}/reactions");
        self.send_ignoring_answer(Call::new(
            http::Method::POST,
            route,
            Some(json!({ "content": content })),
        ))
        .await
    }

    /// Deletes a review that is still PENDING (GitHub refuses with 422 once it is submitted).
    /// A review already gone (404, e.g. deleted by a try whose answer was lost) is fine.
    pub async fn delete_pending_review(
        &self,
        repo: &RepoName,
        number: u64,
        review_id: u64,
    ) -> Result<(), GitHubError> {
        let route = format!("/repos/{repo}/pulls/{number}/reviews/{review_id}");
        let got = self
            .send_ignoring_answer(Call::new(http::Method::DELETE, route, None))
            .await;
        none_if_missing(got.map(Some)).map(|_| ())
    }

    /// Posts a conversation comment. A post that may have been performed is looked for
    /// first: the bot's comment with the same body, made since this call began.
    pub async fn post_issue_comment(
        &self,
        repo: &RepoName,
        number: u64,
        body: &str,
    ) -> Result<IssueComment, GitHubError> {
        let route = format!("/repos/{repo}/issues/{number}/comments");
        let call = Call::new(http::Method::POST, route, Some(json!({ "body": body })));
        // GitHub's clock and ours may disagree a little.
        let since = Utc::now() - chrono::Duration::seconds(60);
        let find = || async {
            let bot = self.owner.bot_login().await?;
            let comments = self.issue_comments(repo, number).await?;
            Ok(comments.into_iter().rev().find(|c| {
                c.user.as_ref().is_some_and(|u| u.login == bot)
                    && c.body.as_deref().map(str::trim) == Some(body.trim())
                    && c.created_at.is_none_or(|t| t >= since)
            }))
        };
        send(&self.crab, &self.owner.policy, &call, Answer::json, find).await
    }

    /// Every conversation comment on the PR, oldest first (to find the one Critic keeps updating).
    pub async fn issue_comments(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<Vec<IssueComment>, GitHubError> {
        self.all_pages(&format!("/repos/{repo}/issues/{number}/comments"))
            .await
    }

    /// Replaces a conversation comment's body, so a re-review edits its summary in place.
    pub async fn update_issue_comment(
        &self,
        repo: &RepoName,
        comment_id: u64,
        body: &str,
    ) -> Result<IssueComment, GitHubError> {
        let route = format!("/repos/{repo}/issues/comments/{comment_id}");
        let call = Call::new(http::Method::PATCH, route, Some(json!({ "body": body })));
        send_idempotent(&self.crab, &self.owner.policy, &call, Answer::json).await
    }

    /// Every inline comment on the PR (roots and replies), all pages.
    pub async fn review_comments(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<Vec<PullReviewComment>, GitHubError> {
        self.all_pages(&format!("/repos/{repo}/pulls/{number}/comments"))
            .await
    }

    /// Answers in an existing thread. `comment_id` must be the thread's root: GitHub does not
    /// take replies to replies. GitHub files the reply under a new review of its own. A
    /// reply that may have been posted is looked for in the thread before it is sent again.
    pub async fn reply_to_review_comment(
        &self,
        repo: &RepoName,
        number: u64,
        comment_id: u64,
        body: &str,
    ) -> Result<PullReviewComment, GitHubError> {
        let route = format!("/repos/{repo}/pulls/{number}/comments/{comment_id}/replies");
        let call = Call::new(http::Method::POST, route, Some(json!({ "body": body })));
        let find = || async {
            let bot = self.owner.bot_login().await?;
            let comments = self.review_comments(repo, number).await?;
            Ok(comments.into_iter().rev().find(|c| {
                c.in_reply_to_id == Some(comment_id)
                    && c.user.as_ref().is_some_and(|u| u.login == bot)
                    && c.body.trim() == body.trim()
            }))
        };
        send(&self.crab, &self.owner.policy, &call, Answer::json, find).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_json_is_comment_only_and_omits_empty_ranges() {
        let review = NewReview::comment(
            "abc".into(),
            "body".into(),
            vec![ReviewComment {
                path: "a.rs".into(),
                line: 3,
                side: Side::Right,
                start_line: None,
                start_side: None,
                body: "x".into(),
            }],
        );
        let v = serde_json::to_value(&review).expect("json");
        assert_eq!(v["event"], "COMMENT");
        assert_eq!(v["comments"][0]["side"], "RIGHT");
        assert!(v["comments"][0].get("start_line").is_none());
    }
}
