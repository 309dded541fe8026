//! Critic against a real model: the real pull requests of the test data (`scenarios/` in
//! `CRITIC_TEST_DATA`, else in `../shared/data` beside the checkout),
//! reviewed one after another through the fake GitHub by a model server you run (for example
//! `../shared/tools/local-model/serve.sh 8081`). What it measures is robustness to a small
//! model's replies: how many pull requests got a review, how many of those were partial (a
//! reply cut off whose rest never came, or a part that could not be read), how many got only
//! a note, and how long each took.
//!
//! `CRITIC_BENCH_MODEL_URL=http://127.0.0.1:8081/v1 CRITIC_BENCH_MODEL=qwen2.5-coder-1.5b \
//!  cargo bench --bench model_trial` (`CRITIC_BENCH_PRS` limits the count, default all;
//! `CRITIC_BENCH_STRUCTURED` sets `llm.structured_output`, default the provider's; any other
//! `CRITIC_...` setting goes to Critic). Without
//! `CRITIC_BENCH_MODEL_URL` it says so and stops: it never reaches beyond 127.0.0.1 unless
//! told to.

#![recursion_limit = "512"]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use critic::domain::JobState;
use support::app::{INSTALLATION, REPO, World};
use support::github::scenario_dirs;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Ok(url) = std::env::var("CRITIC_BENCH_MODEL_URL") else {
        println!(
            "model_trial: set CRITIC_BENCH_MODEL_URL (and CRITIC_BENCH_MODEL) to a model server to run it"
        );
        return;
    };
    let scenarios = support::test_env::required_data("scenarios");
    let model = std::env::var("CRITIC_BENCH_MODEL").unwrap_or_else(|_| "qwen2.5-coder-1.5b".into());
    let limit: usize = std::env::var("CRITIC_BENCH_PRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let world = World::new().await;
    let mut options = world
        .options()
        .set("CRITIC_LLM__BASE_URL", &url)
        .set("CRITIC_LLM__MODEL", &model)
        .set("CRITIC_LLM__TIMEOUT_SECS", "900")
        .set("CRITIC_LLM__MAX_CONCURRENT", "1")
        .set("CRITIC_WORKER__CONCURRENCY", "1");
    if let Ok(mode) = std::env::var("CRITIC_BENCH_STRUCTURED") {
        options = options.set("CRITIC_LLM__STRUCTURED_OUTPUT", &mode);
    }
    // Any other Critic setting in the benchmark's environment goes to Critic
    // (`CRITIC_LLM__MAX_OUTPUT_TOKENS=1024` keeps a looping small model's calls short).
    for (key, value) in std::env::vars() {
        let ours = ["CRITIC_BENCH_", "CRITIC_TEST_", "CRITIC_LOG"];
        if key.starts_with("CRITIC_") && !ours.iter().any(|p| key.starts_with(p)) {
            options = options.set(&key, &value);
        }
    }
    let app = world.start_with(options).await;
    let github = app.github().clone();
    let dirs: Vec<_> = scenario_dirs(&scenarios).into_iter().take(limit).collect();
    let (mut reviewed, mut partial, mut noted, mut failed, mut threads) = (0, 0, 0, 0, 0);
    let mut times = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let number = 100 + i as u64;
        let s = github.load_scenario(dir, REPO, number, INSTALLATION);
        let started = Instant::now();
        app.deliver(
            "pull_request",
            &app.pull_request_event("opened", REPO, number),
        )
        .await;
        // A long wait: a small model on two cores takes minutes for a large change.
        let deadline = Instant::now() + Duration::from_secs(1800);
        let outcome = loop {
            let jobs = app.jobs().await;
            let job = jobs
                .iter()
                .rev()
                .find(|j| j.dedupe_key.ends_with(&format!("#{number}")));
            match job.map(|j| j.state) {
                Some(JobState::Done | JobState::Dead) => break job.cloned(),
                _ if Instant::now() > deadline => break None,
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        let elapsed = started.elapsed();
        times.push(elapsed);
        let reviews = github.reviews(REPO, number);
        let summary = github
            .issue_comments(REPO, number)
            .into_iter()
            .find(|c| c.body.starts_with("<!-- critic:summary -->"));
        let is_partial = summary.as_ref().is_some_and(|c| {
            c.body.contains("was cut off at its output limit")
                || c.body
                    .contains("Part of this pull request was not reviewed")
        });
        let what = match (&outcome, reviews.first(), &summary) {
            (Some(j), _, _) if j.state == JobState::Dead => {
                failed += 1;
                format!("dead: {}", j.last_error.clone().unwrap_or_default())
            }
            (None, _, _) => {
                failed += 1;
                "no outcome in 30 minutes".to_string()
            }
            (_, Some(r), _) => {
                reviewed += 1;
                threads += r.comments.len();
                partial += usize::from(is_partial);
                format!(
                    "review with {} thread(s){}",
                    r.comments.len(),
                    if is_partial { ", partial" } else { "" }
                )
            }
            (_, None, Some(_)) => {
                reviewed += 1;
                partial += usize::from(is_partial);
                "summary only: no findings".to_string()
            }
            (Some(j), None, None) => {
                noted += 1;
                format!("note only: {}", j.result.clone().unwrap_or_default())
            }
        };
        println!(
            "{:>2} {} ({} files): {what} in {:.0} s",
            i + 1,
            s.name,
            s.files.len(),
            elapsed.as_secs_f64()
        );
    }
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    println!(
        "{model}: {} pull requests: {reviewed} reviewed ({partial} partial, {threads} threads in all), {noted} with a note only, {failed} failed; median {:.0} s per review",
        dirs.len(),
        median.as_secs_f64()
    );
}
