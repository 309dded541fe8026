//! A `critic serve` process killed (SIGKILL, no drain) with reviews in flight: what it was
//! doing is done by the next process, or by a replica, soon and exactly once.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::support::app::{INSTALLATION, Options, REPO, SECRET, WAIT, World, signature};
use crate::support::github::{FakeGitHub, PullFile, PullRequest};
use crate::support::llm::{Chat, Reply};
use crate::support::test_env::PgDatabase;

/// Reviews in flight when the process dies.
const IN_FLIGHT: u64 = 8;
/// What the issue asks: every review posted within a minute of the restart (or the kill).
const WITHIN: Duration = Duration::from_secs(60);

/// The model answers `slow-model` only after a long while (the process is killed before);
/// any other model at once.
fn model(chat: &Chat) -> Reply {
    let reply = Reply::findings(json!([
        {"path": "src/lib.rs", "line": 2, "severity": "warning", "category": "bug", "body": "Division by zero."}
    ]));
    if chat.body["model"] == "slow-model" {
        reply.delayed(Duration::from_secs(300))
    } else {
        reply
    }
}

fn add_pulls(github: &FakeGitHub) {
    for number in 1..=IN_FLIGHT {
        github.add_pull(
            REPO,
            PullRequest {
                number,
                head_sha: format!("{number:0>40}"),
                ..Default::default()
            },
        );
        github.set_pull_files(
            REPO,
            number,
            vec![PullFile::from_patch(
                "src/lib.rs",
                "@@ -1,2 +1,3 @@\n fn a() {}\n+fn b() { let x = 1 / 0; }\n fn c() {}",
            )],
        );
    }
}

struct Process {
    child: tokio::process::Child,
    base: String,
}

impl Process {
    async fn start(options: Options) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_critic"))
            .arg("serve")
            .env_clear()
            .envs(
                options
                    .set("CRITIC_SERVER__LISTEN", &format!("127.0.0.1:{port}"))
                    .set("CRITIC_LLM__TIMEOUT_SECS", "600")
                    .env,
            )
            .env("CRITIC_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn critic");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
                && r.status() == 200
            {
                break;
            }
            if let Some(status) = child.try_wait().expect("child state") {
                panic!("critic serve exited at start: {status:?}");
            }
            assert!(tokio::time::Instant::now() < deadline, "never ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Process { child, base }
    }

    async fn open_pull_request(&self, number: u64) {
        let mut event = crate::support::app::payload("pull_request.opened.2.json");
        event["number"] = number.into();
        event["pull_request"]["number"] = number.into();
        event["pull_request"]["head"]["sha"] = format!("{number:0>40}").into();
        event["repository"]["full_name"] = REPO.into();
        event["installation"]["id"] = INSTALLATION.into();
        let body = serde_json::to_vec(&event).expect("json");
        let resp = reqwest::Client::new()
            .post(format!("{}/webhook", self.base))
            .header("x-github-event", "pull_request")
            .header("x-github-delivery", format!("crash-{number}"))
            .header("x-hub-signature-256", signature(SECRET, &body))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("deliver");
        assert_eq!(resp.status(), 202);
    }

    /// SIGKILL: no drain, no goodbye; its leases stay in the database.
    async fn kill(mut self) {
        self.child.start_kill().expect("kill");
        self.child.wait().await.expect("reaped");
    }
}

/// Waits until every PR has its review, then checks none got two.
async fn every_review_posted_once(github: &FakeGitHub) {
    for number in 1..=IN_FLIGHT {
        github.wait_for_reviews(REPO, number, 1, WITHIN).await;
    }
    // Whatever was still running had a moment to post twice; it must not have.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for number in 1..=IN_FLIGHT {
        assert_eq!(github.reviews(REPO, number).len(), 1, "PR {number}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_reviews_are_posted_soon_after_a_restart_on_sqlite() {
    let world = World::new().await;
    add_pulls(&world.github);
    world.llm.respond_with(model);
    let options = || {
        world
            .options()
            .set("CRITIC_WORKER__CONCURRENCY", &IN_FLIGHT.to_string())
            // Leases far longer than the wait: only the restart's takeover can be in time.
            .set("CRITIC_WORKER__LEASE_SECS", "600")
            .set(
                "CRITIC_LLM__MAX_CONCURRENT_PER_INSTALLATION",
                &IN_FLIGHT.to_string(),
            )
    };
    let first = Process::start(options().set("CRITIC_LLM__MODEL", "slow-model")).await;
    for number in 1..=IN_FLIGHT {
        first.open_pull_request(number).await;
    }
    world.llm.wait_for_requests(IN_FLIGHT as usize, WAIT).await;
    first.kill().await;

    let _second = Process::start(options().set("CRITIC_LLM__MODEL", "fast-model")).await;
    every_review_posted_once(&world.github).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_reviews_are_taken_over_by_the_other_on_postgres() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let world = World::new().await;
    add_pulls(&world.github);
    world.llm.respond_with(model);
    let options = |model: &str| {
        world
            .options()
            .set("CRITIC_STORE__URL", &db.url)
            .set("CRITIC_WORKER__CONCURRENCY", &(IN_FLIGHT / 2).to_string())
            .set("CRITIC_LLM__MODEL", model)
    };
    // The doomed replica takes the first half of the work; the other joins for the rest.
    let doomed = Process::start(options("slow-model")).await;
    for number in 1..=IN_FLIGHT / 2 {
        doomed.open_pull_request(number).await;
    }
    world
        .llm
        .wait_for_requests(IN_FLIGHT as usize / 2, WAIT)
        .await;
    let survivor = Process::start(options("fast-model")).await;
    for number in IN_FLIGHT / 2 + 1..=IN_FLIGHT {
        survivor.open_pull_request(number).await;
    }
    doomed.kill().await;
    // The survivor's own reviews at once; the dead replica's when their leases (30 s,
    // the default) run out.
    every_review_posted_once(&world.github).await;
    survivor.kill().await;
    db.drop().await;
}
