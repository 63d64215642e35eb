-- One row per item and lexeme of its search vector, with the rank that lexeme alone gives the
-- item and the other sort keys: a one-term search (the commonest search) reads its page off
-- the index of its order, already sorted, instead of ranking or sorting every one of the
-- thousand-odd items a broad term matches. The filters ride along in the indexes, so a walk
-- does not visit the table. Kept by triggers on `item_search`, in the transaction of each
-- change: an item's rows are rewritten when its vector, a sort key or a filter changes.
CREATE TABLE marketplace.item_terms (
    id                  uuid NOT NULL REFERENCES marketplace.item_search (id) ON DELETE CASCADE,
    -- The lexeme as the one-node query websearch_to_tsquery gives for it.
    term                tsquery NOT NULL,
    rank                real NOT NULL,
    downloads           bigint NOT NULL,
    rating_average      double precision NOT NULL,
    rating_count        bigint NOT NULL,
    created_at          timestamptz NOT NULL,
    publisher_tenant_id uuid NOT NULL,
    kind                text NOT NULL,
    visibility          text NOT NULL,
    tags                text[] NOT NULL,
    PRIMARY KEY (id, term)
);
CREATE INDEX item_terms_rank_idx
    ON marketplace.item_terms (term, rank DESC, created_at DESC, id DESC)
    INCLUDE (publisher_tenant_id, kind, visibility, tags);
CREATE INDEX item_terms_downloads_idx
    ON marketplace.item_terms (term, downloads DESC, created_at DESC, id DESC)
    INCLUDE (publisher_tenant_id, kind, visibility, tags);
CREATE INDEX item_terms_rating_idx
    ON marketplace.item_terms (term, rating_average DESC, rating_count DESC, created_at DESC, id DESC)
    INCLUDE (publisher_tenant_id, kind, visibility, tags);
CREATE INDEX item_terms_newest_idx
    ON marketplace.item_terms (term, created_at DESC, id DESC)
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
    INSERT INTO marketplace.item_terms (id, term, rank, downloads, rating_average, rating_count,
        created_at, publisher_tenant_id, kind, visibility, tags)
    SELECT NEW.id, t.term, ts_rank(NEW.search, t.term), NEW.downloads, NEW.rating_average,
        NEW.rating_count, NEW.created_at, NEW.publisher_tenant_id, NEW.kind, NEW.visibility,
        NEW.tags
    FROM unnest(NEW.search) AS u,
        LATERAL (SELECT marketplace.term_query(u.lexeme) AS term) AS t;
    RETURN NULL;
END
$$;

CREATE TRIGGER item_search_terms_insert AFTER INSERT ON marketplace.item_search
    FOR EACH ROW EXECUTE FUNCTION marketplace.item_terms_sync();

-- item_search's upsert sets every column, so the condition compares values.
CREATE TRIGGER item_search_terms_update AFTER UPDATE ON marketplace.item_search
    FOR EACH ROW
    WHEN (OLD.search IS DISTINCT FROM NEW.search
        OR OLD.downloads IS DISTINCT FROM NEW.downloads
        OR OLD.rating_average IS DISTINCT FROM NEW.rating_average
        OR OLD.rating_count IS DISTINCT FROM NEW.rating_count
        OR OLD.created_at IS DISTINCT FROM NEW.created_at
        OR OLD.publisher_tenant_id IS DISTINCT FROM NEW.publisher_tenant_id
        OR OLD.kind IS DISTINCT FROM NEW.kind
        OR OLD.visibility IS DISTINCT FROM NEW.visibility
        OR OLD.tags IS DISTINCT FROM NEW.tags)
    EXECUTE FUNCTION marketplace.item_terms_sync();

INSERT INTO marketplace.item_terms (id, term, rank, downloads, rating_average, rating_count,
    created_at, publisher_tenant_id, kind, visibility, tags)
SELECT s.id, t.term, ts_rank(s.search, t.term), s.downloads, s.rating_average, s.rating_count,
    s.created_at, s.publisher_tenant_id, s.kind, s.visibility, s.tags
FROM marketplace.item_search s, unnest(s.search) AS u,
    LATERAL (SELECT marketplace.term_query(u.lexeme) AS term) AS t;
