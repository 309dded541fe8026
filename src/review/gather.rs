//! What the model is shown of a pull request: its files worth reviewing, their head
//! versions and the files they import, assembled into chunks within the token budget.
//! Shared by the review and the slash commands.

use std::collections::{HashMap, HashSet};

use crate::config::globs::IgnoreGlobs;
use crate::config::repo::RepoPolicy;
use crate::config::{ReviewSettings, ScopeLines, Suggestions};
use crate::context::assemble::{
    ChangedFileInput, ContextSettings, FetchCandidate, ReviewContext, assemble_with_imports,
    files_to_fetch,
};
use crate::context::budget::Tokenizer;
use crate::context::filter::{FileFilter, FileStatus, GitAttributes};
use crate::context::imports::{self, MAX_IMPORTED_FILES, RepoFiles};
use crate::context::scope::SourceFile;
use crate::domain::Task;
use crate::llm::Llm;

use super::source::{Source, SourceError};
use super::{Changes, PrFile, ReviewError};

/// Runs CPU-heavy work (parsing a large PR takes tens to hundreds of milliseconds) so that
/// it does not hold up the runtime's other tasks, webhook acknowledgements among them: on a
/// multi-threaded runtime (`critic serve`) the thread hands its other tasks over first. A
/// single-threaded runtime (tests) has nowhere to hand them, so it runs the work in place.
fn cpu_bound<R>(work: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

pub struct Gathered {
    pub context: ReviewContext,
    /// Head versions fetched, by path (suggestions are checked against them).
    pub contents: HashMap<String, Vec<u8>>,
    /// Files left out before the context was built, with the reason: outside the
    /// repository's `paths`, or a patch that could not be read.
    pub not_reviewed: Vec<(String, String)>,
}

/// Who reads the context: the model's name (its tokenizer counts the budget), the longest
/// enclosing scope it is shown and whether it is asked for one-click fixes
/// (`review.max_scope_lines` and `review.suggestions`, resolved for it).
pub struct Reader<'a> {
    pub model: &'a str,
    pub max_scope_lines: u32,
    pub suggestions: bool,
}

impl<'a> Reader<'a> {
    /// The model `llm` asks first for `task` (a repository's choice of endpoint first), and
    /// what `settings` show and ask it: an `auto` setting asks the model's server how large
    /// the model is (once; the client keeps the answer).
    pub async fn of(
        llm: &'a Llm,
        settings: &ReviewSettings,
        task: Task,
        endpoint: Option<&str>,
    ) -> Reader<'a> {
        let params = if settings.max_scope_lines == ScopeLines::Auto
            || settings.suggestions == Suggestions::Auto
        {
            llm.model_params(task, endpoint).await
        } else {
            None
        };
        Reader {
            model: llm.model_name_for(task, endpoint),
            max_scope_lines: settings.max_scope_lines.resolve(params),
            suggestions: settings.suggestions.resolve(params),
        }
    }
}

/// Builds the context of `files` at `head` for `reader`. With `since`, only files that push
/// touched are shown.
pub async fn gather(
    settings: &ReviewSettings,
    source: &impl Source,
    files: &[PrFile],
    since: Option<&Changes>,
    policy: &RepoPolicy,
    reader: Reader<'_>,
) -> Result<Gathered, ReviewError> {
    let filter = FileFilter::new(
        match source.file(".gitattributes").await? {
            Some(bytes) => GitAttributes::parse(&String::from_utf8_lossy(&bytes)),
            None => GitAttributes::default(),
        },
        // Checked when the settings were read; a bad glob that slipped through fails the
        // job rather than ignoring nothing (files the repository asked to keep out would
        // reach the model).
        IgnoreGlobs::new(&policy.ignore).map_err(|e| ReviewError::Settings(e.to_string()))?,
    );
    let only = IgnoreGlobs::new(&policy.paths).map_err(|e| ReviewError::Settings(e.to_string()))?;
    let mut not_reviewed: Vec<(String, String)> = Vec::new();
    let to_review: Vec<PrFile> = files
        .iter()
        .filter(|f| since.is_none_or(|changes| changes.touches(&f.file.filename)))
        .filter(|f| {
            let outside = !policy.paths.is_empty() && only.first_match(&f.file.filename).is_none();
            let why = match &f.patch_error {
                _ if outside => "outside `review.paths`".to_string(),
                Some(e) => format!("the patch could not be read ({e})"),
                None => return true,
            };
            not_reviewed.push((f.file.filename.clone(), why));
            false
        })
        .cloned()
        .collect();
    let total_budget = settings.budget_tokens * settings.max_chunks;
    let contents = fetch_heads(source, &to_review, &filter, total_budget).await?;
    // Parsed once here, for the imports and then for the context's scopes and calls.
    let parsed: HashMap<String, SourceFile<'_>> = cpu_bound(|| {
        contents
            .iter()
            .filter_map(|(path, bytes)| {
                let text = std::str::from_utf8(bytes).ok()?;
                Some((path.clone(), SourceFile::parse(path, text)))
            })
            .collect()
    });
    tracing::debug!(fetched = contents.len(), "head files fetched and parsed");
    let imported = fetch_imported(
        source,
        files,
        &parsed,
        &filter,
        total_budget,
        &mut not_reviewed,
    )
    .await;
    tracing::debug!(imported = imported.len(), "imported files fetched");
    let inputs: Vec<ChangedFileInput<'_>> = to_review
        .iter()
        .map(|f| ChangedFileInput {
            path: &f.file.filename,
            status: f.file.status,
            previous_path: f.file.previous_filename.as_deref(),
            patch: f.patch.as_ref(),
            changed_lines: f.file.additions + f.file.deletions,
            head: contents.get(&f.file.filename).map(Vec::as_slice),
        })
        .collect();
    let context = cpu_bound(|| {
        assemble_with_imports(
            &inputs,
            &imported,
            &parsed,
            &filter,
            &ContextSettings {
                budget_tokens: settings.budget_tokens,
                max_chunks: settings.max_chunks,
                extra_lines: settings.extra_lines,
                max_scope_lines: reader.max_scope_lines,
            },
            Tokenizer::for_model(reader.model),
        )
    });
    if context.redactions > 0 {
        tracing::info!(
            redactions = context.redactions,
            "secrets redacted before the model call"
        );
    }
    Ok(Gathered {
        context,
        contents,
        not_reviewed,
    })
}

/// Files fetched at once while building context.
const FETCH_CONCURRENCY: usize = 8;

/// Head contents of the files worth reviewing, most valuable first, each fetched once, and
/// only while the diffs seen so far still fit the total budget (roughly: three bytes a token).
async fn fetch_heads(
    source: &impl Source,
    files: &[PrFile],
    filter: &FileFilter,
    total_budget_tokens: usize,
) -> Result<HashMap<String, Vec<u8>>, SourceError> {
    let paths = files_to_fetch(
        files.iter().map(|f| FetchCandidate {
            path: &f.file.filename,
            status: f.file.status,
            patch_bytes: f.file.patch.as_ref().map(String::len),
            changed_lines: f.file.additions + f.file.deletions,
        }),
        filter,
        total_budget_tokens,
    );
    let mut out = HashMap::new();
    for (path, content) in fetch_contents(source, paths).await {
        if let Some(bytes) = content? {
            out.insert(path, bytes);
        }
    }
    Ok(out)
}

/// The contents of `paths` at `head`, [`FETCH_CONCURRENCY`] requests in flight, in order.
async fn fetch_contents(
    source: &impl Source,
    paths: Vec<String>,
) -> Vec<(String, Result<Option<Vec<u8>>, SourceError>)> {
    use futures_util::StreamExt;
    futures_util::stream::iter(paths)
        .map(|path| async move {
            let content = source.file(&path).await;
            (path, content)
        })
        .buffered(FETCH_CONCURRENCY)
        .collect()
        .await
}

/// Imported files larger than this are not fetched: the definitions a change calls are
/// rarely worth a file that size.
const MAX_IMPORTED_BYTES: u64 = 256 * 1024;

/// Head versions of the repository files that the changed files import, for the
/// definitions of what a change calls (see `context::imports` for what and why). Only when
/// the diffs leave at least half of the budget; best effort: without them the review is
/// only less informed, so a failure is logged, not fatal. A file list GitHub cut short is
/// named in `not_reviewed`: imports among the unlisted files were not looked up.
async fn fetch_imported(
    source: &impl Source,
    files: &[PrFile],
    parsed: &HashMap<String, SourceFile<'_>>,
    filter: &FileFilter,
    total_budget_tokens: usize,
    not_reviewed: &mut Vec<(String, String)>,
) -> Vec<(String, Vec<u8>)> {
    let diff_bytes: usize = files
        .iter()
        .filter_map(|f| f.file.patch.as_ref().map(String::len))
        .sum();
    let room = diff_bytes / 3 < total_budget_tokens / 2;
    let followed = parsed.values().any(|f| f.language().is_some());
    if !room || !followed {
        return Vec::new();
    }
    let tree = match source.tree().await {
        Ok(tree) => tree,
        Err(e) => {
            tracing::warn!(error = %e, "no repository tree; reviewing without imported files");
            return Vec::new();
        }
    };
    if tree.truncated {
        // Imports are still looked up, among the paths GitHub listed; the others are missed.
        tracing::info!(
            listed = tree.files.len(),
            "repository tree truncated by GitHub; some imported files may be missed"
        );
        not_reviewed.push((
            "(the repository's other files)".to_string(),
            format!(
                "GitHub listed only {} of them, so definitions in the rest were not looked up",
                tree.files.len()
            ),
        ));
    }
    let repo_files = RepoFiles::new(
        tree.files
            .into_iter()
            .filter(|(_, size)| size.is_none_or(|s| s <= MAX_IMPORTED_BYTES))
            .map(|(path, _)| path),
    );
    let in_pr: HashSet<&str> = files.iter().map(|f| f.file.filename.as_str()).collect();
    let mut sources: Vec<(&String, &SourceFile<'_>)> = parsed.iter().collect();
    sources.sort_by_key(|(path, _)| *path);
    let mut wanted: Vec<String> = Vec::new();
    'files: for (path, file) in sources {
        for found in imports::imported_files(path, file, &repo_files) {
            if wanted.len() == MAX_IMPORTED_FILES {
                break 'files;
            }
            let useful = !in_pr.contains(found.as_str())
                && !wanted.contains(&found)
                && filter
                    .classify(&found, FileStatus::Modified, None)
                    .is_review();
            if useful {
                wanted.push(found);
            }
        }
    }
    let mut out = Vec::new();
    for (path, content) in fetch_contents(source, wanted).await {
        match content {
            Ok(Some(bytes)) => out.push((path, bytes)),
            Ok(None) => {}
            Err(e) => tracing::warn!(path = %path, error = %e, "imported file not fetched"),
        }
    }
    if !out.is_empty() {
        tracing::debug!(
            files = out.len(),
            "imported files fetched for related definitions"
        );
    }
    out
}
