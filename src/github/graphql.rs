//! The two calls only GraphQL can make (a PR's review threads with their resolution, and
//! resolving one), and the GraphQL request and answer they share.

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use super::client::MAX_PAGES;
use super::transport::{Answer, Call, Via, send_idempotent};
use super::{GitHubError, Installation, RepoName, User};
use crate::domain::PrNumber;

/// An inline review thread, as only GraphQL knows it (REST has no threads nor resolution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewThread {
    /// GraphQL node id, what [`Installation::resolve_review_thread`] takes.
    pub id: String,
    pub is_resolved: bool,
    pub is_outdated: bool,
    pub path: String,
    /// `None` when outdated.
    pub line: Option<u32>,
    /// REST ids of the thread's comments (first 100), root first.
    pub comment_ids: Vec<u64>,
    /// Login of the root comment's author; `None` for deleted accounts.
    pub first_author: Option<String>,
    /// Who resolved the thread (a pull request's author may, without write access).
    pub resolved_by: Option<String>,
}

const REVIEW_THREADS_QUERY: &str = "\
query($owner: String!, $name: String!, $number: Int!, $cursor: String) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      reviewThreads(first: 100, after: $cursor) {
        pageInfo { hasNextPage endCursor }
        nodes {
          id isResolved isOutdated path line resolvedBy { login }
          comments(first: 100) { nodes { databaseId author { login } } }
        }
      }
    }
  }
}";

const RESOLVE_THREAD_MUTATION: &str = "\
mutation($threadId: ID!) {
  resolveReviewThread(input: { threadId: $threadId }) { thread { id isResolved } }
}";

/// A GraphQL answer: `data` may come with `errors` (a partial result), which we treat as failed.
#[derive(Deserialize)]
struct GraphQlResponse<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<GraphQlErrorItem>,
}

#[derive(Deserialize)]
struct GraphQlErrorItem {
    message: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadsData {
    repository: Option<ThreadsRepository>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadsRepository {
    pull_request: Option<ThreadsPull>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadsPull {
    review_threads: Connection<ThreadNode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection<T> {
    #[serde(default)]
    page_info: Option<PageInfo>,
    nodes: Vec<Option<T>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadNode {
    id: String,
    is_resolved: bool,
    is_outdated: bool,
    path: String,
    line: Option<u32>,
    #[serde(default)]
    resolved_by: Option<User>,
    comments: Connection<ThreadCommentNode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadCommentNode {
    database_id: Option<u64>,
    author: Option<User>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResolveData {
    resolve_review_thread: Option<serde_json::Value>,
}

impl Installation {
    /// Every review thread of the PR with its resolution state, all pages.
    pub async fn review_threads(
        &self,
        repo: &RepoName,
        number: PrNumber,
    ) -> Result<Vec<ReviewThread>, GitHubError> {
        let mut threads = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let variables = json!({
                "owner": repo.owner(),
                "name": repo.name(),
                "number": number,
                "cursor": cursor,
            });
            let data: ThreadsData = self.graphql(REVIEW_THREADS_QUERY, variables).await?;
            let connection = data
                .repository
                .and_then(|r| r.pull_request)
                .ok_or_else(|| graphql_error(format!("no pull request {repo}#{number}")))?
                .review_threads;
            threads.extend(connection.nodes.into_iter().flatten().map(|t| {
                let comments: Vec<ThreadCommentNode> =
                    t.comments.nodes.into_iter().flatten().collect();
                ReviewThread {
                    id: t.id,
                    is_resolved: t.is_resolved,
                    is_outdated: t.is_outdated,
                    path: t.path,
                    line: t.line,
                    first_author: comments
                        .first()
                        .and_then(|c| c.author.as_ref())
                        .map(|a| a.login.clone()),
                    comment_ids: comments.iter().filter_map(|c| c.database_id).collect(),
                    resolved_by: t.resolved_by.map(|u| u.login),
                }
            }));
            match connection.page_info {
                Some(PageInfo {
                    has_next_page: true,
                    end_cursor: Some(next),
                }) if cursor.as_ref() != Some(&next) => cursor = Some(next),
                _ => break,
            }
        }
        Ok(threads)
    }

    /// Marks a thread resolved (idempotent on GitHub's side).
    pub async fn resolve_review_thread(&self, thread_id: &str) -> Result<(), GitHubError> {
        let data: ResolveData = self
            .graphql(RESOLVE_THREAD_MUTATION, json!({ "threadId": thread_id }))
            .await?;
        match data.resolve_review_thread {
            Some(serde_json::Value::Null) | None => Err(graphql_error(format!(
                "thread {thread_id} was not resolved"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Runs one GraphQL operation (queries and Critic's one mutation are safe to repeat);
    /// any `errors` entry fails it.
    async fn graphql<T: serde::de::DeserializeOwned>(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<T, GitHubError> {
        let payload = json!({ "query": query, "variables": variables });
        let call = Call::new(http::Method::POST, "/graphql", Some(payload));
        let parse = Answer::json::<GraphQlResponse<T>>;
        let response = match &self.owner.ghes_graphql {
            None => send_idempotent(self.via(), &call, parse).await?,
            Some(ghes) => {
                // This client is not the installation's: it gets the token from us.
                let token = self.crab.installation_token().await?;
                let mut auth =
                    http::HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                        .map_err(|e| GitHubError::Setup(format!("installation token: {e}")))?;
                auth.set_sensitive(true);
                let call = call.header(http::header::AUTHORIZATION, auth);
                send_idempotent(
                    Via {
                        crab: ghes,
                        policy: &self.owner.policy,
                        installation: self.id,
                    },
                    &call,
                    parse,
                )
                .await?
            }
        };
        if !response.errors.is_empty() {
            let (kinds, messages) = response
                .errors
                .into_iter()
                .map(|e| (e.kind.unwrap_or_default(), e.message))
                .unzip();
            return Err(GitHubError::GraphQl { kinds, messages });
        }
        response
            .data
            .ok_or_else(|| graphql_error("GraphQL answered neither data nor errors".into()))
    }
}

fn graphql_error(message: String) -> GitHubError {
    GitHubError::GraphQl {
        kinds: Vec::new(),
        messages: vec![message],
    }
}
