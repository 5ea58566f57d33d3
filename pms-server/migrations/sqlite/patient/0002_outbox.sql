-- Transactional outbox (DESIGN §8): an event row is written in the same transaction as the patient
-- change it describes; the relay publishes rows in `seq` order and marks them.
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           BLOB NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    key          TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    payload      BLOB NOT NULL,
    occurred_at  TEXT NOT NULL,
    published_at TEXT
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
