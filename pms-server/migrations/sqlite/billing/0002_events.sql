-- Events: the transactional outbox of the `billing` topic (written in the same transaction as the
-- ledger change it describes, published by the relay) and the consumer-side dedup table of the
-- `billing-service` consumer of the `patient` topic.

CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            BLOB NOT NULL UNIQUE,
    topic         TEXT NOT NULL,
    key           TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    payload       BLOB NOT NULL,
    occurred_at   TEXT NOT NULL,
    published_at  TEXT
);
CREATE INDEX outbox_pending_idx ON outbox (seq) WHERE published_at IS NULL;

CREATE TABLE processed_events (
    consumer      TEXT NOT NULL,
    event_id      BLOB NOT NULL,
    processed_at  TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (consumer, event_id)
);
