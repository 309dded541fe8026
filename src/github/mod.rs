//! The only module that knows octocrab: App auth, pull requests, files, reviews, comments,
//! check runs, and the two GraphQL calls REST cannot do (review threads and resolving them).
//!
//! Installation clients are cached per installation: octocrab keeps the installation token
//! inside the client and renews it shortly before it expires, so the cache is what keeps us
//! from minting a token per call.

mod access;
mod checks;
mod client;
mod comments;
mod error;
mod git_data;
mod graphql;
pub mod manifest;
mod names;
mod pulls;
mod retry;
mod reviews;
mod transport;

pub use checks::{
    Annotation, CheckConclusion, CheckOutput, CheckRun, CheckRunApp, CheckRunUpdate, CheckStatus,
    GITHUB_ACTIONS_SLUG, MAX_CHECK_OUTPUT_CHARS, NewCheckRun, RunOutput,
};
pub use client::{GitHub, Installation};
pub use comments::IssueComment;
pub use error::GitHubError;
pub use git_data::{CombinedStatus, CommitStatus, TreeFile};
pub use graphql::ReviewThread;
pub use names::{RepoName, short_sha};
pub use pulls::{
    ChangedFile, Comparison, GitRef, Label, PullRequest, RefRepo, Tree, TreeEntry, TreeEntryKind,
    User,
};
pub use retry::RetryPolicy;
pub use reviews::{NewReview, PullReviewComment, Reaction, Reactions, Review, ReviewComment};
