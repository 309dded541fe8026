//! Self-tests of the fake GitHub (`tests/support/github.rs`): each checks one rule the fake
//! must enforce like real GitHub, so end-to-end tests of Critic can trust it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::github::{
    APP_ID, BOT_LOGIN, FakeGitHub, PullFile, PullRequest, app_jwt, scenario_dir, scenario_dirs,
    sign_app_jwt, sign_jwt_with,
};
use crate::support::test_env;

const REPO: &str = "octo-org/widgets";
const INSTALLATION: u64 = 77;

/// An RSA key that is *not* the app's, to prove signatures are checked.
const WRONG_KEY_PEM: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEpAIBAAKCAQEA3b6iXuBmso4ZzHvAhmx2VGObW4Tx1cXZ7qEofBgQuxGeVWG7\n\
LZElBposCsWrygm6npCus7kvPHFJLisz9ERXOB2tI9DwHqzmJ6AVRCTnN0NieKNz\n\
lEH+BbkQ7Wym5EJkIbTDRsqMf4Ia9ICupNzefbucQJDEaSpoNF2nIUB7Fj23F5bK\n\
N3t0wzGtke0cdW1CEKOyyFi8OjSLxAF3QJyYPl1La7vaJeo6tKZQ91VH2WLWK+z3\n\
b+23+/W/E8yPy5MK1KD3t02H6hFhwrnwBbJ3gndBOG6Af6rEwZ6ipzO2IleaE5eD\n\
EIRBvGkd0EoSy5xlgVCscR9+rzKqmaOUkmZIkQIDAQABAoIBAAJ7R2Qw/0eDIVB/\n\
F8MN7WY5g7dKxLs4k1QTejTLmm/CFCWKLr3JzlSOlbXhJrmWrSRD/2LNOlCsR1CF\n\
0GUIRsK+3bRQnyPh4uTs6pACqtvBd96lwQ/yQtU3Rv2BOFl9CCXXRpucfdMsDUm+\n\
oTW3r6JQA3ftgkCgwbk2lobNmIDBxG7Xp6Lr7nMcXxTChyfIxSXljqqa8DSPNvyh\n\
lrjEikeWYcpbyUzlcaMC4n0e2wUkJyDXVHBPbonz/R+PR69kvEgtbus3yg4KBE/U\n\
IRdCcuMBlQHOdc/q+bH5iEqTEYaLRdP0pz5FbrF8HLIsH9SdNidUuzScJINNH8An\n\
eT9IhkkCgYEA9kUzvP5DkV+sluxK7R51VN3yxnTqvd4f5ia73VIWMeAHoD80lmbw\n\
F8wgtmuVm1DTjeaWzLz7knMWfByI7xogzlsEsa3KKg7WqPzVH/UT/f0+xykM4Iq9\n\
NqYlxusrdnAd8DoyUYbOh36Y9pn5SLUytxn6wgppjTeStSh7zdO7zF8CgYEA5oFg\n\
sMZIqZT/SYMQnNTAJxs1XSkVc7bvaFX3JG2iwXmHWbzINNkLmh99M6AfXPPBjO9p\n\
REFNTNesBmO59+s9sYkRXqRXin6OxOTa0XmX13RNg79i9GS/HhTCw10dp79PX7jQ\n\
4SJbIzu8pKtohgPmEoo7AF8o1gl0AsIbBU8NEQ8CgYEArOpqKYleZ/SFenLvKQ75\n\
010D2dS9/hK40yDfR8cbTmm+8QVwJyqf6hWp4mwn36Yg5MHDoH4RJgMpBnwCqd/u\n\
qPW/lgIwsNc6Ye0kuAucvfnS2oQ4RnEj6fs/CyyUl9ShMMusCRJecUSyonP6VNLl\n\
iSr0psoo0r7yg8CpLRw+AIECgYEA4HhLfbqKlkJX3PG6os94FF0luYRBtL8II3Xb\n\
x+jQX1MG4Pe7i+N1rfBOT5D2GeHysVmQDHz/Vv6MMmi5eFnoaVROyviFm4Qlak5n\n\
XSjpGlLTDaK6Lb9ScmvLQs8SCwJ9vHzRRPzc/dG1ojKeBiwTyCg+ztzcepsYE3uN\n\
Lr1NvzcCgYASq2cfMJrmh8AdEwv0LpQGCiJJt3+sndlrP5U2uXC1OyUO4m/sbn6s\n\
PmkBzpfr2XNtpfwxNAxBSrhbURMwPYnslQQ2BZplM+39/wQ1A8X58RpMi3VG/YrK\n\
csQMMHJWhjqvePMjHufwCxijJ4cGEQq4PToUxkNtKM8OGZQr0zgJQw==\n\
-----END RSA PRIVATE KEY-----\n";

/// The patch of `src/lib.rs` in the synthetic PR. Lines the diff shows:
/// RIGHT 1-6 and 22-24, LEFT 1-4 and 20-22.
const LIB_PATCH: &str = "@@ -1,4 +1,6 @@
 fn a() {}
-fn b() {}
+fn b() -> u8 {
+    1
+}
 fn c() {}
 fn d() {}
@@ -20,3 +22,3 @@ impl X {
 fn e() {}
-fn f() {}
+fn g() {}
 fn h() {}";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent("critic-tests")
        .build()
        .expect("reqwest client")
}

/// A fake with one repo, PR #1 (`src/lib.rs` + a binary logo) and a token for it.
async fn setup() -> (FakeGitHub, String) {
    let fake = FakeGitHub::start().await;
    fake.add_repo(REPO, INSTALLATION);
    fake.add_pull(
        REPO,
        PullRequest {
            number: 1,
            title: "Tweak b".into(),
            ..Default::default()
        },
    );
    fake.set_pull_files(
        REPO,
        1,
        vec![
            PullFile::from_patch("src/lib.rs", LIB_PATCH),
            PullFile::binary("logo.png", "added"),
        ],
    );
    let token = fake.mint_token(INSTALLATION);
    (fake, token)
}

async fn get(fake: &FakeGitHub, path: &str, auth: Option<&str>) -> (u16, Value) {
    let mut request = http().get(format!("{}{path}", fake.url()));
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.expect("request to fake");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(fake: &FakeGitHub, path: &str, auth: &str, body: &Value) -> (u16, Value) {
    let response = http()
        .post(format!("{}{path}", fake.url()))
        .header("authorization", auth)
        .json(body)
        .send()
        .await
        .expect("request to fake");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn request_token(fake: &FakeGitHub, jwt: &str) -> (u16, Value) {
    post(
        fake,
        &format!("/app/installations/{INSTALLATION}/access_tokens"),
        &format!("Bearer {jwt}"),
        &json!({}),
    )
    .await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn fake_github_jwt_signed_with_app_key_gets_a_working_token() {
    let (fake, _) = setup().await;
    let (status, body) = request_token(&fake, &app_jwt()).await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().expect("token string");
    assert!(token.starts_with("ghs_"), "{token}");
    let expires =
        chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().expect("expires_at"))
            .expect("RFC3339");
    let ttl = expires.timestamp() - now();
    assert!(
        (3500..=3600).contains(&ttl),
        "token should live about an hour, lives {ttl}s"
    );
    assert_eq!(fake.tokens_issued(), 1);

    // `iss` may also be a string, as some JWT libraries send it.
    let (status, _) = request_token(
        &fake,
        &sign_app_jwt(&json!({ "iss": APP_ID.to_string(), "iat": now() - 30, "exp": now() + 300 })),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(fake.tokens_issued(), 2);

    for auth in [format!("token {token}"), format!("Bearer {token}")] {
        let (status, pr) = get(&fake, &format!("/repos/{REPO}/pulls/1"), Some(&auth)).await;
        assert_eq!(status, 200, "{pr}");
        assert_eq!(pr["number"], 1);
        assert_eq!(pr["head"]["sha"], PullRequest::default().head_sha);
    }
}

#[tokio::test]
async fn fake_github_rejects_bad_jwts_with_401() {
    let (fake, _) = setup().await;
    let t = now();
    let cases = [
        (
            "wrong key",
            sign_jwt_with(
                &json!({ "iss": APP_ID, "iat": t - 60, "exp": t + 540 }),
                WRONG_KEY_PEM,
            ),
        ),
        (
            "expired",
            sign_app_jwt(&json!({ "iss": APP_ID, "iat": t - 700, "exp": t - 100 })),
        ),
        (
            "lives too long",
            sign_app_jwt(&json!({ "iss": APP_ID, "iat": t - 60, "exp": t + 541 })),
        ),
        (
            "issued in the future",
            sign_app_jwt(&json!({ "iss": APP_ID, "iat": t + 120, "exp": t + 600 })),
        ),
        (
            "wrong app id",
            sign_app_jwt(&json!({ "iss": APP_ID + 1, "iat": t - 60, "exp": t + 540 })),
        ),
        (
            "no exp",
            sign_app_jwt(&json!({ "iss": APP_ID, "iat": t - 60 })),
        ),
        ("not a JWT", "abc.def.ghi".to_owned()),
    ];
    for (what, jwt) in &cases {
        let (status, body) = request_token(&fake, jwt).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }
    let (status, body) = request_token(&fake, "").await;
    assert_eq!(status, 401, "empty bearer: {body}");
    assert_eq!(fake.tokens_issued(), 0);

    // A good JWT for an unknown installation is a 404.
    let (status, body) = post(
        &fake,
        "/app/installations/999/access_tokens",
        &format!("Bearer {}", app_jwt()),
        &json!({}),
    )
    .await;
    assert_eq!((status, body["message"].as_str()), (404, Some("Not Found")));
    // The exact limit (octocrab's own JWTs: iat now-60, exp now+540) is accepted.
    let (status, _) = request_token(
        &fake,
        &sign_app_jwt(&json!({ "iss": APP_ID, "iat": t - 60, "exp": t + 540 })),
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn fake_github_repo_endpoints_need_a_live_installation_token() {
    let (fake, token) = setup().await;
    let path = format!("/repos/{REPO}/pulls/1");
    let (status, body) = get(&fake, &path, None).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("Bad credentials"))
    );
    let (status, _) = get(&fake, &path, Some(&format!("Bearer {}", app_jwt()))).await;
    assert_eq!(status, 401, "a JWT is not an installation token");
    let (status, _) = get(&fake, &path, Some("token ghs_made_up")).await;
    assert_eq!(status, 401);

    // A token only works for its own installation's repos.
    fake.add_repo("other-org/gadgets", 88);
    fake.add_pull("other-org/gadgets", PullRequest::default());
    let (status, body) = get(
        &fake,
        "/repos/other-org/gadgets/pulls/1",
        Some(&format!("token {token}")),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // Expired tokens stop working; fresh ones work.
    let (status, _) = get(&fake, &path, Some(&format!("token {token}"))).await;
    assert_eq!(status, 200);
    fake.expire_tokens();
    let (status, _) = get(&fake, &path, Some(&format!("token {token}"))).await;
    assert_eq!(status, 401);
    let fresh = fake.mint_token(INSTALLATION);
    let (status, _) = get(&fake, &path, Some(&format!("token {fresh}"))).await;
    assert_eq!(status, 200);

    // Missing User-Agent is refused like on GitHub.
    let response = reqwest::Client::new()
        .get(format!("{}{path}", fake.url()))
        .header("authorization", format!("token {fresh}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 403);

    let kinds: Vec<_> = fake.requests().iter().take(3).map(|r| r.auth).collect();
    use crate::support::github::AuthKind;
    assert_eq!(
        kinds,
        [AuthKind::None, AuthKind::Jwt, AuthKind::InstallationToken]
    );
}

#[tokio::test]
async fn fake_github_paginates_files_with_link_headers() {
    let (fake, token) = setup().await;
    let files: Vec<PullFile> = (0..75)
        .map(|i| PullFile::from_patch(&format!("src/f{i:02}.rs"), "@@ -0,0 +1 @@\n+x"))
        .collect();
    fake.set_pull_files(REPO, 1, files);

    let mut url = format!("{}/repos/{REPO}/pulls/1/files?per_page=30", fake.url());
    let mut names = Vec::new();
    let mut page_sizes = Vec::new();
    let mut links = Vec::new();
    loop {
        let response = http()
            .get(&url)
            .header("authorization", format!("token {token}"))
            .send()
            .await
            .expect("page");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        let link = response
            .headers()
            .get("link")
            .map(|l| l.to_str().expect("ascii").to_owned());
        let page: Vec<Value> = response.json().await.expect("JSON array");
        page_sizes.push(page.len());
        names.extend(
            page.iter()
                .map(|f| f["filename"].as_str().expect("filename").to_owned()),
        );
        let next = link.as_deref().and_then(|l| {
            l.split(", ")
                .find(|part| part.ends_with("rel=\"next\""))
                .map(|part| part[1..part.find('>').expect(">")].to_owned())
        });
        links.push(link);
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    assert_eq!(page_sizes, [30, 30, 15]);
    let expected: Vec<String> = (0..75).map(|i| format!("src/f{i:02}.rs")).collect();
    assert_eq!(names, expected);
    let first = links[0].as_deref().expect("page 1 has links");
    assert!(
        first.contains("per_page=30&page=2>; rel=\"next\"")
            && first.contains("page=3>; rel=\"last\""),
        "{first}"
    );
    let second = links[1].as_deref().expect("page 2 has links");
    for rel in ["prev", "next", "last", "first"] {
        assert!(
            second.contains(&format!("rel=\"{rel}\"")),
            "page 2 lacks {rel}: {second}"
        );
    }
    assert!(
        !links[2]
            .as_deref()
            .expect("page 3 has links")
            .contains("rel=\"next\"")
    );
}

#[tokio::test]
async fn fake_github_omits_patch_of_binary_files() {
    let (fake, token) = setup().await;
    let (status, files) = get(
        &fake,
        &format!("/repos/{REPO}/pulls/1/files"),
        Some(&format!("token {token}")),
    )
    .await;
    assert_eq!(status, 200);
    let logo = files
        .as_array()
        .expect("array")
        .iter()
        .find(|f| f["filename"] == "logo.png")
        .expect("logo listed");
    assert!(
        logo.get("patch").is_none(),
        "patch must be absent, not null: {logo}"
    );
    let lib = files
        .as_array()
        .expect("array")
        .iter()
        .find(|f| f["filename"] == "src/lib.rs")
        .expect("lib listed");
    assert_eq!(lib["patch"], LIB_PATCH);
    assert_eq!(
        (
            lib["additions"].as_u64(),
            lib["deletions"].as_u64(),
            lib["changes"].as_u64()
        ),
        (Some(4), Some(2), Some(6))
    );
}

#[test]
fn fake_github_from_diff_splits_like_github() {
    let diff = "\
diff --git a/a.txt b/a.txt
index 1111111..2222222 100644
--- a/a.txt
+++ b/a.txt
@@ -1,2 +1,2 @@
--- not a header
+++ not a header either
 keep
\\ No newline at end of file
diff --git a/new.rs b/new.rs
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/new.rs
@@ -0,0 +1,2 @@
+fn main() {}
+
diff --git a/gone.rs b/gone.rs
deleted file mode 100644
index 4444444..0000000
--- a/gone.rs
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git a/old name.rs b/new name.rs
similarity index 100%
rename from old name.rs
rename to new name.rs
diff --git a/img.png b/img.png
index 5555555..6666666 100644
Binary files a/img.png and b/img.png differ
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
";
    let files = PullFile::from_diff(diff);
    let summary: Vec<_> = files
        .iter()
        .map(|f| {
            (
                f.filename.as_str(),
                f.status.as_str(),
                f.additions,
                f.deletions,
                f.patch.is_some(),
                f.previous_filename.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("a.txt", "modified", 1, 1, true, None),
            ("new.rs", "added", 2, 0, true, None),
            ("gone.rs", "removed", 0, 1, true, None),
            ("new name.rs", "renamed", 0, 0, false, Some("old name.rs")),
            ("img.png", "modified", 0, 0, false, None),
            ("run.sh", "changed", 0, 0, false, None),
        ]
    );
    assert_eq!(
        files[0].patch.as_deref(),
        Some(
            "@@ -1,2 +1,2 @@\n--- not a header\n+++ not a header either\n keep\n\\ No newline at end of file"
        )
    );
    assert_eq!(
        files[1].patch.as_deref(),
        Some("@@ -0,0 +1,2 @@\n+fn main() {}\n+")
    );
}

#[test]
fn fake_github_from_diff_agrees_with_every_scenario_and_big_diff() {
    let Some(scenarios) = test_env::data("scenarios") else {
        return;
    };
    let Some(diffs) = test_env::data("diffs") else {
        return;
    };
    for dir in scenario_dirs(&scenarios) {
        let name = dir.display();
        let meta: Value =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json")).expect("meta"))
                .expect("JSON");
        let diff = String::from_utf8_lossy(&std::fs::read(dir.join("pr.diff")).expect("diff"))
            .into_owned();
        let files = PullFile::from_diff(&diff);
        assert_eq!(
            files.len() as u64,
            meta["files_changed"].as_u64().expect("files_changed"),
            "{name}"
        );
        let changed: u64 = files.iter().map(|f| f.changes).sum();
        assert_eq!(
            changed,
            meta["changed_lines"].as_u64().expect("changed_lines"),
            "{name}"
        );
        for f in &files {
            assert!(!f.filename.is_empty(), "{name}: file without name");
            if let Some(patch) = &f.patch {
                assert!(
                    patch.starts_with("@@ ") && !patch.ends_with('\n'),
                    "{name} {}",
                    f.filename
                );
                assert!(
                    diff.contains(patch.as_str()),
                    "{name} {}: patch is not a slice of the diff",
                    f.filename
                );
            }
        }
    }
    for (file, count, binaries) in [
        ("axum-v0.4.0..v0.8.0.diff", 515, 1),
        ("fmt-7.0.0..9.1.0.diff", 131, 0),
        ("jq-1.5..1.7.diff", 320, 5),
    ] {
        let diff =
            String::from_utf8_lossy(&std::fs::read(diffs.join(file)).expect("diff")).into_owned();
        let files = PullFile::from_diff(&diff);
        assert_eq!(files.len(), count, "{file}");
        let binary = diff
            .lines()
            .filter(|l| l.starts_with("Binary files "))
            .count();
        assert_eq!(binary, binaries, "{file}: test expectation");
        let no_patch = files
            .iter()
            .filter(|f| f.patch.is_none() && f.status != "renamed")
            .count();
        assert_eq!(no_patch, binaries, "{file}");
        let plus = diff
            .lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++ "))
            .count() as u64;
        assert_eq!(
            files.iter().map(|f| f.additions).sum::<u64>(),
            plus,
            "{file}"
        );
    }
}

#[tokio::test]
async fn fake_github_serves_a_scenario() {
    let Some(dir) = scenario_dir("tokio-rs__mini-redis__922919a9d4") else {
        return;
    };
    let fake = FakeGitHub::start().await;
    let scenario = fake.load_scenario(&dir, "tokio-rs/mini-redis", 7, INSTALLATION);
    assert_eq!(scenario.files.len(), 6);
    let token = fake.mint_token(INSTALLATION);
    let auth = format!("token {token}");

    let (status, pr) = get(&fake, "/repos/tokio-rs/mini-redis/pulls/7", Some(&auth)).await;
    assert_eq!(status, 200);
    assert_eq!(pr["head"]["sha"], scenario.head_sha.as_str());
    assert_eq!(pr["base"]["sha"], scenario.base_sha.as_str());
    assert_eq!(pr["title"], scenario.title.as_str());
    assert_eq!(pr["user"]["login"], "octocat");

    // File SHAs are real git blob ids: they match the diff's `index` lines.
    let (_, files) = get(
        &fake,
        "/repos/tokio-rs/mini-redis/pulls/7/files",
        Some(&auth),
    )
    .await;
    let new_file = files
        .as_array()
        .expect("array")
        .iter()
        .find(|f| f["filename"] == "src/cmd/unknown.rs")
        .expect("listed");
    assert_eq!(new_file["status"], "added");
    assert!(
        new_file["sha"]
            .as_str()
            .expect("sha")
            .starts_with("20437b2"),
        "{new_file}"
    );

    // Contents at head decode back to the file; at base it does not exist yet.
    let path = format!(
        "/repos/tokio-rs/mini-redis/contents/src/cmd/unknown.rs?ref={}",
        scenario.head_sha
    );
    let (status, content) = get(&fake, &path, Some(&auth)).await;
    assert_eq!(status, 200, "{content}");
    let encoded = content["content"].as_str().expect("content");
    assert!(encoded.lines().all(|l| l.len() <= 60) && encoded.ends_with('\n'));
    let content: octocrab::models::repos::Content =
        serde_json::from_value(content).expect("octocrab Content");
    let expected =
        std::fs::read_to_string(dir.join("files/head/src/cmd/unknown.rs")).expect("head file");
    assert_eq!(
        content.decoded_content().as_deref(),
        Some(expected.as_str())
    );
    let path = format!(
        "/repos/tokio-rs/mini-redis/contents/src/cmd/unknown.rs?ref={}",
        scenario.base_sha
    );
    assert_eq!(get(&fake, &path, Some(&auth)).await.0, 404);

    // The diff media type gives the PR as one diff that splits back into the same files.
    let diff = http()
        .get(format!("{}/repos/tokio-rs/mini-redis/pulls/7", fake.url()))
        .header("authorization", &auth)
        .header("accept", "application/vnd.github.diff")
        .send()
        .await
        .expect("diff")
        .text()
        .await
        .expect("text");
    assert_eq!(PullFile::from_diff(&diff), scenario.files);
}

fn review_comment(path: &str, line: u64, extra: Value) -> Value {
    let mut c = json!({ "path": path, "line": line, "body": format!("about line {line}") });
    c.as_object_mut()
        .expect("object")
        .extend(extra.as_object().expect("object").clone());
    c
}

#[tokio::test]
async fn fake_github_rejects_whole_review_with_a_line_outside_the_diff() {
    let (fake, token) = setup().await;
    let auth = format!("token {token}");
    let path = format!("/repos/{REPO}/pulls/1/reviews");
    let bad_comments = [
        review_comment("src/lib.rs", 10, json!({})),
        review_comment("src/lib.rs", 23, json!({ "side": "LEFT" })),
        review_comment("src/other.rs", 1, json!({})),
        review_comment("logo.png", 1, json!({})),
    ];
    for bad in bad_comments {
        let body = json!({ "event": "COMMENT", "body": "x", "comments": [review_comment("src/lib.rs", 2, json!({})), bad] });
        let (status, reply) = post(&fake, &path, &auth, &body).await;
        assert_eq!(status, 422, "{bad}: {reply}");
        assert_eq!(reply["message"], "Unprocessable Entity");
        assert!(
            reply["errors"][0]
                .as_str()
                .is_some_and(|e| e.contains("could not be resolved")),
            "{reply}"
        );
    }
    let (status, reply) = post(
        &fake,
        &path,
        &auth,
        &json!({ "event": "SHIP_IT", "body": "x" }),
    )
    .await;
    assert_eq!(status, 422, "{reply}");
    assert!(fake.reviews(REPO, 1).is_empty(), "nothing may be stored");
}

#[tokio::test]
async fn fake_github_rejects_start_line_not_before_line() {
    let (fake, token) = setup().await;
    let auth = format!("token {token}");
    let path = format!("/repos/{REPO}/pulls/1/reviews");
    for (start, end) in [(4, 4), (5, 3), (5, 22)] {
        let body = json!({ "event": "COMMENT", "comments": [review_comment("src/lib.rs", end, json!({ "start_line": start }))] });
        let (status, reply) = post(&fake, &path, &auth, &body).await;
        assert_eq!(status, 422, "start {start} line {end}: {reply}");
    }
    assert!(fake.reviews(REPO, 1).is_empty());
}

#[tokio::test]
async fn fake_github_stores_a_valid_review_with_a_multiline_comment() {
    let (fake, token) = setup().await;
    let auth = format!("token {token}");
    let path = format!("/repos/{REPO}/pulls/1/reviews");
    let body = json!({
        "commit_id": PullRequest::default().head_sha,
        "event": "COMMENT",
        "body": "Looks mostly fine.",
        "comments": [
            review_comment("src/lib.rs", 4, json!({ "start_line": 2, "side": "RIGHT", "start_side": "RIGHT" })),
            review_comment("src/lib.rs", 21, json!({ "side": "LEFT" })),
            { "path": "src/lib.rs", "position": 11, "body": "legacy position" },
        ],
    });
    let (status, reply) = post(&fake, &path, &auth, &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["state"], "COMMENTED");
    assert_eq!(reply["user"]["login"], BOT_LOGIN);
    assert_eq!(reply["user"]["type"], "Bot");
    let review: octocrab::models::pulls::Review =
        serde_json::from_value(reply).expect("octocrab Review");

    let stored = fake.reviews(REPO, 1);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, *review.id);
    let c = &stored[0].comments;
    assert_eq!(c.len(), 3);
    assert_eq!(
        (
            c[0].start_line,
            c[0].line,
            c[0].side.as_str(),
            c[0].position
        ),
        (Some(2), 4, "RIGHT", 5)
    );
    assert_eq!(
        c[0].diff_hunk,
        LIB_PATCH.lines().take(6).collect::<Vec<_>>().join("\n")
    );
    assert_eq!((c[1].line, c[1].side.as_str()), (21, "LEFT"));
    assert_eq!((c[2].line, c[2].side.as_str()), (23, "RIGHT"));

    let (status, listed) = get(&fake, &path, Some(&auth)).await;
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(1)));
    let (status, comments) = get(
        &fake,
        &format!("/repos/{REPO}/pulls/1/comments"),
        Some(&auth),
    )
    .await;
    assert_eq!((status, comments.as_array().map(Vec::len)), (200, Some(3)));
    assert_eq!(comments[0]["start_line"], 2);
}

#[tokio::test]
async fn fake_github_wait_for_reviews_wakes_on_the_review() {
    let (fake, token) = setup().await;
    let poster = fake.clone();
    let started = Instant::now();
    let task = tokio::spawn(async move {
        let body = json!({ "event": "COMMENT", "body": "hello" });
        post(
            &poster,
            &format!("/repos/{REPO}/pulls/1/reviews"),
            &format!("token {token}"),
            &body,
        )
        .await
    });
    let reviews = fake
        .wait_for_reviews(REPO, 1, 1, Duration::from_secs(30))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(reviews[0].body, "hello");
    assert_eq!(task.await.expect("poster").0, 200);

    // Changes made through the API wake waiters too.
    let started = Instant::now();
    let writer = fake.clone();
    tokio::spawn(async move {
        tokio::task::yield_now().await;
        writer.add_issue_comment(REPO, 1, "octocat", "ping");
    });
    let comments = fake
        .wait_for_issue_comments(REPO, 1, 1, Duration::from_secs(30))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(comments[0].user_login, "octocat");
}

#[tokio::test]
#[should_panic(expected = "timed out")]
async fn fake_github_wait_for_reviews_panics_on_timeout() {
    let (fake, _) = setup().await;
    fake.wait_for_reviews(REPO, 1, 1, Duration::from_millis(50))
        .await;
}

#[tokio::test]
async fn fake_github_injects_failures_and_records_them() {
    let (fake, token) = setup().await;
    let auth = format!("token {token}");
    fake.fail_next("GET", &format!("/repos/{REPO}/pulls/1/files"), 502, 2);
    let path = format!("/repos/{REPO}/pulls/1/files");
    let (first, body) = get(&fake, &path, Some(&auth)).await;
    assert!(body["message"].is_string(), "{body}");
    let (second, _) = get(&fake, &path, Some(&auth)).await;
    let (third, _) = get(&fake, &path, Some(&auth)).await;
    assert_eq!([first, second, third], [502, 502, 200]);
    let (other, _) = get(&fake, &format!("/repos/{REPO}/pulls/1"), Some(&auth)).await;
    assert_eq!(other, 200, "the prefix did not match this path");
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [502, 502, 200, 200]);

    let (status, body) = get(&fake, "/no/such/endpoint", Some(&auth)).await;
    assert_eq!((status, body["message"].as_str()), (404, Some("Not Found")));
    assert_eq!(
        fake.requests().last().map(|r| r.path.clone()).as_deref(),
        Some("/no/such/endpoint")
    );
}

#[tokio::test]
async fn fake_github_issue_comments_can_be_created_and_edited() {
    let (fake, token) = setup().await;
    let auth = format!("token {token}");
    let (status, created) = post(
        &fake,
        &format!("/repos/{REPO}/issues/1/comments"),
        &auth,
        &json!({ "body": "first" }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_u64().expect("id");
    let response = http()
        .patch(format!("{}/repos/{REPO}/issues/comments/{id}", fake.url()))
        .header("authorization", &auth)
        .json(&json!({ "body": "edited" }))
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status().as_u16(), 200);
    let (status, _) = post(
        &fake,
        &format!("/repos/{REPO}/issues/1/comments"),
        &auth,
        &json!({ "body": "x".repeat(65_537) }),
    )
    .await;
    assert_eq!(status, 422, "bodies over 65536 characters are rejected");
    let comments = fake.issue_comments(REPO, 1);
    assert_eq!(comments.len(), 1);
    assert_eq!(
        (comments[0].body.as_str(), comments[0].user_login.as_str()),
        ("edited", BOT_LOGIN)
    );
}

/// Drives the fake with octocrab itself: proves its JWTs are accepted, its token is cached, and
/// every response deserializes into octocrab's models.
#[tokio::test]
async fn fake_github_speaks_octocrab() {
    use octocrab::models::{AppId, CommentId, InstallationId};
    let (fake, _) = setup().await;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(
        crate::support::github::app_private_key_pem().as_bytes(),
    )
    .expect("app key");
    let app = octocrab::Octocrab::builder()
        .base_uri(fake.url())
        .expect("base uri")
        .app(AppId(APP_ID), key)
        .build()
        .expect("octocrab");
    let crab = app
        .installation(InstallationId(INSTALLATION))
        .expect("installation client");
    let (owner, name) = REPO.split_once('/').expect("owner/name");

    let repo = crab.repos(owner, name).get().await.expect("get repo");
    assert_eq!(repo.full_name.as_deref(), Some(REPO));
    let pr = crab.pulls(owner, name).get(1).await.expect("get PR");
    assert_eq!(pr.head.sha, PullRequest::default().head_sha);
    assert_eq!(pr.user.as_ref().map(|u| u.login.as_str()), Some("octocat"));

    // octocrab only authenticates absolute page links to api.github.com (see
    // `set_relative_links`); with GitHub's absolute links page 2 would go out without a token.
    fake.set_relative_links(true);
    let many: Vec<PullFile> = (0..45)
        .map(|i| PullFile::from_patch(&format!("f{i}.rs"), "@@ -1 +1 @@\n-a\n+b"))
        .collect();
    fake.set_pull_files(REPO, 1, many);
    let first = crab
        .pulls(owner, name)
        .list_files(1)
        .await
        .expect("files page");
    let files = crab
        .all_pages(first)
        .await
        .unwrap_or_else(|e| panic!("all file pages: {e:?}\n{:#?}", fake.requests()));
    assert_eq!(files.len(), 45);
    assert_eq!(files[44].patch.as_deref(), Some("@@ -1 +1 @@\n-a\n+b"));

    let review: octocrab::models::pulls::Review = crab
        .post(
            format!("/repos/{REPO}/pulls/1/reviews"),
            Some(&json!({ "event": "COMMENT", "body": "ok", "comments": [{ "path": "f3.rs", "line": 1, "body": "b!" }] })),
        )
        .await
        .expect("create review");
    let reviews = crab
        .pulls(owner, name)
        .list_reviews(1)
        .send()
        .await
        .expect("list reviews");
    assert_eq!(reviews.items.len(), 1);
    assert_eq!(reviews.items[0].id, review.id);
    let comments = crab
        .pulls(owner, name)
        .list_comments(Some(1))
        .send()
        .await
        .expect("review comments");
    assert_eq!(comments.items.len(), 1);

    let comment = crab
        .issues(owner, name)
        .create_comment(1, "summary")
        .await
        .expect("create comment");
    crab.issues(owner, name)
        .update_comment(CommentId(*comment.id), "summary v2")
        .await
        .expect("update comment");
    assert_eq!(fake.issue_comments(REPO, 1)[0].body, "summary v2");

    fake.put_content(REPO, "main", "README.md", "hello\n");
    let mut content = crab
        .repos(owner, name)
        .get_content()
        .path("README.md")
        .r#ref("main")
        .send()
        .await
        .expect("content");
    assert_eq!(
        content.take_items()[0].decoded_content().as_deref(),
        Some("hello\n")
    );

    assert_eq!(
        fake.tokens_issued(),
        1,
        "octocrab should reuse its cached token"
    );
    assert!(
        fake.requests().iter().all(|r| r.status < 300),
        "{:#?}",
        fake.requests()
    );
}

async fn send(
    fake: &FakeGitHub,
    method: reqwest::Method,
    path: &str,
    auth: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut request = http()
        .request(method, format!("{}{path}", fake.url()))
        .json(body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.expect("request to fake");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn graphql(fake: &FakeGitHub, token: &str, query: &str, variables: Value) -> Value {
    let (status, body) = send(
        fake,
        reqwest::Method::POST,
        "/graphql",
        Some(&format!("bearer {token}")),
        &json!({ "query": query, "variables": variables }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn fake_github_graphql_needs_a_token_and_answers_only_the_fields_asked_for() {
    let (fake, token) = setup().await;
    let root = fake.add_review_comment(REPO, 1, "octocat", "src/lib.rs", 2, "Why?");
    let reply = fake.add_review_reply(REPO, 1, BOT_LOGIN, root, "Because.");
    let query = r#"{ repository(owner: "octo-org", name: "widgets") { pullRequest(number: 1) {
        threads: reviewThreads(first: 10) { totalCount nodes { __typename id isResolved
        comments(first: 5) { nodes { databaseId author { login } } } } } } } }"#;

    for auth in [
        None,
        Some(format!("Bearer {}", app_jwt())),
        Some("token nope".into()),
    ] {
        let (status, _) = send(
            &fake,
            reqwest::Method::POST,
            "/graphql",
            auth.as_deref(),
            &json!({ "query": query }),
        )
        .await;
        assert_eq!(status, 401, "{auth:?}");
    }

    let body = graphql(&fake, &token, query, Value::Null).await;
    assert_eq!(
        body,
        json!({ "data": { "repository": { "pullRequest": { "threads": {
            "totalCount": 1,
            "nodes": [{
                "__typename": "PullRequestReviewThread",
                "id": format!("PRRT_kwDO{root:010}"),
                "isResolved": false,
                "comments": { "nodes": [
                    { "databaseId": root, "author": { "login": "octocat" } },
                    { "databaseId": reply, "author": { "login": BOT_LOGIN } },
                ] },
            }],
        } } } } }),
        "exactly the selection, aliases honoured"
    );

    // Validation errors: no `data` at all.
    let body = graphql(
        &fake,
        &token,
        "query($n: Int!) { repository(owner: \"octo-org\", name: \"widgets\") { pullRequest(number: $n) { reviewThreads(first: 1) { nodes { nope } } } } }",
        json!({ "n": 1 }),
    )
    .await;
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(
        body["errors"][0]["message"],
        "Field 'nope' doesn't exist on type 'PullRequestReviewThread'"
    );
    let body = graphql(
        &fake,
        &token,
        "{ repository(owner: \"octo-org\", name: \"widgets\") { pullRequest(number: \"1\") { id } } }",
        Value::Null,
    )
    .await;
    assert!(body.get("data").is_none(), "a string is not an Int: {body}");
    let body = graphql(
        &fake,
        &token,
        "{ repository(owner: \"octo-org\" { id } }",
        Value::Null,
    )
    .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Parse error")),
        "{body}"
    );

    // Execution errors: `data` with a null where it failed.
    let pull = |args: &str| {
        format!(
            "{{ repository(owner: \"octo-org\", name: \"widgets\") {{ pullRequest(number: 1) {{ reviewThreads({args}) {{ totalCount }} }} }} }}"
        )
    };
    for (args, kind) in [
        ("first: 101", "EXCESSIVE_PAGINATION"),
        ("after: \"x\"", "MISSING_PAGINATION_BOUNDARIES"),
        ("first: 1, after: \"bogus\"", "INVALID_CURSOR_ARGUMENTS"),
    ] {
        let body = graphql(&fake, &token, &pull(args), Value::Null).await;
        assert_eq!(body["errors"][0]["type"], kind, "{args}: {body}");
        assert_eq!(
            body["data"]["repository"]["pullRequest"]["reviewThreads"],
            Value::Null
        );
    }
    fake.add_repo("other-org/gadgets", 88);
    let body = graphql(
        &fake,
        &token,
        "{ repository(owner: \"other-org\", name: \"gadgets\") { id } }",
        Value::Null,
    )
    .await;
    assert_eq!(body["data"]["repository"], Value::Null);
    assert_eq!(
        body["errors"][0]["type"], "NOT_FOUND",
        "another installation's repo"
    );

    // Enterprise Server layout: GraphQL at /api/graphql, nothing at /api/v3/graphql.
    for (path, expected) in [("/api/graphql", 200), ("/api/v3/graphql", 404)] {
        let (status, _) = send(
            &fake,
            reqwest::Method::POST,
            path,
            Some(&format!("token {token}")),
            &json!({ "query": "{ repository(owner: \"octo-org\", name: \"widgets\") { id } }" }),
        )
        .await;
        assert_eq!(status, expected, "{path}");
    }
}

#[tokio::test]
async fn fake_github_resolves_threads_only_when_the_whole_mutation_is_valid() {
    let (fake, token) = setup().await;
    let root = fake.add_review_comment(REPO, 1, "octocat", "src/lib.rs", 2, "Why?");
    let thread = format!("PRRT_kwDO{root:010}");
    let mutation = |name: &str, selection: &str| {
        format!("mutation($id: ID!) {{ {name}(input: {{ threadId: $id }}) {{ {selection} }} }}")
    };

    let body = graphql(
        &fake,
        &token,
        &mutation("resolveReviewThread", "thread { id nope }"),
        json!({ "id": thread }),
    )
    .await;
    assert!(body.get("data").is_none(), "{body}");
    assert!(
        !fake.thread_resolved(REPO, 1, root),
        "an invalid mutation changes nothing"
    );

    let body = graphql(
        &fake,
        &token,
        &mutation(
            "resolveReviewThread",
            "thread { id isResolved resolvedBy { login } }",
        ),
        json!({ "id": thread }),
    )
    .await;
    assert_eq!(
        body["data"]["resolveReviewThread"]["thread"],
        json!({ "id": thread, "isResolved": true, "resolvedBy": { "login": BOT_LOGIN } })
    );
    assert!(fake.thread_resolved(REPO, 1, root));

    let body = graphql(
        &fake,
        &token,
        &mutation("unresolveReviewThread", "thread { isResolved }"),
        json!({ "id": thread }),
    )
    .await;
    assert_eq!(
        body["data"]["unresolveReviewThread"]["thread"]["isResolved"],
        false
    );
    assert!(!fake.thread_resolved(REPO, 1, root));

    let body = graphql(
        &fake,
        &token,
        &mutation("resolveReviewThread", "thread { id }"),
        json!({ "id": "PRRT_kwDO0000000001" }),
    )
    .await;
    assert_eq!(body["errors"][0]["type"], "NOT_FOUND", "{body}");
    assert_eq!(body["data"]["resolveReviewThread"], Value::Null);
}

#[tokio::test]
async fn fake_github_replies_and_outdated_comments_look_like_githubs() {
    let (fake, token) = setup().await;
    let auth = format!("token {token}");
    let root = fake.add_review_comment(REPO, 1, "octocat", "src/lib.rs", 3, "Why?");
    let (status, reply) = post(
        &fake,
        &format!("/repos/{REPO}/pulls/1/comments/{root}/replies"),
        &auth,
        &json!({ "body": "Because." }),
    )
    .await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["in_reply_to_id"], root);
    assert_eq!(
        (reply["path"].as_str(), reply["line"].as_u64()),
        (Some("src/lib.rs"), Some(3))
    );
    let (status, body) = post(
        &fake,
        &format!("/repos/{REPO}/pulls/1/comments/{root}/replies"),
        &auth,
        &json!({ "body": "" }),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    fake.set_thread_outdated(REPO, 1, root, true);
    let (_, listed) = get(
        &fake,
        &format!("/repos/{REPO}/pulls/1/comments"),
        Some(&auth),
    )
    .await;
    let listed = listed.as_array().expect("array");
    assert_eq!(listed.len(), 2);
    assert!(
        listed[0].get("in_reply_to_id").is_none(),
        "absent on a root"
    );
    for c in listed {
        assert_eq!(
            (c["line"].clone(), c["original_line"].as_u64()),
            (Value::Null, Some(3))
        );
        assert_eq!(c["position"], Value::Null);
    }
    // The reply came with a review of its own, like on GitHub.
    let (_, reviews) = get(
        &fake,
        &format!("/repos/{REPO}/pulls/1/reviews"),
        Some(&auth),
    )
    .await;
    let last = &reviews.as_array().expect("array")[1];
    assert_eq!(
        (
            last["state"].as_str(),
            last["body"].as_str(),
            last["user"]["login"].as_str()
        ),
        (Some("COMMENTED"), Some(""), Some(BOT_LOGIN))
    );
    assert_eq!(reply["pull_request_review_id"], last["id"]);
}

#[tokio::test]
async fn fake_github_check_runs_follow_githubs_rules() {
    let (fake, token) = setup().await;
    let auth = format!("token {token}");
    let path = format!("/repos/{REPO}/check-runs");
    let head = PullRequest::default().head_sha;
    let create = |body: Value| {
        let fake = fake.clone();
        let (path, auth) = (path.clone(), auth.clone());
        async move { post(&fake, &path, &auth, &body).await }
    };

    let (status, _) = send(&fake, reqwest::Method::POST, &path, None, &json!({})).await;
    assert_eq!(status, 401);
    let cases = [
        (json!({ "head_sha": head }), "\"name\" wasn't supplied"),
        (json!({ "name": "c" }), "\"head_sha\" wasn't supplied"),
        (
            json!({ "name": "c", "head_sha": head, "status": "waiting" }),
            "Only GitHub Actions",
        ),
        (
            json!({ "name": "c", "head_sha": head, "status": "done" }),
            "not a member of enum",
        ),
        (
            json!({ "name": "c", "head_sha": head, "conclusion": "stale" }),
            "stale",
        ),
        (
            json!({ "name": "c", "head_sha": head, "status": "completed" }),
            "\"conclusion\" wasn't supplied",
        ),
        (
            json!({ "name": "c", "head_sha": head, "output": { "title": "t" } }),
            "\"summary\" wasn't supplied",
        ),
        (
            json!({ "name": "c", "head_sha": head, "output": { "title": "t", "summary": "s", "text": "x".repeat(65_536) } }),
            "Only 65535 characters are allowed; 65536 were supplied.",
        ),
        (
            json!({ "name": "c", "head_sha": "abc" }),
            "No commit found for SHA: abc",
        ),
    ];
    for (body, message) in cases {
        let (status, answer) = create(body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains(message)),
            "{body}: {answer}"
        );
    }
    assert!(fake.check_runs(REPO).is_empty());

    // A conclusion completes the run whatever the status said.
    let (status, run) = create(json!({
        "name": "Critic", "head_sha": head, "status": "in_progress", "conclusion": "success",
        "output": { "title": "OK", "summary": "All good" },
    }))
    .await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(
        (run["status"].as_str(), run["conclusion"].as_str()),
        (Some("completed"), Some("success"))
    );
    assert_eq!(run["output"]["title"], "OK");
    assert_eq!(run["output"]["text"], Value::Null);
    assert_eq!(run["app"]["slug"], "critic");
    assert_eq!(run["pull_requests"][0]["number"], 1);
    assert!(run["completed_at"].is_string());

    let id = run["id"].as_u64().expect("id");
    let (status, got) = get(&fake, &format!("{path}/{id}"), Some(&auth)).await;
    assert_eq!((status, &got["id"]), (200, &run["id"]));
    let (status, _) = send(
        &fake,
        reqwest::Method::PATCH,
        &format!("{path}/{}", id + 1000),
        Some(&auth),
        &json!({ "status": "in_progress" }),
    )
    .await;
    assert_eq!(status, 404);
    let (status, updated) = send(
        &fake,
        reqwest::Method::PATCH,
        &format!("{path}/{id}"),
        Some(&auth),
        &json!({ "status": "in_progress" }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (updated["status"].as_str(), &updated["conclusion"]),
        (Some("in_progress"), &Value::Null)
    );
    assert_eq!(fake.check_runs(REPO)[0].status, "in_progress");
}

#[tokio::test]
async fn fake_github_compare_statuses_and_enterprise_links() {
    let (fake, token) = setup().await;
    let auth = format!("token {token}");
    fake.set_compare(REPO, "main", "main", Vec::new());
    fake.set_compare_counts(
        REPO,
        "v1",
        "v2",
        vec![PullFile::from_patch("src/lib.rs", LIB_PATCH)],
        3,
        2,
    );
    let (status, same) = get(
        &fake,
        &format!("/repos/{REPO}/compare/main...main"),
        Some(&auth),
    )
    .await;
    assert_eq!(
        (
            status,
            same["status"].as_str(),
            same["total_commits"].as_u64()
        ),
        (200, Some("identical"), Some(0))
    );
    let (_, moved) = get(
        &fake,
        &format!("/repos/{REPO}/compare/v1...v2"),
        Some(&auth),
    )
    .await;
    assert_eq!(
        (
            moved["status"].as_str(),
            moved["ahead_by"].as_u64(),
            moved["behind_by"].as_u64()
        ),
        (Some("diverged"), Some(3), Some(2))
    );
    assert_eq!(moved["commits"].as_array().map(Vec::len), Some(3));
    assert_eq!(moved["files"][0]["patch"], LIB_PATCH);
    let (status, _) = get(
        &fake,
        &format!("/repos/{REPO}/compare/v2...v1"),
        Some(&auth),
    )
    .await;
    assert_eq!(status, 404);

    // Under /api/v3 the Link header keeps the prefix.
    fake.set_pull_files(
        REPO,
        1,
        (0..3)
            .map(|i| PullFile::binary(&format!("f{i}"), "added"))
            .collect(),
    );
    let response = http()
        .get(format!(
            "{}/api/v3/repos/{REPO}/pulls/1/files?per_page=2",
            fake.url()
        ))
        .header("authorization", &auth)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    let link = response.headers()["link"]
        .to_str()
        .expect("link")
        .to_owned();
    assert!(
        link.contains(&format!("{}/api/v3/repositories/", fake.url())),
        "{link}"
    );
}

#[tokio::test]
async fn fake_github_tree_ids_are_the_ones_git_computes() {
    let (fake, token) = setup().await;
    let sha = "6666666666666666666666666666666666666666";
    let files = [
        ("a.txt", "a\n"),
        ("a/b.txt", "b\n"),
        ("a-b/c.txt", "c\n"),
        ("z/y/x.rs", "fn x() {}\n"),
        ("é.md", "accent\n"),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        fake.put_content(REPO, sha, path, text);
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, text).expect("write");
    }
    let git = |args: &[&str]| {
        String::from_utf8(crate::support::git::git(dir.path(), args)).expect("utf-8")
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    let tree = git(&["write-tree"]).trim().to_owned();
    let listing = git(&[
        "-c",
        "core.quotePath=false",
        "ls-tree",
        "-r",
        "-t",
        "--name-only",
        &tree,
    ]);

    let (status, body) = get(
        &fake,
        &format!("/repos/{REPO}/git/trees/{sha}?recursive=1"),
        Some(&format!("token {token}")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sha"], tree.as_str());
    let paths: Vec<&str> = body["tree"]
        .as_array()
        .expect("tree")
        .iter()
        .map(|e| e["path"].as_str().expect("path"))
        .collect();
    assert_eq!(paths, listing.lines().collect::<Vec<_>>());

    // Without `recursive`, only the top level.
    let (_, top) = get(
        &fake,
        &format!("/repos/{REPO}/git/trees/{sha}"),
        Some(&format!("token {token}")),
    )
    .await;
    assert_eq!(top["sha"], tree.as_str());
    assert_eq!(top["tree"].as_array().map(Vec::len), Some(5));
}
