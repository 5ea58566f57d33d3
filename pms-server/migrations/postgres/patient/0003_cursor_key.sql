-- The key that seals listing cursors (see src/patient/cursor.rs): created once by the first
-- replica to start, shared by every replica, so a cursor from one works on all.
CREATE TABLE cursor_key (
    id  smallint PRIMARY KEY CHECK (id = 1),
    key bytea NOT NULL
);
