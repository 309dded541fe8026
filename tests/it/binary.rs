//! The real `critic` binary: `critic serve` configured only through `CRITIC_*` variables.

use std::process::Stdio;
use std::time::Duration;

use crate::support::app::{REPO, SECRET, TestApp, WAIT, World, signature};
use crate::support::github::{self, PullRequest};
use crate::support::llm::Reply;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test]
async fn critic_serve_reviews_a_pull_request_logs_json_lines_and_stops_on_sigterm() {
    let world = World::new().await;
    world.github.add_two_line_pull(REPO, 2, None);
    world.llm.push(Reply::findings(
        serde_json::json!([{"path": "a.txt", "line": 2, "body": "Spelling?"}]),
    ));
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_critic"))
        .arg("serve")
        .env_clear()
        .envs(
            world
                .options()
                .set("CRITIC_SERVER__LISTEN", &format!("127.0.0.1:{port}"))
                .env,
        )
        .env("CRITIC_LOG", "critic=debug")
        .env("CRITIC_LOG__FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn critic");
    let mut stdout = child.stdout.take().expect("stdout");
    let logs = tokio::spawn(async move {
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out)
            .await
            .map(|_| out)
    });
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            break;
        }
        if let Some(status) = child.try_wait().expect("child state") {
            panic!("critic serve exited at start: {status:?}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "critic serve never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut event = crate::support::app::payload("pull_request.opened.2.json");
    event["number"] = 2.into();
    event["pull_request"]["number"] = 2.into();
    event["pull_request"]["head"]["sha"] = PullRequest::default().head_sha.into();
    event["repository"]["full_name"] = REPO.into();
    event["installation"]["id"] = crate::support::app::INSTALLATION.into();
    let body = serde_json::to_vec(&event).expect("json");
    let resp = http
        .post(format!("{base}/webhook"))
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", "bin-1")
        .header("x-hub-signature-256", signature(SECRET, &body))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("deliver");
    assert_eq!(resp.status(), 202);
    let reviews = world.github.wait_for_reviews(REPO, 2, 1, WAIT).await;
    assert_eq!(reviews[0].comments.len(), 1);
    assert_eq!(reviews[0].comments[0].line, 2);

    let pid = child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait");
    assert!(status.success(), "{status:?}");

    // Every line is a JSON object; the review job's lines carry the job's fields.
    let logs = logs.await.expect("join").expect("stdout");
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let review_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["name"] == "review")
        .collect();
    assert!(
        !review_lines.is_empty(),
        "no line of the review job: {logs}"
    );
    for line in review_lines {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
        assert_eq!(line["span"]["repo"], REPO, "{line}");
        assert_eq!(line["span"]["pr"], 2, "{line}");
        assert_eq!(
            line["span"]["installation"],
            crate::support::app::INSTALLATION,
            "{line}"
        );
        assert_eq!(
            line["span"]["sha"],
            PullRequest::default().head_sha,
            "{line}"
        );
        let job = line["spans"]
            .as_array()
            .and_then(|spans| spans.iter().find(|s| s["name"] == "job"))
            .unwrap_or_else(|| panic!("no job span: {line}"));
        assert_eq!(job["delivery"], "bin-1", "{line}");
        assert!(job["id"].is_number(), "{line}");
    }
}

#[test]
fn invalid_settings_stop_the_start_with_the_key_named() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_critic"))
        .arg("check-config")
        .env_clear()
        .env("CRITIC_GITHUB__APP_ID", "12")
        .env("CRITIC_GITHUB__PRIVATE_KEY", github::app_private_key_pem())
        .env("CRITIC_GITHUB__WEBHOOK_SECRET", "x")
        .env("CRITIC_WORKER__CONCURRENCY", "lots")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("worker.concurrency"), "{stderr}");
    assert!(
        !stderr.contains("PRIVATE KEY"),
        "secrets stay out of messages"
    );

    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_critic"))
        .arg("check-config")
        .env_clear()
        .env("CRITIC_GITHUB__APP_ID", "12")
        .env("CRITIC_GITHUB__PRIVATE_KEY", github::app_private_key_pem())
        .env("CRITIC_GITHUB__WEBHOOK_SECRET", "x")
        .output()
        .expect("run");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[tokio::test]
async fn a_settings_file_that_is_not_there_is_an_error_unless_the_setup_is_to_write_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("typo.toml");
    let app_env = |cmd: &mut tokio::process::Command| {
        cmd.env_clear()
            .env("CRITIC_GITHUB__APP_ID", "12")
            .env("CRITIC_GITHUB__PRIVATE_KEY", github::app_private_key_pem())
            .env("CRITIC_GITHUB__WEBHOOK_SECRET", "x")
            .env("CRITIC_LOG", "warn");
    };
    for args in [vec!["check-config"], vec!["serve"]] {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_critic"));
        cmd.args(&args).arg("--config").arg(&missing);
        app_env(&mut cmd);
        let out = cmd.output().await.expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("typo.toml") && stderr.contains("does not exist"),
            "{args:?}: {stderr}"
        );
    }
    // Without an App, `serve` takes the missing file as the one its setup writes: it serves
    // the setup page (and is stopped here).
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_critic"))
        .args(["serve", "--config"])
        .arg(&missing)
        .env_clear()
        .env("CRITIC_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("CRITIC_SETUP_TOKEN", "t")
        .env("CRITIC_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/?token=t")).await {
            assert_eq!(r.status(), 200);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no setup page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().await.expect("kill");
}

#[tokio::test]
async fn the_operators_cli_lists_requeues_and_cancels_jobs_and_sums_usage() {
    use critic::domain::{JobState, PrNumber, Spent, Usage};
    use critic::store::{NewJob, Next, Store, UsageOwner};
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("critic.db").display());
    let store = Store::connect(&url).await.expect("store");
    let new = |key: &str| NewJob {
        kind: "review".into(),
        dedupe_key: key.into(),
        payload: "{}".into(),
        min_gap: Duration::ZERO,
        requested: false,
    };
    let dead = store
        .enqueue(new("review:acme/widgets#1"))
        .await
        .expect("enqueue");
    let claimed = store
        .claim(Duration::from_secs(30))
        .await
        .expect("claim")
        .expect("job");
    store
        .fail(&claimed, "GitHub said no", Next::Dead, None)
        .await
        .expect("fail");
    let queued = store
        .enqueue(new("review:acme/gadgets#2"))
        .await
        .expect("enqueue");
    store
        .record_usage(
            &UsageOwner {
                job_id: Some(dead),
                installation_id: 77,
                repo: "acme/widgets",
                number: PrNumber(1),
            },
            &[Spent {
                endpoint: "default".into(),
                model: "gpt-4.1".into(),
                task: "review",
                usage: Usage {
                    prompt_tokens: 1200,
                    output_tokens: 300,
                    cached_tokens: 0,
                },
                cost_micros: 4_800,
                estimated: false,
                unpriced: false,
            }],
        )
        .await
        .expect("usage");
    let critic = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_critic"))
            .args(args)
            .env_clear()
            .env("CRITIC_STORE__URL", &url)
            .env("CRITIC_LOG", "warn")
            .current_dir(dir.path())
            .output()
            .expect("run")
    };
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();

    let listed = critic(&["jobs", "--state", "dead"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed = text(&listed);
    assert!(
        listed.contains("acme/widgets#1") && listed.contains("GitHub said no"),
        "{listed}"
    );
    assert!(!listed.contains("acme/gadgets#2"), "{listed}");
    assert!(listed.contains("1 job(s)"), "{listed}");
    let by_repo = text(&critic(&["jobs", "--repo", "acme/gadgets"]));
    assert!(
        by_repo.contains("acme/gadgets#2") && by_repo.contains("1 job(s)"),
        "{by_repo}"
    );

    let not_dead = critic(&["jobs", "retry", &queued.to_string()]);
    assert_eq!(not_dead.status.code(), Some(1), "{}", text(&not_dead));
    let retried = critic(&["jobs", "retry", &dead.to_string()]);
    assert!(retried.status.success());
    assert!(text(&retried).contains("1 job(s) put back"));
    assert_eq!(
        store.job(dead).await.expect("q").expect("job").state,
        JobState::Queued
    );

    let cancelled = critic(&["jobs", "cancel", &queued.to_string()]);
    assert!(
        cancelled.status.success(),
        "{}",
        String::from_utf8_lossy(&cancelled.stderr)
    );
    let job = store.job(queued).await.expect("q").expect("job");
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(job.last_error.as_deref(), Some("cancelled by an operator"));

    let neither = critic(&["jobs", "retry"]);
    assert_ne!(neither.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&neither.stderr).contains("--dead"));
    let all = critic(&["jobs", "retry", "--dead"]);
    assert!(
        text(&all).contains("1 job(s) put back"),
        "the cancelled one: {}",
        text(&all)
    );
    assert_eq!(
        store.job(queued).await.expect("q").expect("job").state,
        JobState::Queued
    );

    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let usage = text(&critic(&["usage", "--month", &month]));
    assert!(
        usage.contains("gpt-4.1") && usage.contains("1200") && usage.contains("1 call(s)"),
        "{usage}"
    );
    let bad = critic(&["usage", "--month", "December"]);
    assert_ne!(bad.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM"));

    // Stats: the model's cost per reviewed pull request, by repository.
    let stats = text(&critic(&["stats"]));
    assert!(
        stats.contains("acme/widgets") && stats.contains("REPOSITORY") && stats.contains("COST/PR"),
        "{stats}"
    );
    assert!(stats.contains("$0.0048"), "{stats}");
    let none = text(&critic(&["stats", "--repo", "acme/nothing"]));
    assert!(none.contains("no threads or model calls"), "{none}");
    let bad = critic(&["stats", "--since", "yesterday"]);
    assert_ne!(bad.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM-DD"));
}

/// `critic health`, a container's health check: 0 while the server answers `/healthz` (the
/// address read from `server.listen`, its unspecified host asked on loopback), 1 when
/// nothing answers or the settings cannot be read (Docker reserves 2), through no proxy.
#[tokio::test]
async fn the_health_check_says_whether_the_server_answers() {
    let app = TestApp::start().await;
    let port = app.url.rsplit(':').next().expect("port").to_string();
    let health = |env: &[(&str, &str)], args: &[&str]| {
        // In a folder of its own: a ./critic.toml where the tests run must not count.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_critic"));
        cmd.arg("health")
            .args(args)
            .env_clear()
            .current_dir(dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run")
    };
    let listen = format!("0.0.0.0:{port}");
    let up = tokio::task::spawn_blocking(move || {
        health(&[("CRITIC_SERVER__LISTEN", listen.as_str())], &[])
    })
    .await
    .expect("join");
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let url = format!("{}/healthz", app.url);
    // A proxy in the environment (one that does not exist) is not asked.
    let named = tokio::task::spawn_blocking(move || {
        health(
            &[
                ("HTTP_PROXY", "http://127.0.0.1:9"),
                ("http_proxy", "http://127.0.0.1:9"),
                ("ALL_PROXY", "http://127.0.0.1:9"),
            ],
            &["--url", url.as_str()],
        )
    })
    .await
    .expect("join");
    assert_eq!(named.status.code(), Some(0));
    app.finish().await;

    // Nothing listens on a port just freed.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = free.local_addr().expect("addr").to_string();
    drop(free);
    let down = health(&[("CRITIC_SERVER__LISTEN", closed.as_str())], &[]);
    assert_eq!(down.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("/healthz"),
        "says what it asked"
    );
    let bad = health(&[("CRITIC_SERVER__LISTEN", "not an address")], &[]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("server.listen"));
}
