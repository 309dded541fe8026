//! The shared vocabulary every layer may use: what a finding is, how severe, which side of
//! a diff, which task a model is asked for, what a model call used, where a job stands,
//! which pull request and commit. It imports nothing of the crate, so any module can
//! depend on it without tying itself to another stage of the pipeline.

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
    /// The second look at a review's findings (see `review::verify`).
    Verify,
}

impl Task {
    pub const ALL: [Task; 6] = [
        Task::Review,
        Task::Describe,
        Task::Improve,
        Task::Ask,
        Task::Tests,
        Task::Verify,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Task::Review => "review",
            Task::Describe => "describe",
            Task::Improve => "improve",
            Task::Ask => "ask",
            Task::Tests => "tests",
            Task::Verify => "verify",
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
    /// How sure the verify pass was that the finding is right (0-10); None when unverified.
    pub confidence: Option<u8>,
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

/// Where a job stands in the queue. The store keeps it as text (the `jobs.state` column);
/// everything above the store sees only this type, so a misspelt state is a compile error
/// rather than a query that silently matches nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for its `run_at` and a worker.
    Queued,
    /// Claimed by a worker under a lease.
    Running,
    /// Finished; its result is kept.
    Done,
    /// Out of attempts; its last error is kept.
    Dead,
    /// Never ran: a newer job for the same key does its work.
    Superseded,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Dead,
        JobState::Superseded,
    ];

    /// The name stored in the database; the SQL's literals (`'queued'`, ...) must match.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
            JobState::Superseded => "superseded",
        }
    }

    /// No longer queued or running: nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Done | JobState::Dead | JobState::Superseded)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is none of [`JobState`]'s: a row written by another version of Critic,
/// or by hand. Reading it is an error the caller sees, not a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state `{0}`")]
pub struct UnknownJobState(pub String);

impl std::str::FromStr for JobState {
    type Err = UnknownJobState;

    fn from_str(s: &str) -> Result<JobState, UnknownJobState> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownJobState(s.to_owned()))
    }
}

/// For a name read as an owned string: the store decodes the `state` column with it.
impl TryFrom<String> for JobState {
    type Error = UnknownJobState;

    fn try_from(s: String) -> Result<JobState, UnknownJobState> {
        s.parse()
    }
}

/// A pull request's number in its repository. Its own type in the jobs' payloads so it is
/// not mistaken for the installation or comment ids beside it; serialised as the bare
/// number (`serde(transparent)`), so payloads already stored read the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrNumber(pub u64);

impl PrNumber {
    pub fn get(self) -> u64 {
        self.0
    }

    /// As the store keeps it (GitHub's numbers are far below `i64::MAX`).
    pub fn to_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

/// The bare number, as in `#12` and in the jobs' dedupe keys.
impl std::fmt::Display for PrNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A commit's SHA as GitHub gives it (40 hex digits). Its own type in the jobs' payloads so
/// it is not mistaken for another string; serialised as the bare string
/// (`serde(transparent)`), so payloads already stored read the same. Not checked: it is
/// only ever compared with what GitHub says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommitSha(pub String);

impl CommitSha {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Empty where no commit was named (a job that takes the head when it runs).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for CommitSha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for CommitSha {
    fn from(sha: String) -> CommitSha {
        CommitSha(sha)
    }
}

impl From<&str> for CommitSha {
    fn from(sha: &str) -> CommitSha {
        CommitSha(sha.to_owned())
    }
}

/// A person's role on a repository, weakest first: what `commands.require_permission` asks of
/// whoever runs a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::None => "none",
            Permission::Read => "read",
            Permission::Triage => "triage",
            Permission::Write => "write",
            Permission::Maintain => "maintain",
            Permission::Admin => "admin",
        }
    }

    /// A role by GitHub's name for it; None for a name it does not have (a custom role).
    pub fn from_name(name: &str) -> Option<Permission> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "none" => Permission::None,
            "read" | "pull" => Permission::Read,
            "triage" => Permission::Triage,
            "write" | "push" => Permission::Write,
            "maintain" => Permission::Maintain,
            "admin" => Permission::Admin,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a file changed, in the terms of GitHub's files API (`added`, `removed`, `modified`,
/// `renamed`, `copied`; its `changed` and `unchanged` read as modified). A local `git diff`
/// gives the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileStatus {
    Added,
    Deleted,
    /// Changed in place: content, mode, or both.
    Modified,
    Renamed,
    Copied,
}

impl FileStatus {
    pub fn from_github(status: &str) -> FileStatus {
        match status {
            "added" => FileStatus::Added,
            "removed" => FileStatus::Deleted,
            "renamed" => FileStatus::Renamed,
            "copied" => FileStatus::Copied,
            _ => FileStatus::Modified,
        }
    }

    /// The name GitHub's files API gives this status.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Added => "added",
            FileStatus::Deleted => "removed",
            FileStatus::Modified => "modified",
            FileStatus::Renamed => "renamed",
            FileStatus::Copied => "copied",
        }
    }
}

impl std::fmt::Display for FileStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FileStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FileStatus, D::Error> {
        let name = String::deserialize(d)?;
        Ok(FileStatus::from_github(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_states_round_trip_through_their_names() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
            assert_eq!(JobState::try_from(state.to_string()), Ok(state));
        }
    }

    #[test]
    fn an_unknown_job_state_is_an_error() {
        assert_eq!(
            "Done".parse::<JobState>(),
            Err(UnknownJobState("Done".into()))
        );
        assert!(JobState::try_from(String::new()).is_err());
    }

    #[test]
    fn a_file_status_reads_every_name_github_gives() {
        let read = |name: &str| -> FileStatus {
            serde_json::from_value(serde_json::json!(name)).expect("status")
        };
        for (name, status) in [
            ("added", FileStatus::Added),
            ("removed", FileStatus::Deleted),
            ("modified", FileStatus::Modified),
            ("renamed", FileStatus::Renamed),
            ("copied", FileStatus::Copied),
        ] {
            assert_eq!(read(name), status);
            assert_eq!(status.as_str(), name);
        }
        // A mode or content change GitHub calls `changed`, and a name it may add later.
        assert_eq!(read("changed"), FileStatus::Modified);
        assert_eq!(read("unchanged"), FileStatus::Modified);
    }
}
