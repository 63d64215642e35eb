-- Every session counts its keys (expired ones too, until they are swept) and holds at most
-- memory.max_keys_per_session() of them: a write that would create a key past that fails with
-- the constraint name sessions_key_count_bound (the service answers FAILED_PRECONDITION), while
-- writes to existing keys and deletes go on. Work on a whole session (deleting, restoring or
-- backing it up, paging through it) then has a known upper bound.
CREATE FUNCTION memory.max_keys_per_session() RETURNS integer
    LANGUAGE sql IMMUTABLE AS 'SELECT 10000';

ALTER TABLE memory.sessions ADD COLUMN key_count integer NOT NULL DEFAULT 0;
UPDATE memory.sessions s SET key_count = (
    SELECT count(*) FROM memory.entries e WHERE e.tenant_id = s.tenant_id AND e.session_id = s.id
);

-- Once per statement rather than per row: a restore or transaction creating thousands of keys
-- updates its session once, not once per key. An upsert of an existing key is an update, and
-- its statement finds no created rows here. Sessions are updated in key order, so statements
-- counting in the same sessions at once lock them in one order and cannot deadlock on them.
CREATE FUNCTION memory.count_created_keys() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    created record;
    held integer;
BEGIN
    FOR created IN
        SELECT tenant_id, session_id, count(*)::integer AS keys FROM created_entries
        GROUP BY tenant_id, session_id ORDER BY tenant_id, session_id
    LOOP
        UPDATE memory.sessions SET key_count = key_count + created.keys
        WHERE tenant_id = created.tenant_id AND id = created.session_id
        RETURNING key_count INTO held;
        IF held > memory.max_keys_per_session() THEN
            RAISE EXCEPTION 'session % would hold % keys, and a session holds at most %: delete keys or use another session',
                created.session_id, held, memory.max_keys_per_session()
                USING ERRCODE = 'check_violation', CONSTRAINT = 'sessions_key_count_bound';
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
CREATE TRIGGER entries_count_created AFTER INSERT ON memory.entries
    REFERENCING NEW TABLE AS created_entries
    FOR EACH STATEMENT EXECUTE FUNCTION memory.count_created_keys();

CREATE FUNCTION memory.count_deleted_keys() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    removed record;
BEGIN
    FOR removed IN
        SELECT tenant_id, session_id, count(*)::integer AS keys FROM deleted_entries
        GROUP BY tenant_id, session_id ORDER BY tenant_id, session_id
    LOOP
        UPDATE memory.sessions SET key_count = key_count - removed.keys
        WHERE tenant_id = removed.tenant_id AND id = removed.session_id;
    END LOOP;
    RETURN NULL;
END $$;
CREATE TRIGGER entries_count_deleted AFTER DELETE ON memory.entries
    REFERENCING OLD TABLE AS deleted_entries
    FOR EACH STATEMENT EXECUTE FUNCTION memory.count_deleted_keys();
