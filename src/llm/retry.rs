//! When to call again: exponential backoff with full jitter, or what the server asked for.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use rand::Rng;

/// How long the server asked us to wait: OpenAI's `retry-after-ms`, else `Retry-After` in
/// seconds or as an HTTP date.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
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

/// The retry schedule of one call.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (0 for the first retry): the server's
    /// `Retry-After` when given (plus a little jitter so callers it paused together do not
    /// return together), else a random time up to `base * 2^attempt`, capped.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let mut rng = rand::rng();
        if let Some(wait) = retry_after {
            let jitter = rng.random_range(0..=250u64);
            return wait + Duration::from_millis(jitter);
        }
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.cap);
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        // Never zero: a tight retry loop against a struggling server helps no one.
        Duration::from_millis(rng.random_range(ms / 4..=ms.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header"));
        }
        h
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
    fn backoff_grows_is_capped_and_jittered() {
        let b = Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(8),
        };
        for attempt in 0..40 {
            let ceiling = Duration::from_secs(1 << attempt.min(3));
            for _ in 0..50 {
                let d = b.delay(attempt, None);
                assert!(d <= ceiling && d >= ceiling / 4, "{attempt}: {d:?}");
            }
        }
        let waits: std::collections::HashSet<Duration> =
            (0..50).map(|_| b.delay(3, None)).collect();
        assert!(waits.len() > 10, "jittered: {waits:?}");
        let d = b.delay(0, Some(Duration::from_secs(20)));
        assert!(d >= Duration::from_secs(20) && d <= Duration::from_millis(20_250));
    }
}
