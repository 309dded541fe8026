//! Prometheus metrics: the one recorder, and what `/metrics` adds at scrape time (the queue's
//! depth). Names follow Prometheus conventions (`critic_` prefix, `_total`, `_seconds`);
//! labels are bounded sets (event, outcome, kind, model, state), never a pull request's
//! number, a SHA or a repository.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::domain::JobState;
use crate::store::{Store, StoreError};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Seconds buckets for job and model-call durations: a webhook job takes milliseconds, a
/// review with a slow model minutes.
const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The process's recorder, installed on first use; None when another recorder is already
/// installed (a library user's), in which case Critic's metrics go there.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(SECONDS)
                .ok()?
                .install_recorder()
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()
        })
        .as_ref()
}

/// The text of `/metrics`: the queue's depth by state and the age of its oldest due job,
/// counted by the store now (two small queries), then every recorded metric.
pub async fn render(store: &Store) -> Result<String, StoreError> {
    let Some(handle) = handle() else {
        return Ok(String::new());
    };
    let depth = store.queue_depth().await?;
    for state in JobState::ALL {
        let n = depth
            .by_state
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("critic_queue_jobs", "state" => state.as_str()).set(n as f64);
    }
    let oldest = depth
        .oldest_due
        .map_or(0, |due| crate::store::now_ms().saturating_sub(due));
    metrics::gauge!("critic_queue_oldest_due_seconds").set(oldest as f64 / 1000.0);
    Ok(handle.render())
}
