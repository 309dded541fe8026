//! Typed webhook events and their pure parsers.
//!
//! Only the fields Critic uses are modelled; everything else in GitHub's payloads is ignored,
//! so new fields GitHub adds never break parsing.

use crate::domain::PrNumber;
use serde::Deserialize;

/// Why a delivery could not be turned into an [`Event`].
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("invalid `{event}` payload at `{path}`: {message}")]
    Payload {
        event: String,
        path: String,
        message: String,
    },
}

/// A GitHub account (user, bot or organisation).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Account {
    pub login: String,
    pub id: u64,
    #[serde(rename = "type", default)]
    pub kind: String,
}

impl Account {
    /// Bots (including Critic itself) never trigger work.
    pub fn is_bot(&self) -> bool {
        self.kind == "Bot" || self.login.ends_with("[bot]")
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Repository {
    pub id: u64,
    pub name: String,
    pub full_name: String,
    pub owner: Account,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub default_branch: Option<String>,
}

/// The installation a delivery belongs to; absent on deliveries not sent to an App.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct InstallationRef {
    pub id: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GitRef {
    #[serde(rename = "ref")]
    pub name: String,
    pub sha: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct PullRequest {
    pub number: PrNumber,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub draft: bool,
    pub state: String,
    pub user: Account,
    pub head: GitRef,
    pub base: GitRef,
}

/// `pull_request` actions Critic distinguishes; the rest are [`PullRequestAction::Other`].
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PullRequestAction {
    Opened,
    Reopened,
    ReadyForReview,
    Synchronize,
    Edited,
    Closed,
    ConvertedToDraft,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestEvent {
    pub action: PullRequestAction,
    pub number: PrNumber,
    pub pull_request: PullRequest,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub sender: Account,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: String,
    pub user: Account,
    #[serde(default)]
    pub author_association: Option<String>,
}

/// An edited comment's previous values.
#[derive(Debug, Clone, Deserialize)]
pub struct CommentChanges {
    #[serde(default)]
    pub body: Option<ChangedFrom>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChangedFrom {
    pub from: String,
}

/// Marks an issue that is a pull request.
#[derive(Debug, Clone, Deserialize)]
pub struct IssuePullRequestLink {
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    pub number: PrNumber,
    pub title: String,
    #[serde(default)]
    pub pull_request: Option<IssuePullRequestLink>,
    pub user: Account,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IssueCommentEvent {
    pub action: String,
    pub issue: Issue,
    pub comment: Comment,
    /// On `edited`: what the edit changed (the body before it).
    #[serde(default)]
    pub changes: Option<CommentChanges>,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub sender: Account,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReviewComment {
    pub id: u64,
    #[serde(default)]
    pub body: String,
    pub user: Account,
    pub path: String,
    #[serde(default)]
    pub in_reply_to_id: Option<u64>,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub author_association: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestReviewCommentEvent {
    pub action: String,
    pub comment: ReviewComment,
    pub pull_request: PullRequest,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub sender: Account,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InstallationDetails {
    pub id: u64,
    pub account: Account,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RepoRef {
    pub id: u64,
    pub full_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InstallationEvent {
    pub action: String,
    pub installation: InstallationDetails,
    #[serde(default)]
    pub repositories: Option<Vec<RepoRef>>,
    pub sender: Account,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InstallationRepositoriesEvent {
    pub action: String,
    pub installation: InstallationDetails,
    #[serde(default)]
    pub repositories_added: Vec<RepoRef>,
    #[serde(default)]
    pub repositories_removed: Vec<RepoRef>,
    pub sender: Account,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PingEvent {
    pub zen: String,
    pub hook_id: u64,
}

/// A parsed delivery.
#[derive(Debug, Clone)]
pub enum Event {
    Ping(PingEvent),
    Installation(InstallationEvent),
    InstallationRepositories(InstallationRepositoriesEvent),
    PullRequest(Box<PullRequestEvent>),
    IssueComment(Box<IssueCommentEvent>),
    PullRequestReviewComment(Box<PullRequestReviewCommentEvent>),
    /// An event Critic does not handle; acknowledged and ignored.
    Unhandled(String),
}

impl Event {
    /// Parses a delivery's JSON body by its `X-GitHub-Event` name.
    pub fn parse(event: &str, body: &[u8]) -> Result<Event, ParseError> {
        Ok(match event {
            "ping" => Event::Ping(from_json(event, body)?),
            "installation" => Event::Installation(from_json(event, body)?),
            "installation_repositories" => Event::InstallationRepositories(from_json(event, body)?),
            "pull_request" => Event::PullRequest(Box::new(from_json(event, body)?)),
            "issue_comment" => Event::IssueComment(Box::new(from_json(event, body)?)),
            "pull_request_review_comment" => {
                Event::PullRequestReviewComment(Box::new(from_json(event, body)?))
            }
            other => {
                // Not modelled, but a delivery must still be JSON.
                from_json::<serde::de::IgnoredAny>(other, body)?;
                Event::Unhandled(other.to_string())
            }
        })
    }

    /// The repository the event is about, for logs.
    pub fn repository(&self) -> Option<&Repository> {
        match self {
            Event::PullRequest(e) => Some(&e.repository),
            Event::IssueComment(e) => Some(&e.repository),
            Event::PullRequestReviewComment(e) => Some(&e.repository),
            _ => None,
        }
    }
}

fn from_json<T: serde::de::DeserializeOwned>(event: &str, body: &[u8]) -> Result<T, ParseError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| ParseError::Payload {
        event: event.to_string(),
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_env::{webhook, webhooks_dir};

    fn payloads(prefix: &str) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(webhooks_dir())
            .expect("the webhook payloads in tests/fixtures")
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                name.split('.').next() == Some(prefix)
            })
            .map(|p| (p.display().to_string(), std::fs::read(&p).expect("read")))
            .collect();
        out.sort();
        assert!(!out.is_empty(), "no payloads for {prefix}");
        out
    }

    #[test]
    fn every_real_pull_request_payload_parses() {
        let all = payloads("pull_request");
        assert_eq!(all.len(), 29);
        for (name, body) in all {
            match Event::parse("pull_request", &body) {
                Ok(Event::PullRequest(e)) => {
                    assert!(e.number > PrNumber(0), "{name}");
                    assert_eq!(e.number, e.pull_request.number, "{name}");
                    assert_eq!(e.pull_request.head.sha.len(), 40, "{name}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn pull_request_opened_fields() {
        let body = webhook("pull_request.opened.2.json");
        let Ok(Event::PullRequest(e)) = Event::parse("pull_request", &body) else {
            panic!("not a pull_request")
        };
        assert_eq!(e.action, PullRequestAction::Opened);
        assert_eq!(e.installation, Some(InstallationRef { id: 1 }));
        assert!(!e.pull_request.draft);
        assert!(e.repository.full_name.contains('/'));
    }

    #[test]
    fn actions_map_to_variants() {
        for (file, action) in [
            (
                "pull_request.synchronize.1.json",
                PullRequestAction::Synchronize,
            ),
            ("pull_request.reopened.1.json", PullRequestAction::Reopened),
            (
                "pull_request.ready_for_review.1.json",
                PullRequestAction::ReadyForReview,
            ),
            ("pull_request.labeled.1.json", PullRequestAction::Other),
        ] {
            let body = webhook(file);
            let Ok(Event::PullRequest(e)) = Event::parse("pull_request", &body) else {
                panic!("{file}")
            };
            assert_eq!(e.action, action, "{file}");
        }
    }

    #[test]
    fn comment_and_installation_events_parse() {
        for (event, check) in [
            ("issue_comment", 9usize),
            ("pull_request_review_comment", 5),
            ("installation", 7),
            ("installation_repositories", 3),
            ("ping", 4),
        ] {
            let all = payloads(event);
            assert_eq!(all.len(), check, "{event}");
            for (name, body) in all {
                let parsed = Event::parse(event, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
                let ok = matches!(
                    (&parsed, event),
                    (Event::IssueComment(_), "issue_comment")
                        | (
                            Event::PullRequestReviewComment(_),
                            "pull_request_review_comment"
                        )
                        | (Event::Installation(_), "installation")
                        | (
                            Event::InstallationRepositories(_),
                            "installation_repositories"
                        )
                        | (Event::Ping(_), "ping")
                );
                assert!(ok, "{name}: {parsed:?}");
            }
        }
    }

    #[test]
    fn issue_comment_on_pull_request_is_marked() {
        let (_, body) = payloads("issue_comment").remove(0);
        let Ok(Event::IssueComment(plain)) = Event::parse("issue_comment", &body) else {
            panic!("parse")
        };
        assert!(plain.issue.pull_request.is_none(), "an issue, not a PR");
        let mut v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        v["issue"]["pull_request"] =
            serde_json::json!({"url": "https://api.github.com/repos/o/r/pulls/1"});
        let body = serde_json::to_vec(&v).expect("json");
        let Ok(Event::IssueComment(on_pr)) = Event::parse("issue_comment", &body) else {
            panic!("parse")
        };
        assert!(on_pr.issue.pull_request.is_some());
    }

    #[test]
    fn other_events_are_unhandled() {
        for (_, body) in payloads("push") {
            assert!(matches!(Event::parse("push", &body), Ok(Event::Unhandled(e)) if e == "push"));
        }
    }

    #[test]
    fn bad_payload_names_the_path() {
        let err = Event::parse("pull_request", br#"{"action":"opened","number":"x"}"#)
            .expect_err("bad")
            .to_string();
        assert!(err.contains("number"), "{err}");
        assert!(Event::parse("ping", b"not json").is_err());
        assert!(
            Event::parse("push", b"not json").is_err(),
            "unhandled events are checked too"
        );
    }

    #[test]
    fn bots_are_recognised() {
        let bot = Account {
            login: "critic[bot]".into(),
            id: 1,
            kind: "Bot".into(),
        };
        let user = Account {
            login: "octocat".into(),
            id: 2,
            kind: "User".into(),
        };
        assert!(bot.is_bot());
        assert!(!user.is_bot());
    }
}
