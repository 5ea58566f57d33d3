-- The embedded event log (transport of pms-server without Kafka).
CREATE TABLE event_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          BLOB NOT NULL UNIQUE,
    topic       TEXT NOT NULL,
    key         TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    payload     BLOB NOT NULL,
    occurred_at TEXT NOT NULL,
    appended_at TEXT NOT NULL
);

CREATE TABLE consumer_offsets (
    group_id TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);
