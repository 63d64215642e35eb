//! Items: a chain or a custom agent, published by one tenant under a slug unique in it, public
//! or private to that tenant. Every read here is scoped by the caller's tenant: a private item
//! of another tenant is not found, exactly like an item that does not exist.
//!
//! Search is Postgres full-text search over a weighted `tsvector` (name A, tags B, description
//! C) with a GIN index, ranked by `ts_rank`, with an exact (case-insensitive) name match put
//! before every other match. The vector, filters and sort keys live in `item_search`, a narrow
//! copy of what search reads that a trigger keeps (see the migration): every match is visited
//! and ranked, and only the page found is read from `items`. A one-term search by relevance
//! skips the ranking: `item_terms` holds each item's rank for each of its lexemes, in an index
//! that gives a term's matches best first.

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
        // One term by relevance, the commonest search, reads its page off the term's rows in
        // item_terms, which an index gives already in rank order: exact name matches first,
        // then only as many ranked rows as the page needs. Any other query picks its page
        // from the narrow rows of item_search, visiting and ranking every match. Each branch
        // is guarded by a condition on the parameters alone, which Postgres checks once per
        // run, so exactly one of them reads anything. Only the page is read from `items`.
        // Comparing lengths first spares most rows lower()'s per-character locale work.
        sqlx::query_as(concat!(
            "SELECT ",
            item_columns!(),
            " FROM ( \
               (SELECT one.id, one.created_at, one.exact, one.rank, NULL::bigint AS downloads, \
                  NULL::double precision AS rating, NULL::bigint AS ratings \
                FROM ( \
                  SELECT s.id, s.created_at, true AS exact, ts_rank(s.search, q) AS rank \
                  FROM marketplace.item_search s, websearch_to_tsquery('english', $1) AS q \
                  WHERE lower(s.name) = lower($1) AND length(s.name) = length($1) \
                    AND s.search @@ q \
                    AND (s.visibility = 'public' OR s.publisher_tenant_id = $2) \
                    AND ($3::text IS NULL OR s.kind = $3) \
                    AND ($4::text IS NULL OR s.tags @> ARRAY[$4::text]) \
                    AND ($5::uuid IS NULL OR s.publisher_tenant_id = $5) \
                  UNION ALL \
                  (SELECT t.id, t.created_at, false, t.rank \
                   FROM marketplace.item_terms t \
                   WHERE t.term = websearch_to_tsquery('english', $1) \
                     AND (t.visibility = 'public' OR t.publisher_tenant_id = $2) \
                     AND ($3::text IS NULL OR t.kind = $3) \
                     AND ($4::text IS NULL OR t.tags @> ARRAY[$4::text]) \
                     AND ($5::uuid IS NULL OR t.publisher_tenant_id = $5) \
                     AND NOT EXISTS (SELECT FROM marketplace.item_search s \
                       WHERE s.id = t.id AND length(s.name) = length($1) \
                         AND lower(s.name) = lower($1)) \
                   ORDER BY t.rank DESC, t.created_at DESC, t.id DESC \
                   LIMIT $7 + $8) \
                ) one \
                WHERE $6 = 'relevance' AND numnode(websearch_to_tsquery('english', $1)) = 1 \
                ORDER BY one.exact DESC, one.rank DESC, one.created_at DESC, one.id DESC \
                LIMIT $7 OFFSET $8) \
               UNION ALL \
               (SELECT i.id, i.created_at, \
                  CASE WHEN $6 = 'relevance' \
                    THEN length(i.name) = length($1) AND lower(i.name) = lower($1) END AS exact, \
                  CASE WHEN $6 = 'relevance' THEN ts_rank(i.search, q) END AS rank, \
                  CASE WHEN $6 = 'downloads' THEN i.downloads END AS downloads, \
                  CASE WHEN $6 = 'rating' THEN i.rating_average END AS rating, \
                  CASE WHEN $6 = 'rating' THEN i.rating_count END AS ratings \
                FROM marketplace.item_search i, websearch_to_tsquery('english', $1) AS q \
                WHERE i.search @@ q \
                  AND NOT ($6 = 'relevance' AND numnode(websearch_to_tsquery('english', $1)) = 1) \
                  AND (i.visibility = 'public' OR i.publisher_tenant_id = $2) \
                  AND ($3::text IS NULL OR i.kind = $3) \
                  AND ($4::text IS NULL OR i.tags @> ARRAY[$4::text]) \
                  AND ($5::uuid IS NULL OR i.publisher_tenant_id = $5) \
                ORDER BY exact DESC, rank DESC, downloads DESC, rating DESC, ratings DESC, \
                         i.created_at DESC, i.id DESC \
                LIMIT $7 OFFSET $8) \
             ) page \
             JOIN marketplace.items i ON i.id = page.id \
             ORDER BY page.exact DESC, page.rank DESC, page.downloads DESC, page.rating DESC, \
                      page.ratings DESC, page.created_at DESC, page.id DESC"
        ))
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
