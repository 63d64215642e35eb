-- The marketplace's events, enqueued in the transaction of the change they announce and
-- published by the relay after the commit (see the kit's outbox module).
CREATE TABLE marketplace.outbox (
    -- Enqueue order: the relay publishes in this order.
    id          bigserial PRIMARY KEY,
    -- The CloudEvent as structured JSON; its `id` is the Nats-Msg-Id.
    event       jsonb NOT NULL,
    -- The trace context of the request that enqueued it, sent as NATS headers.
    headers     jsonb NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now()
);
