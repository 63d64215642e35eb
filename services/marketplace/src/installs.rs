//! Installs: a version of an item made into a chain or custom agent of the caller's tenant by
//! the service that owns it. The package is read back from the object store and its SHA-256
//! checked first, so a damaged or tampered object installs nothing (DATA_LOSS).
//!
//! An install is recorded per tenant, item and version: installing a version already installed
//! answers the recorded install and changes nothing. Installing another version of an item
//! already in the tenant updates what the earlier install made (UpdateChain,
//! UpdateCustomAgent) instead of making a second one. The item's download count goes up by one
//! in the transaction that records a new install.

use chrono::{DateTime, Utc};
use semver::Version;
use sqlx::PgPool;
use tonic::Code;
use uuid::Uuid;

use crate::State;
use crate::error::{MarketError, Result};
use crate::events::Action;
use crate::items::Item;
use crate::owners::Install;
use crate::versions;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Installation {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub item_id: Uuid,
    pub item_slug: String,
    pub kind: String,
    pub version: String,
    pub target: String,
    pub installed_by: String,
    pub installed_at: DateTime<Utc>,
}

macro_rules! install_columns {
    () => {
        "n.id, n.tenant_id, n.item_id, i.slug AS item_slug, i.kind, n.version, n.target, \
         n.installed_by, n.installed_at"
    };
}

async fn find(
    pool: &PgPool,
    tenant: Uuid,
    item: Uuid,
    version: &str,
) -> Result<Option<Installation>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        install_columns!(),
        " FROM marketplace.installs n JOIN marketplace.items i ON i.id = n.item_id \
         WHERE n.tenant_id = $1 AND n.item_id = $2 AND n.version = $3"
    ))
    .bind(tenant)
    .bind(item)
    .bind(version)
    .fetch_optional(pool)
    .await?)
}

pub struct Installer<'a> {
    pub tenant: Uuid,
    pub subject: &'a str,
    /// The caller's token, forwarded to the owning service.
    pub token: &'a str,
}

/// Installs `version` (the latest when `None`) of `item`; answers the install and whether it
/// was there already.
pub async fn install(
    state: &State,
    installer: &Installer<'_>,
    item: &Item,
    version: Option<&Version>,
) -> Result<(Installation, bool)> {
    let row = match version {
        Some(version) => versions::get(&state.pool, item.id, version).await?,
        None if item.latest_version.is_empty() => {
            return Err(MarketError::Precondition(
                "every version of the item is yanked; install one by its exact version".to_owned(),
            ));
        }
        None => {
            let latest = Version::parse(&item.latest_version)
                .map_err(|err| MarketError::Internal(err.into()))?;
            versions::get(&state.pool, item.id, &latest).await?
        }
    };
    if let Some(done) = find(&state.pool, installer.tenant, item.id, &row.version).await? {
        return Ok((done, true));
    }
    let package = state
        .packages
        .get_verified(&row.object_key, &row.sha256)
        .await?;
    let previous: Option<String> = sqlx::query_scalar(
        "SELECT target FROM marketplace.installs WHERE tenant_id = $1 AND item_id = $2 \
         ORDER BY installed_at DESC, id DESC LIMIT 1",
    )
    .bind(installer.tenant)
    .bind(item.id)
    .fetch_optional(&state.pool)
    .await?;
    let kind = item.kind()?;
    let make = |previous_target| Install {
        kind,
        package: &package,
        previous_target,
        name: &item.name,
        description: &item.description,
        installed_from: format!("{}@{}", item.id, row.version),
    };
    let target = match state
        .owners
        .install(installer.token, make(previous.as_deref()))
        .await
    {
        // What the earlier install made was deleted since: make it anew.
        Err(MarketError::Remote(status))
            if status.code() == Code::NotFound && previous.is_some() =>
        {
            state.owners.install(installer.token, make(None)).await?
        }
        made => made?,
    };

    let install_id = Uuid::now_v7();
    let mut tx = state.pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO marketplace.installs (id, tenant_id, item_id, version, target, installed_by) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, item_id, version) DO NOTHING",
    )
    .bind(install_id)
    .bind(installer.tenant)
    .bind(item.id)
    .bind(&row.version)
    .bind(&target)
    .bind(installer.subject)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        sqlx::query("UPDATE marketplace.items SET downloads = downloads + 1 WHERE id = $1")
            .bind(item.id)
            .execute(&mut *tx)
            .await?;
        state
            .events
            .enqueue(
                &mut tx,
                installer.tenant,
                &item.id.to_string(),
                Action::Installed,
                serde_json::json!({
                    "item_id": item.id,
                    "install_id": install_id,
                    "version": row.version,
                    "kind": kind.as_str(),
                    "target": target,
                }),
            )
            .await?;
    }
    tx.commit().await?;
    if inserted {
        state.events.wake();
    }
    let done = find(&state.pool, installer.tenant, item.id, &row.version)
        .await?
        .ok_or_else(|| MarketError::Internal(anyhow::anyhow!("a committed install is gone")))?;
    // A concurrent install of the same version recorded first: this one changed nothing new.
    Ok((done, !inserted))
}

/// The tenant's installs (of one item, when given), newest first.
pub async fn list(
    pool: &PgPool,
    tenant: Uuid,
    item: Option<Uuid>,
    size: i64,
    offset: i64,
) -> Result<Vec<Installation>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        install_columns!(),
        " FROM marketplace.installs n JOIN marketplace.items i ON i.id = n.item_id \
         WHERE n.tenant_id = $1 AND ($2::uuid IS NULL OR n.item_id = $2) \
         ORDER BY n.installed_at DESC, n.id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(tenant)
    .bind(item)
    .bind(size)
    .bind(offset)
    .fetch_all(pool)
    .await?)
}
