//! Pull requests: `GET pulls/{n}` (JSON or diff), the files list, and their JSON shapes.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::encoding::{encode_path, git_blob_sha, sha1_hex};
use super::server::{Ctx, Reply, ReplyBody};
use super::shapes::{ts, user_json};
use super::world::{Pull, PullFile, Repo, World};
use super::{HTML_BASE, MAX_PULL_FILES};

impl World {
    pub(super) fn get_pull(&self, ctx: &Ctx, full: &str, number: u64) -> Reply {
        let repo = &self.repos[&full.to_ascii_lowercase()];
        let Some(pull) = repo.pulls.get(&number) else {
            return Reply::error(
                404,
                "Not Found",
                "https://docs.github.com/rest/pulls/pulls#get-a-pull-request",
            );
        };
        let accept = ctx
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.contains("vnd.github.diff") || accept.contains("vnd.github.v3.diff") {
            return self.pull_diff(pull);
        }
        Reply::json(200, self.pull_json(repo, pull))
    }

    /// `Accept: application/vnd.github.diff`: the PR as a unified diff, rebuilt from its files.
    /// Like GitHub, too-large diffs get 406 (the app must fall back to the files API).
    fn pull_diff(&self, pull: &Pull) -> Reply {
        let lines: u64 = pull.files.iter().map(|f| f.changes).sum();
        if pull.files.len() > 300 || lines > 20_000 {
            let (what, limit) = if pull.files.len() > 300 {
                ("files", 300)
            } else {
                ("lines", 20_000)
            };
            return Reply::error_with(
                406,
                &format!(
                    "Sorry, the diff exceeded the maximum number of {what} ({limit}). Consider using 'List pull requests files' API or locally cloning the repository instead."
                ),
                json!([{ "resource": "PullRequest", "field": "diff", "code": "too_large" }]),
                "https://docs.github.com/rest/pulls/pulls#list-pull-requests-files",
            );
        }
        let mut text = String::new();
        for f in &pull.files {
            let old = f.previous_filename.as_deref().unwrap_or(&f.filename);
            let _ = writeln!(text, "diff --git a/{old} b/{}", f.filename);
            match f.status.as_str() {
                "added" => text.push_str("new file mode 100644\n"),
                "removed" => text.push_str("deleted file mode 100644\n"),
                "renamed" => {
                    let _ = write!(text, "rename from {old}\nrename to {}\n", f.filename);
                }
                "copied" => {
                    let _ = write!(text, "copy from {old}\ncopy to {}\n", f.filename);
                }
                _ => {}
            }
            let from = if f.status == "added" {
                "/dev/null".to_owned()
            } else {
                format!("a/{old}")
            };
            let to = if f.status == "removed" {
                "/dev/null".to_owned()
            } else {
                format!("b/{}", f.filename)
            };
            match &f.patch {
                Some(patch) => {
                    let _ = write!(text, "--- {from}\n+++ {to}\n{patch}\n");
                }
                None if f.status == "renamed" || f.status == "copied" || f.status == "changed" => {}
                None => {
                    let _ = writeln!(text, "Binary files {from} and {to} differ");
                }
            }
        }
        Reply {
            status: 200,
            performed: false,
            headers: Vec::new(),
            body: ReplyBody::Text {
                content_type: "application/vnd.github.diff; charset=utf-8",
                text,
            },
        }
    }

    pub(super) fn list_files(&self, ctx: &Ctx, repo: &Repo, pull: &Pull) -> Reply {
        let items = pull
            .files
            .iter()
            .take(MAX_PULL_FILES)
            .map(|f| self.file_json(repo, pull, f))
            .collect();
        self.paginate(ctx, repo, &format!("pulls/{}/files", pull.pr.number), items)
    }

    fn pull_json(&self, repo: &Repo, pull: &Pull) -> Value {
        let pr = &pull.pr;
        let full = &repo.full_name;
        let owner = full.split('/').next().expect("owner");
        let n = pr.number;
        let api = format!("{}/repos/{full}", self.url);
        let html = format!("{HTML_BASE}/{full}/pull/{n}");
        let repo_json = self.repo_json(repo);
        let branch = |git_ref: &str, sha: &str| json!({ "label": format!("{owner}:{git_ref}"), "ref": git_ref, "sha": sha, "user": user_json(owner), "repo": repo_json });
        let head_branch = |git_ref: &str, sha: &str| match &pull.head_fork {
            None => branch(git_ref, sha),
            Some(fork) => {
                let fork_owner = fork.split('/').next().unwrap_or(fork);
                let mut fork_repo = repo_json.clone();
                fork_repo["full_name"] = json!(fork);
                fork_repo["name"] = json!(fork.split('/').nth(1).unwrap_or(fork));
                fork_repo["owner"] = user_json(fork_owner);
                fork_repo["fork"] = json!(true);
                fork_repo["id"] = json!(repo.id + 500_000);
                json!({ "label": format!("{fork_owner}:{git_ref}"), "ref": git_ref, "sha": sha, "user": user_json(fork_owner), "repo": fork_repo })
            }
        };
        let review_comments: usize = pull.reviews.iter().map(|r| r.comments.len()).sum();
        // Built in parts: one `json!` for the whole PR exceeds the macro recursion limit.
        let links = json!({
            "self": { "href": format!("{api}/pulls/{n}") },
            "html": { "href": html },
            "issue": { "href": format!("{api}/issues/{n}") },
            "comments": { "href": format!("{api}/issues/{n}/comments") },
            "review_comments": { "href": format!("{api}/pulls/{n}/comments") },
            "review_comment": { "href": format!("{api}/pulls/comments{{/number}}") },
            "commits": { "href": format!("{api}/pulls/{n}/commits") },
            "statuses": { "href": format!("{api}/statuses/{}", pr.head_sha) },
        });
        let mut out = json!({
            "url": format!("{api}/pulls/{n}"),
            "id": pull.id,
            "node_id": format!("PR_kwDO{:010}", pull.id),
            "html_url": html,
            "diff_url": format!("{html}.diff"),
            "patch_url": format!("{html}.patch"),
            "issue_url": format!("{api}/issues/{n}"),
            "commits_url": format!("{api}/pulls/{n}/commits"),
            "review_comments_url": format!("{api}/pulls/{n}/comments"),
            "review_comment_url": format!("{api}/pulls/comments{{/number}}"),
            "comments_url": format!("{api}/issues/{n}/comments"),
            "statuses_url": format!("{api}/statuses/{}", pr.head_sha),
            "number": n,
            "state": pr.state,
            "locked": false,
            "title": pr.title,
            "user": user_json(&pr.user_login),
            "body": if pr.body.is_empty() { Value::Null } else { json!(pr.body) },
            "labels": pr.labels.iter().enumerate().map(|(i, name)| json!({"id": 1000 + i, "name": name, "color": "ededed", "default": false})).collect::<Vec<_>>(),
            "milestone": null,
            "active_lock_reason": null,
            "created_at": ts(pull.created_at),
            "updated_at": ts(pull.updated_at),
            "closed_at": null,
            "merged_at": null,
            "merge_commit_sha": null,
            "assignee": null,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "author_association": "CONTRIBUTOR",
            "auto_merge": null,
            "draft": pr.draft,
            "merged": false,
            "mergeable": null,
            "rebaseable": null,
            "mergeable_state": "unknown",
            "merged_by": null,
            "comments": pull.issue_comments.len(),
            "review_comments": review_comments,
            "maintainer_can_modify": false,
            "commits": 1,
            "additions": pull.files.iter().map(|f| f.additions).sum::<u64>(),
            "deletions": pull.files.iter().map(|f| f.deletions).sum::<u64>(),
            "changed_files": pull.files.len(),
        });
        out["head"] = head_branch(&pr.head_ref, &pr.head_sha);
        out["base"] = branch(&pr.base_ref, &pr.base_sha);
        out["_links"] = links;
        out
    }

    fn file_json(&self, repo: &Repo, pull: &Pull, file: &PullFile) -> Value {
        self.file_json_at(repo, &pull.pr.base_sha, &pull.pr.head_sha, file)
    }

    /// A files-list entry between two commits (a PR's or a comparison's).
    pub(super) fn file_json_at(
        &self,
        repo: &Repo,
        base: &str,
        head: &str,
        file: &PullFile,
    ) -> Value {
        let full = &repo.full_name;
        let content_sha = if file.status == "removed" { base } else { head };
        let content_path = if file.status == "removed" {
            file.previous_filename.as_deref().unwrap_or(&file.filename)
        } else {
            &file.filename
        };
        // The blob SHA of the file's content when the test stored it; otherwise a stable stand-in.
        let sha = match repo
            .contents
            .get(&(content_sha.to_owned(), content_path.to_owned()))
        {
            Some(bytes) => git_blob_sha(bytes),
            None => sha1_hex(format!("{head}:{}", file.filename).as_bytes()),
        };
        let path = encode_path(&file.filename);
        let mut entry = json!({
            "sha": sha,
            "filename": file.filename,
            "status": file.status,
            "additions": file.additions,
            "deletions": file.deletions,
            "changes": file.changes,
            "blob_url": format!("{HTML_BASE}/{full}/blob/{head}/{path}"),
            "raw_url": format!("{HTML_BASE}/{full}/raw/{head}/{path}"),
            "contents_url": format!("{}/repos/{full}/contents/{path}?ref={head}", self.url),
        });
        if let Some(patch) = &file.patch {
            entry["patch"] = json!(patch);
        }
        if let Some(previous) = &file.previous_filename {
            entry["previous_filename"] = json!(previous);
        }
        entry
    }
}
