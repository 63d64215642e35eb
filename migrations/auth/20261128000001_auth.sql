-- The auth service's schema: tenants, users, roles and permissions, API keys, refresh tokens,
-- signing keys and the audit log. No other service reads these tables.
CREATE SCHEMA IF NOT EXISTS auth;

CREATE TABLE auth.tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- The operators' tenant: its admins hold tenants:admin.
    is_platform boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE auth.users (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES auth.tenants (id) ON DELETE CASCADE,
    email         text NOT NULL,
    password_hash text NOT NULL,
    display_name  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Login is by email alone, so an email names one user across tenants.
CREATE UNIQUE INDEX users_email_key ON auth.users (lower(email));
CREATE INDEX users_tenant_idx ON auth.users (tenant_id, id);

CREATE TABLE auth.roles (
    name        text PRIMARY KEY,
    description text NOT NULL
);

CREATE TABLE auth.permissions (
    name text PRIMARY KEY CHECK (name ~ '^[a-z*]+:[a-z*]+$')
);

CREATE TABLE auth.role_permissions (
    role       text NOT NULL REFERENCES auth.roles (name) ON DELETE CASCADE,
    permission text NOT NULL REFERENCES auth.permissions (name) ON DELETE CASCADE,
    PRIMARY KEY (role, permission)
);

CREATE TABLE auth.user_roles (
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    role    text NOT NULL REFERENCES auth.roles (name),
    PRIMARY KEY (user_id, role)
);

CREATE TABLE auth.api_keys (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES auth.tenants (id) ON DELETE CASCADE,
    name        text NOT NULL,
    prefix      text NOT NULL,
    -- SHA-256 of the whole key; the key itself is shown once and never stored.
    key_hash    bytea NOT NULL UNIQUE,
    permissions text[] NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant_idx ON auth.api_keys (tenant_id, id);

CREATE TABLE auth.refresh_tokens (
    id         uuid PRIMARY KEY,
    -- Every token rotated from one login shares a family; reuse of a rotated token revokes it.
    family_id  uuid NOT NULL,
    user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON auth.refresh_tokens (family_id);

CREATE TABLE auth.signing_keys (
    kid         text PRIMARY KEY,
    -- PKCS#8 DER of the Ed25519 private key.
    private_key bytea NOT NULL,
    -- The raw 32-byte public key, published in the JWK Set.
    public_key  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);

CREATE TABLE auth.audit_log (
    id        uuid PRIMARY KEY,
    -- Unknown for a failed login with an email nobody has.
    tenant_id uuid REFERENCES auth.tenants (id) ON DELETE CASCADE,
    actor     text NOT NULL,
    action    text NOT NULL,
    target    text NOT NULL DEFAULT '',
    details   jsonb NOT NULL DEFAULT '{}',
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant_idx ON auth.audit_log (tenant_id, id DESC);

INSERT INTO auth.roles (name, description) VALUES
    ('admin', 'everything within the tenant'),
    ('developer', 'builds and runs agents and chains, uses memory, publishes to the marketplace'),
    ('viewer', 'reads agents, chains, memory and the marketplace');

INSERT INTO auth.permissions (name) VALUES
    ('*:*'),
    ('agents:read'), ('agents:execute'), ('agents:write'),
    ('chains:read'), ('chains:write'), ('chains:execute'),
    ('memory:read'), ('memory:write'),
    ('market:read'), ('market:publish'),
    ('users:admin'), ('tenants:admin');

INSERT INTO auth.role_permissions (role, permission) VALUES
    ('admin', '*:*'),
    ('developer', 'agents:read'), ('developer', 'agents:execute'), ('developer', 'agents:write'),
    ('developer', 'chains:read'), ('developer', 'chains:write'), ('developer', 'chains:execute'),
    ('developer', 'memory:read'), ('developer', 'memory:write'),
    ('developer', 'market:read'), ('developer', 'market:publish'),
    ('viewer', 'agents:read'), ('viewer', 'chains:read'), ('viewer', 'memory:read'),
    ('viewer', 'market:read');
