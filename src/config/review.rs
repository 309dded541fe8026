//! The `[review]` settings: how pull requests are reviewed, and the `auto` values that are
//! decided per model (see [`small_model`]).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewSettings {
    /// Review draft pull requests too.
    pub review_drafts: bool,
    /// Most inline threads in one review, the most severe and (verified) surest first; the
    /// rest are listed collapsed. `max_findings` is the same setting.
    #[serde(default = "default_max_comments", alias = "max_findings")]
    pub max_comments: usize,
    /// Tokens of PR content in one model request; a larger PR is split into chunks.
    pub budget_tokens: usize,
    /// Requests one review may make (cost cap); what does not fit is named in the summary.
    pub max_chunks: usize,
    /// Lines shown around the enclosing function or class of each change.
    pub extra_lines: u32,
    /// The longest enclosing scope shown whole with a change (a longer one is a window
    /// around it); less for a small change (see `context::assemble`). `auto` decides by
    /// the model (see [`ScopeLines`]).
    pub max_scope_lines: ScopeLines,
    /// Glob patterns of files never sent to the model (`docs/**`, `*.snap`).
    pub ignore: Vec<String>,
    /// Extra instructions for every model prompt ("we use anyhow only in binaries"); they
    /// come after Critic's safety rules and cannot replace them.
    pub instructions: Option<String>,
    /// Review pull requests automatically when opened and on every push.
    pub enabled: bool,
    /// Skip pull requests opened by bots (logins ending in `[bot]`).
    pub skip_bots: bool,
    pub skip_authors: Vec<String>,
    pub skip_labels: Vec<String>,
    /// A pull request whose title contains one of these is not reviewed automatically.
    pub skip_title_markers: Vec<String>,
    /// Language of the comments (default: the model's, usually English).
    pub language: Option<String>,
    /// The lowest severity posted as a thread; lower ones are counted in the summary.
    pub min_severity: crate::domain::Severity,
    /// Resolve a thread whose code a later push changed (after replying to it).
    pub resolve_addressed: bool,
    /// The "Critic" check run fails when a critical finding is posted (else it is neutral).
    pub fail_on_critical: bool,
    /// An automatic review of a pull request is due at least this many seconds after the
    /// previous review of it was due. Pushes in between wait for the rest of the window and
    /// replace each other, so a burst of pushes costs one review of its newest head. 0
    /// reviews every push at once.
    pub coalesce_secs: u64,
    /// A second model call checks each finding bound for a thread (at or above
    /// `min_severity`) against its code before it is posted (see `review::verify`).
    pub verify: bool,
    /// Whether the verify call is a new conversation or the review's own, continued.
    pub verify_context: VerifyContext,
    /// The first review of a pull request also suggests tests for it (as `/test` does).
    pub suggest_tests: bool,
    /// Findings the verify pass is less sure of than this (0-10) are dropped.
    pub min_confidence: u8,
    /// The review asks for a one-click fix with each finding. Off, the answer is about a
    /// third shorter: for small local models, whose fixes are mostly prose that is never
    /// posted, and whose output tokens are the time a review takes. `auto`: off for a small
    /// model (see [`ScopeLines::SMALL_MODEL_PARAMS`]), on for any other.
    pub suggestions: Suggestions,
}

/// Whether a model is small: its server says it has fewer than
/// [`ScopeLines::SMALL_MODEL_PARAMS`] parameters. What `auto` settings go by.
pub fn small_model(params: Option<u64>) -> bool {
    params.is_some_and(|p| p < ScopeLines::SMALL_MODEL_PARAMS)
}

/// `review.suggestions`: `true`, `false` or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suggestions {
    /// Off for a small model, whose fixes were mostly prose, never posted once checked, and
    /// cost a seventh to a third of its answer's tokens (BENCHMARKS.md); on for any other.
    Auto,
    Set(bool),
}

impl Suggestions {
    /// Whether fixes are asked of a model of `params` parameters (None: its server did not
    /// say).
    pub fn resolve(self, params: Option<u64>) -> bool {
        match self {
            Suggestions::Set(on) => on,
            Suggestions::Auto => !small_model(params),
        }
    }

    /// The setting's value as written.
    pub fn label(self) -> String {
        match self {
            Suggestions::Auto => "auto".into(),
            Suggestions::Set(on) => on.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for Suggestions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Suggestions;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false or \"auto\"")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Suggestions, E> {
                Ok(Suggestions::Set(v))
            }
            /// Also the spellings of a boolean the `config` crate reads from the environment.
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Suggestions, E> {
                match v.trim().to_ascii_lowercase().as_str() {
                    "auto" => Ok(Suggestions::Auto),
                    "true" | "on" | "yes" | "1" => Ok(Suggestions::Set(true)),
                    "false" | "off" | "no" | "0" => Ok(Suggestions::Set(false)),
                    _ => Err(E::custom(format!("`{v}` is not true, false or \"auto\""))),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `review.max_scope_lines`: a number of lines, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeLines {
    /// [`ScopeLines::FULL`], except for a model its server reports as smaller than
    /// [`ScopeLines::SMALL_MODEL_PARAMS`] (llama.cpp does), which gets none: on such a
    /// model, run on a CPU, reading the prompt is most of a review's time, and the enclosing
    /// code bought no hit it could show (BENCHMARKS.md, seventh run).
    Auto,
    Lines(u32),
}

impl ScopeLines {
    /// What `auto` shows for a model of unknown or larger size.
    pub const FULL: u32 = 200;
    /// Below this many parameters a model counts as small.
    pub const SMALL_MODEL_PARAMS: u64 = 4_000_000_000;

    /// The lines for a model of `params` parameters (None: its server did not say).
    pub fn resolve(self, params: Option<u64>) -> u32 {
        match self {
            ScopeLines::Lines(n) => n,
            ScopeLines::Auto if small_model(params) => 0,
            ScopeLines::Auto => Self::FULL,
        }
    }

    /// The setting's value as written.
    pub fn label(self) -> String {
        match self {
            ScopeLines::Auto => "auto".into(),
            ScopeLines::Lines(n) => n.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for ScopeLines {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ScopeLines;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number of lines or \"auto\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ScopeLines, E> {
                u32::try_from(v)
                    .map(ScopeLines::Lines)
                    .map_err(|_| E::custom(format!("{v} lines is too many")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ScopeLines, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("{v}: lines cannot be negative")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ScopeLines, E> {
                match v.trim() {
                    "auto" => Ok(ScopeLines::Auto),
                    n => n
                        .parse::<u64>()
                        .map_err(|_| {
                            E::custom(format!("`{v}` is neither a number of lines nor \"auto\""))
                        })
                        .and_then(|n| self.visit_u64(n)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// How the verify call is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyContext {
    /// `continue` where the review's endpoint also verifies, is `openai-compatible` and has
    /// no known price (a server of one's own, where input costs nothing but time); else
    /// `separate`.
    Auto,
    /// A new conversation: the verify prompt, the findings, and each one's code.
    Separate,
    /// The review's conversation, continued with a short ask: a server that keeps the
    /// conversation's prefix cached (llama.cpp, vLLM, Ollama) reads only the ask, not the
    /// code again. The verifier is then the reviewer checking its own findings. Used only
    /// for a review made in one call whose first reply was read whole, by the endpoint that
    /// verifies; else, or when that call fails, `separate`. On a hosted API it re-sends (and
    /// bills) the whole review prompt.
    Continue,
}

impl VerifyContext {
    /// The setting's value as written.
    pub fn label(self) -> &'static str {
        match self {
            VerifyContext::Auto => "auto",
            VerifyContext::Separate => "separate",
            VerifyContext::Continue => "continue",
        }
    }
}

/// Five right comments beat twenty plausible ones.
fn default_max_comments() -> usize {
    8
}
