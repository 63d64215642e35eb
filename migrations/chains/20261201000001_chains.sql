-- The chain orchestrator's schema: chain definitions with their versions, runs, and the state of
-- every step of a run. No other service reads these tables.
CREATE SCHEMA IF NOT EXISTS chains;

CREATE TABLE chains.chains (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    name           text NOT NULL,
    latest_version integer NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX chains_tenant_name_key ON chains.chains (tenant_id, name);

-- Every version stays readable and runnable; an update adds a row.
CREATE TABLE chains.chain_versions (
    chain_id        uuid NOT NULL REFERENCES chains.chains (id) ON DELETE CASCADE,
    version         integer NOT NULL,
    name            text NOT NULL,
    description     text NOT NULL,
    -- As submitted, so a user gets back what they wrote.
    definition_json text NOT NULL,
    step_count      integer NOT NULL,
    created_by      text NOT NULL,
    installed_from  text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, version)
);

CREATE TABLE chains.chain_runs (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    chain_id         uuid,
    chain_version    integer,
    template         text,
    chain_name       text NOT NULL,
    status           text NOT NULL
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    cancel_requested boolean NOT NULL DEFAULT false,
    input            jsonb NOT NULL,
    output           jsonb,
    error_code       text,
    error_message    text,
    session_id       text NOT NULL,
    idempotency_key  text,
    -- SHA-256 of the request an idempotency key was first used with, to refuse a different one.
    request_hash     text NOT NULL,
    -- The DAG form being run: later edits of the chain do not change a run in flight.
    definition       jsonb NOT NULL,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    -- The replica executing the run, until lease_expires_at; renewed by its heartbeat.
    lease_owner      uuid,
    lease_expires_at timestamptz
);
CREATE UNIQUE INDEX chain_runs_idempotency_key ON chains.chain_runs (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX chain_runs_tenant_idx ON chains.chain_runs (tenant_id, id DESC);
-- What the claim loop scans: unfinished runs only.
CREATE INDEX chain_runs_unfinished_idx ON chains.chain_runs (lease_expires_at NULLS FIRST, created_at)
    WHERE status IN ('pending', 'running');

-- The credential a run calls agent-runner with (see credentials.rs): an API key of the tenant,
-- kept only while the run is unfinished, deleted with its end.
CREATE TABLE chains.run_credentials (
    run_id     uuid PRIMARY KEY REFERENCES chains.chain_runs (id) ON DELETE CASCADE,
    key_id     text NOT NULL,
    secret     text NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE TABLE chains.chain_steps (
    run_id        uuid NOT NULL REFERENCES chains.chain_runs (id) ON DELETE CASCADE,
    step_id       text NOT NULL,
    -- The step's place in the definition, to list steps in the order they were written.
    position      integer NOT NULL,
    agent         text NOT NULL,
    status        text NOT NULL
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'skipped', 'cancelled')),
    attempts      integer NOT NULL DEFAULT 0,
    agent_run_id  text NOT NULL DEFAULT '',
    started_at    timestamptz,
    finished_at   timestamptz,
    duration_ms   bigint NOT NULL DEFAULT 0,
    input         jsonb,
    output        jsonb,
    error_code    text,
    error_message text,
    skip_reason   text NOT NULL DEFAULT '',
    artifacts     jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (run_id, step_id)
);
