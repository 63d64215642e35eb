-- Outbound webhooks: a tenant's endpoints, their signing secrets, and one delivery per event
-- and endpoint with its attempts (see services/triggers).
CREATE TABLE triggers.endpoints (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    url             text NOT NULL,
    description     text NOT NULL DEFAULT '',
    -- CloudEvents types or tenant-less subjects, `*` and a final `>` as wildcards.
    event_types     text[] NOT NULL,
    -- One delivery at a time, in event order, when true.
    ordered         boolean NOT NULL DEFAULT false,
    enabled         boolean NOT NULL DEFAULT true,
    disabled_reason text NOT NULL DEFAULT '',
    -- The first failure since the last success; the endpoint is disabled when it is too old.
    failing_since   timestamptz,
    created_by      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX endpoints_tenant_idx ON triggers.endpoints (tenant_id, created_at DESC, id DESC);

-- Signing secrets: the current one (expires_at NULL) and, during a rotation's overlap, the
-- previous one. Kept as the key itself: an HMAC is signed with it, unlike a password.
CREATE TABLE triggers.endpoint_secrets (
    id          bigserial PRIMARY KEY,
    endpoint_id uuid NOT NULL REFERENCES triggers.endpoints (id) ON DELETE CASCADE,
    secret      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz
);
CREATE INDEX endpoint_secrets_endpoint_idx ON triggers.endpoint_secrets (endpoint_id);

-- One event to send to one endpoint. `seq` is the order events were taken in, which ordered
-- endpoints are delivered in; a pending row whose next_attempt_at is in the future is waiting
-- for a retry or leased to the replica attempting it.
CREATE TABLE triggers.deliveries (
    id              uuid PRIMARY KEY,
    seq             bigserial NOT NULL UNIQUE,
    tenant_id       uuid NOT NULL,
    endpoint_id     uuid NOT NULL REFERENCES triggers.endpoints (id) ON DELETE CASCADE,
    -- The webhook-id: `msg_<event id>`, the same on every attempt and replay.
    message_id      text NOT NULL,
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    -- The request body, exactly as signed and sent.
    body            text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    -- Attempts of the current round: a replay starts the retry schedule over.
    round_attempts  integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status_code integer NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    last_latency_ms integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- A redelivered JetStream message adds no second delivery.
    UNIQUE (endpoint_id, message_id)
);
CREATE INDEX deliveries_due_idx ON triggers.deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_pending_seq_idx ON triggers.deliveries (endpoint_id, seq)
    WHERE status = 'pending';
CREATE INDEX deliveries_endpoint_idx ON triggers.deliveries (endpoint_id, seq DESC);

-- What each attempt sent and got.
CREATE TABLE triggers.attempts (
    delivery_id     uuid NOT NULL REFERENCES triggers.deliveries (id) ON DELETE CASCADE,
    attempt         integer NOT NULL,
    started_at      timestamptz NOT NULL,
    url             text NOT NULL,
    request_headers jsonb NOT NULL,
    status_code     integer NOT NULL DEFAULT 0,
    latency_ms      integer NOT NULL DEFAULT 0,
    response_body   text NOT NULL DEFAULT '',
    error           text NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, attempt)
);

-- The service's events (webhooks.<tenant>.<endpoint>.<delivered|failed|disabled>), enqueued with
-- the change they announce and published by the kit's outbox relay.
CREATE TABLE triggers.outbox (
    id          bigserial PRIMARY KEY,
    event       jsonb NOT NULL,
    headers     jsonb NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE triggers.outbox_dead (
    id          bigint PRIMARY KEY,
    event       jsonb NOT NULL,
    headers     jsonb NOT NULL,
    enqueued_at timestamptz NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    reason      text NOT NULL
);
