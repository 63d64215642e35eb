-- A caller's runs share one credential (credentials.rs): an API key of the tenant made with the
-- caller's token, which new runs of the same caller with the same permissions take for
-- `shared_until`, and which a sweep revokes and deletes once that has passed and no unfinished
-- run uses it. It no longer belongs to one run, so it has an id of its own.
CREATE TABLE chains.credentials (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    key_id       text NOT NULL,
    secret       text NOT NULL,
    expires_at   timestamptz NOT NULL,
    shared_until timestamptz NOT NULL
);
CREATE INDEX credentials_shared_until_idx ON chains.credentials (shared_until);

ALTER TABLE chains.chain_runs ADD COLUMN credential_id uuid;
-- What the sweep asks of a credential: does an unfinished run still use it?
CREATE INDEX chain_runs_credential_idx ON chains.chain_runs (credential_id)
    WHERE status IN ('pending', 'running', 'waiting');

-- The runs' own credentials become credentials shared by nobody, used by the runs (and child
-- runs) that used them.
INSERT INTO chains.credentials (id, tenant_id, key_id, secret, expires_at, shared_until)
SELECT c.run_id, r.tenant_id, c.key_id, c.secret, c.expires_at, now()
FROM chains.run_credentials c JOIN chains.chain_runs r ON r.id = c.run_id;
UPDATE chains.chain_runs SET credential_id = coalesce(credential_run_id, id)
WHERE status IN ('pending', 'running', 'waiting');

DROP TABLE chains.run_credentials;
ALTER TABLE chains.chain_runs DROP COLUMN credential_run_id;
