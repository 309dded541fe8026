//! The review pipeline as one call: a change from a [`Source`] -> the context within the
//! token budget -> one model request per chunk -> validated findings. It posts nothing: the
//! review job hands the result to the poster, `critic review` prints it.

use std::collections::HashMap;

use crate::config::repo::RepoPolicy;
use crate::config::{ReviewSettings, VerifyContext};
use crate::domain::{Finding, Task};
use crate::llm::{AskError, Llm, Meter};

use super::gather::{Gathered, Reader, gather};
use super::source::Source;
use super::test_conventions::TestConventions;
use super::verify::{self, Asker, Conversation, Evidence, Verification};
use super::{Changes, PrFile, PromptInput, Prompts, ReviewError, ask_model, build_request};

/// What the pipeline works with, the same for every change.
#[derive(Clone, Copy)]
pub struct Pipeline<'a> {
    pub settings: &'a ReviewSettings,
    pub prompts: &'a Prompts,
    pub llm: &'a Llm,
}

/// The change to review, besides its files.
pub struct Change<'a> {
    /// `owner/name`, as the prompt names it.
    pub repo: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub policy: &'a RepoPolicy,
    /// On a push after a review: what the push changed. Only the files it touched are
    /// shown, and the model is told which head was reviewed before.
    pub since: Option<&'a Changes>,
    /// Whose rate limits and budget the model calls count against (0 for local runs).
    pub installation: u64,
    /// Every model call is metered here, to be booked by the caller.
    pub meter: &'a Meter,
    /// Told as the review goes (`critic review` shows it on stderr).
    pub progress: Option<&'a (dyn Fn(Progress) + Sync)>,
}

/// How far a review has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The context is built: `files` to show the model in `chunks` requests.
    Asking { files: usize, chunks: usize },
    /// `done` of the requests have an answer (or have given up); tokens used so far.
    Answered {
        done: usize,
        chunks: usize,
        input_tokens: u64,
        output_tokens: u64,
    },
}

/// What the model found in a change, before anything is posted.
#[derive(Debug)]
pub struct Reviewed {
    /// The change's files (all of them, not only those a push touched).
    pub files: Vec<PrFile>,
    /// Head versions fetched, by path: suggestions are checked against them.
    pub contents: HashMap<String, Vec<u8>>,
    /// Validated findings, each once, in the order the model gave them (those sent to the
    /// verify pass first).
    pub findings: Vec<Finding>,
    pub summary: String,
    /// (path, what changed there), for the walkthrough table.
    pub walkthrough: Vec<(String, String)>,
    /// The models that answered, `provider/model`, comma-separated.
    pub model: String,
    /// Files not reviewed, with the reason.
    pub not_reviewed: Vec<(String, String)>,
    /// Set when the model's replies to some chunk could not be read, even when asked again:
    /// its files are in `not_reviewed`.
    pub unusable: Option<Unusable>,
    /// Chunks whose replies were read.
    pub parts_read: usize,
    /// What the verify pass did.
    pub verification: Verification,
    /// "Findings" that reported no problem (praise, "looks correct"), dropped.
    pub no_problem: usize,
    /// The longest enclosing scope the model was shown (`review.max_scope_lines`, resolved).
    pub scope_lines: u32,
    /// Whether the model was asked for one-click fixes (`review.suggestions`, resolved).
    pub suggestions: bool,
}

#[derive(Debug, Clone)]
pub struct Unusable {
    pub model: String,
    pub reason: String,
}

impl Reviewed {
    /// No chunk could be read: there is no review, only the reason why not.
    pub fn nothing_read(&self) -> Option<&Unusable> {
        self.unusable.as_ref().filter(|_| self.parts_read == 0)
    }
}

/// Reviews the change `source` holds. A chunk that failed for a passing reason fails the
/// whole call, to be retried whole: never a review with part of the change silently
/// unreviewed. A chunk whose replies the model could not get right even when asked again is
/// listed as not reviewed, and the other chunks' findings are kept.
pub async fn run(
    p: Pipeline<'_>,
    source: &impl Source,
    change: &Change<'_>,
) -> Result<Reviewed, ReviewError> {
    let files = source.changed_files().await?;
    let endpoint = change.policy.model_for(Task::Review);
    let reader = Reader::of(p.llm, p.settings, Task::Review, endpoint).await;
    let scope_lines = reader.max_scope_lines;
    let suggestions = reader.suggestions;
    let Gathered {
        context,
        contents,
        mut not_reviewed,
    } = gather(
        p.settings,
        source,
        &files,
        change.since,
        change.policy,
        reader,
    )
    .await?;
    let mut not_shown: Vec<String> = context.left_out.iter().map(|(p, _)| p.clone()).collect();
    if let Some(changes) = change.since {
        // The change's other files, reviewed before: named, so the model knows they exist.
        not_shown.extend(
            files
                .iter()
                .filter(|f| !changes.touches(&f.file.filename))
                .map(|f| f.file.filename.clone()),
        );
    }
    let since_short = change
        .since
        .map(|c| crate::github::short_sha(&c.base).to_string());
    let parts = context.chunks.len();
    // What the verify pass may show of the related code: the review call's, by file.
    let related: HashMap<String, String> = context
        .chunks
        .iter()
        .flatten()
        .filter(|f| !f.context.is_empty())
        .map(|f| (f.path.clone(), f.context.clone()))
        .collect();
    let requests = context
        .chunks
        .iter()
        .enumerate()
        .map(|(n, chunk)| {
            let instructions = change
                .policy
                .instructions_for(chunk.iter().map(|f| f.path.as_str()));
            build_request(
                p.prompts,
                &PromptInput {
                    repo: change.repo,
                    title: change.title,
                    description: change.description,
                    files: chunk,
                    part: (n + 1, parts),
                    not_shown: &not_shown,
                    question: None,
                    thread: false,
                    instructions: Some(instructions.as_str()),
                    since: since_short.as_deref(),
                    tests_context: None,
                    no_suggestions: !suggestions,
                },
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tell = |what: Progress| {
        if let Some(progress) = change.progress {
            progress(what);
        }
    };
    tell(Progress::Asking {
        files: context.chunks.iter().map(Vec::len).sum(),
        chunks: parts,
    });
    let done = std::sync::atomic::AtomicUsize::new(0);
    let replies = futures_util::future::join_all(requests.iter().map(|r| async {
        let reply = ask_model(
            p.llm,
            change.installation,
            endpoint,
            r,
            &files,
            change.meter,
        )
        .await;
        let done = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let (usage, _) = change.meter.total();
        tell(Progress::Answered {
            done,
            chunks: parts,
            input_tokens: usage.prompt_tokens,
            output_tokens: usage.output_tokens,
        });
        reply
    }))
    .await;
    let mut answers = Vec::new();
    let mut unusable = None;
    for (reply, chunk) in replies.into_iter().zip(&context.chunks) {
        match reply {
            Ok(answer) => answers.push(answer),
            Err(ReviewError::Ask(AskError::Unusable { model, reason })) => {
                let why = format!("the model's replies could not be read ({model})");
                not_reviewed.extend(chunk.iter().map(|f| (f.path.clone(), why.clone())));
                unusable.get_or_insert(Unusable { model, reason });
            }
            Err(other) => return Err(other),
        }
    }
    let parts_read = answers.len();
    // A review made in one call, read from its first reply, is a conversation the verify
    // call can continue (`review.verify_context`).
    let first_reply = match answers.as_slice() {
        [answer] if parts == 1 => answer
            .reply
            .clone()
            .map(|reply| (answer.endpoint.clone(), reply)),
        _ => None,
    };
    let mut findings = Vec::new();
    let mut summaries = Vec::new();
    let mut walkthrough = Vec::new();
    let mut models = Vec::new();
    if let Some(u) = unusable.as_ref().filter(|_| parts_read > 0) {
        summaries.push(format!(
            "_Part of this pull request was not reviewed: the model's replies could not be read ({}): {}. Its files are listed under \"Not reviewed\"._",
            u.model,
            crate::llm::truncate(&u.reason, 300)
        ));
    }
    for answer in answers {
        if !models.contains(&answer.model) {
            models.push(answer.model);
        }
        let model_review = answer.value;
        if !model_review.rejected.is_empty() {
            tracing::info!(rejected = ?model_review.rejected, "model findings dropped by validation");
        }
        if !model_review.summary.is_empty() {
            summaries.push(model_review.summary);
        }
        walkthrough.extend(model_review.walkthrough);
        for f in model_review.findings {
            if !findings.contains(&f) {
                findings.push(f);
            }
        }
    }
    not_reviewed.extend(context.skipped.iter().cloned());
    not_reviewed.extend(context.left_out.iter().cloned());
    let mut findings = super::candidates::merge_duplicates(findings);
    if !suggestions {
        // Not asked for, so not posted, even when a model volunteers one.
        for f in &mut findings {
            f.suggestion = None;
        }
    }
    let candidates = findings.len();
    let findings: Vec<Finding> = findings
        .into_iter()
        .filter(|f| !super::candidates::reports_no_problem(f))
        .collect();
    let no_problem = candidates - findings.len();
    // Only findings bound for a thread are worth a verify call; those under
    // `min_severity` are listed collapsed whatever a verifier says of them.
    let (findings, collapsed): (Vec<Finding>, Vec<Finding>) = findings
        .into_iter()
        .partition(|f| !p.settings.verify || f.severity <= change.policy.min_severity);
    let (mut findings, verification) = if p.settings.verify {
        let verify_endpoint = change.policy.model_for(Task::Verify);
        let conversation = first_reply.as_ref().and_then(|(endpoint, reply)| {
            let same = p.llm.endpoint_for(Task::Verify, verify_endpoint) == Some(endpoint.as_str());
            let wanted = match p.settings.verify_context {
                VerifyContext::Separate => false,
                VerifyContext::Continue => true,
                VerifyContext::Auto => p.llm.input_is_free(endpoint),
            };
            // One request (`parts == 1` above), so the reply is `requests[0]`'s.
            (same && wanted).then(|| Conversation {
                request: &requests[0],
                reply,
                endpoint,
            })
        });
        let prompt_chars: usize = requests
            .iter()
            .map(|r| r.system.len() + r.user().len())
            .sum();
        verify::verify(
            &Asker {
                llm: p.llm,
                prompts: p.prompts,
                installation: change.installation,
                endpoint: verify_endpoint,
                meter: change.meter,
                min_confidence: p.settings.min_confidence,
            },
            findings,
            &Evidence {
                contents: &contents,
                related: &related,
                // The scopes come on top: together about a third of the review's prompt.
                related_budget: prompt_chars / 8,
                conversation,
            },
        )
        .await?
    } else {
        (findings, Verification::NotRun)
    };
    findings.extend(collapsed);
    Ok(Reviewed {
        files,
        contents,
        findings,
        summary: summaries.join("\n\n"),
        walkthrough,
        model: models.join(", "),
        not_reviewed,
        unusable,
        parts_read,
        verification,
        no_problem,
        scope_lines,
        suggestions,
    })
}

/// The tests suggested for a change, checked (see [`TestConventions`]).
#[derive(Debug)]
pub struct SuggestedTests {
    /// The change's files.
    pub files: Vec<PrFile>,
    pub tests: Vec<crate::review::tasks::TestSuggestion>,
    /// Notes on tests left out.
    pub notes: Vec<String>,
    /// The model that answered, `provider/model`.
    pub model: String,
}

/// Suggests tests for the change `source` holds, as `/test` does: the most valuable files
/// within one request's budget, the repository's test conventions, and the reply checked
/// (tests that do not parse asked for again, then left out; clashing names renamed). None
/// when no file of the change is one Critic reads.
pub async fn suggest_tests(
    p: Pipeline<'_>,
    source: &impl Source,
    change: &Change<'_>,
) -> Result<Option<SuggestedTests>, ReviewError> {
    let files = source.changed_files().await?;
    let endpoint = change.policy.model_for(Task::Tests);
    let gathered = gather(
        p.settings,
        source,
        &files,
        None,
        change.policy,
        Reader::of(p.llm, p.settings, Task::Tests, endpoint).await,
    )
    .await?;
    let Some(shown) = gathered.context.chunks.first().filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let changed: Vec<String> = shown.iter().map(|f| f.path.clone()).collect();
    let conventions = TestConventions::read_or_none(source, &changed).await;
    let tests_context = conventions.prompt_text();
    let instructions = change
        .policy
        .instructions_for(changed.iter().map(String::as_str));
    let request = super::build_task_request(
        p.prompts,
        Task::Tests,
        &PromptInput {
            repo: change.repo,
            title: change.title,
            description: change.description,
            files: shown,
            part: (1, 1),
            instructions: Some(instructions.as_str()),
            tests_context: Some(tests_context.as_str()),
            ..Default::default()
        },
    )?;
    let answer = p
        .llm
        .ask_on(
            Task::Tests,
            endpoint,
            change.installation,
            &request,
            change.meter,
            conventions.validator(),
        )
        .await?;
    let (tests, notes) = answer.value;
    Ok(Some(SuggestedTests {
        files,
        tests,
        notes,
        model: answer.model,
    }))
}
