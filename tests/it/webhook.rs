//! The webhook endpoint's answers to good and bad deliveries, and the health checks.

use serde_json::json;

use crate::support::app::{SECRET, TestApp, World, payload, signature};

fn signed(body: &[u8]) -> String {
    signature(SECRET, body)
}

#[tokio::test]
async fn bad_deliveries_get_clear_errors_and_store_nothing() {
    let world = World::new().await;
    let app = world
        .start_with(
            world
                .options()
                .set("CRITIC_SERVER__MAX_BODY_BYTES", "16384"),
        )
        .await;
    let ping = serde_json::to_vec(&payload("ping.event.1.json")).expect("json");

    // No event header.
    let sig = signed(&ping);
    let resp = app
        .post_webhook(
            &[("x-github-delivery", "a"), ("x-hub-signature-256", &sig)],
            ping.clone(),
        )
        .await;
    assert_eq!(resp.status(), 400);
    let err: serde_json::Value = resp.json().await.expect("json error");
    assert!(
        err["error"]
            .as_str()
            .unwrap_or_default()
            .contains("X-GitHub-Event"),
        "{err}"
    );

    // Not JSON, correctly signed.
    let junk = b"{not json".to_vec();
    let sig = signed(&junk);
    let resp = app
        .post_webhook(
            &[
                ("x-github-event", "pull_request"),
                ("x-github-delivery", "b"),
                ("x-hub-signature-256", &sig),
            ],
            junk,
        )
        .await;
    assert_eq!(resp.status(), 400);

    // JSON of the wrong shape names the path.
    let wrong = br#"{"action":"opened","number":"seven"}"#.to_vec();
    let sig = signed(&wrong);
    let resp = app
        .post_webhook(
            &[
                ("x-github-event", "pull_request"),
                ("x-github-delivery", "c"),
                ("x-hub-signature-256", &sig),
            ],
            wrong,
        )
        .await;
    assert_eq!(resp.status(), 400);
    let err: serde_json::Value = resp.json().await.expect("json error");
    assert!(
        err["error"].as_str().unwrap_or_default().contains("number"),
        "{err}"
    );

    // Over the size cap.
    let big = vec![b' '; 20_000];
    let sig = signed(&big);
    let resp = app
        .post_webhook(
            &[
                ("x-github-event", "ping"),
                ("x-github-delivery", "d"),
                ("x-hub-signature-256", &sig),
            ],
            big,
        )
        .await;
    assert_eq!(resp.status(), 413);

    // No delivery id.
    let sig = signed(&ping);
    let resp = app
        .post_webhook(
            &[("x-github-event", "ping"), ("x-hub-signature-256", &sig)],
            ping,
        )
        .await;
    assert_eq!(resp.status(), 400);

    assert_eq!(app.critic.store.delivery_count().await.expect("count"), 0);
    assert!(app.jobs().await.is_empty());
    app.finish().await;
}

#[tokio::test]
async fn unhandled_and_informational_events_are_acknowledged() {
    let app = TestApp::start().await;
    for (event, file) in [
        ("ping", "ping.event.1.json"),
        ("push", "push.event.1.json"),
        ("installation", "installation.created.1.json"),
        (
            "installation_repositories",
            "installation_repositories.added.1.json",
        ),
        ("issue_comment", "issue_comment.created.1.json"),
        (
            "pull_request_review_comment",
            "pull_request_review_comment.created.1.json",
        ),
        ("check_run", "check_run.created.1.json"),
        ("pull_request", "pull_request.labeled.1.json"),
    ] {
        let (status, reply) = app.deliver(event, &payload(file)).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("ignored")),
            "{event}"
        );
    }
    assert_eq!(app.critic.store.delivery_count().await.expect("count"), 8);
    assert!(app.jobs().await.is_empty());
    app.finish().await;
}

#[tokio::test]
async fn form_encoded_deliveries_are_accepted() {
    let app = TestApp::start().await;
    let json = serde_json::to_string(&payload("ping.event.2.json")).expect("json");
    let body = serde_urlencoded::to_string([("payload", json.as_str())])
        .expect("form")
        .into_bytes();
    let sig = signed(&body);
    let resp = app
        .post_webhook(
            &[
                ("x-github-event", "ping"),
                ("x-github-delivery", "form-1"),
                ("x-hub-signature-256", &sig),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            body,
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.critic.store.delivery_count().await.expect("count"), 1);
    app.finish().await;
}

#[tokio::test]
async fn rotated_secrets_are_both_accepted() {
    let world = World::new().await;
    let app = world
        .start_with(world.options().set(
            "CRITIC_GITHUB__WEBHOOK_SECRET",
            &format!("new-secret,{SECRET}"),
        ))
        .await;
    let (status, _) = app.deliver("ping", &payload("ping.event.1.json")).await;
    assert_eq!(status, 200, "old secret still accepted");
    let body = serde_json::to_vec(&json!({"zen": "z", "hook_id": 1})).expect("json");
    let sig = signature("new-secret", &body);
    let resp = app
        .post_webhook(
            &[
                ("x-github-event", "ping"),
                ("x-github-delivery", "new"),
                ("x-hub-signature-256", &sig),
            ],
            body,
        )
        .await;
    assert_eq!(resp.status(), 200);
    app.finish().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::start().await;
    let get = |path: &str| reqwest::get(format!("{}{path}", app.url));
    assert_eq!(get("/healthz").await.expect("healthz").status(), 200);
    assert_eq!(get("/readyz").await.expect("readyz").status(), 200);
    let world = app.stop().await;
    drop(world);
}
