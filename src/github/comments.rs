//! The pull request's conversation: comments posted, listed and edited, and reactions to them.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::transport::{Answer, Call, send, send_idempotent};
use super::{GitHubError, Installation, RepoName, User};
use crate::domain::PrNumber;

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

impl Installation {
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

    /// Posts a conversation comment. A post that may have been performed is looked for
    /// first: the bot's comment with the same body, made since this call began.
    pub async fn post_issue_comment(
        &self,
        repo: &RepoName,
        number: PrNumber,
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
        send(self.via(), &call, Answer::json, find).await
    }

    /// Every conversation comment on the PR, oldest first (to find the one Critic keeps updating).
    pub async fn issue_comments(
        &self,
        repo: &RepoName,
        number: PrNumber,
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
        send_idempotent(self.via(), &call, Answer::json).await
    }
}
