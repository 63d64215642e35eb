-- Access tokens refused before their expiry: those of `subject` (a user or API key) issued
-- before `not_before`, or those of `session` (a login's refresh-token family). Pushed to every
-- verifier on NATS when recorded; this table is the list a verifier fetches when it starts or
-- catches up. Rows past `expires_at` concern no unexpired token and are deleted.
CREATE TABLE auth.revocations (
    id         bigserial PRIMARY KEY,
    subject    text NOT NULL DEFAULT '',
    session    text NOT NULL DEFAULT '',
    not_before timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    CHECK ((subject = '') <> (session = ''))
);
CREATE INDEX revocations_expires_at_idx ON auth.revocations (expires_at);

-- Keys by creator: a deleted or re-roled user's keys are found without a scan.
CREATE INDEX api_keys_creator_idx ON auth.api_keys (tenant_id, created_by);

-- Creating, listing and revoking API keys is a permission of its own, admins' by default.
INSERT INTO auth.permissions (name) VALUES ('keys:admin');

-- A tool's key, or a chain run's own credential (made with the run starter's token, acting for
-- no more and living no longer than it).
ALTER TABLE auth.api_keys ADD COLUMN purpose text NOT NULL DEFAULT 'tool'
    CHECK (purpose IN ('tool', 'chain_run'));
