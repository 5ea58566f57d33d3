-- `/analytics/events?type=` pages through one or more types in seq order: served by this index
-- instead of scanning every event.
CREATE INDEX events_type_seq ON events (event_type, seq);
