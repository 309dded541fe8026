//! Temporary git repositories for tests, built with the `git` command in a hermetic
//! environment (no system or user configuration, a fixed author, the C locale).

use std::path::Path;
use std::process::Command;

/// Runs git in `dir`; panics with what git said when it fails. Returns its output.
pub fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "Critic Test")
        .env("GIT_AUTHOR_EMAIL", "critic@example.com")
        .env("GIT_COMMITTER_NAME", "Critic Test")
        .env("GIT_COMMITTER_EMAIL", "critic@example.com")
        .env("LC_ALL", "C")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The SHA of `HEAD` in `dir`.
pub fn head_sha(dir: &Path) -> String {
    String::from_utf8_lossy(&git(dir, &["rev-parse", "HEAD"]))
        .trim()
        .to_string()
}

/// Writes `bytes` to `dir/name`, making the folders on the way.
pub fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, bytes).expect("write");
}
