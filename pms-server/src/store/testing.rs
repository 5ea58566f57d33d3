//! Test support: a fresh, empty PostgreSQL database per call, from `PMS_TEST_DATABASE_URL`.
//! Panics (never skips) when the variable is missing: a missing PostgreSQL is a CI failure.

use sqlx::Connection;

/// Creates `pms_test_<uuid>` on the server of `PMS_TEST_DATABASE_URL` and returns its URL.
pub async fn fresh_postgres_url() -> String {
    let base = std::env::var("PMS_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "PMS_TEST_DATABASE_URL is not set: the PostgreSQL suites need a server \
             (run `scripts/test`, which starts one, or export a URL of a role with CREATEDB)"
        )
    });
    let name = format!("pms_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PMS_TEST_DATABASE_URL: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database: {e}"));
    conn.close().await.ok();
    let mut url = url::Url::parse(&base).expect("PMS_TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    url.to_string()
}
