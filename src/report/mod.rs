//! What Critic would say about a change, without posting anything. `critic review` runs the
//! review pipeline on a local change, places the findings as the poster would on a pull
//! request (a finding GitHub would refuse is reported as not on a changed line, never
//! dropped), and renders the result as text, JSON, Markdown or SARIF.

use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;

use crate::config::repo::RepoPolicy;
use crate::config::{LlmConfig, Settings};
use crate::domain::{Severity, Usage};
use crate::llm::{Llm, LlmError, Meter};
use crate::poster::summary::{Counts, RunSummary};
use crate::poster::{self, DraftInput, Place};
use crate::review::{
    Change, LocalSource, Pipeline, Progress, Prompts, ReviewError, Reviewed, SourceError,
};

mod sarif;
mod text;

pub use sarif::sarif;
pub use text::text;

/// The shape of the JSON report; raised when a field changes meaning or goes away.
pub const JSON_VERSION: u32 = 1;

/// The repository's own settings file, read at the base of the change.
const REPO_FILE: &str = ".github/critic.toml";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Review(#[from] ReviewError),
    #[error(transparent)]
    Llm(#[from] LlmError),
}

/// Where a finding would go on a pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// A thread on the changed lines it cites.
    Inline,
    /// Its lines are not lines the change touched: listed in the review's body.
    NotOnChangedLine,
    /// Below the severity shown as threads, or over the thread cap: counted, collapsed.
    Collapsed,
}

/// One finding as reported.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub severity: Severity,
    pub category: String,
    pub title: String,
    pub body: String,
    pub path: String,
    /// `right` (the head) or `left` (lines the change removed, numbered as at the base).
    pub side: crate::domain::Side,
    /// The lines the finding is about (the thread's, when it has one), on `side`.
    pub start_line: u32,
    pub end_line: u32,
    pub placement: Placement,
    /// Replacement for lines `start_line..=end_line`, only when it applies there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    /// How sure the verify pass was that the finding is right (0-10); absent unverified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<u8>,
}

/// A review of a local change.
#[derive(Debug, Serialize)]
pub struct Report {
    pub version: u32,
    pub base: String,
    pub head: String,
    pub summary: String,
    pub walkthrough: Vec<Walk>,
    pub findings: Vec<Item>,
    pub not_reviewed: Vec<NotReviewed>,
    pub model: String,
    pub files: usize,
    pub usage: Tokens,
    /// The part of `usage` the verify pass spent.
    pub verify_usage: Tokens,
    /// What the verify pass did (absent when it did not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
    /// The longest enclosing scope the model was shown (`review.max_scope_lines`, with
    /// `auto` resolved for the model).
    pub scope_lines: u32,
    /// Whether the model was asked for one-click fixes (`review.suggestions`, resolved).
    pub suggestions: bool,
    /// Estimated cost in US dollars, from the endpoint's prices (0 when none are set).
    pub cost_usd: f64,
    /// What the pull request's summary comment would say (the Markdown format).
    #[serde(skip)]
    pub markdown: String,
    /// The head versions of the files shown to the model, for quoting.
    #[serde(skip)]
    pub heads: std::collections::HashMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct Walk {
    pub path: String,
    pub change: String,
}

#[derive(Debug, Serialize)]
pub struct NotReviewed {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
}

impl ReportError {
    /// The model could not be reached or could not answer usefully (not the repository or
    /// the settings): worth naming the model's address.
    pub fn is_model(&self) -> bool {
        matches!(
            self,
            ReportError::Llm(_) | ReportError::Review(ReviewError::Ask(_))
        )
    }
}

impl Report {
    /// Whether a finding of `severity` or worse was found.
    pub fn has(&self, severity: Severity) -> bool {
        self.findings.iter().any(|f| f.severity <= severity)
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// What `critic review` was asked.
pub struct LocalRequest<'a> {
    pub dir: &'a Path,
    pub base: &'a str,
    pub head: &'a str,
    /// Most findings shown as threads (`--max-comments`); the repository's or the server's
    /// setting otherwise.
    pub max_comments: Option<usize>,
    pub progress: Option<&'a (dyn Fn(Progress) + Sync)>,
}

/// Reviews the change from `base` to `head` of the repository at `dir`. Nothing is stored.
pub async fn review_local(
    settings: &Settings,
    llm: &LlmConfig,
    request: &LocalRequest<'_>,
) -> Result<Report, ReportError> {
    let source = LocalSource::open(request.dir, request.base, request.head).await?;
    let title = commit_subject(&source).await;
    let subject = Subject {
        repo: &request.dir.display().to_string(),
        title: &title,
        description: "",
        base: &source.base,
        head: &source.head,
        // Read at the base: a change must not decide how it is reviewed.
        repo_file: source.base_file(REPO_FILE).await?,
        max_comments: request.max_comments,
        model: None,
        progress: request.progress,
    };
    review(settings, llm, &source, subject).await
}

/// A pull request on GitHub, read through `gh` and reviewed as the App would, posting
/// nothing (`critic review URL --dry-run`). The repository's own settings file is read from
/// its default branch, as for a real review.
pub async fn review_pull_request(
    settings: &Settings,
    llm: &LlmConfig,
    gh: &crate::github::Installation,
    repo: &crate::github::RepoName,
    number: crate::domain::PrNumber,
    max_comments: Option<usize>,
    progress: Option<&(dyn Fn(Progress) + Sync)>,
) -> Result<Report, ReportError> {
    let pr = gh
        .pull_request(repo, number)
        .await
        .map_err(SourceError::from)?;
    let repo_file = gh
        .default_branch_file(repo, REPO_FILE)
        .await
        .map_err(SourceError::from)?;
    let source = crate::review::GitHubSource {
        gh,
        repo,
        number,
        head: &pr.head.sha,
    };
    let subject = Subject {
        repo: &repo.to_string(),
        title: &pr.title,
        description: pr.body.as_deref().unwrap_or(""),
        base: &pr.base.sha,
        head: &pr.head.sha,
        repo_file,
        max_comments,
        model: None,
        progress,
    };
    review(settings, llm, &source, subject).await
}

/// What a review outside the queue is about, besides its files.
pub struct Subject<'a> {
    pub repo: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub base: &'a str,
    pub head: &'a str,
    /// The repository's `.github/critic.toml`, if it has one.
    pub repo_file: Option<Vec<u8>>,
    pub max_comments: Option<usize>,
    /// The endpoint to review with, instead of the settings' choice (`critic eval --model`).
    pub model: Option<&'a str>,
    pub progress: Option<&'a (dyn Fn(Progress) + Sync)>,
}

async fn review(
    settings: &Settings,
    llm: &LlmConfig,
    source: &impl crate::review::Source,
    s: Subject<'_>,
) -> Result<Report, ReportError> {
    let client = Llm::new(llm)?;
    review_source(settings, &client, source, s, &Meter::new()).await
}

/// The pipeline on `source` with the server's settings and the repository's file over them
/// (a broken file is logged and left out, as on a pull request), placed and reported. The
/// model calls go on `meter`, whose total the caller can read even when the review failed.
pub async fn review_source(
    settings: &Settings,
    client: &Llm,
    source: &impl crate::review::Source,
    s: Subject<'_>,
    meter: &Meter,
) -> Result<Report, ReportError> {
    let mut policy = RepoPolicy::from_server(&settings.review);
    if let Some(bytes) = &s.repo_file
        && let Err(e) = policy.apply(
            REPO_FILE,
            &String::from_utf8_lossy(bytes),
            &client.endpoint_names(),
        )
    {
        tracing::warn!(error = %e, "{REPO_FILE} not applied");
    }
    if let Some(max) = s.max_comments {
        policy.max_comments = max;
    }
    if let Some(model) = s.model {
        policy.models.review = Some(model.to_string());
    }
    let prompts = Prompts::new()?;
    let reviewed = crate::review::pipeline::run(
        Pipeline {
            settings: &settings.review,
            prompts: &prompts,
            llm: client,
        },
        source,
        &Change {
            repo: s.repo,
            title: s.title,
            description: s.description,
            policy: &policy,
            since: None,
            installation: 0,
            meter,
            progress: s.progress,
        },
    )
    .await?;
    if let Some(u) = reviewed.nothing_read() {
        return Err(ReportError::Review(ReviewError::Ask(
            crate::llm::AskError::Unusable {
                model: u.model.clone(),
                reason: u.reason.clone(),
            },
        )));
    }
    Ok(report(s.base, s.head, &policy, reviewed, meter))
}

/// The head commit's subject, the nearest thing a local change has to a PR's title.
async fn commit_subject(source: &LocalSource) -> String {
    source.subject().await.unwrap_or_default()
}

fn report(base: &str, head: &str, policy: &RepoPolicy, r: Reviewed, meter: &Meter) -> Report {
    let known = HashSet::new();
    let draft = poster::draft_review(
        &r.findings,
        &r.files,
        &DraftInput {
            head_sha: head,
            max_inline: policy.max_comments,
            min_severity: policy.min_severity,
            known: &known,
            muted: &known,
            in_scope: None,
            heads: &r.contents,
        },
    );
    let findings: Vec<Item> = draft
        .placed
        .iter()
        .filter_map(|p| {
            let f = r.findings.get(p.finding)?;
            let thread = match p.place {
                Place::Inline(i) => draft.review.comments.get(i),
                _ => None,
            };
            let (start_line, end_line, side) = match thread {
                Some(t) => (t.start_line.unwrap_or(t.line), t.line, t.side),
                None => (f.start_line.unwrap_or(f.line), f.line, f.side),
            };
            Some(Item {
                severity: f.severity,
                category: f.category.clone(),
                title: f.title.clone(),
                body: f.body.clone(),
                path: f.path.clone(),
                side,
                start_line,
                end_line,
                placement: match p.place {
                    Place::Inline(_) => Placement::Inline,
                    Place::Body => Placement::NotOnChangedLine,
                    Place::Collapsed => Placement::Collapsed,
                },
                suggestion: thread.and_then(|t| suggestion_of(&t.body)),
                confidence: f.confidence,
            })
        })
        .collect();
    let (usage, cost_micros) = meter.total();
    let verification = crate::review::verify::summary_line(&r.verification, r.no_problem);
    let counts = Counts {
        critical: draft.of_severity(Severity::Critical),
        warning: draft.of_severity(Severity::Warning),
        nit: draft.of_severity(Severity::Nit),
        inline: draft.inline(),
        in_body: draft.in_body(),
        collapsed: draft.collapsed(),
        repeated: 0,
        muted: 0,
    };
    let mut markdown = poster::summary::render(&RunSummary {
        head_sha: head,
        since_sha: None,
        summary: &r.summary,
        walkthrough: &r.walkthrough,
        files: &r.files,
        counts,
        review_url: None,
        not_reviewed: &r.not_reviewed,
        model: &r.model,
        usage,
        cost_micros,
        verification: verification.as_deref(),
        learned: &[],
        paused_by: None,
    });
    markdown.push_str("\n\n");
    markdown.push_str(&draft.review.body);
    for t in &draft.review.comments {
        markdown.push_str(&format!(
            "\n\n---\n\n**`{}` line {}**\n\n{}",
            t.path, t.line, t.body
        ));
    }
    Report {
        version: JSON_VERSION,
        base: base.to_string(),
        head: head.to_string(),
        summary: r.summary,
        walkthrough: r
            .walkthrough
            .into_iter()
            .map(|(path, change)| Walk { path, change })
            .collect(),
        findings,
        not_reviewed: r
            .not_reviewed
            .into_iter()
            .map(|(path, reason)| NotReviewed { path, reason })
            .collect(),
        model: r.model,
        scope_lines: r.scope_lines,
        suggestions: r.suggestions,
        files: r.files.len(),
        usage: tokens(usage),
        verify_usage: tokens(
            meter
                .calls()
                .iter()
                .filter(|c| c.task == crate::domain::Task::Verify.label())
                .fold(Usage::default(), |mut sum, c| {
                    sum.prompt_tokens += c.usage.prompt_tokens;
                    sum.output_tokens += c.usage.output_tokens;
                    sum.cached_tokens += c.usage.cached_tokens;
                    sum
                }),
        ),
        verification,
        cost_usd: cost_micros as f64 / 1e6,
        markdown,
        heads: r
            .contents
            .into_iter()
            .filter_map(|(path, bytes)| Some((path, String::from_utf8(bytes).ok()?)))
            .collect(),
    }
}

fn tokens(u: Usage) -> Tokens {
    Tokens {
        input: u.prompt_tokens,
        output: u.output_tokens,
        cached: u.cached_tokens,
    }
}

/// The replacement in a thread's ```` ```suggestion ```` block, if it has one.
fn suggestion_of(body: &str) -> Option<String> {
    let mut lines = body.lines();
    let fence = lines.find_map(|l| {
        let ticks = l.len() - l.trim_start_matches('`').len();
        (ticks >= 3 && l[ticks..].trim() == "suggestion").then(|| "`".repeat(ticks))
    })?;
    let mut out = Vec::new();
    for line in lines {
        if line.trim_end() == fence {
            return Some(out.join("\n"));
        }
        out.push(line);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suggestion_is_read_back_from_its_block_whatever_its_fence() {
        let body = "Use a checked division.\n\n```suggestion\n    a.checked_div(b)\n```";
        assert_eq!(suggestion_of(body).as_deref(), Some("    a.checked_div(b)"));
        let long = "x\n\n````suggestion\nlet s = \"```\";\n\n````\n";
        assert_eq!(suggestion_of(long).as_deref(), Some("let s = \"```\";\n"));
        assert_eq!(suggestion_of("no block"), None);
        assert_eq!(suggestion_of("```suggestion\nunclosed"), None);
    }
}
