//! What every file's store tests share: a fresh store on SQLite or on PostgreSQL, and
//! [`on_both_backends!`], which runs each test on both, since the same SQL must hold on each.

use std::time::Duration;

use super::{NewJob, Next, Store, now_ms};

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

/// The PostgreSQL server of these machines (CI starts it): trust auth, database `test`.
/// `CRITIC_TEST_POSTGRES_URL` points elsewhere.
fn postgres_url() -> String {
    std::env::var("CRITIC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh database per test, so tests run in parallel and start empty; dropped after.
pub(super) struct PgDb {
    admin: String,
    name: String,
}

impl PgDb {
    pub(super) async fn create() -> (Store, PgDb) {
        use sqlx::Connection;
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let admin = postgres_url();
        let name = format!(
            "critic_t{}_{}_{}",
            std::process::id(),
            now_ms(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {admin} (start it, or set CRITIC_TEST_POSTGRES_URL): {e}")
            });
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let (base, _) = admin.rsplit_once('/').expect("url with a database");
        let store = Store::connect(&format!("{base}/{name}"))
            .await
            .expect("connect to the new database");
        (store, PgDb { admin, name })
    }

    pub(super) async fn drop_db(self, store: Store) {
        use sqlx::Connection;
        store.pool.close().await;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::raw_sql(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

/// Each store test runs against both backends: the same SQL must hold on SQLite and
/// PostgreSQL. Invoked in a file's `tests` module with that module's test functions, each
/// an `async fn(Store)`.
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
                    let (store, db) = $crate::store::test_support::PgDb::create().await;
                    super::$name(store.clone()).await;
                    db.drop_db(store).await;
                }
            )*
        }
    };
}
pub(super) use on_both_backends;
