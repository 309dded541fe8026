//! The shared vocabulary every layer may use: what a finding is, how severe, which side of
//! a diff, which task a model is asked for, what a model call used. It imports nothing of the crate, so any module
//! can depend on it without tying itself to another stage of the pipeline.

use serde::{Deserialize, Serialize};

/// How much a finding matters; ordered most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Nit,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Nit => "nit",
        }
    }
}

/// What a model is asked to do; each task has its own prompt, schema and endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    Review,
    Describe,
    Improve,
    Ask,
    Tests,
}

impl Task {
    pub const ALL: [Task; 5] = [
        Task::Review,
        Task::Describe,
        Task::Improve,
        Task::Ask,
        Task::Tests,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Task::Review => "review",
            Task::Describe => "describe",
            Task::Improve => "improve",
            Task::Ask => "ask",
            Task::Tests => "tests",
        }
    }
}

/// Which version of the file a line belongs to, as GitHub's review API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    /// The base (old) file: removed and context lines.
    Left,
    /// The head (new) file: added and context lines.
    Right,
}

/// One problem the model reported, checked: numbers are numbers, body is non-empty and
/// capped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The PR file's own name when the model's path names one (see `review::paths::resolve`);
    /// otherwise the model's path, tidied, and the finding can only be listed in the review
    /// body.
    pub path: String,
    pub line: u32,
    pub start_line: Option<u32>,
    pub side: Side,
    pub severity: Severity,
    pub category: String,
    pub title: String,
    pub body: String,
    /// The code the finding is about, as the model quoted it: where it really is in the diff
    /// wins over a line number the model got wrong.
    pub quote: Option<String>,
    /// Code to replace exactly the lines the thread covers, if the model offered a fix; posted
    /// as a ```` ```suggestion ```` block only after it is checked against the head file.
    pub suggestion: Option<String>,
}

/// Tokens one reply used, normalised across providers: `prompt_tokens` counts every input
/// token, `cached_tokens` the part of them served from the provider's prompt cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
}

/// One model call as metered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spent {
    pub endpoint: String,
    pub model: String,
    pub task: &'static str,
    pub usage: Usage,
    pub cost_micros: i64,
    /// The server reported no usage; the tokens are an estimate from the text's length.
    pub estimated: bool,
    /// No price was known for the model; the cost counts as 0.
    pub unpriced: bool,
}
