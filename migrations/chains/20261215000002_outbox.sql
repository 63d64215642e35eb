-- Run and step events committed together with the transition they announce, published to NATS
-- by the relay (sankalpa_kit::outbox) and deleted once JetStream has stored them.
CREATE TABLE chains.outbox (
    -- Enqueue order: the relay publishes in this order.
    id          bigserial PRIMARY KEY,
    -- The CloudEvent as structured JSON; its `id` is the Nats-Msg-Id.
    event       jsonb NOT NULL,
    -- The trace context of the request that enqueued it, sent as NATS headers.
    headers     jsonb NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now()
);
