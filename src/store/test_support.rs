//! What every file's store tests share: a fresh store on SQLite or on PostgreSQL, and
//! [`on_both_backends!`], which runs each test on both, since the same SQL must hold on each.

use std::time::Duration;

use super::{NewJob, Next, Store};
use crate::test_env::PgDatabase;

pub(super) fn retry_in(after: Duration) -> Next {
    Next::Retry {
        after,
        counted: true,
        outage: false,
    }
}

pub(super) fn job(key: &str) -> NewJob {
    NewJob {
        kind: "review".into(),
        dedupe_key: key.into(),
        payload: "{}".into(),
        min_gap: Duration::ZERO,
        requested: false,
    }
}

pub(super) async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (Store::connect(&url).await.expect("connect"), dir)
}

/// A store on a fresh database of the test server (see `crate::test_env`), or `None`: the
/// test is skipped.
pub(super) async fn postgres() -> Option<(Store, PgDatabase)> {
    let db = PgDatabase::create().await?;
    let store = Store::connect(&db.url)
        .await
        .expect("connect to the new database");
    Some((store, db))
}

/// Each store test runs against both backends: the same SQL must hold on SQLite and
/// PostgreSQL (skipped, and saying so, without `CRITIC_TEST_POSTGRES_URL`). Invoked in a
/// file's `tests` module with that module's test functions, each an `async fn(Store)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _dir) = $crate::store::test_support::sqlite().await;
                    super::$name(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some((store, db)) = $crate::store::test_support::postgres().await else {
                        return;
                    };
                    super::$name(store.clone()).await;
                    store.pool.close().await;
                    db.drop().await;
                }
            )*
        }
    };
}
pub(super) use on_both_backends;
