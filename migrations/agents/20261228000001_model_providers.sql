-- Each tenant's model providers (an OpenAI-compatible or Anthropic endpoint, its models) and
-- default model. An API key is stored encrypted (AES-256-GCM under the envelope key named by
-- key_id, a nonce of its own, the tenant and provider name as associated data), never in clear.
CREATE TABLE agents.model_providers (
    tenant_id      uuid NOT NULL,
    name           text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    protocol       text NOT NULL CHECK (protocol IN ('openai', 'anthropic')),
    base_url       text NOT NULL CHECK (length(base_url) BETWEEN 1 AND 2048),
    models         text[] NOT NULL CHECK (cardinality(models) BETWEEN 1 AND 50),
    key_id         text,
    key_nonce      bytea,
    key_ciphertext bytea,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name),
    CHECK ((key_id IS NULL) = (key_ciphertext IS NULL) AND (key_id IS NULL) = (key_nonce IS NULL))
);

-- A tenant's default model; deleting its provider deletes it.
CREATE TABLE agents.model_defaults (
    tenant_id uuid PRIMARY KEY,
    provider  text NOT NULL,
    model     text NOT NULL,
    FOREIGN KEY (tenant_id, provider) REFERENCES agents.model_providers (tenant_id, name)
        ON DELETE CASCADE
);
