//! What differs between the two SQL backends, as one trait the stores are generic over.
//!
//! Each service writes its SQL once, in a store generic over `B: Backend` (e.g.
//! `SqlPatientStore<B>`), and gets a PostgreSQL and a SQLite store by naming `sqlx::Postgres` or
//! `sqlx::Sqlite`. Both backends accept `$n` placeholders and `RETURNING`, so the statements are
//! shared; what differs is here: how a write transaction starts, how it locks a row it is about to
//! change, and how a statement reports the rows it touched. A service's own dialect differences
//! (where a patient's number comes from, …) are consts of a small trait of its own, implemented for
//! both backends beside its store.
//!
//! sqlx's generic API needs its type bounds stated wherever a store is generic (Rust does not
//! imply bounds on other types from a trait's where-clause); [`Param`] and [`Fetched`] keep each one to a line.

use std::future::Future;

use sqlx::database::HasStatementCache;
use sqlx::pool::PoolConnection;
use sqlx::{Database, Encode, Pool, Postgres, Sqlite, Transaction, Type};

use super::BeginWrite;

/// A SQL backend a store can run on: `sqlx::Postgres` or `sqlx::Sqlite`.
pub trait Backend: Database + HasStatementCache {
    /// Appended to a `SELECT` of rows a write transaction is about to change: PostgreSQL locks
    /// them (`FOR UPDATE`), so concurrent writers queue on the row instead of racing; SQLite's
    /// `BEGIN IMMEDIATE` already holds the whole database's write lock, and it has no row locks.
    const LOCK_ROWS: &'static str;

    /// Starts a write transaction ([`BeginWrite`]): `BEGIN IMMEDIATE` on the SQLite file's single
    /// writer connection; a plain `BEGIN` on PostgreSQL.
    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send;

    /// A connection for writing statements outside a transaction (each its own commit): on
    /// SQLite the file's single writer, so they queue with the write transactions instead of
    /// racing them for the lock in SQLite's polling busy handler; any pooled one on PostgreSQL.
    fn acquire_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<PoolConnection<Self>, sqlx::Error>> + Send;

    /// How many rows a statement inserted, changed or deleted (sqlx has no generic accessor).
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

impl Backend for Postgres {
    const LOCK_ROWS: &'static str = " FOR UPDATE";

    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send {
        pool.begin_write()
    }

    fn acquire_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<PoolConnection<Self>, sqlx::Error>> + Send {
        pool.acquire()
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Backend for Sqlite {
    const LOCK_ROWS: &'static str = "";

    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send {
        pool.begin_write()
    }

    fn acquire_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<PoolConnection<Self>, sqlx::Error>> + Send {
        let writer = super::sqlite_write_pool(pool);
        async move { writer.acquire().await }
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

/// A Rust type a query can bind on backend `B` for the query's lifetime `'q` (one bound instead
/// of sqlx's `Encode + Type` pair). Owned types are bound as `for<'q> T: Param<'q, B>`, borrowed
/// ones as `for<'q> &'q str: Param<'q, B>` (SQLite's `&str` encodes only for its own lifetime).
pub trait Param<'q, B: Database>: Encode<'q, B> + Type<B> + 'q {}

impl<'q, B: Database, T: Encode<'q, B> + Type<B> + 'q> Param<'q, B> for T {}

/// A row type a query can fetch on backend `B` (sqlx's `FromRow` for every row lifetime).
pub trait Fetched<B: Database>: for<'r> sqlx::FromRow<'r, B::Row> + Send + Unpin {}

impl<B: Database, T: for<'r> sqlx::FromRow<'r, B::Row> + Send + Unpin> Fetched<B> for T {}
