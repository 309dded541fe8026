//! Critic: a self-hosted GitHub App that reviews pull requests with an LLM.
//!
//! The pipeline: [`server`] receives and verifies webhooks and queues [`jobs`] in the
//! [`store`]; workers run them: [`github`] fetches the PR, [`review`] asks the model through
//! [`llm`], [`poster`] writes one review back.

pub mod backoff;
pub mod commands;
pub mod config;
pub mod context;
pub mod diff;
pub mod domain;
pub mod eval;
pub mod github;
pub mod jobs;
pub mod llm;
pub mod operator;
pub mod poster;
pub mod report;
pub mod review;
pub mod server;
pub mod setup;
pub mod store;
pub mod telemetry;
#[cfg(test)]
mod test_env;
pub mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::github::{GitHub, GitHubError};
use crate::llm::{Llm, LlmError};
use crate::review::{Prompts, ReviewError};
use crate::store::{Store, StoreError};

/// Everything a request handler or a worker needs.
pub struct Critic {
    pub config: Config,
    pub store: Store,
    pub github: GitHub,
    pub llm: Llm,
    pub prompts: Prompts,
    /// Wakes an idle worker when a job is queued.
    pub wake: Notify,
}

/// Why Critic could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("github: {0}")]
    GitHub(#[from] GitHubError),
    #[error("llm: {0}")]
    Llm(#[from] LlmError),
    #[error("prompts: {0}")]
    Prompts(#[from] ReviewError),
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    #[error("setup: {0}")]
    Setup(#[from] setup::SetupError),
}

impl Critic {
    /// Connects the store (applying migrations) and builds the clients.
    pub async fn new(config: Config) -> Result<Critic, StartError> {
        // The recorder first, so the first delivery is counted.
        let _ = telemetry::handle();
        let store = Store::connect(&config.settings.store.url).await?;
        let github = GitHub::new(&config)?;
        let llm = Llm::new(&config.llm)?;
        Ok(Critic {
            store,
            github,
            llm,
            prompts: Prompts::new()?,
            wake: Notify::new(),
            config,
        })
    }
}

impl Critic {
    /// The review pipeline with this server's settings, prompts and models.
    pub fn pipeline(&self) -> review::Pipeline<'_> {
        review::Pipeline {
            settings: &self.config.settings.review,
            prompts: &self.prompts,
            llm: &self.llm,
        }
    }

    /// The installation's monthly budget in USD when it is spent (calendar month, UTC);
    /// None while there is budget left or no budget is set.
    pub async fn budget_spent(&self, installation_id: u64) -> Result<Option<f64>, StoreError> {
        let Some(budget) = self.config.llm.monthly_budget_usd else {
            return Ok(None);
        };
        let spent = self
            .store
            .installation_usage_since(installation_id, month_start_ms())
            .await?;
        Ok((spent.cost_micros as f64 >= budget * 1e6).then_some(budget))
    }
}

/// Midnight UTC on the first of this month, in milliseconds.
fn month_start_ms() -> i64 {
    use chrono::{Datelike, TimeZone};
    let now = chrono::Utc::now();
    chrono::Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

/// How long in-flight jobs get to finish after shutdown is asked for; an unfinished job's
/// lease expires and another worker takes it.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves HTTP on `listener` and runs the workers until `shutdown` completes.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let critic = Arc::new(Critic::new(config).await?);
    run(critic, listener, shutdown).await
}

/// `critic serve` with its settings in `settings_file` (which need not exist yet) and `env`:
/// when no GitHub App is configured, the setup page (see [`setup`]) until one is, then Critic
/// as usual, in the same process. Returns when `shutdown` completes.
pub async fn serve_or_setup(
    settings_file: &std::path::Path,
    env: Vec<(String, String)>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let stop = CancellationToken::new();
    let stop_on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop_on_signal.cancel();
    });
    let file = settings_file.exists().then_some(settings_file);
    let (settings, _) = Config::load_without_app(file, env.clone())?;
    let listener = if settings.github.app_id.is_none() {
        let addr = listener.local_addr()?;
        // A second handle on the same socket: it keeps listening while the setup's server
        // stops, and Critic serves on it, so no delivery meets a closed port in between.
        let socket = listener.into_std()?;
        let kept = socket.try_clone()?;
        let token = env
            .iter()
            .find(|(k, _)| k == "CRITIC_SETUP_TOKEN")
            .map(|(_, v)| v.as_str());
        let setup = Arc::new(setup::Setup::new(&settings, settings_file)?.with_token(token));
        tracing::warn!(
            url = %setup.page_url(addr),
            "no GitHub App is configured: open this page to register one"
        );
        let listener = TcpListener::from_std(socket)?;
        if !setup::serve(setup, listener, stop.clone().cancelled_owned()).await? {
            return Ok(());
        }
        TcpListener::from_std(kept)?
    } else {
        listener
    };
    let config = Config::load_from(Some(settings_file).filter(|f| f.exists()), env)?;
    serve(config, listener, stop.cancelled_owned()).await
}

/// Like [`serve`] with a ready [`Critic`].
pub async fn run(
    critic: Arc<Critic>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let stop = CancellationToken::new();
    // Bound first: a metrics address that cannot be had stops the start before any job is
    // taken.
    let metrics = match critic.config.settings.server.metrics_listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let pool = WorkerPool::new()?;
    let workers = pool.spawn(jobs::run_workers(critic.clone(), stop.clone()));
    // Aborting this task (a crash in tests) must take the workers down with it.
    let workers_guard = AbortOnDrop(workers);
    // The App's slug, learnt now, so that the first `@slug` comment is not kept waiting for
    // it, or missed if GitHub is slow to say (see `server::app_slug`). A failure is only
    // logged: the first job, or the first such comment, asks again.
    let warm = critic.clone();
    let stop_warm = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = stop_warm.cancelled() => {}
            got = warm.github.bot_login() => {
                if let Err(e) = got {
                    tracing::warn!(error = %e, "cannot learn the App's slug yet; it is asked again when needed");
                }
            }
        }
    });
    if let Some(url) = critic.config.settings.server.webhook_proxy_url.clone() {
        tokio::spawn(server::proxy::follow(critic.clone(), url, stop.clone()));
    }
    if let Some(listener) = metrics {
        tracing::info!(addr = ?listener.local_addr().ok(), "metrics listening");
        let app = server::metrics_router(critic.clone());
        let stop_metrics = stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop_metrics.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "metrics listener stopped");
            }
        });
    }
    let app = server::router(critic);
    let stop_http = stop.clone();
    let http = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        stop_http.cancel();
    });
    let result = http.await;
    stop.cancel();
    let mut guard = workers_guard;
    if tokio::time::timeout(DRAIN, &mut guard.0).await.is_err() {
        tracing::warn!("workers still busy after {DRAIN:?}; their jobs will be retried");
    }
    result?;
    Ok(())
}

/// The workers' runtime, shut down without waiting when `run` ends or is dropped (a runtime
/// dropped the ordinary way inside async code would panic).
struct WorkerPool {
    handle: tokio::runtime::Handle,
    /// Taken in `drop`.
    runtime: Option<tokio::runtime::Runtime>,
}

impl WorkerPool {
    fn new() -> std::io::Result<WorkerPool> {
        let runtime = jobs::worker_runtime()?;
        Ok(WorkerPool {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    fn spawn(
        &self,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        self.handle.spawn(task)
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
