//! Writing the new App's settings: its private key to a file of its own and `[github]` keys
//! into the settings file, each readable by its owner alone (mode 0600) and each written to a
//! temporary file first and renamed over, so a failure leaves nothing half-written.

use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;

use crate::github::manifest::CreatedApp;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML, so it was left as it is: {message}")]
    Toml { path: PathBuf, message: String },
}

/// Writes the App's key beside `settings_file` and its id, key file and webhook secret into
/// it (created when missing; its other keys kept). Returns the key file's path.
pub fn write_app(settings_file: &Path, app: &CreatedApp) -> Result<PathBuf, WriteError> {
    let existing = match std::fs::read_to_string(settings_file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(WriteError::Io {
                path: settings_file.to_path_buf(),
                source,
            });
        }
    };
    let mut doc: toml_edit::DocumentMut =
        existing
            .parse()
            .map_err(|e: toml_edit::TomlError| WriteError::Toml {
                path: settings_file.to_path_buf(),
                message: e.to_string(),
            })?;
    let key_file = settings_file.with_file_name(format!("{}.private-key.pem", app.slug));
    // An inline `github = { ... }` is written into as it is; only a missing one is added.
    if !doc
        .get("github")
        .is_some_and(toml_edit::Item::is_table_like)
    {
        doc["github"] = toml_edit::table();
    }
    let github = &mut doc["github"];
    github["app_id"] = toml_edit::value(app.id as i64);
    // A path relative to the settings file's folder would depend on where Critic starts.
    let key_path = std::path::absolute(&key_file).unwrap_or_else(|_| key_file.clone());
    github["private_key_file"] = toml_edit::value(key_path.display().to_string());
    if let Some(secret) = &app.webhook_secret {
        github["webhook_secret"] = toml_edit::value(secret.expose_secret());
    }
    // The key first: settings that name a key file that is not there would not start.
    write_private(&key_file, app.pem.expose_secret().as_bytes())?;
    if let Err(e) = write_private(settings_file, doc.to_string().as_bytes()) {
        let _ = std::fs::remove_file(&key_file);
        return Err(e);
    }
    Ok(key_file)
}

/// Whether the settings can be written: the file, if there, is TOML, and its folder takes a
/// new file. Asked before the App is created on GitHub.
pub fn can_write(settings_file: &Path) -> Result<(), WriteError> {
    match std::fs::read_to_string(settings_file) {
        Ok(text) => {
            text.parse::<toml_edit::DocumentMut>()
                .map_err(|e| WriteError::Toml {
                    path: settings_file.to_path_buf(),
                    message: e.to_string(),
                })?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(WriteError::Io {
                path: settings_file.to_path_buf(),
                source,
            });
        }
    }
    let dir = settings_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::NamedTempFile::new_in(dir)
        .map(drop)
        .map_err(|source| WriteError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// Writes `bytes` to `path` through a temporary file beside it, mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let io = |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
