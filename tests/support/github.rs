//! A stateful, in-process fake of the parts of GitHub's REST API that Critic talks to.
//!
//! Why a hand-written fake rather than canned mocks: it keeps a world model (installations,
//! repositories, pull requests, files, contents, reviews, comments) so end-to-end tests can
//! assert on *outcomes* ("the PR got one review with these comments") instead of on request
//! scripts, and it enforces the rules real GitHub enforces and that the app gets wrong in
//! production:
//!
//! * authentication exactly like GitHub: `/app/...` needs an RS256 app JWT with sane
//!   `iat`/`exp`, `/repos/...` needs an unexpired installation token of the repo's installation;
//! * pagination with real `Link` headers (pointing at `/repositories/{id}/...` like GitHub's);
//! * review comments validated against the PR's stored patches by a parser that is independent
//!   of Critic's own diff code, and a bad comment rejects the whole review (422, nothing stored);
//! * the 65 536-character body limit, the User-Agent requirement, the 3000-file cap.
//!
//! Everything is recorded ([`FakeGitHub::requests`]), failures can be injected
//! ([`FakeGitHub::fail_next`]) and tests wait for outcomes with [`FakeGitHub::wait_for_reviews`]
//! and friends, which wake on every state change instead of sleeping.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

/// The GitHub App id the fake accepts in JWTs (`iss`).
pub const APP_ID: u64 = 4242;
/// The app's slug; its bot user is `critic[bot]`.
pub const APP_SLUG: &str = "critic";
/// Login of the user that reviews and comments made with installation tokens are attributed to.
pub const BOT_LOGIN: &str = "critic[bot]";
/// Like GitHub, the files endpoint never lists more than this many files.
pub const MAX_PULL_FILES: usize = 3000;
/// GitHub rejects comment and review bodies longer than this (in characters).
pub const MAX_BODY_CHARS: usize = 65_536;

const HTML_BASE: &str = "https://github.com";
const DOCS: &str = "https://docs.github.com/rest";
const DOCS_CREATE_REVIEW: &str =
    "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request";
const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";
const JWT_DECODE_ERROR: &str = "A JSON web token could not be decoded";

// ---------------------------------------------------------------------------------------------
// Test keys and shared data
// ---------------------------------------------------------------------------------------------

/// The test app's RSA private key (PKCS#1 PEM), the one Critic should be configured with.
pub fn app_private_key_pem() -> String {
    read_key("test-app.pem")
}

/// The public half of [`app_private_key_pem`]; the fake verifies JWTs with it.
pub fn app_public_key_pem() -> String {
    read_key("test-app.pub.pem")
}

fn read_key(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/keys")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read test key {}: {e}", path.display()))
}

/// `../shared/data` beside the checkout (see its README): real PRs, diffs and webhooks.
pub fn shared_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// The folder of one scenario, e.g. `scenario_dir("tokio-rs__axum__2be79168d8")`.
pub fn scenario_dir(name: &str) -> PathBuf {
    shared_data_dir().join("scenarios").join(name)
}

/// Names of all scenarios, sorted.
pub fn scenario_names() -> Vec<String> {
    let dir = shared_data_dir().join("scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| {
            entry
                .expect("scenario dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Signs arbitrary claims with the test app key (RS256), for tests of JWT handling.
pub fn sign_app_jwt(claims: &Value) -> String {
    sign_jwt_with(claims, &app_private_key_pem())
}

/// Signs claims with any RSA private key PEM (e.g. a wrong key).
pub fn sign_jwt_with(claims: &Value, private_key_pem: &str) -> String {
    let key =
        EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).expect("valid RSA private key PEM");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("JWT signing")
}

/// A JWT GitHub would accept right now, shaped like octocrab's (iat 60 s ago, exp in 9 min).
pub fn app_jwt() -> String {
    let now = Utc::now().timestamp();
    sign_app_jwt(&json!({ "iss": APP_ID, "iat": now - 60, "exp": now + 540 }))
}

// ---------------------------------------------------------------------------------------------
// World model types
// ---------------------------------------------------------------------------------------------

/// A pull request as the test sets it up. `Default` gives an open, non-draft PR by `octocat`
/// from `feature` into `main` with fixed SHAs, so tests only spell out what matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    pub title: String,
    /// Empty is served as `null`, like GitHub does for PRs without description.
    pub body: String,
    pub user_login: String,
    pub draft: bool,
    pub base_ref: String,
    pub base_sha: String,
    pub head_ref: String,
    pub head_sha: String,
    /// `"open"` or `"closed"`.
    pub state: String,
}

impl Default for PullRequest {
    fn default() -> Self {
        PullRequest {
            number: 1,
            title: "A pull request".to_owned(),
            body: String::new(),
            user_login: "octocat".to_owned(),
            draft: false,
            base_ref: "main".to_owned(),
            base_sha: "1111111111111111111111111111111111111111".to_owned(),
            head_ref: "feature".to_owned(),
            head_sha: "2222222222222222222222222222222222222222".to_owned(),
            state: "open".to_owned(),
        }
    }
}

/// One entry of `GET /pulls/{n}/files`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullFile {
    pub filename: String,
    /// `added`, `removed`, `modified`, `renamed`, `copied`, `changed` or `unchanged`.
    pub status: String,
    pub additions: u64,
    pub deletions: u64,
    pub changes: u64,
    /// The hunks (from the first `@@` line), no trailing newline; `None` for binary files and
    /// changes without hunks (the field is then absent from the JSON, as on GitHub).
    pub patch: Option<String>,
    pub previous_filename: Option<String>,
}

/// A submitted (or pending) review as stored by the fake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    pub id: u64,
    pub node_id: String,
    pub commit_id: String,
    /// `""` when the request had no body.
    pub body: String,
    /// The `event` as sent (`None` when absent, which makes a pending review).
    pub event: Option<String>,
    /// `COMMENTED`, `APPROVED`, `CHANGES_REQUESTED` or `PENDING`.
    pub state: String,
    pub user_login: String,
    pub submitted_at: Option<DateTime<Utc>>,
    pub comments: Vec<ReviewComment>,
}

/// An inline comment of a review, with its location resolved against the patch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewComment {
    pub id: u64,
    pub path: String,
    /// The (end) line; resolved from `position` when the request used the legacy field.
    pub line: u64,
    /// `RIGHT` or `LEFT`.
    pub side: String,
    pub start_line: Option<u64>,
    pub start_side: Option<String>,
    pub body: String,
    /// GitHub's legacy diff position of `line` (1 = the line below the first `@@`).
    pub position: u64,
    /// The hunk from its `@@` header down to the commented line, as GitHub returns it.
    pub diff_hunk: String,
}

/// A comment on the PR's conversation (issue comment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueComment {
    pub id: u64,
    pub body: String,
    pub user_login: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How a request authenticated (judged by the header's shape, not its validity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKind {
    /// No `Authorization` header.
    None,
    /// A JWT (three dot-separated parts), i.e. authenticating as the app.
    Jwt,
    /// `token X` / `Bearer X` with anything that is not a JWT.
    InstallationToken,
    /// Some other scheme (`Basic ...`, garbage).
    Other,
}

/// One request the fake answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query exactly as requested (before `/repositories/{id}` is resolved).
    pub path: String,
    pub status: u16,
    pub auth: AuthKind,
    /// The request body (lossy UTF-8), handy when a test needs to see what was sent.
    pub body: String,
}

impl RecordedRequest {
    /// The path without the query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or(&self.path)
    }
}

/// What [`FakeGitHub::load_scenario`] set up.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub full_name: String,
    pub number: u64,
    pub title: String,
    pub body: String,
    pub base_sha: String,
    pub head_sha: String,
    pub files: Vec<PullFile>,
}

#[derive(Deserialize)]
struct ScenarioMeta {
    base: String,
    head: String,
    title: String,
    #[serde(default)]
    body: String,
}

// ---------------------------------------------------------------------------------------------
// The fake
// ---------------------------------------------------------------------------------------------

/// Handle to a running fake; cheap to clone, all clones see the same world.
#[derive(Clone)]
pub struct FakeGitHub {
    shared: Arc<Shared>,
}

struct Shared {
    world: Mutex<World>,
    /// Bumped after every state change and every request so waiters re-check without polling.
    version: watch::Sender<u64>,
}

impl FakeGitHub {
    /// Binds `127.0.0.1:0` and serves the fake on the current tokio runtime.
    pub async fn start() -> FakeGitHub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake GitHub: cannot bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake GitHub: local address");
        let url = format!("http://{addr}");
        let (version, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            world: Mutex::new(World::new(url)),
            version,
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake GitHub server failed");
        });
        FakeGitHub { shared }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash): use it as the API base.
    pub fn url(&self) -> String {
        self.world().url.clone()
    }

    fn world(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock (a failed assertion elsewhere) must not hide the
        // original failure behind a poison error.
        self.shared
            .world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies a change to the world and wakes waiters.
    fn update<T>(&self, change: impl FnOnce(&mut World) -> T) -> T {
        let out = change(&mut self.world());
        self.shared.version.send_modify(|v| *v += 1);
        out
    }

    // ----- world setup -----------------------------------------------------------------------

    /// Registers an installation of the app (idempotent).
    pub fn add_installation(&self, id: u64) {
        self.update(|w| {
            w.installations.insert(id);
        });
    }

    /// Adds `owner/name` to an installation (creating the installation if needed). Re-adding a
    /// repo moves it to the given installation and keeps its PRs.
    pub fn add_repo(&self, full_name: &str, installation_id: u64) {
        assert!(
            full_name.split('/').count() == 2,
            "repo must be owner/name, got {full_name:?}"
        );
        self.update(|w| {
            w.installations.insert(installation_id);
            let key = full_name.to_ascii_lowercase();
            if let Some(repo) = w.repos.get_mut(&key) {
                repo.installation_id = installation_id;
                return;
            }
            let id = w.next_id();
            w.repos.insert(
                key,
                Repo {
                    id,
                    full_name: full_name.to_owned(),
                    installation_id,
                    pulls: BTreeMap::new(),
                    contents: HashMap::new(),
                },
            );
        });
    }

    /// Adds or replaces a PR. Replacing keeps its files, reviews and comments; a new head SHA
    /// is remembered so reviews may still name the old head as `commit_id` (a "synchronize").
    pub fn add_pull(&self, full_name: &str, pull: PullRequest) {
        self.update(|w| {
            let id = w.next_id();
            let repo = w.repo_mut(full_name);
            let now = Utc::now();
            match repo.pulls.get_mut(&pull.number) {
                Some(existing) => {
                    if existing.pr.head_sha != pull.head_sha {
                        let old = existing.pr.head_sha.clone();
                        existing.previous_heads.push(old);
                    }
                    existing.pr = pull;
                    existing.updated_at = now;
                }
                None => {
                    repo.pulls.insert(
                        pull.number,
                        Pull {
                            id,
                            pr: pull,
                            files: Vec::new(),
                            reviews: Vec::new(),
                            issue_comments: Vec::new(),
                            previous_heads: Vec::new(),
                            created_at: now,
                            updated_at: now,
                        },
                    );
                }
            }
        });
    }

    /// Sets the PR's file list (what `/files` serves and what review comments are checked against).
    pub fn set_pull_files(&self, full_name: &str, number: u64, files: Vec<PullFile>) {
        self.update(|w| w.repo_mut(full_name).pull_mut(number).files = files);
    }

    /// Stores a file's bytes at a ref (branch name or SHA) for the contents endpoint.
    pub fn put_content(
        &self,
        full_name: &str,
        git_ref: &str,
        path: &str,
        bytes: impl Into<Vec<u8>>,
    ) {
        let bytes = bytes.into();
        self.update(|w| {
            w.repo_mut(full_name)
                .contents
                .insert((git_ref.to_owned(), path.to_owned()), bytes);
        });
    }

    /// Adds a conversation comment by someone else (e.g. a human), returning its id.
    pub fn add_issue_comment(
        &self,
        full_name: &str,
        number: u64,
        user_login: &str,
        body: &str,
    ) -> u64 {
        self.update(|w| {
            let id = w.next_id();
            let now = Utc::now();
            w.repo_mut(full_name)
                .pull_mut(number)
                .issue_comments
                .push(IssueComment {
                    id,
                    body: body.to_owned(),
                    user_login: user_login.to_owned(),
                    created_at: now,
                    updated_at: now,
                });
            id
        })
    }

    /// Loads `scenarios/<name>/` (see `../shared/data/README.md`) as PR `number` of `full_name`:
    /// metadata from `meta.json`, files from `pr.diff` and contents at the base and head SHAs.
    pub fn load_scenario(
        &self,
        dir: &Path,
        full_name: &str,
        number: u64,
        installation_id: u64,
    ) -> Scenario {
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.join(name).display()))
        };
        let meta: ScenarioMeta = serde_json::from_slice(&read("meta.json"))
            .unwrap_or_else(|e| panic!("bad meta.json in {}: {e}", dir.display()));
        let diff = String::from_utf8_lossy(&read("pr.diff")).into_owned();
        let files = PullFile::from_diff(&diff);

        if !self
            .world()
            .repos
            .contains_key(&full_name.to_ascii_lowercase())
        {
            self.add_repo(full_name, installation_id);
        }
        self.add_pull(
            full_name,
            PullRequest {
                number,
                title: meta.title.clone(),
                body: meta.body.clone(),
                user_login: "octocat".to_owned(),
                draft: false,
                base_ref: "main".to_owned(),
                base_sha: meta.base.clone(),
                head_ref: format!("scenario-{number}"),
                head_sha: meta.head.clone(),
                state: "open".to_owned(),
            },
        );
        self.set_pull_files(full_name, number, files.clone());
        for (side, sha) in [("base", &meta.base), ("head", &meta.head)] {
            let root = dir.join("files").join(side);
            for (path, bytes) in read_tree(&root) {
                self.put_content(full_name, sha, &path, bytes);
            }
        }
        Scenario {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            full_name: full_name.to_owned(),
            number,
            title: meta.title,
            body: meta.body,
            base_sha: meta.base,
            head_sha: meta.head,
            files,
        }
    }

    // ----- tokens ----------------------------------------------------------------------------

    /// Number of installation tokens issued through `POST /app/installations/{id}/access_tokens`.
    pub fn tokens_issued(&self) -> usize {
        self.world().tokens_issued
    }

    /// Makes every token issued so far invalid (401 from now on), to test token refresh.
    /// Tokens issued afterwards are valid.
    pub fn expire_tokens(&self) {
        self.update(|w| w.tokens.values_mut().for_each(|t| t.revoked = true));
    }

    /// Makes `Link` headers path-only (`</repositories/1/pulls/1/files?page=2>`) instead of
    /// absolute like GitHub's. Why: octocrab 0.54's `get_page`/`all_pages` only attach the
    /// `Authorization` header to absolute URLs whose host is `api.github.com`, so against any
    /// other host (this fake, GitHub Enterprise) page 2+ go out unauthenticated and get 401.
    /// Path-only links (valid per RFC 8288) let octocrab fill in its base URI and auth.
    pub fn set_relative_links(&self, relative: bool) {
        self.update(|w| w.relative_links = relative);
    }

    /// Lifetime of tokens issued from now on (default one hour, like GitHub).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        let lifetime = chrono::Duration::from_std(lifetime).expect("token lifetime in range");
        self.update(|w| w.token_lifetime = lifetime);
    }

    /// Issues a valid token for an installation without HTTP (for tests that only want to call
    /// `/repos/...`). Not counted in [`tokens_issued`](Self::tokens_issued).
    pub fn mint_token(&self, installation_id: u64) -> String {
        self.update(|w| {
            assert!(
                w.installations.contains(&installation_id),
                "unknown installation {installation_id}"
            );
            w.issue_token(installation_id, None).0
        })
    }

    // ----- failure injection -----------------------------------------------------------------

    /// The next `times` requests whose method matches (`"*"` for any) and whose path starts with
    /// `path_prefix` get `status` with a GitHub-like JSON error, before any other processing.
    pub fn fail_next(&self, method: &str, path_prefix: &str, status: u16, times: usize) {
        self.fail_next_with_headers(method, path_prefix, status, times, &[]);
    }

    /// Like [`fail_next`](Self::fail_next) with extra response headers, e.g. `retry-after` or
    /// `x-ratelimit-remaining: 0` to imitate rate limiting.
    pub fn fail_next_with_headers(
        &self,
        method: &str,
        path_prefix: &str,
        status: u16,
        times: usize,
        headers: &[(&str, &str)],
    ) {
        assert!(
            StatusCode::from_u16(status).is_ok(),
            "invalid status {status}"
        );
        self.update(|w| {
            w.failures.push(Failure {
                method: method.to_ascii_uppercase(),
                path_prefix: path_prefix.to_owned(),
                status,
                remaining: times,
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            })
        });
    }

    // ----- inspection ------------------------------------------------------------------------

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.world().requests.clone()
    }

    /// Forgets recorded requests (e.g. after setup traffic).
    pub fn clear_requests(&self) {
        self.update(|w| w.requests.clear());
    }

    /// Reviews of a PR in creation order (empty if the PR does not exist).
    pub fn reviews(&self, full_name: &str, number: u64) -> Vec<Review> {
        self.world()
            .pull(full_name, number)
            .map(|p| p.reviews.clone())
            .unwrap_or_default()
    }

    /// Conversation comments of a PR in creation order (empty if the PR does not exist).
    pub fn issue_comments(&self, full_name: &str, number: u64) -> Vec<IssueComment> {
        self.world()
            .pull(full_name, number)
            .map(|p| p.issue_comments.clone())
            .unwrap_or_default()
    }

    /// The PR as currently stored.
    pub fn pull(&self, full_name: &str, number: u64) -> Option<PullRequest> {
        self.world().pull(full_name, number).map(|p| p.pr.clone())
    }

    // ----- waiting ---------------------------------------------------------------------------

    /// Returns the PR's reviews as soon as there are at least `count`; panics with what the fake
    /// has (reviews and recent requests) if that does not happen within `timeout`.
    pub async fn wait_for_reviews(
        &self,
        full_name: &str,
        number: u64,
        count: usize,
        timeout: Duration,
    ) -> Vec<Review> {
        let what = format!("{count} review(s) on {full_name}#{number}");
        self.wait_until(&what, timeout, |w| {
            let reviews = w
                .pull(full_name, number)
                .map(|p| p.reviews.clone())
                .unwrap_or_default();
            (reviews.len() >= count).then_some(reviews)
        })
        .await
    }

    /// Returns the PR's conversation comments as soon as there are at least `count`.
    pub async fn wait_for_issue_comments(
        &self,
        full_name: &str,
        number: u64,
        count: usize,
        timeout: Duration,
    ) -> Vec<IssueComment> {
        let what = format!("{count} issue comment(s) on {full_name}#{number}");
        self.wait_until(&what, timeout, |w| {
            let comments = w
                .pull(full_name, number)
                .map(|p| p.issue_comments.clone())
                .unwrap_or_default();
            (comments.len() >= count).then_some(comments)
        })
        .await
    }

    /// Returns all recorded requests as soon as `pred` holds for them.
    pub async fn wait_for_requests(
        &self,
        pred: impl Fn(&[RecordedRequest]) -> bool,
        timeout: Duration,
    ) -> Vec<RecordedRequest> {
        self.wait_until("a request predicate to hold", timeout, |w| {
            pred(&w.requests).then(|| w.requests.clone())
        })
        .await
    }

    /// Waits until `check` returns `Some`, re-checking on every change of the fake's state.
    pub async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&World) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.shared.version.subscribe();
        loop {
            // Mark the current version seen *before* checking, so a change that lands between
            // the check and the await still wakes us.
            changes.borrow_and_update();
            if let Some(found) = check(&self.world()) {
                return found;
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                let state = self.world().describe();
                panic!("fake GitHub: timed out after {timeout:?} waiting for {what}.\n{state}");
            }
        }
    }
}

/// Reads every file under `root` as (relative path with `/`, bytes); empty if `root` is missing.
fn read_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                out.push((rel, bytes));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// World state
// ---------------------------------------------------------------------------------------------

/// Everything the fake knows. Public only so [`FakeGitHub::wait_until`] callbacks can look.
pub struct World {
    url: String,
    decoding_key: DecodingKey,
    installations: BTreeSet<u64>,
    /// Keyed by lowercase `owner/name`: GitHub's names are case-insensitive.
    repos: BTreeMap<String, Repo>,
    tokens: HashMap<String, TokenInfo>,
    tokens_issued: usize,
    token_lifetime: chrono::Duration,
    relative_links: bool,
    failures: Vec<Failure>,
    requests: Vec<RecordedRequest>,
    next_id: u64,
}

struct Repo {
    id: u64,
    full_name: String,
    installation_id: u64,
    pulls: BTreeMap<u64, Pull>,
    /// (ref or SHA, path) → bytes.
    contents: HashMap<(String, String), Vec<u8>>,
}

struct Pull {
    id: u64,
    pr: PullRequest,
    files: Vec<PullFile>,
    reviews: Vec<Review>,
    issue_comments: Vec<IssueComment>,
    previous_heads: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

struct TokenInfo {
    installation_id: u64,
    expires_at: DateTime<Utc>,
    revoked: bool,
    /// Lowercase full names the token was scoped to; `None` = all repos of the installation.
    repositories: Option<BTreeSet<String>>,
}

struct Failure {
    method: String,
    path_prefix: String,
    status: u16,
    remaining: usize,
    headers: Vec<(String, String)>,
}

impl Repo {
    fn pull_mut(&mut self, number: u64) -> &mut Pull {
        let name = self.full_name.clone();
        self.pulls
            .get_mut(&number)
            .unwrap_or_else(|| panic!("fake GitHub: no PR {name}#{number}; call add_pull first"))
    }
}

impl World {
    fn new(url: String) -> World {
        let decoding_key = DecodingKey::from_rsa_pem(app_public_key_pem().as_bytes())
            .expect("test public key PEM");
        World {
            url,
            decoding_key,
            installations: BTreeSet::new(),
            repos: BTreeMap::new(),
            tokens: HashMap::new(),
            tokens_issued: 0,
            token_lifetime: chrono::Duration::hours(1),
            relative_links: false,
            failures: Vec::new(),
            requests: Vec::new(),
            next_id: 1_000_000,
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// All recorded requests (for [`FakeGitHub::wait_until`] callbacks).
    pub fn requests(&self) -> &[RecordedRequest] {
        &self.requests
    }

    /// Reviews of a PR (for [`FakeGitHub::wait_until`] callbacks).
    pub fn reviews(&self, full_name: &str, number: u64) -> &[Review] {
        self.pull(full_name, number)
            .map(|p| p.reviews.as_slice())
            .unwrap_or_default()
    }

    /// Conversation comments of a PR (for [`FakeGitHub::wait_until`] callbacks).
    pub fn issue_comments(&self, full_name: &str, number: u64) -> &[IssueComment] {
        self.pull(full_name, number)
            .map(|p| p.issue_comments.as_slice())
            .unwrap_or_default()
    }

    fn repo_mut(&mut self, full_name: &str) -> &mut Repo {
        self.repos
            .get_mut(&full_name.to_ascii_lowercase())
            .unwrap_or_else(|| panic!("fake GitHub: no repo {full_name}; call add_repo first"))
    }

    fn pull(&self, full_name: &str, number: u64) -> Option<&Pull> {
        self.repos
            .get(&full_name.to_ascii_lowercase())?
            .pulls
            .get(&number)
    }

    fn issue_token(
        &mut self,
        installation_id: u64,
        repositories: Option<BTreeSet<String>>,
    ) -> (String, DateTime<Utc>) {
        let token = format!(
            "ghs_{}{:04}",
            uuid::Uuid::new_v4().simple(),
            self.tokens.len() % 10_000
        );
        let expires_at = Utc::now() + self.token_lifetime;
        self.tokens.insert(
            token.clone(),
            TokenInfo {
                installation_id,
                expires_at,
                revoked: false,
                repositories,
            },
        );
        (token, expires_at)
    }

    /// A human-readable dump for timeout panics.
    fn describe(&self) -> String {
        let mut out = String::from("Fake GitHub state:\n");
        for repo in self.repos.values() {
            for (number, pull) in &repo.pulls {
                let _ = writeln!(
                    out,
                    "  {}#{number} head {}: {} file(s), {} review(s), {} issue comment(s)",
                    repo.full_name,
                    pull.pr.head_sha,
                    pull.files.len(),
                    pull.reviews.len(),
                    pull.issue_comments.len()
                );
                for r in &pull.reviews {
                    let _ = writeln!(
                        out,
                        "    review {} {} by {} with {} comment(s): {:?}",
                        r.id,
                        r.state,
                        r.user_login,
                        r.comments.len(),
                        truncate(&r.body, 120)
                    );
                }
                for c in &pull.issue_comments {
                    let _ = writeln!(
                        out,
                        "    comment {} by {}: {:?}",
                        c.id,
                        c.user_login,
                        truncate(&c.body, 120)
                    );
                }
            }
        }
        let skip = self.requests.len().saturating_sub(40);
        let _ = writeln!(
            out,
            "Requests ({} total, last {} shown):",
            self.requests.len(),
            self.requests.len() - skip
        );
        for r in &self.requests[skip..] {
            let _ = writeln!(
                out,
                "  {} {} -> {} ({:?})",
                r.method, r.path, r.status, r.auth
            );
        }
        out
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP layer
// ---------------------------------------------------------------------------------------------

/// What a route answers; turned into an HTTP response outside the lock.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: ReplyBody,
}

enum ReplyBody {
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
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Json(body),
        }
    }

    fn error(status: u16, message: &str, documentation_url: &str) -> Reply {
        Reply::json(
            status,
            json!({ "message": message, "documentation_url": documentation_url, "status": status.to_string() }),
        )
    }

    fn error_with(status: u16, message: &str, errors: Value, documentation_url: &str) -> Reply {
        Reply::json(
            status,
            json!({ "message": message, "errors": errors, "documentation_url": documentation_url, "status": status.to_string() }),
        )
    }

    fn not_found() -> Reply {
        Reply::error(404, "Not Found", DOCS)
    }

    fn bad_credentials() -> Reply {
        Reply::error(401, "Bad credentials", DOCS)
    }

    /// A review rejected by GitHub's validation: nothing of it is stored.
    fn unprocessable_review(error: &str) -> Reply {
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
}

/// A request as the routes see it.
struct Ctx<'a> {
    method: &'a Method,
    /// Path after resolving `/repositories/{id}` to `/repos/{owner}/{name}`.
    path: String,
    query: Vec<(String, String)>,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

impl Ctx<'_> {
    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn credential(&self) -> Credential {
        credential(self.headers)
    }

    /// Parses the JSON body: `Err` is GitHub's 400 for unparsable JSON.
    fn json_body(&self) -> Result<Value, Reply> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        serde_json::from_slice(self.body)
            .map_err(|_| Reply::error(400, "Problems parsing JSON", DOCS))
    }
}

enum Credential {
    None,
    /// JWT with the scheme used (`bearer` or `token`).
    Jwt {
        bearer: bool,
        jwt: String,
    },
    Token(String),
    Other,
}

fn credential(headers: &HeaderMap) -> Credential {
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
async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
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
            auth: auth_kind(&parts.headers),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        let used = world.requests.len() % 5000;
        reply
            .with_header("x-ratelimit-limit", "5000".to_owned())
            .with_header("x-ratelimit-used", used.to_string())
            .with_header("x-ratelimit-remaining", (5000 - used).to_string())
            .with_header(
                "x-ratelimit-reset",
                (Utc::now().timestamp() + 3600).to_string(),
            )
            .with_header("x-ratelimit-resource", "core".to_owned())
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
    // Later headers win, so injected failure headers override the default rate-limit ones.
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
    fn respond(
        &mut self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Reply {
        let raw_path = uri.path();
        let path = self.resolve_repository_id_path(raw_path);
        let query = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();

        if let Some(failure) = self.take_failure(method, raw_path, &path) {
            return failure;
        }
        // Real GitHub refuses requests without a User-Agent.
        if headers
            .get(http::header::USER_AGENT)
            .is_none_or(|ua| ua.as_bytes().is_empty())
        {
            return Reply {
                status: 403,
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
        match (m, segs.as_slice()) {
            ("GET", ["app"]) => self.get_app(&ctx),
            ("POST", ["app", "installations", id, "access_tokens"]) => {
                self.create_access_token(&ctx, id)
            }
            ("GET", ["repos", owner, name, "installation"]) => {
                self.get_repo_installation(&ctx, owner, name)
            }
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

    // ----- app (JWT) endpoints ---------------------------------------------------------------

    /// Checks the app JWT like GitHub: RS256 with the app key, `iss` = app id (number or
    /// string), `iat` at most 60 s ahead, `exp` in the future and at most 10 minutes after `iat`.
    fn check_app_jwt(&self, ctx: &Ctx) -> Result<(), Reply> {
        let jwt = match ctx.credential() {
            Credential::Jwt { bearer: true, jwt } => jwt,
            Credential::Jwt { bearer: false, .. } | Credential::Token(_) | Credential::Other => {
                return Err(Reply::error(401, JWT_DECODE_ERROR, DOCS));
            }
            Credential::None => {
                return Err(Reply::error(
                    401,
                    "You must authenticate with a JSON web token (JWT) to access this endpoint.",
                    DOCS,
                ));
            }
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Value>(&jwt, &self.decoding_key, &validation)
            .map_err(|_| Reply::error(401, JWT_DECODE_ERROR, DOCS))?
            .claims;
        let iss_ok = match &claims["iss"] {
            Value::Number(n) => n.as_u64() == Some(APP_ID),
            Value::String(s) => s.parse::<u64>().ok() == Some(APP_ID),
            _ => false,
        };
        if !iss_ok {
            return Err(Reply::error(401, JWT_DECODE_ERROR, DOCS));
        }
        let now = Utc::now().timestamp();
        let Some(iat) = claims["iat"].as_i64() else {
            return Err(Reply::error(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued.",
                DOCS,
            ));
        };
        let Some(exp) = claims["exp"].as_i64() else {
            return Err(Reply::error(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.",
                DOCS,
            ));
        };
        if iat > now + 60 {
            return Err(Reply::error(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued.",
                DOCS,
            ));
        }
        if exp <= now {
            return Err(Reply::error(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.",
                DOCS,
            ));
        }
        if exp - iat > 600 {
            return Err(Reply::error(
                401,
                "'Expiration time' claim ('exp') is too far in the future.",
                DOCS,
            ));
        }
        Ok(())
    }

    fn get_app(&self, ctx: &Ctx) -> Reply {
        if let Err(reply) = self.check_app_jwt(ctx) {
            return reply;
        }
        Reply::json(
            200,
            json!({
                "id": APP_ID,
                "slug": APP_SLUG,
                "node_id": format!("A_{APP_ID}"),
                "name": "Critic",
                "owner": user_json("critic-org"),
                "description": "Reviews pull requests with an LLM",
                "external_url": "https://example.com/critic",
                "html_url": format!("{HTML_BASE}/apps/{APP_SLUG}"),
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z",
                "permissions": token_permissions(),
                "events": ["pull_request", "issue_comment"],
                "installations_count": self.installations.len(),
            }),
        )
    }

    fn create_access_token(&mut self, ctx: &Ctx, id: &str) -> Reply {
        if let Err(reply) = self.check_app_jwt(ctx) {
            return reply;
        }
        let Some(installation_id) = id
            .parse::<u64>()
            .ok()
            .filter(|id| self.installations.contains(id))
        else {
            return Reply::error(
                404,
                "Not Found",
                "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app",
            );
        };
        let body = match ctx.json_body() {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        // Optional scoping, as octocrab and GitHub support it; empty lists mean "all".
        let mut scope = BTreeSet::new();
        let inaccessible = Reply::error(
            422,
            "There is at least one repository that does not exist or is not accessible to the parent installation.",
            "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app",
        );
        for name in body["repositories"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or("");
            let found = self.repos.iter().find(|(_, r)| {
                r.installation_id == installation_id
                    && r.full_name
                        .split('/')
                        .nth(1)
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
            });
            match found {
                Some((key, _)) => scope.insert(key.clone()),
                None => return inaccessible,
            };
        }
        for rid in body["repository_ids"].as_array().into_iter().flatten() {
            let found = self
                .repos
                .iter()
                .find(|(_, r)| r.installation_id == installation_id && Some(r.id) == rid.as_u64());
            match found {
                Some((key, _)) => scope.insert(key.clone()),
                None => return inaccessible,
            };
        }
        let scoped = !scope.is_empty();
        let repositories: Vec<Value> = scope
            .iter()
            .map(|key| self.repo_json(&self.repos[key]))
            .collect();
        let (token, expires_at) = self.issue_token(installation_id, scoped.then_some(scope));
        self.tokens_issued += 1;
        let mut body = json!({
            "token": token,
            "expires_at": ts(expires_at),
            "permissions": token_permissions(),
            "repository_selection": if scoped { "selected" } else { "all" },
        });
        if scoped {
            body["repositories"] = Value::Array(repositories);
        }
        Reply::json(201, body)
    }

    fn get_repo_installation(&self, ctx: &Ctx, owner: &str, name: &str) -> Reply {
        if let Err(reply) = self.check_app_jwt(ctx) {
            return reply;
        }
        match self
            .repos
            .get(&format!("{owner}/{name}").to_ascii_lowercase())
        {
            Some(repo) => Reply::json(
                200,
                json!({
                    "id": repo.installation_id,
                    "app_id": APP_ID,
                    "app_slug": APP_SLUG,
                    "target_type": "Organization",
                    "account": user_json(owner),
                    "repository_selection": "all",
                    "access_tokens_url": format!("{}/app/installations/{}/access_tokens", self.url, repo.installation_id),
                    "repositories_url": format!("{}/installation/repositories", self.url),
                    "html_url": format!("{HTML_BASE}/organizations/{owner}/settings/installations/{}", repo.installation_id),
                    "permissions": token_permissions(),
                    "events": ["pull_request", "issue_comment"],
                    "created_at": "2024-01-01T00:00:00Z",
                    "updated_at": "2024-01-01T00:00:00Z",
                }),
            ),
            None => Reply::not_found(),
        }
    }

    // ----- repository endpoints (installation token) -----------------------------------------

    /// `/repos/...` needs a live installation token (a JWT is not enough), for a known repo of
    /// the token's installation (and scope).
    fn authorize_repo(&self, ctx: &Ctx, full: &str) -> Result<(), Reply> {
        let Credential::Token(token) = ctx.credential() else {
            return Err(Reply::bad_credentials());
        };
        let Some(info) = self.tokens.get(&token) else {
            return Err(Reply::bad_credentials());
        };
        if info.revoked || info.expires_at <= Utc::now() {
            return Err(Reply::bad_credentials());
        }
        let key = full.to_ascii_lowercase();
        let Some(repo) = self.repos.get(&key) else {
            return Err(Reply::not_found());
        };
        let in_scope = info
            .repositories
            .as_ref()
            .is_none_or(|scope| scope.contains(&key));
        if repo.installation_id != info.installation_id || !in_scope {
            return Err(Reply::error(
                403,
                "Resource not accessible by integration",
                DOCS,
            ));
        }
        Ok(())
    }

    fn repo_route(&mut self, ctx: &Ctx, full: &str, method: &str, rest: &[&str]) -> Reply {
        let number = |s: &str| s.parse::<u64>().ok();
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

    fn get_pull(&self, ctx: &Ctx, full: &str, number: u64) -> Reply {
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
            headers: Vec::new(),
            body: ReplyBody::Text {
                content_type: "application/vnd.github.diff; charset=utf-8",
                text,
            },
        }
    }

    fn list_files(&self, ctx: &Ctx, repo: &Repo, pull: &Pull) -> Reply {
        let items = pull
            .files
            .iter()
            .take(MAX_PULL_FILES)
            .map(|f| self.file_json(repo, pull, f))
            .collect();
        self.paginate(ctx, repo, &format!("pulls/{}/files", pull.pr.number), items)
    }

    /// Serves one page of `items` with GitHub's `per_page`/`page` rules and `Link` header.
    fn paginate(&self, ctx: &Ctx, repo: &Repo, rest_path: &str, items: Vec<Value>) -> Reply {
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
                "{origin}/repositories/{}/{rest_path}?{}",
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

    fn get_content(&self, ctx: &Ctx, full: &str, path: &str) -> Reply {
        let repo = &self.repos[&full.to_ascii_lowercase()];
        let requested = ctx.query("ref").unwrap_or("main");
        // A ref may be a SHA, or a branch name that a PR's head/base points at.
        let mut candidates = vec![requested.to_owned()];
        for pull in repo.pulls.values() {
            if pull.pr.head_ref == requested {
                candidates.push(pull.pr.head_sha.clone());
            }
            if pull.pr.base_ref == requested {
                candidates.push(pull.pr.base_sha.clone());
            }
        }
        let found = candidates.iter().find_map(|r| {
            repo.contents
                .get(&(r.clone(), path.to_owned()))
                .map(|b| (r, b))
        });
        let Some((git_ref, bytes)) = found else {
            return Reply::error(
                404,
                "Not Found",
                "https://docs.github.com/rest/repos/contents#get-repository-content",
            );
        };
        let accept = ctx
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.contains("vnd.github.raw") || accept.contains("vnd.github.v3.raw") {
            return Reply {
                status: 200,
                headers: Vec::new(),
                body: ReplyBody::Bytes {
                    content_type: "application/vnd.github.raw",
                    bytes: bytes.clone(),
                },
            };
        }
        let sha = git_blob_sha(bytes);
        let name = path.rsplit('/').next().unwrap_or(path);
        let url = format!(
            "{}/repos/{}/contents/{}?ref={}",
            self.url,
            repo.full_name,
            encode_path(path),
            git_ref
        );
        let html_url = format!(
            "{HTML_BASE}/{}/blob/{git_ref}/{}",
            repo.full_name,
            encode_path(path)
        );
        let git_url = format!("{}/repos/{}/git/blobs/{sha}", self.url, repo.full_name);
        // Like GitHub: files over 1 MB come without content (encoding "none").
        let (encoding, content) = if bytes.len() > 1024 * 1024 {
            ("none", String::new())
        } else {
            ("base64", github_base64(bytes))
        };
        Reply::json(
            200,
            json!({
                "type": "file",
                "encoding": encoding,
                "size": bytes.len(),
                "name": name,
                "path": path,
                "content": content,
                "sha": sha,
                "url": url,
                "git_url": git_url,
                "html_url": html_url,
                "download_url": format!("https://raw.githubusercontent.com/{}/{git_ref}/{}", repo.full_name, encode_path(path)),
                "_links": { "self": url, "git": git_url, "html": html_url },
            }),
        )
    }

    // ----- reviews ---------------------------------------------------------------------------

    fn create_review(&mut self, ctx: &Ctx, full: &str, number: u64) -> Reply {
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
        if state == "PENDING"
            && pull
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

    // ----- issue comments --------------------------------------------------------------------

    fn create_issue_comment(&mut self, ctx: &Ctx, full: &str, number: u64) -> Reply {
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

    fn update_issue_comment(&mut self, ctx: &Ctx, full: &str, id: u64) -> Reply {
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

    // ----- JSON shapes -----------------------------------------------------------------------

    fn repo_json(&self, repo: &Repo) -> Value {
        let (owner, name) = repo.full_name.split_once('/').expect("owner/name");
        let api = format!("{}/repos/{}", self.url, repo.full_name);
        let mut owner_json = user_json(owner);
        owner_json["type"] = json!("Organization");
        json!({
            "id": repo.id,
            "node_id": format!("R_kgDO{:08}", repo.id),
            "name": name,
            "full_name": repo.full_name,
            "private": false,
            "owner": owner_json,
            "html_url": format!("{HTML_BASE}/{}", repo.full_name),
            "description": null,
            "fork": false,
            "url": api,
            "pulls_url": format!("{api}/pulls{{/number}}"),
            "issues_url": format!("{api}/issues{{/number}}"),
            "contents_url": format!("{api}/contents/{{+path}}"),
            "git_url": format!("git://github.com/{}.git", repo.full_name),
            "ssh_url": format!("git@github.com:{}.git", repo.full_name),
            "clone_url": format!("{HTML_BASE}/{}.git", repo.full_name),
            "default_branch": "main",
            "visibility": "public",
            "archived": false,
            "disabled": false,
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "pushed_at": "2024-01-01T00:00:00Z",
        })
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
            "labels": [],
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
        out["head"] = branch(&pr.head_ref, &pr.head_sha);
        out["base"] = branch(&pr.base_ref, &pr.base_sha);
        out["_links"] = links;
        out
    }

    fn file_json(&self, repo: &Repo, pull: &Pull, file: &PullFile) -> Value {
        let full = &repo.full_name;
        let head = &pull.pr.head_sha;
        let content_sha = if file.status == "removed" {
            &pull.pr.base_sha
        } else {
            head
        };
        let content_path = if file.status == "removed" {
            file.previous_filename.as_deref().unwrap_or(&file.filename)
        } else {
            &file.filename
        };
        // The blob SHA of the file's content when the test stored it; otherwise a stable stand-in.
        let sha = match repo
            .contents
            .get(&(content_sha.clone(), content_path.to_owned()))
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

    fn review_json(&self, repo: &Repo, number: u64, review: &Review) -> Value {
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

    fn review_comment_json(
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
        json!({
            "url": url,
            "pull_request_review_id": review.id,
            "id": c.id,
            "node_id": format!("PRRC_kwDO{:010}", c.id),
            "diff_hunk": c.diff_hunk,
            "path": c.path,
            "position": c.position,
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
            "start_line": c.start_line,
            "original_start_line": c.start_line,
            "start_side": c.start_side,
            "line": c.line,
            "original_line": c.line,
            "side": c.side,
            "subject_type": "line",
        })
    }

    fn issue_comment_json(&self, repo: &Repo, number: u64, c: &IssueComment) -> Value {
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

fn token_permissions() -> Value {
    json!({ "contents": "read", "issues": "write", "metadata": "read", "pull_requests": "write" })
}

/// A complete simple-user object like GitHub's; bots (`x[bot]`) get type `Bot`.
fn user_json(login: &str) -> Value {
    let is_bot = login.ends_with("[bot]");
    let id = user_id(login);
    let escaped = login.replace('[', "%5B").replace(']', "%5D");
    let api = format!("https://api.github.com/users/{escaped}");
    let avatar = if is_bot {
        format!("https://avatars.githubusercontent.com/in/{APP_ID}?v=4")
    } else {
        format!("https://avatars.githubusercontent.com/u/{id}?v=4")
    };
    json!({
        "login": login,
        "id": id,
        "node_id": format!("{}_kgDO{id:08}", if is_bot { "BOT" } else { "U" }),
        "avatar_url": avatar,
        "gravatar_id": "",
        "url": api,
        "html_url": if is_bot { format!("{HTML_BASE}/apps/{}", login.trim_end_matches("[bot]")) } else { format!("{HTML_BASE}/{login}") },
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": if is_bot { "Bot" } else { "User" },
        "user_view_type": "public",
        "site_admin": false,
    })
}

/// Stable per-login ids (octocat keeps its real one).
fn user_id(login: &str) -> u64 {
    if login == "octocat" {
        return 583_231;
    }
    // FNV-1a: deterministic across runs, unlike std's RandomState.
    let hash = login.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    10_000_000 + hash % 90_000_000
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

// ---------------------------------------------------------------------------------------------
// Review comment validation (independent patch parsing)
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ReviewInput {
    commit_id: Option<String>,
    body: Option<String>,
    event: Option<String>,
    comments: Option<Vec<CommentInput>>,
}

#[derive(Deserialize)]
struct CommentInput {
    path: Option<String>,
    line: Option<u64>,
    side: Option<String>,
    start_line: Option<u64>,
    start_side: Option<String>,
    body: Option<String>,
    position: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineKind {
    HunkHeader,
    Context,
    Added,
    Removed,
    NoNewline,
}

/// One line of a patch: `position` is its index in the patch (GitHub's diff position, the
/// first `@@` being 0), `hunk` the index of the hunk it belongs to.
#[derive(Clone, Copy, Debug)]
struct PatchLine {
    kind: LineKind,
    old: Option<u64>,
    new: Option<u64>,
    hunk: usize,
    position: usize,
}

/// Parses a GitHub `patch` into numbered lines.
fn parse_patch(patch: &str) -> Vec<PatchLine> {
    let mut out = Vec::new();
    let (mut old, mut new) = (0u64, 0u64);
    let mut hunk: Option<usize> = None;
    for (position, line) in patch.split('\n').enumerate() {
        if line.starts_with("@@") {
            let (o, n) = parse_hunk_header(line).unwrap_or(((0, 0), (0, 0)));
            old = o.0;
            new = n.0;
            hunk = Some(hunk.map_or(0, |h| h + 1));
            out.push(PatchLine {
                kind: LineKind::HunkHeader,
                old: None,
                new: None,
                hunk: hunk.unwrap_or(0),
                position,
            });
            continue;
        }
        let Some(h) = hunk else { continue };
        let (kind, o, n) = match line.as_bytes().first() {
            Some(b'+') => (LineKind::Added, None, Some(new)),
            Some(b'-') => (LineKind::Removed, Some(old), None),
            Some(b'\\') => (LineKind::NoNewline, None, None),
            _ => (LineKind::Context, Some(old), Some(new)),
        };
        if o.is_some() {
            old += 1;
        }
        if n.is_some() {
            new += 1;
        }
        out.push(PatchLine {
            kind,
            old: o,
            new: n,
            hunk: h,
            position,
        });
    }
    out
}

/// `@@ -a,b +c,d @@` → ((a, b), (c, d)); counts default to 1.
fn parse_hunk_header(line: &str) -> Option<((u64, u64), (u64, u64))> {
    let mut parts = line.split_whitespace().skip(1);
    let range = |s: &str| -> Option<(u64, u64)> {
        let (start, count) = s.split_once(',').unwrap_or((s, "1"));
        Some((start.parse().ok()?, count.parse().ok()?))
    };
    let old = range(parts.next()?.strip_prefix('-')?)?;
    let new = range(parts.next()?.strip_prefix('+')?)?;
    Some((old, new))
}

/// The patch line a (side, line) comment points at, if the diff shows it.
fn find_line(lines: &[PatchLine], side: &str, line: u64) -> Option<PatchLine> {
    lines.iter().copied().find(|l| match side {
        "RIGHT" => matches!(l.kind, LineKind::Context | LineKind::Added) && l.new == Some(line),
        _ => matches!(l.kind, LineKind::Context | LineKind::Removed) && l.old == Some(line),
    })
}

/// Validates one review comment like GitHub does and resolves its location.
fn resolve_comment(files: &[PullFile], c: &CommentInput) -> Result<ReviewComment, String> {
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
    })
}

// ---------------------------------------------------------------------------------------------
// Splitting a `git diff` into GitHub file entries
// ---------------------------------------------------------------------------------------------

impl PullFile {
    /// A `modified` file with the given patch; additions/deletions counted from it.
    pub fn from_patch(filename: &str, patch: &str) -> PullFile {
        let (additions, deletions) = count_changes(patch);
        PullFile {
            filename: filename.to_owned(),
            status: "modified".to_owned(),
            additions,
            deletions,
            changes: additions + deletions,
            patch: Some(patch.trim_end_matches('\n').to_owned()),
            previous_filename: None,
        }
    }

    /// A binary file (no patch) with the given status.
    pub fn binary(filename: &str, status: &str) -> PullFile {
        PullFile {
            filename: filename.to_owned(),
            status: status.to_owned(),
            additions: 0,
            deletions: 0,
            changes: 0,
            patch: None,
            previous_filename: None,
        }
    }

    /// Splits a whole `git diff -M` into entries the way GitHub's files API presents them:
    /// `patch` = the hunks only (from the first `@@`), without trailing newline; status from
    /// the extended headers; binary files and hunk-less changes (pure renames, mode changes)
    /// without patch. Hunk bodies are consumed by their line counts, so content lines that look
    /// like headers (`--- x`, `diff --git`) are not misread.
    pub fn from_diff(diff: &str) -> Vec<PullFile> {
        let lines: Vec<&str> = diff.split('\n').collect();
        let mut files = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let Some(git_line) = lines[i].strip_prefix("diff --git ") else {
                i += 1;
                continue;
            };
            i += 1;
            let (git_old, git_new) = parse_git_line(git_line.trim_end_matches('\r'));
            let mut header = FileHeader::default();
            while i < lines.len()
                && !lines[i].starts_with("diff --git ")
                && !lines[i].starts_with("@@")
            {
                header.read(lines[i].trim_end_matches('\r'));
                i += 1;
            }
            let mut patch: Vec<&str> = Vec::new();
            let (mut additions, mut deletions) = (0u64, 0u64);
            while i < lines.len() && lines[i].starts_with("@@") {
                let Some(((_, mut old_left), (_, mut new_left))) = parse_hunk_header(lines[i])
                else {
                    break;
                };
                patch.push(lines[i]);
                i += 1;
                while i < lines.len() && (old_left > 0 || new_left > 0) {
                    let line = lines[i];
                    match line.as_bytes().first() {
                        Some(b'+') => {
                            new_left = new_left.saturating_sub(1);
                            additions += 1;
                        }
                        Some(b'-') => {
                            old_left = old_left.saturating_sub(1);
                            deletions += 1;
                        }
                        Some(b'\\') => {}
                        // A context line; an empty line is a context line whose space was stripped.
                        Some(b' ') | None => {
                            old_left = old_left.saturating_sub(1);
                            new_left = new_left.saturating_sub(1);
                        }
                        Some(_) => break,
                    }
                    patch.push(line);
                    i += 1;
                }
                while i < lines.len() && lines[i].starts_with('\\') {
                    patch.push(lines[i]);
                    i += 1;
                }
            }

            let old_name = header
                .rename_from
                .clone()
                .or(header.minus.clone())
                .or(git_old);
            let new_name = header.rename_to.clone().or(header.plus.clone()).or(git_new);
            let status = if header.new_file {
                "added"
            } else if header.deleted_file {
                "removed"
            } else if header.rename_to.is_some() {
                if header.copy { "copied" } else { "renamed" }
            } else if header.mode_change && patch.is_empty() && !header.binary {
                "changed"
            } else {
                "modified"
            };
            let filename = if header.deleted_file {
                old_name.clone()
            } else {
                new_name.clone()
            }
            .unwrap_or_default();
            let previous_filename =
                matches!(status, "renamed" | "copied").then(|| old_name.unwrap_or_default());
            let patch = (!header.binary && !patch.is_empty()).then(|| patch.join("\n"));
            let (additions, deletions) = if header.binary {
                (0, 0)
            } else {
                (additions, deletions)
            };
            files.push(PullFile {
                filename,
                status: status.to_owned(),
                additions,
                deletions,
                changes: additions + deletions,
                patch,
                previous_filename,
            });
        }
        files
    }
}

fn count_changes(patch: &str) -> (u64, u64) {
    parse_patch(patch)
        .iter()
        .fold((0, 0), |(a, d), l| match l.kind {
            LineKind::Added => (a + 1, d),
            LineKind::Removed => (a, d + 1),
            _ => (a, d),
        })
}

/// What the extended header lines of one file in a `git diff` say.
#[derive(Default)]
struct FileHeader {
    new_file: bool,
    deleted_file: bool,
    copy: bool,
    mode_change: bool,
    binary: bool,
    rename_from: Option<String>,
    rename_to: Option<String>,
    minus: Option<String>,
    plus: Option<String>,
}

impl FileHeader {
    fn read(&mut self, line: &str) {
        if line.starts_with("new file mode") {
            self.new_file = true;
        } else if line.starts_with("deleted file mode") {
            self.deleted_file = true;
        } else if line.starts_with("old mode") || line.starts_with("new mode") {
            self.mode_change = true;
        } else if let Some(name) = line.strip_prefix("rename from ") {
            self.rename_from = Some(unquote(name));
        } else if let Some(name) = line.strip_prefix("rename to ") {
            self.rename_to = Some(unquote(name));
        } else if let Some(name) = line.strip_prefix("copy from ") {
            self.copy = true;
            self.rename_from = Some(unquote(name));
        } else if let Some(name) = line.strip_prefix("copy to ") {
            self.copy = true;
            self.rename_to = Some(unquote(name));
        } else if let Some(name) = line.strip_prefix("--- ") {
            self.minus = strip_side_prefix(name, "a/");
        } else if let Some(name) = line.strip_prefix("+++ ") {
            self.plus = strip_side_prefix(name, "b/");
        } else if (line.starts_with("Binary files ") && line.ends_with(" differ"))
            || line == "GIT binary patch"
        {
            self.binary = true;
        }
    }
}

/// `a/path` / `/dev/null` from a `---`/`+++` line (git appends a tab to names with spaces).
fn strip_side_prefix(name: &str, prefix: &str) -> Option<String> {
    let name = unquote(name.trim_end_matches('\t'));
    if name == "/dev/null" {
        return None;
    }
    Some(name.strip_prefix(prefix).map(str::to_owned).unwrap_or(name))
}

/// The two names of `diff --git a/X b/Y` (used only when no other header names the file).
fn parse_git_line(rest: &str) -> (Option<String>, Option<String>) {
    if rest.starts_with('"') {
        // Quoted names: `"a/x y" "b/x y"` or a mix of quoted and plain.
        let (first, tail) = split_quoted(rest);
        let second = unquote(tail.trim_start());
        return (
            first.strip_prefix("a/").map(str::to_owned),
            second.strip_prefix("b/").map(str::to_owned),
        );
    }
    // Unquoted: when both names are equal the line is `a/X b/X`, which is unambiguous even if
    // X contains " b/".
    let len = rest.len();
    if len > 5 && (len - 5).is_multiple_of(2) {
        let x = (len - 5) / 2;
        if rest.is_char_boundary(2 + x)
            && rest.starts_with("a/")
            && rest[2 + x..].starts_with(" b/")
            && rest[2..2 + x] == rest[5 + x..]
        {
            let name = rest[2..2 + x].to_owned();
            return (Some(name.clone()), Some(name));
        }
    }
    match rest.split_once(" b/") {
        Some((a, b)) => (a.strip_prefix("a/").map(str::to_owned), Some(unquote(b))),
        None => (None, None),
    }
}

/// Splits a leading C-quoted string off `s`, returning it unquoted and the rest.
fn split_quoted(s: &str) -> (String, &str) {
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return (unquote(&s[..=i]), &s[i + 1..]),
            _ => i += 1,
        }
    }
    (unquote(s), "")
}

/// Undoes git's C-style quoting of path names (`"a/t\303\251st\tx"`); plain names pass through.
fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return s.to_owned();
    };
    let bytes = inner.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let escaped = bytes[i + 1];
        i += 2;
        match escaped {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut value = u32::from(escaped - b'0');
                for _ in 0..2 {
                    if i < bytes.len() && (b'0'..=b'7').contains(&bytes[i]) {
                        value = value * 8 + u32::from(bytes[i] - b'0');
                        i += 1;
                    }
                }
                out.push(value as u8);
            }
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Small encodings (no extra crates)
// ---------------------------------------------------------------------------------------------

/// Base64 the way the contents API sends it: standard alphabet, a newline every 60 characters
/// and after the last line.
pub fn github_base64(bytes: &[u8]) -> String {
    let encoded = base64_encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 60 + 1);
    for chunk in encoded.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The git blob id of `bytes` (`sha1("blob <len>\0" + bytes)`), as GitHub reports file SHAs.
pub fn git_blob_sha(bytes: &[u8]) -> String {
    let mut data = format!("blob {}\0", bytes.len()).into_bytes();
    data.extend_from_slice(bytes);
    sha1_hex(&data)
}

/// Plain SHA-1, only for git blob ids (no security use).
fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut message = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_be_bytes());
    for block in message.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex digits are ASCII");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a repository path for URLs, keeping `/`.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}
