//! GitHub on a bad day: server errors (some after the write was done), secondary rate
//! limits, tokens that die early. Every review still lands exactly once.

use std::time::Duration;

use critic::domain::JobState;

use crate::support::app::{INSTALLATION, REPO, World};
use crate::support::faults::{Fault, FaultPlan, Faults};
use crate::support::github::{FakeGitHub, PullFile, PullRequest, scenario_dirs};
use crate::support::llm::Reply;
use crate::support::test_env;

const SUMMARY_MARKER: &str = "<!-- critic:summary -->";
/// A bad day is slower: retries back off, rate limits are waited for.
const LONG_WAIT: Duration = Duration::from_secs(120);

fn summaries(github: &FakeGitHub, number: u64) -> usize {
    github
        .issue_comments(REPO, number)
        .iter()
        .filter(|c| c.body.starts_with(SUMMARY_MARKER))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_real_pull_request_gets_one_review_through_thirty_percent_faults() {
    let Some(scenarios) = test_env::data("scenarios") else {
        return;
    };
    let world = World::new().await;
    let app = world
        .start_with(world.options().set("CRITIC_WORKER__CONCURRENCY", "4"))
        .await;
    app.llm().respond_with(Reply::finding_on_first_added_line);
    let github = app.github().clone();
    let mut loaded = Vec::new();
    for (i, dir) in scenario_dirs(&scenarios).iter().enumerate() {
        let s = github.load_scenario(dir, REPO, 100 + i as u64, INSTALLATION);
        loaded.push((s.name.clone(), s));
    }
    assert_eq!(loaded.len(), 40);
    github.set_faults(FaultPlan {
        token_dies_after: Some(Duration::from_secs(3)),
        ..FaultPlan::bad_day(13, 0.3)
    });
    for (_, s) in &loaded {
        let (status, _) = app
            .deliver(
                "pull_request",
                &app.pull_request_event("opened", REPO, s.number),
            )
            .await;
        assert_eq!(status, 202);
    }
    for (name, s) in &loaded {
        let reviews = github.wait_for_reviews(REPO, s.number, 1, LONG_WAIT).await;
        assert_eq!(reviews[0].commit_id, s.head_sha, "{name}");
    }
    let jobs = app.wait_idle().await;
    let faults = github.clear_faults();
    assert!(
        jobs.iter().all(|j| j.state == JobState::Done),
        "every job done: {jobs:?}"
    );
    // Faults of every kind were met on the way.
    assert!(faults.before > 20 && faults.after > 5, "{faults:?}");
    assert!(
        faults.rate_limited > 10 && faults.token_expired > 0,
        "{faults:?}"
    );
    for (name, s) in &loaded {
        let reviews = github.reviews(REPO, s.number);
        assert_eq!(
            reviews.len(),
            1,
            "{name}: exactly one review; the calls about it:\n{}",
            trail(&github, s.number)
        );
        assert_eq!(reviews[0].state, "COMMENTED", "{name}");
        assert_eq!(
            summaries(&github, s.number),
            1,
            "{name}: one summary comment"
        );
        let runs: Vec<_> = github
            .check_runs(REPO)
            .into_iter()
            .filter(|r| r.head_sha == s.head_sha)
            .collect();
        assert_eq!(runs.len(), 1, "{name}: one check run: {runs:?}");
        assert_eq!(runs[0].status, "completed", "{name}");
    }
    // Faulted calls were retried, and the writes GitHub had performed were not sent again:
    // the POSTs GitHub performed (answered, or answered with an error after doing the work)
    // are exactly one review and one check run per pull request.
    let requests = github.requests();
    let performed = |suffix: &str| {
        requests
            .iter()
            .filter(|r| r.method == "POST" && r.path_only().ends_with(suffix) && r.performed)
            .count()
    };
    assert_eq!(performed("/check-runs"), 40);
    assert_eq!(performed("/reviews"), 40);
    assert!(
        requests
            .iter()
            .any(|r| r.method == "POST" && r.performed && r.status >= 500),
        "some writes were performed and their answers lost"
    );
    app.finish().await;
}

fn small_pull(github: &FakeGitHub, number: u64) -> PullRequest {
    let pr = PullRequest {
        number,
        head_sha: format!("{number:0>40}"),
        ..Default::default()
    };
    github.add_pull(REPO, pr.clone());
    github.set_pull_files(
        REPO,
        number,
        vec![PullFile::from_patch(
            "src/lib.rs",
            "@@ -1,2 +1,3 @@\n fn a() {}\n+fn b() { let x = 1 / 0; }\n fn c() {}",
        )],
    );
    pr
}

#[tokio::test]
async fn a_review_whose_answer_was_lost_is_found_not_posted_again() {
    let world = World::new().await;
    let app = world.start().await;
    let github = app.github().clone();
    let pr = small_pull(&github, 3);
    app.llm().respond_with(Reply::finding_on_first_added_line);
    let reviews_path = format!("/repos/{REPO}/pulls/3/reviews");
    let comments_path = format!("/repos/{REPO}/issues/3/comments");
    let checks_path = format!("/repos/{REPO}/check-runs");
    // Each write is performed, and its answer lost, once.
    github.set_faults(FaultPlan::lose_answers(&[
        &reviews_path,
        &comments_path,
        &checks_path,
    ]));
    app.deliver("pull_request", &app.pull_request_event("opened", REPO, 3))
        .await;
    github.wait_for_reviews(REPO, 3, 1, LONG_WAIT).await;
    let jobs = app.wait_idle().await;
    assert!(jobs.iter().all(|j| j.state == JobState::Done), "{jobs:?}");
    assert_eq!(
        github.clear_faults().after,
        3,
        "each write failed after it was done"
    );
    assert_eq!(github.reviews(REPO, 3).len(), 1);
    assert_eq!(summaries(&github, 3), 1);
    let runs = github.check_runs(REPO);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].status, "completed");
    assert_eq!(runs[0].head_sha, pr.head_sha);
    // Each was sent once: the retry looked first and found it.
    let posts = |path: &str| {
        github
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path_only() == path)
            .count()
    };
    assert_eq!(posts(&reviews_path), 1);
    assert_eq!(posts(&comments_path), 1);
    assert_eq!(posts(&checks_path), 1);
    app.finish().await;
}

#[tokio::test]
async fn a_check_run_github_could_not_create_at_the_start_is_created_by_its_next_update() {
    let world = World::new().await;
    // Two tries a call: GitHub's two 502s outlast the first creation.
    let app = world
        .start_with(world.options().set("CRITIC_GITHUB__MAX_RETRIES", "1"))
        .await;
    let github = app.github().clone();
    let pr = small_pull(&github, 5);
    app.llm().respond_with(Reply::finding_on_first_added_line);
    let checks_path = format!("/repos/{REPO}/check-runs");
    github.fail_next("POST", &checks_path, 502, 2);
    app.deliver("pull_request", &app.pull_request_event("opened", REPO, 5))
        .await;
    github.wait_for_reviews(REPO, 5, 1, LONG_WAIT).await;
    let jobs = app.wait_idle().await;
    assert!(jobs.iter().all(|j| j.state == JobState::Done), "{jobs:?}");
    assert_eq!(summaries(&github, 5), 1);
    let runs = github.check_runs(REPO);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].head_sha, pr.head_sha);
    assert_eq!(runs[0].status, "completed");
    assert_eq!(runs[0].conclusion.as_deref(), Some("neutral"));
    let posts: Vec<u16> = github
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path_only() == checks_path)
        .map(|r| r.status)
        .collect();
    assert_eq!(posts, [502, 502, 201], "created by the next update");
    app.finish().await;
}

#[tokio::test]
async fn faults_that_never_stop_end_in_a_dead_job_and_a_not_reviewed_check_run() {
    let world = World::new().await;
    let app = world
        .start_with(
            world
                .options()
                .set("CRITIC_WORKER__MAX_ATTEMPTS", "2")
                .set("CRITIC_WORKER__MAX_OUTAGE_SECS", "0")
                .set("CRITIC_GITHUB__MAX_RETRIES", "2"),
        )
        .await;
    let github = app.github().clone();
    let pr = small_pull(&github, 4);
    app.llm().respond_with(Reply::finding_on_first_added_line);
    github.set_faults(FaultPlan::always(
        "POST",
        &format!("/repos/{REPO}/pulls/4/reviews"),
    ));
    let (_, body) = app
        .deliver("pull_request", &app.pull_request_event("opened", REPO, 4))
        .await;
    let id = body["job"].as_i64().expect("job id");
    let job = app.wait_job(id, JobState::Dead).await;
    assert!(
        job.last_error.as_deref().is_some_and(|e| e.contains("50")),
        "{job:?}"
    );
    let runs = github
        .wait_for_check_runs(REPO, 1, crate::support::app::WAIT)
        .await;
    let run = github
        .wait_until("the check run completed", crate::support::app::WAIT, |w| {
            w.check_runs(REPO)
                .iter()
                .find(|r| r.head_sha == pr.head_sha && r.status == "completed")
                .cloned()
        })
        .await;
    assert_eq!(runs.len(), 1);
    assert_eq!(run.conclusion.as_deref(), Some("neutral"));
    assert_eq!(
        run.output.as_ref().map(|o| o.title.as_str()),
        Some("Not reviewed")
    );
    assert!(github.reviews(REPO, 4).is_empty());
    // And the pull request says why.
    let notes = github
        .wait_for_issue_comments(REPO, 4, 1, crate::support::app::WAIT)
        .await;
    assert!(
        notes.iter().any(|c| c.body.contains("could not review")),
        "{notes:?}"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_long_rate_limit_hands_the_job_back_without_spending_an_attempt() {
    let world = World::new().await;
    let app = world
        .start_with(
            world
                .options()
                .set("CRITIC_WORKER__MAX_ATTEMPTS", "1")
                .set("CRITIC_GITHUB__MAX_RETRY_WAIT_SECS", "0"),
        )
        .await;
    let github = app.github().clone();
    small_pull(&github, 5);
    app.llm().respond_with(Reply::finding_on_first_added_line);
    github.fail_next_with_headers(
        "GET",
        &format!("/repos/{REPO}/pulls/5"),
        403,
        1,
        &[("retry-after", "1")],
    );
    let (_, body) = app
        .deliver("pull_request", &app.pull_request_event("opened", REPO, 5))
        .await;
    let id = body["job"].as_i64().expect("job id");
    // One attempt allowed, yet the job outlives the limit: waiting cost it nothing.
    let job = app.wait_job(id, JobState::Done).await;
    assert_eq!(job.attempts, 2, "{job:?}");
    assert_eq!(github.reviews(REPO, 5).len(), 1);
    app.summary_says(REPO, 5, "0000000", "**1 new finding(s)**")
        .await;
    app.finish().await;
}

// The fake's fault injection itself.

#[test]
fn never_more_than_the_bound_in_a_row_and_the_same_seed_draws_the_same() {
    let mut faults = Faults::new(FaultPlan {
        rate: 1.0,
        ..FaultPlan::bad_day(7, 1.0)
    });
    let draws: Vec<bool> = (0..8)
        .map(|_| faults.draw("GET", "/repos/o/r/pulls/1").is_some())
        .collect();
    assert_eq!(draws, [true, true, true, false, true, true, true, false]);
    let run = |seed| {
        let mut f = Faults::new(FaultPlan::bad_day(seed, 0.3));
        (0..200)
            .map(|i| f.draw("POST", &format!("/x/{i}")))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    let failed = run(1).iter().filter(|f| f.is_some()).count();
    assert!((30..=90).contains(&failed), "{failed} of 200 at 30 %");
}

#[test]
fn a_scoped_plan_fails_only_its_calls() {
    let mut faults = Faults::new(FaultPlan::always("POST", "/repos/o/r/pulls/1/reviews"));
    assert_eq!(faults.draw("GET", "/repos/o/r/pulls/1/reviews"), None);
    assert_eq!(faults.draw("POST", "/repos/o/r/issues/1/comments"), None);
    for _ in 0..10 {
        let fault = faults.draw("POST", "/repos/o/r/pulls/1/reviews");
        assert!(matches!(fault, Some(Fault::Before(500..=504))), "{fault:?}");
    }
}

#[tokio::test]
async fn an_outage_longer_than_the_attempts_costs_one_and_the_review_lands_when_it_ends() {
    let world = World::new().await;
    let app = world
        .start_with(
            world
                .options()
                .set("CRITIC_WORKER__MAX_ATTEMPTS", "2")
                .set("CRITIC_GITHUB__MAX_RETRIES", "1"),
        )
        .await;
    let github = app.github().clone();
    small_pull(&github, 6);
    app.llm().respond_with(Reply::finding_on_first_added_line);
    let reviews_path = format!("/repos/{REPO}/pulls/6/reviews");
    github.set_faults(FaultPlan::always("POST", &reviews_path));
    let (_, body) = app
        .deliver("pull_request", &app.pull_request_event("opened", REPO, 6))
        .await;
    let id = body["job"].as_i64().expect("job id");
    // Four attempts' worth of posts fail (two tries each): twice max_attempts.
    github
        .wait_until("four failed attempts", crate::support::app::WAIT, |w| {
            let posts = w
                .requests()
                .iter()
                .filter(|r| r.method == "POST" && r.path_only() == reviews_path)
                .count();
            (posts >= 8).then_some(())
        })
        .await;
    github.clear_faults();
    let job = app.wait_job(id, JobState::Done).await;
    assert!(job.attempts > 2, "{job:?}");
    assert_eq!(github.reviews(REPO, 6).len(), 1);
    app.summary_says(REPO, 6, "0000000", "**1 new finding(s)**")
        .await;
    app.finish().await;
}

#[tokio::test]
async fn a_primary_rate_limit_is_waited_out_until_its_reset() {
    let app = crate::support::app::TestApp::start().await;
    let github = app.github().clone();
    small_pull(&github, 7);
    app.llm().respond_with(Reply::finding_on_first_added_line);
    let reset = (chrono::Utc::now().timestamp() + 1).to_string();
    github.fail_next_with_headers(
        "GET",
        &format!("/repos/{REPO}/pulls/7"),
        403,
        1,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", reset.as_str()),
        ],
    );
    let (_, body) = app
        .deliver("pull_request", &app.pull_request_event("opened", REPO, 7))
        .await;
    let id = body["job"].as_i64().expect("job id");
    // Not the minute a limit without a reset time waits: the reset, within the attempt.
    let job = app.wait_job(id, JobState::Done).await;
    assert_eq!(job.attempts, 1, "{job:?}");
    let limited = github
        .requests()
        .into_iter()
        .find(|r| r.status == 403)
        .expect("the limit was met");
    assert!(limited.path_only().ends_with("/pulls/7"));
    assert_eq!(github.reviews(REPO, 7).len(), 1);
    app.summary_says(REPO, 7, "0000000", "**1 new finding(s)**")
        .await;
    app.finish().await;
}

#[tokio::test]
async fn another_apps_check_run_of_the_same_name_is_never_taken_for_ours() {
    let world = World::new().await;
    let app = world.start().await;
    let github = app.github().clone();
    let pr = small_pull(&github, 8);
    app.llm().respond_with(Reply::finding_on_first_added_line);
    let foreign = github.add_foreign_check_run(REPO, &pr.head_sha, "Critic", 999);
    let checks_path = format!("/repos/{REPO}/check-runs");
    // Our run's creation is performed and its answer lost: the look-up must find ours.
    github.set_faults(FaultPlan::lose_answers(&[&checks_path]));
    app.deliver("pull_request", &app.pull_request_event("opened", REPO, 8))
        .await;
    github.wait_for_reviews(REPO, 8, 1, LONG_WAIT).await;
    app.wait_idle().await;
    let runs = github.check_runs(REPO);
    let theirs = runs.iter().find(|r| r.id == foreign).expect("theirs");
    assert_eq!(theirs.status, "in_progress", "never touched: {runs:?}");
    let ours: Vec<_> = runs.iter().filter(|r| r.app_id != 999).collect();
    assert_eq!(ours.len(), 1, "{runs:?}");
    assert_eq!(ours[0].status, "completed");
    app.summary_says(REPO, 8, "0000000", "**1 new finding(s)**")
        .await;
    app.finish().await;
}

/// The calls Critic made about pull request `number` (method, path, status, performed), one
/// per line: what a failure needs to be understood when faults are random.
fn trail(github: &FakeGitHub, number: u64) -> String {
    let needle = format!("/pulls/{number}/");
    github
        .requests()
        .iter()
        .filter(|r| r.path.contains(&needle) || r.path.ends_with(&format!("/pulls/{number}")))
        .map(|r| {
            format!(
                "{} {} {} performed={}",
                r.method, r.path, r.status, r.performed
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
