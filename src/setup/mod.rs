//! First run: with no GitHub App configured, `critic serve` serves a page that registers one
//! through GitHub's manifest flow (as Probot apps do) and writes its id, private key and
//! webhook secret beside the settings file; Critic then serves webhooks without a restart.
//! Until then every other path answers 503.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::{Environment, context};
use serde::Deserialize;
use tokio::sync::watch;

use crate::config::Settings;
use crate::github::manifest::{self, CreatedApp};

mod files;

pub use files::write_app;

/// The App's manifest: name, permissions and events; the URLs are filled in per setup.
const MANIFEST: &str = include_str!("../../app-manifest.yml");

const PAGES: &[(&str, &str)] = &[
    ("layout.html", include_str!("pages/layout.html")),
    ("start.html", include_str!("pages/start.html")),
    ("to_github.html", include_str!("pages/to_github.html")),
    ("done.html", include_str!("pages/done.html")),
    ("error.html", include_str!("pages/error.html")),
];

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("app-manifest.yml: {0}")]
    Manifest(String),
    #[error("setup page: {0}")]
    Page(String),
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
}

/// What the setup knows: where to write, which GitHub, and the `state`s it handed out.
pub struct Setup {
    settings_file: PathBuf,
    api_url: url::Url,
    web_url: url::Url,
    public_url: Option<url::Url>,
    webhook_path: String,
    pages: Environment<'static>,
    manifest: serde_json::Value,
    /// The secret part of the setup page's address, logged at start: only someone who can
    /// read Critic's log (the operator) can open the page, so nobody else who reaches the
    /// port, or a page in the operator's browser, can register an App of theirs.
    token: String,
    /// States of the forms sent to GitHub; each is good for one callback.
    states: Mutex<HashSet<String>>,
    /// Whether serving webhooks follows the setup (`critic serve`) or not (`critic setup`).
    serves_after: bool,
    /// Set once the App's settings are written.
    done: watch::Sender<bool>,
}

impl Setup {
    pub fn new(settings: &Settings, settings_file: &Path) -> Result<Setup, SetupError> {
        let manifest: serde_json::Value =
            serde_yaml_ng::from_str(MANIFEST).map_err(|e| SetupError::Manifest(e.to_string()))?;
        let mut pages = Environment::new();
        for (name, text) in PAGES {
            pages
                .add_template(name, text)
                .map_err(|e| SetupError::Page(e.to_string()))?;
        }
        Ok(Setup {
            settings_file: settings_file.to_path_buf(),
            api_url: settings.github.api_url.clone(),
            web_url: settings.github.web_url.clone(),
            public_url: settings.server.public_url.clone(),
            webhook_path: settings.server.webhook_path.clone(),
            pages,
            manifest,
            token: hex::encode(rand::random::<[u8; 16]>()),
            states: Mutex::new(HashSet::new()),
            serves_after: true,
            done: watch::channel(false).0,
        })
    }

    /// A token chosen by the operator (`CRITIC_SETUP_TOKEN`) instead of a random one.
    pub fn with_token(mut self, token: Option<&str>) -> Setup {
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            self.token = token.to_string();
        }
        self
    }

    /// For `critic setup`, which stops once the App is registered.
    pub fn then_stop(mut self) -> Setup {
        self.serves_after = false;
        self
    }

    /// The setup page's address on `listen`, with its token: what the operator opens (on
    /// loopback when Critic listens on every address, as in a container).
    pub fn page_url(&self, listen: SocketAddr) -> String {
        format!(
            "http://{}/?token={}",
            crate::server::local_addr(listen),
            self.token
        )
    }

    fn page(&self, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
        match self.pages.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, page = name, "setup page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "setup page failed").into_response()
            }
        }
    }

    fn error(&self, status: StatusCode, message: &str) -> Response {
        tracing::warn!(%status, message, "setup");
        self.page(status, "error.html", context! { message })
    }

    /// The manifest for this setup: `base` is this server as the browser reaches it.
    fn manifest_for(&self, name: &str, webhook_url: &str, base: &str) -> serde_json::Value {
        let mut m = self.manifest.clone();
        m["name"] = name.into();
        m["hook_attributes"]["url"] = webhook_url.into();
        m["redirect_url"] = format!("{base}/setup/callback").into();
        m["setup_url"] = format!("{base}/setup/installed").into();
        m
    }
}

/// The setup's routes; anything else answers 503 until the App is set up.
pub fn router(setup: Arc<Setup>) -> Router {
    Router::new()
        .route("/", get(start))
        .route("/setup", post(to_github))
        .route("/setup/callback", get(callback))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_set_up)
        .with_state(setup)
}

/// Serves the setup on `listener` until the App is written (true) or `shutdown` (false).
pub async fn serve(
    setup: Arc<Setup>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<bool, SetupError> {
    let mut done = setup.done.subscribe();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let finished = tokio::spawn(async move {
        tokio::select! {
            _ = done.wait_for(|d| *d) => { let _ = stop.send(()); true }
            _ = shutdown => { let _ = stop.send(()); false }
        }
    });
    axum::serve(listener, router(setup))
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .await?;
    Ok(finished.await.unwrap_or(false))
}

async fn not_set_up() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "Critic is not set up yet: open this server's / page to register its GitHub App.\n",
    )
        .into_response()
}

/// This server as the browser reaches it: `server.public_url` when set (it may sit behind a
/// TLS proxy), else `http://HOST`.
fn base_of(setup: &Setup, headers: &HeaderMap) -> String {
    if let Some(url) = &setup.public_url {
        return url.as_str().trim_end_matches('/').to_string();
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:3000");
    format!("http://{host}")
}

#[derive(Deserialize)]
struct Token {
    token: Option<String>,
}

/// The request carries the setup's token and names a host of this machine (a page
/// elsewhere that resolves its own name to 127.0.0.1 does not).
fn refusal(setup: &Setup, token: Option<&str>, headers: &HeaderMap) -> Option<Response> {
    if token != Some(setup.token.as_str()) {
        return Some(setup.error(
            StatusCode::FORBIDDEN,
            "Open the setup page with the address Critic logged at start (it carries a token).",
        ));
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let public = setup.public_url.as_ref().and_then(|u| u.host_str());
    let local = matches!(name, "127.0.0.1" | "localhost" | "[::1]") || Some(name) == public;
    if !local {
        return Some(setup.error(
            StatusCode::FORBIDDEN,
            "The setup page answers only on this machine's own address (127.0.0.1, localhost) or server.public_url.",
        ));
    }
    None
}

async fn start(
    State(setup): State<Arc<Setup>>,
    Query(q): Query<Token>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&setup, q.token.as_deref(), &headers) {
        return refused;
    }
    let webhook_url = match &setup.public_url {
        Some(url) => format!(
            "{}{}",
            url.as_str().trim_end_matches('/'),
            setup.webhook_path
        ),
        None => format!("{}{}", base_of(&setup, &headers), setup.webhook_path),
    };
    setup.page(
        StatusCode::OK,
        "start.html",
        context! {
            webhook_url,
            token => setup.token.clone(),
            settings_file => setup.settings_file.display().to_string(),
        },
    )
}

#[derive(Deserialize)]
struct StartForm {
    #[serde(default)]
    token: Option<String>,
    webhook_url: String,
    #[serde(default)]
    org: String,
    name: String,
}

async fn to_github(State(setup): State<Arc<Setup>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: StartForm = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => {
            return setup.error(
                StatusCode::BAD_REQUEST,
                &format!("The form could not be read: {e}"),
            );
        }
    };
    if let Some(refused) = refusal(&setup, form.token.as_deref(), &headers) {
        return refused;
    }
    // Checked before anyone creates an App on GitHub that could then not be recorded.
    if let Err(e) = files::can_write(&setup.settings_file) {
        return setup.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("The settings could not be written, so no App was created: {e}"),
        );
    }
    let webhook_ok =
        url::Url::parse(&form.webhook_url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if !webhook_ok {
        return setup.error(
            StatusCode::BAD_REQUEST,
            "The webhook URL must be an http(s) URL.",
        );
    }
    let org = form.org.trim();
    let org_ok = org.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let name = form.name.trim();
    if !org_ok || name.is_empty() {
        return setup.error(
            StatusCode::BAD_REQUEST,
            "The organisation is a GitHub login (letters, digits and hyphens) and the App needs a name.",
        );
    }
    let state = hex::encode(rand::random::<[u8; 16]>());
    if let Ok(mut states) = setup.states.lock() {
        if states.len() >= MAX_STATES {
            states.clear();
        }
        states.insert(state.clone());
    }
    let web = setup.web_url.as_str().trim_end_matches('/');
    let action = if org.is_empty() {
        format!("{web}/settings/apps/new?state={state}")
    } else {
        format!("{web}/organizations/{org}/settings/apps/new?state={state}")
    };
    let manifest = setup.manifest_for(name, &form.webhook_url, &base_of(&setup, &headers));
    setup.page(
        StatusCode::OK,
        "to_github.html",
        context! { action, manifest => manifest.to_string(), name, org },
    )
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
}

async fn callback(State(setup): State<Arc<Setup>>, Query(q): Query<Callback>) -> Response {
    let known = q
        .state
        .as_ref()
        .is_some_and(|s| setup.states.lock().is_ok_and(|mut states| states.remove(s)));
    if !known {
        return setup.error(
            StatusCode::BAD_REQUEST,
            "This link did not come from this setup (its state is missing or unknown), so nothing was written.",
        );
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return setup.error(
            StatusCode::BAD_REQUEST,
            "GitHub sent no code, so nothing was written.",
        );
    };
    let app: CreatedApp = match manifest::convert(&setup.api_url, &code).await {
        Ok(app) => app,
        Err(e) => return setup.error(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    let key_file = match write_app(&setup.settings_file, &app) {
        Ok(key_file) => key_file,
        Err(e) => {
            return setup.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("The App was created on GitHub but its settings could not be written: {e}. Nothing was changed here; delete the App on GitHub and start again."),
            );
        }
    };
    let web = setup.web_url.as_str().trim_end_matches('/');
    let install_url = format!("{web}/apps/{}/installations/new", app.slug);
    tracing::info!(app_id = app.id, slug = %app.slug, %install_url, "GitHub App registered; install it next");
    let page = setup.page(
        StatusCode::OK,
        "done.html",
        context! {
            slug => app.slug,
            app_id => app.id,
            install_url,
            settings_file => setup.settings_file.display().to_string(),
            key_file => key_file.display().to_string(),
            serves_after => setup.serves_after,
        },
    );
    setup.done.send_replace(true);
    page
}

/// More forms sent to GitHub than anyone completes: older states are forgotten.
const MAX_STATES: usize = 32;
