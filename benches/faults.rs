//! What GitHub's bad days cost: the forty real pull requests of the test data (`scenarios/`
//! in `CRITIC_TEST_DATA`, else in `../shared/data` beside the checkout) reviewed one after another, first against a GitHub that behaves, then against one that
//! fails 30 % of calls (5xx before or after performing a write, 403 secondary limits with
//! `Retry-After: 1`, installation tokens that die after 30 s). Critic runs in this process
//! with its production retry settings (`github.retry_base_ms` 1000, `github.max_retries` 4).
//!
//! `cargo bench --bench faults` prints, per run: GitHub calls per review (all, and those
//! answered with an error), and the time from delivery to posted review (median, p90, max).
//! Without `--bench` it reviews three pull requests (a smoke run).

#![recursion_limit = "512"]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use critic::domain::JobState;
use support::app::{INSTALLATION, REPO, World};
use support::faults::FaultPlan;
use support::github::scenario_dirs;
use support::llm::Reply;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).copied().unwrap_or_default()
}

struct Run {
    calls: usize,
    errors: usize,
    times: Vec<Duration>,
}

async fn run(scenarios: &Path, prs: usize, faults: Option<FaultPlan>) -> Run {
    let world = World::new().await;
    world.llm.respond_with(Reply::finding_on_first_added_line);
    let app = world
        .start_with(world.options().unset("CRITIC_GITHUB__RETRY_BASE_MS"))
        .await;
    let github = app.github().clone();
    let loaded: Vec<_> = scenario_dirs(scenarios)
        .iter()
        .take(prs)
        .enumerate()
        .map(|(i, dir)| github.load_scenario(dir, REPO, 100 + i as u64, INSTALLATION))
        .collect();
    if let Some(plan) = faults {
        github.set_faults(plan);
    }
    github.clear_requests();
    let mut times = Vec::new();
    for s in &loaded {
        let started = Instant::now();
        app.deliver(
            "pull_request",
            &app.pull_request_event("opened", REPO, s.number),
        )
        .await;
        github
            .wait_for_reviews(REPO, s.number, 1, Duration::from_secs(300))
            .await;
        app.wait_idle().await;
        times.push(started.elapsed());
    }
    let requests = github.requests();
    let failed = app
        .jobs()
        .await
        .iter()
        .filter(|j| j.state != JobState::Done)
        .count();
    assert_eq!(failed, 0, "every review job done");
    times.sort();
    Run {
        calls: requests.len(),
        errors: requests.iter().filter(|r| r.status >= 400).count(),
        times,
    }
}

fn report(label: &str, prs: usize, r: &Run) {
    println!(
        "{label}: {prs} reviews, {:.1} GitHub calls per review ({:.1} answered with an error); delivery to review: median {:.2} s, p90 {:.2} s, max {:.2} s",
        r.calls as f64 / prs as f64,
        r.errors as f64 / prs as f64,
        percentile(&r.times, 0.5).as_secs_f64(),
        percentile(&r.times, 0.9).as_secs_f64(),
        r.times.last().copied().unwrap_or_default().as_secs_f64(),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let prs = if full { 40 } else { 3 };
    let scenarios = support::test_env::required_data("scenarios");
    let calm = run(&scenarios, prs, None).await;
    report("no faults", prs, &calm);
    let plan = FaultPlan {
        token_dies_after: Some(Duration::from_secs(30)),
        ..FaultPlan::bad_day(13, 0.3)
    };
    let bad = run(&scenarios, prs, Some(plan)).await;
    report("30 % faults", prs, &bad);
}
