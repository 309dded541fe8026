//! Deliveries through a smee.io-style channel: a local server-sent-events server relays two
//! deliveries (one with a bad signature), drops the connection, and relays a third when
//! Critic reconnects.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use crate::support::app::{REPO, SECRET, TestApp, WAIT, World, signature};
use crate::support::llm::Reply;

/// One channel event: the delivery's headers and its body, as smee.io relays them.
fn relayed(app: &TestApp, number: u64, secret: &str) -> String {
    let body =
        serde_json::to_string(&app.pull_request_event("opened", REPO, number)).expect("json");
    let sig = signature(secret, body.as_bytes());
    format!(
        "data: {{\"x-github-event\":\"pull_request\",\"x-github-delivery\":\"proxy-{number}\",\"x-hub-signature-256\":\"{sig}\",\"content-type\":\"application/json\",\"body\":{body},\"query\":{{}},\"timestamp\":1}}\n\n"
    )
}

struct Channel {
    connections: AtomicUsize,
    first: String,
    second: String,
}

async fn channel(State(c): State<Arc<Channel>>) -> Response {
    let n = c.connections.fetch_add(1, Ordering::SeqCst);
    let body = if n == 0 {
        // Then the stream ends: the connection drops.
        Body::from(format!("event: ready\ndata: {{}}\n\n{}", c.first))
    } else {
        // Stays open after the event, as a channel does.
        let events = format!(": ping\n\n{}", c.second);
        let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(events) })
            .chain(futures_util::stream::pending());
        Body::from_stream(stream)
    };
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(body)
        .expect("response")
}

use futures_util::StreamExt;

#[tokio::test]
async fn deliveries_come_through_the_channel_signature_checked_across_a_reconnect() {
    let world = World::new().await;
    for (number, sha) in [
        (21, "2121212121212121212121212121212121212121"),
        (22, "2222222222222222222222222222222222222222"),
        (23, "2323232323232323232323232323232323232323"),
    ] {
        world.github.add_two_line_pull(REPO, number, Some(sha));
    }
    world.llm.respond_with(|_| {
        Reply::findings(serde_json::json!([{"path": "a.txt", "line": 2, "body": "Spelling?"}]))
    });
    // The channel's events are built from the fake's PRs; a stand-in app gives the payloads.
    let probe = world.start().await;
    let state = Arc::new(Channel {
        connections: AtomicUsize::new(0),
        first: relayed(&probe, 21, SECRET) + &relayed(&probe, 22, "not-the-secret"),
        second: relayed(&probe, 23, SECRET),
    });
    probe.stop().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/channel", listener.local_addr().expect("addr"));
    let sse = Router::new()
        .route("/channel", get(channel))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, sse).await });

    let app = world
        .start_with(
            world
                .options()
                .set("CRITIC_SERVER__WEBHOOK_PROXY_URL", &url),
        )
        .await;
    let first = app.github().wait_for_reviews(REPO, 21, 1, WAIT).await;
    assert_eq!(first[0].comments.len(), 1);
    // The third came after a reconnect.
    app.github().wait_for_reviews(REPO, 23, 1, WAIT).await;
    assert!(state.connections.load(Ordering::SeqCst) >= 2);
    app.wait_idle().await;
    assert!(
        app.github().reviews(REPO, 22).is_empty(),
        "the delivery with a bad signature was refused"
    );
    let jobs = app.jobs().await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    app.summary_says(REPO, 21, "2121212", "**1 new finding(s)**")
        .await;
    app.summary_says(REPO, 23, "2323232", "**1 new finding(s)**")
        .await;
    app.finish().await;
}
