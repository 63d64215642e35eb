-- The outcome of every finished run whose caller named its run id (ExecuteAgent's run_id), kept
-- so that the same request again — a chain step asked again after a restart — is answered with
-- it instead of a second run of the agent. Runs without a caller's id are not kept. Rows older
-- than SANKALPA_AGENTS_RUN_RETENTION_MS (24 h by default) are deleted by a sweep.
CREATE TABLE agents.runs (
    tenant_id    uuid NOT NULL,
    run_id       text NOT NULL CHECK (run_id ~ '^[A-Za-z0-9_-]{1,128}$'),
    -- What was asked, which a repeat must ask again: the agent, and a SHA-256 of the input.
    agent        text NOT NULL,
    input_sha256 bytea NOT NULL,
    status       text NOT NULL CHECK (status IN ('completed', 'failed', 'cancelled')),
    -- The answer as ExecuteAgent gave it: output, error, artifacts, LLM usage, times.
    outcome      jsonb NOT NULL,
    finished_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, run_id)
);

-- The sweep deletes by age.
CREATE INDEX runs_finished_at ON agents.runs (finished_at);
