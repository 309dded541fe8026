//! What the tests use besides the code: the unit tests' `crate::test_env`, and the same file
//! is the integration tests' and benches' `support::test_env`: GitHub's example webhook
//! payloads, in the repository (`tests/fixtures/webhooks/`).

use std::path::{Path, PathBuf};

/// GitHub's example webhook payloads (see the README there).
pub fn webhooks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks")
}

/// One of GitHub's example payloads, e.g. `webhook("pull_request.opened.2.json")`.
pub fn webhook(name: &str) -> Vec<u8> {
    let path = webhooks_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
