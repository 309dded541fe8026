//! Conversation (issue) comments: create, update, react, and their JSON shape.

use chrono::Utc;
use serde_json::{Value, json};

use super::server::{Ctx, Reply};
use super::shapes::{ts, user_json};
use super::world::{IssueComment, Repo, World};
use super::{BOT_LOGIN, HTML_BASE, MAX_BODY_CHARS};

impl World {
    pub(super) fn create_issue_comment(&mut self, ctx: &Ctx, full: &str, number: u64) -> Reply {
        let key = full.to_ascii_lowercase();
        if !self.repos[&key].pulls.contains_key(&number) {
            return Reply::not_found();
        }
        let body = match comment_body(ctx) {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let id = self.next_id();
        let now = Utc::now();
        let comment = IssueComment {
            id,
            body,
            user_login: BOT_LOGIN.to_owned(),
            created_at: now,
            updated_at: now,
        };
        self.repos
            .get_mut(&key)
            .expect("repo")
            .pulls
            .get_mut(&number)
            .expect("pull")
            .issue_comments
            .push(comment.clone());
        let repo = &self.repos[&key];
        Reply::json(201, self.issue_comment_json(repo, number, &comment))
    }

    pub(super) fn update_issue_comment(&mut self, ctx: &Ctx, full: &str, id: u64) -> Reply {
        let key = full.to_ascii_lowercase();
        let body = match comment_body(ctx) {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let repo = self.repos.get_mut(&key).expect("repo");
        let found = repo.pulls.iter_mut().find_map(|(number, pull)| {
            pull.issue_comments
                .iter_mut()
                .find(|c| c.id == id)
                .map(|c| (*number, c))
        });
        let Some((number, comment)) = found else {
            return Reply::error(
                404,
                "Not Found",
                "https://docs.github.com/rest/issues/comments#update-an-issue-comment",
            );
        };
        comment.body = body;
        comment.updated_at = Utc::now();
        let comment = comment.clone();
        let repo = &self.repos[&key];
        Reply::json(200, self.issue_comment_json(repo, number, &comment))
    }

    /// `POST issues/comments/{id}/reactions`: 201 with the new reaction, 200 when this user
    /// already reacted so, 422 for a content GitHub does not know, 404 for no such comment.
    pub(super) fn add_reaction(&mut self, ctx: &Ctx, full: &str, id: u64) -> Reply {
        const CONTENTS: [&str; 8] = [
            "+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes",
        ];
        let key = full.to_ascii_lowercase();
        let body = match ctx.json_body() {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let content = body.get("content").and_then(Value::as_str).unwrap_or("");
        if !CONTENTS.contains(&content) {
            return Reply::error(
                422,
                "Validation Failed",
                "https://docs.github.com/rest/reactions/reactions#create-reaction-for-an-issue-comment",
            );
        }
        let repo = self.repos.get_mut(&key).expect("repo");
        let exists = repo
            .pulls
            .values()
            .any(|p| p.issue_comments.iter().any(|c| c.id == id));
        if !exists {
            return Reply::not_found();
        }
        let again = repo
            .reactions
            .iter()
            .any(|(c, r, u)| *c == id && r == content && u == BOT_LOGIN);
        if !again {
            repo.reactions
                .push((id, content.to_owned(), BOT_LOGIN.to_owned()));
        }
        let reaction_id = self.next_id();
        Reply::json(
            if again { 200 } else { 201 },
            json!({
                "id": reaction_id,
                "node_id": format!("REA_lADO{reaction_id:010}"),
                "user": user_json(BOT_LOGIN),
                "content": content,
                "created_at": ts(Utc::now()),
            }),
        )
    }

    pub(super) fn issue_comment_json(&self, repo: &Repo, number: u64, c: &IssueComment) -> Value {
        let full = &repo.full_name;
        json!({
            "id": c.id,
            "node_id": format!("IC_kwDO{:010}", c.id),
            "url": format!("{}/repos/{full}/issues/comments/{}", self.url, c.id),
            "html_url": format!("{HTML_BASE}/{full}/pull/{number}#issuecomment-{}", c.id),
            "issue_url": format!("{}/repos/{full}/issues/{number}", self.url),
            "body": c.body,
            "user": user_json(&c.user_login),
            "created_at": ts(c.created_at),
            "updated_at": ts(c.updated_at),
            "author_association": if c.user_login == BOT_LOGIN { "NONE" } else { "CONTRIBUTOR" },
        })
    }
}

/// Body of an issue comment create/update: required, at most 65 536 characters.
fn comment_body(ctx: &Ctx) -> Result<String, Reply> {
    let body = ctx.json_body()?;
    let doc = "https://docs.github.com/rest/issues/comments#create-an-issue-comment";
    match body.get("body") {
        Some(Value::String(s)) if s.chars().count() > MAX_BODY_CHARS => Err(Reply::error_with(
            422,
            "Validation Failed",
            json!([{ "resource": "IssueComment", "code": "custom", "field": "body", "message": "body is too long (maximum is 65536 characters)" }]),
            doc,
        )),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(Reply::error_with(
            422,
            "Validation Failed",
            json!([{ "resource": "IssueComment", "code": "missing_field", "field": "body" }]),
            doc,
        )),
        Some(other) => Err(Reply::error(
            422,
            &format!("Invalid request.\n\nFor 'properties/body', {other} is not a string."),
            doc,
        )),
    }
}
