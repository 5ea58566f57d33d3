-- Every event analytics consumed, once (event_id is the consumer's dedup key), and the
-- aggregates maintained in the same transaction.
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       BLOB NOT NULL UNIQUE,
    topic          TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    key            TEXT NOT NULL,
    occurred_at    TEXT NOT NULL,
    occurred_at_ms INTEGER NOT NULL,
    data           TEXT NOT NULL
);
CREATE INDEX events_type_time ON events (event_type, occurred_at_ms);
CREATE INDEX events_time ON events (occurred_at_ms);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

CREATE TABLE money_totals (
    currency  TEXT PRIMARY KEY,
    invoiced  INTEGER NOT NULL,
    collected INTEGER NOT NULL,
    refunded  INTEGER NOT NULL
);
