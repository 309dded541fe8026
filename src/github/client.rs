//! The App's client and the per-installation clients it hands out (cached, so octocrab's
//! token renewal is what keeps us from minting a token per call), and what every call shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId};
use secrecy::ExposeSecret;
use serde::Serialize;

use super::GitHubError;
use super::retry::RetryPolicy;
use super::transport::{Answer, Call, Via, send_idempotent};
use crate::config::Config;

/// Authenticated as the App; hands out per-installation clients.
#[derive(Clone)]
pub struct GitHub {
    shared: Arc<Shared>,
}

/// What every installation's client shares with the App's.
pub(super) struct Shared {
    app: Octocrab,
    installations: Mutex<HashMap<u64, Arc<Octocrab>>>,
    bot_login: tokio::sync::OnceCell<String>,
    /// GitHub Enterprise Server only: see [`ghes_graphql_base`].
    pub(super) ghes_graphql: Option<Octocrab>,
    pub(super) files: FileCache,
    pub(super) permissions: PermissionCache,
    pub(super) policy: RetryPolicy,
    /// This App's id: a commit's check runs include other Apps'.
    pub(super) app_id: u64,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub").finish_non_exhaustive()
    }
}

impl GitHub {
    pub fn new(config: &Config) -> Result<GitHub, GitHubError> {
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(config.private_key.expose_secret().as_bytes())
                .map_err(|e| GitHubError::Setup(format!("github.private_key: {e}")))?;
        let gh = &config.settings.github;
        let timeout = Duration::from_secs(gh.timeout_secs);
        let api = gh.api_url.as_str().trim_end_matches('/').to_string();
        let app = Octocrab::builder()
            .base_uri(api)
            .map_err(|e| GitHubError::Setup(format!("github.api_url: {e}")))?
            .app(AppId(config.app_id), key)
            .set_connect_timeout(Some(timeout))
            .set_read_timeout(Some(timeout))
            .set_write_timeout(Some(timeout))
            .build()
            .map_err(|e| GitHubError::Setup(e.to_string()))?;
        let ghes_graphql = match ghes_graphql_base(&gh.api_url) {
            Some(base) => Some(
                Octocrab::builder()
                    .base_uri(base)
                    .map_err(|e| GitHubError::Setup(format!("github.api_url (GraphQL): {e}")))?
                    .set_connect_timeout(Some(timeout))
                    .set_read_timeout(Some(timeout))
                    .set_write_timeout(Some(timeout))
                    .build()
                    .map_err(|e| GitHubError::Setup(e.to_string()))?,
            ),
            None => None,
        };
        let policy = RetryPolicy {
            retries: gh.max_retries,
            base: Duration::from_millis(gh.retry_base_ms),
            max_wait: Duration::from_secs(gh.max_retry_wait_secs),
        };
        Ok(GitHub {
            shared: Arc::new(Shared {
                app,
                installations: Mutex::new(HashMap::new()),
                bot_login: tokio::sync::OnceCell::new(),
                ghes_graphql,
                files: FileCache::default(),
                permissions: Default::default(),
                policy,
                app_id: config.app_id,
            }),
        })
    }

    /// The installation of this App on `repo` (`GET /repos/{repo}/installation`, as the App).
    pub async fn repo_installation(&self, repo: &super::RepoName) -> Result<u64, GitHubError> {
        #[derive(serde::Deserialize)]
        struct Found {
            id: u64,
        }
        let call = Call::get(format!("/repos/{repo}/installation"));
        let found: Found = send_idempotent(
            Via {
                crab: &self.shared.app,
                policy: &self.shared.policy,
                installation: None,
            },
            &call,
            Answer::json,
        )
        .await?;
        Ok(found.id)
    }

    /// Read-only calls made with a person's token (`GITHUB_TOKEN`) rather than as the App:
    /// what `critic review URL --dry-run` uses when the token is given.
    pub fn with_token(
        gh: &crate::config::GithubSettings,
        token: &str,
    ) -> Result<Installation, GitHubError> {
        let timeout = Duration::from_secs(gh.timeout_secs);
        let api = gh.api_url.as_str().trim_end_matches('/').to_string();
        let crab = Octocrab::builder()
            .base_uri(api)
            .map_err(|e| GitHubError::Setup(format!("github.api_url: {e}")))?
            .personal_token(token.to_string())
            .set_connect_timeout(Some(timeout))
            .set_read_timeout(Some(timeout))
            .build()
            .map_err(|e| GitHubError::Setup(e.to_string()))?;
        let crab = Arc::new(crab);
        Ok(Installation {
            owner: Arc::new(Shared {
                app: (*crab).clone(),
                installations: Mutex::new(HashMap::new()),
                bot_login: tokio::sync::OnceCell::new(),
                ghes_graphql: None,
                files: FileCache::default(),
                permissions: Default::default(),
                policy: RetryPolicy {
                    retries: gh.max_retries,
                    base: Duration::from_millis(gh.retry_base_ms),
                    max_wait: Duration::from_secs(gh.max_retry_wait_secs),
                },
                app_id: 0,
            }),
            crab,
            id: None,
        })
    }

    /// The login Critic's reviews and comments appear under (`SLUG[bot]`), asked once.
    pub async fn bot_login(&self) -> Result<String, GitHubError> {
        self.shared.bot_login().await
    }

    /// The bot login if it was asked for already (no call).
    pub fn known_bot_login(&self) -> Option<&str> {
        self.shared.bot_login.get().map(String::as_str)
    }

    /// A client acting as the given installation.
    pub fn installation(&self, id: u64) -> Result<Installation, GitHubError> {
        let mut cache = self
            .shared
            .installations
            .lock()
            .map_err(|_| GitHubError::Setup("installation cache poisoned".into()))?;
        let crab = match cache.get(&id) {
            Some(crab) => crab.clone(),
            None => {
                let crab = Arc::new(
                    self.shared
                        .app
                        .installation(InstallationId(id))
                        .map_err(GitHubError::from)?,
                );
                cache.insert(id, crab.clone());
                crab
            }
        };
        Ok(Installation {
            crab,
            owner: self.shared.clone(),
            id: Some(id),
        })
    }
}

impl Shared {
    pub(super) async fn bot_login(&self) -> Result<String, GitHubError> {
        self.bot_login
            .get_or_try_init(|| async {
                let app: serde_json::Value = send_idempotent(
                    Via {
                        crab: &self.app,
                        policy: &self.policy,
                        installation: None,
                    },
                    &Call::get("/app"),
                    Answer::json,
                )
                .await?;
                let slug = app["slug"]
                    .as_str()
                    .ok_or_else(|| GitHubError::Decode("GET /app returned no slug".into()))?;
                Ok::<_, GitHubError>(format!("{slug}[bot]"))
            })
            .await
            .cloned()
    }
}

/// Files read with [`Installation::default_branch_file`] (settings, read for every job), kept
/// with their ETag so that reading one again is a conditional request: GitHub answers 304
/// without the file, and a 304 does not count against the installation's rate limit.
#[derive(Default)]
pub(super) struct FileCache {
    entries: Mutex<HashMap<String, (String, Vec<u8>)>>,
}

/// Files the cache holds before it starts over; settings files are small and few per repo.
const MAX_CACHED_FILES: usize = 4096;

impl FileCache {
    pub(super) fn get(&self, route: &str) -> Option<(String, Vec<u8>)> {
        self.entries.lock().ok()?.get(route).cloned()
    }

    pub(super) fn put(&self, route: &str, found: Option<(String, Vec<u8>)>) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        match found {
            Some(entry) => {
                if entries.len() >= MAX_CACHED_FILES && !entries.contains_key(route) {
                    entries.clear();
                }
                entries.insert(route.to_string(), entry);
            }
            None => {
                entries.remove(route);
            }
        }
    }
}

/// How long a role read from GitHub is trusted.
const PERMISSION_TTL: Duration = Duration::from_secs(300);
/// Entries the cache holds before it starts over.
const MAX_CACHED_ROLES: usize = 4096;

/// People's roles per repository, read with [`Installation::permission`].
#[derive(Default)]
pub(super) struct PermissionCache {
    entries: Mutex<HashMap<(String, String), (crate::domain::Permission, Instant)>>,
}

impl PermissionCache {
    pub(super) fn get(&self, key: &(String, String)) -> Option<crate::domain::Permission> {
        let entries = self.entries.lock().ok()?;
        let (permission, at) = entries.get(key)?;
        (at.elapsed() < PERMISSION_TTL).then_some(*permission)
    }

    pub(super) fn put(&self, key: (String, String), permission: crate::domain::Permission) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_CACHED_ROLES && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, (permission, Instant::now()));
    }
}

/// The base for GraphQL on GitHub Enterprise Server, `None` elsewhere.
///
/// octocrab's `graphql()` posts to `/graphql` under the base URI, keeping the base's path.
/// That is right for github.com (`https://api.github.com/graphql`) and GHE.com, but GHES
/// serves REST under `https://HOST/api/v3` and GraphQL at `https://HOST/api/graphql`, so
/// octocrab would post to `/api/v3/graphql`. A client cannot reach a path outside its base
/// (it prepends the base path to every request) and only sends the installation token to
/// relative URLs, so GHES gets a second client based at `https://HOST/api`, to which we hand
/// the installation's token ourselves.
fn ghes_graphql_base(api: &url::Url) -> Option<String> {
    let path = api.path().trim_end_matches('/');
    let prefix = path.strip_suffix("/v3").filter(|p| p.ends_with("/api"))?;
    let origin = api.origin().ascii_serialization();
    Some(format!("{origin}{prefix}"))
}

/// Calls made as one installation. Shared, not cloned: octocrab's token cache is copied
/// (not shared) when an `Octocrab` is cloned.
#[derive(Clone)]
pub struct Installation {
    pub(super) crab: Arc<Octocrab>,
    pub(super) owner: Arc<Shared>,
    /// The installation's id (None for a personal token), the rate-limit gauge's label.
    pub(super) id: Option<u64>,
}

pub(super) const PER_PAGE: &str = "100";
/// GitHub lists at most 3,000 files of a PR (30 pages); a bound keeps a bad `Link` from looping.
pub(super) const MAX_PAGES: u32 = 100;

impl Installation {
    /// How this installation's calls are sent.
    pub(super) fn via(&self) -> Via<'_> {
        Via {
            crab: &self.crab,
            policy: &self.owner.policy,
            installation: self.id,
        }
    }

    /// A GET answered as JSON, retried while GitHub says it is temporary.
    pub(super) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        call: Call,
    ) -> Result<T, GitHubError> {
        send_idempotent(self.via(), &call, Answer::json).await
    }

    /// A call safe to repeat whose answer is not needed.
    pub(super) async fn send_ignoring_answer(&self, call: Call) -> Result<(), GitHubError> {
        send_idempotent(self.via(), &call, |_| Ok(())).await
    }

    /// Follows pagination by page number on the same route, reading from the `Link` header
    /// only whether a next page exists: its URL may name another host (GitHub Enterprise
    /// Server behind a proxy) to which the token must not go.
    pub(super) async fn all_pages<T: serde::de::DeserializeOwned>(
        &self,
        route: &str,
    ) -> Result<Vec<T>, GitHubError> {
        let mut items = Vec::new();
        for page in 1u32.. {
            let call =
                Call::get(route).query(&[("per_page", PER_PAGE), ("page", &page.to_string())]);
            let (mut got, next) = send_idempotent(self.via(), &call, |answer| {
                Ok((answer.json::<Vec<T>>()?, answer.has_next_page()))
            })
            .await?;
            let more = next && !got.is_empty();
            items.append(&mut got);
            if !more || page >= MAX_PAGES {
                break;
            }
        }
        Ok(items)
    }
}

/// A 404 read as "not there".
pub(super) fn none_if_missing<T>(got: Result<T, GitHubError>) -> Result<Option<T>, GitHubError> {
    match got {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn to_json(value: &impl Serialize) -> Result<serde_json::Value, GitHubError> {
    serde_json::to_value(value).map_err(|e| GitHubError::Setup(format!("request body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_cache_forgets_missing_files_and_stays_bounded() {
        let cache = FileCache::default();
        cache.put("/a", Some(("\"1\"".into(), b"one".to_vec())));
        assert_eq!(cache.get("/a"), Some(("\"1\"".into(), b"one".to_vec())));
        // Gone (404) or served without an ETag: nothing to ask for conditionally.
        cache.put("/a", None);
        assert_eq!(cache.get("/a"), None);
        for i in 0..MAX_CACHED_FILES {
            cache.put(&format!("/f{i}"), Some((i.to_string(), Vec::new())));
        }
        assert!(cache.get("/f0").is_some());
        // Full: the next new file starts it over instead of growing without end.
        cache.put("/new", Some(("n".into(), Vec::new())));
        assert!(cache.get("/f0").is_none());
        assert!(cache.get("/new").is_some());
    }

    #[test]
    fn graphql_moves_out_of_the_rest_prefix_only_on_enterprise_server() {
        let base = |s: &str| ghes_graphql_base(&s.parse().expect("url"));
        assert_eq!(base("https://api.github.com"), None);
        assert_eq!(base("https://api.acme.ghe.com/"), None);
        assert_eq!(
            base("https://git.acme.test/api/v3/").as_deref(),
            Some("https://git.acme.test/api")
        );
        assert_eq!(
            base("http://127.0.0.1:8080/api/v3").as_deref(),
            Some("http://127.0.0.1:8080/api")
        );
    }
}
