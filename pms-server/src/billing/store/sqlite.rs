//! The billing store on SQLite (file `billing.db`): the shared SQL of [`super::sql`] without row
//! locks — every write transaction starts with `BEGIN IMMEDIATE`, which takes the database's
//! single write lock and so serialises writers.

super::sql::billing_store!(SqliteBillingStore, sqlx::Sqlite, sqlx::SqlitePool, "");
