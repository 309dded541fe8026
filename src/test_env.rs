//! What the tests use besides the code: the unit tests' `crate::test_env`, and the same file
//! is the integration tests' and benches' `support::test_env`.
//!
//! - GitHub's example webhook payloads, in the repository (`tests/fixtures/webhooks/`);
//! - real pull requests and diffs (`scenarios/`, `diffs/`), other people's code kept out of
//!   the repository: in the folder `CRITIC_TEST_DATA` names, else in `../shared/data` beside
//!   the checkout;
//! - a PostgreSQL server, at the URL `CRITIC_TEST_POSTGRES_URL` names.
//!
//! A test that needs data or a server this machine lacks is skipped and says so on the
//! process's stderr, which libtest does not capture: a banner once per test binary, then one
//! line per skipped test. Once a variable is set its tests must pass: a folder without the
//! data or a server that does not answer fails them.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Names the folder that holds the real `scenarios/` and `diffs/`.
pub const DATA_VAR: &str = "CRITIC_TEST_DATA";
/// Names a PostgreSQL server (`postgres://USER@HOST:PORT/DB`) on which each test creates and
/// drops its own database.
pub const POSTGRES_VAR: &str = "CRITIC_TEST_POSTGRES_URL";

const BANNER: &str = "
==========================================================================================
critic: SOME TESTS ARE SKIPPED here (they count as passed) for want of data or a server:
  real pull requests and diffs: set CRITIC_TEST_DATA to a folder with scenarios/ and diffs/
    (or put it at ../shared/data beside the checkout, where CI has it);
  PostgreSQL: set CRITIC_TEST_POSTGRES_URL, e.g. postgres://postgres@127.0.0.1:5432/test
    (trust auth; each test creates and drops its own database).
Once a variable is set, its tests must pass. Skipped in this test binary:
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

/// A fresh database on the test server, so tests run in parallel and start empty; `None`
/// (the calling test is skipped, and says so) when `CRITIC_TEST_POSTGRES_URL` is not set.
pub struct PgDatabase {
    admin: String,
    name: String,
    /// The new database's URL.
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Option<PgDatabase> {
        use sqlx::Connection;
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let admin = match std::env::var(POSTGRES_VAR) {
            Ok(url) => url,
            Err(std::env::VarError::NotPresent) => {
                skipped(&format!("no PostgreSQL, {POSTGRES_VAR} is not set"));
                return None;
            }
            Err(e) => panic!("{POSTGRES_VAR}: {e}"),
        };
        let name = format!(
            "critic_t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {POSTGRES_VAR}={admin}: {e}"));
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::raw_sql(&sql)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql} at {admin}: {e}"));
        }
        let (base, _) = admin
            .rsplit_once('/')
            .unwrap_or_else(|| panic!("{POSTGRES_VAR}={admin}: a URL ending in /DATABASE"));
        let url = format!("{base}/{name}");
        Some(PgDatabase { admin, name, url })
    }

    /// Drops the database (after the test has closed its connections, or forcing them).
    pub async fn drop(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = sqlx::raw_sql(&sql).execute(&mut conn).await;
        }
    }
}

/// Says on stderr, past libtest's capture, that the running test is skipped and why; the
/// banner first, once per process. One write each, so parallel tests' lines stay whole.
pub fn skipped(why: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let thread = std::thread::current();
    let line = format!(
        "critic: SKIPPED {}: {why}\n",
        thread.name().unwrap_or("a test")
    );
    let mut stderr = std::io::stderr().lock();
    ONCE.call_once(|| {
        let _ = stderr.write_all(BANNER.as_bytes());
    });
    let _ = stderr.write_all(line.as_bytes());
}
