//! Check runs: create, update, get and list for a ref, validated like GitHub's schema.

use std::collections::BTreeSet;

use chrono::Utc;
use serde_json::{Value, json};

use super::auth::token_permissions;
use super::contents::ref_candidates;
use super::server::{Ctx, Reply};
use super::shapes::{ts, user_json};
use super::world::{CheckRun, CheckRunOutput, Repo, World};
use super::{
    APP_ID, APP_SLUG, DOCS_CHECK_RUNS, GITHUB_ACTIONS_APP_ID, HTML_BASE, MAX_CHECK_OUTPUT_CHARS,
};

impl World {
    /// `GET /repos/{o}/{r}/commits/{ref}/check-runs`: the runs on a commit (a SHA or a
    /// branch name), filtered by `check_name`, `status` and `app_id`; `filter=latest` (the
    /// default) keeps only the newest run of each name; newest first, paginated by
    /// `per_page` (at most 100) and `page`.
    pub(super) fn list_check_runs(&self, ctx: &Ctx, full: &str, git_ref: &str) -> Reply {
        let doc = format!("{DOCS_CHECK_RUNS}#list-check-runs-for-a-git-reference");
        let repo = &self.repos[&full.to_ascii_lowercase()];
        let shas = ref_candidates(repo, git_ref);
        if !shas.iter().any(|sha| self.knows_commit(repo, sha)) {
            return Reply::error(422, &format!("No commit found for SHA: {git_ref}"), &doc);
        }
        let filter = ctx.query("filter").unwrap_or("latest");
        if !["latest", "all"].contains(&filter) {
            return Reply::error(422, "Invalid filter", &doc);
        }
        let app = ctx.query("app_id").map(|id| id.parse::<u64>().ok());
        let mut runs: Vec<&CheckRun> = repo
            .check_runs
            .iter()
            .filter(|r| shas.contains(&r.head_sha))
            .filter(|r| app.is_none_or(|id| id == Some(r.app_id)))
            .filter(|r| ctx.query("check_name").is_none_or(|n| r.name == n))
            .filter(|r| ctx.query("status").is_none_or(|st| r.status == st))
            .collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.id));
        if filter == "latest" {
            let mut seen = BTreeSet::new();
            runs.retain(|r| seen.insert(r.name.clone()));
        }
        let per_page = ctx
            .query("per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(30)
            .min(100);
        let page = ctx
            .query("page")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(1);
        let total = runs.len();
        let items: Vec<Value> = runs
            .into_iter()
            .skip((page - 1).saturating_mul(per_page))
            .take(per_page)
            .map(|r| self.check_run_json(repo, r))
            .collect();
        Reply::json(200, json!({ "total_count": total, "check_runs": items }))
    }

    pub(super) fn create_check_run(&mut self, ctx: &Ctx, full: &str) -> Reply {
        let key = full.to_ascii_lowercase();
        let doc = format!("{DOCS_CHECK_RUNS}#create-a-check-run");
        let body = match ctx.json_body() {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let input = match check_run_input(&body, true, &doc) {
            Ok(input) => input,
            Err(reply) => return reply,
        };
        let head_sha = input.head_sha.clone().unwrap_or_default();
        if !self.knows_commit(&self.repos[&key], &head_sha) {
            return Reply::error(422, &format!("No commit found for SHA: {head_sha}"), &doc);
        }
        let now = Utc::now();
        let id = self.next_id();
        let status = input.status.clone().unwrap_or_else(|| "queued".to_owned());
        let run = CheckRun {
            id,
            app_id: APP_ID,
            name: input.name.clone().unwrap_or_default(),
            head_sha,
            completed_at: (status == "completed").then_some(now),
            status,
            conclusion: input.conclusion.clone(),
            external_id: input.external_id.clone(),
            details_url: input.details_url.clone(),
            output: input.output.clone(),
            started_at: now,
            annotations: Vec::new(),
            log: None,
        };
        let repo = self.repos.get_mut(&key).expect("repo");
        repo.check_runs.push(run.clone());
        Reply::json(201, self.check_run_json(&self.repos[&key], &run))
    }

    pub(super) fn update_check_run(&mut self, ctx: &Ctx, full: &str, id: u64) -> Reply {
        let key = full.to_ascii_lowercase();
        let doc = format!("{DOCS_CHECK_RUNS}#update-a-check-run");
        if !self.repos[&key].check_runs.iter().any(|r| r.id == id) {
            return Reply::error(404, "Not Found", &doc);
        }
        let body = match ctx.json_body() {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let input = match check_run_input(&body, false, &doc) {
            Ok(input) => input,
            Err(reply) => return reply,
        };
        let repo = self.repos.get_mut(&key).expect("repo");
        let run = repo
            .check_runs
            .iter_mut()
            .find(|r| r.id == id)
            .expect("run checked above");
        if let Some(name) = input.name {
            run.name = name;
        }
        if let Some(status) = input.status {
            run.completed_at = (status == "completed").then(Utc::now);
            if status != "completed" {
                run.conclusion = None;
            }
            run.status = status;
        }
        if input.conclusion.is_some() {
            run.conclusion = input.conclusion;
        }
        if input.external_id.is_some() {
            run.external_id = input.external_id;
        }
        if input.details_url.is_some() {
            run.details_url = input.details_url;
        }
        if input.output.is_some() {
            run.output = input.output;
        }
        let run = run.clone();
        Reply::json(200, self.check_run_json(&self.repos[&key], &run))
    }

    /// Commits the repo knows of: PR heads (old ones too) and bases, refs contents were stored
    /// under, and the ends of configured comparisons.
    fn knows_commit(&self, repo: &Repo, sha: &str) -> bool {
        repo.pulls.values().any(|p| {
            p.pr.head_sha == sha
                || p.pr.base_sha == sha
                || p.previous_heads.iter().any(|h| h == sha)
        }) || repo.contents.keys().any(|(r, _)| r == sha)
            || repo.compares.keys().any(|(b, h)| b == sha || h == sha)
    }

    pub(super) fn check_run_json(&self, repo: &Repo, run: &CheckRun) -> Value {
        let full = &repo.full_name;
        let api = format!("{}/repos/{full}", self.url);
        let html = format!("{HTML_BASE}/{full}/runs/{}", run.id);
        let pull_requests: Vec<Value> = repo
            .pulls
            .values()
            .filter(|p| p.pr.head_sha == run.head_sha && p.pr.state == "open")
            .map(|p| {
                let repo_ref = json!({ "id": repo.id, "url": api, "name": full.split('/').nth(1) });
                json!({
                    "url": format!("{api}/pulls/{}", p.pr.number),
                    "id": p.id,
                    "number": p.pr.number,
                    "head": { "ref": p.pr.head_ref, "sha": p.pr.head_sha, "repo": repo_ref },
                    "base": { "ref": p.pr.base_ref, "sha": p.pr.base_sha, "repo": repo_ref },
                })
            })
            .collect();
        let output = json!({
            "title": run.output.as_ref().map(|o| o.title.clone()),
            "summary": run.output.as_ref().map(|o| o.summary.clone()),
            "text": run.output.as_ref().and_then(|o| o.text.clone()),
            "annotations_count": run.annotations.len(),
            "annotations_url": format!("{api}/check-runs/{}/annotations", run.id),
        });
        let (slug, name) = match run.app_id {
            APP_ID => (APP_SLUG.to_owned(), "Critic".to_owned()),
            GITHUB_ACTIONS_APP_ID => ("github-actions".to_owned(), "GitHub Actions".to_owned()),
            other => (format!("ci-app-{other}"), format!("CI App {other}")),
        };
        let mut app = json!({
            "id": run.app_id,
            "slug": slug,
            "node_id": format!("A_{}", run.app_id),
            "name": name,
            "owner": user_json("critic-org"),
            "html_url": format!("{HTML_BASE}/apps/{slug}"),
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
        });
        app["permissions"] = token_permissions(&self.granted);
        let mut out = json!({
            "id": run.id,
            "node_id": format!("CR_kwDO{:010}", run.id),
            "head_sha": run.head_sha,
            "external_id": run.external_id.clone().unwrap_or_default(),
            "url": format!("{api}/check-runs/{}", run.id),
            "html_url": html,
            "details_url": run.details_url.clone().unwrap_or_else(|| format!("{HTML_BASE}/apps/{APP_SLUG}")),
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": ts(run.started_at),
            "completed_at": run.completed_at.map(ts),
            "name": run.name,
            "check_suite": { "id": repo.id * 1000 + 1 },
            "pull_requests": pull_requests,
        });
        out["output"] = output;
        out["app"] = app;
        out
    }
}

/// A check run create/update body, validated like GitHub's schema.
struct CheckRunInput {
    name: Option<String>,
    head_sha: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    external_id: Option<String>,
    details_url: Option<String>,
    output: Option<CheckRunOutput>,
}

/// Checks a check run body: required fields (on create), string types, the status and
/// conclusion enums, "completed needs a conclusion" (a conclusion implies completed), and the
/// output's required title/summary and 65 535-character limits.
fn check_run_input(body: &Value, create: bool, doc: &str) -> Result<CheckRunInput, Reply> {
    let invalid = |detail: &str| Reply::error(422, &format!("Invalid request.\n\n{detail}"), doc);
    let Value::Object(map) = body else {
        return Err(invalid(&format!("{body} is not an object.")));
    };
    let string_in =
        |map: &serde_json::Map<String, Value>, field: &str, required: bool| match map.get(field) {
            None | Some(Value::Null) if required => {
                Err(invalid(&format!("\"{field}\" wasn't supplied.")))
            }
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(&format!(
                "For 'properties/{field}', {other} is not a string."
            ))),
        };
    let name = string_in(map, "name", create)?;
    let head_sha = if create {
        string_in(map, "head_sha", true)?
    } else {
        None
    };
    if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(Reply::error_with(
            422,
            "Validation Failed",
            json!([{ "resource": "CheckRun", "code": "missing_field", "field": "name" }]),
            doc,
        ));
    }
    let mut status = string_in(map, "status", false)?;
    match status.as_deref() {
        None | Some("queued" | "in_progress" | "completed") => {}
        Some("waiting" | "requested" | "pending") => {
            return Err(invalid(
                "Only GitHub Actions can set a status of waiting, pending, or requested.",
            ));
        }
        Some(other) => {
            return Err(invalid(&format!(
                "For 'properties/status', \"{other}\" is not a member of enum."
            )));
        }
    }
    let conclusion = string_in(map, "conclusion", false)?;
    match conclusion.as_deref() {
        Some(
            "action_required" | "cancelled" | "failure" | "neutral" | "success" | "skipped"
            | "timed_out",
        ) => status = Some("completed".to_owned()),
        Some("stale") => {
            return Err(invalid(
                "You cannot change a check run conclusion to stale, only GitHub can set this.",
            ));
        }
        Some(other) => {
            return Err(invalid(&format!(
                "For 'properties/conclusion', \"{other}\" is not a member of enum."
            )));
        }
        None => {
            let completed_at = map.get("completed_at").is_some_and(|v| !v.is_null());
            if status.as_deref() == Some("completed") || completed_at {
                return Err(invalid("\"conclusion\" wasn't supplied."));
            }
        }
    }
    let output = match map.get("output") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => {
            let title = string_in(o, "title", true)?.unwrap_or_default();
            let summary = string_in(o, "summary", true)?.unwrap_or_default();
            let text = string_in(o, "text", false)?;
            for long in [Some(&summary), text.as_ref()].into_iter().flatten() {
                let n = long.chars().count();
                if n > MAX_CHECK_OUTPUT_CHARS {
                    return Err(invalid(&format!(
                        "Only {MAX_CHECK_OUTPUT_CHARS} characters are allowed; {n} were supplied."
                    )));
                }
            }
            Some(CheckRunOutput {
                title,
                summary,
                text,
            })
        }
        Some(other) => {
            return Err(invalid(&format!(
                "For 'properties/output', {other} is not an object."
            )));
        }
    };
    Ok(CheckRunInput {
        name,
        head_sha,
        status,
        conclusion,
        external_id: string_in(map, "external_id", false)?,
        details_url: string_in(map, "details_url", false)?,
        output,
    })
}

impl World {
    /// `GET /repos/{o}/{r}/check-runs/{id}/annotations`: the run's annotations, paginated
    /// like GitHub's lists (`per_page`, `page`, a `Link` header).
    pub(super) fn list_annotations(&self, ctx: &Ctx, full: &str, id: u64) -> Reply {
        let doc = format!("{DOCS_CHECK_RUNS}#list-check-run-annotations");
        let repo = &self.repos[&full.to_ascii_lowercase()];
        let Some(run) = repo.check_runs.iter().find(|r| r.id == id) else {
            return Reply::error(404, "Not Found", &doc);
        };
        let items: Vec<Value> = run
            .annotations
            .iter()
            .map(|a| {
                json!({
                    "path": a.path, "start_line": a.line, "end_line": a.line,
                    "start_column": null, "end_column": null,
                    "annotation_level": a.level, "title": null, "message": a.message,
                    "raw_details": null, "blob_href": format!("{HTML_BASE}/{full}/blob/{}/{}", run.head_sha, a.path),
                })
            })
            .collect();
        self.paginate(ctx, repo, &format!("check-runs/{id}/annotations"), items)
    }

    /// `GET /repos/{o}/{r}/actions/jobs/{id}/logs`: GitHub answers `302 Found` with a
    /// short-lived download URL on another host (here, a path of this server that needs no
    /// token, as the real URL is signed). A job's id is its check run's id.
    pub(super) fn job_logs(&self, full: &str, id: u64) -> Reply {
        let doc = "https://docs.github.com/rest/actions/workflow-jobs#download-job-logs-for-a-workflow-run";
        let repo = &self.repos[&full.to_ascii_lowercase()];
        let found = repo
            .check_runs
            .iter()
            .find(|r| r.id == id && r.app_id == GITHUB_ACTIONS_APP_ID);
        if found.is_none_or(|r| r.log.is_none()) {
            return Reply::error(404, "Not Found", doc);
        }
        let mut reply = Reply::empty(302);
        reply.headers.push((
            "location".to_owned(),
            format!("{}/_blobs/job-logs/{full}/{id}", self.url),
        ));
        reply
    }

    /// The download a job-log redirect points at: plain text.
    pub(super) fn job_log_blob(&self, full: &str, id: u64) -> Reply {
        let log = self
            .repos
            .get(&full.to_ascii_lowercase())
            .and_then(|repo| repo.check_runs.iter().find(|r| r.id == id))
            .and_then(|r| r.log.clone());
        match log {
            Some(text) => Reply {
                status: 200,
                performed: false,
                headers: Vec::new(),
                body: super::server::ReplyBody::Text {
                    content_type: "text/plain; charset=utf-8",
                    text,
                },
            },
            None => Reply::error(
                404,
                "BlobNotFound",
                "https://learn.microsoft.com/rest/api/storageservices",
            ),
        }
    }
}
