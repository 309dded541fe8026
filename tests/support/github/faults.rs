//! Seeded fault injection for the fake GitHub: GitHub on a bad day, the way it fails.
//!
//! What GitHub does that a client must survive (REST docs, "Troubleshooting" and "Rate
//! limits for the REST API"): 500/502/503/504 answers, some of them after a write was
//! performed (the answer was lost, not the write); 403 "secondary rate limit" with
//! `Retry-After`; installation tokens that stop working before the client expected (revoked,
//! or an hour-long token that runs out mid-job). One seed gives the same sequence of draws,
//! so a failing run can be replayed.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What share of calls fail, and how.
#[derive(Clone, Debug)]
pub struct FaultPlan {
    pub seed: u64,
    /// Share of calls that fail, 0.0 to 1.0.
    pub rate: f64,
    /// Of the failures, the share answered 403 "secondary rate limit" (nothing performed).
    pub rate_limited: f64,
    /// Of the server errors, the share answered after the request was performed.
    pub after_write: f64,
    /// `Retry-After` of a secondary rate limit, seconds.
    pub retry_after_secs: u64,
    /// Most failures in a row of one call (method and path); 0 for no bound.
    pub max_in_a_row: usize,
    /// Only calls whose path starts with one of these fail (all calls when empty).
    pub only: Vec<(String, String)>,
    /// Installation tokens stop working this long after they were issued, although GitHub
    /// told the client they last an hour.
    pub token_dies_after: Option<Duration>,
}

impl FaultPlan {
    /// `rate` of all calls fail, a quarter of them as secondary rate limits, a third of the
    /// server errors after performing the request; never more than three in a row per call.
    pub fn bad_day(seed: u64, rate: f64) -> FaultPlan {
        FaultPlan {
            seed,
            rate,
            rate_limited: 0.25,
            after_write: 1.0 / 3.0,
            retry_after_secs: 1,
            max_in_a_row: 3,
            only: Vec::new(),
            token_dies_after: None,
        }
    }

    /// Each POST to a path starting with one of `prefixes` is performed and its answer lost
    /// (a 5xx) once; the next POST of that path goes through.
    pub fn lose_answers(prefixes: &[&str]) -> FaultPlan {
        FaultPlan {
            rate: 1.0,
            rate_limited: 0.0,
            after_write: 1.0,
            max_in_a_row: 1,
            only: prefixes
                .iter()
                .map(|p| ("POST".to_string(), p.to_string()))
                .collect(),
            ..FaultPlan::bad_day(1, 1.0)
        }
    }

    /// Every call of `method` to a path starting with `prefix` answers 502, for ever.
    pub fn always(method: &str, prefix: &str) -> FaultPlan {
        FaultPlan {
            seed: 0,
            rate: 1.0,
            rate_limited: 0.0,
            after_write: 0.0,
            retry_after_secs: 1,
            max_in_a_row: 0,
            only: vec![(method.to_ascii_uppercase(), prefix.to_string())],
            token_dies_after: None,
        }
    }
}

/// One injected failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status without doing anything.
    Before(u16),
    /// Do the request, then answer this status instead of its answer.
    After(u16),
    /// 403 secondary rate limit with `Retry-After`.
    RateLimited { retry_after_secs: u64 },
}

/// Counts of what was injected, for a test's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub before: usize,
    pub after: usize,
    pub rate_limited: usize,
    pub token_expired: usize,
}

impl FaultCounts {
    pub fn total(&self) -> usize {
        self.before + self.after + self.rate_limited + self.token_expired
    }
}

pub struct Faults {
    pub plan: FaultPlan,
    rng: StdRng,
    in_a_row: HashMap<(String, String), usize>,
    pub counts: FaultCounts,
}

impl Faults {
    pub fn new(plan: FaultPlan) -> Faults {
        Faults {
            rng: StdRng::seed_from_u64(plan.seed),
            plan,
            in_a_row: HashMap::new(),
            counts: FaultCounts::default(),
        }
    }

    /// Whether this call fails, and how. `path` is the path and query as requested.
    pub fn draw(&mut self, method: &str, path: &str) -> Option<Fault> {
        let plan = &self.plan;
        let scoped = plan.only.is_empty()
            || plan
                .only
                .iter()
                .any(|(m, p)| (m == "*" || m == method) && path.starts_with(p.as_str()));
        if !scoped {
            return None;
        }
        let key = (method.to_string(), path.to_string());
        let row = self.in_a_row.get(&key).copied().unwrap_or(0);
        let capped = plan.max_in_a_row > 0 && row >= plan.max_in_a_row;
        if capped || !self.rng.random_bool(plan.rate.clamp(0.0, 1.0)) {
            self.in_a_row.remove(&key);
            return None;
        }
        self.in_a_row.insert(key, row + 1);
        // octocrab hides the headers of a failed token request, so a limit there would read
        // as "wait a minute"; GitHub's token endpoint fails with server errors here.
        let token_call = path.contains("/access_tokens");
        let fault = if !token_call && self.rng.random_bool(plan.rate_limited.clamp(0.0, 1.0)) {
            self.counts.rate_limited += 1;
            Fault::RateLimited {
                retry_after_secs: plan.retry_after_secs,
            }
        } else {
            let status = [500, 502, 503, 504][self.rng.random_range(0..4)];
            let performed =
                method != "GET" && self.rng.random_bool(plan.after_write.clamp(0.0, 1.0));
            if performed {
                self.counts.after += 1;
                Fault::After(status)
            } else {
                self.counts.before += 1;
                Fault::Before(status)
            }
        };
        Some(fault)
    }
}
