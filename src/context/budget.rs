//! The token budget: counting tokens the way the model does, ordering files by how much a
//! review of them is worth, and splitting a PR that does not fit into chunks that do.
//!
//! Units are whole hunks (never a cut line): a file whose hunks fit together stays together;
//! a file larger than one chunk is split at hunk boundaries; a single hunk larger than a
//! chunk, or anything beyond the chunk limit, is left out and named, never dropped silently.

use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;

/// How tokens are counted for a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokenizer {
    /// GPT-4o, GPT-4.1, GPT-5, o-series.
    O200k,
    /// GPT-4, GPT-3.5.
    Cl100k,
    /// Everything else (Claude, local models): a conservative estimate.
    Estimate,
}

impl Tokenizer {
    /// The tokenizer of a model, by name.
    pub fn for_model(model: &str) -> Tokenizer {
        let m = model.to_ascii_lowercase();
        let m = m.rsplit('/').next().unwrap_or(&m);
        if m.starts_with("gpt-4o")
            || m.starts_with("gpt-4.1")
            || m.starts_with("gpt-4.5")
            || m.starts_with("gpt-5")
            || m.starts_with("chatgpt-4o")
            || m.starts_with("o1")
            || m.starts_with("o3")
            || m.starts_with("o4")
        {
            Tokenizer::O200k
        } else if m.starts_with("gpt-4") || m.starts_with("gpt-3.5") {
            Tokenizer::Cl100k
        } else {
            Tokenizer::Estimate
        }
    }

    /// Tokens in `text`. The estimate (one token per 3 bytes) errs high: code tokenizes at
    /// 3.5 to 4 bytes per token on most BPE vocabularies, and overshooting only costs recall.
    pub fn count(self, text: &str) -> usize {
        let bpe = match self {
            Tokenizer::O200k => o200k(),
            Tokenizer::Cl100k => cl100k(),
            Tokenizer::Estimate => None,
        };
        match bpe {
            Some(bpe) => bpe.encode_ordinary(text).len(),
            None => text.len().div_ceil(3),
        }
    }
}

fn o200k() -> Option<&'static CoreBPE> {
    static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| load(tiktoken_rs::o200k_base())).as_ref()
}

fn cl100k() -> Option<&'static CoreBPE> {
    static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| load(tiktoken_rs::cl100k_base()))
        .as_ref()
}

fn load(bpe: Result<CoreBPE, impl std::fmt::Display>) -> Option<CoreBPE> {
    bpe.map_err(|e| tracing::warn!(error = %e, "tokenizer unavailable; estimating tokens"))
        .ok()
}

/// How much a review of a file is worth, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileClass {
    Source,
    Tests,
    Docs,
    Config,
}

impl FileClass {
    pub fn of(path: &str) -> FileClass {
        let lower = path.to_ascii_lowercase();
        let name = lower.rsplit('/').next().unwrap_or(&lower);
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let in_tests = lower.split('/').any(|d| {
            matches!(
                d,
                "test" | "tests" | "spec" | "specs" | "__tests__" | "testdata" | "testing"
            )
        });
        if in_tests
            || name.starts_with("test_")
            || name.contains("_test.")
            || name.contains(".test.")
            || name.contains(".spec.")
            || name.ends_with("tests.rs")
            || name.ends_with("test.java")
        {
            return FileClass::Tests;
        }
        match ext {
            "md" | "rst" | "txt" | "adoc" | "markdown" => FileClass::Docs,
            "toml" | "yaml" | "yml" | "json" | "ini" | "cfg" | "conf" | "xml" | "lock"
            | "properties" | "gradle" | "cmake" | "mk" => FileClass::Config,
            _ if name == "makefile" || name == "dockerfile" || lower.starts_with(".github/") => {
                FileClass::Config
            }
            _ if lower.starts_with("docs/") || lower.starts_with("doc/") => FileClass::Docs,
            _ => FileClass::Source,
        }
    }
}

/// One piece of a file that can be sent: a hunk (with whatever context goes with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub path: String,
    pub tokens: usize,
}

/// A file's units with the size of its change, for ordering.
#[derive(Debug, Clone)]
pub struct FileUnits {
    pub path: String,
    /// Changed lines (additions + deletions): larger changes come first within a class.
    pub changed_lines: u64,
    pub units: Vec<Unit>,
}

/// Why something was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeftOut {
    /// One hunk is larger than a whole request.
    HunkTooLarge { path: String, tokens: usize },
    /// The PR needs more requests than `max_chunks` allows.
    OverChunkLimit { path: String },
}

impl LeftOut {
    pub fn path(&self) -> &str {
        match self {
            LeftOut::HunkTooLarge { path, .. } | LeftOut::OverChunkLimit { path } => path,
        }
    }
}

/// Which units go to which request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Each chunk: (file index, unit index) pairs, in the order they are shown.
    pub chunks: Vec<Vec<(usize, usize)>>,
    pub left_out: Vec<LeftOut>,
}

/// Splits files into chunks of at most `budget` tokens each, at most `max_chunks` of them.
/// Files are taken in order of value (source, tests, docs, config; larger changes first).
pub fn plan(files: &[FileUnits], budget: usize, max_chunks: usize) -> Plan {
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (&files[a], &files[b]);
        FileClass::of(&fa.path)
            .cmp(&FileClass::of(&fb.path))
            .then(fb.changed_lines.cmp(&fa.changed_lines))
            .then(fa.path.cmp(&fb.path))
    });
    let mut plan = Plan::default();
    let mut current: Vec<(usize, usize)> = Vec::new();
    let mut used = 0usize;
    let mut full = false;
    for fi in order {
        let file = &files[fi];
        let total: usize = file.units.iter().map(|u| u.tokens).sum();
        // Keep a file whole when it fits in a fresh chunk but not in this one.
        if !current.is_empty() && used + total > budget && total <= budget {
            full = close(&mut plan, &mut current, &mut used, max_chunks);
        }
        let mut skipped_for_limit = false;
        for (ui, unit) in file.units.iter().enumerate() {
            if unit.tokens > budget {
                plan.left_out.push(LeftOut::HunkTooLarge {
                    path: file.path.clone(),
                    tokens: unit.tokens,
                });
                continue;
            }
            if full {
                skipped_for_limit = true;
                continue;
            }
            if used + unit.tokens > budget {
                full = close(&mut plan, &mut current, &mut used, max_chunks);
                if full {
                    skipped_for_limit = true;
                    continue;
                }
            }
            current.push((fi, ui));
            used += unit.tokens;
        }
        if skipped_for_limit {
            plan.left_out.push(LeftOut::OverChunkLimit {
                path: file.path.clone(),
            });
        }
    }
    if !current.is_empty() {
        plan.chunks.push(current);
    }
    plan
}

/// Ends the current chunk; true when no further chunk may be started.
fn close(
    plan: &mut Plan,
    current: &mut Vec<(usize, usize)>,
    used: &mut usize,
    max_chunks: usize,
) -> bool {
    if !current.is_empty() {
        plan.chunks.push(std::mem::take(current));
    }
    *used = 0;
    plan.chunks.len() >= max_chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, changed: u64, hunks: &[usize]) -> FileUnits {
        FileUnits {
            path: path.into(),
            changed_lines: changed,
            units: hunks
                .iter()
                .map(|&t| Unit {
                    path: path.into(),
                    tokens: t,
                })
                .collect(),
        }
    }

    #[test]
    fn tokenizers_by_model() {
        assert_eq!(Tokenizer::for_model("gpt-4o-mini"), Tokenizer::O200k);
        assert_eq!(Tokenizer::for_model("openai/gpt-4.1"), Tokenizer::O200k);
        assert_eq!(Tokenizer::for_model("o3-mini"), Tokenizer::O200k);
        assert_eq!(Tokenizer::for_model("gpt-4-turbo"), Tokenizer::Cl100k);
        assert_eq!(Tokenizer::for_model("claude-sonnet-4"), Tokenizer::Estimate);
        assert_eq!(
            Tokenizer::for_model("qwen2.5-coder:7b"),
            Tokenizer::Estimate
        );
    }

    #[test]
    fn counts_real_tokens_and_estimates_high() {
        let text = "fn main() {\n    println!(\"hello, world\");\n}\n";
        let real = Tokenizer::O200k.count(text);
        assert!((8..=20).contains(&real), "{real}");
        assert!(Tokenizer::Cl100k.count(text) > 0);
        assert!(
            Tokenizer::Estimate.count(text) >= real,
            "the estimate errs high"
        );
    }

    #[test]
    fn files_are_ordered_by_value() {
        assert_eq!(FileClass::of("src/lib.rs"), FileClass::Source);
        assert_eq!(FileClass::of("tests/it/main.rs"), FileClass::Tests);
        assert_eq!(FileClass::of("pkg/server_test.go"), FileClass::Tests);
        assert_eq!(FileClass::of("web/app.spec.ts"), FileClass::Tests);
        assert_eq!(FileClass::of("README.md"), FileClass::Docs);
        assert_eq!(FileClass::of("Cargo.toml"), FileClass::Config);
        assert_eq!(FileClass::of(".github/workflows/ci.yml"), FileClass::Config);
        let files = [
            file("README.md", 50, &[10]),
            file("tests/a.rs", 90, &[10]),
            file("src/small.rs", 5, &[10]),
            file("src/big.rs", 80, &[10]),
        ];
        let p = plan(&files, 1000, 4);
        let shown: Vec<&str> = p.chunks[0]
            .iter()
            .map(|&(f, _)| files[f].path.as_str())
            .collect();
        assert_eq!(
            shown,
            ["src/big.rs", "src/small.rs", "tests/a.rs", "README.md"]
        );
    }

    #[test]
    fn everything_fits_in_one_chunk_when_it_can() {
        let files = [file("a.rs", 1, &[10, 20]), file("b.rs", 1, &[30])];
        let p = plan(&files, 100, 4);
        assert_eq!(p.chunks.len(), 1);
        assert!(p.left_out.is_empty());
    }

    #[test]
    fn chunks_stay_within_budget_and_files_stay_whole_when_possible() {
        let files = [
            file("a.rs", 9, &[40, 40]),
            file("b.rs", 8, &[50]),
            file("c.rs", 7, &[30, 30]),
        ];
        let p = plan(&files, 100, 10);
        for chunk in &p.chunks {
            let used: usize = chunk.iter().map(|&(f, u)| files[f].units[u].tokens).sum();
            assert!(used <= 100, "{used}");
        }
        // b.rs (50) does not fit after a.rs (80): it starts a new chunk, whole.
        assert_eq!(p.chunks[0], vec![(0, 0), (0, 1)]);
        assert_eq!(p.chunks[1], vec![(1, 0)]);
        assert!(p.left_out.is_empty());
    }

    #[test]
    fn a_file_larger_than_a_chunk_is_split_at_hunks() {
        let files = [file("big.rs", 100, &[60, 60, 60])];
        let p = plan(&files, 100, 10);
        assert_eq!(p.chunks, vec![vec![(0, 0)], vec![(0, 1)], vec![(0, 2)]]);
    }

    #[test]
    fn oversized_hunks_and_the_chunk_limit_are_named() {
        let files = [
            file("huge.rs", 500, &[5000]),
            file("a.rs", 10, &[90]),
            file("b.rs", 9, &[90]),
            file("c.rs", 8, &[90]),
        ];
        let p = plan(&files, 100, 2);
        assert_eq!(p.chunks.len(), 2);
        assert!(p.left_out.contains(&LeftOut::HunkTooLarge {
            path: "huge.rs".into(),
            tokens: 5000
        }));
        assert!(p.left_out.contains(&LeftOut::OverChunkLimit {
            path: "c.rs".into()
        }));
        // Every file is either shown or named.
        for (i, f) in files.iter().enumerate() {
            let shown = p.chunks.iter().flatten().any(|&(fi, _)| fi == i);
            let named = p.left_out.iter().any(|l| l.path() == f.path);
            assert!(shown || named, "{} vanished", f.path);
        }
    }
}
