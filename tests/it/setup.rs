//! First run: `critic serve` with no GitHub App registers one through the manifest flow
//! against the fake GitHub, writes its settings, and then reviews with them.

use std::path::Path;
use std::time::Duration;

use crate::support::app::{INSTALLATION, REPO, WAIT, World, payload, signature};
use crate::support::github::{CREATED_WEBHOOK_SECRET, PullRequest};
use crate::support::llm::Reply;

const TOKEN: &str = "setup-token-of-the-test";

/// Critic's settings for a first run: everything but the App.
fn first_run_env(world: &World) -> Vec<(String, String)> {
    world
        .options()
        .unset("CRITIC_GITHUB__APP_ID")
        .unset("CRITIC_GITHUB__PRIVATE_KEY")
        .unset("CRITIC_GITHUB__WEBHOOK_SECRET")
        .set("CRITIC_GITHUB__WEB_URL", &world.github.url())
        .set("CRITIC_SETUP_TOKEN", TOKEN)
        .env
}

/// What a browser reads back from an attribute minijinja escaped.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attribute(html: &str, before: &str) -> String {
    let start = html.find(before).expect("attribute present") + before.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    unescape(&html[start..end])
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

struct Running {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), critic::StartError>>,
}

async fn start(settings_file: &Path, env: Vec<(String, String)>) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let file = settings_file.to_path_buf();
    let task = tokio::spawn(async move {
        critic::serve_or_setup(&file, env, listener, async move {
            let _ = stopped.await;
        })
        .await
    });
    // Up once it serves its first page (the settings are read before that).
    let deadline = tokio::time::Instant::now() + WAIT;
    while !reqwest::get(format!("{base}/healthz"))
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(!task.is_finished(), "critic stopped at start");
        assert!(
            tokio::time::Instant::now() < deadline,
            "critic never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Running {
        base,
        stop: Some(stop),
        task,
    }
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("join").expect("critic ran cleanly");
    }
}

/// Posts the setup form (URL-encoded `body`) to the Critic at `base`.
async fn post_form(
    http: &reqwest::Client,
    base: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    http.post(format!("{base}/setup"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("post /setup")
}

/// "Create" on GitHub's page for the form in `html`: where GitHub sends the browser back.
async fn create_on_github(http: &reqwest::Client, html: &str) -> String {
    let action = attribute(html, "action=\"");
    let manifest = attribute(html, "name=\"manifest\" value=\"");
    let created = http
        .post(&action)
        .form(&[("manifest", manifest)])
        .send()
        .await
        .expect("GitHub's page");
    assert_eq!(created.status(), 302);
    created.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn a_first_run_registers_the_app_writes_its_settings_and_then_reviews() {
    let world = World::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let settings_file = dir.path().join("critic.toml");
    // Settings of the operator's own, the `github` ones as an inline table: all kept.
    let mine = "# mine\ngithub = { timeout_secs = 20 }\n\n[review]\nmax_comments = 7\n";
    std::fs::write(&settings_file, mine).expect("write");
    let critic = start(&settings_file, first_run_env(&world)).await;
    let http = no_redirects();

    // Without the token Critic logged, or from a page that names another host: refused.
    let no_token = http
        .get(format!("{}/", critic.base))
        .send()
        .await
        .expect("get /");
    assert_eq!(no_token.status(), 403);
    let rebound = http
        .get(format!("{}/?token={TOKEN}", critic.base))
        .header("host", "attacker.example:3000")
        .send()
        .await
        .expect("get /");
    assert_eq!(rebound.status(), 403);
    let stolen = post_form(
        &http,
        &critic.base,
        "webhook_url=https%3A%2F%2Fevil.example%2Fwebhook&org=&name=Evil",
    )
    .await;
    assert_eq!(stolen.status(), 403, "the form needs the token too");

    // The setup page, and nothing else, until the App exists.
    let page = http
        .get(format!("{}/?token={TOKEN}", critic.base))
        .send()
        .await
        .expect("get /");
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("html");
    assert!(
        page.contains(&format!(
            "value=\"{}&#x2f;webhook\"",
            critic.base.replace('/', "&#x2f;")
        )) || page.contains(&format!("{}/webhook", critic.base)),
        "{page}"
    );
    let webhook = http
        .post(format!("{}/webhook", critic.base))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(webhook.status(), 503);

    let to_github = post_form(&http, &critic.base, "token=setup-token-of-the-test&webhook_url=https%3A%2F%2Fcritic.example.com%2Fwebhook&org=acme&name=Critic+Test").await;
    assert_eq!(to_github.status(), 200);
    let html = to_github.text().await.expect("html");
    let action = attribute(&html, "action=\"");
    let manifest: serde_json::Value =
        serde_json::from_str(&attribute(&html, "name=\"manifest\" value=\""))
            .expect("manifest JSON");
    let github_web = world.github.url();
    assert!(
        action.starts_with(&format!(
            "{github_web}/organizations/acme/settings/apps/new?state="
        )),
        "{action}"
    );
    assert_eq!(manifest["name"], "Critic Test");
    assert_eq!(
        manifest["hook_attributes"]["url"],
        "https://critic.example.com/webhook"
    );
    assert_eq!(
        manifest["redirect_url"],
        format!("{}/setup/callback", critic.base)
    );
    assert_eq!(manifest["default_permissions"]["pull_requests"], "write");
    assert_eq!(manifest["default_permissions"]["checks"], "write");
    assert_eq!(manifest["public"], false);

    // "Create" on GitHub: it redirects back with a code and the state.
    let back = create_on_github(&http, &html).await;
    assert!(
        back.starts_with(&format!("{}/setup/callback?code=", critic.base)),
        "{back}"
    );

    // A callback whose state this setup did not hand out writes nothing.
    let forged = back.replace("state=", "state=forged");
    let refused = http.get(&forged).send().await.expect("forged");
    assert_eq!(refused.status(), 400);
    assert_eq!(std::fs::read_to_string(&settings_file).expect("read"), mine);

    let done = http.get(&back).send().await.expect("callback");
    assert_eq!(done.status(), 200);
    let done = done.text().await.expect("html");
    assert!(
        done.contains(
            &format!("{github_web}/apps/critic-test/installations/new").replace('/', "&#x2f;")
        ) || done.contains(&format!("{github_web}/apps/critic-test/installations/new")),
        "{done}"
    );

    let written = std::fs::read_to_string(&settings_file).expect("settings");
    assert!(written.starts_with("# mine\n"), "{written}");
    assert!(
        written.contains("[review]\nmax_comments = 7\n"),
        "other keys kept: {written}"
    );
    let parsed: toml::Table = written.parse().expect("TOML");
    assert_eq!(
        parsed["github"]["timeout_secs"].as_integer(),
        Some(20),
        "{written}"
    );
    assert_eq!(
        parsed["github"]["app_id"].as_integer(),
        Some(crate::support::github::APP_ID as i64)
    );
    assert_eq!(
        parsed["github"]["webhook_secret"].as_str(),
        Some(CREATED_WEBHOOK_SECRET)
    );
    let key_file = Path::new(
        parsed["github"]["private_key_file"]
            .as_str()
            .expect("key file"),
    );
    assert!(
        std::fs::read_to_string(key_file)
            .expect("key")
            .contains("PRIVATE KEY")
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&settings_file), 0o600);
        assert_eq!(mode(key_file), 0o600);
    }
    // Now Critic serves, with the new secret, in the same process.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ready = http.get(format!("{}/readyz", critic.base)).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Critic never served after the setup"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The setup is over: its callback is gone, and GitHub's "after installation" page says so.
    let again = http.get(&back).send().await.expect("again");
    assert_eq!(again.status(), 404);
    let installed = http
        .get(format!("{}/setup/installed", critic.base))
        .send()
        .await
        .expect("installed");
    assert_eq!(installed.status(), 200);
    world.github.add_two_line_pull(REPO, 3, None);
    world.llm.push(Reply::findings(
        serde_json::json!([{"path": "a.txt", "line": 2, "body": "Spelling?"}]),
    ));
    let mut event = payload("pull_request.opened.2.json");
    event["number"] = 3.into();
    event["pull_request"]["number"] = 3.into();
    event["pull_request"]["head"]["sha"] = PullRequest::default().head_sha.into();
    event["repository"]["full_name"] = REPO.into();
    event["installation"]["id"] = INSTALLATION.into();
    let body = serde_json::to_vec(&event).expect("json");
    let accepted = http
        .post(format!("{}/webhook", critic.base))
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", "setup-1")
        .header(
            "x-hub-signature-256",
            signature(CREATED_WEBHOOK_SECRET, &body),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("deliver");
    assert_eq!(accepted.status(), 202);
    let reviews = world.github.wait_for_reviews(REPO, 3, 1, WAIT).await;
    assert_eq!(reviews[0].comments.len(), 1);
    world
        .github
        .wait_for_summary(REPO, 3, &PullRequest::default().head_sha, WAIT)
        .await;
    critic.stop().await;
}

#[tokio::test]
async fn a_code_github_refuses_and_a_missing_state_write_nothing() {
    let world = World::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let settings_file = dir.path().join("critic.toml");
    let critic = start(&settings_file, first_run_env(&world)).await;
    let http = no_redirects();

    let no_state = http
        .get(format!("{}/setup/callback?code=x", critic.base))
        .send()
        .await
        .expect("callback");
    assert_eq!(no_state.status(), 400);

    // A state this setup handed out, with a code GitHub does not know (expired, say).
    let to_github = post_form(&http, &critic.base, "token=setup-token-of-the-test&webhook_url=https%3A%2F%2Fcritic.example.com%2Fwebhook&org=&name=Critic").await
        .text()
        .await
        .expect("html");
    let action = attribute(&to_github, "action=\"");
    assert!(
        action.starts_with(&format!("{}/settings/apps/new?state=", world.github.url())),
        "{action}"
    );
    let state = action.split("state=").nth(1).expect("state");
    let refused = http
        .get(format!(
            "{}/setup/callback?code=unknown&state={state}",
            critic.base
        ))
        .send()
        .await
        .expect("callback");
    assert_eq!(refused.status(), 502);
    let text = refused.text().await.expect("html");
    assert!(text.contains("GitHub refused the code (404)"), "{text}");
    assert!(!settings_file.exists(), "nothing written");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "no key file or temporary file left"
    );

    // A bad form is refused with a page, not a crash.
    let bad = post_form(
        &http,
        &critic.base,
        "token=setup-token-of-the-test&webhook_url=ftp%3A%2F%2Fx&name=Critic",
    )
    .await;
    assert_eq!(bad.status(), 400);
    critic.stop().await;
}

#[tokio::test]
async fn settings_that_cannot_be_written_stop_the_setup_before_an_app_is_created() {
    let world = World::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let settings_file = dir.path().join("critic.toml");
    let critic = start(&settings_file, first_run_env(&world)).await;
    // Broken after Critic read it: the setup must not be the one to fix it.
    std::fs::write(&settings_file, "[review\nbroken = ").expect("write");
    let http = no_redirects();
    let refused = post_form(
        &http,
        &critic.base,
        "token=setup-token-of-the-test&webhook_url=https%3A%2F%2Fcritic.example.com%2Fwebhook&name=Critic",
    )
    .await;
    assert_eq!(refused.status(), 500);
    let text = refused.text().await.expect("html");
    assert!(text.contains("so no App was created"), "{text}");
    assert!(
        !text.contains("settings&#x2f;apps&#x2f;new"),
        "no form to GitHub: {text}"
    );
    assert_eq!(
        std::fs::read_to_string(&settings_file).expect("read"),
        "[review\nbroken = "
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        1,
        "no key file or temporary file beside it"
    );
    critic.stop().await;
}

#[tokio::test]
async fn critic_setup_registers_the_app_and_exits() {
    let world = World::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let settings_file = dir.path().join("critic.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_critic"))
        .arg("setup")
        .arg("--config")
        .arg(&settings_file)
        .env_clear()
        .envs(first_run_env(&world))
        .env("CRITIC_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("CRITIC_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn critic setup");
    let http = no_redirects();
    let deadline = tokio::time::Instant::now() + WAIT;
    let page = loop {
        if let Ok(r) = http.get(format!("{base}/?token={TOKEN}")).send().await {
            break r.text().await.expect("html");
        }
        assert!(tokio::time::Instant::now() < deadline, "no setup page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(page.contains("name=\"token\""), "{page}");
    let html = post_form(
        &http,
        &base,
        format!("token={TOKEN}&webhook_url=https%3A%2F%2Fsmee.io%2Fabc&name=Critic"),
    )
    .await
    .text()
    .await
    .expect("html");
    let back = create_on_github(&http, &html).await;
    let done = http
        .get(&back)
        .send()
        .await
        .expect("callback")
        .text()
        .await
        .expect("html");
    assert!(
        done.contains("critic serve"),
        "the page says what to run next: {done}"
    );
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("critic setup exits once the App is registered")
        .expect("wait");
    assert!(status.success(), "{status:?}");
    let written = std::fs::read_to_string(&settings_file).expect("settings written");
    assert!(written.contains("app_id = 4242"), "{written}");
}
