//! What the schema subset resolves: repository, pull request, review threads and their
//! comments, and the mutations that resolve and unresolve a thread.

use chrono::Utc;
use serde_json::{Value, json};

use super::graphql::{
    CommentView, GqlExec, GqlObj, Resolved, ThreadView, gql_connection, thread_node_id,
};
use super::graphql_parser::GqlField;
use super::shapes::{ts, user_json};
use super::world::{Pull, Repo, World};
use super::{BOT_LOGIN, HTML_BASE};

impl World {
    pub(super) fn gql_resolve(
        &mut self,
        ex: &mut GqlExec,
        obj: &GqlObj,
        f: &GqlField,
        path: &[Value],
    ) -> Resolved {
        use Resolved::{Null, Object, Objects, Scalar};
        let name = f.name.as_str();
        // Fields with arguments check them; the others take none.
        let takes_args = matches!(
            (obj, name),
            (GqlObj::Query, "repository")
                | (GqlObj::Repository(_), "pullRequest")
                | (GqlObj::PullRequest(..), "reviewThreads")
                | (GqlObj::Thread(_), "comments")
                | (
                    GqlObj::Mutation,
                    "resolveReviewThread" | "unresolveReviewThread"
                )
        );
        if !takes_args && !ex.check_args(f, &[], &[], path) {
            return Null;
        }
        match obj {
            GqlObj::Query => match name {
                "repository" => {
                    if !ex.check_args(
                        f,
                        &["owner", "name", "followRenames"],
                        &["owner", "name"],
                        path,
                    ) {
                        return Null;
                    }
                    let (Ok(Some(owner)), Ok(Some(repo_name))) = (
                        ex.string_arg(f, "owner", path),
                        ex.string_arg(f, "name", path),
                    ) else {
                        return Null;
                    };
                    let key = format!("{owner}/{repo_name}").to_ascii_lowercase();
                    match self.repos.get(&key) {
                        Some(repo) if ex.can_access(repo) => Object(GqlObj::Repository(key)),
                        _ => {
                            ex.fail(
                                path,
                                "NOT_FOUND",
                                format!("Could not resolve to a Repository with the name '{owner}/{repo_name}'."),
                            );
                            Null
                        }
                    }
                }
                _ => ex.undefined("Query", f, path),
            },
            GqlObj::Repository(key) => {
                let repo = &self.repos[key];
                match name {
                    "id" => Scalar(json!(format!("R_kgDO{:08}", repo.id))),
                    "databaseId" => Scalar(json!(repo.id)),
                    "name" => Scalar(json!(repo.full_name.split('/').nth(1))),
                    "nameWithOwner" => Scalar(json!(repo.full_name)),
                    "pullRequest" => {
                        if !ex.check_args(f, &["number"], &["number"], path) {
                            return Null;
                        }
                        let Ok(Some(number)) = ex.int_arg(f, "number", path) else {
                            return Null;
                        };
                        match u64::try_from(number)
                            .ok()
                            .filter(|n| repo.pulls.contains_key(n))
                        {
                            Some(n) => Object(GqlObj::PullRequest(key.clone(), n)),
                            None => {
                                ex.fail(
                                    path,
                                    "NOT_FOUND",
                                    format!("Could not resolve to a PullRequest with the number of {number}."),
                                );
                                Null
                            }
                        }
                    }
                    _ => ex.undefined("Repository", f, path),
                }
            }
            GqlObj::PullRequest(key, number) => {
                let repo = &self.repos[key];
                let pull = &repo.pulls[number];
                match name {
                    "id" => Scalar(json!(format!("PR_kwDO{:010}", pull.id))),
                    "number" => Scalar(json!(pull.pr.number)),
                    "title" => Scalar(json!(pull.pr.title)),
                    "state" => Scalar(json!(pull.pr.state.to_ascii_uppercase())),
                    "isDraft" => Scalar(json!(pull.pr.draft)),
                    "headRefOid" => Scalar(json!(pull.pr.head_sha)),
                    "baseRefOid" => Scalar(json!(pull.pr.base_sha)),
                    "reviewThreads" => {
                        let items = self
                            .threads_of(repo, pull)
                            .into_iter()
                            .map(GqlObj::Thread)
                            .collect();
                        gql_connection(
                            ex,
                            f,
                            path,
                            "reviewThreads",
                            "PullRequestReviewThreadConnection",
                            "PullRequestReviewThreadEdge",
                            items,
                        )
                    }
                    _ => ex.undefined("PullRequest", f, path),
                }
            }
            GqlObj::Connection {
                edge_type,
                edges,
                total,
                has_next,
                has_prev,
                ..
            } => match name {
                "totalCount" => Scalar(json!(total)),
                "nodes" => Objects(edges.iter().map(|(_, node)| node.clone()).collect()),
                "edges" => Objects(
                    edges
                        .iter()
                        .map(|(cursor, node)| GqlObj::Edge {
                            type_name: edge_type,
                            cursor: cursor.clone(),
                            node: Box::new(node.clone()),
                        })
                        .collect(),
                ),
                "pageInfo" => Object(GqlObj::PageInfo {
                    start: edges.first().map(|(c, _)| c.clone()),
                    end: edges.last().map(|(c, _)| c.clone()),
                    has_next: *has_next,
                    has_prev: *has_prev,
                }),
                _ => ex.undefined(obj.type_name(), f, path),
            },
            GqlObj::Edge { cursor, node, .. } => match name {
                "cursor" => Scalar(json!(cursor)),
                "node" => Object((**node).clone()),
                _ => ex.undefined(obj.type_name(), f, path),
            },
            GqlObj::PageInfo {
                start,
                end,
                has_next,
                has_prev,
            } => match name {
                "startCursor" => Scalar(json!(start)),
                "endCursor" => Scalar(json!(end)),
                "hasNextPage" => Scalar(json!(has_next)),
                "hasPreviousPage" => Scalar(json!(has_prev)),
                _ => ex.undefined("PageInfo", f, path),
            },
            GqlObj::Thread(t) => {
                let current = |v: Value| if t.state.outdated { Value::Null } else { v };
                let resolved = t.state.resolved_by.is_some();
                match name {
                    "id" => Scalar(json!(thread_node_id(t.root))),
                    "isResolved" | "isCollapsed" => Scalar(json!(resolved)),
                    "isOutdated" => Scalar(json!(t.state.outdated)),
                    "path" => Scalar(json!(t.path)),
                    "line" => Scalar(current(json!(t.line))),
                    "originalLine" => Scalar(json!(t.line)),
                    "startLine" => Scalar(current(json!(t.start_line))),
                    "originalStartLine" => Scalar(json!(t.start_line)),
                    "diffSide" => Scalar(json!(t.side)),
                    "startDiffSide" => Scalar(json!(t.start_side)),
                    "subjectType" => Scalar(json!("LINE")),
                    "viewerCanResolve" | "viewerCanUnresolve" | "viewerCanReply" => {
                        Scalar(json!(true))
                    }
                    "resolvedBy" => match &t.state.resolved_by {
                        Some(login) => Object(GqlObj::Actor(login.clone())),
                        None => Null,
                    },
                    "comments" => {
                        let items = t.comments.iter().cloned().map(GqlObj::Comment).collect();
                        gql_connection(
                            ex,
                            f,
                            path,
                            "comments",
                            "PullRequestReviewCommentConnection",
                            "PullRequestReviewCommentEdge",
                            items,
                        )
                    }
                    _ => ex.undefined("PullRequestReviewThread", f, path),
                }
            }
            GqlObj::Comment(c) => match name {
                "id" => Scalar(json!(format!("PRRC_kwDO{:010}", c.id))),
                "databaseId" => Scalar(json!(c.id)),
                "fullDatabaseId" => Scalar(json!(c.id.to_string())),
                "body" | "bodyText" => Scalar(json!(c.body)),
                "author" => Object(GqlObj::Actor(c.author.clone())),
                "path" => Scalar(json!(c.path)),
                "line" => Scalar(if c.outdated {
                    Value::Null
                } else {
                    json!(c.line)
                }),
                "originalLine" => Scalar(json!(c.line)),
                "outdated" => Scalar(json!(c.outdated)),
                "createdAt" | "updatedAt" | "publishedAt" => Scalar(json!(ts(c.created_at))),
                "url" => Scalar(json!(c.url)),
                "diffHunk" => Scalar(json!(c.diff_hunk)),
                "replyTo" => match &c.reply_to {
                    Some(parent) => Object(GqlObj::Comment((**parent).clone())),
                    None => Null,
                },
                _ => ex.undefined("PullRequestReviewComment", f, path),
            },
            GqlObj::Actor(login) => match name {
                "login" => Scalar(json!(login)),
                "url" => Scalar(json!(user_json(login)["html_url"])),
                "avatarUrl" => Scalar(json!(user_json(login)["avatar_url"])),
                _ => ex.undefined(obj.type_name(), f, path),
            },
            GqlObj::ThreadPayload {
                thread,
                client_mutation_id,
                ..
            } => match name {
                "thread" => Object(GqlObj::Thread(thread.clone())),
                "clientMutationId" => Scalar(client_mutation_id.clone()),
                _ => ex.undefined(obj.type_name(), f, path),
            },
            GqlObj::Mutation => match name {
                "resolveReviewThread" | "unresolveReviewThread" => {
                    self.set_thread_resolution(ex, f, path, name == "resolveReviewThread")
                }
                _ => ex.undefined("Mutation", f, path),
            },
        }
    }

    /// `resolveReviewThread` / `unresolveReviewThread(input: { threadId })`.
    fn set_thread_resolution(
        &mut self,
        ex: &mut GqlExec,
        f: &GqlField,
        path: &[Value],
        resolve: bool,
    ) -> Resolved {
        let input_type = if resolve {
            "ResolveReviewThreadInput!"
        } else {
            "UnresolveReviewThreadInput!"
        };
        if !ex.check_args(f, &["input"], &["input"], path) {
            return Resolved::Null;
        }
        let input = ex.arg(f, "input");
        let (Some(thread_id), true) = (
            input.get("threadId").and_then(Value::as_str),
            input
                .as_object()
                .is_some_and(|o| o.keys().all(|k| k == "threadId" || k == "clientMutationId")),
        ) else {
            ex.invalid(
                path,
                format!(
                    "Argument 'input' on Field '{}' has an invalid value ({input}). Expected type '{input_type}'.",
                    f.name
                ),
                json!({ "code": "argumentLiteralsIncompatible", "typeName": "Field", "argumentName": "input" }),
            );
            return Resolved::Null;
        };
        let root = thread_id
            .strip_prefix("PRRT_kwDO")
            .and_then(|n| n.parse::<u64>().ok());
        let found = root.and_then(|root| {
            self.repos.iter().find_map(|(key, repo)| {
                let number = repo.pulls.iter().find_map(|(n, p)| {
                    p.reviews
                        .iter()
                        .flat_map(|r| &r.comments)
                        .any(|c| c.id == root && c.in_reply_to_id.is_none())
                        .then_some(*n)
                })?;
                ex.can_access(repo).then(|| (key.clone(), number, root))
            })
        });
        let Some((key, number, root)) = found else {
            ex.fail(
                path,
                "NOT_FOUND",
                format!("Could not resolve to a node with the global id of '{thread_id}'."),
            );
            return Resolved::Null;
        };
        let resolved_by = resolve.then(|| BOT_LOGIN.to_owned());
        if !ex.dry_run {
            let pull = self
                .repos
                .get_mut(&key)
                .and_then(|r| r.pulls.get_mut(&number))
                .expect("found above");
            pull.threads.entry(root).or_default().resolved_by = resolved_by.clone();
            pull.updated_at = Utc::now();
        }
        let repo = &self.repos[&key];
        let mut thread = self
            .threads_of(repo, &repo.pulls[&number])
            .into_iter()
            .find(|t| t.root == root)
            .expect("thread found above");
        thread.state.resolved_by = resolved_by;
        Resolved::Object(GqlObj::ThreadPayload {
            type_name: if resolve {
                "ResolveReviewThreadPayload"
            } else {
                "UnresolveReviewThreadPayload"
            },
            thread,
            client_mutation_id: input
                .get("clientMutationId")
                .cloned()
                .unwrap_or(Value::Null),
        })
    }

    /// The PR's review threads in creation order: each root comment with its replies.
    fn threads_of(&self, repo: &Repo, pull: &Pull) -> Vec<ThreadView> {
        let mut threads: Vec<ThreadView> = Vec::new();
        for review in &pull.reviews {
            for c in &review.comments {
                let root = c.in_reply_to_id.unwrap_or(c.id);
                let state = pull.threads.get(&root).cloned().unwrap_or_default();
                let mut view = CommentView {
                    id: c.id,
                    body: c.body.clone(),
                    author: review.user_login.clone(),
                    path: c.path.clone(),
                    line: c.line,
                    outdated: state.outdated,
                    created_at: review.submitted_at.unwrap_or(pull.created_at),
                    diff_hunk: c.diff_hunk.clone(),
                    url: format!(
                        "{HTML_BASE}/{}/pull/{}#discussion_r{}",
                        repo.full_name, pull.pr.number, c.id
                    ),
                    reply_to: None,
                };
                match threads.iter_mut().find(|t| t.root == root) {
                    Some(thread) => {
                        view.reply_to = thread.comments.first().cloned().map(Box::new);
                        thread.comments.push(view);
                    }
                    None => threads.push(ThreadView {
                        root,
                        path: c.path.clone(),
                        line: c.line,
                        start_line: c.start_line,
                        side: c.side.clone(),
                        start_side: c.start_side.clone(),
                        state,
                        comments: vec![view],
                    }),
                }
            }
        }
        threads
    }
}
