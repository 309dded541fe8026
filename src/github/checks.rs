//! Check runs: Critic's status on a pull request's head commit, created, found again and
//! updated.

use serde::{Deserialize, Serialize};

use super::client::{PER_PAGE, to_json};
use super::names::encode_path;
use super::transport::{Answer, Call, send, send_idempotent};
use super::{GitHubError, Installation, RepoName};

/// GitHub rejects a check run output `summary` or `text` longer than this (in characters).
pub const MAX_CHECK_OUTPUT_CHARS: usize = 65_535;

/// The statuses an app may set on its check run (`waiting`, `pending`, `requested` are
/// reserved to GitHub Actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Queued,
    InProgress,
    Completed,
}

/// The conclusions an app may set (`stale` is GitHub's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckConclusion {
    Success,
    Failure,
    Neutral,
    Cancelled,
    Skipped,
    TimedOut,
    ActionRequired,
}

/// What a check run shows on its page. `summary` and `text` are Markdown, each at most
/// [`MAX_CHECK_OUTPUT_CHARS`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckOutput {
    pub title: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A check run to create. GitHub requires `conclusion` when `status` is `completed`.
#[derive(Debug, Clone, Serialize)]
pub struct NewCheckRun {
    pub name: String,
    pub head_sha: String,
    pub status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<CheckConclusion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<CheckOutput>,
    /// Our own reference (e.g. the job id), echoed back in check run webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// Changes to a check run; absent fields are left as they are (no `null`s are sent).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckRunUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<CheckStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<CheckConclusion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<CheckOutput>,
}

/// A check run as GitHub returns it. Status and conclusion stay strings: GitHub may report
/// values we never set (`stale`, Actions' `waiting`).
#[derive(Debug, Clone, Deserialize)]
pub struct CheckRun {
    pub id: u64,
    /// The App that made it; absent on some GitHub Enterprise Server versions' answers.
    #[serde(default)]
    pub app: Option<CheckRunApp>,
    pub name: String,
    pub head_sha: String,
    pub status: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub details_url: Option<String>,
    #[serde(default)]
    pub output: Option<RunOutput>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckRunApp {
    pub id: u64,
    #[serde(default)]
    pub slug: Option<String>,
}

/// A check run's output as GitHub returns it: every field may be `null`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunOutput {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub annotations_count: u64,
}

/// One annotation of a check run: a message on a line of a file.
#[derive(Debug, Clone, Deserialize)]
pub struct Annotation {
    pub path: String,
    pub start_line: u64,
    /// `notice`, `warning` or `failure`.
    pub annotation_level: String,
    pub message: String,
}

/// The App of GitHub Actions: its check runs are workflow jobs, whose logs can be read.
pub const GITHUB_ACTIONS_SLUG: &str = "github-actions";

impl Installation {
    /// Creates a check run. One that may have been created is looked for first: this App's
    /// run of that name on the same head commit.
    pub async fn create_check_run(
        &self,
        repo: &RepoName,
        run: &NewCheckRun,
    ) -> Result<CheckRun, GitHubError> {
        let call = Call::new(
            http::Method::POST,
            format!("/repos/{repo}/check-runs"),
            Some(to_json(run)?),
        );
        let find = || async {
            let runs = self.check_runs_for(repo, &run.head_sha, &run.name).await?;
            Ok(runs.into_iter().max_by_key(|r| r.id))
        };
        send(self.via(), &call, Answer::json, find).await
    }

    /// This App's check runs named `name` on a commit (GitHub's `filter=latest` default
    /// keeps only the newest of each name). GitHub lists every App's runs unless asked for
    /// one App's, so the answer is checked too.
    pub async fn check_runs_for(
        &self,
        repo: &RepoName,
        sha: &str,
        name: &str,
    ) -> Result<Vec<CheckRun>, GitHubError> {
        #[derive(Deserialize)]
        struct Listing {
            check_runs: Vec<CheckRun>,
        }
        let call = Call::get(format!(
            "/repos/{repo}/commits/{}/check-runs",
            encode_path(sha)
        ))
        .query(&[
            ("check_name", name),
            ("app_id", &self.owner.app_id.to_string()),
            ("per_page", PER_PAGE),
        ]);
        let listing: Listing = self.get_json(call).await?;
        let ours = |r: &CheckRun| r.app.as_ref().is_none_or(|a| a.id == self.owner.app_id);
        Ok(listing.check_runs.into_iter().filter(ours).collect())
    }

    /// Every other App's check runs on a commit (the newest of each name): what CI
    /// reported on it. Read page by page (a large build matrix has hundreds), up to 1,000.
    pub async fn others_check_runs(
        &self,
        repo: &RepoName,
        sha: &str,
    ) -> Result<Vec<CheckRun>, GitHubError> {
        #[derive(Deserialize)]
        struct Listing {
            total_count: usize,
            check_runs: Vec<CheckRun>,
        }
        let mut runs = Vec::new();
        for page in 1..=10u32 {
            let call = Call::get(format!(
                "/repos/{repo}/commits/{}/check-runs",
                encode_path(sha)
            ))
            .query(&[("per_page", PER_PAGE), ("page", &page.to_string())]);
            let listing: Listing = self.get_json(call).await?;
            let got = listing.check_runs.len();
            runs.extend(listing.check_runs);
            if got == 0 || runs.len() >= listing.total_count {
                break;
            }
        }
        let others = |r: &CheckRun| r.app.as_ref().is_none_or(|a| a.id != self.owner.app_id);
        Ok(runs.into_iter().filter(others).collect())
    }

    /// A check run's annotations, up to 100.
    pub async fn check_run_annotations(
        &self,
        repo: &RepoName,
        id: u64,
    ) -> Result<Vec<Annotation>, GitHubError> {
        let call = Call::get(format!("/repos/{repo}/check-runs/{id}/annotations"))
            .query(&[("per_page", PER_PAGE)]);
        self.get_json(call).await
    }

    /// The log of a GitHub Actions job (its check run's id), as text. GitHub redirects to a
    /// short-lived download URL, which the client follows without the token (another host).
    /// Needs the `actions: read` permission.
    pub async fn job_log(&self, repo: &RepoName, job_id: u64) -> Result<String, GitHubError> {
        let call = Call::get(format!("/repos/{repo}/actions/jobs/{job_id}/logs"));
        send_idempotent(self.via(), &call, |answer| {
            Ok(String::from_utf8_lossy(&answer.body).into_owned())
        })
        .await
    }

    pub async fn update_check_run(
        &self,
        repo: &RepoName,
        id: u64,
        update: &CheckRunUpdate,
    ) -> Result<CheckRun, GitHubError> {
        let route = format!("/repos/{repo}/check-runs/{id}");
        let call = Call::new(http::Method::PATCH, route, Some(to_json(update)?));
        send_idempotent(self.via(), &call, Answer::json).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn check_run_json_has_no_nulls() {
        let run = NewCheckRun {
            name: "critic".into(),
            head_sha: "abc".into(),
            status: CheckStatus::InProgress,
            conclusion: None,
            output: None,
            external_id: None,
        };
        let v = serde_json::to_value(&run).expect("json");
        assert_eq!(
            v,
            json!({ "name": "critic", "head_sha": "abc", "status": "in_progress" })
        );
        let update = CheckRunUpdate {
            conclusion: Some(CheckConclusion::ActionRequired),
            output: Some(CheckOutput {
                title: "t".into(),
                summary: "s".into(),
                text: None,
            }),
            ..Default::default()
        };
        let v = serde_json::to_value(&update).expect("json");
        assert_eq!(
            v,
            json!({ "conclusion": "action_required", "output": { "title": "t", "summary": "s" } })
        );
    }
}
