//! `/metrics`: Prometheus's text format, the counters of a scripted review moving, and no
//! label that names a pull request, a commit or a repository.

use crate::support::app::{REPO, TestApp, WAIT};
use crate::support::llm::Reply;

/// The scrape, parsed with a Prometheus text-format parser.
async fn scrape(app: &TestApp) -> prometheus_parse::Scrape {
    let resp = reqwest::get(format!("{}/metrics", app.url))
        .await
        .expect("scrape");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("text");
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text format")
}

/// The sum of a counter's samples whose labels include all of `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// How many observations a histogram holds over its series with `label` (its +Inf bucket).
fn observations(scrape: &prometheus_parse::Scrape, name: &str, label: (&str, &str)) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn a_review_moves_the_counters_and_no_label_names_a_pr_or_a_sha() {
    let app = TestApp::start().await;
    // An installation and repository of this test's own: the recorder is the process's,
    // and the rate-limit gauge is labelled by installation.
    let (installation, repo) = (7_751, "acme/metered");
    app.github().add_installation(installation);
    app.github().add_repo(repo, installation);
    let head = "5151515151515151515151515151515151515151";
    app.github().add_two_line_pull(repo, 51, Some(head));
    app.llm().push(Reply::findings(
        serde_json::json!([{"path": "a.txt", "line": 2, "body": "Spelling?"}]),
    ));
    // GitHub refuses the review once (a passing 422): it is posted whole on the next try.
    app.github()
        .fail_next("POST", &format!("/repos/{repo}/pulls/51/reviews"), 422, 1);
    // The recorder is the process's: other tests count too, so this one compares.
    let before = scrape(&app).await;
    let mut opened = app.pull_request_event("opened", repo, 51);
    opened["installation"]["id"] = installation.into();
    app.deliver("pull_request", &opened).await;
    app.github().wait_for_reviews(repo, 51, 1, WAIT).await;
    app.summary_says(repo, 51, head, "**1 new finding(s)**")
        .await;
    app.wait_idle().await;
    let after = scrape(&app).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert!(
        moved(
            "critic_deliveries_total",
            &[("event", "pull_request"), ("outcome", "accepted")]
        ) >= 1.0
    );
    assert!(
        moved(
            "critic_jobs_total",
            &[("kind", "review"), ("outcome", "done")]
        ) >= 1.0
    );
    assert!(moved("critic_reviews_posted_total", &[]) >= 1.0);
    assert!(moved("critic_findings_total", &[("place", "inline")]) >= 1.0);
    assert!(moved("critic_llm_calls_total", &[("task", "review")]) >= 1.0);
    assert!(moved("critic_llm_tokens_total", &[("kind", "input")]) >= 1.0);
    assert!(moved("critic_github_calls_total", &[("outcome", "ok")]) >= 1.0);
    assert!(moved("critic_github_calls_total", &[("outcome", "client_error")]) >= 1.0);
    assert!(moved("critic_review_rejections_recovered_total", &[]) >= 1.0);
    assert!(
        observations(
            &after,
            "critic_llm_request_duration_seconds",
            ("task", "review")
        ) > observations(
            &before,
            "critic_llm_request_duration_seconds",
            ("task", "review")
        ),
        "the model call's latency is observed"
    );
    // The fake answers with GitHub's rate-limit headers (5,000 an hour, less what was used).
    let remaining = value(
        &after,
        "critic_github_rate_limit_remaining",
        &[
            ("installation", &installation.to_string()),
            ("resource", "core"),
        ],
    );
    assert!(
        remaining > 0.0 && remaining < 5000.0,
        "remaining {remaining}"
    );
    assert!(
        after
            .samples
            .iter()
            .any(|s| s.metric == "critic_queue_jobs"),
        "the queue's depth is read at scrape time"
    );
    // A bad delivery is counted without its claimed event.
    let resp = app
        .post_webhook(
            &[
                ("x-github-event", "pull_request"),
                ("x-github-delivery", "bad-1"),
                ("x-hub-signature-256", "sha256=00"),
                ("content-type", "application/json"),
            ],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(resp.status(), 401);
    let last = scrape(&app).await;
    assert!(
        value(
            &last,
            "critic_deliveries_total",
            &[("outcome", "bad_signature")]
        ) > value(
            &after,
            "critic_deliveries_total",
            &[("outcome", "bad_signature")]
        )
    );
    for s in &last.samples {
        for (k, v) in s.labels.iter() {
            assert!(
                !["pr", "number", "sha", "repo", "repository"].contains(&k.as_str()),
                "{} has label {k}",
                s.metric
            );
            let sha_like = v.len() >= 7 && v.chars().all(|c| c.is_ascii_hexdigit());
            assert!(
                !sha_like && !v.contains(REPO) && !v.contains(repo),
                "{} label {k}={v}",
                s.metric
            );
        }
    }
    app.finish().await;
}

/// `server.metrics_listen`: metrics on their own address, and not on the listener GitHub
/// reaches.
#[tokio::test]
async fn metrics_can_have_their_own_listener() {
    let world = crate::support::app::World::new().await;
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = free.local_addr().expect("addr");
    drop(free);
    let app = world
        .start_with(
            world
                .options()
                .set("CRITIC_SERVER__METRICS_LISTEN", &addr.to_string()),
        )
        .await;
    let main = reqwest::get(format!("{}/metrics", app.url))
        .await
        .expect("main listener");
    assert_eq!(main.status(), 404, "not on the main listener");
    let mut text = String::new();
    // The metrics listener is bound as the server starts; give it a moment.
    for _ in 0..100 {
        if let Ok(resp) = reqwest::get(format!("http://{addr}/metrics")).await {
            assert_eq!(resp.status(), 200);
            text = resp.text().await.expect("text");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(text.contains("critic_queue_jobs"), "{text}");
    app.finish().await;
}
