//! When to call a model again: what the server asked for, else the model calls' backoff.

use std::time::Duration;

use rand::Rng;

use crate::backoff::Backoff;

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
