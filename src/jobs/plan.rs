//! Which event makes which job: the jobs as stored in the queue, and the pure decision.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::commands::{Command, Syntax, may_run};
use crate::config::Settings;
use crate::domain::{CommitSha, PrNumber};
use crate::github::RepoName;
use crate::review::tasks::TestSuggestion;
use crate::store::NewJob;
use crate::webhook::{Event, PullRequestAction};

/// Work Critic does later, stored as JSON in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Review one head commit of a pull request.
    Review(ReviewJob),
    /// Answer a slash command (other than `/review`, which is a review job).
    Command(CommandJob),
    /// Answer a reply to one of Critic's review threads.
    Reply(ReplyJob),
    /// Read what people made of Critic's threads on a pull request that was closed (its
    /// last chance: no review run reads them after), and delete its `/test --verify` branch.
    Learn(LearnJob),
    /// Wait for the checks of tests `/test --verify` pushed, and answer with their result.
    CiTests(CiTestsJob),
}

/// A branch of suggested tests whose checks are awaited (`/test --verify`; the payload of
/// one round).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiTestsJob {
    pub installation_id: u64,
    pub repo: RepoName,
    pub number: PrNumber,
    /// The `/test --verify` comment.
    pub requested: Requester,
    /// The pull request's head the tests were written on.
    pub head_sha: String,
    /// The commit holding the tests, where the branch points.
    pub tests_sha: String,
    /// Round 2: round 1's commit, which this one replaces (the branch moves from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_sha: Option<String>,
    /// 1, or 2 once the tests were corrected after failing.
    pub round: u8,
    /// This round's tests, as the answer shows them and the correction quotes them.
    pub tests: Vec<TestSuggestion>,
    /// Tests left out, and why.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The model that wrote them, for the answer's footer.
    pub model: String,
    /// When this round's commit was pushed, and when its checks stop being waited for (Unix
    /// ms).
    pub pushed_ms: i64,
    pub deadline_ms: i64,
    /// What CI reported on the first round, once it was corrected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_report: Option<String>,
}

impl CiTestsJob {
    pub fn pr(&self) -> PrRef<'_> {
        PrRef {
            repo: &self.repo,
            number: self.number,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnJob {
    pub installation_id: u64,
    pub repo: RepoName,
    pub number: PrNumber,
}

impl LearnJob {
    pub fn pr(&self) -> PrRef<'_> {
        PrRef {
            repo: &self.repo,
            number: self.number,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyJob {
    pub installation_id: u64,
    pub repo: RepoName,
    pub number: PrNumber,
    /// The thread's first comment (Critic's, if the thread is Critic's).
    pub root_id: u64,
    /// The reply to answer.
    pub requested: Requester,
}

impl ReplyJob {
    pub fn pr(&self) -> PrRef<'_> {
        PrRef {
            repo: &self.repo,
            number: self.number,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewJob {
    pub installation_id: u64,
    pub repo: RepoName,
    pub number: PrNumber,
    /// The head the event named; empty for `/review` (the PR's head when the job runs).
    pub head_sha: CommitSha,
    /// Set when someone asked with `/review`: the automatic review's skip rules do not
    /// apply, and the comment gets an answer when there is nothing to review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<Requester>,
    /// `/review --full`: the whole pull request again, not only what is new.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
}

/// The pull request a job is about.
#[derive(Debug, Clone, Copy)]
pub struct PrRef<'a> {
    pub repo: &'a RepoName,
    pub number: PrNumber,
}

impl ReviewJob {
    pub fn pr(&self) -> PrRef<'_> {
        PrRef {
            repo: &self.repo,
            number: self.number,
        }
    }
}

impl CommandJob {
    pub fn pr(&self) -> PrRef<'_> {
        PrRef {
            repo: &self.repo,
            number: self.number,
        }
    }
}

/// The comment that asked for a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub comment_id: u64,
    pub login: String,
    /// GitHub's `author_association` of the comment (`OWNER`, `MEMBER`, ...), for commands
    /// only maintainers may run; absent in jobs stored by older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association: Option<String>,
    /// For a command added by editing the comment: which edit (a hash of the body), so the
    /// edit is answered although the comment was answered before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

impl Requester {
    /// What the answer to this request is known by: the comment, and the edit if any.
    pub fn key(&self) -> String {
        match &self.revision {
            None => self.comment_id.to_string(),
            Some(rev) => format!("{}@{rev}", self.comment_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandJob {
    pub installation_id: u64,
    pub repo: RepoName,
    pub number: PrNumber,
    pub requested: Requester,
    pub command: Command,
}

impl Job {
    /// Who a job's model calls are booked to: its installation and pull request.
    pub(super) fn usage_owner(&self) -> (u64, PrRef<'_>) {
        match self {
            Job::Review(j) => (j.installation_id, j.pr()),
            Job::Command(j) => (j.installation_id, j.pr()),
            Job::Reply(j) => (j.installation_id, j.pr()),
            Job::Learn(j) => (j.installation_id, j.pr()),
            Job::CiTests(j) => (j.installation_id, j.pr()),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Job::Review(_) => "review",
            Job::Command(_) => "command",
            Job::Reply(_) => "reply",
            Job::Learn(_) => "learn",
            Job::CiTests(_) => "ci_tests",
        }
    }

    /// The queue's view of this job. Reviews of one PR share a key, so a newer push takes
    /// over queued work (and `/review` is the same work); each command is its own. An
    /// automatic review keeps `coalesce` after the previous review of its PR (see
    /// `review.coalesce_secs`); `/review` and every other job are due at once.
    pub fn to_new_job(&self, coalesce: Duration) -> Result<NewJob, serde_json::Error> {
        let dedupe_key = match self {
            Job::Review(r) => format!("review:{}#{}", r.repo, r.number),
            // One `/describe` at a time per PR: they all edit the same comment.
            Job::Command(c) if c.command == Command::Describe => {
                format!("describe:{}#{}", c.repo, c.number)
            }
            Job::Command(c) => {
                format!("command:{}#{}:{}", c.repo, c.number, c.requested.key())
            }
            Job::Reply(r) => {
                format!("reply:{}#{}:{}", r.repo, r.number, r.requested.comment_id)
            }
            Job::Learn(l) => format!("learn:{}#{}", l.repo, l.number),
            Job::CiTests(v) => format!(
                "ci-tests:{}#{}:{}:{}",
                v.repo,
                v.number,
                v.requested.key(),
                v.round
            ),
        };
        // Someone waits for an answer to everything but an automatic review.
        let requested = !matches!(self, Job::Review(r) if r.requested.is_none());
        Ok(NewJob {
            kind: self.kind().to_string(),
            dedupe_key,
            payload: serde_json::to_string(self)?,
            min_gap: if requested { Duration::ZERO } else { coalesce },
            requested,
        })
    }
}

/// The event's repository, or None (logged) when GitHub sent a name that is not
/// `owner/name`: such an event cannot be acted on, and saying so beats dropping it unseen.
fn repo_of(full_name: &str) -> Option<RepoName> {
    match full_name.parse() {
        Ok(repo) => Some(repo),
        Err(e) => {
            tracing::warn!(repo = full_name, error = %e, "event ignored: malformed repository name");
            None
        }
    }
}

/// A short hash of an edited comment's body: which edit a command came from.
fn body_hash(body: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(body.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Which job, if any, an event asks for. Pure: no I/O.
pub fn plan(event: &Event, settings: &Settings) -> Option<Job> {
    plan_with(event, settings, None)
}

/// [`plan`], knowing Critic's App slug (from `GET /app`), so `@slug review` is a command.
pub fn plan_with(event: &Event, settings: &Settings, slug: Option<&str>) -> Option<Job> {
    let review_drafts = settings.review.review_drafts;
    match event {
        Event::PullRequestReviewComment(e) => {
            // A reply in a thread; whether the thread is Critic's is the job's question (it
            // needs the store).
            let root_id = e.comment.in_reply_to_id?;
            let commands = &settings.commands;
            if !commands.enabled || e.action != "created" || e.comment.user.is_bot() {
                return None;
            }
            if e.comment.body.trim().is_empty()
                || !may_run(e.comment.author_association.as_deref(), &commands.allowed)
            {
                return None;
            }
            Some(Job::Reply(ReplyJob {
                installation_id: e.installation.as_ref()?.id,
                repo: repo_of(&e.repository.full_name)?,
                number: e.pull_request.number,
                root_id,
                requested: Requester {
                    comment_id: e.comment.id,
                    login: e.comment.user.login.clone(),
                    association: e.comment.author_association.clone(),
                    revision: None,
                },
            }))
        }
        Event::IssueComment(e) => {
            let commands = &settings.commands;
            let edited = e.action == "edited";
            if !commands.enabled
                || !(e.action == "created" || edited)
                || e.issue.pull_request.is_none()
            {
                return None;
            }
            if e.comment.user.is_bot() {
                return None;
            }
            let syntax = Syntax {
                slug,
                others: &commands.others,
            };
            let command = Command::parse_with(&e.comment.body, &syntax)?;
            // An edit runs only a command the comment did not have before it.
            let revision = if edited {
                let before = &e.changes.as_ref()?.body.as_ref()?.from;
                if Command::parse_with(before, &syntax).as_ref() == Some(&command) {
                    return None;
                }
                Some(body_hash(&e.comment.body))
            } else {
                None
            };
            let association = e.comment.author_association.as_deref();
            if !may_run(association, &commands.allowed) {
                tracing::info!(
                    user = %e.comment.user.login,
                    association = association.unwrap_or("unknown"),
                    command = command.name(),
                    "command ignored: the commenter may not run commands"
                );
                return None;
            }
            let installation_id = e.installation.as_ref()?.id;
            let repo: RepoName = repo_of(&e.repository.full_name)?;
            let requested = Requester {
                comment_id: e.comment.id,
                login: e.comment.user.login.clone(),
                association: association.map(str::to_owned),
                revision,
            };
            Some(match command {
                Command::Review { full } => Job::Review(ReviewJob {
                    installation_id,
                    repo,
                    number: e.issue.number,
                    head_sha: CommitSha::default(),
                    requested: Some(requested),
                    full,
                }),
                command => Job::Command(CommandJob {
                    installation_id,
                    repo,
                    number: e.issue.number,
                    requested,
                    command,
                }),
            })
        }
        Event::PullRequest(e) if e.action == PullRequestAction::Closed => {
            Some(Job::Learn(LearnJob {
                installation_id: e.installation.as_ref()?.id,
                repo: repo_of(&e.repository.full_name)?,
                number: e.number,
            }))
        }
        Event::PullRequest(e) => {
            let wanted = matches!(
                e.action,
                PullRequestAction::Opened
                    | PullRequestAction::Reopened
                    | PullRequestAction::ReadyForReview
                    | PullRequestAction::Synchronize
            );
            let pr = &e.pull_request;
            if !wanted || pr.state != "open" || (pr.draft && !review_drafts) {
                return None;
            }
            let installation_id = e.installation.as_ref()?.id;
            let repo = repo_of(&e.repository.full_name)?;
            Some(Job::Review(ReviewJob {
                installation_id,
                repo,
                number: e.number,
                head_sha: CommitSha::from(pr.head.sha.as_str()),
                requested: None,
                full: false,
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(review_drafts: bool) -> Settings {
        let mut s = Settings::defaults().expect("defaults");
        s.review.review_drafts = review_drafts;
        s
    }

    fn event(file: &str) -> Event {
        Event::parse("pull_request", &crate::test_env::webhook(file)).expect("parse")
    }

    #[test]
    fn opened_pull_request_plans_a_review() {
        let Some(Job::Review(job)) = plan(&event("pull_request.opened.2.json"), &settings(false))
        else {
            panic!("expected a review")
        };
        assert_eq!(job.installation_id, 1);
        assert_eq!(job.head_sha.as_str().len(), 40);
    }

    #[test]
    fn other_actions_and_missing_installation_plan_nothing() {
        assert_eq!(
            plan(&event("pull_request.labeled.1.json"), &settings(false)),
            None
        );
        assert_eq!(
            plan(&event("pull_request.opened.1.json"), &settings(false)),
            None,
            "no installation"
        );
        // Closing plans a last reading of the threads (with an installation only).
        let mut closed = event("pull_request.closed.1.json");
        let Some(Job::Learn(learn)) = plan(&closed, &settings(false)) else {
            panic!("a learn job")
        };
        assert_eq!((learn.installation_id, learn.number.get()), (1, 2));
        if let Event::PullRequest(e) = &mut closed {
            e.installation = None;
        }
        assert_eq!(plan(&closed, &settings(false)), None, "no installation");
    }

    #[test]
    fn drafts_only_when_asked() {
        let Event::PullRequest(mut e) = event("pull_request.opened.2.json") else {
            panic!()
        };
        e.pull_request.draft = true;
        let ev = Event::PullRequest(e);
        assert_eq!(plan(&ev, &settings(false)), None);
        assert!(plan(&ev, &settings(true)).is_some());
    }

    #[test]
    fn same_pr_shares_a_dedupe_key() {
        let job = |sha: &str| {
            Job::Review(ReviewJob {
                installation_id: 1,
                repo: "o/r".parse().expect("repo"),
                number: PrNumber(3),
                head_sha: sha.into(),
                requested: None,
                full: false,
            })
        };
        let (a, b) = (
            job("a").to_new_job(Duration::from_secs(10)).expect("a"),
            job("b").to_new_job(Duration::ZERO).expect("b"),
        );
        assert_eq!(a.dedupe_key, b.dedupe_key);
        assert_ne!(a.payload, b.payload);
        assert_eq!(a.min_gap, Duration::from_secs(10));
        assert!(!a.requested);
        let back: Job = serde_json::from_str(&a.payload).expect("round trip");
        assert_eq!(back, job("a"));
    }

    /// Payloads as they were stored before the pull request's number and the commit had
    /// types of their own: jobs queued by an older Critic must still run, and the newtypes
    /// must write the same JSON back.
    #[test]
    fn payloads_stored_before_the_newtypes_read_and_write_the_same() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let stored = [
            format!(
                r#"{{"kind":"review","installation_id":1,"repo":"o/r","number":3,"head_sha":"{sha}"}}"#
            ),
            r#"{"kind":"review","installation_id":1,"repo":"o/r","number":3,"head_sha":"","requested":{"comment_id":9,"login":"a"}}"#.to_owned(),
            r#"{"kind":"command","installation_id":5,"repo":"o/r","number":7,"requested":{"comment_id":9,"login":"a"},"command":{"name":"ask","question":"why?"}}"#.to_owned(),
            r#"{"kind":"reply","installation_id":1,"repo":"o/r","number":2,"root_id":11,"requested":{"comment_id":12,"login":"b"}}"#.to_owned(),
        ];
        let jobs: Vec<Job> = stored
            .iter()
            .map(|s| serde_json::from_str(s).expect("an old payload"))
            .collect();
        let Job::Review(review) = &jobs[0] else {
            panic!("a review: {jobs:?}")
        };
        assert_eq!(
            (review.number, review.head_sha.as_str()),
            (PrNumber(3), sha)
        );
        let Job::Reply(reply) = &jobs[3] else {
            panic!("a reply: {jobs:?}")
        };
        assert_eq!((reply.number, reply.root_id), (PrNumber(2), 11));
        for (job, old) in jobs.iter().zip(&stored) {
            assert_eq!(&serde_json::to_string(job).expect("json"), old);
        }
        assert_eq!(
            jobs[2].to_new_job(Duration::ZERO).expect("job").dedupe_key,
            "command:o/r#7:9"
        );
    }

    fn comment(file: &str, body: &str, association: &str) -> Event {
        let mut v: serde_json::Value =
            serde_json::from_slice(&crate::test_env::webhook(file)).expect("json");
        v["comment"]["body"] = body.into();
        v["comment"]["author_association"] = association.into();
        v["issue"]["pull_request"] =
            serde_json::json!({"url": "https://api.github.com/repos/o/r/pulls/1"});
        v["installation"] = serde_json::json!({"id": 5});
        Event::parse("issue_comment", &serde_json::to_vec(&v).expect("json")).expect("parse")
    }

    #[test]
    fn a_members_command_plans_a_job_and_review_is_a_review() {
        let s = settings(false);
        let ask = comment("issue_comment.created.1.json", "/ask why?", "MEMBER");
        let Some(Job::Command(job)) = plan(&ask, &s) else {
            panic!("a command job")
        };
        assert_eq!(
            job.command,
            Command::Ask {
                question: "why?".into()
            }
        );
        assert_eq!(job.installation_id, 5);
        let review = comment("issue_comment.created.1.json", "/review", "OWNER");
        let Some(Job::Review(job)) = plan(&review, &s) else {
            panic!("a review job")
        };
        assert!(job.requested.is_some() && job.head_sha.is_empty());
        // Two commands on one PR do not supersede each other; /review shares the review key.
        let mut other = comment("issue_comment.created.1.json", "/ask why?", "MEMBER");
        if let Event::IssueComment(e) = &mut other {
            e.comment.id += 1;
        }
        let queued = |e: &Event| {
            plan(e, &s)
                .expect("job")
                .to_new_job(Duration::from_secs(10))
                .expect("job")
        };
        assert_ne!(queued(&ask).dedupe_key, queued(&other).dedupe_key);
        assert!(queued(&review).dedupe_key.starts_with("review:"));
        // Someone asked: neither `/review` nor a command waits for the coalescing window.
        assert_eq!(queued(&review).min_gap, Duration::ZERO);
        assert_eq!(queued(&ask).min_gap, Duration::ZERO);
        // And a later push does not take their place.
        assert!(queued(&review).requested && queued(&ask).requested);
    }

    #[test]
    fn outsiders_bots_plain_comments_and_issues_plan_nothing() {
        let s = settings(false);
        let file = "issue_comment.created.1.json";
        assert_eq!(plan(&comment(file, "/review", "CONTRIBUTOR"), &s), None);
        assert_eq!(plan(&comment(file, "/review", "NONE"), &s), None);
        assert_eq!(plan(&comment(file, "looks good", "OWNER"), &s), None);
        let Event::IssueComment(mut e) = comment(file, "/review", "OWNER") else {
            panic!()
        };
        e.comment.user.kind = "Bot".into();
        assert_eq!(
            plan(&Event::IssueComment(e.clone()), &s),
            None,
            "bots never"
        );
        e.comment.user.kind = "User".into();
        e.issue.pull_request = None;
        assert_eq!(
            plan(&Event::IssueComment(e.clone()), &s),
            None,
            "issues are not PRs"
        );
        let mut off = settings(false);
        off.commands.enabled = false;
        assert_eq!(plan(&comment(file, "/review", "OWNER"), &off), None);
        let mut edited = comment(file, "/review", "OWNER");
        if let Event::IssueComment(e) = &mut edited {
            e.action = "edited".into();
        }
        assert_eq!(plan(&edited, &s), None, "an edit does not run it again");
    }
}
