//! Consumer-side deduplication: a `processed_events` table in the consumer's own database. The
//! consumer inserts the event id in the same transaction as its side effect; a redelivered event
//! finds its id already there and does nothing.

use std::collections::HashSet;

use sqlx::{Database, Executor, IntoArguments};
use uuid::Uuid;

use crate::store::{Backend, Fetched, Param, SqlBuilder};

/// Claims an event id inside the caller's transaction: `true` the first time, `false` if the
/// event was already processed (then the caller must skip its effect).
pub trait Claim {
    fn claim(
        &mut self,
        consumer: &str,
        event_id: Uuid,
    ) -> impl std::future::Future<Output = Result<bool, sqlx::Error>> + Send;

    /// Claims many event ids with one statement: the ones claimed now (the others were
    /// processed already, or are repeated in `event_ids`).
    fn claim_all(
        &mut self,
        consumer: &str,
        event_ids: &[Uuid],
    ) -> impl std::future::Future<Output = Result<HashSet<Uuid>, sqlx::Error>> + Send;
}

const CLAIM: &str =
    "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";

impl<C> Claim for C
where
    C: sqlx::Connection,
    C::Database: Backend,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
    for<'q> <C::Database as Database>::Arguments<'q>: IntoArguments<'q, C::Database>,
    for<'q> &'q str: Param<'q, C::Database>,
    for<'q> Uuid: Param<'q, C::Database>,
    for<'q> String: Param<'q, C::Database>,
    (Uuid,): Fetched<C::Database>,
{
    async fn claim(&mut self, consumer: &str, event_id: Uuid) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(CLAIM)
            .bind(consumer)
            .bind(event_id)
            .execute(self)
            .await?;
        Ok(<C::Database as Backend>::rows_affected(&done) == 1)
    }

    async fn claim_all(
        &mut self,
        consumer: &str,
        event_ids: &[Uuid],
    ) -> Result<HashSet<Uuid>, sqlx::Error> {
        let mut claimed = HashSet::with_capacity(event_ids.len());
        // Two parameters a row: far below either backend's limit per statement.
        for chunk in event_ids.chunks(1000) {
            let mut sql = SqlBuilder::<C::Database>::new(
                "INSERT INTO processed_events (consumer, event_id) ",
            );
            sql.push_values(chunk, |row, id| {
                row.push_bind(consumer.to_owned()).push_bind(*id);
            });
            sql.push(" ON CONFLICT DO NOTHING RETURNING event_id");
            let (sql, args) = sql.into_parts()?;
            let rows: Vec<(Uuid,)> = sqlx::query_as_with(&sql, args)
                .persistent(chunk.len() == 1)
                .fetch_all(&mut *self)
                .await?;
            claimed.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(claimed)
    }
}
