-- The marketplace service's schema: items (chains and custom agents) with their immutable
-- versions (packages live in the object store), reviews, and installs into tenants. No other
-- service reads these tables.
CREATE SCHEMA IF NOT EXISTS marketplace;

-- The text search looks at: name weighs most (A), then tags (B), then description (C). A
-- function, declared IMMUTABLE, because a generated column may only use immutable expressions
-- and array_to_string is merely STABLE (it is immutable for text[], which is all it gets here).
CREATE FUNCTION marketplace.search_document(name text, tags text[], description text)
RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT setweight(to_tsvector('english'::regconfig, name), 'A')
        || setweight(to_tsvector('english'::regconfig, array_to_string(tags, ' ')), 'B')
        || setweight(to_tsvector('english'::regconfig, description), 'C')
$$;

CREATE TABLE marketplace.items (
    id                  uuid PRIMARY KEY,
    publisher_tenant_id uuid NOT NULL,
    slug                text NOT NULL,
    name                text NOT NULL,
    description         text NOT NULL,
    tags                text[] NOT NULL DEFAULT '{}',
    kind                text NOT NULL CHECK (kind IN ('chain', 'agent')),
    visibility          text NOT NULL CHECK (visibility IN ('public', 'private')),
    author_id           text NOT NULL,
    author_name         text NOT NULL,
    -- The highest semver version not yanked, '' when there is none; kept by publish and yank
    -- (semver precedence is computed in the service, which parses versions properly).
    latest_version      text NOT NULL DEFAULT '',
    downloads           bigint NOT NULL DEFAULT 0,
    -- The rating aggregate, recomputed from reviews under this row's lock by every review, so
    -- concurrent reviews cannot lose an update.
    rating_sum          bigint NOT NULL DEFAULT 0,
    rating_count        bigint NOT NULL DEFAULT 0,
    rating_average      double precision GENERATED ALWAYS AS (
        CASE WHEN rating_count = 0 THEN 0 ELSE rating_sum::double precision / rating_count END
    ) STORED,
    search              tsvector GENERATED ALWAYS AS (
        marketplace.search_document(name, tags, description)
    ) STORED,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (publisher_tenant_id, slug)
);
CREATE INDEX items_search_idx ON marketplace.items USING gin (search);
CREATE INDEX items_tags_idx ON marketplace.items USING gin (tags);
CREATE INDEX items_newest_idx ON marketplace.items (created_at DESC, id DESC);
CREATE INDEX items_downloads_idx ON marketplace.items (downloads DESC, created_at DESC, id DESC);
CREATE INDEX items_rating_idx ON marketplace.items (rating_average DESC, created_at DESC, id DESC);

CREATE TABLE marketplace.item_versions (
    item_id       uuid NOT NULL REFERENCES marketplace.items (id) ON DELETE CASCADE,
    -- Normalised semver text ("1.10.0"); precedence is computed in the service.
    version       text NOT NULL,
    object_key    text NOT NULL,
    -- Hex SHA-256 of the stored package, checked before every install.
    sha256        text NOT NULL,
    size_bytes    bigint NOT NULL,
    release_notes text NOT NULL DEFAULT '',
    yanked        boolean NOT NULL DEFAULT false,
    yank_reason   text NOT NULL DEFAULT '',
    yanked_at     timestamptz,
    published_by  text NOT NULL,
    published_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (item_id, version)
);

CREATE TABLE marketplace.reviews (
    id          uuid PRIMARY KEY,
    item_id     uuid NOT NULL REFERENCES marketplace.items (id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL,
    -- The user (or API key) that wrote it: one review per user per item.
    user_id     text NOT NULL,
    author_name text NOT NULL,
    rating      smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment     text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (item_id, user_id)
);
CREATE INDEX reviews_newest_idx ON marketplace.reviews (item_id, updated_at DESC, id DESC);

CREATE TABLE marketplace.installs (
    id           uuid PRIMARY KEY,
    -- The installing tenant.
    tenant_id    uuid NOT NULL,
    item_id      uuid NOT NULL REFERENCES marketplace.items (id) ON DELETE CASCADE,
    version      text NOT NULL,
    -- What the install made: the chain's id, or the custom agent's name.
    target       text NOT NULL,
    installed_by text NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, item_id, version)
);
CREATE INDEX installs_tenant_idx ON marketplace.installs (tenant_id, installed_at DESC, id DESC);
CREATE INDEX installs_item_idx ON marketplace.installs (tenant_id, item_id, installed_at DESC);
