//! Consumer-side deduplication: a `processed_events` table in the consumer's own database. The
//! consumer inserts the event id in the same transaction as its side effect; a redelivered event
//! finds its id already there and does nothing.

use sqlx::{PgConnection, SqliteConnection};
use uuid::Uuid;

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

macro_rules! claim_impl {
    ($conn:ty) => {
        impl Claim for $conn {
            async fn claim(&mut self, consumer: &str, event_id: Uuid) -> Result<bool, sqlx::Error> {
                let done = sqlx::query(CLAIM)
                    .bind(consumer)
                    .bind(event_id)
                    .execute(self)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
claim_impl!(PgConnection);
claim_impl!(SqliteConnection);
