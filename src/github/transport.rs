//! One GitHub call: sent through octocrab (which signs it and renews the installation token,
//! retrying once on a 401 with a fresh one), its answer read whole, and retried as
//! [`super::retry`] says. Every method of [`super::Installation`] goes through here, so the
//! pipeline never sees a failure GitHub calls temporary unless it lasted.

use axum::body::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use octocrab::Octocrab;
use serde::de::DeserializeOwned;

use super::GitHubError;
use super::retry::{RetryPolicy, Temporary, temporary};

/// A request, kept whole so it can be sent again.
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub method: Method,
    /// Path and query, relative to the API base (`/repos/o/r/pulls/1?per_page=100`).
    pub route: String,
    pub body: Option<serde_json::Value>,
    pub headers: HeaderMap,
}

impl Call {
    pub fn get(route: impl Into<String>) -> Call {
        Call::new(Method::GET, route, None)
    }

    pub fn new(method: Method, route: impl Into<String>, body: Option<serde_json::Value>) -> Call {
        Call {
            method,
            route: route.into(),
            body,
            headers: HeaderMap::new(),
        }
    }

    pub fn header(mut self, name: http::HeaderName, value: http::HeaderValue) -> Call {
        self.headers.insert(name, value);
        self
    }

    /// Appends query parameters (already safe for a URL: numbers and plain words).
    pub fn query(mut self, params: &[(&str, &str)]) -> Call {
        for (k, v) in params {
            let sep = if self.route.contains('?') { '&' } else { '?' };
            self.route = format!("{}{sep}{k}={}", self.route, super::names::encode_path(v));
        }
        self
    }

    /// A POST that creates something: if it fails in a way that may have created it
    /// anyway, the caller looks before posting again.
    fn creates(&self) -> bool {
        self.method == Method::POST
    }
}

/// A successful answer (2xx, or 304 to a conditional request).
#[derive(Debug)]
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, GitHubError> {
        let mut de = serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(&mut de)
            .map_err(|e| GitHubError::Decode(format!("{} at {}", e.inner(), e.path())))
    }

    /// Whether the `Link` header names a next page.
    pub fn has_next_page(&self) -> bool {
        self.headers
            .get_all(http::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|link| {
                link.split(';')
                    .skip(1)
                    .any(|p| p.trim().replace(' ', "") == "rel=\"next\"")
            })
    }
}

/// Who sends a call: the client (an installation's, or the App's own), its retry policy, and
/// the installation whose rate limit the answer reports (None: the App or a personal token).
#[derive(Clone, Copy)]
pub(super) struct Via<'a> {
    pub crab: &'a Octocrab,
    pub policy: &'a RetryPolicy,
    pub installation: Option<u64>,
}

/// A try that failed, and whether it is worth another.
struct Failed {
    error: GitHubError,
    temporary: Option<Temporary>,
}

/// Sends once; the status decides success.
async fn send_once(
    crab: &Octocrab,
    call: &Call,
    installation: Option<u64>,
) -> Result<Answer, Failed> {
    let mut builder = http::Request::builder()
        .method(call.method.clone())
        .uri(call.route.as_str());
    for (name, value) in &call.headers {
        builder = builder.header(name, value);
    }
    let request = crab
        .build_request(builder, call.body.as_ref())
        .map_err(failed_octocrab)?;
    let response = crab.execute(request).await.map_err(failed_octocrab)?;
    let (parts, body) = response.into_parts();
    record_rate_limit(&parts.headers, installation);
    let body = body.collect().await.map_err(|e| Failed {
        // The connection dropped mid-answer: as temporary as a refused one.
        error: GitHubError::Transport(e.to_string()),
        temporary: Some(Temporary::Server),
    })?;
    let body = body.to_bytes();
    if parts.status.is_success() || parts.status == StatusCode::NOT_MODIFIED {
        return Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        });
    }
    let error = status_error(parts.status, &body);
    let message = match &error {
        GitHubError::Status { message, .. } => message.as_str(),
        _ => "",
    };
    let temporary = temporary(
        parts.status,
        &parts.headers,
        message,
        chrono::Utc::now().timestamp(),
    );
    Err(Failed { error, temporary })
}

/// The installation's remaining requests this hour, as GitHub's last answer said; labelled
/// by the installation's id (a bounded set: one per organisation or account that installed
/// the App) and the limit's resource. An idle installation's series keeps its last value.
fn record_rate_limit(headers: &HeaderMap, installation: Option<u64>) {
    let Some(remaining) = headers
        .get("x-ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return;
    };
    // REST (`core`) and GraphQL count against different limits: one series each. GitHub's
    // resources are a short fixed list; anything else is `other`.
    let resource = match headers
        .get("x-ratelimit-resource")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        Some("core") | None => "core",
        Some("graphql") => "graphql",
        Some("search") => "search",
        Some("code_search") => "code_search",
        Some(_) => "other",
    };
    let label = installation.map_or_else(|| "app".to_string(), |id| id.to_string());
    metrics::gauge!(
        "critic_github_rate_limit_remaining",
        "installation" => label,
        "resource" => resource
    )
    .set(remaining as f64);
}

/// GitHub's error body (`{"message": ..., "errors": [...]}`), or the status's own words.
fn status_error(status: StatusCode, body: &[u8]) -> GitHubError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        errors: Option<Vec<serde_json::Value>>,
    }
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let text = String::from_utf8_lossy(body).trim().to_string();
    let message = parsed
        .as_ref()
        .and_then(|b| b.message.clone())
        .or_else(|| (!text.is_empty()).then(|| text.chars().take(300).collect::<String>()))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    let errors = parsed
        .and_then(|b| b.errors)
        .unwrap_or_default()
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        })
        .collect();
    GitHubError::Status {
        status: status.as_u16(),
        message,
        errors,
    }
}

/// An octocrab error before any answer: the network (temporary) or our own setup (not).
/// octocrab reports a failed token request as a GitHub error of that request.
fn failed_octocrab(e: octocrab::Error) -> Failed {
    let error = GitHubError::from(e);
    let temporary = match &error {
        GitHubError::Transport(_) => Some(Temporary::Server),
        GitHubError::Status {
            status, message, ..
        } => StatusCode::from_u16(*status)
            .ok()
            .and_then(|s| temporary(s, &HeaderMap::new(), message, 0)),
        _ => None,
    };
    Failed { error, temporary }
}

/// Sends `call`, retrying what is temporary. A POST that may have been performed (a server
/// error or no answer) is not sent again before `find` looked for what it would have
/// created: found, that is the answer, so nothing is created twice. The look-up waits a
/// little after an answer that says GitHub may still be at work (a gateway timeout, or none
/// at all), and it is made once more before a failure is returned.
pub(super) async fn send<T, F>(
    via: Via<'_>,
    call: &Call,
    parse: impl Fn(&Answer) -> Result<T, GitHubError>,
    find: impl Fn() -> F,
) -> Result<T, GitHubError>
where
    F: Future<Output = Result<Option<T>, GitHubError>>,
{
    let Via {
        crab,
        policy,
        installation,
    } = via;
    let mut retry = 0;
    let mut maybe_performed = false;
    loop {
        let failed = match send_once(crab, call, installation).await {
            Ok(answer) => {
                metrics::counter!("critic_github_calls_total", "outcome" => "ok").increment(1);
                return parse(&answer);
            }
            Err(failed) => failed,
        };
        let outcome = match failed.temporary {
            Some(Temporary::Limited { .. }) => "rate_limited",
            Some(Temporary::Server) => "server_error",
            None => "client_error",
        };
        metrics::counter!("critic_github_calls_total", "outcome" => outcome).increment(1);
        if failed.temporary == Some(Temporary::Server) && call.creates() {
            maybe_performed = true;
        }
        let wait = match failed.temporary {
            Some(Temporary::Limited { wait })
                if wait > policy.max_wait || retry >= policy.retries =>
            {
                tracing::warn!(route = %call.route, ?wait, "GitHub rate limit outlasts what a call waits for; the job goes back to the queue");
                return Err(rate_limited(wait, &failed.error));
            }
            // A little more than asked, so that many calls limited together spread out.
            Some(Temporary::Limited { wait }) => wait + policy.backoff(1) / 4,
            Some(Temporary::Server) if retry < policy.retries => {
                let backoff = policy.backoff(retry + 1);
                if maybe_performed && still_at_work(&failed.error) {
                    backoff.max(policy.base.saturating_mul(SETTLE_BASES))
                } else {
                    backoff
                }
            }
            _ => {
                if maybe_performed && let Some(found) = find().await? {
                    tracing::info!(route = %call.route, "the failed call had been performed");
                    return Ok(found);
                }
                return Err(failed.error);
            }
        };
        retry += 1;
        tracing::info!(method = %call.method, route = %call.route, retry, ?wait, error = %failed.error, "GitHub call failed; retrying");
        tokio::time::sleep(wait).await;
        if maybe_performed && let Some(found) = find().await? {
            tracing::info!(route = %call.route, "the failed call had been performed; not sending it again");
            return Ok(found);
        }
    }
}

/// How long (in backoff bases: 5 s by default) a write that may still be under way at
/// GitHub gets before it is looked for.
const SETTLE_BASES: u32 = 5;

/// A gateway timeout or no answer at all: GitHub may still be performing the request.
fn still_at_work(error: &GitHubError) -> bool {
    matches!(error, GitHubError::Transport(_)) || error.status() == Some(504)
}

/// The longest rate-limit wait handed back to the queue: beyond it, a reset time is wrong.
const MAX_LIMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(86_400);

fn rate_limited(wait: std::time::Duration, error: &GitHubError) -> GitHubError {
    let wait = chrono::Duration::from_std(wait.min(MAX_LIMIT_WAIT)).unwrap_or_default();
    GitHubError::RateLimited {
        until: chrono::Utc::now()
            .checked_add_signed(wait)
            .unwrap_or_else(chrono::Utc::now),
        message: error.to_string(),
    }
}

/// [`send`] for calls that are safe to repeat (reads, edits, deletes, reactions).
pub(super) async fn send_idempotent<T>(
    via: Via<'_>,
    call: &Call,
    parse: impl Fn(&Answer) -> Result<T, GitHubError>,
) -> Result<T, GitHubError> {
    send(via, call, parse, || async { Ok(None) }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(link: Option<&str>) -> Answer {
        let mut headers = HeaderMap::new();
        if let Some(link) = link {
            headers.insert(http::header::LINK, link.parse().expect("header"));
        }
        Answer {
            status: StatusCode::OK,
            headers,
            body: Bytes::from_static(b"[]"),
        }
    }

    #[test]
    fn a_next_page_is_read_from_the_link_header_only() {
        assert!(answer(Some(
            r#"<https://api.github.com/repositories/1/pulls/1/files?page=2>; rel="next", <https://api.github.com/repositories/1/pulls/1/files?page=3>; rel="last""#
        ))
        .has_next_page());
        assert!(!answer(Some(
            r#"<https://api.github.com/repositories/1/pulls/1/files?page=1>; rel="prev", <https://x/?page=1>; rel="first""#
        ))
        .has_next_page());
        assert!(!answer(None).has_next_page());
    }

    #[test]
    fn error_bodies_keep_githubs_message_or_the_status() {
        let e = status_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            br#"{"message":"Validation Failed","errors":["Line could not be resolved",{"code":"x"}]}"#,
        );
        assert_eq!(e.status(), Some(422));
        assert_eq!(
            e.to_string(),
            r#"GitHub answered 422: Validation Failed (Line could not be resolved; {"code":"x"})"#
        );
        // A proxy's HTML page, or nothing at all.
        let e = status_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert!(e.to_string().contains("<html>bad gateway</html>"), "{e}");
        let e = status_error(StatusCode::SERVICE_UNAVAILABLE, b"");
        assert!(e.to_string().contains("Service Unavailable"), "{e}");
    }

    #[test]
    fn an_answer_that_is_not_what_github_documents_is_a_decode_error_naming_the_field() {
        let answer = Answer {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(br#"{"number": "seven"}"#),
        };
        #[derive(Debug, serde::Deserialize)]
        struct Pull {
            #[allow(dead_code)]
            number: u64,
        }
        let err = answer.json::<Pull>().expect_err("not a number");
        assert!(
            matches!(&err, GitHubError::Decode(m) if m.contains("number")),
            "{err}"
        );
        assert!(!err.is_transient());
    }

    #[test]
    fn a_rate_limit_far_off_or_absurd_is_capped_not_a_panic() {
        let e = GitHubError::Transport("x".into());
        for wait in [
            std::time::Duration::MAX,
            std::time::Duration::from_secs(3 * 86_400),
        ] {
            match rate_limited(wait, &e) {
                GitHubError::RateLimited { until, .. } => {
                    let ahead = until - chrono::Utc::now();
                    assert!(ahead <= chrono::Duration::seconds(86_400), "{ahead}");
                    assert!(ahead > chrono::Duration::seconds(86_000), "{ahead}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn only_posts_are_looked_for_before_they_are_sent_again() {
        assert!(Call::new(Method::POST, "/x", None).creates());
        assert!(!Call::get("/x").creates());
        assert!(!Call::new(Method::PATCH, "/x", None).creates());
        assert_eq!(
            Call::get("/a")
                .query(&[("ref", "feature/x y"), ("page", "2")])
                .route,
            "/a?ref=feature/x%20y&page=2"
        );
    }
}
