//! The world model: what the fake knows (installations, repositories, pull requests and all that is
//! on them, tokens, recorded requests), and the public types tests set it up and inspect it with.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use jsonwebtoken::DecodingKey;

use super::faults::Faults;

use super::MAX_TREE_ENTRIES;
use super::auth::app_public_key_pem;

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
    /// Annotations a CI App attached (`GET /check-runs/{id}/annotations`).
    pub annotations: Vec<Annotation>,
    /// The job's log, for a run of GitHub Actions (`GET /actions/jobs/{id}/logs`).
    pub log: Option<String>,
}

/// One annotation of a check run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    pub path: String,
    pub line: u64,
    /// `notice`, `warning` or `failure`.
    pub level: String,
    pub message: String,
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

/// Everything the fake knows. Public only so [`FakeGitHub::wait_until`] callbacks can look.
pub struct World {
    pub(super) url: String,
    pub(super) decoding_key: DecodingKey,
    pub(super) installations: BTreeSet<u64>,
    /// Keyed by lowercase `owner/name`: GitHub's names are case-insensitive.
    pub(super) repos: BTreeMap<String, Repo>,
    pub(super) tokens: HashMap<String, TokenInfo>,
    pub(super) tokens_issued: usize,
    pub(super) token_lifetime: chrono::Duration,
    pub(super) relative_links: bool,
    pub(super) tree_entry_limit: usize,
    pub(super) failures: Vec<Failure>,
    pub(super) faults: Option<Faults>,
    pub(super) requests: Vec<RecordedRequest>,
    pub(super) next_id: u64,
    /// Permissions granted to the App beyond the manifest's (`contents` → `write`), as an
    /// administrator grants them; every installation token carries them.
    pub(super) granted: BTreeMap<String, String>,
    /// Apps created through the manifest flow, by their one-time code.
    pub(super) created_from_manifest: Vec<super::manifests::CreatedFromManifest>,
}

pub(super) struct Repo {
    pub(super) id: u64,
    pub(super) full_name: String,
    pub(super) installation_id: u64,
    pub(super) pulls: BTreeMap<u64, Pull>,
    /// (ref or SHA, path) → bytes.
    pub(super) contents: HashMap<(String, String), Vec<u8>>,
    pub(super) check_runs: Vec<CheckRun>,
    /// (base, head) as the test named them → what `compare/{base}...{head}` answers.
    pub(super) compares: HashMap<(String, String), Compare>,
    /// (issue comment id, reaction content, who reacted), in the order they were added.
    pub(super) reactions: Vec<(u64, String, String)>,
    /// (review comment id, reaction content, who reacted): people's reactions to threads,
    /// rolled up in the comment's `reactions` as GitHub does.
    pub(super) review_reactions: Vec<(u64, String, String)>,
    /// Lowercase login → role (`read`, `triage`, `write`, `maintain`, `admin`) of people
    /// given one; everyone else reads this public repository.
    pub(super) roles: HashMap<String, String>,
    /// Git data made through the API: trees (SHA → path → bytes), commits and branches.
    pub(super) git: GitData,
    /// Commit statuses, in the order they were set.
    pub(super) statuses: Vec<StatusEntry>,
}

/// Trees, commits and refs made with the git data API.
#[derive(Default)]
pub(super) struct GitData {
    pub(super) trees: HashMap<String, BTreeMap<String, Vec<u8>>>,
    /// SHA → (tree, parents, message).
    pub(super) commits: HashMap<String, (String, Vec<String>, String)>,
    /// Full ref name (`refs/heads/x`) → SHA.
    pub(super) refs: BTreeMap<String, String>,
}

/// One commit status (`POST /repos/{o}/{r}/statuses/{sha}`, set by the test).
#[derive(Clone, Debug)]
pub struct StatusEntry {
    pub sha: String,
    pub context: String,
    /// `error`, `failure`, `pending` or `success`.
    pub state: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
}

pub(super) struct Compare {
    pub(super) files: Vec<PullFile>,
    pub(super) ahead_by: u64,
    pub(super) behind_by: u64,
}

/// Per-thread state GraphQL exposes, keyed by the thread's root comment id.
#[derive(Clone, Debug, Default)]
pub(super) struct ThreadState {
    pub(super) resolved_by: Option<String>,
    pub(super) outdated: bool,
}

pub(super) struct Pull {
    pub(super) id: u64,
    pub(super) pr: PullRequest,
    pub(super) files: Vec<PullFile>,
    pub(super) reviews: Vec<Review>,
    pub(super) issue_comments: Vec<IssueComment>,
    pub(super) previous_heads: Vec<String>,
    /// The fork the head branch lives in (`someone/fork`); `None`: this repository.
    pub(super) head_fork: Option<String>,
    pub(super) threads: BTreeMap<u64, ThreadState>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

pub(super) struct TokenInfo {
    pub(super) installation_id: u64,
    pub(super) expires_at: DateTime<Utc>,
    pub(super) revoked: bool,
    /// Lowercase full names the token was scoped to; `None` = all repos of the installation.
    pub(super) repositories: Option<BTreeSet<String>>,
}

pub(super) struct Failure {
    pub(super) method: String,
    pub(super) path_prefix: String,
    pub(super) status: u16,
    pub(super) remaining: usize,
    pub(super) headers: Vec<(String, String)>,
}

impl Repo {
    pub(super) fn pull_mut(&mut self, number: u64) -> &mut Pull {
        let name = self.full_name.clone();
        self.pulls
            .get_mut(&number)
            .unwrap_or_else(|| panic!("fake GitHub: no PR {name}#{number}; call add_pull first"))
    }
}

impl World {
    pub(super) fn new(url: String) -> World {
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
            granted: BTreeMap::new(),
            created_from_manifest: Vec::new(),
        }
    }

    pub(super) fn next_id(&mut self) -> u64 {
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

    /// Where branch `name` points (for [`FakeGitHub::wait_until`] callbacks).
    pub fn branch(&self, full_name: &str, name: &str) -> Option<&str> {
        self.repos
            .get(&full_name.to_ascii_lowercase())
            .and_then(|r| r.git.refs.get(&format!("refs/heads/{name}")))
            .map(String::as_str)
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

    pub(super) fn repo_mut(&mut self, full_name: &str) -> &mut Repo {
        self.repos
            .get_mut(&full_name.to_ascii_lowercase())
            .unwrap_or_else(|| panic!("fake GitHub: no repo {full_name}; call add_repo first"))
    }

    pub(super) fn pull(&self, full_name: &str, number: u64) -> Option<&Pull> {
        self.repos
            .get(&full_name.to_ascii_lowercase())?
            .pulls
            .get(&number)
    }

    /// A human-readable dump for timeout panics.
    pub(super) fn describe(&self) -> String {
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

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
