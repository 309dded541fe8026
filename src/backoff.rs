//! Exponential backoff with jitter: the one schedule every retry in Critic waits by (the job
//! queue, model calls, GitHub calls), each with its own numbers. Imports nothing of the crate,
//! so any layer may use it.

use std::time::Duration;

use rand::Rng;

/// Waits whose ceiling doubles from `base` up to `max`; each wait is a random share of its
/// ceiling, so that callers failing together do not come back together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The ceiling before the first retry.
    pub base: Duration,
    /// The highest ceiling.
    pub max: Duration,
    /// The factors of the ceiling a wait is drawn between: `(0.5, 1.0)` is "equal jitter",
    /// `(0.75, 1.25)` is ±25 %.
    pub jitter: (f64, f64),
}

impl Backoff {
    /// The ceiling before retry `retry` (1 for the first): `base * 2^(retry-1)`, at most `max`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doubled = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base.saturating_mul(doubled).min(self.max)
    }

    /// The wait before retry `retry` (1 for the first): the ceiling times a random factor
    /// between the two of `jitter`.
    pub fn delay(&self, retry: u32) -> Duration {
        let (low, high) = self.jitter;
        let factor = if high > low {
            rand::rng().random_range(low..=high)
        } else {
            low
        };
        Duration::try_from_secs_f64(self.ceiling(retry).as_secs_f64() * factor).unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_from_base_up_to_max() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
            jitter: (1.0, 1.0),
        };
        let secs: Vec<u64> = (0..6).map(|r| b.ceiling(r).as_secs()).collect();
        assert_eq!(secs, [1, 1, 2, 4, 8, 10]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(10));
        assert_eq!(b.delay(4), Duration::from_secs(8), "no jitter asked for");

        // Waits are drawn between the jitter factors of the ceiling.
        let b = Backoff {
            base: Duration::from_millis(400),
            jitter: (0.75, 1.25),
            ..b
        };
        let waits: std::collections::HashSet<Duration> = (0..50).map(|_| b.delay(3)).collect();
        assert!(waits.len() > 10, "jittered: {waits:?}");
        for d in waits {
            assert!(
                d >= Duration::from_millis(1200) && d <= Duration::from_millis(2000),
                "{d:?}"
            );
        }
    }
}
