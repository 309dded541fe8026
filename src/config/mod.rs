//! Server settings: built-in defaults < a TOML file (`--config`) < `CRITIC_*` environment.
//!
//! Environment keys use `__` between levels: `CRITIC_GITHUB__APP_ID` is `github.app_id`,
//! `CRITIC_GITHUB__WEBHOOK_SECRET=a,b` is a list of two secrets (rotation).
//! Secrets may come from files (`github.private_key_file`, `github.webhook_secret_file`,
//! `llm.api_key_file`) and are held in [`SecretString`], which never prints its value.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub mod globs;
pub mod llm;
pub mod repo;
mod review;

pub use llm::{
    DEFAULT_ENDPOINT_NAME, Endpoint, LlmConfig, LlmSettings, Price, ProviderKind, StructuredOutput,
};
pub use review::{ReviewSettings, ScopeLines, Suggestions, VerifyContext, small_model};

/// A setting that cannot be used; names the key so an operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid setting `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("cannot read settings: {0}")]
    Load(String),
}

impl ConfigError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// All server settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub github: GithubSettings,
    pub llm: LlmSettings,
    pub store: StoreSettings,
    pub worker: WorkerSettings,
    pub review: ReviewSettings,
    pub commands: CommandSettings,
    pub tests: TestSettings,
    #[serde(default)]
    pub log: LogSettings,
}

/// `/test --verify`: suggested tests pushed to a branch for the repository's own CI to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSettings {
    /// Allow `/test --verify`. Off by default: the App then needs `contents: write` (to push
    /// the branch) and `statuses: read`, and `actions: read` to read failed jobs' logs.
    pub verify_in_ci: bool,
    /// How long to wait for the checks of the pushed tests, seconds (each round).
    pub verify_timeout_secs: u64,
    /// How often the checks are looked at while they run, seconds.
    pub verify_poll_secs: u64,
}

/// How Critic logs (the level is `CRITIC_LOG`, an `EnvFilter` directive).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    #[serde(default)]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Lines for people, each with its span's fields (job, delivery, repository, PR, head).
    #[default]
    Text,
    /// One JSON object per line, the same fields under `span` and `spans`, for log stores.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSettings {
    /// Answer slash commands (`/review`, `/describe`, `/ask`, ...) in PR comments.
    pub enabled: bool,
    /// Who may run them, by GitHub's `author_association` of the comment: by default the
    /// repository's owner, organisation members and collaborators, so nobody outside can
    /// spend the organisation's model budget.
    pub allowed: Vec<String>,
    /// Besides `allowed`, the role on the repository a commenter needs (checked with GitHub
    /// and cached for minutes): organisation members with read access to a private repository
    /// are `MEMBER`s too. Off unless set; `true` means `write`.
    #[serde(default)]
    pub require_permission: RequiredPermission,
    /// Commands and thread replies one person may run per hour in an installation (those that
    /// call the model); past it they get one reply and no model call. 0: no limit.
    pub per_user_per_hour: u32,
    /// Other bots' commands: never answered as a misspelling of one of Critic's (`/preview`
    /// is not `/review` mistyped).
    pub others: Vec<String>,
}

/// `commands.require_permission`: off, or the least role a commenter needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequiredPermission(pub Option<crate::domain::Permission>);

impl<'de> Deserialize<'de> for RequiredPermission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::domain::Permission;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Name(String),
        }
        let name = match Raw::deserialize(d)? {
            Raw::Flag(on) => return Ok(RequiredPermission(on.then_some(Permission::Write))),
            Raw::Name(name) => name.trim().to_ascii_lowercase(),
        };
        match name.as_str() {
            "true" => Ok(RequiredPermission(Some(Permission::Write))),
            "false" | "" | "none" | "off" => Ok(RequiredPermission(None)),
            other => match Permission::from_name(other) {
                Some(p) => Ok(RequiredPermission(Some(p))),
                None => Err(serde::de::Error::custom(format!(
                    "{other:?} is not a role: read, triage, write, maintain or admin (or true for write, false for off)"
                ))),
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the HTTP server binds to.
    pub listen: SocketAddr,
    /// Path GitHub delivers webhooks to.
    pub webhook_path: String,
    /// Largest webhook body accepted; GitHub caps payloads at 25 MiB.
    pub max_body_bytes: usize,
    /// Where GitHub reaches this server (`https://critic.example.com`): the setup page's
    /// default for the App's webhook URL.
    #[serde(default)]
    pub public_url: Option<url::Url>,
    /// A smee.io-style channel to take deliveries from (server-sent events), for a Critic
    /// that GitHub cannot reach: the App's webhook URL is then the channel's.
    #[serde(default)]
    pub webhook_proxy_url: Option<url::Url>,
    /// A second address serving only `/metrics` (and `/healthz`), for a scraper on an
    /// internal network; when set, the main listener does not serve `/metrics`.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSettings {
    /// REST API base: `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise Server.
    pub api_url: url::Url,
    /// GitHub's web pages: `https://github.com`, or `https://HOST` for GitHub Enterprise
    /// Server (where the setup registers the App).
    pub web_url: url::Url,
    pub app_id: Option<u64>,
    pub private_key: Option<SecretString>,
    pub private_key_file: Option<PathBuf>,
    /// One secret, or several while rotating.
    #[serde(default)]
    pub webhook_secret: OneOrMany,
    pub webhook_secret_file: Option<PathBuf>,
    /// Timeout of one GitHub API call, seconds.
    pub timeout_secs: u64,
    /// Retries of one call that GitHub answered with a server error, a rate limit or not at
    /// all; a job fails only when a call still fails after these.
    pub max_retries: u32,
    /// First wait before retrying a server error, milliseconds; doubled each retry (with
    /// jitter), at most ten seconds.
    pub retry_base_ms: u64,
    /// Longest rate-limit wait (`Retry-After`, `x-ratelimit-reset`) a call sleeps through;
    /// a longer one puts the job back in the queue until the limit lifts.
    pub max_retry_wait_secs: u64,
}

/// A setting that takes one value or a list (TOML string or array; env `a,b`).
#[derive(Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    #[default]
    None,
    One(SecretString),
    Many(Vec<SecretString>),
}

impl std::fmt::Debug for OneOrMany {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} secret(s) REDACTED]", self.clone().into_vec().len())
    }
}

impl OneOrMany {
    fn into_vec(self) -> Vec<SecretString> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `sqlite://PATH` (embedded, default) or `postgres://...`.
    pub url: String,
    /// Deliveries and finished jobs older than this many days are deleted.
    pub retention_days: u64,
    /// The PostgreSQL password, read from this file into `url` (which then names no
    /// password), so that it can be a mounted secret like the others.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// The store URL may carry a database password: show it without.
impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = match url::Url::parse(&self.url) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("REDACTED"));
                u.to_string()
            }
            _ => self.url.clone(),
        };
        f.debug_struct("StoreSettings")
            .field("url", &url)
            .field("retention_days", &self.retention_days)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// Jobs run at once by this process.
    pub concurrency: usize,
    /// A running job's lease, seconds. Its worker renews it every third of this while the
    /// job runs (however long a model call takes), so a job whose process died is taken
    /// again within one lease.
    pub lease_secs: u64,
    /// Attempts before a job is marked dead. A GitHub outage costs one attempt however
    /// long it lasts, and a rate limit none.
    pub max_attempts: u32,
    /// Longest GitHub outage a job waits through before it is marked dead, seconds.
    pub max_outage_secs: u64,
    /// First retry delay, seconds; doubles on each attempt (with jitter), capped at one hour.
    pub retry_base_secs: u64,
    /// How often idle workers look for due jobs, milliseconds (new jobs also wake them at once).
    pub poll_interval_ms: u64,
}

const DEFAULTS: &str = r#"
[server]
listen = "127.0.0.1:3000"
webhook_path = "/webhook"
max_body_bytes = 26214400

[github]
api_url = "https://api.github.com"
web_url = "https://github.com"
timeout_secs = 30
max_retries = 4
retry_base_ms = 1000
max_retry_wait_secs = 60

[llm]
max_concurrent_per_installation = 4
max_retries = 3
max_retry_wait_secs = 60

[store]
url = "sqlite://critic.db"
retention_days = 30

[worker]
concurrency = 4
lease_secs = 30
max_attempts = 5
max_outage_secs = 21600
retry_base_secs = 5
poll_interval_ms = 1000

[review]
review_drafts = false
budget_tokens = 12000
max_chunks = 4
extra_lines = 3
max_scope_lines = "auto"
ignore = []
enabled = true
skip_bots = true
skip_authors = []
skip_labels = []
skip_title_markers = ["[skip review]", "[skip critic]"]
min_severity = "warning"
resolve_addressed = false
fail_on_critical = false
coalesce_secs = 10
verify = true
verify_context = "auto"
min_confidence = 7
suggest_tests = false
suggestions = "auto"

[tests]
verify_in_ci = false
verify_timeout_secs = 1800
verify_poll_secs = 30

[commands]
enabled = true
allowed = ["OWNER", "MEMBER", "COLLABORATOR"]
per_user_per_hour = 20
others = ["deploy", "assign", "unassign", "label", "unlabel", "retest", "rerun", "preview", "approve", "lgtm", "hold", "unhold", "close", "reopen", "cc", "uncc", "merge", "rebase", "ok-to-test", "retitle", "lint", "format", "bench", "benchmark", "backport", "cherry-pick", "text", "resolve", "unresolve"]
"#;

impl Settings {
    /// The built-in defaults alone (no file, no environment); for tests of pure decisions.
    pub fn defaults() -> Result<Settings, ConfigError> {
        config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(map_config_error)
    }
}

/// Settings after loading: secrets read from files, every value checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub app_id: u64,
    pub private_key: SecretString,
    pub webhook_secrets: Vec<SecretString>,
    /// Model endpoints, tasks, prices and budget, resolved.
    pub llm: LlmConfig,
}

impl Config {
    /// Loads defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Config::load`] with an explicit environment (tests pass their own).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::check(Self::read(file, env)?)
    }

    /// Defaults, then the file, then the environment, not yet checked.
    fn read(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut env: std::collections::HashMap<String, String> = env
            .into_iter()
            // Settings are CRITIC_SECTION__KEY; CRITIC_LOG and CRITIC_CONFIG are not settings.
            .filter(|(k, _)| k.starts_with("CRITIC_") && k.contains("__"))
            .collect();
        // In the environment, a comma separates the items of a list setting.
        let env_secrets = env
            .remove("CRITIC_GITHUB__WEBHOOK_SECRET")
            .map(|v| split_list(&v));
        let env_lists: Vec<(&str, Vec<String>)> = [
            ("CRITIC_REVIEW__IGNORE", "review.ignore"),
            ("CRITIC_REVIEW__SKIP_AUTHORS", "review.skip_authors"),
            ("CRITIC_REVIEW__SKIP_LABELS", "review.skip_labels"),
            (
                "CRITIC_REVIEW__SKIP_TITLE_MARKERS",
                "review.skip_title_markers",
            ),
            ("CRITIC_LLM__FALLBACK", "llm.fallback"),
            ("CRITIC_COMMANDS__ALLOWED", "commands.allowed"),
            ("CRITIC_COMMANDS__OTHERS", "commands.others"),
        ]
        .into_iter()
        .filter_map(|(var, key)| env.remove(var).map(|v| (key, split_list(&v))))
        .collect();
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::Load(format!("cannot read config file {}: {e}", path.display()))
            })?;
            builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("CRITIC")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(false)
                .source(Some(env.into_iter().collect())),
        );
        if let Some(secrets) = env_secrets {
            builder = builder
                .set_override("github.webhook_secret", secrets)
                .map_err(map_config_error)?;
        }
        for (key, list) in env_lists {
            builder = builder.set_override(key, list).map_err(map_config_error)?;
        }
        let raw = builder.build().map_err(map_config_error)?;
        raw.try_deserialize().map_err(map_config_error)
    }

    fn check(settings: Settings) -> Result<Config, ConfigError> {
        let (app_id, private_key, webhook_secrets) = Self::app(&settings)?;
        let (settings, llm) = Self::check_without_app(settings)?;
        Ok(Config {
            app_id,
            private_key,
            webhook_secrets,
            llm,
            settings,
        })
    }

    /// The settings a review without GitHub needs (`critic review` on a local change): the
    /// same file and environment, every value checked, but no GitHub App.
    pub fn load_without_app(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Settings, LlmConfig), ConfigError> {
        Self::check_without_app(Self::read(file, env)?)
    }

    /// The GitHub App's id, key and webhook secrets, each required.
    #[allow(clippy::type_complexity)]
    fn app(settings: &Settings) -> Result<(u64, SecretString, Vec<SecretString>), ConfigError> {
        let gh = &settings.github;
        let app_id = gh.app_id.filter(|id| *id > 0).ok_or_else(|| {
            ConfigError::invalid("github.app_id", "required: the GitHub App's numeric id")
        })?;
        let private_key = secret_from(
            "github.private_key",
            gh.private_key.clone(),
            gh.private_key_file.as_deref(),
            false,
        )?
        .ok_or_else(|| {
            ConfigError::invalid(
                "github.private_key",
                "required: the App's PEM private key (or github.private_key_file)",
            )
        })?;
        if jsonwebtoken::EncodingKey::from_rsa_pem(private_key.expose_secret().as_bytes()).is_err()
        {
            return Err(ConfigError::invalid(
                "github.private_key",
                "not an RSA private key in PEM form",
            ));
        }
        let mut webhook_secrets = gh.webhook_secret.clone().into_vec();
        if let Some(s) = secret_from(
            "github.webhook_secret",
            None,
            gh.webhook_secret_file.as_deref(),
            true,
        )? {
            webhook_secrets.push(s);
        }
        webhook_secrets.retain(|s| !s.expose_secret().is_empty());
        if webhook_secrets.is_empty() {
            return Err(ConfigError::invalid(
                "github.webhook_secret",
                "required: the webhook secret set on the GitHub App (or github.webhook_secret_file)",
            ));
        }
        Ok((app_id, private_key, webhook_secrets))
    }

    /// Every setting but the GitHub App's credentials, checked.
    fn check_without_app(mut settings: Settings) -> Result<(Settings, LlmConfig), ConfigError> {
        let gh = &settings.github;
        if !matches!(gh.api_url.scheme(), "http" | "https") {
            return Err(ConfigError::invalid(
                "github.api_url",
                "must be an http(s) URL",
            ));
        }
        if gh.timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "github.timeout_secs",
                "must be at least 1",
            ));
        }
        if gh.max_retries > 20 {
            return Err(ConfigError::invalid(
                "github.max_retries",
                "must be at most 20 (a call's retries back off up to ten seconds each)",
            ));
        }
        let s = &settings.server;
        let path_ok = s.webhook_path.starts_with('/')
            && s.webhook_path.len() > 1
            && !s.webhook_path.contains(['{', '}', '*', '?', '#', ' '])
            && !["/healthz", "/readyz"].contains(&s.webhook_path.as_str());
        if !path_ok {
            return Err(ConfigError::invalid(
                "server.webhook_path",
                "must be a plain path such as `/webhook` (no `{`, `}`, `*`, `?`; not /healthz or /readyz)",
            ));
        }
        if s.metrics_listen
            .is_some_and(|m| m.port() == s.listen.port() && m.port() != 0)
        {
            return Err(ConfigError::invalid(
                "server.metrics_listen",
                "must be another port than server.listen (unset it to serve /metrics there)",
            ));
        }
        if s.max_body_bytes == 0 {
            return Err(ConfigError::invalid(
                "server.max_body_bytes",
                "must be at least 1",
            ));
        }
        let llm = llm::resolve(&settings.llm)?;
        let url = &settings.store.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(ConfigError::invalid(
                "store.url",
                "must be `sqlite://PATH` or `postgres://...`",
            ));
        }
        if let Some(path) = settings.store.password_file.take() {
            settings.store.url = with_password(&settings.store.url, &path)?;
        }
        if settings.store.retention_days == 0 {
            return Err(ConfigError::invalid(
                "store.retention_days",
                "must be at least 1",
            ));
        }
        let r = &settings.review;
        if r.budget_tokens < 1000 {
            return Err(ConfigError::invalid(
                "review.budget_tokens",
                "must be at least 1000",
            ));
        }
        if r.max_chunks == 0 {
            return Err(ConfigError::invalid(
                "review.max_chunks",
                "must be at least 1",
            ));
        }
        if r.coalesce_secs > 3600 {
            return Err(ConfigError::invalid(
                "review.coalesce_secs",
                "must be at most 3600 (an hour)",
            ));
        }
        let t = &settings.tests;
        if !(1..=21_600).contains(&t.verify_timeout_secs) {
            return Err(ConfigError::invalid(
                "tests.verify_timeout_secs",
                "must be from 1 to 21600 (six hours)",
            ));
        }
        if !(1..=600).contains(&t.verify_poll_secs) {
            return Err(ConfigError::invalid(
                "tests.verify_poll_secs",
                "must be from 1 to 600",
            ));
        }
        if r.min_confidence > 10 {
            return Err(ConfigError::invalid(
                "review.min_confidence",
                "must be from 0 to 10",
            ));
        }
        if let Err(e) = globs::IgnoreGlobs::new(&r.ignore) {
            return Err(ConfigError::invalid("review.ignore", e.to_string()));
        }
        let w = &settings.worker;
        if w.concurrency == 0 || w.concurrency > 1024 {
            return Err(ConfigError::invalid(
                "worker.concurrency",
                "must be between 1 and 1024",
            ));
        }
        if w.lease_secs == 0 {
            return Err(ConfigError::invalid(
                "worker.lease_secs",
                "must be at least 1",
            ));
        }
        if w.max_attempts == 0 {
            return Err(ConfigError::invalid(
                "worker.max_attempts",
                "must be at least 1",
            ));
        }
        if w.poll_interval_ms == 0 {
            return Err(ConfigError::invalid(
                "worker.poll_interval_ms",
                "must be at least 1",
            ));
        }
        Ok((settings, llm))
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.settings.worker.lease_secs)
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A secret given inline or as a file, never both.
fn secret_from(
    key: &str,
    inline: Option<SecretString>,
    file: Option<&Path>,
    trim: bool,
) -> Result<Option<SecretString>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            key,
            format!("set either `{key}` or `{key}_file`, not both"),
        )),
        (Some(s), None) => Ok(Some(s)),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::invalid(
                    &format!("{key}_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let text = if trim { text.trim().to_string() } else { text };
            Ok(Some(SecretString::from(text)))
        }
        (None, None) => Ok(None),
    }
}

/// `url` with the password in `file` (`store.password_file`), percent-encoded as a URL's
/// user info must be. Only for PostgreSQL, and only when the URL has no password of its own.
fn with_password(url: &str, file: &Path) -> Result<String, ConfigError> {
    const KEY: &str = "store.password_file";
    // Only the line end is not the password's (PostgreSQL's image strips no more either).
    let password = secret_from("store.password", None, Some(file), false)?
        .map(|s| s.expose_secret().trim_end_matches(['\n', '\r']).to_string())
        .unwrap_or_default();
    if password.is_empty() {
        return Err(ConfigError::invalid(
            KEY,
            format!("{} is empty", file.display()),
        ));
    }
    let mut parsed = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "postgres" | "postgresql") && u.has_host())
        .ok_or_else(|| {
            ConfigError::invalid(
                KEY,
                "is for PostgreSQL: store.url must be postgres://USER@HOST/DB",
            )
        })?;
    if parsed.password().is_some() {
        return Err(ConfigError::invalid(
            KEY,
            "store.url already has a password: set one or the other",
        ));
    }
    if parsed.username().is_empty() {
        return Err(ConfigError::invalid(
            KEY,
            "store.url names no user to go with the password (postgres://USER@HOST/DB)",
        ));
    }
    // Encoded here in full, all but RFC 3986's unreserved characters: `set_password` leaves
    // `%` as it is, and sqlx decodes it.
    const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(&password, USERINFO).to_string();
    parsed
        .set_password(Some(&encoded))
        .map_err(|()| ConfigError::invalid(KEY, "store.url cannot carry a password"))?;
    Ok(parsed.to_string())
}

/// The config crate names the key in most of its errors; keep its words but say what failed.
fn map_config_error(e: config::ConfigError) -> ConfigError {
    match e {
        config::ConfigError::Type {
            key: Some(key),
            unexpected,
            expected,
            ..
        } => ConfigError::Invalid {
            key,
            message: format!("expected {expected}, found {unexpected}"),
        },
        config::ConfigError::At {
            error,
            key: Some(key),
            ..
        } => ConfigError::Invalid {
            key,
            message: error.to_string(),
        },
        other => ConfigError::Load(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../tests/support/keys/test-app.pem");

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn base() -> Vec<(String, String)> {
        env(&[
            ("CRITIC_GITHUB__APP_ID", "7"),
            ("CRITIC_GITHUB__PRIVATE_KEY", KEY),
            ("CRITIC_GITHUB__WEBHOOK_SECRET", "s3cret"),
            ("CRITIC_LOG", "debug"),
            ("CRITIC_CONFIG", "/nowhere.toml"),
        ])
    }

    #[test]
    fn metrics_listen_must_be_another_port() {
        let with = |addr: &str| {
            let mut e = base();
            e.push(("CRITIC_SERVER__LISTEN".into(), "0.0.0.0:3000".into()));
            e.push(("CRITIC_SERVER__METRICS_LISTEN".into(), addr.into()));
            Config::load_from(None, e)
        };
        let err = with("127.0.0.1:3000").expect_err("same port").to_string();
        assert!(err.contains("server.metrics_listen"), "{err}");
        let ok = with("0.0.0.0:9100").expect("another port");
        assert_eq!(
            ok.settings.server.metrics_listen.map(|a| a.port()),
            Some(9100)
        );
        assert!(with("not an address").is_err());
    }

    #[test]
    fn require_permission_is_off_by_default_true_means_write_and_a_typo_is_refused() {
        use crate::domain::Permission;
        let with = |value: Option<&str>| {
            let mut e = base();
            if let Some(v) = value {
                e.push(("CRITIC_COMMANDS__REQUIRE_PERMISSION".into(), v.into()));
            }
            Config::load_from(None, e).map(|c| c.settings.commands)
        };
        let defaults = with(None).expect("valid");
        assert_eq!(defaults.require_permission.0, None);
        assert_eq!(defaults.per_user_per_hour, 20);
        for (value, want) in [
            ("true", Some(Permission::Write)),
            ("false", None),
            ("Maintain", Some(Permission::Maintain)),
            ("triage", Some(Permission::Triage)),
        ] {
            assert_eq!(with(Some(value)).expect(value).require_permission.0, want);
        }
        let err = with(Some("wirte")).expect_err("a typo").to_string();
        assert!(
            err.contains("require_permission") && err.contains("wirte"),
            "{err}"
        );
        // In a settings file, a boolean reads the same.
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("critic.toml");
        std::fs::write(&file, "[commands]\nrequire_permission = true\n").expect("write");
        let c = Config::load_from(Some(&file), base()).expect("valid");
        assert_eq!(
            c.settings.commands.require_permission.0,
            Some(Permission::Write)
        );
    }

    #[test]
    fn max_findings_is_max_comments_and_defaults_to_eight() {
        let c = Config::load_from(None, base()).expect("valid");
        assert_eq!(c.settings.review.max_comments, 8);
        let mut e = base();
        e.push(("CRITIC_REVIEW__MAX_FINDINGS".into(), "5".into()));
        let c = Config::load_from(None, e).expect("valid");
        assert_eq!(c.settings.review.max_comments, 5);
        let mut e = base();
        e.push(("CRITIC_REVIEW__MIN_CONFIDENCE".into(), "11".into()));
        let err = Config::load_from(None, e).expect_err("0-10").to_string();
        assert!(err.contains("review.min_confidence"), "{err}");
    }

    #[test]
    fn max_scope_lines_is_auto_or_a_number_and_refuses_anything_else() {
        let c = Config::load_from(None, base()).expect("valid");
        assert_eq!(c.settings.review.max_scope_lines, ScopeLines::Auto);
        for (value, want) in [
            ("0", ScopeLines::Lines(0)),
            ("120", ScopeLines::Lines(120)),
            ("auto", ScopeLines::Auto),
        ] {
            let mut e = base();
            e.push(("CRITIC_REVIEW__MAX_SCOPE_LINES".into(), value.into()));
            let c = Config::load_from(None, e).expect(value);
            assert_eq!(c.settings.review.max_scope_lines, want);
        }
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("critic.toml");
        std::fs::write(&file, "[review]\nmax_scope_lines = 80\n").expect("write");
        let c = Config::load_from(Some(&file), base()).expect("a TOML integer");
        assert_eq!(c.settings.review.max_scope_lines, ScopeLines::Lines(80));
        for bad in ["-1", "lots", "5000000000"] {
            let mut e = base();
            e.push(("CRITIC_REVIEW__MAX_SCOPE_LINES".into(), bad.into()));
            let err = Config::load_from(None, e).expect_err(bad).to_string();
            assert!(err.contains("max_scope_lines"), "{bad}: {err}");
        }
    }

    #[test]
    fn suggestions_are_true_false_or_auto_and_auto_asks_none_of_a_small_model() {
        let c = Config::load_from(None, base()).expect("valid");
        assert_eq!(c.settings.review.suggestions, Suggestions::Auto);
        for (value, want) in [
            ("true", Suggestions::Set(true)),
            ("false", Suggestions::Set(false)),
            ("auto", Suggestions::Auto),
            // As the `config` crate reads a boolean from the environment.
            ("TRUE", Suggestions::Set(true)),
            ("off", Suggestions::Set(false)),
            ("0", Suggestions::Set(false)),
            ("yes", Suggestions::Set(true)),
        ] {
            let mut e = base();
            e.push(("CRITIC_REVIEW__SUGGESTIONS".into(), value.into()));
            let c = Config::load_from(None, e).expect(value);
            assert_eq!(c.settings.review.suggestions, want);
        }
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("critic.toml");
        std::fs::write(&file, "[review]\nsuggestions = false\n").expect("write");
        let c = Config::load_from(Some(&file), base()).expect("a TOML boolean");
        assert_eq!(c.settings.review.suggestions, Suggestions::Set(false));
        let mut e = base();
        e.push(("CRITIC_REVIEW__SUGGESTIONS".into(), "sometimes".into()));
        let err = Config::load_from(None, e).expect_err("a typo").to_string();
        assert!(err.contains("suggestions"), "{err}");
        assert!(!Suggestions::Auto.resolve(Some(1_777_088_000)));
        assert!(Suggestions::Auto.resolve(Some(7_000_000_000)));
        assert!(Suggestions::Auto.resolve(None));
        assert!(Suggestions::Set(true).resolve(Some(1)));
        assert!(!Suggestions::Set(false).resolve(None));
    }

    #[test]
    fn auto_scope_lines_show_none_to_a_small_model_and_all_to_others() {
        assert_eq!(ScopeLines::Auto.resolve(Some(1_777_088_000)), 0);
        assert_eq!(
            ScopeLines::Auto.resolve(Some(7_000_000_000)),
            ScopeLines::FULL
        );
        assert_eq!(ScopeLines::Auto.resolve(None), ScopeLines::FULL);
        assert_eq!(ScopeLines::Lines(40).resolve(Some(1_000)), 40);
        assert_eq!(ScopeLines::Lines(0).resolve(None), 0);
    }

    #[test]
    fn verify_context_defaults_to_auto_and_refuses_a_typo() {
        let c = Config::load_from(None, base()).expect("valid");
        assert_eq!(c.settings.review.verify_context, VerifyContext::Auto);
        for (value, want) in [
            ("separate", VerifyContext::Separate),
            ("continue", VerifyContext::Continue),
        ] {
            let mut e = base();
            e.push(("CRITIC_REVIEW__VERIFY_CONTEXT".into(), value.into()));
            let c = Config::load_from(None, e).expect(value);
            assert_eq!(c.settings.review.verify_context, want);
        }
        let mut e = base();
        e.push(("CRITIC_REVIEW__VERIFY_CONTEXT".into(), "continued".into()));
        let err = Config::load_from(None, e).expect_err("a typo").to_string();
        assert!(
            err.contains("verify_context") || err.contains("continued"),
            "{err}"
        );
    }

    #[test]
    fn the_database_password_can_come_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("db-password");
        std::fs::write(&file, "p@ss/w:rd%41 #x\n").expect("write");
        let with = |url: &str| {
            let mut e = base();
            e.extend(env(&[
                ("CRITIC_STORE__URL", url),
                ("CRITIC_STORE__PASSWORD_FILE", file.to_str().expect("utf-8")),
            ]));
            Config::load_from(None, e)
        };
        let c = with("postgres://critic@db:5432/critic?sslmode=require").expect("valid");
        let url = url::Url::parse(&c.settings.store.url).expect("a URL");
        let password = url.password().expect("a password");
        assert_eq!(
            password, "p%40ss%2Fw%3Ard%2541%20%23x",
            "percent-encoded, `%` too, the newline trimmed"
        );
        let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
        assert_eq!(decoded, "p@ss/w:rd%41 #x", "what the driver decodes");
        assert_eq!(url.username(), "critic");
        assert_eq!(url.query(), Some("sslmode=require"));
        assert!(
            !format!("{:?}", c.settings.store).contains("p%40ss"),
            "never printed"
        );
        for (url, says) in [
            (
                "postgres://critic:inline@db/critic",
                "already has a password",
            ),
            ("sqlite://critic.db", "is for PostgreSQL"),
            ("postgres://db/critic", "names no user"),
        ] {
            let err = with(url).expect_err(url).to_string();
            assert!(
                err.contains("store.password_file") && err.contains(says),
                "{url}: {err}"
            );
        }
        std::fs::write(&file, "\n").expect("write");
        let err = with("postgres://critic@db/critic")
            .expect_err("empty")
            .to_string();
        assert!(err.contains("is empty"), "{err}");
    }

    #[test]
    fn defaults_then_env() {
        let mut e = base();
        e.extend(env(&[
            ("CRITIC_GITHUB__API_URL", "http://127.0.0.1:9000"),
            ("CRITIC_WORKER__CONCURRENCY", "9"),
        ]));
        let c = Config::load_from(None, e).expect("valid");
        assert_eq!(c.app_id, 7);
        assert_eq!(c.settings.github.api_url.as_str(), "http://127.0.0.1:9000/");
        assert_eq!(c.settings.worker.concurrency, 9);
        assert_eq!(c.settings.server.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(c.settings.server.webhook_path, "/webhook");
        assert_eq!(c.settings.store.url, "sqlite://critic.db");
        assert!(c.llm.is_default);
        let e = c.llm.default_endpoint();
        assert_eq!(e.base_url.as_str(), "http://127.0.0.1:11434/v1");
        assert_eq!(e.model, "qwen2.5-coder:7b");
        assert_eq!(e.provider, ProviderKind::OpenaiCompatible);
    }

    #[test]
    fn file_then_env_override() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("critic.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"127.0.0.1:4000\"\n[llm]\nmodel = \"gpt-4o\"\nbase_url = \"https://api.openai.com/v1\"\n[github]\nwebhook_secret = [\"old\", \"new\"]\n",
        )
        .expect("write");
        let mut e = base();
        e.retain(|(k, _)| k != "CRITIC_GITHUB__WEBHOOK_SECRET");
        e.push(("CRITIC_SERVER__LISTEN".into(), "127.0.0.1:5000".into()));
        let c = Config::load_from(Some(&path), e).expect("valid");
        assert_eq!(c.settings.server.listen.port(), 5000);
        assert_eq!(c.llm.default_endpoint().model, "gpt-4o");
        assert_eq!(c.webhook_secrets.len(), 2);
        assert!(!c.llm.is_default);
    }

    #[test]
    fn env_list_of_secrets() {
        let mut e = base();
        e.retain(|(k, _)| k != "CRITIC_GITHUB__WEBHOOK_SECRET");
        e.push(("CRITIC_GITHUB__WEBHOOK_SECRET".into(), "a,b".into()));
        let c = Config::load_from(None, e).expect("valid");
        let got: Vec<&str> = c
            .webhook_secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(got, ["a", "b"]);
    }

    #[test]
    fn secrets_from_files_and_never_in_debug() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key.pem");
        let secret = dir.path().join("hook");
        std::fs::write(&key, KEY).expect("write");
        std::fs::write(&secret, "from-file\n").expect("write");
        let e = env(&[
            ("CRITIC_GITHUB__APP_ID", "7"),
            (
                "CRITIC_GITHUB__PRIVATE_KEY_FILE",
                key.to_str().expect("utf8"),
            ),
            (
                "CRITIC_GITHUB__WEBHOOK_SECRET_FILE",
                secret.to_str().expect("utf8"),
            ),
            ("CRITIC_LLM__API_KEY", "sk-very-secret"),
        ]);
        let c = Config::load_from(None, e).expect("valid");
        assert_eq!(c.webhook_secrets[0].expose_secret(), "from-file");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("from-file"), "{dbg}");
        assert!(!dbg.contains("sk-very-secret"));
        assert!(!dbg.contains("PRIVATE KEY"));
    }

    #[test]
    fn errors_name_the_key() {
        let cases: Vec<(Vec<(String, String)>, &str)> = vec![
            (
                env(&[
                    ("CRITIC_GITHUB__APP_ID", "1"),
                    ("CRITIC_GITHUB__PRIVATE_KEY", KEY),
                    ("CRITIC_GITHUB__WEBHOOK_SECRET", "x"),
                    ("CRITIC_LOG__FORMAT", "xml"),
                ]),
                "log.format",
            ),
            (
                env(&[
                    ("CRITIC_GITHUB__PRIVATE_KEY", KEY),
                    ("CRITIC_GITHUB__WEBHOOK_SECRET", "x"),
                ]),
                "github.app_id",
            ),
            (
                env(&[
                    ("CRITIC_GITHUB__APP_ID", "1"),
                    ("CRITIC_GITHUB__WEBHOOK_SECRET", "x"),
                ]),
                "github.private_key",
            ),
            (
                env(&[
                    ("CRITIC_GITHUB__APP_ID", "1"),
                    ("CRITIC_GITHUB__PRIVATE_KEY", "nope"),
                    ("CRITIC_GITHUB__WEBHOOK_SECRET", "x"),
                ]),
                "github.private_key",
            ),
            (
                env(&[
                    ("CRITIC_GITHUB__APP_ID", "1"),
                    ("CRITIC_GITHUB__PRIVATE_KEY", KEY),
                ]),
                "github.webhook_secret",
            ),
            (
                {
                    let mut e = base();
                    e.push(("CRITIC_WORKER__CONCURRENCY".into(), "0".into()));
                    e
                },
                "worker.concurrency",
            ),
            (
                {
                    let mut e = base();
                    e.push(("CRITIC_WORKER__CONCURRENCY".into(), "many".into()));
                    e
                },
                "worker.concurrency",
            ),
            (
                {
                    let mut e = base();
                    e.push(("CRITIC_SERVER__LISTEN".into(), "nowhere".into()));
                    e
                },
                "server.listen",
            ),
            (
                {
                    let mut e = base();
                    e.push(("CRITIC_STORE__URL".into(), "mysql://x".into()));
                    e
                },
                "store.url",
            ),
            (
                {
                    let mut e = base();
                    e.push(("CRITIC_GITHUB__APP_ID".into(), "abc".into()));
                    e
                },
                "github.app_id",
            ),
        ];
        for (e, key) in cases {
            let err = Config::load_from(None, e).expect_err(key).to_string();
            assert!(err.contains(key), "{err} should name {key}");
        }
    }

    #[test]
    fn more_errors_name_the_key() {
        for (key, value, named) in [
            ("CRITIC_SERVER__WEBHOOK_PATH", "/{x}", "server.webhook_path"),
            (
                "CRITIC_SERVER__WEBHOOK_PATH",
                "/healthz",
                "server.webhook_path",
            ),
            ("CRITIC_STORE__RETENTION_DAYS", "0", "store.retention_days"),
            ("CRITIC_REVIEW__IGNORE", "!docs/**", "review.ignore"),
            ("CRITIC_REVIEW__MAX_CHUNKS", "0", "review.max_chunks"),
            (
                "CRITIC_REVIEW__COALESCE_SECS",
                "3601",
                "review.coalesce_secs",
            ),
            (
                "CRITIC_TESTS__VERIFY_TIMEOUT_SECS",
                "0",
                "tests.verify_timeout_secs",
            ),
            (
                "CRITIC_TESTS__VERIFY_POLL_SECS",
                "0",
                "tests.verify_poll_secs",
            ),
        ] {
            let mut e = base();
            e.push((key.into(), value.into()));
            let err = Config::load_from(None, e).expect_err(key).to_string();
            assert!(err.contains(named), "{err}");
        }
    }

    #[test]
    fn store_password_stays_out_of_debug() {
        let mut e = base();
        e.push((
            "CRITIC_STORE__URL".into(),
            "postgres://critic:db-pass-123@127.0.0.1/critic".into(),
        ));
        let c = Config::load_from(None, e).expect("valid");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("db-pass-123"), "{dbg}");
        assert!(dbg.contains("127.0.0.1/critic"), "{dbg}");
    }

    #[test]
    fn unknown_key_in_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("critic.toml");
        std::fs::write(&path, "[server]\nlisten_addr = \"127.0.0.1:1\"\n").expect("write");
        let err = Config::load_from(Some(&path), base())
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("listen_addr"), "{err}");
    }

    fn load_toml(toml: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("critic.toml");
        std::fs::write(&path, toml).expect("write");
        Config::load_from(Some(&path), base())
    }

    #[test]
    fn endpoints_inherit_from_llm_and_tasks_name_them() {
        let c = load_toml(
            r#"
[llm]
provider = "openai"
model = "gpt-4.1"
api_key = "sk-root"
fallback = ["local"]
monthly_budget_usd = 50.0
[llm.tasks]
describe = "mini"
[llm.endpoints.mini]
model = "gpt-4.1-mini"
[llm.endpoints.local]
provider = "openai-compatible"
model = "qwen2.5-coder:32b"
[llm.prices."my-model"]
input = 1.0
output = 2.0
"#,
        )
        .expect("valid");
        let l = &c.llm;
        assert!(!l.is_default);
        let mini = l.endpoint("mini").expect("mini");
        assert_eq!(mini.provider, ProviderKind::Openai);
        assert_eq!(mini.base_url.as_str(), "https://api.openai.com/v1");
        assert_eq!(
            mini.api_key.as_ref().map(|k| k.expose_secret().to_string()),
            Some("sk-root".into())
        );
        assert_eq!(mini.structured_output, StructuredOutput::JsonSchema);
        // Another provider inherits neither the URL nor the key.
        let local = l.endpoint("local").expect("local");
        assert_eq!(local.base_url.as_str(), "http://127.0.0.1:11434/v1");
        assert!(local.api_key.is_none());
        assert_eq!(local.structured_output, StructuredOutput::Auto);
        assert_eq!(l.tasks.describe.as_deref(), Some("mini"));
        assert_eq!(l.fallback, ["local"]);
        assert_eq!(l.monthly_budget_usd, Some(50.0));
        assert_eq!(l.prices["my-model"].output, 2.0);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("sk-root"), "{dbg}");
    }

    #[test]
    fn llm_errors_name_the_key() {
        for (toml, named) in [
            (
                "[llm]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\n",
                "llm.api_key",
            ),
            ("[llm]\nprovider = \"openai\"\n", "llm.model"),
            (
                "[llm]\nprovider = \"azure\"\nmodel = \"d\"\napi_key = \"k\"\n",
                "llm.base_url",
            ),
            ("[llm]\nprovider = \"gemini\"\n", "provider"),
            ("[llm.tasks]\nreview = \"nope\"\n", "llm.tasks.review"),
            ("[llm]\nfallback = [\"nope\"]\n", "llm.fallback"),
            (
                "[llm.endpoints.default]\nmodel = \"x\"\n",
                "llm.endpoints.default",
            ),
            (
                "[llm.endpoints.x]\ntemperature = 3.0\n",
                "llm.endpoints.x.temperature",
            ),
            ("[llm]\ntimeout_secs = 0\n", "llm.timeout_secs"),
            (
                "[llm.prices.m]\ninput = -1.0\noutput = 1.0\n",
                "llm.prices.m",
            ),
            ("[llm]\nmodle = \"x\"\n", "modle"),
        ] {
            let err = load_toml(toml).expect_err(toml).to_string();
            assert!(err.contains(named), "{toml}: {err}");
        }
    }

    #[test]
    fn llm_from_env() {
        let mut e = base();
        e.extend(env(&[
            ("CRITIC_LLM__PROVIDER", "anthropic"),
            ("CRITIC_LLM__MODEL", "claude-sonnet-4-5"),
            ("CRITIC_LLM__API_KEY", "sk-ant"),
            ("CRITIC_LLM__TIMEOUT_SECS", "30"),
            ("CRITIC_LLM__ENDPOINTS__LOCAL__MODEL", "llama3"),
            (
                "CRITIC_LLM__ENDPOINTS__LOCAL__PROVIDER",
                "openai-compatible",
            ),
            ("CRITIC_LLM__FALLBACK", "local"),
        ]));
        let c = Config::load_from(None, e).expect("valid");
        let d = c.llm.default_endpoint();
        assert_eq!(d.provider, ProviderKind::Anthropic);
        assert_eq!(d.base_url.as_str(), "https://api.anthropic.com/v1");
        assert_eq!(d.timeout, Duration::from_secs(30));
        assert_eq!(c.llm.endpoint("local").expect("local").model, "llama3");
        assert_eq!(c.llm.fallback, ["local"]);
    }
}
