//! Scoring a case: which threads would be posted, whether one is on a known bug, and how much
//! such a hit says (the chance level: on a five-line change any thread is near the bug).

use serde::{Deserialize, Serialize};

use super::case::{Bug, Case};
use crate::report::{Placement, Report};

/// How near a thread must be to a bug line to count as finding it.
pub const NEAR: u32 = 3;

/// A thread that would be posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub severity: String,
    pub title: String,
    /// Within [`NEAR`] lines of a known bug.
    pub hits: bool,
}

/// One case's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    pub name: String,
    /// Known bugs in the case (0: a clean change, where every thread is a false alarm).
    pub bugs: usize,
    pub threads: Vec<Thread>,
    /// A thread within [`NEAR`] lines of a bug; None for a case without bugs, or one that
    /// failed.
    pub hit: Option<bool>,
    /// The share of the change's added lines within [`NEAR`] lines of a bug: what a thread
    /// put on a random added line would score.
    pub chance: Option<f64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The part of the tokens the verify pass spent.
    #[serde(default)]
    pub verify_input_tokens: u64,
    #[serde(default)]
    pub verify_output_tokens: u64,
    /// Input tokens the server had cached (read from its prompt cache, not anew): all calls',
    /// and the verify pass's.
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(default)]
    pub verify_cached_tokens: u64,
    pub cost_usd: f64,
    pub seconds: f64,
    /// What the verify pass did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
    /// The longest enclosing scope the model was shown (`review.max_scope_lines` resolved);
    /// None for a case that failed, or a report from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_lines: Option<u32>,
    /// Whether the model was asked for one-click fixes (`review.suggestions` resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<bool>,
    /// Why the case has no review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn near(bug: &Bug, path: &str, start: u32, end: u32) -> bool {
    bug.path == path
        && bug
            .lines
            .iter()
            .any(|&l| l + NEAR >= start && l <= end + NEAR)
}

/// Scores a case's report.
pub fn score(case: &Case, report: &Report, seconds: f64) -> CaseResult {
    let threads: Vec<Thread> = report
        .findings
        .iter()
        .filter(|f| f.placement == Placement::Inline)
        .map(|f| Thread {
            path: f.path.clone(),
            start_line: f.start_line,
            end_line: f.end_line,
            severity: f.severity.label().to_string(),
            title: f.title.clone(),
            hits: case
                .bugs
                .iter()
                .any(|b| near(b, &f.path, f.start_line, f.end_line)),
        })
        .collect();
    CaseResult {
        name: case.name.clone(),
        bugs: case.bugs.len(),
        hit: (!case.bugs.is_empty()).then(|| threads.iter().any(|t| t.hits)),
        chance: chance(case),
        threads,
        input_tokens: report.usage.input,
        output_tokens: report.usage.output,
        verify_input_tokens: report.verify_usage.input,
        verify_output_tokens: report.verify_usage.output,
        cached_tokens: report.usage.cached,
        verify_cached_tokens: report.verify_usage.cached,
        cost_usd: report.cost_usd,
        seconds,
        verification: report.verification.clone(),
        scope_lines: Some(report.scope_lines),
        suggestions: Some(report.suggestions),
        error: None,
    }
}

/// A case whose review failed, with what its model calls spent before it did.
pub fn failed(case: &Case, error: String, seconds: f64, meter: &crate::llm::Meter) -> CaseResult {
    let (usage, cost_micros) = meter.total();
    CaseResult {
        name: case.name.clone(),
        bugs: case.bugs.len(),
        threads: Vec::new(),
        hit: None,
        chance: chance(case),
        input_tokens: usage.prompt_tokens,
        output_tokens: usage.output_tokens,
        verify_input_tokens: 0,
        verify_output_tokens: 0,
        cached_tokens: usage.cached_tokens,
        verify_cached_tokens: 0,
        cost_usd: cost_micros as f64 / 1e6,
        seconds,
        verification: None,
        scope_lines: None,
        suggestions: None,
        error: Some(error),
    }
}

/// The share of added lines within [`NEAR`] lines of a bug (None without bugs or added lines).
pub fn chance(case: &Case) -> Option<f64> {
    if case.bugs.is_empty() {
        return None;
    }
    let added = case.added_lines();
    let total: usize = added.iter().map(|(_, l)| l.len()).sum();
    if total == 0 {
        return None;
    }
    let near_bug = added
        .iter()
        .flat_map(|(path, lines)| lines.iter().map(move |&l| (path, l)))
        .filter(|(path, l)| case.bugs.iter().any(|b| near(b, path, *l, *l)))
        .count();
    Some(near_bug as f64 / total as f64)
}

/// The figures over all cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub cases: usize,
    pub failed: usize,
    /// Cases with known bugs, and those of them with a thread on or near the bug.
    pub with_bugs: usize,
    pub hits: usize,
    /// Mean chance level over the cases with bugs.
    pub mean_chance: Option<f64>,
    pub threads: usize,
    /// Threads within reach of a bug, over all threads on cases with bugs.
    pub threads_on_bug_cases: usize,
    pub hitting_threads: usize,
    /// Cases without bugs, and the threads posted on them (false alarms).
    pub clean: usize,
    pub false_alarms: usize,
    pub clean_with_threads: usize,
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub verify_tokens: u64,
    /// Input tokens served from the server's prompt cache, all calls' and the verify pass's.
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(default)]
    pub verify_cached_tokens: u64,
    pub cost_usd: f64,
    pub seconds: f64,
}

impl Totals {
    pub fn of(results: &[CaseResult]) -> Totals {
        let ok: Vec<&CaseResult> = results.iter().filter(|r| r.error.is_none()).collect();
        let bugged: Vec<&&CaseResult> = ok.iter().filter(|r| r.bugs > 0).collect();
        let clean: Vec<&&CaseResult> = ok.iter().filter(|r| r.bugs == 0).collect();
        let chances: Vec<f64> = bugged.iter().filter_map(|r| r.chance).collect();
        Totals {
            cases: results.len(),
            failed: results.len() - ok.len(),
            with_bugs: bugged.len(),
            hits: bugged.iter().filter(|r| r.hit == Some(true)).count(),
            mean_chance: (!chances.is_empty())
                .then(|| chances.iter().sum::<f64>() / chances.len() as f64),
            threads: ok.iter().map(|r| r.threads.len()).sum(),
            threads_on_bug_cases: bugged.iter().map(|r| r.threads.len()).sum(),
            hitting_threads: bugged
                .iter()
                .map(|r| r.threads.iter().filter(|t| t.hits).count())
                .sum(),
            clean: clean.len(),
            false_alarms: clean.iter().map(|r| r.threads.len()).sum(),
            clean_with_threads: clean.iter().filter(|r| !r.threads.is_empty()).count(),
            input_tokens: results.iter().map(|r| r.input_tokens).sum(),
            output_tokens: results.iter().map(|r| r.output_tokens).sum(),
            verify_tokens: results
                .iter()
                .map(|r| r.verify_input_tokens + r.verify_output_tokens)
                .sum(),
            cached_tokens: results.iter().map(|r| r.cached_tokens).sum(),
            verify_cached_tokens: results.iter().map(|r| r.verify_cached_tokens).sum(),
            cost_usd: results.iter().map(|r| r.cost_usd).sum(),
            seconds: results.iter().map(|r| r.seconds).sum(),
        }
    }

    /// The verify pass's tokens over the review calls' (everything else), each without the
    /// input its server had cached: what was read anew or written, which is the time on a
    /// local model and most of the cost on a hosted one.
    pub fn verify_share(&self) -> Option<f64> {
        let verify = self.verify_tokens.saturating_sub(self.verify_cached_tokens);
        let review = (self.input_tokens + self.output_tokens)
            .saturating_sub(self.cached_tokens)
            .saturating_sub(verify);
        (review > 0 && verify > 0).then(|| verify as f64 / review as f64)
    }

    /// Threads that hit, over all threads on cases with bugs.
    pub fn thread_precision(&self) -> Option<f64> {
        (self.threads_on_bug_cases > 0)
            .then(|| self.hitting_threads as f64 / self.threads_on_bug_cases as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_within_three_lines_of_a_bug_line_hits() {
        let bug = Bug {
            path: "a.rs".into(),
            lines: vec![10, 20],
        };
        assert!(near(&bug, "a.rs", 13, 13));
        assert!(near(&bug, "a.rs", 5, 7));
        assert!(near(&bug, "a.rs", 12, 18), "a range between two bug lines");
        assert!(!near(&bug, "a.rs", 14, 16));
        assert!(!near(&bug, "b.rs", 10, 10));
        assert!(near(&bug, "a.rs", 23, 30));
        assert!(!near(&bug, "a.rs", 24, 30));
    }
    #[test]
    fn the_verify_share_leaves_out_input_the_server_had_cached() {
        let t = |cached: u64, verify_cached: u64| Totals {
            cases: 1,
            failed: 0,
            with_bugs: 0,
            hits: 0,
            mean_chance: None,
            threads: 0,
            threads_on_bug_cases: 0,
            hitting_threads: 0,
            clean: 1,
            false_alarms: 0,
            clean_with_threads: 0,
            // The review: 1,000 in, 200 out; the verify call: 1,250 in, 50 out.
            input_tokens: 2_250,
            output_tokens: 250,
            verify_tokens: 1_300,
            cached_tokens: cached,
            verify_cached_tokens: verify_cached,
            cost_usd: 0.0,
            seconds: 1.0,
        };
        assert_eq!(t(0, 0).verify_share(), Some(1_300.0 / 1_200.0));
        // A continued conversation: the verify call read 1,150 of its 1,250 from the cache.
        let share = t(1_150, 1_150).verify_share().expect("a share");
        assert!((share - 150.0 / 1_200.0).abs() < 1e-9, "{share}");
        assert_eq!(t(2_250, 1_250).verify_share(), Some(50.0 / 200.0));
    }
}
