//! What the tests use besides the code: the unit tests' `crate::test_env`, and the same file
//! is the integration tests' and benches' `support::test_env`.
//!
//! - GitHub's example webhook payloads, in the repository (`tests/fixtures/webhooks/`);
//! - real pull requests and diffs (`scenarios/`, `diffs/`), other people's code kept out of
//!   the repository: in the folder `CRITIC_TEST_DATA` names, else in `../shared/data` beside
//!   the checkout.
//!
//! A test that needs data this machine lacks is skipped and says so on the
//! process's stderr, which libtest does not capture: a banner once per test binary, then one
//! line per skipped test. Once the variable is set its tests must pass: a folder without
//! the data fails them.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Names the folder that holds the real `scenarios/` and `diffs/`.
pub const DATA_VAR: &str = "CRITIC_TEST_DATA";

const BANNER: &str = "
==========================================================================================
critic: SOME TESTS ARE SKIPPED here (they count as passed) for want of data:
  real pull requests and diffs: set CRITIC_TEST_DATA to a folder with scenarios/ and diffs/
    (or put it at ../shared/data beside the checkout, where CI has it).
Once the variable is set, its tests must pass. Skipped in this test binary:
==========================================================================================
";

/// GitHub's example webhook payloads (see the README there).
pub fn webhooks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks")
}

/// One of GitHub's example payloads, e.g. `webhook("pull_request.opened.2.json")`.
pub fn webhook(name: &str) -> Vec<u8> {
    let path = webhooks_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The real data's folder `part` (`scenarios` or `diffs`), or `None` when this machine has
/// none: the calling test is then skipped, and says so.
pub fn data(part: &str) -> Option<PathBuf> {
    let found = locate(part);
    if found.is_none() {
        skipped(&format!("no real {part}, {DATA_VAR} is not set"));
    }
    found
}

/// Like [`data`] for a bench, which cannot do without: a missing folder stops it.
#[allow(dead_code)] // the benches' only
pub fn required_data(part: &str) -> PathBuf {
    locate(part).unwrap_or_else(|| {
        panic!(
            "no real {part}: set {DATA_VAR} to the folder that holds {part}/ \
             (or put it at ../shared/data beside the checkout)"
        )
    })
}

fn locate(part: &str) -> Option<PathBuf> {
    match std::env::var_os(DATA_VAR) {
        Some(root) => {
            let dir = Path::new(&root).join(part);
            assert!(
                dir.is_dir(),
                "{DATA_VAR}={}: there is no {part}/ folder there (unset {DATA_VAR} to skip \
                 the tests that need it)",
                Path::new(&root).display()
            );
            Some(dir)
        }
        None => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/data")
                .join(part);
            dir.is_dir().then_some(dir)
        }
    }
}

/// Says on stderr, past libtest's capture, that the running test is skipped and why; the
/// banner first, once per process.
fn skipped(why: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let mut stderr = std::io::stderr().lock();
    ONCE.call_once(|| {
        let _ = stderr.write_all(BANNER.as_bytes());
    });
    let _ = writeln!(stderr, "critic: SKIPPED {test}: {why}");
}
