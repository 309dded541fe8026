//! Several replicas on one PostgreSQL: how review throughput grows from one Critic instance
//! to two when the model is the bottleneck, and what a replica's webhook answers cost while
//! both share the queue. Each instance runs in this process with its own pool, listener and
//! workers (as `tests/it/replicas.rs`), against the fake GitHub and a fake model that takes
//! `MODEL_SECS` per call.
//!
//! `CRITIC_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench
//! replicas` prints, per run: pull requests reviewed, the wall time from the first delivery
//! to the last review, reviews per minute, and the webhook acknowledgement latency (p50,
//! p99) of the burst. Without `--bench` it runs a smoke of a few pull requests.

#![recursion_limit = "512"]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use support::app::{REPO, TestApp, World};
use support::github::{PullFile, PullRequest};
use support::llm::Reply;
use support::test_env::PgDatabase;

/// What one model call takes: the bottleneck, as with any real model.
const MODEL_SECS: f64 = 1.0;
/// Workers per replica (`worker.concurrency`).
const WORKERS: usize = 4;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).copied().unwrap_or_default()
}

fn add_pulls(world: &World, pulls: u64) {
    for number in 1..=pulls {
        world.github.add_pull(
            REPO,
            PullRequest {
                number,
                head_sha: format!("{number:0>40}"),
                ..Default::default()
            },
        );
        world.github.set_pull_files(
            REPO,
            number,
            vec![PullFile::from_patch(
                &format!("src/p{number}.rs"),
                "@@ -1,2 +1,3 @@\n fn a() {}\n+fn b() { let x = 1 / 0; }\n fn c() {}",
            )],
        );
    }
}

struct Run {
    wall: Duration,
    acks: Vec<Duration>,
}

async fn run(db: &PgDatabase, replicas: usize, pulls: u64) -> Run {
    let world = World::new().await;
    world.llm.respond_with(|chat| {
        Reply::finding_on_first_added_line(chat).delayed(Duration::from_secs_f64(MODEL_SECS))
    });
    add_pulls(&world, pulls);
    let mut apps: Vec<TestApp> = Vec::new();
    for _ in 0..replicas {
        apps.push(
            world
                .start_with(
                    world
                        .options()
                        .set("CRITIC_STORE__URL", &db.url)
                        .set("CRITIC_WORKER__CONCURRENCY", &WORKERS.to_string())
                        .set(
                            "CRITIC_LLM__MAX_CONCURRENT_PER_INSTALLATION",
                            &WORKERS.to_string(),
                        )
                        .set("CRITIC_LLM__TIMEOUT_SECS", "120"),
                )
                .await,
        );
    }
    let started = Instant::now();
    // Every pull request opened at once, each delivery to the next replica in turn (a load
    // balancer's round robin), and each delivered twice (GitHub's redelivery) to another.
    let deliveries: Vec<(usize, u64)> = (1..=pulls)
        .flat_map(|n| [(n as usize, n), (n as usize + 1, n)])
        .collect();
    let acks: Vec<Duration> = futures_util::stream::iter(deliveries)
        .map(|(to, number)| {
            let app = &apps[to % replicas];
            async move {
                let body = app.pull_request_event("opened", REPO, number);
                let sent = Instant::now();
                let (status, _) = app
                    .deliver_as("pull_request", &format!("bench-{number}"), &body)
                    .await;
                assert!(status < 300, "delivery refused: {status}");
                sent.elapsed()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for number in 1..=pulls {
        world
            .github
            .wait_for_reviews(REPO, number, 1, Duration::from_secs(600))
            .await;
    }
    let wall = started.elapsed();
    for app in &apps {
        app.wait_idle().await;
    }
    for number in 1..=pulls {
        assert_eq!(
            world.github.reviews(REPO, number).len(),
            1,
            "PR {number} reviewed once"
        );
    }
    for app in apps {
        app.crash().await;
    }
    let mut acks = acks;
    acks.sort();
    Run { wall, acks }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let pulls = if full { 80 } else { 4 };
    for replicas in [1, 2] {
        let Some(db) = PgDatabase::create().await else {
            return;
        };
        let r = run(&db, replicas, pulls).await;
        println!(
            "{replicas} replica(s), {WORKERS} workers each, model {MODEL_SECS} s a call: {pulls} pull requests ({} deliveries) reviewed in {:.1} s, {:.0} reviews/min; acks p50 {:.2} ms, p99 {:.2} ms",
            r.acks.len(),
            r.wall.as_secs_f64(),
            pulls as f64 / r.wall.as_secs_f64() * 60.0,
            percentile(&r.acks, 0.5).as_secs_f64() * 1000.0,
            percentile(&r.acks, 0.99).as_secs_f64() * 1000.0,
        );
        db.drop().await;
    }
}
