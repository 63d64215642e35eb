-- The memory service's schema: sessions of key -> JSON entries, and the backups made of them
-- (their documents live in the object store). No other service reads these tables.
CREATE SCHEMA IF NOT EXISTS memory;

-- Session ids are chosen by callers and unique within a tenant. "C" collation: keys and ids
-- sort by bytes, so paging with `>` agrees with ORDER BY whatever the database's locale.
CREATE TABLE memory.sessions (
    tenant_id  uuid NOT NULL,
    id         text COLLATE "C" NOT NULL,
    -- The user that created it; empty when an API key did.
    user_id    text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Bumped by changes that leave no entry behind (deletes, restores). A session's last write
    -- is the later of this and its newest entry, so saves never contend on the session row.
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX sessions_newest_idx ON memory.sessions (tenant_id, created_at DESC, id DESC);

-- Orders every write to a key, across deletes and re-creations (where `version` restarts at 1):
-- the read-through cache keeps only the newest revision it is told about, so a slow reader
-- cannot put back a value that a later write replaced.
CREATE SEQUENCE memory.revisions;

CREATE TABLE memory.entries (
    tenant_id  uuid NOT NULL,
    session_id text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    value      jsonb NOT NULL,
    version    bigint NOT NULL CHECK (version > 0),
    revision   bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- An entry past this time reads as absent and is swept away.
    expires_at timestamptz,
    PRIMARY KEY (tenant_id, session_id, key),
    FOREIGN KEY (tenant_id, session_id) REFERENCES memory.sessions (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX entries_expiry_idx ON memory.entries (expires_at) WHERE expires_at IS NOT NULL;

-- Backups outlive their session: deleting a session keeps them, so it can be restored.
CREATE TABLE memory.backups (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    session_id  text NOT NULL,
    label       text NOT NULL,
    object_key  text NOT NULL,
    entry_count bigint NOT NULL,
    size_bytes  bigint NOT NULL,
    -- Hex SHA-256 of the stored document, checked before every restore.
    sha256      text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Ids are UUIDv7, so id order is creation order.
CREATE INDEX backups_tenant_idx ON memory.backups (tenant_id, id DESC);
CREATE INDEX backups_session_idx ON memory.backups (tenant_id, session_id, id DESC);
