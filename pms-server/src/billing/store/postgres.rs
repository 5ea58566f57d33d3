//! The billing store on PostgreSQL (schema `billing`): the shared SQL of [`super::sql`], with
//! `SELECT … FOR UPDATE` row locks so concurrent writes to one account serialise while writes to
//! different accounts run in parallel.

super::sql::billing_store!(PgBillingStore, sqlx::Postgres, sqlx::PgPool, " FOR UPDATE");
