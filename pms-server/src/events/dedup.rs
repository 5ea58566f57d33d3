//! Consumer-side deduplication: a `processed_events` table in the consumer's own database. The
//! consumer inserts the event id in the same transaction as its side effect; a redelivered event
//! finds its id already there and does nothing.

use sqlx::{Database, Executor, IntoArguments};
use uuid::Uuid;

use crate::store::{Backend, Param};

/// Claims an event id inside the caller's transaction: `true` the first time, `false` if the
/// event was already processed (then the caller must skip its effect).
pub trait Claim {
    fn claim(
        &mut self,
        consumer: &str,
        event_id: Uuid,
    ) -> impl std::future::Future<Output = Result<bool, sqlx::Error>> + Send;
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
{
    async fn claim(&mut self, consumer: &str, event_id: Uuid) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(CLAIM)
            .bind(consumer)
            .bind(event_id)
            .execute(self)
            .await?;
        Ok(<C::Database as Backend>::rows_affected(&done) == 1)
    }
}
