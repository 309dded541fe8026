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

mod auth;
mod checks;
mod contents;
mod encoding;
pub mod faults;
mod git_data;
mod graphql;
mod graphql_parser;
mod graphql_schema;
mod issues;
mod manifests;
mod patches;
mod pulls;
mod read;
mod reviews;
mod scenarios;
mod server;
mod setup;
mod shapes;
mod world;

// The fake's public API, at the paths tests have always used; not every test binary (the
// benches) uses all of it.
#[allow(unused_imports)]
pub use auth::{app_jwt, app_private_key_pem, app_public_key_pem, sign_app_jwt, sign_jwt_with};
#[allow(unused_imports)]
pub use encoding::{git_blob_sha, github_base64};
#[allow(unused_imports)]
pub use manifests::{CREATED_WEBHOOK_SECRET, CreatedFromManifest};
#[allow(unused_imports)]
pub use scenarios::{Scenario, scenario_dir, scenario_dirs};
#[allow(unused_imports)]
pub use setup::CompletedRun;
#[allow(unused_imports)]
pub use world::{
    Annotation, AuthKind, CheckRun, CheckRunOutput, IssueComment, PullFile, PullRequest,
    RecordedRequest, Review, ReviewComment, StatusEntry, World,
};

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use http::StatusCode;
use tokio::sync::watch;

use faults::{FaultCounts, FaultPlan, Faults};
use server::handle;
use world::Failure;

/// The GitHub App id the fake accepts in JWTs (`iss`).
pub const APP_ID: u64 = 4242;
/// The app's slug; its bot user is `critic[bot]`.
pub const APP_SLUG: &str = "critic";
/// GitHub Actions' App id: the App of every check run a workflow job makes.
pub const GITHUB_ACTIONS_APP_ID: u64 = 15368;
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

/// Handle to a running fake; cheap to clone, all clones see the same world.
#[derive(Clone)]
pub struct FakeGitHub {
    shared: Arc<Shared>,
}

struct Shared {
    world: Mutex<World>,
    /// What the test has looked at of what Critic wrote (see `read.rs`).
    read: Mutex<read::Read>,
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
            read: Mutex::default(),
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
    fn read(&self) -> MutexGuard<'_, read::Read> {
        self.shared
            .read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update<T>(&self, change: impl FnOnce(&mut World) -> T) -> T {
        let out = change(&mut self.world());
        self.shared.version.send_modify(|v| *v += 1);
        out
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
        let reviews = self
            .world()
            .pull(full_name, number)
            .map(|p| p.reviews.clone())
            .unwrap_or_default();
        self.saw_reviews(&reviews);
        reviews
    }

    /// Conversation comments of a PR in creation order (empty if the PR does not exist).
    pub fn issue_comments(&self, full_name: &str, number: u64) -> Vec<IssueComment> {
        let comments = self
            .world()
            .pull(full_name, number)
            .map(|p| p.issue_comments.clone())
            .unwrap_or_default();
        self.saw_issue_comments(&comments);
        comments
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
        let comments = self.world().review_comments(full_name, number);
        self.saw_review_comments(&comments);
        comments
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
        let reviews = self
            .wait_until(&what, timeout, |w| {
                let reviews: Vec<Review> = w
                    .pull(full_name, number)
                    .map(|p| p.reviews.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| r.state != "PENDING")
                    .collect();
                (reviews.len() >= count).then_some(reviews)
            })
            .await;
        self.saw_reviews(&reviews);
        reviews
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
        let comments = self
            .wait_until(&what, timeout, |w| {
                let comments = w
                    .pull(full_name, number)
                    .map(|p| p.issue_comments.clone())
                    .unwrap_or_default();
                (comments.len() >= count).then_some(comments)
            })
            .await;
        self.saw_issue_comments(&comments);
        comments
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
        // A full SHA or its start.
        let head = format!("<!-- critic:summary-head sha={head_sha}");
        let summary = self
            .wait_until(&what, timeout, |w| {
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
            .await;
        self.saw_issue_comments(std::slice::from_ref(&summary));
        summary
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
