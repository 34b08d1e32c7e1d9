-- When an event was handled, not only published: with the in-process bus (no NATS)
-- an event is published into this process's memory, so it counts as handled only once
-- a worker is done with it, and a node starting on the in-process bus publishes again
-- what was published but never handled (the process died with it queued). Published
-- through JetStream, an event is handled when it is stored there.
ALTER TABLE outbox_events ADD COLUMN handled_at BIGINT NULL;
UPDATE outbox_events SET handled_at = published_at;
CREATE INDEX outbox_events_unhandled_idx ON outbox_events (handled_at);
