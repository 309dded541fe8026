//! The driver: a running Critic wired to the fake GitHub and the fake model, and the verbs a
//! test story uses (deliver an event, wait for the queue, crash, restart).

use std::sync::Arc;
use std::time::Duration;

use critic::Critic;
use critic::config::Config;
use critic::domain::JobState;
use critic::store::JobRecord;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::oneshot;

use super::github::{self, FakeGitHub};
use super::llm::FakeLlm;
use super::test_env;

pub const SECRET: &str = "it-webhook-secret";
pub const INSTALLATION: u64 = 77;
pub const REPO: &str = "acme/widgets";
/// Long enough for any test step; a wait that reaches it is a failure, not a delay.
pub const WAIT: Duration = Duration::from_secs(20);

/// Signs a body the way GitHub does.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One of GitHub's example webhook payloads (`tests/fixtures/webhooks/`).
pub fn payload(name: &str) -> Value {
    serde_json::from_slice(&test_env::webhook(name)).expect("payload json")
}

/// A `pull_request_review_comment.created` delivery for `login`'s reply `id` in the thread
/// rooted at `root`.
pub fn reply_event(
    number: u64,
    id: u64,
    root: u64,
    login: &str,
    association: &str,
    body: &str,
) -> serde_json::Value {
    let mut v = payload("pull_request_review_comment.created.1.json");
    v["action"] = "created".into();
    v["comment"]["id"] = id.into();
    v["comment"]["in_reply_to_id"] = root.into();
    v["comment"]["body"] = body.into();
    v["comment"]["user"]["login"] = login.into();
    v["comment"]["user"]["type"] = "User".into();
    v["comment"]["author_association"] = association.into();
    v["pull_request"]["number"] = number.into();
    v["repository"]["full_name"] = REPO.into();
    v["installation"] = serde_json::json!({ "id": INSTALLATION });
    v
}

/// The environment a test's Critic runs with, on top of which a test may add its own.
pub struct Options {
    pub env: Vec<(String, String)>,
}

impl Options {
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Leaves `key` to Critic's built-in default.
    pub fn unset(mut self, key: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self
    }
}

/// The world outside Critic, kept across a crash and a restart.
#[derive(Clone)]
pub struct World {
    pub github: FakeGitHub,
    pub llm: FakeLlm,
    pub dir: Arc<tempfile::TempDir>,
}

impl World {
    pub async fn new() -> World {
        let github = FakeGitHub::start().await;
        github.add_installation(INSTALLATION);
        github.add_repo(REPO, INSTALLATION);
        World {
            github,
            llm: FakeLlm::start().await,
            dir: Arc::new(tempfile::tempdir().expect("tempdir")),
        }
    }

    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("critic.db").display())
    }

    /// The settings a test's Critic gets, as `CRITIC_*` variables.
    pub fn options(&self) -> Options {
        Options {
            env: vec![
                ("CRITIC_GITHUB__APP_ID".into(), github::APP_ID.to_string()),
                (
                    "CRITIC_GITHUB__PRIVATE_KEY".into(),
                    github::app_private_key_pem(),
                ),
                ("CRITIC_GITHUB__WEBHOOK_SECRET".into(), SECRET.into()),
                ("CRITIC_GITHUB__API_URL".into(), self.github.url()),
                ("CRITIC_LLM__BASE_URL".into(), self.llm.url().to_string()),
                ("CRITIC_LLM__MODEL".into(), "fake-model".into()),
                ("CRITIC_LLM__API_KEY".into(), "sk-test-key".into()),
                ("CRITIC_LLM__TIMEOUT_SECS".into(), "10".into()),
                ("CRITIC_STORE__URL".into(), self.db_url()),
                ("CRITIC_WORKER__CONCURRENCY".into(), "2".into()),
                ("CRITIC_WORKER__RETRY_BASE_SECS".into(), "0".into()),
                // GitHub's failures are retried at once, not after a second.
                ("CRITIC_GITHUB__RETRY_BASE_MS".into(), "10".into()),
                ("CRITIC_WORKER__POLL_INTERVAL_MS".into(), "50".into()),
                // Tests push several times in a row and expect each push reviewed; the
                // coalescing window has its own test.
                ("CRITIC_REVIEW__COALESCE_SECS".into(), "0".into()),
            ],
        }
    }

    /// Starts Critic on a random loopback port.
    pub async fn start(&self) -> TestApp {
        self.start_with(self.options()).await
    }

    pub async fn start_with(&self, options: Options) -> TestApp {
        let config = Config::load_from(None, options.env).expect("test settings are valid");
        let critic = Arc::new(Critic::new(config).await.expect("critic starts"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(critic::run(critic.clone(), listener, async move {
            let _ = stopped.await;
        }));
        TestApp {
            world: self.clone(),
            critic,
            url,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task,
            dead_seen: Default::default(),
        }
    }
}

pub struct TestApp {
    pub world: World,
    pub critic: Arc<Critic>,
    pub url: String,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), critic::StartError>>,
    /// Dead jobs the test waited for (see [`TestApp::finish`]).
    dead_seen: std::sync::Mutex<std::collections::HashSet<i64>>,
}

impl TestApp {
    pub async fn start() -> TestApp {
        World::new().await.start().await
    }

    /// A small Python package tested with pytest, at `sha` of `repo`: `pkg/pager.py` (pages
    /// rounded up) and `tests/test_pager.py` with one test of it.
    pub fn put_pager_files(&self, repo: &str, sha: &str) {
        for (path, text) in [
            ("pyproject.toml", "[tool.pytest.ini_options]\n"),
            (
                "pkg/pager.py",
                "def pages(n, size):\n    return (n + size - 1) // size\n",
            ),
            (
                "tests/test_pager.py",
                "from pkg.pager import pages\n\n\ndef test_pages_rounds_up():\n    assert pages(11, 10) == 2\n",
            ),
        ] {
            self.github().put_content(repo, sha, path, text);
        }
    }

    pub fn github(&self) -> &FakeGitHub {
        &self.world.github
    }

    pub fn llm(&self) -> &FakeLlm {
        &self.world.llm
    }

    /// Sends a signed delivery with a fresh delivery id.
    pub async fn deliver(&self, event: &str, body: &Value) -> (u16, Value) {
        self.deliver_as(event, &uuid::Uuid::new_v4().to_string(), body)
            .await
    }

    /// Sends a signed delivery with the given delivery id (a redelivery reuses one).
    pub async fn deliver_as(&self, event: &str, delivery: &str, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).expect("json");
        let sig = signature(SECRET, &bytes);
        let resp = self
            .post_webhook(
                &[
                    ("x-github-event", event),
                    ("x-github-delivery", delivery),
                    ("x-hub-signature-256", &sig),
                    ("x-github-hook-installation-target-type", "integration"),
                    ("content-type", "application/json"),
                ],
                bytes,
            )
            .await;
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Posts raw bytes with exactly these headers.
    pub async fn post_webhook(&self, headers: &[(&str, &str)], body: Vec<u8>) -> reqwest::Response {
        let mut req = self.http.post(format!("{}/webhook", self.url)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("webhook request")
    }

    /// A `pull_request` payload for a PR of the fake, built from GitHub's real example.
    pub fn pull_request_event(&self, action: &str, repo: &str, number: u64) -> Value {
        let pr = self
            .github()
            .pull(repo, number)
            .expect("PR exists in the fake");
        let (owner, name) = repo.split_once('/').expect("owner/name");
        let mut v = payload("pull_request.opened.2.json");
        v["action"] = action.into();
        v["number"] = number.into();
        let p = &mut v["pull_request"];
        p["number"] = number.into();
        p["title"] = pr.title.clone().into();
        p["draft"] = pr.draft.into();
        p["state"] = pr.state.clone().into();
        p["head"]["sha"] = pr.head_sha.clone().into();
        p["base"]["sha"] = pr.base_sha.clone().into();
        v["repository"]["full_name"] = repo.into();
        v["repository"]["name"] = name.into();
        v["repository"]["owner"]["login"] = owner.into();
        v["installation"]["id"] = INSTALLATION.into();
        v
    }

    /// An `issue_comment.created` delivery for a comment already in the fake GitHub (see
    /// [`FakeGitHub::add_issue_comment`]), written by `login` with GitHub's
    /// `author_association` (`OWNER`, `MEMBER`, `COLLABORATOR`, `CONTRIBUTOR`, `NONE`...).
    pub fn comment_event(
        &self,
        repo: &str,
        number: u64,
        comment_id: u64,
        login: &str,
        association: &str,
    ) -> Value {
        let body = self
            .github()
            .issue_comments(repo, number)
            .into_iter()
            .find(|c| c.id == comment_id)
            .expect("the comment exists in the fake")
            .body;
        let (owner, name) = repo.split_once('/').expect("owner/name");
        let mut v = payload("issue_comment.created.1.json");
        v["action"] = "created".into();
        v["issue"]["number"] = number.into();
        v["issue"]["pull_request"] = serde_json::json!({ "url": format!("https://api.github.com/repos/{repo}/pulls/{number}") });
        v["comment"]["id"] = comment_id.into();
        v["comment"]["body"] = body.into();
        v["comment"]["user"]["login"] = login.into();
        v["comment"]["user"]["type"] = "User".into();
        v["comment"]["author_association"] = association.into();
        v["sender"]["login"] = login.into();
        v["repository"]["full_name"] = repo.into();
        v["repository"]["name"] = name.into();
        v["repository"]["owner"]["login"] = owner.into();
        v["installation"] = serde_json::json!({ "id": INSTALLATION });
        v
    }

    /// Writes `body` as `login`'s comment on the PR and delivers its webhook.
    pub async fn comment(
        &self,
        repo: &str,
        number: u64,
        login: &str,
        association: &str,
        body: &str,
    ) -> u64 {
        let id = self.github().add_issue_comment(repo, number, login, body);
        let event = self.comment_event(repo, number, id, login, association);
        self.deliver("issue_comment", &event).await;
        id
    }

    pub async fn jobs(&self) -> Vec<JobRecord> {
        self.critic.store.jobs().await.expect("jobs")
    }

    /// Waits until no job is queued or running: the queue has settled.
    pub async fn wait_idle(&self) -> Vec<JobRecord> {
        self.wait_jobs("the queue to settle", |jobs| {
            jobs.iter().all(|j| j.state.is_final())
        })
        .await
    }

    /// Waits until job `id` reaches `want`. A test that waits for a job to die expects it
    /// dead, so [`TestApp::finish`] does not count it.
    pub async fn wait_job(&self, id: i64, want: JobState) -> JobRecord {
        let jobs = self
            .wait_jobs(&format!("job {id} to be {want}"), |jobs| {
                jobs.iter().any(|j| j.id == id && j.state == want)
            })
            .await;
        if want == JobState::Dead {
            self.expect_dead(id);
        }
        jobs.into_iter().find(|j| j.id == id).expect("job exists")
    }

    /// Waits for Critic's summary of `head` (a full SHA or its start) on PR `number` and
    /// checks that it says `says`; returns its text.
    pub async fn summary_says(&self, repo: &str, number: u64, head: &str, says: &str) -> String {
        let summary = self
            .github()
            .wait_for_summary(repo, number, head, WAIT)
            .await
            .body;
        assert!(
            summary.contains(says),
            "the summary does not say {says:?}: {summary}"
        );
        summary
    }

    /// Job `id` is meant to end dead: [`TestApp::finish`] does not count it.
    pub fn expect_dead(&self, id: i64) {
        self.dead_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id);
    }

    /// Ends a test as bors's harness does: waits for the queue to settle, fails on a job
    /// that died without the test expecting it and on anything Critic wrote on a pull
    /// request that the test never looked at, then stops Critic.
    pub async fn finish(self) -> World {
        let jobs = self.wait_idle().await;
        let expected = self
            .dead_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let dead: Vec<&JobRecord> = jobs
            .iter()
            .filter(|j| j.state == JobState::Dead && !expected.contains(&j.id))
            .collect();
        assert!(
            dead.is_empty(),
            "jobs died that the test did not expect (wait_job(id, Dead) or expect_dead(id) says it does): {dead:#?}"
        );
        let unread = self.github().unread_by_test();
        assert!(
            unread.is_empty(),
            "Critic wrote what no assertion read (read it with the fake's reviews(), issue_comments(), review_comments() or wait_for_*):\n{}",
            unread.join("\n")
        );
        self.stop().await
    }

    /// Re-checks the jobs each time this instance's store reports a change, and every
    /// 200 ms for what another replica on the same database changed, until `done`.
    async fn wait_jobs(&self, what: &str, done: impl Fn(&[JobRecord]) -> bool) -> Vec<JobRecord> {
        let mut changes = self.critic.store.subscribe();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            changes.borrow_and_update();
            let jobs = self.jobs().await;
            if done(&jobs) {
                return jobs;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("waited {WAIT:?} for {what}: {jobs:?}");
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), changes.changed()).await;
        }
    }

    /// Kills Critic at once, like a crash: no drain, in-flight jobs keep their lease.
    pub async fn crash(self) -> World {
        self.task.abort();
        let _ = self.task.await;
        self.world
    }

    /// Stops Critic gracefully.
    pub async fn stop(mut self) -> World {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("join").expect("critic ran cleanly");
        self.world
    }
}
