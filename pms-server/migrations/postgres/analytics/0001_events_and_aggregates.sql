-- Every event analytics consumed, once (event_id is the consumer's dedup key), and the
-- aggregates maintained in the same transaction.
CREATE TABLE events (
    seq            BIGSERIAL PRIMARY KEY,
    event_id       UUID NOT NULL UNIQUE,
    topic          TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    key            TEXT NOT NULL,
    occurred_at    TIMESTAMPTZ NOT NULL,
    occurred_at_ms BIGINT NOT NULL,
    data           TEXT NOT NULL
);
CREATE INDEX events_type_time ON events (event_type, occurred_at_ms);
CREATE INDEX events_time ON events (occurred_at_ms);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

CREATE TABLE money_totals (
    currency  TEXT PRIMARY KEY,
    invoiced  BIGINT NOT NULL,
    collected BIGINT NOT NULL,
    refunded  BIGINT NOT NULL
);
