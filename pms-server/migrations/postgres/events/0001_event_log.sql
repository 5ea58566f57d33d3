-- The embedded event log (transport of pms-server without Kafka).
CREATE TABLE event_log (
    seq         BIGSERIAL PRIMARY KEY,
    id          UUID NOT NULL UNIQUE,
    topic       TEXT NOT NULL,
    key         TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    payload     BYTEA NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    appended_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE consumer_offsets (
    group_id TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
