-- The agent runner's schema: the agents tenants define for themselves. Built-in agents live in
-- catalog/agents.json; runs are not stored (their files are in the object store, their history
-- in the agents.* events).
CREATE SCHEMA IF NOT EXISTS agents;

CREATE TABLE agents.custom_agents (
    tenant_id      uuid NOT NULL,
    name           text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
    category       text NOT NULL,
    -- The definition document as the tenant wrote it (validated before it is stored).
    definition     jsonb NOT NULL,
    revision       bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    created_by     text NOT NULL,
    -- "<marketplace item id>@<version>" when installed from the marketplace, else ''.
    installed_from text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);
