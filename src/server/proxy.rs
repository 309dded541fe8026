//! Deliveries through a webhook proxy, for a Critic without a public URL (a laptop): a
//! smee.io-style channel streams each delivery GitHub sent it as a server-sent event whose
//! data is the delivery's headers (lower-case names) and its `body`; each is handed to the
//! webhook path in this process, signature checked as for any delivery. A dropped stream is
//! reconnected with backoff. This is how Probot apps are developed locally.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use crate::Critic;
use crate::backoff::Backoff;

/// Follows the channel at `url` until `stop`.
pub async fn follow(critic: Arc<Critic>, url: url::Url, stop: CancellationToken) {
    let backoff = Backoff {
        base: Duration::from_millis(500),
        max: Duration::from_secs(30),
        jitter: (0.5, 1.0),
    };
    let client = match reqwest::Client::builder()
        .user_agent(concat!("critic/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook proxy: no HTTP client");
            return;
        }
    };
    let mut failures: u32 = 0;
    while !stop.is_cancelled() {
        tokio::select! {
            _ = stop.cancelled() => return,
            result = listen(&critic, &client, &url) => {
                match result {
                    // The channel answered, then ended: reconnect after the shortest wait.
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        tracing::warn!(%url, error = %e, "webhook proxy: channel lost; reconnecting");
                    }
                }
            }
        }
        let wait = backoff.delay(failures);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One connection to the channel: each event in turn, until the stream ends.
async fn listen(
    critic: &Arc<Critic>,
    client: &reqwest::Client,
    url: &url::Url,
) -> Result<(), String> {
    let resp = client
        .get(url.clone())
        .header("accept", "text/event-stream")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("the channel answered {}", resp.status()));
    }
    tracing::info!(%url, "webhook proxy: connected");
    let mut events = resp.bytes_stream().eventsource();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| e.to_string())?;
        // smee.io also sends `ready` and `ping` events; deliveries are the unnamed ones.
        if !(event.event.is_empty() || event.event == "message") {
            continue;
        }
        match delivery(&event.data) {
            Ok((headers, body)) => {
                let id = headers
                    .get("x-github-delivery")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_string();
                match crate::server::accept(critic.clone(), headers, body).await {
                    Ok(_) => tracing::info!(delivery = %id, "webhook proxy: delivery accepted"),
                    Err(e) => {
                        tracing::warn!(delivery = %id, error = %e, "webhook proxy: delivery refused")
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "webhook proxy: an event that is no delivery was skipped")
            }
        }
    }
    Ok(())
}

/// The delivery an event carries: its headers, and its body exactly as the channel relayed it
/// (re-encoding it would change the bytes the signature covers).
fn delivery(data: &str) -> Result<(HeaderMap, Bytes), String> {
    let fields: std::collections::BTreeMap<String, Box<RawValue>> =
        serde_json::from_str(data).map_err(|e| e.to_string())?;
    let body = fields.get("body").ok_or("no `body`")?;
    let mut headers = HeaderMap::new();
    for (name, value) in &fields {
        if matches!(name.as_str(), "body" | "query" | "timestamp") {
            continue;
        }
        let Ok(text) = serde_json::from_str::<String>(value.get()) else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&text),
        ) {
            headers.insert(name, value);
        }
    }
    if !headers.contains_key("content-type") {
        headers.insert("content-type", HeaderValue::from_static("application/json"));
    }
    Ok((headers, Bytes::copy_from_slice(body.get().as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_gives_the_delivery_headers_and_the_body_as_relayed() {
        let data = r#"{"x-github-event":"ping","x-github-delivery":"d1","x-hub-signature-256":"sha256=ab","body":{"zen":"x","hook_id":1},"query":{},"timestamp":1}"#;
        let (headers, body) = delivery(data).expect("delivery");
        assert_eq!(headers["x-github-event"], "ping");
        assert_eq!(headers["x-hub-signature-256"], "sha256=ab");
        assert_eq!(headers["content-type"], "application/json");
        assert!(!headers.contains_key("timestamp"));
        assert_eq!(
            &body[..],
            br#"{"zen":"x","hook_id":1}"#,
            "key order and bytes kept"
        );
        assert!(delivery("not json").is_err());
        assert!(delivery(r#"{"x-github-event":"ping"}"#).is_err());
    }
}
