//! When to call a model again: what the server asked for, else the model calls' backoff.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use rand::Rng;

use crate::backoff::Backoff;

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

/// The model calls' schedule: ceilings from half a second, doubling up to 30 s; a wait is a
/// random quarter to all of its ceiling (never nothing: a tight retry loop against a
/// struggling server helps no one).
pub const MODEL_CALLS: Backoff = Backoff {
    base: Duration::from_millis(500),
    max: Duration::from_secs(30),
    jitter: (0.25, 1.0),
};

/// The wait before retry number `attempt` (0 for the first retry): the server's
/// `Retry-After` when given (plus a little jitter so callers it paused together do not
/// return together), else `backoff`'s.
pub fn delay(backoff: &Backoff, attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait + Duration::from_millis(rand::rng().random_range(0..=250u64));
    }
    backoff.delay(attempt.saturating_add(1))
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
            max: Duration::from_secs(8),
            ..MODEL_CALLS
        };
        for attempt in 0..40 {
            let ceiling = Duration::from_secs(1 << attempt.min(3));
            for _ in 0..50 {
                let d = delay(&b, attempt, None);
                assert!(d <= ceiling && d >= ceiling / 4, "{attempt}: {d:?}");
            }
        }
        let waits: std::collections::HashSet<Duration> =
            (0..50).map(|_| delay(&b, 3, None)).collect();
        assert!(waits.len() > 10, "jittered: {waits:?}");
        let d = delay(&b, 0, Some(Duration::from_secs(20)));
        assert!(d >= Duration::from_secs(20) && d <= Duration::from_millis(20_250));
    }
}
