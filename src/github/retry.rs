//! What GitHub says is temporary, and how long to wait before asking again. Pure: the
//! transport asks these questions of each answer and sleeps as told.
//!
//! GitHub's guidance (REST "Best practices" and "Rate limits"): retry server errors after a
//! backoff; on a secondary rate limit wait for `Retry-After`, or a minute when it is absent;
//! on a primary limit (`x-ratelimit-remaining: 0`) wait until `x-ratelimit-reset`; never
//! retry other client errors.

use std::time::Duration;

use http::{HeaderMap, StatusCode};

use crate::backoff::Backoff;

/// How the client retries; from `github.max_retries`, `github.retry_base_ms` and
/// `github.max_retry_wait_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries of one call after a temporary failure (so `retries + 1` tries at most).
    pub retries: u32,
    /// First backoff after a server error; doubled each time, with jitter.
    pub base: Duration,
    /// Longest rate-limit wait a call sleeps through; a longer one hands the job back to
    /// the queue (see [`crate::github::GitHubError::RateLimited`]) instead of holding a
    /// worker.
    pub max_wait: Duration,
}

/// The longest backoff between two tries after a server error.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// GitHub's advice when a secondary limit names no time: wait at least a minute.
const DEFAULT_LIMIT_WAIT: Duration = Duration::from_secs(60);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 4,
            base: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based) after a server error or a dropped
    /// connection: `base * 2^(retry-1)`, at most [`MAX_BACKOFF`], of which a random half
    /// ("equal jitter"), so that many jobs failing together do not come back together.
    pub fn backoff(&self, retry: u32) -> Duration {
        Backoff {
            base: self.base,
            max: MAX_BACKOFF,
            jitter: (0.5, 1.0),
        }
        .delay(retry)
    }
}

/// Why an answer is worth asking for again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporary {
    /// A server error or a dropped connection: back off. A write may have been performed.
    Server,
    /// A rate limit that lifts after `wait`. Nothing was performed.
    Limited { wait: Duration },
}

/// Whether an answer with this status is temporary. `now` is Unix seconds (for
/// `x-ratelimit-reset`); `message` is GitHub's error message, which is how a secondary
/// limit without `Retry-After` tells itself apart from a plain 403.
pub fn temporary(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
    now: i64,
) -> Option<Temporary> {
    match status.as_u16() {
        500 | 502 | 503 | 504 => Some(Temporary::Server),
        403 | 429 => {
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            if let Some(secs) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
                return Some(Temporary::Limited {
                    wait: Duration::from_secs(secs),
                });
            }
            if header("x-ratelimit-remaining").map(str::trim) == Some("0")
                && let Some(reset) =
                    header("x-ratelimit-reset").and_then(|v| v.trim().parse::<i64>().ok())
            {
                // The reset is a whole second; one more covers a clock a little behind.
                let secs = (reset - now).max(0) as u64 + 1;
                return Some(Temporary::Limited {
                    wait: Duration::from_secs(secs),
                });
            }
            let limited = status == StatusCode::TOO_MANY_REQUESTS
                || message.to_ascii_lowercase().contains("rate limit");
            limited.then_some(Temporary::Limited {
                wait: DEFAULT_LIMIT_WAIT,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).expect("status")
    }

    #[test]
    fn server_errors_are_temporary_other_client_errors_are_not() {
        let none = HeaderMap::new();
        for code in [500, 502, 503, 504] {
            assert_eq!(
                temporary(status(code), &none, "", 0),
                Some(Temporary::Server),
                "{code}"
            );
        }
        for code in [400, 401, 404, 409, 422, 501] {
            assert_eq!(temporary(status(code), &none, "x", 0), None, "{code}");
        }
        // A plain 403 is a permission the App lacks: asking again changes nothing.
        assert_eq!(
            temporary(
                status(403),
                &none,
                "Resource not accessible by integration",
                0
            ),
            None
        );
    }

    #[test]
    fn rate_limits_wait_as_long_as_github_says() {
        let secondary = headers(&[("retry-after", "7")]);
        assert_eq!(
            temporary(
                status(403),
                &secondary,
                "You have exceeded a secondary rate limit",
                0
            ),
            Some(Temporary::Limited {
                wait: Duration::from_secs(7)
            })
        );
        // Without Retry-After, a secondary limit waits a minute.
        assert_eq!(
            temporary(
                status(403),
                &HeaderMap::new(),
                "You have exceeded a secondary rate limit",
                0
            ),
            Some(Temporary::Limited {
                wait: Duration::from_secs(60)
            })
        );
        assert_eq!(
            temporary(status(429), &HeaderMap::new(), "", 0),
            Some(Temporary::Limited {
                wait: Duration::from_secs(60)
            })
        );
        // A primary limit lifts at x-ratelimit-reset.
        let primary = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1000"),
        ]);
        assert_eq!(
            temporary(status(403), &primary, "API rate limit exceeded", 900),
            Some(Temporary::Limited {
                wait: Duration::from_secs(101)
            })
        );
        // Remaining quota: a 403 is not a rate limit however the headers look.
        let quota = headers(&[
            ("x-ratelimit-remaining", "12"),
            ("x-ratelimit-reset", "1000"),
        ]);
        assert_eq!(temporary(status(403), &quota, "Forbidden", 900), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy {
            retries: 4,
            base: Duration::from_millis(400),
            max_wait: Duration::from_secs(60),
        };
        for _ in 0..50 {
            let first = p.backoff(1);
            assert!(first >= Duration::from_millis(200) && first <= Duration::from_millis(400));
            let third = p.backoff(3);
            assert!(third >= Duration::from_millis(800) && third <= Duration::from_millis(1600));
            assert!(p.backoff(30) <= MAX_BACKOFF);
        }
    }
}
