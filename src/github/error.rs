//! How a GitHub call fails: [`GitHubError`], its conversion from octocrab's errors, and
//! which failures are worth another try later.

use chrono::{DateTime, Utc};

use super::retry;

/// A GitHub call that failed.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub answered {status}: {message}{}", errors_suffix(.errors))]
    Status {
        status: u16,
        message: String,
        errors: Vec<String>,
    },
    #[error("GitHub request failed: {0}")]
    Transport(String),
    #[error("GitHub client setup failed: {0}")]
    Setup(String),
    /// An answer that is not what GitHub documents (not JSON, a missing field).
    #[error("GitHub's answer could not be read: {0}")]
    Decode(String),
    /// A rate limit that lifts later than a call may wait (`github.max_retry_wait_secs`):
    /// the job goes back to the queue until then instead of holding a worker.
    #[error("GitHub rate limit until {until}: {message}")]
    RateLimited {
        until: DateTime<Utc>,
        message: String,
    },
    /// GraphQL answers errors with 200 and an `errors` array; `kinds` are their `type`s
    /// (`NOT_FOUND`, `FORBIDDEN`, `RATE_LIMITED`, ...) where GitHub gives one.
    #[error("GitHub GraphQL error: {}", .messages.join("; "))]
    GraphQl {
        kinds: Vec<String>,
        messages: Vec<String>,
    },
}

fn errors_suffix(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(" ({})", errors.join("; "))
    }
}

impl GitHubError {
    /// Worth retrying later: server errors, rate limits, network trouble.
    pub fn is_transient(&self) -> bool {
        match self {
            // The client's own rule (without the headers, which only say how long to wait).
            GitHubError::Status {
                status, message, ..
            } => http::StatusCode::from_u16(*status)
                .is_ok_and(|s| retry::temporary(s, &http::HeaderMap::new(), message, 0).is_some()),
            GitHubError::Transport(_) | GitHubError::RateLimited { .. } => true,
            GitHubError::Setup(_) | GitHubError::Decode(_) => false,
            // A GraphQL error is about the query or the data, except GraphQL's own rate limit.
            GitHubError::GraphQl { kinds, .. } => kinds.iter().any(|k| k == "RATE_LIMITED"),
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// GitHub's answer to an App without the permission a call needs (a secondary rate
    /// limit is a 403 too, and not this).
    pub fn lacks_permission(&self) -> bool {
        matches!(self, GitHubError::Status { status: 403, message, .. }
            if message.contains("Resource not accessible by integration"))
    }
}

impl From<octocrab::Error> for GitHubError {
    fn from(e: octocrab::Error) -> Self {
        match e {
            octocrab::Error::GitHub { source, .. } => GitHubError::Status {
                status: source.status_code.as_u16(),
                message: source.message.clone(),
                errors: source
                    .errors
                    .unwrap_or_default()
                    .into_iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
            },
            // The network: worth another try.
            e @ (octocrab::Error::Hyper { .. }
            | octocrab::Error::Service { .. }
            | octocrab::Error::Encoder { .. }
            | octocrab::Error::Other { .. }) => GitHubError::Transport(e.to_string()),
            // Our own request or setup (a bad URI, header, key): another try changes nothing.
            other => GitHubError::Setup(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors() {
        let s = |status| GitHubError::Status {
            status,
            message: String::new(),
            errors: vec![],
        };
        assert!(s(502).is_transient());
        assert!(s(429).is_transient());
        assert!(!s(422).is_transient());
        let limited = GitHubError::Status {
            status: 403,
            message: "You have exceeded a secondary rate limit".into(),
            errors: vec![],
        };
        assert!(limited.is_transient());
        assert!(!s(403).is_transient());
        assert!(!limited.lacks_permission() && !s(403).lacks_permission());
        let denied = GitHubError::Status {
            status: 403,
            message: "Resource not accessible by integration".into(),
            errors: vec![],
        };
        assert!(denied.lacks_permission() && !denied.is_transient());
        assert!(!s(404).is_transient());
        assert!(GitHubError::Transport("reset".into()).is_transient());
        let gql = |kind: &str| GitHubError::GraphQl {
            kinds: vec![kind.into()],
            messages: vec!["x".into()],
        };
        assert!(!gql("NOT_FOUND").is_transient());
        assert!(gql("RATE_LIMITED").is_transient());
    }
}
