-- Where the reader of the event stream goes on from: the stream sequence of the first event not
-- yet taken into deliveries, per stream (services/triggers/src/ingest.rs).
CREATE TABLE triggers.ingest_cursor (
    stream        text PRIMARY KEY,
    next_sequence bigint NOT NULL CHECK (next_sequence > 0)
);
