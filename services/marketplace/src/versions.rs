//! Versions: publishing an item's package under a semantic version, listing versions in
//! semver precedence, and yanking. Versions never change once published (only their yank mark
//! does); "latest" is the highest version not yanked, kept in the item's row.
//!
//! Publishing asks the owning service to validate the package before anything is stored, then
//! writes the package to the object store and only then commits the version's row, so a row
//! never points at a missing object; when the commit fails, the object is removed again.

use chrono::{DateTime, Utc};
use semver::Version;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::State;
use crate::error::{MarketError, Result};
use crate::events::Action;
use crate::items::{self, Item, ItemKey, Kind, Visibility, item_columns};
use crate::packages::Stored;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemVersion {
    pub item_id: Uuid,
    pub version: String,
    pub object_key: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub release_notes: String,
    pub yanked: bool,
    pub yank_reason: String,
    pub yanked_at: Option<DateTime<Utc>>,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
}

macro_rules! version_columns {
    () => {
        "item_id, version, object_key, sha256, size_bytes, release_notes, yanked, yank_reason, \
         yanked_at, published_by, published_at"
    };
}

/// Who is publishing or yanking.
pub struct Publisher {
    pub tenant: Uuid,
    pub subject: String,
    pub is_admin: bool,
}

impl Publisher {
    /// Only the item's author or an admin of its tenant changes an item's versions. To another
    /// tenant the item is not found, as for every write to what is not its own, even when the
    /// item is public and so visible to it.
    fn may_change(&self, item: &Item) -> Result<()> {
        if item.publisher_tenant_id != self.tenant {
            return Err(MarketError::NotFound("item"));
        }
        if item.author_id != self.subject && !self.is_admin {
            return Err(MarketError::Forbidden(
                "only the item's author or an admin of its tenant may change its versions"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

pub struct Publish {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub kind: Kind,
    /// `None` keeps an existing item's visibility; a new item is then private.
    pub visibility: Option<Visibility>,
    pub version: Version,
    pub package: String,
    pub release_notes: String,
}

/// Checks that hold before anything is validated or stored, and again under the item's lock.
fn may_publish(publisher: &Publisher, item: &Item, publish: &Publish) -> Result<()> {
    publisher.may_change(item)?;
    if item.kind()? != publish.kind {
        return Err(MarketError::Precondition(format!(
            "the item is a {}, not a {}",
            item.kind_text,
            publish.kind.as_str()
        )));
    }
    Ok(())
}

async fn exists(pool: &PgPool, item: Uuid, version: &str) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM marketplace.item_versions WHERE item_id = $1 AND version = $2)",
    )
    .bind(item)
    .bind(version)
    .fetch_one(pool)
    .await?)
}

pub async fn publish(
    state: &State,
    token: &str,
    publisher: &Publisher,
    publish: Publish,
) -> Result<(Item, ItemVersion)> {
    let version = publish.version.to_string();
    let own = ItemKey::Slug {
        publisher: publisher.tenant,
        slug: publish.slug.clone(),
    };
    let existing = match items::visible(&state.pool, publisher.tenant, &own).await {
        Ok(item) => Some(item),
        Err(MarketError::NotFound(_)) => None,
        Err(err) => return Err(err),
    };
    if let Some(item) = &existing {
        may_publish(publisher, item, &publish)?;
        if exists(&state.pool, item.id, &version).await? {
            return Err(already_published(&version));
        }
        has_room(&state.pool, item, state.max_versions_per_item).await?;
    }

    state
        .owners
        .validate(token, publish.kind, &publish.package)
        .await?;
    let author_name = match &existing {
        Some(item) => item.author_name.clone(),
        None => state.owners.display_name(token, &publisher.subject).await,
    };
    let item_id = existing.as_ref().map_or_else(Uuid::now_v7, |item| item.id);
    let stored = state.packages.put(item_id, &publish.package).await?;

    let committed = record(state, publisher, &publish, item_id, &author_name, &stored).await;
    let (item, row) = match committed {
        Ok(done) => done,
        Err(err) => {
            state.packages.discard(&stored.key).await;
            return Err(err);
        }
    };
    state.events.wake();
    Ok((item, row))
}

/// Ok while the item has fewer than `max` versions, yanked ones included: every publish and
/// yank reads all of an item's versions to find its latest, and a list of them is read whole.
async fn has_room(conn: impl sqlx::PgExecutor<'_>, item: &Item, max: usize) -> Result<()> {
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM marketplace.item_versions WHERE item_id = $1")
            .bind(item.id)
            .fetch_one(conn)
            .await?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= max {
        return Err(MarketError::Precondition(format!(
            "item {} has {count} versions, the most an item may have ({max}, yanked ones \
             included); publish the next under a new slug",
            item.slug
        )));
    }
    Ok(())
}

fn already_published(version: &str) -> MarketError {
    MarketError::AlreadyExists(format!(
        "version {version} is published already; versions are immutable"
    ))
}

/// The version's row, and the item's (created on its first version), in one transaction
/// under the item's lock.
async fn record(
    state: &State,
    publisher: &Publisher,
    publish: &Publish,
    new_id: Uuid,
    author_name: &str,
    stored: &Stored,
) -> Result<(Item, ItemVersion)> {
    let version = publish.version.to_string();
    let mut tx = state.pool.begin().await?;
    let item_id = match items::lock_by_slug(&mut tx, publisher.tenant, &publish.slug).await? {
        Some(item) => {
            may_publish(publisher, &item, publish)?;
            has_room(&mut *tx, &item, state.max_versions_per_item).await?;
            item.id
        }
        None => {
            // A concurrent first publish of the same slug makes this a unique violation,
            // which answers ABORTED: the retry then finds the item.
            sqlx::query(
                "INSERT INTO marketplace.items (id, publisher_tenant_id, slug, name, description, \
                 tags, kind, visibility, author_id, author_name) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(new_id)
            .bind(publisher.tenant)
            .bind(&publish.slug)
            .bind(&publish.name)
            .bind(&publish.description)
            .bind(&publish.tags)
            .bind(publish.kind.as_str())
            .bind(publish.visibility.unwrap_or(Visibility::Private).as_str())
            .bind(&publisher.subject)
            .bind(author_name)
            .execute(&mut *tx)
            .await?;
            new_id
        }
    };
    let row: Option<ItemVersion> = sqlx::query_as(concat!(
        "INSERT INTO marketplace.item_versions (item_id, version, object_key, sha256, \
         size_bytes, release_notes, published_by) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (item_id, version) DO NOTHING RETURNING ",
        version_columns!()
    ))
    .bind(item_id)
    .bind(&version)
    .bind(&stored.key)
    .bind(&stored.sha256)
    .bind(stored.size_bytes)
    .bind(&publish.release_notes)
    .bind(&publisher.subject)
    .fetch_optional(&mut *tx)
    .await?;
    let row = row.ok_or_else(|| already_published(&version))?;
    let latest = latest(&mut tx, item_id).await?;
    let item: Item = sqlx::query_as(concat!(
        "UPDATE marketplace.items AS i SET name = $2, description = $3, tags = $4, \
         visibility = COALESCE($5, i.visibility), latest_version = $6, updated_at = now() \
         WHERE i.id = $1 RETURNING ",
        item_columns!()
    ))
    .bind(item_id)
    .bind(&publish.name)
    .bind(&publish.description)
    .bind(&publish.tags)
    .bind(publish.visibility.map(Visibility::as_str))
    .bind(&latest)
    .fetch_one(&mut *tx)
    .await?;
    state
        .events
        .enqueue(
            &mut tx,
            publisher.tenant,
            &item.id.to_string(),
            Action::Published,
            serde_json::json!({
                "item_id": item.id,
                "slug": item.slug,
                "kind": item.kind_text,
                "version": row.version,
                "sha256": row.sha256,
                "published_by": row.published_by,
            }),
        )
        .await?;
    tx.commit().await?;
    Ok((item, row))
}

/// The highest version of the item that is not yanked, '' when every one is. Computed here,
/// not in SQL, because semver precedence (numeric parts, pre-releases before releases) is not
/// an order Postgres knows.
async fn latest(conn: &mut PgConnection, item: Uuid) -> Result<String> {
    let versions: Vec<String> = sqlx::query_scalar(
        "SELECT version FROM marketplace.item_versions WHERE item_id = $1 AND NOT yanked",
    )
    .bind(item)
    .fetch_all(conn)
    .await?;
    Ok(versions
        .iter()
        .filter_map(|text| Version::parse(text).ok())
        .max()
        .map(|version| version.to_string())
        .unwrap_or_default())
}

/// Every version of the item, highest first.
pub async fn list(pool: &PgPool, item: Uuid) -> Result<Vec<ItemVersion>> {
    let mut versions: Vec<ItemVersion> = sqlx::query_as(concat!(
        "SELECT ",
        version_columns!(),
        " FROM marketplace.item_versions WHERE item_id = $1"
    ))
    .bind(item)
    .fetch_all(pool)
    .await?;
    versions.sort_by_cached_key(|row| std::cmp::Reverse(Version::parse(&row.version).ok()));
    Ok(versions)
}

/// One version of the item, exactly as named, yanked or not.
pub async fn get(pool: &PgPool, item: Uuid, version: &Version) -> Result<ItemVersion> {
    sqlx::query_as(concat!(
        "SELECT ",
        version_columns!(),
        " FROM marketplace.item_versions WHERE item_id = $1 AND version = $2"
    ))
    .bind(item)
    .bind(version.to_string())
    .fetch_optional(pool)
    .await?
    .ok_or(MarketError::NotFound("version"))
}

pub struct Yank {
    pub version: Version,
    pub reason: String,
    pub unyank: bool,
}

pub async fn yank(
    pool: &PgPool,
    publisher: &Publisher,
    item: &Item,
    yank: &Yank,
) -> Result<ItemVersion> {
    publisher.may_change(item)?;
    let mut tx = pool.begin().await?;
    items::lock(&mut tx, item.id).await?;
    let row: ItemVersion = sqlx::query_as(concat!(
        "UPDATE marketplace.item_versions SET yanked = $3, \
         yank_reason = CASE WHEN $3 THEN $4 ELSE '' END, \
         yanked_at = CASE WHEN $3 THEN COALESCE(yanked_at, now()) END \
         WHERE item_id = $1 AND version = $2 RETURNING ",
        version_columns!()
    ))
    .bind(item.id)
    .bind(yank.version.to_string())
    .bind(!yank.unyank)
    .bind(&yank.reason)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(MarketError::NotFound("version"))?;
    let latest = latest(&mut tx, item.id).await?;
    sqlx::query(
        "UPDATE marketplace.items SET latest_version = $2, updated_at = now() WHERE id = $1",
    )
    .bind(item.id)
    .bind(latest)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}
