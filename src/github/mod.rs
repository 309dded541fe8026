//! The only module that knows octocrab: App auth, pull requests, files, reviews, comments.
//!
//! Installation clients are cached per installation: octocrab keeps the installation token
//! inside the client and renews it shortly before it expires, so the cache is what keeps us
//! from minting a token per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::diff::Side;

/// A GitHub call that failed.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub answered {status}: {message}{}", errors_suffix(.errors))]
    Status {
        status: u16,
        message: String,
        errors: Vec<String>,
    },
    #[error("GitHub request failed: {0}")]
    Transport(String),
    #[error("GitHub client setup failed: {0}")]
    Setup(String),
}

fn errors_suffix(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(" ({})", errors.join("; "))
    }
}

impl GitHubError {
    /// Worth retrying later: server errors, rate limits, network trouble.
    pub fn is_transient(&self) -> bool {
        match self {
            GitHubError::Status {
                status, message, ..
            } => {
                *status >= 500
                    || *status == 429
                    // Secondary rate limits answer 403 with this in the message.
                    || (*status == 403 && message.to_ascii_lowercase().contains("rate limit"))
            }
            GitHubError::Transport(_) => true,
            GitHubError::Setup(_) => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<octocrab::Error> for GitHubError {
    fn from(e: octocrab::Error) -> Self {
        match e {
            octocrab::Error::GitHub { source, .. } => GitHubError::Status {
                status: source.status_code.as_u16(),
                message: source.message.clone(),
                errors: source
                    .errors
                    .unwrap_or_default()
                    .into_iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
            },
            other => GitHubError::Transport(other.to_string()),
        }
    }
}

/// `owner/name`, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName {
    owner: String,
    name: String,
}

impl RepoName {
    pub fn owner(&self) -> &str {
        &self.owner
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl TryFrom<String> for RepoName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for RepoName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('/') {
            Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => Ok(RepoName {
                owner: o.to_string(),
                name: n.to_string(),
            }),
            _ => Err(format!("`{s}` is not an owner/name repository")),
        }
    }
}

impl From<RepoName> for String {
    fn from(r: RepoName) -> String {
        r.to_string()
    }
}

impl std::fmt::Display for RepoName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

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
    event: &'static str,
    pub comments: Vec<ReviewComment>,
}

impl NewReview {
    pub fn comment(commit_id: String, body: String, comments: Vec<ReviewComment>) -> Self {
        NewReview {
            commit_id,
            body,
            event: "COMMENT",
            comments,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct IssueComment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
}

/// Authenticated as the App; hands out per-installation clients.
#[derive(Clone)]
pub struct GitHub {
    app: Octocrab,
    installations: Arc<Mutex<HashMap<u64, Arc<Octocrab>>>>,
    bot_login: Arc<tokio::sync::OnceCell<String>>,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub").finish_non_exhaustive()
    }
}

impl GitHub {
    pub fn new(config: &Config) -> Result<GitHub, GitHubError> {
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(config.private_key.expose_secret().as_bytes())
                .map_err(|e| GitHubError::Setup(format!("github.private_key: {e}")))?;
        let timeout = Duration::from_secs(config.settings.github.timeout_secs);
        let api = config
            .settings
            .github
            .api_url
            .as_str()
            .trim_end_matches('/')
            .to_string();
        let app = Octocrab::builder()
            .base_uri(api)
            .map_err(|e| GitHubError::Setup(format!("github.api_url: {e}")))?
            .app(AppId(config.app_id), key)
            .set_connect_timeout(Some(timeout))
            .set_read_timeout(Some(timeout))
            .set_write_timeout(Some(timeout))
            .build()
            .map_err(|e| GitHubError::Setup(e.to_string()))?;
        Ok(GitHub {
            app,
            installations: Arc::new(Mutex::new(HashMap::new())),
            bot_login: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// The login Critic's reviews and comments appear under (`SLUG[bot]`), asked once.
    pub async fn bot_login(&self) -> Result<String, GitHubError> {
        self.bot_login
            .get_or_try_init(|| async {
                let app: serde_json::Value = self.app.get("/app", None::<&()>).await?;
                let slug = app["slug"]
                    .as_str()
                    .ok_or_else(|| GitHubError::Transport("GET /app returned no slug".into()))?;
                Ok::<_, GitHubError>(format!("{slug}[bot]"))
            })
            .await
            .cloned()
    }

    /// A client acting as the given installation.
    pub fn installation(&self, id: u64) -> Result<Installation, GitHubError> {
        let mut cache = self
            .installations
            .lock()
            .map_err(|_| GitHubError::Setup("installation cache poisoned".into()))?;
        if let Some(crab) = cache.get(&id) {
            return Ok(Installation { crab: crab.clone() });
        }
        let crab = Arc::new(
            self.app
                .installation(InstallationId(id))
                .map_err(GitHubError::from)?,
        );
        cache.insert(id, crab.clone());
        Ok(Installation { crab })
    }
}

/// Calls made as one installation. Shared, not cloned: octocrab's token cache is copied
/// (not shared) when an `Octocrab` is cloned.
#[derive(Clone)]
pub struct Installation {
    crab: Arc<Octocrab>,
}

const PER_PAGE: &str = "100";
/// GitHub lists at most 3,000 files of a PR (30 pages); a bound keeps a bad `Link` from looping.
const MAX_PAGES: u32 = 100;

impl Installation {
    pub async fn pull_request(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<PullRequest, GitHubError> {
        let route = format!("/repos/{repo}/pulls/{number}");
        Ok(self.crab.get(route, None::<&()>).await?)
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

    /// Follows pagination by page number on the same route. octocrab's `all_pages` follows the
    /// `Link` URL, and drops the token when that URL's host is not api.github.com (GitHub
    /// Enterprise Server), so we keep our own route and only read whether a next page exists.
    async fn all_pages<T: serde::de::DeserializeOwned>(
        &self,
        route: &str,
    ) -> Result<Vec<T>, GitHubError> {
        let mut items = Vec::new();
        for page in 1u32.. {
            let params = [
                ("per_page", PER_PAGE.to_string()),
                ("page", page.to_string()),
            ];
            let mut got: octocrab::Page<T> = self.crab.get(route, Some(&params)).await?;
            let more = got.next.is_some() && !got.items.is_empty();
            items.append(&mut got.items);
            if !more || page >= MAX_PAGES {
                break;
            }
        }
        Ok(items)
    }

    /// A file's bytes at a commit, or None if it does not exist there. Uses the raw media
    /// type, which also serves files over the JSON API's 1 MB limit.
    pub async fn file_content(
        &self,
        repo: &RepoName,
        path: &str,
        sha: &str,
    ) -> Result<Option<Vec<u8>>, GitHubError> {
        use http_body_util::BodyExt;
        let encoded = encode_path(path);
        let response = self
            .crab
            .repos(repo.owner(), repo.name())
            .raw_file(sha.to_string(), encoded)
            .await?;
        let response = match octocrab::map_github_error(response).await {
            Ok(r) => r,
            Err(e) => {
                let e = GitHubError::from(e);
                return if e.status() == Some(404) {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| GitHubError::Transport(e.to_string()))?;
        Ok(Some(body.to_bytes().to_vec()))
    }

    /// Posts a review with its inline threads. octocrab's typed review builder cannot carry
    /// inline comments, so the JSON goes through the generic `post`.
    pub async fn create_review(
        &self,
        repo: &RepoName,
        number: u64,
        review: &NewReview,
    ) -> Result<Review, GitHubError> {
        let route = format!("/repos/{repo}/pulls/{number}/reviews");
        Ok(self.crab.post(route, Some(review)).await?)
    }

    pub async fn post_issue_comment(
        &self,
        repo: &RepoName,
        number: u64,
        body: &str,
    ) -> Result<IssueComment, GitHubError> {
        let route = format!("/repos/{repo}/issues/{number}/comments");
        Ok(self
            .crab
            .post(route, Some(&serde_json::json!({ "body": body })))
            .await?)
    }
}

/// Percent-encodes each segment of a repository path (spaces, `#`, `?`, non-ASCII) and keeps
/// the slashes between them.
fn encode_path(path: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    path.split('/')
        .map(|seg| utf8_percent_encode(seg, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(encode_path("src/a b/c#d.rs"), "src/a%20b/c%23d.rs");
        assert_eq!(encode_path("docs/é.md"), "docs/%C3%A9.md");
        assert_eq!(
            encode_path("plain/file-name_1.txt"),
            "plain/file-name_1.txt"
        );
    }

    #[test]
    fn repo_names() {
        let r: RepoName = "octo/cat".parse().expect("valid");
        assert_eq!((r.owner(), r.name()), ("octo", "cat"));
        assert!("octo".parse::<RepoName>().is_err());
        assert!("a/b/c".parse::<RepoName>().is_err());
        assert!("/b".parse::<RepoName>().is_err());
    }

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

    #[test]
    fn transient_errors() {
        let s = |status| GitHubError::Status {
            status,
            message: String::new(),
            errors: vec![],
        };
        assert!(s(502).is_transient());
        assert!(s(429).is_transient());
        assert!(!s(422).is_transient());
        let limited = GitHubError::Status {
            status: 403,
            message: "You have exceeded a secondary rate limit".into(),
            errors: vec![],
        };
        assert!(limited.is_transient());
        assert!(!s(403).is_transient());
        assert!(!s(404).is_transient());
        assert!(GitHubError::Transport("reset".into()).is_transient());
    }
}
