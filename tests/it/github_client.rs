//! The GitHub module against the fake: what the pipeline asks of GitHub, answered like GitHub.

use critic::config::Config;
use critic::domain::PrNumber;
use critic::github::{
    CheckConclusion, CheckOutput, CheckRunUpdate, CheckStatus, GitHub, GitHubError,
    MAX_CHECK_OUTPUT_CHARS, NewCheckRun, RepoName, TreeEntryKind, TreeFile,
};

use crate::support::app::{INSTALLATION, REPO, World};
use crate::support::github::{AuthKind, BOT_LOGIN, PullFile, PullRequest};

async fn client(world: &World) -> critic::github::Installation {
    let config = Config::load_from(None, world.options().env).expect("settings");
    GitHub::new(&config)
        .expect("client")
        .installation(INSTALLATION)
        .expect("installation")
}

#[tokio::test]
async fn file_contents_are_fetched_as_raw_bytes_and_missing_files_are_none() {
    let world = World::new().await;
    let sha = "3333333333333333333333333333333333333333";
    let bytes: Vec<u8> = b"caf\xe9 = 1\n\x00binary tail".to_vec();
    world
        .github
        .put_content(REPO, sha, "src/with space/é.txt", bytes.clone());
    let gh = client(&world).await;
    let repo: RepoName = REPO.parse().expect("repo");
    let got = gh
        .file_content(&repo, "src/with space/é.txt", sha)
        .await
        .expect("fetch");
    assert_eq!(got, Some(bytes));
    assert_eq!(
        gh.file_content(&repo, "nope.rs", sha).await.expect("fetch"),
        None
    );
}

#[tokio::test]
async fn files_of_a_large_pull_request_come_from_every_page() {
    let world = World::new().await;
    world.github.add_pull(
        REPO,
        PullRequest {
            number: 5,
            ..Default::default()
        },
    );
    let files: Vec<PullFile> = (0..250)
        .map(|i| PullFile::from_patch(&format!("src/f{i}.rs"), "@@ -1 +1 @@\n-a\n+b"))
        .collect();
    world.github.set_pull_files(REPO, 5, files);
    let gh = client(&world).await;
    let got = gh
        .pull_request_files(&REPO.parse().expect("repo"), PrNumber(5))
        .await
        .expect("files");
    assert_eq!(got.len(), 250);
    assert_eq!(got[249].filename, "src/f249.rs");
    let pages = world
        .github
        .requests()
        .iter()
        .filter(|r| r.path_only().ends_with("/pulls/5/files"))
        .count();
    assert_eq!(pages, 3, "100 per page");
}

#[tokio::test]
async fn a_github_error_is_typed_with_status_and_message() {
    let world = World::new().await;
    let gh = client(&world).await;
    let err = gh
        .pull_request(&REPO.parse().expect("repo"), PrNumber(404))
        .await
        .expect_err("no such PR");
    assert_eq!(err.status(), Some(404));
    assert!(!err.is_transient());
    world.github.add_pull(
        REPO,
        PullRequest {
            number: 6,
            ..Default::default()
        },
    );
    // A blip is retried inside the call; an outage that outlasts the retries comes back
    // as a transient error for the job to retry later.
    world
        .github
        .fail_next("GET", &format!("/repos/{REPO}/pulls/6"), 503, 1);
    let pr = gh
        .pull_request(&REPO.parse().expect("repo"), PrNumber(6))
        .await
        .expect("retried");
    assert_eq!(pr.number, PrNumber(6));
    world
        .github
        .fail_next("GET", &format!("/repos/{REPO}/pulls/6"), 503, 5);
    let err = gh
        .pull_request(&REPO.parse().expect("repo"), PrNumber(6))
        .await
        .expect_err("503");
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.status(), Some(503));
}

/// RIGHT lines 1-3 are in the diff.
const PATCH: &str = "@@ -1,2 +1,3 @@\n fn a() {}\n+fn b() {}\n fn c() {}";
const HEAD: &str = "2222222222222222222222222222222222222222";

fn repo() -> RepoName {
    REPO.parse().expect("repo")
}

/// PR `number` of [`REPO`] changing `src/lib.rs` with [`PATCH`].
fn add_pull(world: &World, number: u64) {
    world.github.add_pull(
        REPO,
        PullRequest {
            number,
            ..Default::default()
        },
    );
    world.github.set_pull_files(
        REPO,
        number,
        vec![PullFile::from_patch("src/lib.rs", PATCH)],
    );
}

#[tokio::test]
async fn issue_comments_come_from_every_page_and_are_edited_in_place() {
    let world = World::new().await;
    add_pull(&world, 7);
    for i in 0..120 {
        world
            .github
            .add_issue_comment(REPO, 7, "octocat", &format!("comment {i}"));
    }
    let gh = client(&world).await;
    let mine = gh
        .post_issue_comment(&repo(), PrNumber(7), "summary v1")
        .await
        .expect("post");

    let all = gh.issue_comments(&repo(), PrNumber(7)).await.expect("list");
    assert_eq!(all.len(), 121);
    assert_eq!(all[0].body.as_deref(), Some("comment 0"));
    assert_eq!(
        all[0].user.as_ref().map(|u| u.login.as_str()),
        Some("octocat")
    );
    assert!(all[0].created_at.is_some() && all[0].updated_at.is_some());
    assert_eq!(all[120].id, mine.id);
    assert_eq!(
        all[120].user.as_ref().map(|u| u.login.as_str()),
        Some(BOT_LOGIN)
    );

    let edited = gh
        .update_issue_comment(&repo(), mine.id, "summary v2")
        .await
        .expect("edit");
    assert_eq!(
        (edited.id, edited.body.as_deref()),
        (mine.id, Some("summary v2"))
    );
    let stored = world.github.issue_comments(REPO, 7);
    assert_eq!(stored.len(), 121, "edited, not added");
    assert_eq!(stored[120].body, "summary v2");
    let requests = world.github.requests();
    assert!(
        requests.iter().any(|r| r.method == "PATCH"
            && r.path_only() == format!("/repos/{REPO}/issues/comments/{}", mine.id)),
        "{requests:?}"
    );
    let err = gh
        .update_issue_comment(&repo(), 999, "x")
        .await
        .expect_err("no such comment");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn review_comments_are_listed_and_replies_join_their_thread() {
    let world = World::new().await;
    add_pull(&world, 8);
    add_pull(&world, 9);
    let root = world
        .github
        .add_review_comment(REPO, 8, "octocat", "src/lib.rs", 2, "Why b?");
    for i in 0..110 {
        world
            .github
            .add_review_comment(REPO, 8, "octocat", "src/lib.rs", 3, &format!("nit {i}"));
    }
    let elsewhere =
        world
            .github
            .add_review_comment(REPO, 9, "octocat", "src/lib.rs", 1, "other PR");
    let gh = client(&world).await;

    let comments = gh
        .review_comments(&repo(), PrNumber(8))
        .await
        .expect("list");
    assert_eq!(comments.len(), 111, "every page");
    let first = &comments[0];
    assert_eq!(first.id, root);
    assert_eq!(
        (first.path.as_str(), first.line, first.original_line),
        ("src/lib.rs", Some(2), Some(2))
    );
    assert_eq!(first.side, Some(critic::diff::Side::Right));
    assert_eq!(first.in_reply_to_id, None);
    assert_eq!(first.commit_id, HEAD);
    assert_eq!(
        first.user.as_ref().map(|u| u.login.as_str()),
        Some("octocat")
    );
    assert!(first.node_id.starts_with("PRRC_"), "{}", first.node_id);

    let reply = gh
        .reply_to_review_comment(&repo(), PrNumber(8), root, "Because c needs it.")
        .await
        .expect("reply");
    assert_eq!(reply.in_reply_to_id, Some(root));
    assert_eq!((reply.path.as_str(), reply.line), ("src/lib.rs", Some(2)));
    assert_eq!(reply.body, "Because c needs it.");
    assert_eq!(
        reply.user.as_ref().map(|u| u.login.as_str()),
        Some(BOT_LOGIN)
    );
    assert_ne!(
        reply.pull_request_review_id, first.pull_request_review_id,
        "GitHub files a reply under a review of its own"
    );
    let stored = world.github.review_comments(REPO, 8);
    assert_eq!(stored.last().map(|c| c.in_reply_to_id), Some(Some(root)));

    // Replies to replies, and to comments of another PR, are refused.
    let err = gh
        .reply_to_review_comment(&repo(), PrNumber(8), reply.id, "again")
        .await
        .expect_err("reply to a reply");
    assert_eq!(err.status(), Some(422), "{err}");
    let err = gh
        .reply_to_review_comment(&repo(), PrNumber(8), elsewhere, "wrong PR")
        .await
        .expect_err("parent on another PR");
    assert_eq!(err.status(), Some(404), "{err}");
    assert_eq!(world.github.review_comments(REPO, 8).len(), 112);
}

#[tokio::test]
async fn check_runs_are_created_then_completed_without_sending_nulls() {
    let world = World::new().await;
    add_pull(&world, 10);
    let gh = client(&world).await;
    let run = gh
        .create_check_run(
            &repo(),
            &NewCheckRun {
                name: "Critic".into(),
                head_sha: HEAD.into(),
                status: CheckStatus::InProgress,
                conclusion: None,
                output: None,
                external_id: Some("job-1".into()),
            },
        )
        .await
        .expect("create");
    assert_eq!(
        (
            run.name.as_str(),
            run.head_sha.as_str(),
            run.status.as_str()
        ),
        ("Critic", HEAD, "in_progress")
    );
    assert_eq!(run.conclusion, None);

    let done = gh
        .update_check_run(
            &repo(),
            run.id,
            &CheckRunUpdate {
                conclusion: Some(CheckConclusion::Neutral),
                output: Some(CheckOutput {
                    title: "3 findings".into(),
                    summary: "é".repeat(MAX_CHECK_OUTPUT_CHARS),
                    text: None,
                }),
                ..Default::default()
            },
        )
        .await
        .expect("complete (a conclusion implies completed; 65535 characters fit)");
    assert_eq!(
        (done.id, done.status.as_str(), done.conclusion.as_deref()),
        (run.id, "completed", Some("neutral"))
    );

    let stored = world.github.check_runs(REPO);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].external_id.as_deref(), Some("job-1"));
    assert_eq!(
        stored[0].output.as_ref().map(|o| o.title.as_str()),
        Some("3 findings")
    );
    assert!(stored[0].completed_at.is_some());
    for r in world
        .github
        .requests()
        .iter()
        .filter(|r| r.path_only().contains("/check-runs"))
    {
        assert!(
            !r.body.contains("null"),
            "{} sent a null: {}",
            r.path,
            r.body
        );
    }
}

#[tokio::test]
async fn check_runs_github_would_reject_are_422_and_not_stored() {
    let world = World::new().await;
    add_pull(&world, 11);
    let gh = client(&world).await;
    let run = |status, conclusion, head_sha: &str, summary: String| NewCheckRun {
        name: "Critic".into(),
        head_sha: head_sha.into(),
        status,
        conclusion,
        output: Some(CheckOutput {
            title: "t".into(),
            summary,
            text: None,
        }),
        external_id: None,
    };
    let cases = [
        (
            "summary over 65535 characters",
            run(
                CheckStatus::Completed,
                Some(CheckConclusion::Success),
                HEAD,
                "x".repeat(MAX_CHECK_OUTPUT_CHARS + 1),
            ),
        ),
        (
            "completed without a conclusion",
            run(CheckStatus::Completed, None, HEAD, "s".into()),
        ),
        (
            "a commit the repository does not have",
            run(
                CheckStatus::Queued,
                None,
                "9999999999999999999999999999999999999999",
                "s".into(),
            ),
        ),
    ];
    for (what, bad) in &cases {
        let err = gh.create_check_run(&repo(), bad).await.expect_err(what);
        assert_eq!(err.status(), Some(422), "{what}: {err}");
        assert!(!err.is_transient(), "{what}");
    }
    assert!(world.github.check_runs(REPO).is_empty());

    let ok = gh
        .create_check_run(&repo(), &run(CheckStatus::Queued, None, HEAD, "s".into()))
        .await
        .expect("valid");
    let err = gh
        .update_check_run(
            &repo(),
            ok.id,
            &CheckRunUpdate {
                status: Some(CheckStatus::Completed),
                ..Default::default()
            },
        )
        .await
        .expect_err("completed without a conclusion");
    assert_eq!(err.status(), Some(422), "{err}");
    assert_eq!(world.github.check_runs(REPO)[0].status, "queued");
    let err = gh
        .update_check_run(&repo(), ok.id + 1000, &CheckRunUpdate::default())
        .await
        .expect_err("unknown run");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn compare_lists_the_changed_files_and_unknown_pairs_are_404() {
    let world = World::new().await;
    let (base, head) = (
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    );
    world.github.set_compare(
        REPO,
        base,
        head,
        vec![
            PullFile::from_patch("src/lib.rs", PATCH),
            PullFile::binary("logo.png", "added"),
        ],
    );
    let gh = client(&world).await;
    let cmp = gh.compare(&repo(), base, head).await.expect("compare");
    assert_eq!(
        (
            cmp.status.as_str(),
            cmp.ahead_by,
            cmp.behind_by,
            cmp.commits
        ),
        ("ahead", 1, 0, 1)
    );
    assert_eq!(cmp.files.len(), 2);
    assert_eq!(cmp.files[0].filename, "src/lib.rs");
    assert_eq!(cmp.files[0].patch.as_deref(), Some(PATCH));
    assert_eq!((cmp.files[0].additions, cmp.files[0].deletions), (1, 0));
    assert_eq!(cmp.files[1].patch, None);
    assert!(
        world
            .github
            .requests()
            .iter()
            .any(|r| r.path_only() == format!("/repos/{REPO}/compare/{base}...{head}"))
    );

    let err = gh
        .compare(&repo(), head, base)
        .await
        .expect_err("not configured");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn a_tree_lists_every_path_and_says_when_it_is_truncated() {
    let world = World::new().await;
    let sha = "4444444444444444444444444444444444444444";
    for (path, bytes) in [
        ("README.md", &b"# hi\n"[..]),
        ("src/lib.rs", b"pub fn a() {}\n"),
        ("src/util/mod.rs", b""),
        ("src.rs", b"x"),
    ] {
        world.github.put_content(REPO, sha, path, bytes);
    }
    let gh = client(&world).await;
    let tree = gh.tree(&repo(), sha).await.expect("tree");
    assert!(!tree.truncated);
    assert_eq!(tree.sha.len(), 40);
    let listed: Vec<(&str, TreeEntryKind, Option<u64>)> = tree
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.kind, e.size))
        .collect();
    assert_eq!(
        listed,
        [
            ("README.md", TreeEntryKind::Blob, Some(5)),
            ("src.rs", TreeEntryKind::Blob, Some(1)),
            ("src", TreeEntryKind::Tree, None),
            ("src/lib.rs", TreeEntryKind::Blob, Some(14)),
            ("src/util", TreeEntryKind::Tree, None),
            ("src/util/mod.rs", TreeEntryKind::Blob, Some(0)),
        ],
        "git order: a directory sorts as if its name ended in '/'"
    );
    assert_eq!(tree.entries[0].mode, "100644");
    assert_eq!(tree.entries[2].mode, "040000");
    assert!(
        world
            .github
            .requests()
            .iter()
            .any(|r| r.path == format!("/repos/{REPO}/git/trees/{sha}?recursive=1")),
        "asks for the recursive listing"
    );

    world.github.set_tree_entry_limit(3);
    let cut = gh.tree(&repo(), sha).await.expect("tree");
    assert!(cut.truncated);
    assert_eq!(cut.entries.len(), 3);
    let err = gh
        .tree(&repo(), "5555555555555555555555555555555555555555")
        .await
        .expect_err("unknown commit");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn review_threads_come_from_graphql_with_their_state_and_can_be_resolved() {
    let world = World::new().await;
    add_pull(&world, 12);
    // 105 threads: two GraphQL pages of at most 100.
    let roots: Vec<u64> = (0..105)
        .map(|i| {
            world
                .github
                .add_review_comment(REPO, 12, "octocat", "src/lib.rs", 1 + i % 3, "?")
        })
        .collect();
    let reply = world
        .github
        .add_review_reply(REPO, 12, BOT_LOGIN, roots[0], "Answered.");
    world.github.set_thread_outdated(REPO, 12, roots[1], true);
    world
        .github
        .set_thread_resolved(REPO, 12, roots[2], Some("octocat"));
    let gh = client(&world).await;

    let threads = gh
        .review_threads(&repo(), PrNumber(12))
        .await
        .expect("threads");
    assert_eq!(threads.len(), 105);
    assert_eq!(threads[0].comment_ids, vec![roots[0], reply]);
    assert_eq!(threads[0].first_author.as_deref(), Some("octocat"));
    assert_eq!(
        (threads[0].path.as_str(), threads[0].line),
        ("src/lib.rs", Some(1))
    );
    assert!(!threads[0].is_resolved && !threads[0].is_outdated);
    assert!(threads[1].is_outdated);
    assert_eq!(
        threads[1].line, None,
        "an outdated thread has no current line"
    );
    assert!(threads[2].is_resolved);
    assert_eq!(threads[104].comment_ids, vec![roots[104]]);
    let pages = world
        .github
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/graphql")
        .count();
    assert_eq!(pages, 2);

    gh.resolve_review_thread(&threads[0].id)
        .await
        .expect("resolve");
    assert!(world.github.thread_resolved(REPO, 12, roots[0]));
    assert!(!world.github.thread_resolved(REPO, 12, roots[3]));
    let again = gh
        .review_threads(&repo(), PrNumber(12))
        .await
        .expect("threads");
    assert!(again[0].is_resolved);
}

#[tokio::test]
async fn graphql_errors_are_typed_and_not_retried() {
    let world = World::new().await;
    let gh = client(&world).await;
    let err = gh
        .review_threads(&repo(), PrNumber(404))
        .await
        .expect_err("no such PR");
    match &err {
        GitHubError::GraphQl { kinds, messages } => {
            assert_eq!(kinds, &["NOT_FOUND"]);
            assert!(messages[0].contains("404"), "{messages:?}");
        }
        other => panic!("expected a GraphQL error, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(err.status(), None);

    let err = gh
        .resolve_review_thread("PRRT_kwDO0000000001")
        .await
        .expect_err("no such thread");
    assert!(
        matches!(&err, GitHubError::GraphQl { kinds, .. } if kinds == &["NOT_FOUND"]),
        "{err:?}"
    );

    // HTTP-level failures of the endpoint stay HTTP errors (once they outlast the retries).
    world.github.fail_next("POST", "/graphql", 502, 5);
    let err = gh
        .review_threads(&repo(), PrNumber(404))
        .await
        .expect_err("502");
    assert_eq!(err.status(), Some(502));
    assert!(err.is_transient());
}

#[tokio::test]
async fn on_enterprise_server_graphql_goes_to_api_graphql_not_under_api_v3() {
    let world = World::new().await;
    add_pull(&world, 13);
    let root = world
        .github
        .add_review_comment(REPO, 13, "octocat", "src/lib.rs", 2, "?");
    let options = world.options().set(
        "CRITIC_GITHUB__API_URL",
        &format!("{}/api/v3", world.github.url()),
    );
    let config = Config::load_from(None, options.env).expect("settings");
    let gh = GitHub::new(&config)
        .expect("client")
        .installation(INSTALLATION)
        .expect("installation");

    let pr = gh
        .pull_request(&repo(), PrNumber(13))
        .await
        .expect("REST under /api/v3");
    assert_eq!(pr.number, PrNumber(13));
    let threads = gh
        .review_threads(&repo(), PrNumber(13))
        .await
        .expect("threads");
    assert_eq!(threads.len(), 1);
    gh.resolve_review_thread(&threads[0].id)
        .await
        .expect("resolve");
    assert!(world.github.thread_resolved(REPO, 13, root));

    let requests = world.github.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path_only()).collect();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/api/v3/app/installations/")),
        "{paths:?}"
    );
    assert_eq!(
        paths.iter().filter(|p| **p == "/api/graphql").count(),
        2,
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.ends_with("/v3/graphql")),
        "{paths:?}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.path_only() == "/api/graphql")
            .all(|r| r.status == 200 && r.auth == AuthKind::InstallationToken)
    );
}

#[tokio::test]
async fn files_are_committed_on_top_of_a_commit_and_a_branch_is_pointed_there_then_deleted() {
    let world = World::new().await;
    let head = "4444444444444444444444444444444444444444";
    world
        .github
        .put_content(REPO, head, "src/lib.rs", "pub fn a() {}\n");
    world
        .github
        .put_content(REPO, head, "tests/a.rs", "#[test]\nfn a() {}\n");
    let gh = client(&world).await;
    let repo: RepoName = REPO.parse().expect("repo");
    let files = [TreeFile {
        path: "tests/a.rs".into(),
        content: "#[test]\nfn a() {}\n\n#[test]\nfn b() {}\n".into(),
    }];
    // Critic's manifest asks for `contents: read`: pushing needs what an administrator grants.
    let refused = gh
        .commit_files(&repo, head, head, &files, "Critic: suggested tests")
        .await
        .expect_err("no contents: write");
    assert_eq!(refused.status(), Some(403));
    world.github.grant("contents", "write");
    world.github.grant("statuses", "read");
    let first = gh
        .commit_files(&repo, head, head, &files, "Critic: suggested tests")
        .await
        .expect("commit");
    assert_eq!(world.github.commit_parents(REPO, &first), [head]);
    // The other files come from the parent's tree; the test file is replaced.
    assert_eq!(
        world.github.file_at(REPO, &first, "src/lib.rs").as_deref(),
        Some(&b"pub fn a() {}\n"[..])
    );
    assert_eq!(
        world.github.file_at(REPO, &first, "tests/a.rs").as_deref(),
        Some(files[0].content.as_bytes())
    );
    // A branch that does not exist is made; one that does is moved, even backwards.
    let branch = "critic/tests/PR-7";
    gh.set_branch(&repo, branch, &first).await.expect("made");
    assert_eq!(
        world.github.branch(REPO, branch).as_deref(),
        Some(first.as_str())
    );
    let second = gh
        .commit_files(&repo, head, head, &files[..0], "again")
        .await
        .expect("second commit");
    gh.set_branch(&repo, branch, &second).await.expect("moved");
    assert_eq!(world.github.branch(REPO, branch), Some(second.clone()));
    assert_eq!(
        gh.branch_head(&repo, branch).await.expect("read"),
        Some(second.clone())
    );
    assert_eq!(gh.branch_head(&repo, "nope").await.expect("read"), None);
    // A commit of the head's files on top of an earlier one moves the branch forward only.
    let third = gh
        .commit_files(&repo, head, &second, &files, "corrected")
        .await
        .expect("third commit");
    assert_eq!(
        gh.commit_parents(&repo, &third).await.expect("parents"),
        std::slice::from_ref(&second)
    );
    assert!(
        gh.advance_branch(&repo, branch, &third)
            .await
            .expect("forward")
    );
    assert!(
        !gh.advance_branch(&repo, branch, &first)
            .await
            .expect("refused"),
        "not a fast forward"
    );
    assert!(
        !gh.advance_branch(&repo, "nope", &third)
            .await
            .expect("refused")
    );
    // A branch that does not exist is made, one that does is moved.
    gh.set_branch(&repo, "critic/tests/PR-8", &first)
        .await
        .expect("made");
    gh.set_branch(&repo, "critic/tests/PR-8", &third)
        .await
        .expect("moved");
    assert_eq!(
        world.github.branch(REPO, "critic/tests/PR-8"),
        Some(third.clone())
    );
    // Nobody's status yet: pending, as GitHub says of a commit with none.
    let status = gh.combined_status(&repo, &first).await.expect("status");
    assert_eq!((status.state.as_str(), status.total_count), ("pending", 0));
    world
        .github
        .set_status(REPO, &first, "ci/test", "failure", "2 tests failed");
    world
        .github
        .set_status(REPO, &first, "ci/lint", "success", "ok");
    let status = gh.combined_status(&repo, &first).await.expect("status");
    assert_eq!(status.state, "failure");
    assert_eq!(status.statuses.len(), 2);
    let failed = status
        .statuses
        .iter()
        .find(|s| s.state == "failure")
        .expect("the failing one");
    assert_eq!(failed.description.as_deref(), Some("2 tests failed"));
    assert!(gh.delete_branch(&repo, branch).await.expect("deleted"));
    assert_eq!(world.github.branch(REPO, branch), None);
    assert!(
        !gh.delete_branch(&repo, branch).await.expect("already gone"),
        "a branch that is not there is no error"
    );
    // A commit on an unknown parent is GitHub's 404, typed.
    let err = gh
        .commit_files(
            &repo,
            "5555555555555555555555555555555555555555",
            "5555555555555555555555555555555555555555",
            &files,
            "x",
        )
        .await
        .expect_err("unknown parent");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn other_apps_check_runs_their_annotations_and_an_actions_jobs_log_are_read() {
    use crate::support::github::{Annotation, CompletedRun, GITHUB_ACTIONS_APP_ID};
    let world = World::new().await;
    let head = "4444444444444444444444444444444444444444";
    world
        .github
        .put_content(REPO, head, "src/lib.rs", "pub fn a() {}\n");
    let gh = client(&world).await;
    let repo: RepoName = REPO.parse().expect("repo");
    let ours = gh
        .create_check_run(
            &repo,
            &critic::github::NewCheckRun {
                name: "Critic".into(),
                head_sha: head.into(),
                status: critic::github::CheckStatus::InProgress,
                conclusion: None,
                output: None,
                external_id: None,
            },
        )
        .await
        .expect("ours");
    let run = world
        .github
        .add_foreign_check_run(REPO, head, "test", GITHUB_ACTIONS_APP_ID);
    world.github.complete_foreign_check_run(
        REPO,
        run,
        CompletedRun {
            conclusion: "failure",
            title: "Process completed with exit code 101.",
            summary: "",
            annotations: vec![Annotation {
                path: "src/lib.rs".into(),
                line: 1,
                level: "failure".into(),
                message: "assertion failed".into(),
            }],
            log: Some("line 1\nthread 'a' panicked\n".into()),
        },
    );
    let runs = gh.others_check_runs(&repo, head).await.expect("runs");
    assert_eq!(runs.len(), 1, "Critic's own run is not CI's");
    // A large build matrix: read page by page.
    for n in 0..150 {
        world
            .github
            .add_foreign_check_run(REPO, head, &format!("matrix-{n}"), 777);
    }
    let all = gh.others_check_runs(&repo, head).await.expect("runs");
    assert_eq!(all.len(), 151);
    assert_ne!(runs[0].id, ours.id);
    let found = &runs[0];
    assert_eq!(found.conclusion.as_deref(), Some("failure"));
    assert_eq!(
        found.app.as_ref().and_then(|a| a.slug.as_deref()),
        Some(critic::github::GITHUB_ACTIONS_SLUG)
    );
    let output = found.output.as_ref().expect("output");
    assert_eq!(
        output.title.as_deref(),
        Some("Process completed with exit code 101.")
    );
    assert_eq!(output.annotations_count, 1);
    let notes = gh
        .check_run_annotations(&repo, run)
        .await
        .expect("annotations");
    assert_eq!(
        (
            notes[0].path.as_str(),
            notes[0].start_line,
            notes[0].message.as_str()
        ),
        ("src/lib.rs", 1, "assertion failed")
    );
    // The log needs `actions: read`; with it, the redirect to the download is followed.
    let refused = gh.job_log(&repo, run).await.expect_err("no actions: read");
    assert_eq!(refused.status(), Some(403));
    world.github.grant("actions", "read");
    let log = gh.job_log(&repo, run).await.expect("log");
    assert_eq!(log, "line 1\nthread 'a' panicked\n");
}
