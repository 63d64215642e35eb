-- What a text search reads of the items it matches, in a table of its own: the vector, the
-- filters and the sort keys, fixed-width columns first. A broad term matches a tenth of the
-- items and every match is visited and ranked; in `items` that meant walking each row past its
-- name, description, tags and authorship to reach the vector. Only the page found is read from
-- `items`. Kept by a trigger on `items`, in the transaction of each change.
CREATE TABLE marketplace.item_search (
    id                  uuid PRIMARY KEY REFERENCES marketplace.items (id) ON DELETE CASCADE,
    publisher_tenant_id uuid NOT NULL,
    downloads           bigint NOT NULL,
    rating_average      double precision NOT NULL,
    rating_count        bigint NOT NULL,
    created_at          timestamptz NOT NULL,
    -- name A, tags B, description C (marketplace.search_document).
    search              tsvector NOT NULL,
    name                text NOT NULL,
    kind                text NOT NULL,
    visibility          text NOT NULL,
    tags                text[] NOT NULL
);
CREATE INDEX item_search_idx ON marketplace.item_search USING gin (search);

CREATE FUNCTION marketplace.item_search_sync() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO marketplace.item_search AS s (id, publisher_tenant_id, downloads, rating_average,
        rating_count, created_at, search, name, kind, visibility, tags)
    VALUES (NEW.id, NEW.publisher_tenant_id, NEW.downloads, NEW.rating_average,
        NEW.rating_count, NEW.created_at,
        marketplace.search_document(NEW.name, NEW.tags, NEW.description),
        NEW.name, NEW.kind, NEW.visibility, NEW.tags)
    ON CONFLICT (id) DO UPDATE SET
        publisher_tenant_id = EXCLUDED.publisher_tenant_id,
        downloads = EXCLUDED.downloads,
        rating_average = EXCLUDED.rating_average,
        rating_count = EXCLUDED.rating_count,
        created_at = EXCLUDED.created_at,
        search = EXCLUDED.search,
        name = EXCLUDED.name,
        kind = EXCLUDED.kind,
        visibility = EXCLUDED.visibility,
        tags = EXCLUDED.tags;
    RETURN NULL;
END
$$;

CREATE TRIGGER items_search_sync AFTER INSERT OR UPDATE ON marketplace.items
    FOR EACH ROW EXECUTE FUNCTION marketplace.item_search_sync();

INSERT INTO marketplace.item_search (id, publisher_tenant_id, downloads, rating_average,
    rating_count, created_at, search, name, kind, visibility, tags)
SELECT id, publisher_tenant_id, downloads, rating_average, rating_count, created_at, search,
    name, kind, visibility, tags
FROM marketplace.items;

-- The vector lives in item_search now.
ALTER TABLE marketplace.items DROP COLUMN search;
