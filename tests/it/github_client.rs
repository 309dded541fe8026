//! The GitHub module against the fake: what the pipeline asks of GitHub, answered like GitHub.

use critic::config::Config;
use critic::github::{GitHub, RepoName};

use crate::support::app::{INSTALLATION, REPO, World};
use crate::support::github::{PullFile, PullRequest};

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
        .pull_request_files(&REPO.parse().expect("repo"), 5)
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
        .pull_request(&REPO.parse().expect("repo"), 404)
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
    world
        .github
        .fail_next("GET", &format!("/repos/{REPO}/pulls/6"), 503, 1);
    let err = gh
        .pull_request(&REPO.parse().expect("repo"), 6)
        .await
        .expect_err("503");
    assert!(err.is_transient(), "{err}");
}
