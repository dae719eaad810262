//! Test fixtures shared by the integration tests.

#![allow(dead_code)]

use std::time::Duration;

use sqlx::Connection as _;

/// The server the PostgreSQL tests use unless `LPBRIDGE_TEST_DATABASE_URL` says otherwise.
pub const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A throwaway PostgreSQL database, dropped when this value is (also on a failing test).
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// A fresh database (`None`, after printing why, when PostgreSQL is not reachable).
    pub async fn create() -> Option<Self> {
        let base = std::env::var("LPBRIDGE_TEST_DATABASE_URL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_PG.to_owned());
        let mut admin = url::Url::parse(&base).expect("LPBRIDGE_TEST_DATABASE_URL is a URL");
        admin.set_path("/postgres");
        let admin_url = admin.to_string();
        let connected = tokio::time::timeout(
            Duration::from_secs(5),
            sqlx::PgConnection::connect(&admin_url),
        )
        .await;
        let mut conn = match connected {
            Ok(Ok(c)) => c,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                let shown = lpbridge::store::redact_url(&base);
                if std::env::var("LPBRIDGE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                    panic!(
                        "PostgreSQL not reachable at {shown} ({why}) and LPBRIDGE_REQUIRE_POSTGRES=1"
                    );
                }
                println!("skipped: PostgreSQL not reachable at {shown} ({why})");
                return None;
            }
        };
        let name = format!("lpbridge_t_{:016x}", rand::random::<u64>());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        let _ = conn.close().await;
        let mut url = url::Url::parse(&base).unwrap();
        url.set_path(&format!("/{name}"));
        Some(Self {
            admin_url,
            name,
            url: url.to_string(),
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Async work in `drop`: on its own thread and runtime, so it also runs while a failed
        // test unwinds. `WITH (FORCE)` ends the pools' sessions.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut c = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await?;
                c.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}
