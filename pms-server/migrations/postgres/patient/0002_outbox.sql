-- Transactional outbox (DESIGN §8): an event row is written in the same transaction as the patient
-- change it describes; the relay publishes rows in `seq` order and marks them.
CREATE TABLE outbox (
    seq          BIGSERIAL PRIMARY KEY,
    id           UUID NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    key          TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
