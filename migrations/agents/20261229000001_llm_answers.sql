-- The LLM's answers kept per tenant (SANKALPA_LLM_CACHE_TTL_MS, off by default): a run asking
-- a tenant's model what it was asked before, within the TTL, reads the answer here instead.
-- `key` is the SHA-256 of the provider's URL and the whole request body (model, messages,
-- temperature); expired rows are deleted by agent-runner's sweep.
CREATE TABLE agents.llm_answers (
    tenant_id  uuid NOT NULL,
    key        bytea NOT NULL,
    text       text NOT NULL,
    model      text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX llm_answers_expiry ON agents.llm_answers (expires_at);
