//! `critic eval`: the review pipeline that `critic review` runs (no GitHub, no database) over
//! a folder of cases with known bugs and clean changes, scored: did a thread land on or next
//! to the bug, how many threads were posted and how many of them hit, how many false alarms
//! on clean changes, at what cost in tokens, money and time, and how much a hit says on each
//! case (its chance level). Compared with a saved report, it says per case what got better or
//! worse. Precision becomes a number a self-hoster can watch while changing models or
//! settings.

pub mod case;
pub mod coverage;
pub mod mine;
pub mod public;
pub mod run_tests;
pub mod score;
pub mod shell;
mod table;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::llm::Llm;
use crate::report::{ReportError, Subject, review_source};

pub use case::{Bug, Case, CaseError, CaseSource, TestCommand};
pub use score::{CaseResult, NEAR, Thread, Totals};
pub use table::{compare, render};

/// The JSON report's version; a baseline of another version is refused.
pub const REPORT_VERSION: u32 = 1;

/// What `critic eval` found over all cases.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    pub version: u32,
    /// The endpoint reviewed with (`provider/model` when known).
    pub model: String,
    pub verify: bool,
    pub cases: Vec<CaseResult>,
    pub totals: Totals,
}

impl EvalReport {
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Reads a saved report (`--baseline`).
    pub fn read(path: &std::path::Path) -> Result<EvalReport, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let report: EvalReport =
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if report.version != REPORT_VERSION {
            return Err(format!(
                "{}: report version {}, this Critic writes {REPORT_VERSION}",
                path.display(),
                report.version
            ));
        }
        Ok(report)
    }
}

/// Told after each case: (done, total, its result).
pub type ProgressFn<'a> = &'a (dyn Fn(usize, usize, &CaseResult) + Sync);

/// How to run the cases.
pub struct Options<'a> {
    /// An endpoint of the settings to review with instead of the default.
    pub model: Option<&'a str>,
    /// Cases reviewed at once.
    pub concurrency: usize,
    pub progress: Option<ProgressFn<'a>>,
}

/// Reviews and scores every case. A case whose review fails is recorded with the reason
/// (and counted as failed), never dropped.
pub async fn run(
    settings: &Settings,
    client: &Llm,
    cases: &[Case],
    options: &Options<'_>,
) -> Result<EvalReport, ReportError> {
    let done = AtomicUsize::new(0);
    let total = cases.len();
    let mut results: Vec<(usize, CaseResult)> =
        futures_util::stream::iter(cases.iter().enumerate())
            .map(|(i, case)| {
                let done = &done;
                async move {
                    let started = Instant::now();
                    let meter = crate::llm::Meter::new();
                    let reviewed = review_source(
                        settings,
                        client,
                        &CaseSource { case },
                        Subject {
                            repo: &case.repo,
                            title: &case.title,
                            description: &case.body,
                            base: "base",
                            head: "head",
                            repo_file: None,
                            max_comments: None,
                            model: options.model,
                            progress: None,
                        },
                        &meter,
                    )
                    .await;
                    let seconds = started.elapsed().as_secs_f64();
                    let result = match reviewed {
                        Ok(report) => score::score(case, &report, seconds),
                        // What a failed review spent counts too.
                        Err(e) => score::failed(case, e.to_string(), seconds, &meter),
                    };
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(progress) = options.progress {
                        progress(n, total, &result);
                    }
                    (i, result)
                }
            })
            .buffer_unordered(options.concurrency.max(1))
            .collect()
            .await;
    results.sort_by_key(|(i, _)| *i);
    let cases: Vec<CaseResult> = results.into_iter().map(|(_, r)| r).collect();
    Ok(EvalReport {
        version: REPORT_VERSION,
        model: client
            .model_name_for(crate::domain::Task::Review, options.model)
            .to_string(),
        verify: settings.review.verify,
        totals: Totals::of(&cases),
        cases,
    })
}
