//! GitHub's App manifest flow, the one call of it Critic makes: trading the temporary code
//! GitHub hands back after someone creates the App for the App's id, key and webhook secret.
//! The call needs no authentication, so it is a plain HTTPS request, not octocrab's.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// What `POST /app-manifests/{code}/conversions` answers (the fields Critic keeps).
#[derive(Deserialize)]
pub struct CreatedApp {
    pub id: u64,
    pub slug: String,
    #[serde(default)]
    pub html_url: Option<String>,
    pub pem: SecretString,
    pub webhook_secret: Option<SecretString>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// 404: the code is unknown, already used or older than an hour; 422: refused.
    #[error("GitHub refused the code ({status}): {message}; start the setup again")]
    Refused { status: u16, message: String },
    #[error("GitHub could not be reached: {0}")]
    Unreachable(String),
    #[error("GitHub's answer could not be read: {0}")]
    Decode(String),
}

/// Exchanges `code` (from the redirect after the App was created) at `api_url`.
pub async fn convert(api_url: &url::Url, code: &str) -> Result<CreatedApp, ManifestError> {
    let url = format!(
        "{}/app-manifests/{}/conversions",
        api_url.as_str().trim_end_matches('/'),
        super::names::encode_path(code)
    );
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("critic/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ManifestError::Unreachable(e.to_string()))?
        .post(url)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .send()
        .await
        .map_err(|e| ManifestError::Unreachable(e.to_string()))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| ManifestError::Unreachable(e.to_string()))?;
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
        return Err(ManifestError::Refused {
            status: status.as_u16(),
            message,
        });
    }
    serde_json::from_slice(&body).map_err(|e| ManifestError::Decode(e.to_string()))
}
