//! The settings files shipped in `deploy/` are valid settings: each loads as Critic would
//! load it in its container, with the secret files the deployment mounts.

use std::path::{Path, PathBuf};

use critic::config::{Config, LogFormat};

use crate::support::github;

/// Loads `file` (relative to the repository) with the secret files at temporary paths and
/// the environment the deployment adds.
fn load(file: &str, env: &[(&str, &str)]) -> Config {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("app.pem");
    let secret = dir.path().join("webhook-secret");
    std::fs::write(&key, github::app_private_key_pem()).expect("key");
    std::fs::write(&secret, "s3cret\n").expect("secret");
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let mut vars = vec![
        (
            "CRITIC_GITHUB__PRIVATE_KEY_FILE".to_string(),
            key.display().to_string(),
        ),
        (
            "CRITIC_GITHUB__WEBHOOK_SECRET_FILE".to_string(),
            secret.display().to_string(),
        ),
    ];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::load_from(Some(&path), vars).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn the_compose_settings_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = dir.path().join("db-password");
    std::fs::write(&password, "from-the-secret\n").expect("password");
    let config = load(
        "deploy/compose/critic.toml",
        &[
            ("CRITIC_SERVER__LISTEN", "0.0.0.0:3000"),
            (
                "CRITIC_STORE__PASSWORD_FILE",
                password.to_str().expect("utf-8"),
            ),
        ],
    );
    let s = &config.settings;
    assert_eq!(config.app_id, 123456);
    assert_eq!(config.webhook_secrets.len(), 1);
    assert_eq!(
        s.store.url,
        "postgres://critic:from-the-secret@postgres:5432/critic"
    );
    assert_eq!(
        config.llm.default_endpoint().base_url.as_str(),
        "http://ollama:11434/v1"
    );
}

#[test]
fn the_kubernetes_settings_load_and_log_json() {
    let config = load(
        "deploy/kubernetes/critic.toml",
        &[(
            "CRITIC_STORE__URL",
            "postgres://critic:pw@db.example:5432/critic?sslmode=require",
        )],
    );
    assert_eq!(config.settings.log.format, LogFormat::Json);
    assert_eq!(config.settings.server.webhook_path, "/webhook");
    assert_eq!(config.app_id, 123456);
}

#[test]
fn the_example_settings_load() {
    let config = load("deploy/critic.toml.example", &[]);
    assert!(config.settings.store.url.starts_with("sqlite://"));
}
