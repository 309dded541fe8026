//! Reviews: creating one (every comment validated against the PR's patches; one bad comment
//! rejects the whole review), deleting a pending one, replies to review comments, JSON shapes.

use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::patches::{LineKind, find_line, parse_patch};
use super::server::{Ctx, Reply};
use super::shapes::{ts, user_json};
use super::world::{Pull, PullFile, Repo, Review, ReviewComment, World};
use super::{BOT_LOGIN, DOCS_CREATE_REVIEW, DOCS_REPLY, HTML_BASE, MAX_BODY_CHARS};

impl World {
    // ----- reviews ---------------------------------------------------------------------------

    pub(super) fn create_review(&mut self, ctx: &Ctx, full: &str, number: u64) -> Reply {
        let key = full.to_ascii_lowercase();
        let Some(pull) = self.repos[&key].pulls.get(&number) else {
            return Reply::not_found();
        };
        let body = match ctx.json_body() {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let input: ReviewInput = match serde_json::from_value(body) {
            Ok(input) => input,
            Err(e) => {
                return Reply::error(422, &format!("Invalid request.\n\n{e}"), DOCS_CREATE_REVIEW);
            }
        };
        let review_body = input.body.clone().unwrap_or_default();
        let state = match input.event.as_deref() {
            None => "PENDING",
            Some("COMMENT") => "COMMENTED",
            Some("APPROVE") => "APPROVED",
            Some("REQUEST_CHANGES") => "CHANGES_REQUESTED",
            Some(other) => {
                return Reply::error(
                    422,
                    &format!(
                        "Invalid request.\n\nFor 'properties/event', \"{other}\" is not a member of enum."
                    ),
                    DOCS_CREATE_REVIEW,
                );
            }
        };
        if matches!(state, "COMMENTED" | "CHANGES_REQUESTED")
            && review_body.trim().is_empty()
            && input.comments.as_ref().is_none_or(Vec::is_empty)
        {
            return Reply::unprocessable_review("Review body is required");
        }
        if review_body.chars().count() > MAX_BODY_CHARS {
            return Reply::unprocessable_review("Body is too long (maximum is 65536 characters)");
        }
        let commit_id = input
            .commit_id
            .clone()
            .unwrap_or_else(|| pull.pr.head_sha.clone());
        if commit_id != pull.pr.head_sha && !pull.previous_heads.contains(&commit_id) {
            return Reply::unprocessable_review(&format!("No commit found for SHA: {commit_id}"));
        }
        // GitHub allows one pending review per user, and a new review (pending or not) first
        // becomes that user's pending one.
        if pull
            .reviews
            .iter()
            .any(|r| r.state == "PENDING" && r.user_login == BOT_LOGIN)
        {
            return Reply::unprocessable_review(
                "User can only have one pending review per pull request",
            );
        }

        // Validate every comment before storing anything: one bad comment rejects the review.
        let mut comments = Vec::new();
        for c in input.comments.unwrap_or_default() {
            match resolve_comment(&pull.files, &c) {
                Ok(resolved) => comments.push(resolved),
                Err(message) => return Reply::unprocessable_review(&message),
            }
        }

        let review_id = self.next_id();
        for comment in &mut comments {
            comment.id = self.next_id();
        }
        let review = Review {
            id: review_id,
            node_id: format!("PRR_kwDO{review_id:010}"),
            commit_id,
            body: review_body,
            event: input.event,
            state: state.to_owned(),
            user_login: BOT_LOGIN.to_owned(),
            submitted_at: (state != "PENDING").then(Utc::now),
            comments,
        };
        let repo = self.repos.get_mut(&key).expect("repo checked above");
        let pull = repo.pulls.get_mut(&number).expect("pull checked above");
        pull.reviews.push(review.clone());
        let repo = &self.repos[&key];
        Reply::json(200, self.review_json(repo, number, &review))
    }

    /// `DELETE /repos/{o}/{r}/pulls/{n}/reviews/{id}`: only a PENDING review can go; GitHub
    /// answers 422 for a submitted one and returns the deleted review.
    pub(super) fn delete_pending_review(&mut self, full: &str, number: u64, id: u64) -> Reply {
        let key = full.to_ascii_lowercase();
        let Some(pull) = self.repos[&key].pulls.get(&number) else {
            return Reply::not_found();
        };
        let Some(index) = pull.reviews.iter().position(|r| r.id == id) else {
            return Reply::not_found();
        };
        if pull.reviews[index].state != "PENDING" {
            return Reply::unprocessable_review("Can not delete a non-pending pull request review");
        }
        let repo = self.repos.get_mut(&key).expect("repo checked above");
        let pull = repo.pulls.get_mut(&number).expect("pull checked above");
        let review = pull.reviews.remove(index);
        let repo = &self.repos[&key];
        Reply::json(200, self.review_json(repo, number, &review))
    }

    // ----- review comment replies ------------------------------------------------------------

    pub(super) fn reply_to_review_comment(
        &mut self,
        ctx: &Ctx,
        full: &str,
        number: u64,
        parent: u64,
    ) -> Reply {
        let key = full.to_ascii_lowercase();
        if !self.repos[&key].pulls.contains_key(&number) {
            return Reply::not_found();
        }
        let body = match ctx.json_body() {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let body = match body.get("body") {
            Some(Value::String(s)) if s.chars().count() > MAX_BODY_CHARS => {
                return Reply::error_with(
                    422,
                    "Validation Failed",
                    json!([{ "resource": "PullRequestReviewComment", "code": "custom", "field": "body", "message": "body is too long (maximum is 65536 characters)" }]),
                    DOCS_REPLY,
                );
            }
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Reply::error_with(
                    422,
                    "Validation Failed",
                    json!([{ "resource": "PullRequestReviewComment", "code": "missing_field", "field": "body" }]),
                    DOCS_REPLY,
                );
            }
            Some(other) => {
                return Reply::error(
                    422,
                    &format!("Invalid request.\n\nFor 'properties/body', {other} is not a string."),
                    DOCS_REPLY,
                );
            }
        };
        match self.create_reply(&key, number, parent, BOT_LOGIN, body) {
            Ok((review, comment)) => {
                let repo = &self.repos[&key];
                let pull = &repo.pulls[&number];
                Reply::json(201, self.review_comment_json(repo, pull, &review, &comment))
            }
            Err(reply) => reply,
        }
    }

    /// Files a reply under a new review of its own (as GitHub does), at its parent's location.
    pub(super) fn create_reply(
        &mut self,
        key: &str,
        number: u64,
        parent_id: u64,
        user_login: &str,
        body: String,
    ) -> Result<(Review, ReviewComment), Reply> {
        let pull = self
            .repos
            .get(key)
            .and_then(|r| r.pulls.get(&number))
            .ok_or_else(Reply::not_found)?;
        // The parent must be a comment of *this* PR.
        let (parent_review, parent) = pull
            .reviews
            .iter()
            .find_map(|r| {
                r.comments
                    .iter()
                    .find(|c| c.id == parent_id)
                    .map(|c| (r, c))
            })
            .ok_or_else(|| Reply::error(404, "Not Found", DOCS_REPLY))?;
        if parent.in_reply_to_id.is_some() {
            // The documented contract: "This must be the ID of a top-level review comment, not
            // a reply to that comment. Replies to replies are not supported."
            return Err(Reply::error_with(
                422,
                "Validation Failed",
                json!([{ "resource": "PullRequestReviewComment", "code": "invalid", "field": "in_reply_to", "message": "replies to replies are not supported: reply to the thread's top-level comment" }]),
                DOCS_REPLY,
            ));
        }
        let mut comment = parent.clone();
        let commit_id = parent_review.commit_id.clone();
        let review_id = self.next_id();
        comment.id = self.next_id();
        comment.body = body;
        comment.in_reply_to_id = Some(parent_id);
        let review = Review {
            id: review_id,
            node_id: format!("PRR_kwDO{review_id:010}"),
            commit_id,
            body: String::new(),
            event: Some("COMMENT".to_owned()),
            state: "COMMENTED".to_owned(),
            user_login: user_login.to_owned(),
            submitted_at: Some(Utc::now()),
            comments: vec![comment.clone()],
        };
        let pull = self
            .repos
            .get_mut(key)
            .and_then(|r| r.pulls.get_mut(&number))
            .expect("pull checked above");
        pull.reviews.push(review.clone());
        pull.updated_at = Utc::now();
        Ok((review, comment))
    }

    pub(super) fn review_json(&self, repo: &Repo, number: u64, review: &Review) -> Value {
        let full = &repo.full_name;
        let html = format!(
            "{HTML_BASE}/{full}/pull/{number}#pullrequestreview-{}",
            review.id
        );
        let pr_url = format!("{}/repos/{full}/pulls/{number}", self.url);
        let mut out = json!({
            "id": review.id,
            "node_id": review.node_id,
            "user": user_json(&review.user_login),
            "body": review.body,
            "state": review.state,
            "html_url": html,
            "pull_request_url": pr_url,
            "author_association": "NONE",
            "_links": { "html": { "href": html }, "pull_request": { "href": pr_url } },
            "commit_id": review.commit_id,
        });
        if let Some(at) = review.submitted_at {
            out["submitted_at"] = json!(ts(at));
        }
        out
    }

    pub(super) fn review_comment_json(
        &self,
        repo: &Repo,
        pull: &Pull,
        review: &Review,
        c: &ReviewComment,
    ) -> Value {
        let full = &repo.full_name;
        let n = pull.pr.number;
        let url = format!("{}/repos/{full}/pulls/comments/{}", self.url, c.id);
        let html = format!("{HTML_BASE}/{full}/pull/{n}#discussion_r{}", c.id);
        let pr_url = format!("{}/repos/{full}/pulls/{n}", self.url);
        let at = ts(review.submitted_at.unwrap_or(pull.created_at));
        let root = c.in_reply_to_id.unwrap_or(c.id);
        // An outdated comment keeps its `original_*` location and loses the current one.
        let outdated = pull.threads.get(&root).is_some_and(|t| t.outdated);
        let current = |v: Value| if outdated { Value::Null } else { v };
        let mut out = json!({
            "url": url,
            "pull_request_review_id": review.id,
            "id": c.id,
            "node_id": format!("PRRC_kwDO{:010}", c.id),
            "diff_hunk": c.diff_hunk,
            "path": c.path,
            "position": current(json!(c.position)),
            "original_position": c.position,
            "commit_id": review.commit_id,
            "original_commit_id": review.commit_id,
            "user": user_json(&review.user_login),
            "body": c.body,
            "created_at": at,
            "updated_at": at,
            "html_url": html,
            "pull_request_url": pr_url,
            "author_association": "NONE",
            "_links": { "self": { "href": url }, "html": { "href": html }, "pull_request": { "href": pr_url } },
            "start_line": current(json!(c.start_line)),
            "original_start_line": c.start_line,
            "start_side": c.start_side,
            "line": current(json!(c.line)),
            "original_line": c.line,
            "side": c.side,
            "subject_type": "line",
        });
        // The reactions rollup GitHub puts on every review comment.
        let count = |content: &str| {
            repo.review_reactions
                .iter()
                .filter(|(id, r, _)| *id == c.id && r == content)
                .count()
        };
        let contents = [
            "+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes",
        ];
        let mut reactions = json!({
            "url": format!("{url}/reactions"),
            "total_count": contents.iter().map(|r| count(r)).sum::<usize>(),
        });
        for r in contents {
            reactions[r] = json!(count(r));
        }
        out["reactions"] = reactions;
        // Like GitHub, the field is absent (not null) on a thread's root.
        if let Some(parent) = c.in_reply_to_id {
            out["in_reply_to_id"] = json!(parent);
        }
        out
    }
}

#[derive(Deserialize)]
struct ReviewInput {
    commit_id: Option<String>,
    body: Option<String>,
    event: Option<String>,
    comments: Option<Vec<CommentInput>>,
}

#[derive(Deserialize)]
pub(super) struct CommentInput {
    pub(super) path: Option<String>,
    pub(super) line: Option<u64>,
    pub(super) side: Option<String>,
    pub(super) start_line: Option<u64>,
    pub(super) start_side: Option<String>,
    pub(super) body: Option<String>,
    pub(super) position: Option<u64>,
}

/// Validates one review comment like GitHub does and resolves its location.
pub(super) fn resolve_comment(
    files: &[PullFile],
    c: &CommentInput,
) -> Result<ReviewComment, String> {
    let path = c.path.as_deref().unwrap_or("");
    let Some(file) = files.iter().find(|f| f.filename == path) else {
        return Err("Path could not be resolved".to_owned());
    };
    let Some(patch) = &file.patch else {
        return Err("Path could not be resolved".to_owned());
    };
    let body = c.body.clone().unwrap_or_default();
    if body.trim().is_empty() {
        return Err("Body can't be blank".to_owned());
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err("Body is too long (maximum is 65536 characters)".to_owned());
    }
    let lines = parse_patch(patch);
    let side_of = |s: &Option<String>, default: &str| -> Result<String, String> {
        match s.as_deref().unwrap_or(default) {
            side @ ("LEFT" | "RIGHT") => Ok(side.to_owned()),
            other => Err(format!("Invalid side {other:?}: must be LEFT or RIGHT")),
        }
    };

    let (side, end) = match (c.line, c.position) {
        (Some(line), _) => {
            let side = side_of(&c.side, "RIGHT")?;
            let end = find_line(&lines, &side, line)
                .ok_or_else(|| "Line could not be resolved".to_owned())?;
            (side, end)
        }
        (None, Some(position)) => {
            // Legacy `position`: lines below the first `@@`, counting later `@@` lines too.
            let end = lines
                .iter()
                .copied()
                .find(|l| l.position as u64 == position)
                .filter(|l| {
                    matches!(
                        l.kind,
                        LineKind::Context | LineKind::Added | LineKind::Removed
                    )
                })
                .ok_or_else(|| "Pull request review thread position is invalid".to_owned())?;
            let side = if end.kind == LineKind::Removed {
                "LEFT"
            } else {
                "RIGHT"
            };
            (side.to_owned(), end)
        }
        (None, None) => return Err("Line could not be resolved".to_owned()),
    };
    let line = if side == "RIGHT" { end.new } else { end.old }.expect("resolved line has a number");

    let mut start_side = None;
    if let Some(start_line) = c.start_line {
        if c.line.is_none() {
            return Err("Line could not be resolved".to_owned());
        }
        let s_side = side_of(&c.start_side, &side)?;
        if s_side == side && start_line >= line {
            return Err(
                "Pull request review thread start line must precede the end line".to_owned(),
            );
        }
        let start = find_line(&lines, &s_side, start_line)
            .ok_or_else(|| "Start line could not be resolved".to_owned())?;
        if start.hunk != end.hunk {
            return Err(
                "Pull request review thread start line and end line must be in the same hunk"
                    .to_owned(),
            );
        }
        if start.position >= end.position {
            return Err(
                "Pull request review thread start line must precede the end line".to_owned(),
            );
        }
        start_side = Some(s_side);
    }

    let hunk_start = lines
        .iter()
        .find(|l| l.hunk == end.hunk && l.kind == LineKind::HunkHeader)
        .map_or(0, |l| l.position);
    let diff_hunk = patch
        .split('\n')
        .skip(hunk_start)
        .take(end.position - hunk_start + 1)
        .collect::<Vec<_>>()
        .join("\n");
    Ok(ReviewComment {
        id: 0,
        path: path.to_owned(),
        line,
        side,
        start_line: c.start_line,
        start_side,
        body,
        position: end.position as u64,
        diff_hunk,
        in_reply_to_id: None,
    })
}
