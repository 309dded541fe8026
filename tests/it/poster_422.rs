//! A review GitHub refuses (422) for some of its threads: the poster finds them with pending
//! probe reviews, posts the rest as the one submitted review, and lists the refused ones in
//! its body. Against the fake GitHub, which validates threads like GitHub.

use critic::domain::PrNumber;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use critic::config::Config;
use critic::diff::Side;
use critic::github::{
    GitHub, GitHubError, Installation, NewReview, RepoName, Review, ReviewComment,
};
use critic::poster::bisect::{MAX_PROBES, ReviewApi, post_resilient};
use critic::poster::review_marker;

use crate::support::app::{INSTALLATION, REPO, World};
use crate::support::github::{FakeGitHub, PullFile, PullRequest};

const NUMBER: u64 = 1;
const HEAD: &str = "2222222222222222222222222222222222222222";
/// New lines 1-20 of `src/lib.rs` are in the diff; a thread on line 100 or more is refused.
const GOOD_LINES: u32 = 20;

/// Critic's client, able to inject a fake GitHub failure into the n-th pending review or
/// the n-th deletion the poster makes.
struct Client {
    gh: Installation,
    fake: FakeGitHub,
    pending_calls: AtomicUsize,
    delete_calls: AtomicUsize,
    fail_pending: Option<(usize, u16)>,
    fail_delete: Option<(usize, u16)>,
}

impl Client {
    /// Arms a failure of the next matching request when this is the `nth` call (1-based):
    /// one that lasts through all the client's own retries (GitHub down, not a blip).
    fn maybe_fail(&self, calls: &AtomicUsize, at: Option<(usize, u16)>, method: &str, path: &str) {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((nth, status)) = at
            && nth == n
        {
            self.fake.fail_next(method, path, status, CLIENT_TRIES);
        }
    }
}

impl ReviewApi for Client {
    fn post_review(
        &self,
        repo: &RepoName,
        number: PrNumber,
        review: &NewReview,
    ) -> impl Future<Output = Result<Review, GitHubError>> + Send {
        self.gh.post_review(repo, number, review)
    }

    fn post_pending_review(
        &self,
        repo: &RepoName,
        number: PrNumber,
        commit_id: &str,
        body: &str,
        comments: &[ReviewComment],
    ) -> impl Future<Output = Result<Review, GitHubError>> + Send {
        let route = format!("/repos/{repo}/pulls/{number}/reviews");
        self.maybe_fail(&self.pending_calls, self.fail_pending, "POST", &route);
        self.gh
            .post_pending_review(repo, number, commit_id, body, comments)
    }

    fn delete_pending(
        &self,
        repo: &RepoName,
        number: PrNumber,
        review_id: u64,
    ) -> impl Future<Output = Result<(), GitHubError>> + Send {
        let route = format!("/repos/{repo}/pulls/{number}/reviews/{review_id}");
        self.maybe_fail(&self.delete_calls, self.fail_delete, "DELETE", &route);
        self.gh.delete_pending(repo, number, review_id)
    }

    fn list_reviews(
        &self,
        repo: &RepoName,
        number: PrNumber,
    ) -> impl Future<Output = Result<Vec<Review>, GitHubError>> + Send {
        self.gh.list_reviews(repo, number)
    }
}

async fn client(world: &World) -> Client {
    let config = Config::load_from(None, world.options().env).expect("settings");
    let gh = GitHub::new(&config)
        .expect("client")
        .installation(INSTALLATION)
        .expect("installation");
    Client {
        gh,
        fake: world.github.clone(),
        pending_calls: AtomicUsize::new(0),
        delete_calls: AtomicUsize::new(0),
        fail_pending: None,
        fail_delete: None,
    }
}

/// A PR whose `src/lib.rs` adds lines 1-20.
async fn world() -> World {
    let world = World::new().await;
    world.github.add_pull(
        REPO,
        PullRequest {
            number: NUMBER,
            head_sha: HEAD.into(),
            ..Default::default()
        },
    );
    let added: String = (1..=GOOD_LINES).map(|i| format!("\n+line {i}")).collect();
    let patch = format!("@@ -0,0 +1,{GOOD_LINES} @@{added}");
    world.github.set_pull_files(
        REPO,
        NUMBER,
        vec![PullFile::from_patch("src/lib.rs", &patch)],
    );
    world
}

fn thread(line: u32) -> ReviewComment {
    ReviewComment {
        path: "src/lib.rs".into(),
        line,
        side: Side::Right,
        start_line: None,
        start_side: None,
        body: format!("🟠 **Warning** (bug): on {line}\n\nDetails of {line}."),
    }
}

fn review(lines: &[u32]) -> NewReview {
    NewReview::comment(
        HEAD.into(),
        format!(
            "## Critic review\n\nSome findings.\n\n<sub>Critic comments only; it never approves or blocks.</sub>\n{}",
            review_marker(HEAD)
        ),
        lines.iter().copied().map(thread).collect(),
    )
}

fn repo() -> RepoName {
    REPO.parse().expect("repo")
}

/// Requests about the repository (not the app's token requests).
fn repo_requests(world: &World) -> usize {
    world
        .github
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/repos/"))
        .count()
}

/// Review POSTs the fake answered (submitted and pending, accepted or not).
fn review_posts(world: &World) -> usize {
    world
        .github
        .requests()
        .iter()
        .filter(|r| {
            r.method == "POST" && r.path_only().ends_with(&format!("/pulls/{NUMBER}/reviews"))
        })
        .count()
}

/// The PR holds exactly one review, submitted, and no pending one.
fn the_one_review(world: &World) -> crate::support::github::Review {
    let reviews = world.github.reviews(REPO, NUMBER);
    assert_eq!(reviews.len(), 1, "{reviews:#?}");
    assert_eq!(reviews[0].state, "COMMENTED");
    reviews[0].clone()
}

fn no_review_left(world: &World) {
    let reviews = world.github.reviews(REPO, NUMBER);
    assert!(reviews.is_empty(), "{reviews:#?}");
}

#[tokio::test]
async fn an_accepted_review_is_posted_in_one_call() {
    let world = world().await;
    let gh = client(&world).await;
    let lines: Vec<u32> = (1..=5).collect();
    let got = post_resilient(&gh, &repo(), PrNumber(NUMBER), &review(&lines))
        .await
        .expect("posted");
    assert_eq!((got.attempts, got.refused.len()), (1, 0));
    assert_eq!(the_one_review(&world).comments.len(), 5);
    assert_eq!(repo_requests(&world), 1);
}

#[tokio::test]
async fn one_bad_thread_among_ten_goes_to_the_body_and_nine_stay_inline() {
    let world = world().await;
    let gh = client(&world).await;
    let mut lines: Vec<u32> = (1..=9).collect();
    lines.insert(6, 150);
    let got = post_resilient(&gh, &repo(), PrNumber(NUMBER), &review(&lines))
        .await
        .expect("posted");
    assert_eq!(got.refused, vec![thread(150)]);
    assert_eq!(got.unchecked, 0);
    let posted = the_one_review(&world);
    assert_eq!(got.review.id, posted.id);
    let inline: Vec<u64> = posted.comments.iter().map(|c| c.line).collect();
    assert_eq!(inline, (1..=9).collect::<Vec<u64>>());
    assert!(
        posted
            .body
            .contains("<details><summary>1 finding(s) GitHub would not take as inline threads"),
        "{}",
        posted.body
    );
    assert!(
        posted.body.contains(
            "- `src/lib.rs` line 150: 🟠 **Warning** (bug): on 150\n  \n  Details of 150."
        ),
        "{}",
        posted.body
    );
    assert!(
        posted.body.ends_with(&review_marker(HEAD)),
        "{}",
        posted.body
    );
    assert_eq!(review_posts(&world), got.attempts);
    // The review, the listing, a probe without threads, about log2(10) halvings, the review.
    assert!(got.attempts <= 8, "{}", got.attempts);
}

#[tokio::test]
async fn several_bad_threads_are_all_found() {
    let world = world().await;
    let gh = client(&world).await;
    let lines = [1, 200, 2, 3, 201, 4, 5, 6, 7, 8, 9, 10, 202, 11, 12];
    let got = post_resilient(&gh, &repo(), PrNumber(NUMBER), &review(&lines))
        .await
        .expect("posted");
    let refused: Vec<u32> = got.refused.iter().map(|c| c.line).collect();
    assert_eq!(refused, [200, 201, 202]);
    let posted = the_one_review(&world);
    assert_eq!(posted.comments.len(), 12);
    for line in refused {
        assert!(posted.body.contains(&format!("`src/lib.rs` line {line}: ")));
    }
    assert_eq!(review_posts(&world), got.attempts);
}

#[tokio::test]
async fn when_every_thread_is_bad_the_review_still_lands_with_all_in_the_body() {
    let world = world().await;
    let gh = client(&world).await;
    let lines: Vec<u32> = (100..108).collect();
    let got = post_resilient(&gh, &repo(), PrNumber(NUMBER), &review(&lines))
        .await
        .expect("posted");
    assert_eq!(got.refused.len(), 8);
    let posted = the_one_review(&world);
    assert!(posted.comments.is_empty());
    assert!(posted.body.contains("8 finding(s) GitHub would not take"));
    assert!(got.attempts <= 3 + 2 * lines.len(), "{}", got.attempts);
}

#[tokio::test]
async fn past_the_probe_budget_the_unchecked_threads_go_to_the_body() {
    let world = world().await;
    let gh = client(&world).await;
    let mut lines: Vec<u32> = (100..140).collect();
    lines.extend(1..=GOOD_LINES);
    let got = post_resilient(&gh, &repo(), PrNumber(NUMBER), &review(&lines))
        .await
        .expect("posted");
    let pending_posts = world
        .github
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path_only().ends_with("/reviews"))
        .filter(|r| !r.body.contains("\"event\""))
        .count();
    assert_eq!(pending_posts, MAX_PROBES);
    assert!(got.unchecked > 0);
    assert_eq!(
        got.refused.len() + the_one_review(&world).comments.len(),
        lines.len()
    );
}

#[tokio::test]
async fn a_pending_review_left_by_a_crash_is_deleted_before_probing() {
    let world = world().await;
    let gh = client(&world).await;
    gh.post_pending_review(&repo(), PrNumber(NUMBER), HEAD, "", &[])
        .await
        .expect("stale pending review");
    let got = post_resilient(&gh, &repo(), PrNumber(NUMBER), &review(&[1, 2, 300, 3]))
        .await
        .expect("posted");
    assert_eq!(got.refused, vec![thread(300)]);
    assert_eq!(the_one_review(&world).comments.len(), 3);
}

#[tokio::test]
async fn a_pending_review_left_by_a_crash_does_not_block_a_review_without_threads() {
    let world = world().await;
    let gh = client(&world).await;
    gh.post_pending_review(&repo(), PrNumber(NUMBER), HEAD, "", &[])
        .await
        .expect("stale pending review");
    let got = post_resilient(&gh, &repo(), PrNumber(NUMBER), &review(&[]))
        .await
        .expect("posted");
    assert!(got.refused.is_empty());
    assert!(the_one_review(&world).comments.is_empty());
}

#[tokio::test]
async fn a_422_about_the_review_itself_is_an_error_not_a_search() {
    let world = world().await;
    let gh = client(&world).await;
    let mut wrong_commit = review(&[1, 2, 300]);
    wrong_commit.commit_id = "9999999999999999999999999999999999999999".into();
    let err = post_resilient(&gh, &repo(), PrNumber(NUMBER), &wrong_commit)
        .await
        .expect_err("refused");
    assert_eq!(err.status(), Some(422));
    assert!(err.to_string().contains("No commit found"), "{err}");
    // The review, the listing of pending reviews, one probe without threads.
    assert_eq!(review_posts(&world), 2);
    assert_eq!(repo_requests(&world), 3);
    no_review_left(&world);

    let mut too_long = review(&[1, 300]);
    too_long.body = "x".repeat(70_000);
    let err = post_resilient(&gh, &repo(), PrNumber(NUMBER), &too_long)
        .await
        .expect_err("refused");
    assert_eq!(err.status(), Some(422));
    assert!(err.to_string().contains("too long"), "{err}");
    no_review_left(&world);
}

/// Tries of one call by Critic's client with the default `github.max_retries` (4).
const CLIENT_TRIES: usize = 5;

#[tokio::test]
async fn a_5xx_that_outlasts_the_clients_retries_is_returned_without_a_search() {
    let world = world().await;
    let gh = client(&world).await;
    world.github.fail_next(
        "POST",
        &format!("/repos/{REPO}/pulls/{NUMBER}/reviews"),
        502,
        CLIENT_TRIES,
    );
    let err = post_resilient(&gh, &repo(), PrNumber(NUMBER), &review(&[1, 300]))
        .await
        .expect_err("502");
    assert_eq!(err.status(), Some(502));
    // The same post, tried again (after looking whether GitHub had made it), not split up.
    assert_eq!(review_posts(&world), CLIENT_TRIES);
    no_review_left(&world);
}

#[tokio::test]
async fn a_5xx_blip_is_retried_by_the_client_and_the_review_posted_once() {
    let world = world().await;
    let gh = client(&world).await;
    world.github.fail_next(
        "POST",
        &format!("/repos/{REPO}/pulls/{NUMBER}/reviews"),
        502,
        1,
    );
    let got = post_resilient(&gh, &repo(), PrNumber(NUMBER), &review(&[1, 300]))
        .await
        .expect("posted");
    assert_eq!(got.refused, vec![thread(300)]);
    assert_eq!(the_one_review(&world).comments.len(), 1);
}

#[tokio::test]
async fn a_5xx_mid_search_is_returned_and_leaves_no_pending_review() {
    let world = world().await;
    let lines: Vec<u32> = (1..=12).chain([400]).collect();

    // A probe refused by a server error.
    let mut gh = client(&world).await;
    gh.fail_pending = Some((3, 502));
    let err = post_resilient(&gh, &repo(), PrNumber(NUMBER), &review(&lines))
        .await
        .expect_err("502");
    assert_eq!(err.status(), Some(502));
    no_review_left(&world);

    // A probe that cannot be deleted: the error comes back, the probe is deleted anyway.
    let mut gh = client(&world).await;
    gh.fail_delete = Some((2, 500));
    let err = post_resilient(&gh, &repo(), PrNumber(NUMBER), &review(&lines))
        .await
        .expect_err("500");
    assert_eq!(err.status(), Some(500));
    no_review_left(&world);

    // The job's retry then posts the review once.
    let gh = client(&world).await;
    let got = post_resilient(&gh, &repo(), PrNumber(NUMBER), &review(&lines))
        .await
        .expect("posted");
    assert_eq!(got.refused, vec![thread(400)]);
    assert_eq!(the_one_review(&world).comments.len(), 12);
}

/// The job runs on a multi-threaded runtime: posting must be `Send` with Critic's client.
#[allow(dead_code)]
fn posting_with_the_installation_client_is_send(gh: &Installation, review: &NewReview) {
    fn is_send<T: Send>(_: T) {}
    is_send(post_resilient(gh, &repo(), PrNumber(NUMBER), review));
}
