//! Reviews and their inline comments: posting a review (or a PENDING one, and deleting it),
//! listing reviews and inline comments, and replying in a thread.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::client::{none_if_missing, to_json};
use super::transport::{Answer, Call, send};
use super::{GitHubError, Installation, RepoName, User};
use crate::diff::Side;
use crate::domain::PrNumber;

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
    /// The reactions' rollup GitHub adds to each comment.
    #[serde(default)]
    pub reactions: Option<Reactions>,
}

/// How many of each reaction a comment has (the two Critic learns from).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Reactions {
    #[serde(rename = "+1", default)]
    pub plus_one: u64,
    #[serde(rename = "-1", default)]
    pub minus_one: u64,
}

/// One person's reaction to a comment.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Reaction {
    /// `+1`, `-1`, `laugh`, `confused`, `heart`, `hooray`, `rocket` or `eyes`.
    pub content: String,
    /// `None` for a deleted account.
    #[serde(default)]
    pub user: Option<super::User>,
}

impl Installation {
    /// Who reacted to a review comment and how, all pages (for counting only the reactions
    /// of people with a role on the repository).
    pub async fn review_comment_reactions(
        &self,
        repo: &RepoName,
        comment_id: u64,
    ) -> Result<Vec<Reaction>, GitHubError> {
        self.all_pages(&format!(
            "/repos/{repo}/pulls/comments/{comment_id}/reactions"
        ))
        .await
    }

    /// Every review on the PR (to find one Critic already posted).
    pub async fn reviews(
        &self,
        repo: &RepoName,
        number: PrNumber,
    ) -> Result<Vec<Review>, GitHubError> {
        self.all_pages(&format!("/repos/{repo}/pulls/{number}/reviews"))
            .await
    }

    /// Posts a review with its inline threads. A post that failed in a way that may have
    /// created it (a 5xx, a dropped connection) is looked for before it is sent again: the
    /// bot's review of the same commit with the same body.
    pub async fn create_review(
        &self,
        repo: &RepoName,
        number: PrNumber,
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
        send(self.via(), &call, Answer::json, find).await
    }

    /// Deletes a review that is still PENDING (GitHub refuses with 422 once it is submitted).
    /// A review already gone (404, e.g. deleted by a try whose answer was lost) is fine.
    pub async fn delete_pending_review(
        &self,
        repo: &RepoName,
        number: PrNumber,
        review_id: u64,
    ) -> Result<(), GitHubError> {
        let route = format!("/repos/{repo}/pulls/{number}/reviews/{review_id}");
        let got = self
            .send_ignoring_answer(Call::new(http::Method::DELETE, route, None))
            .await;
        none_if_missing(got.map(Some)).map(|_| ())
    }

    /// Every inline comment on the PR (roots and replies), all pages.
    pub async fn review_comments(
        &self,
        repo: &RepoName,
        number: PrNumber,
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
        number: PrNumber,
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
        send(self.via(), &call, Answer::json, find).await
    }
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
