-- Inbound webhook triggers: a signed request to /api/webhooks/in/{id} starts a chain with an
-- input mapped from the request (see services/triggers/src/inbound.rs).
CREATE TABLE triggers.inbound_triggers (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    name           text NOT NULL DEFAULT '',
    chain_id       uuid,
    template       text,
    -- A JSON object whose strings may hold ${body...}, ${headers...}, ${query...}.
    input_mapping  jsonb NOT NULL DEFAULT '{}',
    -- How requests are signed: Standard Webhooks, or GitHub's X-Hub-Signature-256.
    signature      text NOT NULL CHECK (signature IN ('standard', 'github')),
    -- The signing secret, kept as the key itself: an HMAC is checked with it.
    signing_secret text NOT NULL,
    enabled        boolean NOT NULL DEFAULT true,
    -- The API key (purpose SCHEDULE) runs start with, as a schedule's.
    key_id         text NOT NULL,
    secret         text NOT NULL,
    key_expires_at timestamptz NOT NULL,
    created_by     text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((chain_id IS NULL) <> (template IS NULL))
);
CREATE INDEX inbound_triggers_tenant_idx
    ON triggers.inbound_triggers (tenant_id, created_at DESC, id DESC);
