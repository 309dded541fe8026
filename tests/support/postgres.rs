//! A fresh PostgreSQL database for one test: on the server of these machines
//! (`postgres://postgres@127.0.0.1:5432/test`, trust auth), or `CRITIC_TEST_POSTGRES_URL`.

use sqlx::Connection;

pub struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    pub async fn create() -> Database {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let admin = std::env::var("CRITIC_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!(
            "critic_it{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {admin} (start it, or set CRITIC_TEST_POSTGRES_URL): {e}")
            });
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .expect("drop a leftover database");
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let (base, _) = admin.rsplit_once('/').expect("url with a database");
        let url = format!("{base}/{name}");
        Database { admin, name, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn drop(self) {
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
