//! Items: a chain or a custom agent, published by one tenant under a slug unique in it, public
//! or private to that tenant. Every read here is scoped by the caller's tenant: a private item
//! of another tenant is not found, exactly like an item that does not exist.
//!
//! Search is Postgres full-text search over a weighted `tsvector` (name A, tags B, description
//! C) with a GIN index, ranked by `ts_rank`, with an exact (case-insensitive) name match put
//! before every other match. The vector, filters and sort keys live in `item_search`, a narrow
//! copy of what search reads that a trigger keeps (see the migration): every match is visited
//! and ranked, and only the page found is read from `items`. A one-term search skips that:
//! `item_terms` holds, for each item and each of its lexemes, the rank and the other sort keys,
//! in an index per order that gives a term's matches already sorted.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::{MarketError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Chain,
    Agent,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chain => "chain",
            Self::Agent => "agent",
        }
    }

    fn parse(raw: &str) -> Result<Self> {
        match raw {
            "chain" => Ok(Self::Chain),
            "agent" => Ok(Self::Agent),
            other => Err(MarketError::Internal(anyhow::anyhow!(
                "an item of unknown kind {other:?} is stored"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Item {
    pub id: Uuid,
    pub publisher_tenant_id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    #[sqlx(rename = "kind")]
    pub kind_text: String,
    pub visibility: String,
    pub author_id: String,
    pub author_name: String,
    pub latest_version: String,
    pub downloads: i64,
    pub rating_average: f64,
    pub rating_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Item {
    pub fn kind(&self) -> Result<Kind> {
        Kind::parse(&self.kind_text)
    }
}

/// The columns of [`Item`], for every query that reads one (`i` is `marketplace.items`).
macro_rules! item_columns {
    () => {
        "i.id, i.publisher_tenant_id, i.slug, i.name, i.description, i.tags, i.kind, \
         i.visibility, i.author_id, i.author_name, i.latest_version, i.downloads, \
         i.rating_average, i.rating_count, i.created_at, i.updated_at"
    };
}
pub(crate) use item_columns;

/// How a caller names an item, checked.
pub enum ItemKey {
    Id(Uuid),
    Slug { publisher: Uuid, slug: String },
}

/// The item, if the caller's tenant may see it.
pub async fn visible(pool: &PgPool, tenant: Uuid, key: &ItemKey) -> Result<Item> {
    let found: Option<Item> = match key {
        ItemKey::Id(id) => {
            sqlx::query_as(concat!(
                "SELECT ",
                item_columns!(),
                " FROM marketplace.items i WHERE i.id = $1 \
                 AND (i.visibility = 'public' OR i.publisher_tenant_id = $2)"
            ))
            .bind(id)
            .bind(tenant)
            .fetch_optional(pool)
            .await?
        }
        ItemKey::Slug { publisher, slug } => {
            sqlx::query_as(concat!(
                "SELECT ",
                item_columns!(),
                " FROM marketplace.items i WHERE i.publisher_tenant_id = $1 AND i.slug = $2 \
                 AND (i.visibility = 'public' OR i.publisher_tenant_id = $3)"
            ))
            .bind(publisher)
            .bind(slug)
            .bind(tenant)
            .fetch_optional(pool)
            .await?
        }
    };
    found.ok_or(MarketError::NotFound("item"))
}

/// Locks the item's row for the rest of the transaction: every change to an item's versions
/// or rating goes through this lock, so they apply one after another.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Item> {
    sqlx::query_as(concat!(
        "SELECT ",
        item_columns!(),
        " FROM marketplace.items i WHERE i.id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(MarketError::NotFound("item"))
}

/// The item of `publisher` named `slug`, locked, if there is one.
pub async fn lock_by_slug(
    conn: &mut PgConnection,
    publisher: Uuid,
    slug: &str,
) -> Result<Option<Item>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        item_columns!(),
        " FROM marketplace.items i WHERE i.publisher_tenant_id = $1 AND i.slug = $2 FOR UPDATE"
    ))
    .bind(publisher)
    .bind(slug)
    .fetch_optional(conn)
    .await?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Relevance,
    Downloads,
    Rating,
    Newest,
}

impl Sort {
    fn as_str(self) -> &'static str {
        match self {
            Self::Relevance => "relevance",
            Self::Downloads => "downloads",
            Self::Rating => "rating",
            Self::Newest => "newest",
        }
    }
}

pub struct Search {
    /// Trimmed; empty matches every item.
    pub query: String,
    pub kind: Option<Kind>,
    pub tag: Option<String>,
    pub publisher: Option<Uuid>,
    pub sort: Sort,
    pub size: i64,
    pub offset: i64,
}

/// Items the caller's tenant may see, matching `search`.
///
/// Separate statements with and without a text query rather than one with an "is there a
/// query" switch: a prepared statement may get a generic plan after a few runs, and a plan
/// that must also serve the no-query case cannot use the GIN index. With a query, the index
/// finds the matching rows and only those are ranked and sorted; without one, a btree index
/// gives the rows in the order asked for.
pub async fn search(pool: &PgPool, tenant: Uuid, search: &Search) -> Result<Vec<Item>> {
    let kind = search.kind.map(Kind::as_str);
    let sort = search.sort.as_str();
    let found = if search.query.is_empty() {
        // One statement per order, each written so that an index (newest, downloads, rating)
        // yields rows already in order and the LIMIT stops the walk after a page.
        macro_rules! browse {
            ($order:literal) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    item_columns!(),
                    " FROM marketplace.items i \
                     WHERE (i.visibility = 'public' OR i.publisher_tenant_id = $1) \
                       AND ($2::text IS NULL OR i.kind = $2) \
                       AND ($3::text IS NULL OR i.tags @> ARRAY[$3::text]) \
                       AND ($4::uuid IS NULL OR i.publisher_tenant_id = $4) \
                     ORDER BY ",
                    $order,
                    " LIMIT $5 OFFSET $6"
                ))
            };
        }
        let query = match search.sort {
            Sort::Downloads => browse!("i.downloads DESC, i.created_at DESC, i.id DESC"),
            Sort::Rating => browse!("i.rating_average DESC, i.created_at DESC, i.id DESC"),
            Sort::Relevance | Sort::Newest => browse!("i.created_at DESC, i.id DESC"),
        };
        query
            .bind(tenant)
            .bind(kind)
            .bind(search.tag.as_deref())
            .bind(search.publisher)
            .bind(search.size)
            .bind(search.offset)
            .fetch_all(pool)
            .await?
    } else {
        // A one-term query, the commonest search, reads its page off one of item_terms'
        // indexes, which gives the term's matches already in the order asked for, so only a
        // page of rows is read; by relevance, exact name matches go first. Any other query
        // picks its page from the narrow rows of item_search, visiting and ranking every
        // match. Both branches of a statement are guarded by a condition on the query alone,
        // which Postgres checks once per run, so only one of them reads anything. Only the
        // page is read from `items`. Comparing lengths first spares most rows lower()'s
        // per-character locale work.
        //
        // Every branch names its table `t`, so one text holds the filters.
        macro_rules! filters {
            () => {
                "(t.visibility = 'public' OR t.publisher_tenant_id = $2) \
                 AND ($3::text IS NULL OR t.kind = $3) \
                 AND ($4::text IS NULL OR t.tags @> ARRAY[$4::text]) \
                 AND ($5::uuid IS NULL OR t.publisher_tenant_id = $5)"
            };
        }
        macro_rules! one_term {
            () => {
                "numnode(websearch_to_tsquery('english', $1)) = 1"
            };
        }
        // The term's rows in `order`, a page of them, as (id, created_at, exact, rank,
        // downloads, rating, ratings), `columns` giving the last five.
        macro_rules! term_walk {
            ($columns:literal, $order:literal) => {
                concat!(
                    "SELECT t.id, t.created_at, ",
                    $columns,
                    " FROM marketplace.item_terms t \
                     WHERE ",
                    one_term!(),
                    " AND t.term = websearch_to_tsquery('english', $1) \
                       AND ",
                    filters!(),
                    " ORDER BY ",
                    $order,
                    " LIMIT $7 OFFSET $8"
                )
            };
        }
        macro_rules! text_search {
            ($one_term:expr) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    item_columns!(),
                    " FROM ((",
                    $one_term,
                    ") UNION ALL ( \
                       SELECT t.id, t.created_at, \
                         CASE WHEN $6 = 'relevance' \
                           THEN length(t.name) = length($1) AND lower(t.name) = lower($1) \
                         END AS exact, \
                         CASE WHEN $6 = 'relevance' THEN ts_rank(t.search, q) END AS rank, \
                         CASE WHEN $6 = 'downloads' THEN t.downloads END AS downloads, \
                         CASE WHEN $6 = 'rating' THEN t.rating_average END AS rating, \
                         CASE WHEN $6 = 'rating' THEN t.rating_count END AS ratings \
                       FROM marketplace.item_search t, websearch_to_tsquery('english', $1) AS q \
                       WHERE NOT ", one_term!(), " AND t.search @@ q AND ", filters!(),
                    " ORDER BY exact DESC, rank DESC, downloads DESC, rating DESC, ratings DESC, \
                         t.created_at DESC, t.id DESC \
                       LIMIT $7 OFFSET $8) \
                     ) AS page (id, created_at, exact, rank, downloads, rating, ratings) \
                     JOIN marketplace.items i ON i.id = page.id \
                     ORDER BY page.exact DESC, page.rank DESC, page.downloads DESC, \
                       page.rating DESC, page.ratings DESC, page.created_at DESC, page.id DESC"
                ))
            };
        }
        let query = match search.sort {
            Sort::Relevance => text_search!(concat!(
                "SELECT * FROM ( \
                   SELECT t.id, t.created_at, true AS exact, ts_rank(t.search, q) AS rank, \
                     NULL::bigint, NULL::double precision, NULL::bigint \
                   FROM marketplace.item_search t, websearch_to_tsquery('english', $1) AS q \
                   WHERE ",
                one_term!(),
                " AND lower(t.name) = lower($1) \
                     AND length(t.name) = length($1) AND t.search @@ q AND ",
                filters!(),
                " UNION ALL ( \
                   SELECT t.id, t.created_at, false, t.rank, NULL, NULL, NULL \
                   FROM marketplace.item_terms t \
                   WHERE ",
                one_term!(),
                " AND t.term = websearch_to_tsquery('english', $1) \
                     AND ",
                filters!(),
                "    AND NOT EXISTS (SELECT FROM marketplace.item_search s \
                       WHERE s.id = t.id AND length(s.name) = length($1) \
                         AND lower(s.name) = lower($1)) \
                   ORDER BY t.rank DESC, t.created_at DESC, t.id DESC \
                   LIMIT $7 + $8) \
                 ) AS one (id, created_at, exact, rank, downloads, rating, ratings) \
                 ORDER BY exact DESC, rank DESC, created_at DESC, id DESC \
                 LIMIT $7 OFFSET $8"
            )),
            Sort::Downloads => text_search!(term_walk!(
                "NULL::boolean, NULL::real, t.downloads, NULL::double precision, NULL::bigint",
                "t.downloads DESC, t.created_at DESC, t.id DESC"
            )),
            Sort::Rating => text_search!(term_walk!(
                "NULL::boolean, NULL::real, NULL::bigint, t.rating_average, t.rating_count",
                "t.rating_average DESC, t.rating_count DESC, t.created_at DESC, t.id DESC"
            )),
            Sort::Newest => text_search!(term_walk!(
                "NULL::boolean, NULL::real, NULL::bigint, NULL::double precision, NULL::bigint",
                "t.created_at DESC, t.id DESC"
            )),
        };
        query
            .bind(&search.query)
            .bind(tenant)
            .bind(kind)
            .bind(search.tag.as_deref())
            .bind(search.publisher)
            .bind(sort)
            .bind(search.size)
            .bind(search.offset)
            .fetch_all(pool)
            .await?
    };
    Ok(found)
}
