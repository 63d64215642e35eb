-- One row per item and lexeme of its search vector, with the rank that lexeme alone gives the
-- item: a one-term search by relevance (the commonest search) reads its page off this index,
-- already in rank order, instead of ranking every one of the thousand-odd items a broad term
-- matches. The filters ride along in the index, so the walk does not visit the table. Kept by
-- triggers on `item_search`, in the transaction of each change; only a change of the vector or
-- a filter rewrites an item's rows, not a download or a review.
CREATE TABLE marketplace.item_terms (
    id                  uuid NOT NULL REFERENCES marketplace.item_search (id) ON DELETE CASCADE,
    -- The lexeme as the one-node query websearch_to_tsquery gives for it.
    term                tsquery NOT NULL,
    rank                real NOT NULL,
    created_at          timestamptz NOT NULL,
    publisher_tenant_id uuid NOT NULL,
    kind                text NOT NULL,
    visibility          text NOT NULL,
    tags                text[] NOT NULL,
    PRIMARY KEY (id, term)
);
CREATE INDEX item_terms_rank_idx ON marketplace.item_terms (term, rank DESC, created_at DESC, id DESC)
    INCLUDE (publisher_tenant_id, kind, visibility, tags);

-- An exact name match goes before the ranked ones: found by this index, not by a scan.
CREATE INDEX item_search_lower_name_idx ON marketplace.item_search (lower(name));

-- A lexeme as a tsquery literal: quotes and backslashes doubled, as tsquery input reads them.
CREATE FUNCTION marketplace.term_query(lexeme text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT format('''%s''', replace(replace(lexeme, '\', '\\'), '''', ''''''))::tsquery
$$;

CREATE FUNCTION marketplace.item_terms_sync() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM marketplace.item_terms WHERE id = NEW.id;
    INSERT INTO marketplace.item_terms (id, term, rank, created_at, publisher_tenant_id, kind,
        visibility, tags)
    SELECT NEW.id, t.term, ts_rank(NEW.search, t.term), NEW.created_at,
        NEW.publisher_tenant_id, NEW.kind, NEW.visibility, NEW.tags
    FROM unnest(NEW.search) AS u,
        LATERAL (SELECT marketplace.term_query(u.lexeme) AS term) AS t;
    RETURN NULL;
END
$$;

CREATE TRIGGER item_search_terms_insert AFTER INSERT ON marketplace.item_search
    FOR EACH ROW EXECUTE FUNCTION marketplace.item_terms_sync();

CREATE TRIGGER item_search_terms_update AFTER UPDATE ON marketplace.item_search
    FOR EACH ROW
    WHEN (OLD.search IS DISTINCT FROM NEW.search
        OR OLD.created_at IS DISTINCT FROM NEW.created_at
        OR OLD.publisher_tenant_id IS DISTINCT FROM NEW.publisher_tenant_id
        OR OLD.kind IS DISTINCT FROM NEW.kind
        OR OLD.visibility IS DISTINCT FROM NEW.visibility
        OR OLD.tags IS DISTINCT FROM NEW.tags)
    EXECUTE FUNCTION marketplace.item_terms_sync();

INSERT INTO marketplace.item_terms (id, term, rank, created_at, publisher_tenant_id, kind,
    visibility, tags)
SELECT s.id, t.term, ts_rank(s.search, t.term), s.created_at, s.publisher_tenant_id, s.kind,
    s.visibility, s.tags
FROM marketplace.item_search s, unnest(s.search) AS u,
    LATERAL (SELECT marketplace.term_query(u.lexeme) AS term) AS t;
