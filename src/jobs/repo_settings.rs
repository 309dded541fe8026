//! Reads a repository's settings for a review: the organisation's `critic.toml` (in its
//! `.github` repository) and the repository's `.github/critic.toml`, both from their default
//! branches, over the server's. A file with an error is reported on the PR (once per
//! version of the file) and left out.

use sha2::{Digest, Sha256};

use crate::Critic;
use crate::config::repo::RepoPolicy;
use crate::github::{Installation, RepoName};

use super::error::JobError;
use super::plan::PrRef;

/// The repository's own settings file.
pub const REPO_FILE: &str = ".github/critic.toml";
/// The organisation's settings file, in its `.github` repository.
pub const ORG_FILE: &str = "critic.toml";

pub async fn load(
    critic: &Critic,
    gh: &Installation,
    pr: PrRef<'_>,
) -> Result<RepoPolicy, JobError> {
    let mut policy = RepoPolicy::from_server(&critic.config.settings.review);
    let endpoints = critic.llm.endpoint_names();
    let org_repo: Option<RepoName> = format!("{}/.github", pr.repo.owner()).parse().ok();
    let mut sources = Vec::new();
    if let Some(org) = org_repo.filter(|r| r != pr.repo) {
        // The App may not be installed on the organisation's `.github` repository: then
        // there are no organisation settings, which is not an error.
        match gh.default_branch_file(&org, ORG_FILE).await {
            Ok(Some(text)) => sources.push((format!("{org}:{ORG_FILE}"), text)),
            Ok(None) => {}
            Err(e) if matches!(e.status(), Some(403 | 404)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The default branch's settings rule, never the PR's own head: a PR must not be able
    // to change how it is reviewed.
    if let Some(text) = gh.default_branch_file(pr.repo, REPO_FILE).await? {
        sources.push((format!("{}:{REPO_FILE}", pr.repo), text));
    }
    for (name, bytes) in sources {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = policy.apply(&name, &text, &endpoints) {
            tracing::warn!(error = %e, "repository settings not applied");
            let digest = hex::encode(&Sha256::digest(text.as_bytes())[..8]);
            let note = format!(
                "{}Critic could not use the settings in `{name}`, so it reviewed with the settings without that file:\n\n```\n{}\n```",
                super::notes::notice_marker("config"),
                e.message.replace("```", "'''")
            );
            super::notes::post_once(critic, gh, pr, "config", &format!("{name}@{digest}"), &note)
                .await?;
        }
    }
    Ok(policy)
}
