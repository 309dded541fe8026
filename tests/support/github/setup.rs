//! Setting the world up from a test: installations, repositories, pull requests and what is on
//! them, comments by others, thread states, comparisons, tokens and other Apps' check runs.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;

use super::FakeGitHub;
use super::reviews::{CommentInput, resolve_comment};
use super::world::{
    Annotation, CheckRun, CheckRunOutput, Compare, IssueComment, Pull, PullFile, PullRequest, Repo,
    Review, StatusEntry,
};

/// How a CI App's check run ends (see [`FakeGitHub::complete_foreign_check_run`]).
pub struct CompletedRun {
    /// `success`, `failure`, `neutral`, `cancelled`, `timed_out`, ...
    pub conclusion: &'static str,
    pub title: &'static str,
    pub summary: &'static str,
    pub annotations: Vec<Annotation>,
    pub log: Option<String>,
}

impl FakeGitHub {
    // ----- world setup -----------------------------------------------------------------------

    /// Registers an installation of the app (idempotent).
    pub fn add_installation(&self, id: u64) {
        self.update(|w| {
            w.installations.insert(id);
        });
    }

    /// A person's access token (`GITHUB_TOKEN`, a fine-grained token) that reaches the
    /// repositories of `installation` as GitHub's token auth does, until revoked.
    pub fn add_personal_token(&self, token: &str, installation: u64) {
        self.update(|w| {
            w.tokens.insert(
                token.to_owned(),
                super::world::TokenInfo {
                    installation_id: installation,
                    expires_at: chrono::Utc::now() + chrono::Duration::days(30),
                    revoked: false,
                    repositories: None,
                },
            );
        });
    }

    /// Adds `owner/name` to an installation (creating the installation if needed). Re-adding a
    /// repo moves it to the given installation and keeps its PRs.
    pub fn add_repo(&self, full_name: &str, installation_id: u64) {
        assert!(
            full_name.split('/').count() == 2,
            "repo must be owner/name, got {full_name:?}"
        );
        self.update(|w| {
            w.installations.insert(installation_id);
            let key = full_name.to_ascii_lowercase();
            if let Some(repo) = w.repos.get_mut(&key) {
                repo.installation_id = installation_id;
                return;
            }
            let id = w.next_id();
            w.repos.insert(
                key,
                Repo {
                    id,
                    full_name: full_name.to_owned(),
                    installation_id,
                    pulls: BTreeMap::new(),
                    contents: HashMap::new(),
                    check_runs: Vec::new(),
                    compares: HashMap::new(),
                    reactions: Vec::new(),
                    review_reactions: Vec::new(),
                    roles: HashMap::new(),
                    git: Default::default(),
                    statuses: Vec::new(),
                },
            );
        });
    }

    /// Adds PR `number` of `full_name` at `head_sha` (the default's when None) whose one file,
    /// `a.txt`, adds two lines: new lines 1 and 2 take threads.
    pub fn add_two_line_pull(&self, full_name: &str, number: u64, head_sha: Option<&str>) {
        let mut pull = PullRequest {
            number,
            ..Default::default()
        };
        if let Some(sha) = head_sha {
            pull.head_sha = sha.to_owned();
        }
        self.add_pull(full_name, pull);
        self.set_pull_files(
            full_name,
            number,
            vec![PullFile::from_patch(
                "a.txt",
                "@@ -0,0 +1,2 @@\n+hello\n+world",
            )],
        );
    }

    /// Adds or replaces a PR. Replacing keeps its files, reviews and comments; a new head SHA
    /// is remembered so reviews may still name the old head as `commit_id` (a "synchronize").
    pub fn add_pull(&self, full_name: &str, pull: PullRequest) {
        self.update(|w| {
            let id = w.next_id();
            let repo = w.repo_mut(full_name);
            let now = Utc::now();
            match repo.pulls.get_mut(&pull.number) {
                Some(existing) => {
                    if existing.pr.head_sha != pull.head_sha {
                        let old = existing.pr.head_sha.clone();
                        existing.previous_heads.push(old);
                    }
                    existing.pr = pull;
                    existing.updated_at = now;
                }
                None => {
                    repo.pulls.insert(
                        pull.number,
                        Pull {
                            id,
                            pr: pull,
                            files: Vec::new(),
                            reviews: Vec::new(),
                            issue_comments: Vec::new(),
                            previous_heads: Vec::new(),
                            head_fork: None,
                            threads: BTreeMap::new(),
                            created_at: now,
                            updated_at: now,
                        },
                    );
                }
            }
        });
    }

    /// Sets the PR's file list (what `/files` serves and what review comments are checked against).
    pub fn set_pull_files(&self, full_name: &str, number: u64, files: Vec<PullFile>) {
        self.update(|w| w.repo_mut(full_name).pull_mut(number).files = files);
    }

    /// Sets a commit status, as a CI service does (`POST /repos/{o}/{r}/statuses/{sha}`).
    pub fn set_status(
        &self,
        full_name: &str,
        sha: &str,
        context: &str,
        state: &str,
        description: &str,
    ) {
        self.update(|w| {
            w.repo_mut(full_name).statuses.push(StatusEntry {
                sha: sha.to_owned(),
                context: context.to_owned(),
                state: state.to_owned(),
                description: Some(description.to_owned()),
                target_url: Some(format!("https://ci.example.com/{sha}/{context}")),
            });
        });
    }

    /// Where branch `name` points, if it exists.
    pub fn branch(&self, full_name: &str, name: &str) -> Option<String> {
        self.world().branch(full_name, name).map(str::to_owned)
    }

    /// A file's bytes at a ref or commit (one the test put, or one a commit made here holds).
    pub fn file_at(&self, full_name: &str, sha: &str, path: &str) -> Option<Vec<u8>> {
        self.world()
            .repos
            .get(&full_name.to_ascii_lowercase())
            .and_then(|r| r.contents.get(&(sha.to_owned(), path.to_owned())).cloned())
    }

    /// The parents of a commit made through the git data API.
    pub fn commit_parents(&self, full_name: &str, sha: &str) -> Vec<String> {
        self.world()
            .repos
            .get(&full_name.to_ascii_lowercase())
            .and_then(|r| r.git.commits.get(sha).map(|(_, p, _)| p.clone()))
            .unwrap_or_default()
    }

    pub fn put_content(
        &self,
        full_name: &str,
        git_ref: &str,
        path: &str,
        bytes: impl Into<Vec<u8>>,
    ) {
        let bytes = bytes.into();
        self.update(|w| {
            w.repo_mut(full_name)
                .contents
                .insert((git_ref.to_owned(), path.to_owned()), bytes);
        });
    }

    /// Reactions Critic added to a conversation comment, in order.
    pub fn reactions(&self, full_name: &str, comment_id: u64) -> Vec<String> {
        self.world()
            .repos
            .get(&full_name.to_ascii_lowercase())
            .map(|r| {
                r.reactions
                    .iter()
                    .filter(|(c, _, _)| *c == comment_id)
                    .map(|(_, content, _)| content.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Gives `login` a role on `full_name` (`read`, `triage`, `write`, `maintain`, `admin`),
    /// as the collaborator permission API reports it.
    pub fn set_role(&self, full_name: &str, login: &str, role: &str) {
        self.update(|w| {
            w.repo_mut(full_name)
                .roles
                .insert(login.to_ascii_lowercase(), role.to_owned());
        });
    }

    /// Someone reacts to a review comment (a thread's root or a reply): `+1`, `-1`, `laugh`,
    /// `confused`, `heart`, `hooray`, `rocket` or `eyes`. One reaction per person and content,
    /// as on GitHub.
    pub fn react_to_review_comment(
        &self,
        full_name: &str,
        comment_id: u64,
        content: &str,
        login: &str,
    ) {
        self.update(|w| {
            let repo = w.repo_mut(full_name);
            let entry = (comment_id, content.to_owned(), login.to_owned());
            if !repo.review_reactions.contains(&entry) {
                repo.review_reactions.push(entry);
            }
        });
    }

    /// Adds a conversation comment by someone else (e.g. a human), returning its id.
    pub fn add_issue_comment(
        &self,
        full_name: &str,
        number: u64,
        user_login: &str,
        body: &str,
    ) -> u64 {
        self.update(|w| {
            let id = w.next_id();
            let now = Utc::now();
            w.repo_mut(full_name)
                .pull_mut(number)
                .issue_comments
                .push(IssueComment {
                    id,
                    body: body.to_owned(),
                    user_login: user_login.to_owned(),
                    created_at: now,
                    updated_at: now,
                });
            id
        })
    }

    /// Adds an inline comment by someone else (a human reviewer) on the RIGHT side of `line`,
    /// as a review of its own, returning the comment id. Panics if GitHub would reject it.
    pub fn add_review_comment(
        &self,
        full_name: &str,
        number: u64,
        user_login: &str,
        path: &str,
        line: u64,
        body: &str,
    ) -> u64 {
        self.update(|w| {
            let pull = w.repo_mut(full_name).pull_mut(number);
            let input = CommentInput {
                path: Some(path.to_owned()),
                line: Some(line),
                side: Some("RIGHT".to_owned()),
                start_line: None,
                start_side: None,
                body: Some(body.to_owned()),
                position: None,
            };
            let mut comment = resolve_comment(&pull.files, &input).unwrap_or_else(|e| {
                panic!("fake GitHub: comment on {path}:{line} would be rejected: {e}")
            });
            let commit_id = pull.pr.head_sha.clone();
            let review_id = w.next_id();
            comment.id = w.next_id();
            let id = comment.id;
            w.repo_mut(full_name).pull_mut(number).reviews.push(Review {
                id: review_id,
                node_id: format!("PRR_kwDO{review_id:010}"),
                commit_id,
                body: String::new(),
                event: Some("COMMENT".to_owned()),
                state: "COMMENTED".to_owned(),
                user_login: user_login.to_owned(),
                submitted_at: Some(Utc::now()),
                comments: vec![comment],
            });
            id
        })
    }

    /// Adds a reply by someone else to the thread whose root is `in_reply_to`, returning its id.
    pub fn add_review_reply(
        &self,
        full_name: &str,
        number: u64,
        user_login: &str,
        in_reply_to: u64,
        body: &str,
    ) -> u64 {
        self.update(|w| {
            let key = full_name.to_ascii_lowercase();
            match w.create_reply(&key, number, in_reply_to, user_login, body.to_owned()) {
                Ok((_, comment)) => comment.id,
                Err(reply) => panic!(
                    "fake GitHub: reply to {in_reply_to} on {full_name}#{number} rejected with {}",
                    reply.status
                ),
            }
        })
    }

    /// Marks the thread rooted at `root_comment_id` outdated (its line left the diff): GraphQL
    /// says `isOutdated`, and both APIs then give `line: null`.
    pub fn set_thread_outdated(
        &self,
        full_name: &str,
        number: u64,
        root_comment_id: u64,
        outdated: bool,
    ) {
        self.update(|w| {
            w.repo_mut(full_name)
                .pull_mut(number)
                .threads
                .entry(root_comment_id)
                .or_default()
                .outdated = outdated;
        });
    }

    /// Resolves (or unresolves) a thread as a human would in the UI.
    pub fn set_thread_resolved(
        &self,
        full_name: &str,
        number: u64,
        root_comment_id: u64,
        resolved_by: Option<&str>,
    ) {
        self.update(|w| {
            w.repo_mut(full_name)
                .pull_mut(number)
                .threads
                .entry(root_comment_id)
                .or_default()
                .resolved_by = resolved_by.map(str::to_owned);
        });
    }

    /// Sets what `GET compare/{base}...{head}` answers (exactly those two strings): `files`
    /// served like the PR files list, `head` one commit ahead of `base` (identical when equal).
    pub fn set_compare(&self, full_name: &str, base: &str, head: &str, files: Vec<PullFile>) {
        let ahead_by = u64::from(base != head);
        self.set_compare_counts(full_name, base, head, files, ahead_by, 0);
    }

    /// Like [`set_compare`](Self::set_compare) with explicit ahead/behind counts (behind > 0
    /// is a force-push or rebase: `diverged`).
    pub fn set_compare_counts(
        &self,
        full_name: &str,
        base: &str,
        head: &str,
        files: Vec<PullFile>,
        ahead_by: u64,
        behind_by: u64,
    ) {
        self.update(|w| {
            w.repo_mut(full_name).compares.insert(
                (base.to_owned(), head.to_owned()),
                Compare {
                    files,
                    ahead_by,
                    behind_by,
                },
            );
        });
    }

    /// Caps recursive tree listings (default [`MAX_TREE_ENTRIES`]) to test `truncated`.
    pub fn set_tree_entry_limit(&self, limit: usize) {
        self.update(|w| w.tree_entry_limit = limit);
    }

    // ----- tokens ----------------------------------------------------------------------------

    /// Number of installation tokens issued through `POST /app/installations/{id}/access_tokens`.
    pub fn tokens_issued(&self) -> usize {
        self.world().tokens_issued
    }

    /// Makes every token issued so far invalid (401 from now on), to test token refresh.
    /// Tokens issued afterwards are valid.
    pub fn expire_tokens(&self) {
        self.update(|w| w.tokens.values_mut().for_each(|t| t.revoked = true));
    }

    /// Makes `Link` headers path-only (`</repositories/1/pulls/1/files?page=2>`) instead of
    /// absolute like GitHub's. Why: octocrab 0.54's `get_page`/`all_pages` only attach the
    /// `Authorization` header to absolute URLs whose host is `api.github.com`, so against any
    /// other host (this fake, GitHub Enterprise) page 2+ go out unauthenticated and get 401.
    /// Path-only links (valid per RFC 8288) let octocrab fill in its base URI and auth.
    pub fn set_relative_links(&self, relative: bool) {
        self.update(|w| w.relative_links = relative);
    }

    /// Lifetime of tokens issued from now on (default one hour, like GitHub).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        let lifetime = chrono::Duration::from_std(lifetime).expect("token lifetime in range");
        self.update(|w| w.token_lifetime = lifetime);
    }

    /// Issues a valid token for an installation without HTTP (for tests that only want to call
    /// `/repos/...`). Not counted in [`tokens_issued`](Self::tokens_issued).
    pub fn mint_token(&self, installation_id: u64) -> String {
        self.update(|w| {
            assert!(
                w.installations.contains(&installation_id),
                "unknown installation {installation_id}"
            );
            w.issue_token(installation_id, None).0
        })
    }

    /// A check run made by another App (a CI system, another reviewer) on a commit of the
    /// repository; returns its id.
    pub fn add_foreign_check_run(
        &self,
        full_name: &str,
        head_sha: &str,
        name: &str,
        app_id: u64,
    ) -> u64 {
        self.update(|w| {
            let id = w.next_id();
            let run = CheckRun {
                id,
                app_id,
                name: name.to_string(),
                head_sha: head_sha.to_string(),
                status: "in_progress".into(),
                conclusion: None,
                external_id: None,
                details_url: None,
                output: None,
                started_at: Utc::now(),
                completed_at: None,
                annotations: Vec::new(),
                log: None,
            };
            w.repo_mut(full_name).check_runs.push(run);
            id
        })
    }

    /// Completes another App's check run, as CI does when it is done: its conclusion, its
    /// output (title, summary), annotations, and (for GitHub Actions) the job's log.
    pub fn complete_foreign_check_run(&self, full_name: &str, id: u64, done: CompletedRun) {
        self.update(|w| {
            let run = w
                .repo_mut(full_name)
                .check_runs
                .iter_mut()
                .find(|r| r.id == id)
                .expect("check run");
            run.status = "completed".into();
            run.conclusion = Some(done.conclusion.to_owned());
            run.completed_at = Some(Utc::now());
            run.output = Some(CheckRunOutput {
                title: done.title.to_owned(),
                summary: done.summary.to_owned(),
                text: None,
            });
            run.annotations = done.annotations;
            run.log = done.log;
        });
    }

    /// Makes the PR's head branch one of fork `fork` (`someone/fork`), as for a contributor
    /// without write access.
    pub fn set_head_fork(&self, full_name: &str, number: u64, fork: &str) {
        self.update(|w| w.repo_mut(full_name).pull_mut(number).head_fork = Some(fork.to_owned()));
    }

    /// Grants the App a permission its manifest does not ask for, as an administrator does
    /// (`contents` → `write`); tokens carry it from then on.
    pub fn grant(&self, permission: &str, level: &str) {
        self.update(|w| {
            w.granted.insert(permission.to_owned(), level.to_owned());
        });
    }
}
