//! Puts the pieces together: which files are reviewed, their numbered hunks and enclosing
//! code (redacted), split into chunks that fit the model's budget.
//!
//! Pure: file contents come in as data, so the whole decision is testable without GitHub.

use std::collections::HashMap;
use std::fmt::Write;
use std::ops::RangeInclusive;

use serde::Serialize;

use super::budget::{FileUnits, LeftOut, Tokenizer, Unit, plan};
use super::filter::{FileFilter, FileStatus, FileVerdict};
use super::redact::redact;
use super::scope::{ScopeOptions, SourceFile};
use crate::diff::{FilePatch, LineKind};

/// Settings of the context builder.
#[derive(Debug, Clone)]
pub struct ContextSettings {
    /// Tokens of PR content in one request (the prompt's fixed parts come on top).
    pub budget_tokens: usize,
    /// Requests one review may make at most.
    pub max_chunks: usize,
    /// Lines shown around each enclosing scope.
    pub extra_lines: u32,
    /// The longest enclosing scope shown whole (less for a small change: see
    /// `scope_lines_for`); a longer scope is shown as a window around the change.
    pub max_scope_lines: u32,
}

/// One changed file as the pipeline knows it before building context.
#[derive(Debug, Clone)]
pub struct ChangedFileInput<'a> {
    pub path: &'a str,
    pub status: FileStatus,
    pub previous_path: Option<&'a str>,
    pub patch: Option<&'a FilePatch>,
    pub changed_lines: u64,
    /// The head version, when it was fetched.
    pub head: Option<&'a [u8]>,
}

/// A file as shown to the model in one request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileView {
    pub path: String,
    pub status: String,
    pub previous_path: Option<String>,
    /// Numbered hunks (redacted); empty when the file has no textual diff.
    pub numbered: String,
    /// Enclosing code at head, numbered (redacted); empty when not available or not affordable.
    pub context: String,
    pub note: String,
}

/// What the model will see, and what it will not.
#[derive(Debug, Clone, Default)]
pub struct ReviewContext {
    pub chunks: Vec<Vec<FileView>>,
    /// Files not reviewed on purpose, with the reason ("lock file", "deleted", ...).
    pub skipped: Vec<(String, String)>,
    /// Files (or parts) that did not fit, with the reason.
    pub left_out: Vec<(String, String)>,
    /// Secrets replaced before anything was sent.
    pub redactions: usize,
}

/// A changed file as far as deciding whether to fetch its head version goes.
#[derive(Debug, Clone, Copy)]
pub struct FetchCandidate<'a> {
    pub path: &'a str,
    pub status: FileStatus,
    /// Size of its patch; None when GitHub shows no textual diff.
    pub patch_bytes: Option<usize>,
    pub changed_lines: u64,
}

/// Which files' head versions are worth fetching: those the filters keep and that have a
/// diff, most valuable first, only while their diffs (about three bytes a token) still fit
/// the total budget of all requests. Each path appears once.
pub fn files_to_fetch<'a>(
    candidates: impl IntoIterator<Item = FetchCandidate<'a>>,
    filter: &FileFilter,
    total_budget_tokens: usize,
) -> Vec<String> {
    use super::budget::FileClass;
    let mut wanted: Vec<FetchCandidate<'a>> = candidates
        .into_iter()
        .filter(|c| c.patch_bytes.is_some())
        .filter(|c| filter.classify(c.path, c.status, None).is_review())
        .collect();
    wanted.sort_by(|a, b| {
        FileClass::of(a.path)
            .cmp(&FileClass::of(b.path))
            .then(b.changed_lines.cmp(&a.changed_lines))
            .then(a.path.cmp(b.path))
    });
    wanted.dedup_by(|a, b| a.path == b.path);
    let mut budget_bytes = total_budget_tokens.saturating_mul(3);
    let mut paths = Vec::new();
    for c in wanted {
        let size = c.patch_bytes.unwrap_or(0);
        if size > budget_bytes {
            break;
        }
        budget_bytes -= size;
        paths.push(c.path.to_string());
    }
    paths
}

/// Decides what each request shows.
pub fn assemble(
    files: &[ChangedFileInput<'_>],
    filter: &FileFilter,
    settings: &ContextSettings,
    tokenizer: Tokenizer,
) -> ReviewContext {
    assemble_with_imports(files, &[], &HashMap::new(), filter, settings, tokenizer)
}

/// Like [`assemble`], with the head versions of files the changed files import (path,
/// contents): their definitions of what a change calls are shown next to it. `parsed` holds
/// files the caller already parsed (by path), which are not parsed again.
pub fn assemble_with_imports(
    files: &[ChangedFileInput<'_>],
    imported: &[(String, Vec<u8>)],
    parsed: &HashMap<String, SourceFile<'_>>,
    filter: &FileFilter,
    settings: &ContextSettings,
    tokenizer: Tokenizer,
) -> ReviewContext {
    let mut out = ReviewContext::default();
    // Files that are reviewed, in order of value, with their numbered hunks (not redacted yet).
    let mut kept: Vec<(usize, &FilePatch, Vec<String>)> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let head = f.head.map(|h| &h[..h.len().min(super::filter::HEAD_LEN)]);
        if let FileVerdict::Skip(reason) = filter.classify(f.path, f.status, head) {
            out.skipped.push((f.path.to_string(), reason.to_string()));
            continue;
        }
        let Some(patch) = f.patch else {
            out.skipped.push((
                f.path.to_string(),
                "no textual diff (binary or too large)".into(),
            ));
            continue;
        };
        let hunks = patch
            .hunks
            .iter()
            .map(|h| {
                FilePatch {
                    hunks: vec![h.clone()],
                }
                .numbered()
            })
            .collect();
        kept.push((i, patch, hunks));
    }
    kept.sort_by(|a, b| {
        let (fa, fb) = (&files[a.0], &files[b.0]);
        super::budget::FileClass::of(fa.path)
            .cmp(&super::budget::FileClass::of(fb.path))
            .then(fb.changed_lines.cmp(&fa.changed_lines))
            .then(a.0.cmp(&b.0))
    });

    // Redacting, finding scopes and counting tokens exactly is the costly part; it is only
    // worth doing for files that could still fit. No tokenizer packs more than ~8 bytes of
    // code into a token, so once the text seen so far is over 8 bytes per token of the whole
    // budget, later files cannot fit and get the (high) estimate instead.
    let reach_bytes = settings
        .budget_tokens
        .saturating_mul(settings.max_chunks)
        .saturating_mul(8);
    let sources = sources_in_reach(files, &kept, imported, reach_bytes);
    // Each source is parsed once, for its definitions and (changed files) its scopes and
    // calls: parsing is the costly part (a large C++ header takes tens of milliseconds).
    let own: Vec<Option<SourceFile<'_>>> = sources
        .iter()
        .map(|&(path, text)| (!parsed.contains_key(path)).then(|| SourceFile::parse(path, text)))
        .collect();
    let sources: Vec<Source<'_, '_>> = sources
        .iter()
        .zip(&own)
        .filter_map(|(&(path, text), own)| {
            own.as_ref()
                .or_else(|| parsed.get(path))
                .map(|file| Source { path, text, file })
        })
        .collect();
    let parsed_at: HashMap<&str, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.path, i))
        .collect();
    let definitions = definitions_of(&sources);
    let mut seen_bytes = 0usize;
    let mut reviewed: Vec<(usize, Vec<String>, String)> = Vec::new();
    let mut exact: Vec<bool> = Vec::new();
    for (i, patch, hunks) in kept {
        let f = &files[i];
        seen_bytes += hunks.iter().map(String::len).sum::<usize>();
        let in_reach = seen_bytes <= reach_bytes;
        if !in_reach {
            reviewed.push((i, hunks, String::new()));
            exact.push(false);
            continue;
        }
        let hunks = hunks
            .into_iter()
            .map(|h| {
                let r = redact(&h);
                out.redactions += r.found.len();
                r.text
            })
            .collect();
        let context = f
            .head
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .map(|source| {
                let parsed_here;
                let file = match parsed_at.get(f.path) {
                    Some(&i) => sources[i].file,
                    None => {
                        parsed_here = SourceFile::parse(f.path, source);
                        &parsed_here
                    }
                };
                let mut text = enclosing_code(file, patch, settings);
                text.push_str(&related_definitions(
                    file,
                    f.path,
                    patch,
                    &sources,
                    &definitions,
                ));
                text
            })
            .unwrap_or_default();
        let context = if context.is_empty() {
            context
        } else {
            let r = redact(&context);
            out.redactions += r.found.len();
            r.text
        };
        reviewed.push((i, hunks, context));
        exact.push(true);
    }

    // Context rides with the file's first hunk; it is dropped first when it does not fit.
    let mut units = Vec::with_capacity(reviewed.len());
    let mut with_context: HashMap<usize, bool> = HashMap::new();
    for ((i, hunks, context), exact) in reviewed.iter().zip(&exact) {
        let f = &files[*i];
        let count = |t: &str| {
            if *exact {
                tokenizer.count(t)
            } else {
                Tokenizer::Estimate.count(t)
            }
        };
        let mut toks: Vec<usize> = hunks.iter().map(|h| count(h)).collect();
        let context_tokens = if context.is_empty() {
            0
        } else {
            count(context)
        };
        let total: usize = toks.iter().sum::<usize>() + context_tokens;
        let keep_context = context_tokens > 0 && total <= settings.budget_tokens;
        if keep_context && let Some(first) = toks.first_mut() {
            *first += context_tokens;
        }
        with_context.insert(*i, keep_context);
        units.push(FileUnits {
            path: f.path.to_string(),
            changed_lines: f.changed_lines,
            units: toks
                .into_iter()
                .map(|tokens| Unit {
                    path: f.path.to_string(),
                    tokens,
                })
                .collect(),
        });
    }
    let plan = plan(&units, settings.budget_tokens, settings.max_chunks);
    for l in &plan.left_out {
        let why = match l {
            LeftOut::HunkTooLarge { tokens, .. } => {
                format!("a hunk of {tokens} tokens is larger than one request")
            }
            LeftOut::OverChunkLimit { .. } => format!(
                "over the limit of {} requests per review",
                settings.max_chunks
            ),
        };
        out.left_out.push((l.path().to_string(), why));
    }
    for chunk in &plan.chunks {
        let mut views: Vec<FileView> = Vec::new();
        for &(ri, ui) in chunk {
            let (fi, hunks, context) = &reviewed[ri];
            let f = &files[*fi];
            let same_file = views.last().is_some_and(|v| v.path == f.path);
            if !same_file {
                let show_context = ui == 0 && with_context.get(fi).copied().unwrap_or(false);
                views.push(FileView {
                    path: f.path.to_string(),
                    status: f.status.as_str().to_string(),
                    previous_path: f.previous_path.map(str::to_string),
                    numbered: String::new(),
                    context: if show_context {
                        context.clone()
                    } else {
                        String::new()
                    },
                    note: String::new(),
                });
            }
            if let Some(v) = views.last_mut() {
                if exact[ri] {
                    v.numbered.push_str(&hunks[ui]);
                } else {
                    // Rare: a file past the exact-count reach still found room.
                    let r = redact(&hunks[ui]);
                    out.redactions += r.found.len();
                    v.numbered.push_str(&r.text);
                }
            }
        }
        out.chunks.push(views);
    }
    out
}

/// Related code: definitions of what a change calls, found in the PR's other changed files
/// and in the files the changed files import (see `imports`). The model then sees the
/// callee's contract (signature, docs, body) next to the call, for tens of tokens instead of
/// a whole file. At most a few short definitions are added per file.
const MAX_RELATED: usize = 3;
const MAX_RELATED_LINES: u32 = 60;

/// Name -> (source index, start, end).
type DefinitionIndex = HashMap<String, Vec<(usize, u32, u32)>>;

/// (path, text) of the changed files the budget can reach that have a head, then of the
/// imported files.
fn sources_in_reach<'a>(
    files: &[ChangedFileInput<'a>],
    kept: &[(usize, &FilePatch, Vec<String>)],
    imported: &'a [(String, Vec<u8>)],
    reach_bytes: usize,
) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    let mut seen = 0usize;
    for (i, _, hunks) in kept {
        seen += hunks.iter().map(String::len).sum::<usize>();
        if seen > reach_bytes {
            return out;
        }
        if let Some(source) = files[*i].head.and_then(|b| std::str::from_utf8(b).ok()) {
            out.push((files[*i].path, source));
        }
    }
    for (path, bytes) in imported {
        if out.iter().any(|(p, _)| p == path) {
            continue;
        }
        if let Ok(source) = std::str::from_utf8(bytes) {
            out.push((path.as_str(), source));
        }
    }
    out
}

/// A file whose definitions a change may call: changed, or imported by a changed file.
struct Source<'s, 'f> {
    path: &'s str,
    text: &'s str,
    file: &'s SourceFile<'f>,
}

fn definitions_of(sources: &[Source<'_, '_>]) -> DefinitionIndex {
    let mut index: DefinitionIndex = HashMap::new();
    for (i, source) in sources.iter().enumerate() {
        for d in source.file.definitions() {
            if d.end.saturating_sub(d.start) < MAX_RELATED_LINES {
                index.entry(d.name).or_default().push((i, d.start, d.end));
            }
        }
    }
    index
}

fn related_definitions(
    file: &SourceFile<'_>,
    path: &str,
    patch: &FilePatch,
    sources: &[Source<'_, '_>],
    index: &DefinitionIndex,
) -> String {
    if index.is_empty() {
        return String::new();
    }
    let mut called: Vec<String> = Vec::new();
    for h in &patch.hunks {
        let added: Vec<u32> = h
            .lines
            .iter()
            .filter(|l| l.kind == LineKind::Added)
            .filter_map(|l| l.new)
            .collect();
        if let (Some(first), Some(last)) = (added.first(), added.last()) {
            for name in file.symbols_called(*first..=*last) {
                if !called.contains(&name) {
                    called.push(name);
                }
            }
        }
    }
    let mut out = String::new();
    let mut added = 0;
    for name in called {
        let Some(places) = index.get(&name) else {
            continue;
        };
        // Only definitions in other files: this file's own code is already in its scopes.
        for &(si, start, end) in places.iter().filter(|(si, _, _)| sources[*si].path != path) {
            if added == MAX_RELATED {
                return out;
            }
            let (other_path, other) = (sources[si].path, sources[si].text);
            let _ = writeln!(
                out,
                "-- `{name}`, defined in {other_path} (lines {start}-{end})"
            );
            let lines = other.lines().skip(start.saturating_sub(1) as usize);
            for (n, text) in (start..=end).zip(lines) {
                let _ = writeln!(out, "{n:>5}  {}", text.trim_end_matches('\r'));
            }
            added += 1;
        }
    }
    out
}

/// Enclosing code shown for a change of no lines beyond its hunks.
const MIN_SCOPE_LINES: u32 = 24;
/// And for each line the change adds or removes.
const SCOPE_LINES_PER_EDIT: u32 = 8;

/// The longest enclosing scope shown whole (a longer one is a window this long around the
/// change) for a file whose change adds or removes `edited` lines in all: in proportion to
/// the change, so a two-line fix in a long function gets a window around it rather than all
/// of it (the model reads every line, and on a local model each one is time), and never more
/// than `max_scope_lines`.
fn scope_lines_for(edited: u32, max_scope_lines: u32) -> u32 {
    MIN_SCOPE_LINES
        .saturating_add(SCOPE_LINES_PER_EDIT.saturating_mul(edited))
        .min(max_scope_lines)
}

/// The enclosing scopes of every changed hunk, numbered with head line numbers, minus the
/// lines the hunks already show.
fn enclosing_code(file: &SourceFile<'_>, patch: &FilePatch, settings: &ContextSettings) -> String {
    let changed: Vec<RangeInclusive<u32>> = patch
        .hunks
        .iter()
        .filter_map(|h| {
            let news: Vec<u32> = h
                .lines
                .iter()
                .filter(|l| l.kind != LineKind::Removed)
                .filter_map(|l| l.new)
                .collect();
            Some(*news.first()?..=*news.last()?)
        })
        .collect();
    if changed.is_empty() {
        return String::new();
    }
    let shown_in_diff = |line: u32| changed.iter().any(|r| r.contains(&line));
    let edited = patch
        .hunks
        .iter()
        .flat_map(|h| &h.lines)
        .filter(|l| l.kind != LineKind::Context)
        .count();
    let options = ScopeOptions {
        extra: settings.extra_lines,
        max_lines: scope_lines_for(
            u32::try_from(edited).unwrap_or(u32::MAX),
            settings.max_scope_lines,
        ),
    };
    let mut out = String::new();
    for snippet in file.snippets(&changed, &options) {
        let lines: Vec<u32> = (snippet.start..=snippet.end)
            .filter(|l| !shown_in_diff(*l))
            .collect();
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "-- {} (lines {}-{})",
            snippet.header, snippet.start, snippet.end
        );
        let mut previous: Option<u32> = None;
        for n in lines {
            if previous.is_some_and(|p| p + 1 != n) {
                out.push_str("      ...\n");
            }
            let _ = writeln!(out, "{n:>5}  {}", file.lines_text(n, n));
            previous = Some(n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::globs::IgnoreGlobs;
    use crate::context::filter::GitAttributes;

    const SOURCE: &str = "use std::io;\n\nfn parse(input: &str) -> usize {\n    let a = 1;\n    let b = 2;\n    let c = a + b;\n    c * input.len()\n}\n\nfn other() {}\n";
    const PATCH: &str = "@@ -5,2 +5,2 @@ fn parse(input: &str) -> usize {\n     let b = 2;\n-    let c = a - b;\n+    let c = a + b;";

    fn settings(budget: usize) -> ContextSettings {
        ContextSettings {
            budget_tokens: budget,
            max_chunks: 4,
            extra_lines: 1,
            max_scope_lines: 200,
        }
    }

    fn input<'a>(
        path: &'a str,
        patch: &'a FilePatch,
        head: Option<&'a [u8]>,
    ) -> ChangedFileInput<'a> {
        ChangedFileInput {
            path,
            status: FileStatus::Modified,
            previous_path: None,
            patch: Some(patch),
            changed_lines: 2,
            head,
        }
    }

    #[test]
    fn a_change_comes_with_its_enclosing_function() {
        let patch = FilePatch::parse(PATCH).expect("patch");
        let files = [input("src/lib.rs", &patch, Some(SOURCE.as_bytes()))];
        let ctx = assemble(
            &files,
            &FileFilter::default(),
            &settings(10_000),
            Tokenizer::Estimate,
        );
        assert_eq!(ctx.chunks.len(), 1);
        let view = &ctx.chunks[0][0];
        assert!(
            view.numbered.contains("    6 +    let c = a + b;"),
            "{}",
            view.numbered
        );
        assert!(view.context.contains("fn parse"), "{}", view.context);
        assert!(
            view.context
                .contains("    3  fn parse(input: &str) -> usize {"),
            "{}",
            view.context
        );
        assert!(
            view.context.contains("    7      c * input.len()"),
            "{}",
            view.context
        );
        assert!(
            !view.context.contains("    6  "),
            "lines in the diff are not repeated"
        );
    }

    #[test]
    fn a_small_change_in_a_long_function_gets_a_window_a_large_one_all_of_it() {
        // A 80-line function; its line 40 changes.
        let mut source = String::from("fn long(x: u32) -> u32 {\n");
        for n in 2..=80 {
            source.push_str(&format!("    let v{n} = x + {n};\n"));
        }
        source.push_str("    x\n}\n");
        let small =
            FilePatch::parse("@@ -40,1 +40,1 @@\n-    let v40 = x - 40;\n+    let v40 = x + 40;")
                .expect("patch");
        let files = [input("src/lib.rs", &small, Some(source.as_bytes()))];
        let ctx = assemble(
            &files,
            &FileFilter::default(),
            &settings(10_000),
            Tokenizer::Estimate,
        );
        let shown = ctx.chunks[0][0]
            .context
            .lines()
            .filter(|l| l.starts_with(' '))
            .count();
        let window = scope_lines_for(2, 200) as usize;
        assert!(
            (window - 4..=window).contains(&shown),
            "{shown} lines: {}",
            ctx.chunks[0][0].context
        );
        assert!(
            ctx.chunks[0][0].context.contains("fn long"),
            "named after its function"
        );
        // Twenty changed lines: the whole function.
        let mut big = String::from("@@ -30,10 +30,10 @@\n");
        for n in 30..40 {
            big.push_str(&format!("-    let v{n} = x - {n};\n"));
        }
        for n in 30..40 {
            big.push_str(&format!("+    let v{n} = x + {n};\n"));
        }
        let big = FilePatch::parse(big.trim_end()).expect("patch");
        let files = [input("src/lib.rs", &big, Some(source.as_bytes()))];
        let ctx = assemble(
            &files,
            &FileFilter::default(),
            &settings(10_000),
            Tokenizer::Estimate,
        );
        let context = &ctx.chunks[0][0].context;
        assert!(
            context.contains("    1  fn long(x: u32) -> u32 {"),
            "{context}"
        );
        assert!(context.contains("   82  }"), "{context}");
        assert_eq!(scope_lines_for(1000, 200), 200, "never past the setting");
    }

    #[test]
    fn skipped_files_are_named_with_their_reason() {
        let patch = FilePatch::parse(PATCH).expect("patch");
        let lock = ChangedFileInput {
            path: "Cargo.lock",
            ..input("Cargo.lock", &patch, None)
        };
        let gone = ChangedFileInput {
            path: "old.rs",
            status: FileStatus::Deleted,
            ..input("old.rs", &patch, None)
        };
        let binary = ChangedFileInput {
            path: "logo.png",
            patch: None,
            ..input("logo.png", &patch, None)
        };
        let ignore = IgnoreGlobs::new(&["docs/**".to_string()]).expect("globs");
        let docs = input("docs/a.rs", &patch, None);
        let filter = FileFilter::new(GitAttributes::default(), ignore);
        let ctx = assemble(
            &[lock, gone, binary, docs],
            &filter,
            &settings(10_000),
            Tokenizer::Estimate,
        );
        let skipped: Vec<&str> = ctx.skipped.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(skipped, ["Cargo.lock", "old.rs", "logo.png", "docs/a.rs"]);
        assert!(ctx.chunks.is_empty());
    }

    #[test]
    fn secrets_never_reach_the_views() {
        let key = concat!("ghp_", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
        let patch_text = format!("@@ -1 +1 @@\n-x\n+token = \"{key}\"");
        let patch = FilePatch::parse(&patch_text).expect("patch");
        let head = format!("token = \"{key}\"\n");
        let files = [input("config.py", &patch, Some(head.as_bytes()))];
        let ctx = assemble(
            &files,
            &FileFilter::default(),
            &settings(10_000),
            Tokenizer::Estimate,
        );
        let all = format!("{:?}", ctx.chunks);
        assert!(!all.contains(key), "{all}");
        assert!(ctx.redactions >= 1);
    }

    #[test]
    fn only_files_the_budget_can_use_are_fetched() {
        let c = |path: &'static str, status: &'static str, bytes: Option<usize>, changed: u64| {
            FetchCandidate {
                path,
                status: FileStatus::from_github(status),
                patch_bytes: bytes,
                changed_lines: changed,
            }
        };
        let got = files_to_fetch(
            [
                c("README.md", "modified", Some(100), 90),
                c("src/small.rs", "modified", Some(100), 5),
                c("src/big.rs", "modified", Some(200), 50),
                c("Cargo.lock", "modified", Some(10), 3),
                c("gone.rs", "removed", Some(10), 3),
                c("logo.png", "added", None, 0),
                c("tests/t.rs", "added", Some(1000), 70),
            ],
            &FileFilter::default(),
            150,
        );
        // 450 bytes of budget: src/big.rs (200) and src/small.rs (100), then tests/t.rs is too big.
        assert_eq!(got, ["src/big.rs", "src/small.rs"]);
    }

    #[test]
    fn a_call_brings_the_definition_from_another_changed_file() {
        let util_src =
            "/// Adds one, saturating.\npub fn bump(x: u32) -> u32 {\n    x.saturating_add(1)\n}\n";
        let util_patch = FilePatch::parse(
            "@@ -1,3 +1,4 @@\n+/// Adds one, saturating.\n pub fn bump(x: u32) -> u32 {\n     x.saturating_add(1)\n }",
        )
        .expect("patch");
        let main_src =
            "fn main() {\n    let a = 1;\n    let b = bump(a);\n    println!(\"{b}\");\n}\n";
        let main_patch = FilePatch::parse(
            "@@ -1,4 +1,5 @@\n fn main() {\n     let a = 1;\n+    let b = bump(a);\n     println!(\"{b}\");\n }",
        )
        .expect("patch");
        let files = [
            input("src/main.rs", &main_patch, Some(main_src.as_bytes())),
            input("src/util.rs", &util_patch, Some(util_src.as_bytes())),
        ];
        let ctx = assemble(
            &files,
            &FileFilter::default(),
            &settings(10_000),
            Tokenizer::Estimate,
        );
        let main = ctx.chunks[0]
            .iter()
            .find(|v| v.path == "src/main.rs")
            .expect("main shown");
        assert!(
            main.context.contains("`bump`, defined in src/util.rs"),
            "{}",
            main.context
        );
        assert!(
            main.context.contains("x.saturating_add(1)"),
            "{}",
            main.context
        );
        let util = ctx.chunks[0]
            .iter()
            .find(|v| v.path == "src/util.rs")
            .expect("util shown");
        assert!(!util.context.contains("defined in"), "{}", util.context);
    }

    #[test]
    fn a_call_brings_the_definition_from_an_imported_file() {
        let main_src =
            "use crate::util::bump;\n\nfn main() {\n    let a = 1;\n    let b = bump(a);\n}\n";
        let main_patch = FilePatch::parse(
            "@@ -3,3 +3,4 @@\n fn main() {\n     let a = 1;\n+    let b = bump(a);\n }",
        )
        .expect("patch");
        let files = [input("src/main.rs", &main_patch, Some(main_src.as_bytes()))];
        let imported = [(
            "src/util.rs".to_string(),
            b"pub fn other() {}\n\n/// Adds one.\npub fn bump(x: u32) -> u32 {\n    x + 1\n}\n"
                .to_vec(),
        )];
        let ctx = assemble_with_imports(
            &files,
            &imported,
            &HashMap::new(),
            &FileFilter::default(),
            &settings(10_000),
            Tokenizer::Estimate,
        );
        let main = &ctx.chunks[0][0];
        assert!(
            main.context
                .contains("`bump`, defined in src/util.rs (lines 3-6)"),
            "{}",
            main.context
        );
        assert!(
            main.context.contains("    5      x + 1"),
            "{}",
            main.context
        );
        assert!(
            !main.context.contains("fn other"),
            "only what the change calls"
        );
        assert_eq!(
            ctx.chunks[0].len(),
            1,
            "an imported file is context, not reviewed"
        );
    }

    #[test]
    fn files_past_the_budget_are_named_not_processed() {
        let body: String = (0..20)
            .map(|k| format!("+    let value_{k} = compute({k});\n"))
            .collect();
        let text = format!("@@ -0,0 +1,20 @@\n{}", body.trim_end());
        let patch = FilePatch::parse(&text).expect("patch");
        let paths: Vec<String> = (0..60).map(|i| format!("src/f{i:02}.rs")).collect();
        let files: Vec<ChangedFileInput<'_>> =
            paths.iter().map(|p| input(p, &patch, None)).collect();
        let s = ContextSettings {
            budget_tokens: 1000,
            max_chunks: 2,
            extra_lines: 1,
            max_scope_lines: 200,
        };
        let ctx = assemble(&files, &FileFilter::default(), &s, Tokenizer::O200k);
        assert_eq!(ctx.chunks.len(), 2);
        let shown: usize = ctx.chunks.iter().map(Vec::len).sum();
        assert!(shown >= 4, "{shown}");
        assert_eq!(
            shown + ctx.left_out.len(),
            60,
            "every file is shown or named"
        );
    }

    #[test]
    fn over_budget_context_is_dropped_before_the_diff() {
        let patch = FilePatch::parse(PATCH).expect("patch");
        let files = [input("src/lib.rs", &patch, Some(SOURCE.as_bytes()))];
        let diff_tokens = Tokenizer::Estimate.count(&patch.numbered());
        let ctx = assemble(
            &files,
            &FileFilter::default(),
            &settings(diff_tokens + 2),
            Tokenizer::Estimate,
        );
        assert_eq!(ctx.chunks.len(), 1);
        assert!(ctx.chunks[0][0].context.is_empty());
        assert!(!ctx.chunks[0][0].numbered.is_empty());
    }
}
