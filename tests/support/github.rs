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
//! * the 65 536-character body limit, the User-Agent requirement, the 3000-file cap;
//! * check runs validated like GitHub (required fields, enums, `completed` needs a conclusion,
//!   the 65 535-character output limit, a `head_sha` the repository knows);
//! * review comment replies (root comments only, each filed under a review of its own) and a
//!   GraphQL endpoint that parses the query, answers only the fields asked for and rejects
//!   unknown ones, for review threads and resolving them;
//! * GitHub Enterprise Server's layout when the API URL ends in `/api/v3` (REST there,
//!   GraphQL at `/api/graphql`, and nothing at `/api/v3/graphql`).
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

use super::faults::{Fault, FaultCounts, FaultPlan, Faults};

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
/// GitHub rejects a check run output `summary` or `text` longer than this (in characters).
pub const MAX_CHECK_OUTPUT_CHARS: usize = 65_535;
/// Like GitHub, the compare endpoint never lists more than this many files.
pub const MAX_COMPARE_FILES: usize = 300;
/// GitHub cuts a recursive tree listing at this many entries (and sets `truncated`).
pub const MAX_TREE_ENTRIES: usize = 100_000;
/// GitHub's REST prefix on Enterprise Server (`https://HOST/api/v3`).
pub const GHES_REST_PREFIX: &str = "/api/v3";

const HTML_BASE: &str = "https://github.com";
const DOCS: &str = "https://docs.github.com/rest";
const DOCS_CREATE_REVIEW: &str =
    "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request";
const DOCS_REPLY: &str =
    "https://docs.github.com/rest/pulls/comments#create-a-reply-for-a-review-comment";
const DOCS_CHECK_RUNS: &str = "https://docs.github.com/rest/checks/runs";
const DOCS_COMPARE: &str = "https://docs.github.com/rest/commits/commits#compare-two-commits";
const DOCS_TREES: &str = "https://docs.github.com/rest/git/trees#get-a-tree";
const DOCS_GRAPHQL: &str = "https://docs.github.com/graphql";
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
    pub labels: Vec<String>,
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
            labels: Vec::new(),
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
    /// The thread's root comment when this is a reply (replies take the root's location).
    pub in_reply_to_id: Option<u64>,
}

/// A check run as stored by the fake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRun {
    pub id: u64,
    /// The App that created it (GitHub lists every App's runs on a commit).
    pub app_id: u64,
    pub name: String,
    pub head_sha: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    pub conclusion: Option<String>,
    pub external_id: Option<String>,
    pub details_url: Option<String>,
    pub output: Option<CheckRunOutput>,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The `output` of a check run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRunOutput {
    pub title: String,
    pub summary: String,
    pub text: Option<String>,
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
    /// The fake did what was asked: a success, or a fault injected after performing it.
    pub performed: bool,
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
                    check_runs: Vec::new(),
                    compares: HashMap::new(),
                    reactions: Vec::new(),
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
                            threads: BTreeMap::new(),
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

    /// Reactions Critic added to a conversation comment, in order.
    pub fn reactions(&self, full_name: &str, comment_id: u64) -> Vec<String> {
        self.world()
            .repos
            .get(&full_name.to_ascii_lowercase())
            .map(|r| {
                r.reactions
                    .iter()
                    .filter(|(c, _, _)| *c == comment_id)
                    .map(|(_, content, _)| content.clone())
                    .collect()
            })
            .unwrap_or_default()
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

    /// Adds an inline comment by someone else (a human reviewer) on the RIGHT side of `line`,
    /// as a review of its own, returning the comment id. Panics if GitHub would reject it.
    pub fn add_review_comment(
        &self,
        full_name: &str,
        number: u64,
        user_login: &str,
        path: &str,
        line: u64,
        body: &str,
    ) -> u64 {
        self.update(|w| {
            let pull = w.repo_mut(full_name).pull_mut(number);
            let input = CommentInput {
                path: Some(path.to_owned()),
                line: Some(line),
                side: Some("RIGHT".to_owned()),
                start_line: None,
                start_side: None,
                body: Some(body.to_owned()),
                position: None,
            };
            let mut comment = resolve_comment(&pull.files, &input).unwrap_or_else(|e| {
                panic!("fake GitHub: comment on {path}:{line} would be rejected: {e}")
            });
            let commit_id = pull.pr.head_sha.clone();
            let review_id = w.next_id();
            comment.id = w.next_id();
            let id = comment.id;
            w.repo_mut(full_name).pull_mut(number).reviews.push(Review {
                id: review_id,
                node_id: format!("PRR_kwDO{review_id:010}"),
                commit_id,
                body: String::new(),
                event: Some("COMMENT".to_owned()),
                state: "COMMENTED".to_owned(),
                user_login: user_login.to_owned(),
                submitted_at: Some(Utc::now()),
                comments: vec![comment],
            });
            id
        })
    }

    /// Adds a reply by someone else to the thread whose root is `in_reply_to`, returning its id.
    pub fn add_review_reply(
        &self,
        full_name: &str,
        number: u64,
        user_login: &str,
        in_reply_to: u64,
        body: &str,
    ) -> u64 {
        self.update(|w| {
            let key = full_name.to_ascii_lowercase();
            match w.create_reply(&key, number, in_reply_to, user_login, body.to_owned()) {
                Ok((_, comment)) => comment.id,
                Err(reply) => panic!(
                    "fake GitHub: reply to {in_reply_to} on {full_name}#{number} rejected with {}",
                    reply.status
                ),
            }
        })
    }

    /// Marks the thread rooted at `root_comment_id` outdated (its line left the diff): GraphQL
    /// says `isOutdated`, and both APIs then give `line: null`.
    pub fn set_thread_outdated(
        &self,
        full_name: &str,
        number: u64,
        root_comment_id: u64,
        outdated: bool,
    ) {
        self.update(|w| {
            w.repo_mut(full_name)
                .pull_mut(number)
                .threads
                .entry(root_comment_id)
                .or_default()
                .outdated = outdated;
        });
    }

    /// Resolves (or unresolves) a thread as a human would in the UI.
    pub fn set_thread_resolved(
        &self,
        full_name: &str,
        number: u64,
        root_comment_id: u64,
        resolved_by: Option<&str>,
    ) {
        self.update(|w| {
            w.repo_mut(full_name)
                .pull_mut(number)
                .threads
                .entry(root_comment_id)
                .or_default()
                .resolved_by = resolved_by.map(str::to_owned);
        });
    }

    /// Sets what `GET compare/{base}...{head}` answers (exactly those two strings): `files`
    /// served like the PR files list, `head` one commit ahead of `base` (identical when equal).
    pub fn set_compare(&self, full_name: &str, base: &str, head: &str, files: Vec<PullFile>) {
        let ahead_by = u64::from(base != head);
        self.set_compare_counts(full_name, base, head, files, ahead_by, 0);
    }

    /// Like [`set_compare`](Self::set_compare) with explicit ahead/behind counts (behind > 0
    /// is a force-push or rebase: `diverged`).
    pub fn set_compare_counts(
        &self,
        full_name: &str,
        base: &str,
        head: &str,
        files: Vec<PullFile>,
        ahead_by: u64,
        behind_by: u64,
    ) {
        self.update(|w| {
            w.repo_mut(full_name).compares.insert(
                (base.to_owned(), head.to_owned()),
                Compare {
                    files,
                    ahead_by,
                    behind_by,
                },
            );
        });
    }

    /// Caps recursive tree listings (default [`MAX_TREE_ENTRIES`]) to test `truncated`.
    pub fn set_tree_entry_limit(&self, limit: usize) {
        self.update(|w| w.tree_entry_limit = limit);
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
                labels: Vec::new(),
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

    /// A check run made by another App (a CI system, another reviewer) on a commit of the
    /// repository; returns its id.
    pub fn add_foreign_check_run(
        &self,
        full_name: &str,
        head_sha: &str,
        name: &str,
        app_id: u64,
    ) -> u64 {
        self.update(|w| {
            let id = w.next_id();
            let run = CheckRun {
                id,
                app_id,
                name: name.to_string(),
                head_sha: head_sha.to_string(),
                status: "in_progress".into(),
                conclusion: None,
                external_id: None,
                details_url: None,
                output: None,
                started_at: Utc::now(),
                completed_at: None,
            };
            w.repo_mut(full_name).check_runs.push(run);
            id
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

    /// From now on, calls fail as `plan` says (seeded; see [`FaultPlan`]). Calls answered
    /// by [`fail_next`](Self::fail_next) rules come first.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.update(|w| w.faults = Some(Faults::new(plan)));
    }

    /// Stops injecting faults; returns what was injected.
    pub fn clear_faults(&self) -> FaultCounts {
        self.update(|w| w.faults.take().map(|f| f.counts).unwrap_or_default())
    }

    /// What [`set_faults`](Self::set_faults) injected so far.
    pub fn fault_counts(&self) -> FaultCounts {
        self.world()
            .faults
            .as_ref()
            .map(|f| f.counts)
            .unwrap_or_default()
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

    /// Check runs of a repo in creation order, as last updated.
    pub fn check_runs(&self, full_name: &str) -> Vec<CheckRun> {
        self.world().check_runs(full_name).to_vec()
    }

    /// Inline comments of a PR (roots and replies) in creation order.
    pub fn review_comments(&self, full_name: &str, number: u64) -> Vec<ReviewComment> {
        self.world().review_comments(full_name, number)
    }

    /// Whether the thread rooted at `root_comment_id` is resolved.
    pub fn thread_resolved(&self, full_name: &str, number: u64, root_comment_id: u64) -> bool {
        self.world()
            .pull(full_name, number)
            .and_then(|p| p.threads.get(&root_comment_id))
            .is_some_and(|t| t.resolved_by.is_some())
    }

    // ----- waiting ---------------------------------------------------------------------------

    /// Returns the PR's submitted reviews as soon as there are at least `count` (PENDING ones,
    /// which only their author sees, are left out); panics with what the fake has (reviews
    /// and recent requests) if that does not happen within `timeout`.
    pub async fn wait_for_reviews(
        &self,
        full_name: &str,
        number: u64,
        count: usize,
        timeout: Duration,
    ) -> Vec<Review> {
        let what = format!("{count} review(s) on {full_name}#{number}");
        self.wait_until(&what, timeout, |w| {
            let reviews: Vec<Review> = w
                .pull(full_name, number)
                .map(|p| p.reviews.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|r| r.state != "PENDING")
                .collect();
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

    /// Returns Critic's summary comment on the PR as soon as it covers `head_sha` (the run
    /// for that head is then complete: the summary is the last thing a run writes).
    pub async fn wait_for_summary(
        &self,
        full_name: &str,
        number: u64,
        head_sha: &str,
        timeout: Duration,
    ) -> IssueComment {
        let what = format!("Critic's summary of {head_sha} on {full_name}#{number}");
        let head = format!("<!-- critic:summary-head sha={head_sha} -->");
        self.wait_until(&what, timeout, |w| {
            w.pull(full_name, number)?
                .issue_comments
                .iter()
                .find(|c| {
                    c.user_login == BOT_LOGIN
                        && c.body.starts_with("<!-- critic:summary -->")
                        && c.body.contains(&head)
                })
                .cloned()
        })
        .await
    }

    /// Returns the repo's check runs as soon as there are at least `count`.
    pub async fn wait_for_check_runs(
        &self,
        full_name: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<CheckRun> {
        let what = format!("{count} check run(s) on {full_name}");
        self.wait_until(&what, timeout, |w| {
            let runs = w.check_runs(full_name);
            (runs.len() >= count).then(|| runs.to_vec())
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
    tree_entry_limit: usize,
    failures: Vec<Failure>,
    faults: Option<Faults>,
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
    check_runs: Vec<CheckRun>,
    /// (base, head) as the test named them → what `compare/{base}...{head}` answers.
    compares: HashMap<(String, String), Compare>,
    /// (issue comment id, reaction content, who reacted), in the order they were added.
    reactions: Vec<(u64, String, String)>,
}

struct Compare {
    files: Vec<PullFile>,
    ahead_by: u64,
    behind_by: u64,
}

/// Per-thread state GraphQL exposes, keyed by the thread's root comment id.
#[derive(Clone, Debug, Default)]
struct ThreadState {
    resolved_by: Option<String>,
    outdated: bool,
}

struct Pull {
    id: u64,
    pr: PullRequest,
    files: Vec<PullFile>,
    reviews: Vec<Review>,
    issue_comments: Vec<IssueComment>,
    previous_heads: Vec<String>,
    threads: BTreeMap<u64, ThreadState>,
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
            tree_entry_limit: MAX_TREE_ENTRIES,
            failures: Vec::new(),
            faults: None,
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

    /// Check runs of a repo (for [`FakeGitHub::wait_until`] callbacks).
    pub fn check_runs(&self, full_name: &str) -> &[CheckRun] {
        self.repos
            .get(&full_name.to_ascii_lowercase())
            .map(|r| r.check_runs.as_slice())
            .unwrap_or_default()
    }

    /// Inline comments of a PR in creation order (for [`FakeGitHub::wait_until`] callbacks).
    pub fn review_comments(&self, full_name: &str, number: u64) -> Vec<ReviewComment> {
        self.pull(full_name, number)
            .map(|p| {
                p.reviews
                    .iter()
                    .flat_map(|r| r.comments.iter().cloned())
                    .collect()
            })
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
                for (root, t) in &pull.threads {
                    let _ = writeln!(
                        out,
                        "    thread {root}: resolved by {:?}, outdated {}",
                        t.resolved_by, t.outdated
                    );
                }
            }
            for run in &repo.check_runs {
                let _ = writeln!(
                    out,
                    "  {} check run {} {:?} on {}: {} {:?}",
                    repo.full_name, run.id, run.name, run.head_sha, run.status, run.conclusion
                );
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
    /// Performed although the status says otherwise (a fault injected after the work).
    performed: bool,
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
            performed: false,
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
struct Ctx<'a> {
    method: &'a Method,
    /// Path after removing [`GHES_REST_PREFIX`] and resolving `/repositories/{id}` to
    /// `/repos/{owner}/{name}`.
    path: String,
    /// `""`, or [`GHES_REST_PREFIX`] when the request came the Enterprise Server way.
    api_prefix: &'static str,
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
        let info = self.live_token(ctx)?;
        let key = full.to_ascii_lowercase();
        let Some(repo) = self.repos.get(&key) else {
            return Err(Reply::not_found());
        };
        if repo.installation_id != info.installation_id || !token_in_scope(info, &key) {
            return Err(Reply::error(
                403,
                "Resource not accessible by integration",
                DOCS,
            ));
        }
        Ok(())
    }

    /// The request's installation token, if it is known, unrevoked and unexpired.
    fn live_token(&self, ctx: &Ctx) -> Result<&TokenInfo, Reply> {
        let Credential::Token(token) = ctx.credential() else {
            return Err(Reply::bad_credentials());
        };
        match self.tokens.get(&token) {
            Some(info) if !info.revoked && info.expires_at > Utc::now() => Ok(info),
            _ => Err(Reply::bad_credentials()),
        }
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
            ("DELETE", ["pulls", n, "reviews", id]) => match (number(n), number(id)) {
                (Some(n), Some(id)) => self.delete_pending_review(full, n, id),
                _ => Reply::not_found(),
            },
            ("POST", ["pulls", n, "comments", id, "replies"]) => match (number(n), number(id)) {
                (Some(n), Some(id)) => self.reply_to_review_comment(ctx, full, n, id),
                _ => Reply::not_found(),
            },
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
            performed: false,
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

    fn get_content(&self, ctx: &Ctx, full: &str, path: &str) -> Reply {
        let repo = &self.repos[&full.to_ascii_lowercase()];
        let requested = ctx.query("ref").unwrap_or("main");
        let candidates = ref_candidates(repo, requested);
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
            // Like GitHub: an ETag, and 304 with no body when the caller already has it.
            let etag = format!("\"{}\"", git_blob_sha(bytes));
            let unchanged = ctx
                .headers
                .get(http::header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
            if unchanged {
                return Reply {
                    status: 304,
                    performed: false,
                    headers: vec![("etag".into(), etag)],
                    body: ReplyBody::Bytes {
                        content_type: "application/vnd.github.raw",
                        bytes: Vec::new(),
                    },
                };
            }
            return Reply {
                status: 200,
                performed: false,
                headers: vec![("etag".into(), etag)],
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
    fn delete_pending_review(&mut self, full: &str, number: u64, id: u64) -> Reply {
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

    /// `POST issues/comments/{id}/reactions`: 201 with the new reaction, 200 when this user
    /// already reacted so, 422 for a content GitHub does not know, 404 for no such comment.
    fn add_reaction(&mut self, ctx: &Ctx, full: &str, id: u64) -> Reply {
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

    // ----- review comment replies ------------------------------------------------------------

    fn reply_to_review_comment(
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
    fn create_reply(
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

    // ----- check runs ------------------------------------------------------------------------

    /// `GET /repos/{o}/{r}/commits/{ref}/check-runs`: the runs on a commit (a SHA or a
    /// branch name), filtered by `check_name`, `status` and `app_id`; `filter=latest` (the
    /// default) keeps only the newest run of each name; newest first, paginated by
    /// `per_page` (at most 100) and `page`.
    fn list_check_runs(&self, ctx: &Ctx, full: &str, git_ref: &str) -> Reply {
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

    fn create_check_run(&mut self, ctx: &Ctx, full: &str) -> Reply {
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
        };
        let repo = self.repos.get_mut(&key).expect("repo");
        repo.check_runs.push(run.clone());
        Reply::json(201, self.check_run_json(&self.repos[&key], &run))
    }

    fn update_check_run(&mut self, ctx: &Ctx, full: &str, id: u64) -> Reply {
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

    fn check_run_json(&self, repo: &Repo, run: &CheckRun) -> Value {
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
            "annotations_count": 0,
            "annotations_url": format!("{api}/check-runs/{}/annotations", run.id),
        });
        let mut app = json!({
            "id": run.app_id,
            "slug": APP_SLUG,
            "node_id": format!("A_{APP_ID}"),
            "name": "Critic",
            "owner": user_json("critic-org"),
            "html_url": format!("{HTML_BASE}/apps/{APP_SLUG}"),
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
        });
        app["permissions"] = token_permissions();
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

    // ----- compare and trees -----------------------------------------------------------------

    /// `GET compare/{base}...{head}` (or `..`), answered only for pairs the test configured.
    fn compare(&self, full: &str, spec: &str) -> Reply {
        let repo = &self.repos[&full.to_ascii_lowercase()];
        let (base, head) = match spec.split_once("...").or_else(|| spec.split_once("..")) {
            Some(pair) => pair,
            None => return Reply::error(404, "Not Found", DOCS_COMPARE),
        };
        let Some(cmp) = repo.compares.get(&(base.to_owned(), head.to_owned())) else {
            return Reply::error(404, "Not Found", DOCS_COMPARE);
        };
        let api = format!("{}/repos/{}", self.url, repo.full_name);
        let html = format!("{HTML_BASE}/{}/compare/{base}...{head}", repo.full_name);
        let is_sha = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
        let commit = |sha: &str, message: &str| {
            json!({
                "sha": sha,
                "node_id": format!("C_kwDO{}", &sha[..10]),
                "url": format!("{api}/commits/{sha}"),
                "html_url": format!("{HTML_BASE}/{}/commit/{sha}", repo.full_name),
                "commit": {
                    "message": message,
                    "author": { "name": "Octo Cat", "email": "octocat@github.com", "date": "2024-01-01T00:00:00Z" },
                    "committer": { "name": "GitHub", "email": "noreply@github.com", "date": "2024-01-01T00:00:00Z" },
                    "tree": { "sha": sha1_hex(format!("tree:{sha}").as_bytes()) },
                    "comment_count": 0,
                },
                "author": user_json("octocat"),
                "committer": user_json("web-flow"),
                "parents": [],
            })
        };
        let base_sha = if is_sha(base) {
            base.to_owned()
        } else {
            sha1_hex(format!("ref:{base}").as_bytes())
        };
        let commits: Vec<Value> = (0..cmp.ahead_by)
            .map(|i| {
                let sha = if i + 1 == cmp.ahead_by && is_sha(head) {
                    head.to_owned()
                } else {
                    sha1_hex(format!("{base}...{head}:{i}").as_bytes())
                };
                commit(&sha, &format!("Commit {} of {}", i + 1, cmp.ahead_by))
            })
            .collect();
        let head_sha = commits
            .last()
            .and_then(|c| c["sha"].as_str())
            .map_or_else(|| base_sha.clone(), str::to_owned);
        let status = match (cmp.ahead_by, cmp.behind_by) {
            (0, 0) => "identical",
            (_, 0) => "ahead",
            (0, _) => "behind",
            _ => "diverged",
        };
        let files: Vec<Value> = cmp
            .files
            .iter()
            .take(MAX_COMPARE_FILES)
            .map(|f| self.file_json_at(repo, &base_sha, &head_sha, f))
            .collect();
        let mut out = json!({
            "url": format!("{api}/compare/{base}...{head}"),
            "html_url": html,
            "permalink_url": format!("{HTML_BASE}/{}/compare/{base_sha}...{head_sha}", repo.full_name),
            "diff_url": format!("{html}.diff"),
            "patch_url": format!("{html}.patch"),
            "status": status,
            "ahead_by": cmp.ahead_by,
            "behind_by": cmp.behind_by,
            "total_commits": cmp.ahead_by,
            "commits": commits,
            "files": files,
        });
        out["base_commit"] = commit(&base_sha, "Base");
        out["merge_base_commit"] = commit(&base_sha, "Base");
        Reply::json(200, out)
    }

    /// `GET git/trees/{sha}`: the files stored with [`FakeGitHub::put_content`] at that ref
    /// (a SHA, or a branch a PR points at), as git trees with real blob and tree ids.
    fn get_tree(&self, ctx: &Ctx, full: &str, requested: &str) -> Reply {
        let repo = &self.repos[&full.to_ascii_lowercase()];
        let files: Vec<(&str, &[u8])> = ref_candidates(repo, requested)
            .iter()
            .map(|r| {
                let mut files: Vec<(&str, &[u8])> = repo
                    .contents
                    .iter()
                    .filter(|((at, _), _)| at == r)
                    .map(|((_, path), bytes)| (path.as_str(), bytes.as_slice()))
                    .collect();
                files.sort();
                files
            })
            .find(|files| !files.is_empty())
            .unwrap_or_default();
        if files.is_empty() {
            return Reply::error(404, "Not Found", DOCS_TREES);
        }
        let mut root = TreeDir::default();
        for (path, bytes) in files {
            root.insert(path, bytes);
        }
        // GitHub recurses for any value of `recursive`, even "0" and "false".
        let recursive = ctx.query("recursive").is_some();
        let api = format!("{}/repos/{}/git", self.url, repo.full_name);
        let mut entries = Vec::new();
        let sha = root.write(&api, "", recursive, true, &mut entries);
        let truncated = entries.len() > self.tree_entry_limit;
        entries.truncate(self.tree_entry_limit);
        Reply::json(
            200,
            json!({
                "sha": sha,
                "url": format!("{api}/trees/{sha}"),
                "tree": entries,
                "truncated": truncated,
            }),
        )
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
        out["head"] = branch(&pr.head_ref, &pr.head_sha);
        out["base"] = branch(&pr.base_ref, &pr.base_sha);
        out["_links"] = links;
        out
    }

    fn file_json(&self, repo: &Repo, pull: &Pull, file: &PullFile) -> Value {
        self.file_json_at(repo, &pull.pr.base_sha, &pull.pr.head_sha, file)
    }

    /// A files-list entry between two commits (a PR's or a comparison's).
    fn file_json_at(&self, repo: &Repo, base: &str, head: &str, file: &PullFile) -> Value {
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
        // Like GitHub, the field is absent (not null) on a thread's root.
        if let Some(parent) = c.in_reply_to_id {
            out["in_reply_to_id"] = json!(parent);
        }
        out
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

/// A directory of stored contents, to list as git trees.
#[derive(Default)]
struct TreeDir<'a> {
    entries: BTreeMap<&'a str, TreeNode<'a>>,
}

enum TreeNode<'a> {
    Blob(&'a [u8]),
    Dir(TreeDir<'a>),
}

impl<'a> TreeDir<'a> {
    fn insert(&mut self, path: &'a str, bytes: &'a [u8]) {
        match path.split_once('/') {
            None => {
                self.entries.insert(path, TreeNode::Blob(bytes));
            }
            Some((dir, rest)) => {
                let node = self
                    .entries
                    .entry(dir)
                    .or_insert_with(|| TreeNode::Dir(TreeDir::default()));
                if let TreeNode::Dir(dir) = node {
                    dir.insert(rest, bytes);
                }
            }
        }
    }

    /// Appends the entries to show in git order (a directory right before its contents) and
    /// returns this tree's git id. Nested entries are shown only when `recursive`.
    fn write(
        &self,
        api: &str,
        prefix: &str,
        recursive: bool,
        shown: bool,
        out: &mut Vec<Value>,
    ) -> String {
        let mut children: Vec<(&str, &TreeNode)> =
            self.entries.iter().map(|(k, v)| (*k, v)).collect();
        // Git orders a directory as if its name ended in `/`.
        children.sort_by_key(|(name, node)| match node {
            TreeNode::Dir(_) => format!("{name}/"),
            TreeNode::Blob(_) => (*name).to_owned(),
        });
        let mut raw = Vec::new();
        for (name, node) in children {
            let path = format!("{prefix}{name}");
            let (mode, sha) = match node {
                TreeNode::Blob(bytes) => {
                    let sha = git_blob_sha(bytes);
                    if shown {
                        out.push(json!({
                            "path": path, "mode": "100644", "type": "blob", "sha": sha,
                            "size": bytes.len(), "url": format!("{api}/blobs/{sha}"),
                        }));
                    }
                    ("100644", sha)
                }
                TreeNode::Dir(dir) => {
                    let at = out.len();
                    if shown {
                        out.push(Value::Null);
                    }
                    let sha =
                        dir.write(api, &format!("{path}/"), recursive, shown && recursive, out);
                    if shown {
                        out[at] = json!({
                            "path": path, "mode": "040000", "type": "tree", "sha": sha,
                            "url": format!("{api}/trees/{sha}"),
                        });
                    }
                    ("40000", sha)
                }
            };
            raw.extend_from_slice(format!("{mode} {name}\0").as_bytes());
            raw.extend_from_slice(&hex::decode(&sha).expect("SHA-1 hex"));
        }
        let mut data = format!("tree {}\0", raw.len()).into_bytes();
        data.extend_from_slice(&raw);
        sha1_hex(&data)
    }
}

// ---------------------------------------------------------------------------------------------
// GraphQL: a small parser, and an executor for the review-thread part of GitHub's schema
// ---------------------------------------------------------------------------------------------

/// A field of a selection set, arguments unevaluated.
#[derive(Clone, Debug)]
struct GqlField {
    alias: Option<String>,
    name: String,
    args: Vec<(String, GqlValue)>,
    selection: Vec<GqlField>,
}

#[derive(Clone, Debug)]
enum GqlValue {
    Var(String),
    Const(Value),
    List(Vec<GqlValue>),
    Object(Vec<(String, GqlValue)>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GqlOp {
    Query,
    Mutation,
}

/// Parses one operation (query or mutation, optionally named, with variable definitions whose
/// types are not checked); fragments, directives and block strings are refused.
struct GqlParser<'s> {
    src: &'s str,
    pos: usize,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

impl<'s> GqlParser<'s> {
    fn parse(src: &'s str) -> Result<(GqlOp, Vec<GqlField>), String> {
        let mut p = GqlParser { src, pos: 0 };
        let op = if p.peek() == Some(b'{') {
            GqlOp::Query
        } else {
            match p.name()?.as_str() {
                "query" => GqlOp::Query,
                "mutation" => GqlOp::Mutation,
                other => {
                    return Err(p.error(&format!(
                        "expected `query`, `mutation` or `{{`, found `{other}`"
                    )));
                }
            }
        };
        if p.peek().is_some_and(is_name_start) {
            p.name()?;
        }
        if p.peek() == Some(b'(') {
            p.skip_variable_definitions()?;
        }
        if p.peek() == Some(b'@') {
            return Err(p.error("directives are not supported by the fake"));
        }
        let selection = p.selection_set()?;
        if p.peek().is_some() {
            return Err(p.error("the fake supports one operation per document and no fragments"));
        }
        Ok((op, selection))
    }

    fn error(&self, detail: &str) -> String {
        let before = &self.src[..self.pos.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("Parse error at [{line}, {column}]: {detail}")
    }

    fn skip_ignored(&mut self) {
        let b = self.src.as_bytes();
        while let Some(&c) = b.get(self.pos) {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => self.pos += 1,
                b'#' => {
                    while b.get(self.pos).is_some_and(|&c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ignored();
        self.src.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", c as char)))
        }
    }

    fn name(&mut self) -> Result<String, String> {
        self.skip_ignored();
        let b = self.src.as_bytes();
        let start = self.pos;
        if !b.get(self.pos).copied().is_some_and(is_name_start) {
            return Err(self.error("expected a name"));
        }
        while b
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.pos += 1;
        }
        Ok(self.src[start..self.pos].to_owned())
    }

    /// Variables are read from the request's `variables`; their declared types are not checked.
    fn skip_variable_definitions(&mut self) -> Result<(), String> {
        self.expect(b'(')?;
        let mut depth = 1;
        while depth > 0 {
            match self.src.as_bytes().get(self.pos) {
                None => return Err(self.error("unclosed variable definitions")),
                Some(b'"') => {
                    self.string()?;
                    continue;
                }
                Some(b'(') => depth += 1,
                Some(b')') => depth -= 1,
                _ => {}
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn selection_set(&mut self) -> Result<Vec<GqlField>, String> {
        self.expect(b'{')?;
        let mut fields = Vec::new();
        while !self.eat(b'}') {
            match self.peek() {
                None => return Err(self.error("unclosed selection set")),
                Some(b'.') => return Err(self.error("fragments are not supported by the fake")),
                _ => fields.push(self.field()?),
            }
        }
        if fields.is_empty() {
            return Err(self.error("empty selection set"));
        }
        Ok(fields)
    }

    fn field(&mut self) -> Result<GqlField, String> {
        let first = self.name()?;
        let (alias, name) = if self.eat(b':') {
            (Some(first), self.name()?)
        } else {
            (None, first)
        };
        let mut args = Vec::new();
        if self.eat(b'(') {
            while !self.eat(b')') {
                let arg = self.name()?;
                self.expect(b':')?;
                args.push((arg, self.value()?));
            }
        }
        if self.peek() == Some(b'@') {
            return Err(self.error("directives are not supported by the fake"));
        }
        let selection = if self.peek() == Some(b'{') {
            self.selection_set()?
        } else {
            Vec::new()
        };
        Ok(GqlField {
            alias,
            name,
            args,
            selection,
        })
    }

    fn value(&mut self) -> Result<GqlValue, String> {
        match self.peek() {
            Some(b'$') => {
                self.pos += 1;
                Ok(GqlValue::Var(self.name()?))
            }
            Some(b'"') => Ok(GqlValue::Const(Value::String(self.string()?))),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                while !self.eat(b']') {
                    if self.peek().is_none() {
                        return Err(self.error("unclosed list"));
                    }
                    items.push(self.value()?);
                }
                Ok(GqlValue::List(items))
            }
            Some(b'{') => {
                self.pos += 1;
                let mut fields = Vec::new();
                while !self.eat(b'}') {
                    let key = self.name()?;
                    self.expect(b':')?;
                    fields.push((key, self.value()?));
                }
                Ok(GqlValue::Object(fields))
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let b = self.src.as_bytes();
                let start = self.pos;
                self.pos += 1;
                while b
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_digit() || b".eE+-".contains(c))
                {
                    self.pos += 1;
                }
                let text = &self.src[start..self.pos];
                serde_json::from_str(text)
                    .map(GqlValue::Const)
                    .map_err(|_| self.error(&format!("bad number `{text}`")))
            }
            Some(c) if is_name_start(c) => Ok(GqlValue::Const(match self.name()?.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                enum_value => Value::String(enum_value.to_owned()),
            })),
            _ => Err(self.error("expected a value")),
        }
    }

    /// A `"..."` string at the cursor; GraphQL's escapes are JSON's.
    fn string(&mut self) -> Result<String, String> {
        if self.src[self.pos..].starts_with("\"\"\"") {
            return Err(self.error("block strings are not supported by the fake"));
        }
        let b = self.src.as_bytes();
        let start = self.pos;
        self.pos += 1;
        loop {
            match b.get(self.pos) {
                None | Some(b'\n') => return Err(self.error("unterminated string")),
                Some(b'\\') => self.pos += 2,
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                _ => self.pos += 1,
            }
        }
        serde_json::from_str(&self.src[start..self.pos]).map_err(|_| self.error("bad string"))
    }
}

/// One GraphQL request being executed.
struct GqlExec {
    variables: serde_json::Map<String, Value>,
    errors: Vec<Value>,
    /// A validation error happened (unknown field or argument, wrong selection): like GitHub,
    /// the answer then has no `data`, and a mutation is not applied.
    invalid: bool,
    /// Validate a mutation without applying it.
    dry_run: bool,
    installation_id: u64,
    scope: Option<BTreeSet<String>>,
}

impl GqlExec {
    fn value(&self, v: &GqlValue) -> Value {
        match v {
            GqlValue::Var(name) => self.variables.get(name).cloned().unwrap_or(Value::Null),
            GqlValue::Const(v) => v.clone(),
            GqlValue::List(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            GqlValue::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), self.value(v)))
                    .collect(),
            ),
        }
    }

    fn arg(&self, f: &GqlField, name: &str) -> Value {
        f.args
            .iter()
            .find(|(n, _)| n == name)
            .map_or(Value::Null, |(_, v)| self.value(v))
    }

    fn invalid(&mut self, path: &[Value], message: String, extensions: Value) {
        self.invalid = true;
        self.errors
            .push(json!({ "path": path, "extensions": extensions, "message": message }));
    }

    /// An execution error: the field is `null` and the rest of the answer stands.
    fn fail(&mut self, path: &[Value], kind: &str, message: String) {
        self.errors
            .push(json!({ "type": kind, "path": path, "message": message }));
    }

    fn undefined(&mut self, type_name: &str, f: &GqlField, path: &[Value]) -> Resolved {
        self.invalid(
            path,
            format!("Field '{}' doesn't exist on type '{type_name}'", f.name),
            json!({ "code": "undefinedField", "typeName": type_name, "fieldName": f.name }),
        );
        Resolved::Null
    }

    /// Unknown arguments and missing required ones are validation errors.
    fn check_args(
        &mut self,
        f: &GqlField,
        allowed: &[&str],
        required: &[&str],
        path: &[Value],
    ) -> bool {
        if let Some((name, _)) = f.args.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
            self.invalid(
                path,
                format!("Field '{}' doesn't accept argument '{name}'", f.name),
                json!({ "code": "argumentNotAccepted", "name": f.name, "typeName": "Field", "argumentName": name }),
            );
            return false;
        }
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|r| self.arg(f, r).is_null())
            .collect();
        if !missing.is_empty() {
            self.invalid(
                path,
                format!(
                    "Field '{}' is missing required arguments: {}",
                    f.name,
                    missing.join(", ")
                ),
                json!({ "code": "missingRequiredArguments", "className": "Field", "name": f.name, "arguments": missing.join(", ") }),
            );
            return false;
        }
        true
    }

    fn typed_arg(
        &mut self,
        f: &GqlField,
        name: &str,
        expected: &str,
        ok: fn(&Value) -> bool,
        path: &[Value],
    ) -> Result<Value, ()> {
        let v = self.arg(f, name);
        if v.is_null() || ok(&v) {
            return Ok(v);
        }
        self.invalid(
            path,
            format!(
                "Argument '{name}' on Field '{}' has an invalid value ({v}). Expected type '{expected}'.",
                f.name
            ),
            json!({ "code": "argumentLiteralsIncompatible", "typeName": "Field", "argumentName": name }),
        );
        Err(())
    }

    fn int_arg(&mut self, f: &GqlField, name: &str, path: &[Value]) -> Result<Option<i64>, ()> {
        Ok(self
            .typed_arg(f, name, "Int", |v| v.as_i64().is_some(), path)?
            .as_i64())
    }

    fn string_arg(
        &mut self,
        f: &GqlField,
        name: &str,
        path: &[Value],
    ) -> Result<Option<String>, ()> {
        Ok(self
            .typed_arg(f, name, "String", Value::is_string, path)?
            .as_str()
            .map(str::to_owned))
    }

    fn can_access(&self, repo: &Repo) -> bool {
        let key = repo.full_name.to_ascii_lowercase();
        repo.installation_id == self.installation_id
            && self.scope.as_ref().is_none_or(|s| s.contains(&key))
    }
}

/// An object of the schema subset, owning what its fields need.
#[derive(Clone)]
enum GqlObj {
    Query,
    Mutation,
    /// Lowercase full name.
    Repository(String),
    PullRequest(String, u64),
    Connection {
        type_name: &'static str,
        edge_type: &'static str,
        edges: Vec<(String, GqlObj)>,
        total: usize,
        has_next: bool,
        has_prev: bool,
    },
    Edge {
        type_name: &'static str,
        cursor: String,
        node: Box<GqlObj>,
    },
    PageInfo {
        start: Option<String>,
        end: Option<String>,
        has_next: bool,
        has_prev: bool,
    },
    Thread(ThreadView),
    Comment(CommentView),
    Actor(String),
    ThreadPayload {
        type_name: &'static str,
        thread: ThreadView,
        client_mutation_id: Value,
    },
}

impl GqlObj {
    fn type_name(&self) -> &'static str {
        match self {
            GqlObj::Query => "Query",
            GqlObj::Mutation => "Mutation",
            GqlObj::Repository(_) => "Repository",
            GqlObj::PullRequest(..) => "PullRequest",
            GqlObj::Connection { type_name, .. }
            | GqlObj::Edge { type_name, .. }
            | GqlObj::ThreadPayload { type_name, .. } => type_name,
            GqlObj::PageInfo { .. } => "PageInfo",
            GqlObj::Thread(_) => "PullRequestReviewThread",
            GqlObj::Comment(_) => "PullRequestReviewComment",
            GqlObj::Actor(login) if login.ends_with("[bot]") => "Bot",
            GqlObj::Actor(_) => "User",
        }
    }
}

enum Resolved {
    Scalar(Value),
    Object(GqlObj),
    Objects(Vec<GqlObj>),
    Null,
}

/// A review thread: a root comment and its replies.
#[derive(Clone)]
struct ThreadView {
    root: u64,
    path: String,
    line: u64,
    start_line: Option<u64>,
    side: String,
    start_side: Option<String>,
    state: ThreadState,
    comments: Vec<CommentView>,
}

#[derive(Clone)]
struct CommentView {
    id: u64,
    body: String,
    author: String,
    path: String,
    line: u64,
    outdated: bool,
    created_at: DateTime<Utc>,
    diff_hunk: String,
    url: String,
    reply_to: Option<Box<CommentView>>,
}

fn gql_cursor(index: usize) -> String {
    base64_encode(format!("cursor:v2:{index}").as_bytes())
}

fn thread_node_id(root: u64) -> String {
    format!("PRRT_kwDO{root:010}")
}

impl World {
    /// `POST /graphql` (and `/api/graphql`): installation token required, like REST.
    fn graphql(&mut self, ctx: &Ctx) -> Reply {
        let (installation_id, scope) = match self.live_token(ctx) {
            Ok(info) => (info.installation_id, info.repositories.clone()),
            Err(_) => return Reply::error(401, "Bad credentials", DOCS_GRAPHQL),
        };
        let body = match ctx.json_body() {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let errors =
            |message: String| Reply::json(200, json!({ "errors": [{ "message": message }] }));
        let Some(query) = body.get("query").and_then(Value::as_str) else {
            return errors("A query attribute must be specified and must be a string.".into());
        };
        let variables = match body.get("variables") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(vars)) => vars.clone(),
            Some(other) => return errors(format!("Variables must be an object, got {other}")),
        };
        let (op, selection) = match GqlParser::parse(query) {
            Ok(parsed) => parsed,
            Err(message) => return errors(message),
        };
        let mut ex = GqlExec {
            variables,
            errors: Vec::new(),
            invalid: false,
            dry_run: op == GqlOp::Mutation,
            installation_id,
            scope,
        };
        let root = match op {
            GqlOp::Query => GqlObj::Query,
            GqlOp::Mutation => GqlObj::Mutation,
        };
        let mut data = self.gql_render(&mut ex, &root, &selection, &[]);
        if ex.dry_run && !ex.invalid {
            // Validated: now apply the mutation for real.
            ex.dry_run = false;
            ex.errors.clear();
            data = self.gql_render(&mut ex, &root, &selection, &[]);
        }
        if ex.invalid {
            return Reply::json(200, json!({ "errors": ex.errors }));
        }
        let mut out = json!({ "data": data });
        if !ex.errors.is_empty() {
            out["errors"] = Value::Array(ex.errors);
        }
        Reply::json(200, out)
    }

    fn gql_render(
        &mut self,
        ex: &mut GqlExec,
        obj: &GqlObj,
        selection: &[GqlField],
        path: &[Value],
    ) -> Value {
        let mut out = serde_json::Map::new();
        for f in selection {
            let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
            let mut field_path = path.to_vec();
            field_path.push(json!(key));
            let value = if f.name == "__typename" {
                json!(obj.type_name())
            } else {
                let resolved = self.gql_resolve(ex, obj, f, &field_path);
                self.gql_complete(ex, f, resolved, &field_path)
            };
            out.insert(key, value);
        }
        Value::Object(out)
    }

    fn gql_complete(
        &mut self,
        ex: &mut GqlExec,
        f: &GqlField,
        resolved: Resolved,
        path: &[Value],
    ) -> Value {
        let mismatch =
            json!({ "code": "selectionMismatch", "nodeName": format!("field '{}'", f.name) });
        match resolved {
            Resolved::Null => Value::Null,
            Resolved::Scalar(v) => {
                if !f.selection.is_empty() {
                    ex.invalid(
                        path,
                        format!("Selections can't be made on scalars (field '{}')", f.name),
                        mismatch,
                    );
                }
                v
            }
            Resolved::Object(_) | Resolved::Objects(_) if f.selection.is_empty() => {
                ex.invalid(
                    path,
                    format!(
                        "Field must have selections (field '{}' returns an object but has no selections. Did you mean '{} {{ ... }}'?)",
                        f.name, f.name
                    ),
                    mismatch,
                );
                Value::Null
            }
            Resolved::Object(o) => self.gql_render(ex, &o, &f.selection, path),
            Resolved::Objects(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, o) in items.iter().enumerate() {
                    let mut item_path = path.to_vec();
                    item_path.push(json!(i));
                    out.push(self.gql_render(ex, o, &f.selection, &item_path));
                }
                Value::Array(out)
            }
        }
    }

    fn gql_resolve(
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

/// A connection page with GitHub's rules: `first` (at most 100) is required, `after` must be
/// a cursor it handed out. `last`/`before` are not supported by the fake.
fn gql_connection(
    ex: &mut GqlExec,
    f: &GqlField,
    path: &[Value],
    field: &str,
    type_name: &'static str,
    edge_type: &'static str,
    items: Vec<GqlObj>,
) -> Resolved {
    if !ex.check_args(f, &["first", "last", "after", "before"], &[], path) {
        return Resolved::Null;
    }
    let (Ok(first), Ok(last), Ok(after), Ok(before)) = (
        ex.int_arg(f, "first", path),
        ex.int_arg(f, "last", path),
        ex.string_arg(f, "after", path),
        ex.string_arg(f, "before", path),
    ) else {
        return Resolved::Null;
    };
    if last.is_some() || before.is_some() {
        ex.fail(
            path,
            "UNSUPPORTED",
            format!("the fake paginates `{field}` with `first`/`after` only"),
        );
        return Resolved::Null;
    }
    let first = match first {
        None => {
            ex.fail(
                path,
                "MISSING_PAGINATION_BOUNDARIES",
                format!("You must provide a `first` or `last` value to properly paginate the `{field}` connection."),
            );
            return Resolved::Null;
        }
        Some(n) if n < 0 => {
            ex.fail(
                path,
                "INVALID_PAGINATION",
                format!("`first` on the `{field}` connection cannot be less than zero."),
            );
            return Resolved::Null;
        }
        Some(n) if n > 100 => {
            ex.fail(
                path,
                "EXCESSIVE_PAGINATION",
                format!("Requesting {n} records on the `{field}` connection exceeds the `first` limit of 100 records."),
            );
            return Resolved::Null;
        }
        Some(n) => n as usize,
    };
    let total = items.len();
    let start = match after {
        None => 0,
        Some(cursor) => match (0..total).find(|&i| gql_cursor(i) == cursor) {
            Some(i) => i + 1,
            None => {
                ex.fail(
                    path,
                    "INVALID_CURSOR_ARGUMENTS",
                    format!("`{cursor}` does not appear to be a valid cursor."),
                );
                return Resolved::Null;
            }
        },
    };
    let end = (start + first).min(total);
    let edges = items
        .into_iter()
        .enumerate()
        .skip(start)
        .take(end - start)
        .map(|(i, o)| (gql_cursor(i), o))
        .collect();
    Resolved::Object(GqlObj::Connection {
        type_name,
        edge_type,
        edges,
        total,
        has_next: end < total,
        has_prev: start > 0,
    })
}

/// The SHAs a ref may stand for: itself (a SHA, or a ref contents were stored under), then
/// the SHAs of PR heads and bases on a branch of that name.
fn ref_candidates(repo: &Repo, requested: &str) -> Vec<String> {
    let mut candidates = vec![requested.to_owned()];
    for pull in repo.pulls.values() {
        if pull.pr.head_ref == requested {
            candidates.push(pull.pr.head_sha.clone());
        }
        if pull.pr.base_ref == requested {
            candidates.push(pull.pr.base_sha.clone());
        }
    }
    candidates
}

/// Whether a token scoped to some repositories includes `key` (lowercase full name).
fn token_in_scope(info: &TokenInfo, key: &str) -> bool {
    info.repositories
        .as_ref()
        .is_none_or(|scope| scope.contains(key))
}

fn token_permissions() -> Value {
    json!({ "checks": "write", "contents": "read", "issues": "write", "metadata": "read", "pull_requests": "write" })
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
        in_reply_to_id: None,
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
