//! Two Critic instances on one PostgreSQL, each with its own pool, listener and workers, as
//! two replicas behind a load balancer: 200 deliveries for 40 pull requests spread over both
//! (redeliveries of one delivery to both at once, pushes that overtake the event before
//! them, events Critic ignores), and then a replica killed mid-review. Every head is
//! reviewed exactly once, no pull request is reviewed by both at once, and the killed
//! replica's review is posted by the other, once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::app::{REPO, TestApp, WAIT, World};
use crate::support::github::{PullFile, PullRequest};
use crate::support::llm::{Chat, Reply};
use crate::support::test_env::PgDatabase;

const PULLS: u64 = 40;
/// Pull requests whose head moved on before their first event was handled.
const PUSHED_AGAIN: std::ops::RangeInclusive<u64> = 31..=40;
/// The pull request on which one replica dies.
const DOOMED: u64 = 41;
/// How long every model call takes, so that the work on one pull request would overlap
/// across the replicas if the queue let it.
const CALL: Duration = Duration::from_millis(100);

fn sha(number: u64, n: u64) -> String {
    format!("{n:x}{number:0>39}")
}

fn add_pull(world: &World, number: u64, head: &str) {
    world.github.add_pull(
        REPO,
        PullRequest {
            number,
            head_sha: head.to_string(),
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

/// What the model was asked: which pull request (by its file), by which replica (model),
/// and when.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<(u64, String, Instant)>>>);

impl Calls {
    fn all(&self) -> Vec<(u64, String, Instant)> {
        self.0.lock().expect("lock").clone()
    }

    fn record(&self, chat: &Chat) -> Option<(u64, usize)> {
        let (path, _) = chat.first_added_line()?;
        let number: u64 = path
            .strip_prefix("src/p")?
            .strip_suffix(".rs")?
            .parse()
            .ok()?;
        let model = chat.body["model"].as_str().unwrap_or_default().to_string();
        let mut calls = self.0.lock().expect("lock");
        calls.push((number, model, Instant::now()));
        Some((number, calls.iter().filter(|c| c.0 == number).count()))
    }
}

/// A finding on the first added line, after [`CALL`]; the doomed pull request's first call
/// never ends (its replica dies waiting).
fn model(calls: &Calls) -> impl Fn(&Chat) -> Reply + Send + Sync + 'static {
    let calls = calls.clone();
    move |chat: &Chat| {
        let asked = calls.record(chat);
        let Some((path, line)) = chat.first_added_line() else {
            return Reply::findings(json!([])).delayed(CALL);
        };
        let reply = Reply::findings(json!([
            {"path": path, "line": line, "severity": "warning", "category": "bug", "body": "Division by zero."}
        ]));
        match asked {
            Some((DOOMED, 1)) => reply.delayed(Duration::from_secs(300)),
            _ => reply.delayed(CALL),
        }
    }
}

/// One delivery: which replica receives it, its id, event and body.
struct Delivery {
    to: usize,
    id: String,
    event: &'static str,
    body: Value,
}

fn deliveries(app: &TestApp, heads: &HashMap<u64, (String, String)>) -> Vec<Delivery> {
    let mut all = Vec::new();
    for number in 1..=PULLS {
        let (first, now) = &heads[&number];
        let event = |action: &str, head: &str| {
            let mut body = app.pull_request_event(action, REPO, number);
            body["pull_request"]["head"]["sha"] = head.into();
            body
        };
        let x = (number % 2) as usize;
        let y = 1 - x;
        let opened = event("opened", first);
        let pushed = event("synchronize", now);
        // Each of the two is delivered to both replicas at once (a redelivery), and an event
        // Critic ignores to one of them.
        all.push(Delivery {
            to: x,
            id: format!("r-{number}-opened"),
            event: "pull_request",
            body: opened.clone(),
        });
        all.push(Delivery {
            to: y,
            id: format!("r-{number}-opened"),
            event: "pull_request",
            body: opened,
        });
        all.push(Delivery {
            to: y,
            id: format!("r-{number}-pushed"),
            event: "pull_request",
            body: pushed.clone(),
        });
        all.push(Delivery {
            to: x,
            id: format!("r-{number}-pushed"),
            event: "pull_request",
            body: pushed,
        });
        all.push(Delivery {
            to: y,
            id: format!("r-{number}-assigned"),
            event: "pull_request",
            body: event("assigned", now),
        });
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_postgres_review_each_head_once_and_survive_a_kill() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let world = World::new().await;
    let calls = Calls::default();
    world.llm.respond_with(model(&calls));
    // Every pull request's head; for some, a second push already happened when the first
    // event is handled (GitHub's state is ahead of the queue).
    let mut heads = HashMap::new();
    for number in 1..=PULLS {
        let first = sha(number, 1);
        let now = if PUSHED_AGAIN.contains(&number) {
            sha(number, 2)
        } else {
            first.clone()
        };
        add_pull(&world, number, &now);
        heads.insert(number, (first, now));
    }
    let start = |model: &str| {
        world.start_with(
            world
                .options()
                .set("CRITIC_STORE__URL", &db.url)
                .set("CRITIC_LLM__MODEL", model)
                .set("CRITIC_WORKER__CONCURRENCY", "4")
                // Short enough for the crash to be taken over well within WAIT, long enough
                // that a busy machine's stall does not hand a running job to the other.
                .set("CRITIC_WORKER__LEASE_SECS", "5")
                .set("CRITIC_LLM__MAX_CONCURRENT_PER_INSTALLATION", "4")
                // A burst of events for one pull request waits this long for the last.
                .set("CRITIC_REVIEW__COALESCE_SECS", "1"),
        )
    };
    let replicas = [start("model-a").await, start("model-b").await];

    // 200 deliveries, 32 in flight at a time, spread over both replicas.
    let all = deliveries(&replicas[0], &heads);
    assert_eq!(all.len(), 200);
    let answers: Vec<(String, u16, Value)> = futures_util::stream::iter(all)
        .map(|d| {
            let app = &replicas[d.to];
            async move {
                let (status, body) = app.deliver_as(d.event, &d.id, &d.body).await;
                (d.id, status, body)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut by_id: HashMap<String, Vec<(u16, Value)>> = HashMap::new();
    for (id, status, body) in answers {
        by_id.entry(id).or_default().push((status, body));
    }
    for (id, got) in &by_id {
        let duplicates = got
            .iter()
            .filter(|(_, b)| b["status"] == "duplicate")
            .count();
        assert!(
            got.iter().all(|(s, _)| *s < 300),
            "{id}: every delivery is taken: {got:?}"
        );
        if got.len() == 2 {
            assert_eq!(duplicates, 1, "{id}: handled once across replicas: {got:?}");
        }
        if id.ends_with("-assigned") {
            assert_eq!(got[0].1["status"], "ignored", "{id}: {got:?}");
        }
    }

    for number in 1..=PULLS {
        replicas[0]
            .github()
            .wait_for_reviews(REPO, number, 1, WAIT)
            .await;
    }
    for app in &replicas {
        app.wait_idle().await;
    }
    for number in 1..=PULLS {
        let (first, now) = &heads[&number];
        let reviews = replicas[0].github().reviews(REPO, number);
        let reviewed: Vec<&str> = reviews.iter().map(|r| r.commit_id.as_str()).collect();
        assert_eq!(reviewed, vec![now.as_str()], "PR {number}: its head, once");
        if first != now {
            assert!(!reviewed.contains(&first.as_str()), "PR {number}");
        }
        // One summary, made by whichever replica and edited in place, never two.
        let notes = replicas[0].github().issue_comments(REPO, number);
        assert_eq!(notes.len(), 1, "PR {number}: {notes:#?}");
    }
    // One model call per pull request: no replica reviewed what the other was reviewing
    // or had reviewed, and no job ran twice.
    let mut by_pull: HashMap<u64, usize> = HashMap::new();
    let mut models = std::collections::HashSet::new();
    for (number, model, _) in calls.all() {
        *by_pull.entry(number).or_default() += 1;
        models.insert(model);
    }
    assert_eq!(by_pull.len(), PULLS as usize);
    for (number, calls) in &by_pull {
        assert_eq!(*calls, 1, "PR {number}: one model call");
    }
    assert_eq!(models.len(), 2, "both replicas reviewed: {models:?}");
    for job in replicas[0].critic.store.jobs().await.expect("jobs") {
        assert!(job.attempts <= 1, "{job:?}");
    }

    // One replica dies in the middle of a review: the other posts it, once.
    let head = sha(DOOMED, 1);
    add_pull(&world, DOOMED, &head);
    let opened = replicas[0].pull_request_event("opened", REPO, DOOMED);
    replicas[0]
        .deliver_as("pull_request", "r-doomed", &opened)
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let taken_by = loop {
        if let Some((_, model, _)) = calls.all().into_iter().find(|c| c.0 == DOOMED) {
            break model;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never asked the model"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let [a, b] = replicas;
    let (doomed, survivor) = if taken_by == "model-a" {
        (a, b)
    } else {
        (b, a)
    };
    doomed.crash().await;
    let reviews = survivor
        .github()
        .wait_for_reviews(REPO, DOOMED, 1, WAIT)
        .await;
    assert_eq!(reviews[0].commit_id, head);
    survivor.wait_idle().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        survivor.github().reviews(REPO, DOOMED).len(),
        1,
        "posted once"
    );
    assert_eq!(survivor.github().issue_comments(REPO, DOOMED).len(), 1);
    let asked: Vec<String> = calls
        .all()
        .into_iter()
        .filter(|c| c.0 == DOOMED)
        .map(|c| c.1)
        .collect();
    assert_eq!(
        asked.len(),
        2,
        "asked by the doomed replica, then the survivor: {asked:?}"
    );
    assert_ne!(asked[0], asked[1]);
    let jobs = survivor.critic.store.jobs().await.expect("jobs");
    let doomed_job = jobs
        .iter()
        .filter(|j| j.kind == "review" && j.dedupe_key.ends_with(&format!("#{DOOMED}")))
        .max_by_key(|j| j.id)
        .expect("the doomed review's job");
    assert_eq!(doomed_job.attempts, 2, "{doomed_job:?}");
    survivor.finish().await;
    db.drop().await;
}
