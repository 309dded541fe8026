//! What jobs say on a pull request besides reviews: notes posted once per (kind, key) however
//! often a job runs, answers to the comment that asked, and the markers that find them again.
//! Every job kind uses these; none of them knows another job kind.

use crate::Critic;
use crate::domain::PrNumber;
use crate::github::{GitHubError, Installation, RepoName};

use super::error::JobError;
use super::plan::{PrRef, Requester, ReviewJob};

/// GitHub's limit on a comment is 65,536 characters; answers stay well under it.
const MAX_ANSWER_CHARS: usize = 60_000;

/// Hidden in notes so they can be found again.
pub(super) fn notice_marker(kind: &str) -> String {
    format!("<!-- critic:notice:{kind} -->\n")
}

/// `2026-11`: budgets are per calendar month, UTC.
pub(super) fn month_key() -> String {
    chrono::Utc::now().format("%Y-%m").to_string()
}

pub(crate) fn next_month_start() -> chrono::NaiveDate {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    let (y, m) = if today.month() == 12 {
        (today.year() + 1, 1)
    } else {
        (today.year(), today.month() + 1)
    };
    chrono::NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(today)
}

/// Posts a note on the PR once per (kind, key), however often the job runs.
pub(super) async fn post_once(
    critic: &Critic,
    gh: &Installation,
    pr: PrRef<'_>,
    kind: &str,
    key: &str,
    body: &str,
) -> Result<(), JobError> {
    once(
        critic,
        pr,
        kind,
        key,
        gh.post_issue_comment(pr.repo, pr.number, body),
    )
    .await
}

/// Runs `post` once per (kind, key) on the PR, however often the job runs: the right to post
/// is claimed in the store first, and given back if the post fails, so a retry posts it.
pub(super) async fn once<T>(
    critic: &Critic,
    pr: PrRef<'_>,
    kind: &str,
    key: &str,
    post: impl Future<Output = Result<T, GitHubError>>,
) -> Result<(), JobError> {
    let repo = pr.repo.to_string();
    if !critic
        .store
        .claim_notice(&repo, pr.number, kind, key)
        .await?
    {
        return Ok(());
    }
    if let Err(e) = post.await {
        critic
            .store
            .release_notice(&repo, pr.number, kind, key)
            .await?;
        return Err(e.into());
    }
    Ok(())
}

/// Says "seen" to the comment that asked (a reaction); best effort.
pub(super) async fn acknowledge(gh: &Installation, repo: &RepoName, by: &Requester) {
    if let Err(e) = gh.add_reaction(repo, by.comment_id, "eyes").await {
        tracing::warn!(error = %e, comment = by.comment_id, "cannot react to the command");
    }
}

/// Answers the command comment, once however often the job runs.
pub(super) async fn answer(
    critic: &Critic,
    gh: &Installation,
    pr: PrRef<'_>,
    by: &Requester,
    text: &str,
) -> Result<(), JobError> {
    let body = format!("{}@{} {}", notice_marker("command"), by.login, fit(text));
    post_once(critic, gh, pr, "command", &by.key(), &body).await
}

/// The line under an answer: the model, and that Critic only comments.
pub(super) fn footer(model: &str) -> String {
    format!("\n\n<sub>Model: {model}. Critic comments only; it never approves or blocks.</sub>")
}

/// A command waits this long in the queue before its answer says so.
const LONG_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// A line for an answer that waited long in the queue (a busy installation, an outage):
/// whoever asked should know it was not ignored. Empty for a prompt answer.
pub(super) fn waited_note(waited: std::time::Duration) -> String {
    if waited < LONG_WAIT {
        return String::new();
    }
    let minutes = waited.as_secs().div_ceil(60);
    format!(
        "\n\n<sub>Answered after {minutes} minute(s) in Critic's queue: it was busy or GitHub or the model server was failing.</sub>"
    )
}

/// Tells whoever ran a command that it failed for good, with what went wrong and what to do;
/// best effort (GitHub may be what failed). Never the raw error's secrets: it is redacted.
pub(super) async fn command_failed(
    critic: &Critic,
    installation_id: u64,
    pr: PrRef<'_>,
    by: &Requester,
    name: &str,
    error: &JobError,
) {
    let what = public_error(&error.to_string());
    let advice = if error.is_transient() {
        "GitHub or the model server kept failing while Critic tried; please run the command again later."
    } else {
        "Running it again will likely fail the same way; the administrators of this Critic can find the job with `critic jobs --state dead`."
    };
    let text = format!("Critic could not run `/{name}`: {what}. {advice}");
    let gh = match critic.github.installation(installation_id) {
        Ok(gh) => gh,
        Err(e) => {
            tracing::warn!(error = %e, "cannot say that a command failed");
            return;
        }
    };
    let body = format!(
        "{}@{} {}",
        notice_marker("command-failed"),
        by.login,
        fit(&text)
    );
    if let Err(e) = post_once(critic, &gh, pr, "command-failed", &by.key(), &body).await {
        tracing::warn!(error = %e, "cannot say that a command failed");
    }
}

/// What a command gets when the month's budget is spent.
pub(super) fn budget_spent_text(budget: f64) -> String {
    format!(
        "Critic cannot run this: the installation's model budget for the month (${budget:.2}) is spent. It is available again on {}, or when an administrator raises `llm.monthly_budget_usd`.",
        next_month_start().format("%B %-d")
    )
}

/// An error as it may be shown on a pull request: secrets redacted, and addresses left out
/// (a model server's or proxy's URL names an internal host, which a public pull request must
/// not learn), then cut.
pub(super) fn public_error(error: &str) -> String {
    let redacted = crate::context::redact::redact(error).text;
    let mut out = String::with_capacity(redacted.len());
    for (i, word) in redacted.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match word.find("://") {
            Some(at) => {
                // Keep what wraps the address, `(` or `"`.
                let lead: String = word[..at]
                    .chars()
                    .take_while(|c| !c.is_ascii_alphanumeric())
                    .collect();
                let tail: String = word
                    .chars()
                    .rev()
                    .take_while(|c| matches!(c, ')' | '"' | '\'' | ',' | ':' | ';'))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                out.push_str(&format!("{lead}(an address){tail}"));
            }
            None => out.push_str(word),
        }
    }
    crate::llm::truncate(&out, 500)
}

/// Says on the pull request, once per head, that Critic gave up on reviewing it and why;
/// best effort (GitHub may be what failed).
pub(super) async fn say_not_reviewed(
    critic: &Critic,
    gh: &Installation,
    job: &ReviewJob,
    head: &str,
    why: &str,
) {
    let note = format!(
        "{}Critic could not review {}: it gave up. A new push or `/review` tries again.\n\n<details><summary>Why</summary>\n\n{}\n</details>",
        notice_marker("failed"),
        crate::github::short_sha(head),
        public_error(why).replace('<', "&lt;")
    );
    let posted = post_once(critic, gh, job.pr(), "failed", head, &note).await;
    if let Err(e) = posted {
        tracing::warn!(error = %e, "cannot say on the pull request why it was not reviewed");
    }
}

/// Within GitHub's comment limit, cut on a character boundary.
pub(super) fn fit(text: &str) -> String {
    crate::llm::truncate(text, MAX_ANSWER_CHARS)
}
/// Critic's own conversation comment on the PR that starts with `marker` (a comment someone
/// else wrote with the marker pasted in does not count).
pub(super) async fn own_marked_comment(
    gh: &Installation,
    repo: &RepoName,
    number: PrNumber,
    bot: &str,
    marker: &str,
) -> Result<Option<u64>, GitHubError> {
    Ok(gh
        .issue_comments(repo, number)
        .await?
        .into_iter()
        .find(|c| {
            c.user.as_ref().is_some_and(|u| u.login == bot)
                && c.body.as_deref().is_some_and(|b| b.starts_with(marker))
        })
        .map(|c| c.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_shown_on_a_pull_request_name_no_address_or_secret() {
        let token = concat!("ghp_", "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa");
        let shown = public_error(&format!(
            "error sending request for url (http://10.0.0.5:8000/v1/chat/completions): connection refused; key {token}"
        ));
        assert!(
            shown.starts_with(
                "error sending request for url ((an address)): connection refused; key "
            ),
            "{shown}"
        );
        assert!(
            !shown.contains("10.0.0.5") && !shown.contains("Zx9Yw8"),
            "{shown}"
        );
        assert_eq!(
            public_error("GitHub answered 403: Forbidden"),
            "GitHub answered 403: Forbidden"
        );
    }

    #[test]
    fn a_long_wait_is_said_in_minutes_a_short_one_not_at_all() {
        use std::time::Duration;
        assert_eq!(waited_note(Duration::from_secs(119)), "");
        let note = waited_note(Duration::from_secs(7 * 60 + 5));
        assert!(
            note.contains("after 8 minute(s) in Critic's queue"),
            "{note}"
        );
    }
}
