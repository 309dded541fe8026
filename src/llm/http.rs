//! One HTTP exchange with a model server, the same for every provider: the client and its
//! timeouts, sending a JSON body, an error status read as [`LlmError::Status`] (the
//! provider's own message, `Retry-After`), transport failures, and reading a reply body as
//! the provider's JSON shape. What goes in the body and what a reply means stay with each
//! provider.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{LlmError, truncate};
use crate::config::Endpoint;

/// The HTTP side of one endpoint: where requests go and how long one may take.
pub(crate) struct Client {
    http: reqwest::Client,
    url: String,
    timeout: Duration,
}

impl Client {
    /// A client for `url` with the endpoint's timeout for the whole call.
    pub(crate) fn new(endpoint: &Endpoint, url: String) -> Result<Client, LlmError> {
        let http = reqwest::Client::builder()
            .timeout(endpoint.timeout)
            .connect_timeout(Duration::from_secs(10).min(endpoint.timeout))
            .build()
            .map_err(|e| LlmError::Setup(e.to_string()))?;
        Ok(Client {
            http,
            url,
            timeout: endpoint.timeout,
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// A GET of `url` (on the same server), for the provider to add its headers to.
    pub(crate) fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.get(url)
    }

    /// A POST of `body`, for the provider to add its headers to.
    pub(crate) fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.http.post(&self.url).json(body)
    }

    /// Sends `request`: the reply body on success, a [`LlmError::Status`] with the
    /// provider's error message and `Retry-After` otherwise.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Result<String, LlmError> {
        let resp = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let retry_after = parse_retry_after(resp.headers());
        let text = resp.text().await.map_err(|e| self.transport_error(e))?;
        if status.is_success() {
            return Ok(text);
        }
        Err(LlmError::Status {
            status: status.as_u16(),
            message: error_message(&text),
            retry_after,
        })
    }

    /// Maps a reqwest failure: a timeout is its own error so the retry policy and the job
    /// record say what happened.
    fn transport_error(&self, e: reqwest::Error) -> LlmError {
        if e.is_timeout() {
            LlmError::Timeout(self.timeout)
        } else if e.is_decode() || e.is_body() {
            LlmError::BadReply(format!("reply body cut short: {e}"))
        } else {
            LlmError::Transport(e.to_string())
        }
    }
}

/// Reads a reply body as the provider's shape; `what` names the shape ("a chat
/// completion") in the error.
pub(crate) fn parse_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, LlmError> {
    serde_json::from_str(text)
        .map_err(|e| LlmError::BadReply(format!("not {what} ({e}): {}", truncate(text, 200))))
}

/// The model that answered as the server names it, else the one asked for.
pub(crate) fn answered_model(reported: Option<String>, requested: &str) -> String {
    reported
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| requested.to_string())
}

/// The human part of an error body, whichever provider wrote it: OpenAI and OpenRouter
/// (`{"error": {"message"}}`), Anthropic (`{"type": "error", "error": {"type", "message"}}`),
/// Ollama and llama.cpp (`{"error": "..."}`), vLLM (`{"message"}`), or plain text.
pub(crate) fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        let err = &v["error"];
        let message = err["message"]
            .as_str()
            .or_else(|| err.as_str())
            .or_else(|| v["message"].as_str())
            .or_else(|| v["detail"].as_str());
        if let Some(m) = message {
            let kind = err["type"].as_str().or_else(|| err["code"].as_str());
            return match kind {
                Some(k) if !m.contains(k) => truncate(&format!("{k}: {m}"), 500),
                _ => truncate(m, 500),
            };
        }
    }
    truncate(body.trim(), 500)
}

/// How long the server asked us to wait: OpenAI's `retry-after-ms`, else `Retry-After` in
/// seconds or as an HTTP date.
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate_parse(value)?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT` (IMF-fixdate, the only form servers send).
fn httpdate_parse(value: &str) -> Option<SystemTime> {
    let t = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let secs = u64::try_from(t.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let header =
            |(k, v): &(&'static str, &str)| (k.parse().expect("name"), v.parse().expect("value"));
        pairs.iter().map(header).collect()
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(&headers(&[
                ("retry-after", "7"),
                ("retry-after-ms", "1500")
            ])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        let future = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let got = parse_retry_after(&headers(&[("retry-after", &future)])).expect("date");
        assert!(
            got > Duration::from_secs(100) && got <= Duration::from_secs(120),
            "{got:?}"
        );
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "soon")])),
            None
        );
        assert_eq!(parse_retry_after(&headers(&[("retry-after", "-3")])), None);
        assert_eq!(parse_retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn error_messages_of_every_provider() {
        for (body, want) in [
            (
                r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
                "invalid_request_error: Incorrect API key provided",
            ),
            (
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                "overloaded_error: Overloaded",
            ),
            (
                r#"{"error":"model \"llama9\" not found, try pulling it first"}"#,
                "model \"llama9\" not found, try pulling it first",
            ),
            (
                r#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","code":404}"#,
                "The model `x` does not exist.",
            ),
            (
                "<html>502 Bad Gateway</html>",
                "<html>502 Bad Gateway</html>",
            ),
        ] {
            assert_eq!(error_message(body), want, "{body}");
        }
    }
}
