//! HTTP: the webhook endpoint and health checks. The webhook handler verifies, parses,
//! dedupes and enqueues; it never does the work itself.

pub mod proxy;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::Sha256;

use crate::Critic;
use crate::jobs::plan_with;
use crate::store::DeliveryOutcome;
use crate::webhook::Event;

/// The application's routes.
pub fn router(critic: Arc<Critic>) -> Router {
    let settings = &critic.config.settings.server;
    let router = Router::new()
        .route(
            &settings.webhook_path,
            post(webhook).layer(DefaultBodyLimit::max(settings.max_body_bytes)),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    // With `server.metrics_listen` set, metrics are served there only (see [`metrics_router`]),
    // so the listener GitHub reaches need not show them.
    let router = if settings.metrics_listen.is_none() {
        router.route("/metrics", get(metrics_text))
    } else {
        router
    };
    router
        // Where GitHub sends whoever installed the App (the manifest's `setup_url`).
        .route(
            "/setup/installed",
            get(|| async {
                "Critic is installed. Open or push to a pull request in a repository it can see, and it reviews it within a minute.\n"
            }),
        )
        .with_state(critic)
}

/// Where this host reaches a server listening on `listen`: an unspecified address
/// (`0.0.0.0`, `::`) is answered on loopback.
pub fn local_addr(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    std::net::SocketAddr::new(ip, listen.port())
}

/// `critic health`'s default: `/healthz` on [`local_addr`].
pub fn health_url(listen: std::net::SocketAddr) -> String {
    format!("http://{}/healthz", local_addr(listen))
}

/// The routes of `server.metrics_listen`: `/metrics` and `/healthz`.
pub fn metrics_router(critic: Arc<Critic>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(critic)
}

/// Prometheus's text format.
async fn metrics_text(State(critic): State<Arc<Critic>>) -> Response {
    match crate::telemetry::render(&critic.store).await {
        Ok(text) => (
            [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: store not reachable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable").into_response()
        }
    }
}

async fn readyz(State(critic): State<Arc<Critic>>) -> Response {
    match critic.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "store not reachable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable").into_response()
        }
    }
}

/// Why a delivery was refused. The text is safe to show to the sender.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("missing X-Hub-Signature-256")]
    MissingSignature,
    #[error("signature does not match")]
    BadSignature,
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("{0}")]
    BadPayload(String),
    #[error("temporarily unavailable; redeliver later")]
    Unavailable,
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let status = match self {
            WebhookError::MissingSignature | WebhookError::BadSignature => StatusCode::UNAUTHORIZED,
            WebhookError::MissingHeader(_) | WebhookError::BadPayload(_) => StatusCode::BAD_REQUEST,
            WebhookError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, axum::Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// Checks `sha256=<hex>` against every configured secret, in constant time.
pub fn verify_signature(
    secrets: &[SecretString],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let hex_sig = header
        .strip_prefix("sha256=")
        .ok_or(WebhookError::BadSignature)?;
    let sig = hex::decode(hex_sig.trim()).map_err(|_| WebhookError::BadSignature)?;
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else {
            continue;
        };
        mac.update(body);
        if mac.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(WebhookError::BadSignature)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The JSON of a delivery: the body itself, or its `payload` field when the hook was set up
/// with content type `application/x-www-form-urlencoded`.
fn json_body<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, WebhookError> {
    let form = header(headers, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Ok(std::borrow::Cow::Borrowed(body));
    }
    #[derive(serde::Deserialize)]
    struct Form {
        payload: String,
    }
    let form: Form = serde_urlencoded::from_bytes(body).map_err(|e| {
        WebhookError::BadPayload(format!("form delivery without a payload field: {e}"))
    })?;
    Ok(std::borrow::Cow::Owned(form.payload.into_bytes()))
}

async fn webhook(
    State(critic): State<Arc<Critic>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebhookError> {
    accept(critic, headers, body).await
}

/// Critic's App slug, for a comment that may mention it (`@slug review`): learnt at start
/// (see `crate::run`); if GitHub had not said by then, asked now, for such comments only, for
/// at most 2 seconds (a delivery is answered in milliseconds otherwise).
async fn app_slug(critic: &Critic, event: &Event) -> Option<String> {
    let Event::IssueComment(e) = event else {
        return None;
    };
    if !e.comment.body.trim_start().starts_with('@') {
        return None;
    }
    let login = match critic.github.known_bot_login() {
        Some(login) => login.to_string(),
        None => tokio::time::timeout(Duration::from_secs(2), critic.github.bot_login())
            .await
            .ok()?
            .ok()?,
    };
    Some(login.trim_end_matches("[bot]").to_string())
}

/// Counts a delivery by its event (GitHub's event names, a bounded set; `-` before the
/// signature is checked) and how it ended.
fn count_delivery(event: &str, outcome: &'static str) {
    metrics::counter!("critic_deliveries_total", "event" => event.to_string(), "outcome" => outcome)
        .increment(1);
}

/// One delivery, from GitHub or from a webhook proxy: verified, parsed, deduped, queued.
pub async fn accept(
    critic: Arc<Critic>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebhookError> {
    if let Err(e) = verify_signature(
        &critic.config.webhook_secrets,
        header(&headers, "x-hub-signature-256"),
        &body,
    ) {
        count_delivery("-", "bad_signature");
        return Err(e);
    }
    let event_name =
        header(&headers, "x-github-event").ok_or(WebhookError::MissingHeader("X-GitHub-Event"))?;
    let delivery = header(&headers, "x-github-delivery")
        .ok_or(WebhookError::MissingHeader("X-GitHub-Delivery"))?;
    let json = json_body(&headers, &body)?;
    let event = Event::parse(event_name, &json).map_err(|e| {
        count_delivery(event_name, "bad_payload");
        WebhookError::BadPayload(e.to_string())
    })?;
    let slug = app_slug(&critic, &event).await;
    let span = tracing::info_span!(
        "delivery",
        id = delivery,
        event = event_name,
        repo = event
            .repository()
            .map(|r| r.full_name.as_str())
            .unwrap_or("-")
    );
    let _enter = span.enter();

    let job = plan_with(&event, &critic.config.settings, slug.as_deref());
    let new_job = match &job {
        Some(j) => Some(
            j.to_new_job(Duration::from_secs(
                critic.config.settings.review.coalesce_secs,
            ))
            .map_err(|e| WebhookError::BadPayload(e.to_string()))?,
        ),
        None => None,
    };
    drop(_enter);
    let outcome = critic
        .store
        .record_delivery(delivery, event_name, new_job)
        .await
        .map_err(|e| {
            tracing::error!(parent: &span, error = %e, "cannot record delivery");
            WebhookError::Unavailable
        })?;
    let reply = match outcome {
        DeliveryOutcome::Duplicate => {
            count_delivery(event_name, "duplicate");
            tracing::info!(parent: &span, "duplicate delivery ignored");
            (StatusCode::OK, axum::Json(json!({ "status": "duplicate" })))
        }
        DeliveryOutcome::Accepted(Some(job)) => {
            // A job coalesced into a later window is found by the workers' poll then; waking
            // one now would only have it look in vain.
            if job.run_at <= crate::store::now_ms() {
                critic.wake.notify_one();
            }
            count_delivery(event_name, "accepted");
            tracing::info!(parent: &span, job_id = job.id, "job queued");
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "status": "queued", "job": job.id })),
            )
        }
        DeliveryOutcome::Accepted(None) => {
            count_delivery(event_name, "ignored");
            if let Event::Ping(p) = &event {
                tracing::info!(parent: &span, hook = p.hook_id, "ping");
            }
            (StatusCode::OK, axum::Json(json!({ "status": "ignored" })))
        }
    };
    Ok(reply.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn the_health_check_asks_loopback_for_an_unspecified_address() {
        let url = |a: &str| health_url(a.parse().expect("addr"));
        assert_eq!(url("0.0.0.0:3000"), "http://127.0.0.1:3000/healthz");
        assert_eq!(url("[::]:3000"), "http://[::1]:3000/healthz");
        assert_eq!(url("10.1.2.3:8080"), "http://10.1.2.3:8080/healthz");
    }

    #[test]
    fn signatures() {
        let secrets = vec![SecretString::from("old"), SecretString::from("new")];
        let body = b"{}";
        assert!(verify_signature(&secrets, Some(&sign("new", body)), body).is_ok());
        assert!(
            verify_signature(&secrets, Some(&sign("old", body)), body).is_ok(),
            "rotation"
        );
        assert!(matches!(
            verify_signature(&secrets, Some(&sign("other", body)), body),
            Err(WebhookError::BadSignature)
        ));
        assert!(matches!(
            verify_signature(&secrets, None, body),
            Err(WebhookError::MissingSignature)
        ));
        assert!(matches!(
            verify_signature(&secrets, Some("sha1=00"), body),
            Err(WebhookError::BadSignature)
        ));
        assert!(matches!(
            verify_signature(&secrets, Some("sha256=zz"), body),
            Err(WebhookError::BadSignature)
        ));
        assert!(
            verify_signature(&secrets, Some(&sign("new", body)), b"{ }").is_err(),
            "body changed"
        );
    }

    #[test]
    fn form_deliveries_carry_json_in_payload() {
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().expect("hv"),
        );
        let body = b"payload=%7B%22zen%22%3A%22x%22%7D";
        assert_eq!(&*json_body(&h, body).expect("form"), br#"{"zen":"x"}"#);
        assert!(json_body(&h, b"other=1").is_err());
        assert_eq!(&*json_body(&HeaderMap::new(), b"{}").expect("json"), b"{}");
    }
}
