-- The LLM tokens each tenant's runs used per UTC day (prompt and completion, as the provider
-- reports them), counted here so that every agent-runner replica sees the same count when it
-- checks the daily quota (SANKALPA_LLM_TOKENS_PER_TENANT_PER_DAY) before a call.
CREATE TABLE agents.llm_usage (
    tenant_id uuid NOT NULL,
    day       date NOT NULL,
    tokens    bigint NOT NULL CHECK (tokens >= 0),
    PRIMARY KEY (tenant_id, day)
);
