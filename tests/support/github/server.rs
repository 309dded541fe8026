//! The HTTP layer: the single axum handler, replies, the request context and credentials,
//! failure injection, routing (`respond`, `respond_now`, `repo_route`) and pagination.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use chrono::Utc;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use super::faults::Fault;

use super::encoding::percent_decode;
use super::world::{AuthKind, Pull, RecordedRequest, Repo, World};
use super::{DOCS, DOCS_CREATE_REVIEW, GHES_REST_PREFIX, JSON_CONTENT_TYPE, Shared};

/// A server error as GitHub's front end gives it (a 502's body is not always JSON there, but
/// it is often enough; the client must not depend on either).
fn server_error(status: u16) -> Reply {
    let message = match status {
        500 => "Internal Server Error",
        502 => "Server Error",
        503 => "Service Unavailable",
        _ => {
            "We couldn't respond to your request in time. Sorry about that. Please try resubmitting your request and contact us if the problem persists."
        }
    };
    Reply::error(status, message, DOCS)
}

/// What a route answers; turned into an HTTP response outside the lock.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: ReplyBody,
    /// Performed although the status says otherwise (a fault injected after the work).
    pub(super) performed: bool,
}

pub(super) enum ReplyBody {
    Json(Value),
    Text {
        content_type: &'static str,
        text: String,
    },
    Bytes {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
}

impl Reply {
    pub(super) fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            performed: false,
            headers: Vec::new(),
            body: ReplyBody::Json(body),
        }
    }

    pub(super) fn error(status: u16, message: &str, documentation_url: &str) -> Reply {
        Reply::json(
            status,
            json!({ "message": message, "documentation_url": documentation_url, "status": status.to_string() }),
        )
    }

    pub(super) fn error_with(
        status: u16,
        message: &str,
        errors: Value,
        documentation_url: &str,
    ) -> Reply {
        Reply::json(
            status,
            json!({ "message": message, "errors": errors, "documentation_url": documentation_url, "status": status.to_string() }),
        )
    }

    /// No body, as GitHub answers a `DELETE` (204).
    pub(super) fn empty(status: u16) -> Reply {
        Reply {
            status,
            performed: false,
            headers: Vec::new(),
            body: ReplyBody::Bytes {
                content_type: "text/plain",
                bytes: Vec::new(),
            },
        }
    }

    pub(super) fn not_found() -> Reply {
        Reply::error(404, "Not Found", DOCS)
    }

    pub(super) fn bad_credentials() -> Reply {
        Reply::error(401, "Bad credentials", DOCS)
    }

    /// A review rejected by GitHub's validation: nothing of it is stored.
    pub(super) fn unprocessable_review(error: &str) -> Reply {
        Reply::error_with(
            422,
            "Unprocessable Entity",
            json!([error]),
            DOCS_CREATE_REVIEW,
        )
    }

    fn with_header(mut self, name: &str, value: String) -> Reply {
        self.headers.push((name.to_owned(), value));
        self
    }

    /// Adds a header unless the reply already has one of that name (an injected failure's
    /// `x-ratelimit-remaining: 0` stays what the test said).
    fn with_default_header(self, name: &str, value: String) -> Reply {
        if self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            self
        } else {
            self.with_header(name, value)
        }
    }
}

/// A request as the routes see it.
pub(super) struct Ctx<'a> {
    pub(super) method: &'a Method,
    /// Path after removing [`GHES_REST_PREFIX`] and resolving `/repositories/{id}` to
    /// `/repos/{owner}/{name}`.
    pub(super) path: String,
    /// `""`, or [`GHES_REST_PREFIX`] when the request came the Enterprise Server way.
    pub(super) api_prefix: &'static str,
    pub(super) query: Vec<(String, String)>,
    pub(super) headers: &'a HeaderMap,
    pub(super) body: &'a [u8],
}

impl Ctx<'_> {
    pub(super) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn credential(&self) -> Credential {
        credential(self.headers)
    }

    /// Parses the JSON body: `Err` is GitHub's 400 for unparsable JSON.
    pub(super) fn json_body(&self) -> Result<Value, Reply> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        serde_json::from_slice(self.body)
            .map_err(|_| Reply::error(400, "Problems parsing JSON", DOCS))
    }
}

pub(super) enum Credential {
    None,
    /// JWT with the scheme used (`bearer` or `token`).
    Jwt {
        bearer: bool,
        jwt: String,
    },
    Token(String),
    Other,
}

pub(super) fn credential(headers: &HeaderMap) -> Credential {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Credential::None;
    };
    let value = value.to_str().unwrap_or("").trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim().to_owned();
    let scheme = scheme.to_ascii_lowercase();
    if (scheme != "bearer" && scheme != "token") || rest.is_empty() {
        return Credential::Other;
    }
    if rest.split('.').count() == 3 {
        Credential::Jwt {
            bearer: scheme == "bearer",
            jwt: rest,
        }
    } else {
        Credential::Token(rest)
    }
}

fn auth_kind(headers: &HeaderMap) -> AuthKind {
    match credential(headers) {
        Credential::None => AuthKind::None,
        Credential::Jwt { .. } => AuthKind::Jwt,
        Credential::Token(_) => AuthKind::InstallationToken,
        Credential::Other => AuthKind::Other,
    }
}

/// The single axum handler: all routing happens in [`World::respond`] so that recording,
/// failure injection and authentication apply uniformly to every path, known or not.
pub(super) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let reply = {
        let mut world = shared
            .world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let reply = world.respond(&parts.method, &parts.uri, &parts.headers, &body);
        let path = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| parts.uri.path().to_owned());
        world.requests.push(RecordedRequest {
            method: parts.method.as_str().to_owned(),
            path,
            status: reply.status,
            performed: reply.status < 400 || reply.performed,
            auth: auth_kind(&parts.headers),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        let used = world.requests.len() % 5000;
        reply
            .with_default_header("x-ratelimit-limit", "5000".to_owned())
            .with_default_header("x-ratelimit-used", used.to_string())
            .with_default_header("x-ratelimit-remaining", (5000 - used).to_string())
            .with_default_header(
                "x-ratelimit-reset",
                (Utc::now().timestamp() + 3600).to_string(),
            )
            .with_default_header(
                "x-ratelimit-resource",
                if parts.uri.path().ends_with("/graphql") {
                    "graphql"
                } else {
                    "core"
                }
                .to_owned(),
            )
            .with_header("x-github-api-version-selected", "2022-11-28".to_owned())
    };
    shared.version.send_modify(|v| *v += 1);
    into_response(reply)
}

fn into_response(reply: Reply) -> Response {
    let (content_type, bytes) = match reply.body {
        ReplyBody::Json(value) => (
            JSON_CONTENT_TYPE,
            serde_json::to_vec(&value).expect("JSON serialization"),
        ),
        ReplyBody::Text { content_type, text } => (content_type, text.into_bytes()),
        ReplyBody::Bytes {
            content_type,
            bytes,
        } => (content_type, bytes),
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = StatusCode::from_u16(reply.status).expect("valid status");
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    // A name given twice keeps its last value.
    let mut seen = BTreeSet::new();
    for (name, value) in reply.headers.into_iter().rev() {
        let name = name.to_ascii_lowercase();
        if !seen.insert(name.clone()) {
            continue;
        }
        let name = http::HeaderName::from_bytes(name.as_bytes()).expect("valid header name");
        headers.insert(
            name,
            HeaderValue::from_str(&value).expect("valid header value"),
        );
    }
    response
}

impl World {
    /// Answers a request, or fails it as the fault plan draws.
    fn respond(
        &mut self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Reply {
        if let Some(reply) = self.expired_token(headers) {
            return reply;
        }
        let path = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        let fault = match self.faults.as_mut() {
            Some(faults) => faults.draw(method.as_str(), path),
            None => None,
        };
        match fault {
            None => self.respond_now(method, uri, headers, body),
            Some(Fault::Before(status)) => server_error(status),
            Some(Fault::After(status)) => {
                // The answer is lost, not the write.
                let done = self.respond_now(method, uri, headers, body).status < 400;
                Reply {
                    performed: done,
                    ..server_error(status)
                }
            }
            Some(Fault::RateLimited { retry_after_secs }) => Reply::error(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            )
            .with_header("retry-after", retry_after_secs.to_string()),
        }
    }

    /// A token the fault plan says has died (GitHub still told the client it was good):
    /// GitHub's 401, and the token stays dead.
    fn expired_token(&mut self, headers: &HeaderMap) -> Option<Reply> {
        let lifetime = self.faults.as_ref()?.plan.token_dies_after?;
        let Credential::Token(token) = credential(headers) else {
            return None;
        };
        let info = self.tokens.get_mut(&token)?;
        let issued = info.expires_at - self.token_lifetime;
        let dead = Utc::now() - issued > chrono::Duration::from_std(lifetime).ok()?;
        if !dead || info.revoked {
            return None;
        }
        info.revoked = true;
        if let Some(faults) = self.faults.as_mut() {
            faults.counts.token_expired += 1;
        }
        Some(Reply::bad_credentials())
    }

    fn respond_now(
        &mut self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Reply {
        let raw_path = uri.path();
        // Enterprise Server serves REST under `/api/v3` and GraphQL at `/api/graphql`.
        let (api_prefix, rest_path) = match raw_path.strip_prefix(GHES_REST_PREFIX) {
            Some(rest) if rest.starts_with('/') => (GHES_REST_PREFIX, rest),
            _ => ("", raw_path),
        };
        let path = self.resolve_repository_id_path(rest_path);
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();

        if let Some(failure) = self.take_failure(method, raw_path, &path) {
            return failure;
        }
        // GitHub's web pages of the manifest flow (not under the REST prefix).
        if method == Method::POST {
            let web: Vec<&str> = raw_path.trim_start_matches('/').split('/').collect();
            match web.as_slice() {
                ["settings", "apps", "new"] => {
                    return self.new_app_from_manifest(None, &query, body);
                }
                ["organizations", org, "settings", "apps", "new"] => {
                    return self.new_app_from_manifest(Some(org), &query, body);
                }
                _ => {}
            }
        }
        // Real GitHub refuses requests without a User-Agent.
        if headers
            .get(http::header::USER_AGENT)
            .is_none_or(|ua| ua.as_bytes().is_empty())
        {
            return Reply {
                status: 403,
                performed: false,
                headers: Vec::new(),
                body: ReplyBody::Text {
                    content_type: "text/plain; charset=utf-8",
                    text: "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.\n".to_owned(),
                },
            };
        }

        let ctx = Ctx {
            method,
            path,
            api_prefix,
            query,
            headers,
            body,
        };
        let segments: Vec<String> = ctx
            .path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let m = method.as_str();
        let graphql_path = raw_path == "/graphql" || raw_path == "/api/graphql";
        match (m, segs.as_slice()) {
            // Not under the REST prefix: `/api/v3/graphql` is a 404 on Enterprise Server.
            ("POST", _) if graphql_path => self.graphql(&ctx),
            ("GET", ["app"]) => self.get_app(&ctx),
            // No authentication: the one-time code is the credential.
            ("POST", ["app-manifests", code, "conversions"]) => self.convert_manifest(code),
            ("POST", ["app", "installations", id, "access_tokens"]) => {
                self.create_access_token(&ctx, id)
            }
            ("GET", ["repos", owner, name, "installation"]) => {
                self.get_repo_installation(&ctx, owner, name)
            }
            // A signed download URL (the real one is on another host): no token needed.
            ("GET", ["_blobs", "job-logs", owner, name, id]) => match id.parse::<u64>() {
                Ok(id) => self.job_log_blob(&format!("{owner}/{name}"), id),
                Err(_) => Reply::not_found(),
            },
            (_, ["repos", owner, name, rest @ ..]) => {
                let full = format!("{owner}/{name}");
                if let Err(reply) = self.authorize_repo(&ctx, &full) {
                    return reply;
                }
                self.repo_route(&ctx, &full, m, rest)
            }
            _ => Reply::not_found(),
        }
    }

    /// GitHub's `Link` headers use `/repositories/{id}/...`; serve them like `/repos/{o}/{r}/...`.
    fn resolve_repository_id_path(&self, path: &str) -> String {
        let Some(rest) = path.strip_prefix("/repositories/") else {
            return path.to_owned();
        };
        let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
        match id
            .parse::<u64>()
            .ok()
            .and_then(|id| self.repos.values().find(|r| r.id == id))
        {
            Some(repo) if tail.is_empty() => format!("/repos/{}", repo.full_name),
            Some(repo) => format!("/repos/{}/{tail}", repo.full_name),
            None => path.to_owned(),
        }
    }

    fn take_failure(&mut self, method: &Method, raw_path: &str, path: &str) -> Option<Reply> {
        let index = self.failures.iter().position(|f| {
            f.remaining > 0
                && (f.method == "*" || f.method == method.as_str())
                && (raw_path.starts_with(&f.path_prefix) || path.starts_with(&f.path_prefix))
        })?;
        let failure = &mut self.failures[index];
        failure.remaining -= 1;
        let status = failure.status;
        let headers = failure.headers.clone();
        if failure.remaining == 0 {
            self.failures.remove(index);
        }
        let message = match status {
            401 => "Bad credentials",
            403 => "Forbidden",
            404 => "Not Found",
            422 => "Unprocessable Entity",
            500 => "Internal Server Error",
            502 => "Server Error",
            _ => StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error"),
        };
        let mut reply = Reply::error(status, message, DOCS);
        reply.headers = headers;
        Some(reply)
    }

    fn repo_route(&mut self, ctx: &Ctx, full: &str, method: &str, rest: &[&str]) -> Reply {
        let number = |s: &str| s.parse::<u64>().ok();
        if let Some((permission, level)) = permission_needed(method, rest)
            && !super::auth::permits(&self.granted, permission, level)
        {
            // GitHub's answer when the App lacks a permission the endpoint needs.
            return Reply::error(
                403,
                "Resource not accessible by integration",
                "https://docs.github.com/rest",
            );
        }
        match (method, rest) {
            ("GET", []) => {
                Reply::json(200, self.repo_json(&self.repos[&full.to_ascii_lowercase()]))
            }
            ("GET", ["pulls", n]) => match number(n) {
                Some(n) => self.get_pull(ctx, full, n),
                None => Reply::not_found(),
            },
            ("GET", ["pulls", n, "files"]) => {
                self.with_pull(full, n, |w, repo, pull| w.list_files(ctx, repo, pull))
            }
            ("GET", ["pulls", n, "reviews"]) => self.with_pull(full, n, |w, repo, pull| {
                let items = pull
                    .reviews
                    .iter()
                    .map(|r| w.review_json(repo, pull.pr.number, r))
                    .collect();
                w.paginate(
                    ctx,
                    repo,
                    &format!("pulls/{}/reviews", pull.pr.number),
                    items,
                )
            }),
            ("GET", ["pulls", n, "comments"]) => self.with_pull(full, n, |w, repo, pull| {
                let items = pull
                    .reviews
                    .iter()
                    .flat_map(|r| r.comments.iter().map(move |c| (r, c)))
                    .map(|(r, c)| w.review_comment_json(repo, pull, r, c))
                    .collect();
                w.paginate(
                    ctx,
                    repo,
                    &format!("pulls/{}/comments", pull.pr.number),
                    items,
                )
            }),
            ("POST", ["pulls", n, "reviews"]) => match number(n) {
                Some(n) => self.create_review(ctx, full, n),
                None => Reply::not_found(),
            },
            ("DELETE", ["pulls", n, "reviews", id]) => match (number(n), number(id)) {
                (Some(n), Some(id)) => self.delete_pending_review(full, n, id),
                _ => Reply::not_found(),
            },
            ("POST", ["pulls", n, "comments", id, "replies"]) => match (number(n), number(id)) {
                (Some(n), Some(id)) => self.reply_to_review_comment(ctx, full, n, id),
                _ => Reply::not_found(),
            },
            // "Get repository permissions for a user": `permission` is the legacy base role
            // (maintain reads as write, triage as read), `role_name` the role itself. On a
            // public repository everyone without a role can read.
            ("GET", ["collaborators", login, "permission"]) => {
                let repo = &self.repos[&full.to_ascii_lowercase()];
                let role = repo
                    .roles
                    .get(&login.to_ascii_lowercase())
                    .cloned()
                    .unwrap_or_else(|| "read".into());
                let legacy = match role.as_str() {
                    "maintain" => "write",
                    "triage" => "read",
                    other => other,
                };
                let mut user = super::shapes::user_json(login);
                user["permissions"] = serde_json::json!({
                    "admin": role == "admin",
                    "maintain": matches!(role.as_str(), "admin" | "maintain"),
                    "push": matches!(role.as_str(), "admin" | "maintain" | "write"),
                    "triage": role != "read",
                    "pull": true
                });
                user["role_name"] = serde_json::json!(role);
                Reply::json(
                    200,
                    serde_json::json!({"permission": legacy, "role_name": role, "user": user}),
                )
            }
            ("POST", ["check-runs"]) => self.create_check_run(ctx, full),
            ("PATCH", ["check-runs", id]) => match number(id) {
                Some(id) => self.update_check_run(ctx, full, id),
                None => Reply::not_found(),
            },
            ("GET", ["commits", git_ref, "check-runs"]) => self.list_check_runs(ctx, full, git_ref),
            ("GET", ["check-runs", id]) => {
                let repo = &self.repos[&full.to_ascii_lowercase()];
                match repo.check_runs.iter().find(|r| Some(r.id) == number(id)) {
                    Some(run) => Reply::json(200, self.check_run_json(repo, run)),
                    None => Reply::not_found(),
                }
            }
            ("GET", ["compare", spec @ ..]) if !spec.is_empty() => {
                self.compare(full, &spec.join("/"))
            }
            ("GET", ["git", "commits", sha]) => self.get_git_commit(full, sha),
            ("POST", ["git", "trees"]) => self.create_git_tree(ctx, full),
            ("POST", ["git", "commits"]) => self.create_git_commit(ctx, full),
            ("POST", ["git", "refs"]) => self.create_git_ref(ctx, full),
            ("PATCH", ["git", "refs", name @ ..]) if !name.is_empty() => {
                self.update_git_ref(ctx, full, &name.join("/"))
            }
            ("DELETE", ["git", "refs", name @ ..]) if !name.is_empty() => {
                self.delete_git_ref(full, &name.join("/"))
            }
            ("GET", ["commits", git_ref, "status"]) => self.combined_status(full, git_ref),
            ("GET", ["git", "ref", name @ ..]) if !name.is_empty() => {
                self.get_git_ref(full, &name.join("/"))
            }
            ("GET", ["check-runs", id, "annotations"]) => match number(id) {
                Some(id) => self.list_annotations(ctx, full, id),
                None => Reply::not_found(),
            },
            ("GET", ["actions", "jobs", id, "logs"]) => match number(id) {
                Some(id) => self.job_logs(full, id),
                None => Reply::not_found(),
            },
            ("GET", ["git", "trees", sha @ ..]) if !sha.is_empty() => {
                self.get_tree(ctx, full, &sha.join("/"))
            }
            ("GET", ["issues", n, "comments"]) => self.with_pull(full, n, |w, repo, pull| {
                let items = pull
                    .issue_comments
                    .iter()
                    .map(|c| w.issue_comment_json(repo, pull.pr.number, c))
                    .collect();
                w.paginate(
                    ctx,
                    repo,
                    &format!("issues/{}/comments", pull.pr.number),
                    items,
                )
            }),
            ("POST", ["issues", n, "comments"]) => match number(n) {
                Some(n) => self.create_issue_comment(ctx, full, n),
                None => Reply::not_found(),
            },
            // GitHub accepts POST wherever it accepts PATCH (octocrab's `update_comment` uses POST).
            ("PATCH" | "POST", ["issues", "comments", id]) => match number(id) {
                Some(id) => self.update_issue_comment(ctx, full, id),
                None => Reply::not_found(),
            },
            ("POST", ["issues", "comments", id, "reactions"]) => match number(id) {
                Some(id) => self.add_reaction(ctx, full, id),
                None => Reply::not_found(),
            },
            // "List reactions for a pull request review comment": who reacted and how, oldest
            // first, filtered by `content`, paginated; 404 for a comment that does not exist.
            ("GET", ["pulls", "comments", id, "reactions"]) => {
                let repo = &self.repos[&full.to_ascii_lowercase()];
                let Some(id) = number(id) else {
                    return Reply::not_found();
                };
                let exists = repo
                    .pulls
                    .values()
                    .flat_map(|p| p.reviews.iter())
                    .flat_map(|r| r.comments.iter())
                    .any(|c| c.id == id);
                if !exists {
                    return Reply::not_found();
                }
                let only = ctx.query("content");
                let items = repo
                    .review_reactions
                    .iter()
                    .enumerate()
                    .filter(|(_, (c, content, _))| {
                        *c == id && only.is_none_or(|o| o == content.as_str())
                    })
                    .map(|(i, (_, content, login))| {
                        serde_json::json!({
                            "id": 9_000_000 + i,
                            "node_id": format!("REA_{i}"),
                            "user": super::shapes::user_json(login),
                            "content": content,
                            "created_at": "2024-01-01T00:00:00Z"
                        })
                    })
                    .collect();
                self.paginate(ctx, repo, &format!("pulls/comments/{id}/reactions"), items)
            }
            ("GET", ["contents", path @ ..]) if !path.is_empty() => {
                self.get_content(ctx, full, &path.join("/"))
            }
            _ => Reply::not_found(),
        }
    }

    /// Runs a read-only route on an existing PR, 404 otherwise.
    fn with_pull(
        &self,
        full: &str,
        n: &str,
        f: impl FnOnce(&World, &Repo, &Pull) -> Reply,
    ) -> Reply {
        let repo = &self.repos[&full.to_ascii_lowercase()];
        match n.parse::<u64>().ok().and_then(|n| repo.pulls.get(&n)) {
            Some(pull) => f(self, repo, pull),
            None => Reply::not_found(),
        }
    }

    /// Serves one page of `items` with GitHub's `per_page`/`page` rules and `Link` header.
    pub(super) fn paginate(
        &self,
        ctx: &Ctx,
        repo: &Repo,
        rest_path: &str,
        items: Vec<Value>,
    ) -> Reply {
        let parse = |name: &str, default: usize| {
            ctx.query(name)
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or(default)
        };
        let per_page = parse("per_page", 30).min(100);
        let page = parse("page", 1);
        let last = items.len().div_ceil(per_page).max(1);
        let start = (page - 1).saturating_mul(per_page).min(items.len());
        let end = (start + per_page).min(items.len());
        let page_items: Vec<Value> = items[start..end].to_vec();

        let link_to = |p: usize| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in ctx.query.iter().filter(|(k, _)| k != "page") {
                query.append_pair(k, v);
            }
            query.append_pair("page", &p.to_string());
            let origin = if self.relative_links {
                ""
            } else {
                self.url.as_str()
            };
            format!(
                "{origin}{}/repositories/{}/{rest_path}?{}",
                ctx.api_prefix,
                repo.id,
                query.finish()
            )
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(format!("<{}>; rel=\"prev\"", link_to(page - 1)));
        }
        if page < last {
            links.push(format!("<{}>; rel=\"next\"", link_to(page + 1)));
            links.push(format!("<{}>; rel=\"last\"", link_to(last)));
        }
        if page > 1 {
            links.push(format!("<{}>; rel=\"first\"", link_to(1)));
        }
        let reply = Reply::json(200, Value::Array(page_items));
        if links.is_empty() {
            reply
        } else {
            reply.with_header("link", links.join(", "))
        }
    }
}

/// The permission (and level) an endpoint needs beyond what every Critic token has, for the
/// endpoints whose permission Critic's manifest does not grant.
fn permission_needed(method: &str, rest: &[&str]) -> Option<(&'static str, &'static str)> {
    match (method, rest) {
        ("POST" | "PATCH" | "DELETE", ["git", ..]) => Some(("contents", "write")),
        ("GET", ["commits", _, "status"]) => Some(("statuses", "read")),
        ("GET", ["actions", ..]) => Some(("actions", "read")),
        _ => None,
    }
}
