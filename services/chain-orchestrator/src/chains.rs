//! Stored chain definitions, versioned per tenant.
//!
//! `chains.chains` holds one row per chain (its name and latest version); `chains.chain_versions`
//! one row per version, never changed once written, so a run or a user can always go back to the
//! exact definition of a version. Updating takes the chain row's lock, so two concurrent updates
//! make two consecutive versions (or one ABORTED, with `expected_version`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sankalpa_kit::problem::FieldViolation;
use uuid::Uuid;

use crate::definition::{self, Definition, StepKind};
use crate::error::{ChainError, Result};
use crate::templates::Templates;

#[derive(sqlx::FromRow)]
pub struct ChainVersion {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub version: i32,
    pub latest_version: i32,
    pub definition_json: String,
    pub step_count: i32,
    pub created_by: String,
    pub installed_from: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns of [`ChainVersion`] over `chains c JOIN chain_versions v`.
macro_rules! version_columns {
    () => {
        "c.id, v.name, v.description, v.version, c.latest_version, v.definition_json, \
         v.step_count, v.created_by, v.installed_from, c.created_at, v.created_at AS updated_at"
    };
}

pub struct NewVersion<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub definition_json: &'a str,
    pub step_count: i32,
    pub created_by: &'a str,
    pub installed_from: &'a str,
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.code().as_deref() == Some("23505"))
}

pub async fn create(
    pool: &sqlx::PgPool,
    tenant: Uuid,
    new: NewVersion<'_>,
) -> Result<ChainVersion> {
    let id = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO chains.chains (id, tenant_id, name, latest_version) VALUES ($1, $2, $3, 1)",
    )
    .bind(id)
    .bind(tenant)
    .bind(new.name)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(err) if is_unique_violation(&err) => {
            return Err(ChainError::AlreadyExists(format!(
                "a chain named {:?} already exists",
                new.name
            )));
        }
        other => other?,
    };
    insert_version(&mut tx, id, 1, &new).await?;
    tx.commit().await?;
    get(pool, tenant, id, None).await
}

async fn insert_version(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    version: i32,
    new: &NewVersion<'_>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO chains.chain_versions
             (chain_id, version, name, description, definition_json, step_count, created_by,
              installed_from)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(version)
    .bind(new.name)
    .bind(new.description)
    .bind(new.definition_json)
    .bind(new.step_count)
    .bind(new.created_by)
    .bind(new.installed_from)
    .execute(tx)
    .await?;
    Ok(())
}

pub struct Update<'a> {
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub expected_version: Option<i32>,
    pub definition_json: &'a str,
    pub step_count: i32,
    pub created_by: &'a str,
    pub installed_from: &'a str,
}

/// Adds a version; name and description carry over unless given.
pub async fn update(
    pool: &sqlx::PgPool,
    tenant: Uuid,
    id: Uuid,
    update: Update<'_>,
) -> Result<ChainVersion> {
    let mut tx = pool.begin().await?;
    let current: Option<(i32, String, String)> = sqlx::query_as(
        "SELECT c.latest_version, v.name, v.description
         FROM chains.chains c
         JOIN chains.chain_versions v ON v.chain_id = c.id AND v.version = c.latest_version
         WHERE c.id = $1 AND c.tenant_id = $2
         FOR UPDATE OF c",
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(&mut *tx)
    .await?;
    let (latest, name, description) = current.ok_or(ChainError::NotFound("chain"))?;
    if let Some(expected) = update.expected_version
        && expected != latest
    {
        return Err(ChainError::VersionConflict {
            current_version: latest,
        });
    }
    let version = latest + 1;
    let name = update.name.unwrap_or(&name);
    let renamed = sqlx::query(
        "UPDATE chains.chains SET latest_version = $3, name = $4, updated_at = now()
         WHERE id = $1 AND tenant_id = $2",
    )
    .bind(id)
    .bind(tenant)
    .bind(version)
    .bind(name)
    .execute(&mut *tx)
    .await;
    match renamed {
        Err(err) if is_unique_violation(&err) => {
            return Err(ChainError::AlreadyExists(format!(
                "a chain named {name:?} already exists"
            )));
        }
        other => other?,
    };
    insert_version(
        &mut tx,
        id,
        version,
        &NewVersion {
            name,
            description: update.description.unwrap_or(&description),
            definition_json: update.definition_json,
            step_count: update.step_count,
            created_by: update.created_by,
            installed_from: update.installed_from,
        },
    )
    .await?;
    tx.commit().await?;
    get(pool, tenant, id, Some(version)).await
}

/// One version, the latest when `version` is `None`.
pub async fn get(
    pool: &sqlx::PgPool,
    tenant: Uuid,
    id: Uuid,
    version: Option<i32>,
) -> Result<ChainVersion> {
    sqlx::query_as(concat!(
        "SELECT ",
        version_columns!(),
        " FROM chains.chains c
          JOIN chains.chain_versions v
            ON v.chain_id = c.id AND v.version = coalesce($3, c.latest_version)
          WHERE c.id = $1 AND c.tenant_id = $2"
    ))
    .bind(id)
    .bind(tenant)
    .bind(version)
    .fetch_optional(pool)
    .await?
    .ok_or(ChainError::NotFound("chain"))
}

/// The latest version of each chain, by id, after `after`; one more row than `size` if more
/// follow.
pub async fn list(
    pool: &sqlx::PgPool,
    tenant: Uuid,
    size: i64,
    after: Option<Uuid>,
) -> Result<Vec<ChainVersion>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        version_columns!(),
        " FROM chains.chains c
          JOIN chains.chain_versions v ON v.chain_id = c.id AND v.version = c.latest_version
          WHERE c.tenant_id = $1 AND ($2::uuid IS NULL OR c.id > $2)
          ORDER BY c.id
          LIMIT $3"
    ))
    .bind(tenant)
    .bind(after)
    .bind(size + 1)
    .fetch_all(pool)
    .await?)
}

/// Deletes a chain with its versions; runs keep their own copy of the definition.
pub async fn delete(pool: &sqlx::PgPool, tenant: Uuid, id: Uuid) -> Result<()> {
    let deleted = sqlx::query("DELETE FROM chains.chains WHERE id = $1 AND tenant_id = $2")
        .bind(id)
        .bind(tenant)
        .execute(pool)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(ChainError::NotFound("chain"));
    }
    Ok(())
}

/// Checks what the chain steps of `definition` name, for `tenant`: a stored chain of the tenant
/// (another tenant's is not found) or a known template. `saving` is the chain being saved, if
/// any: a definition that runs it again, itself or through the chains it names (followed as
/// deep as children may nest), is refused, as that run could only end at the depth bound.
pub async fn check_calls(
    pool: &sqlx::PgPool,
    templates: &Templates,
    tenant: Uuid,
    definition: &Definition,
    saving: Option<Uuid>,
) -> Result<()> {
    let mut problems = Vec::new();
    for (index, step) in definition.steps.iter().enumerate() {
        let StepKind::Chain(chain) = &step.kind else {
            continue;
        };
        if let Some(name) = &chain.call.template {
            if templates.get(name).is_none() {
                problems.push(FieldViolation {
                    field: format!("steps[{index}].chain.template"),
                    message: format!("no template is named `{name}`"),
                });
            }
            continue;
        }
        let field = format!("steps[{index}].chain.id");
        let Some(id) = chain
            .call
            .id
            .as_deref()
            .and_then(|id| Uuid::try_parse(id).ok())
        else {
            continue;
        };
        if Some(id) == saving {
            problems.push(FieldViolation {
                field,
                message: "a chain cannot run itself".to_owned(),
            });
            continue;
        }
        match get(pool, tenant, id, None).await {
            Ok(_) => {}
            Err(ChainError::NotFound(_)) => {
                problems.push(FieldViolation {
                    field,
                    message: "this tenant has no chain with this id".to_owned(),
                });
                continue;
            }
            Err(err) => return Err(err),
        }
        if let Some(saving) = saving
            && reaches(pool, tenant, id, saving).await?
        {
            problems.push(FieldViolation {
                field,
                message: format!("chain `{id}` runs this chain again: a cycle"),
            });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ChainError::InvalidDefinition(definition::at_most(problems)))
    }
}

/// Whether the stored chain `from` runs `target` through its chain steps (latest versions),
/// followed at most [`definition::MAX_CHAIN_DEPTH`] levels down.
async fn reaches(pool: &sqlx::PgPool, tenant: Uuid, from: Uuid, target: Uuid) -> Result<bool> {
    let mut seen = HashSet::from([from]);
    let mut level = vec![from];
    for _ in 0..definition::MAX_CHAIN_DEPTH {
        let mut next = Vec::new();
        for id in level {
            let Ok(stored) = get(pool, tenant, id, None).await else {
                continue;
            };
            let Ok(parsed) = definition::parse(&stored.definition_json) else {
                continue;
            };
            for step in &parsed.steps {
                let StepKind::Chain(chain) = &step.kind else {
                    continue;
                };
                let Some(called) = chain
                    .call
                    .id
                    .as_deref()
                    .and_then(|id| Uuid::try_parse(id).ok())
                else {
                    continue;
                };
                if called == target {
                    return Ok(true);
                }
                if seen.insert(called) {
                    next.push(called);
                }
            }
        }
        level = next;
    }
    Ok(false)
}
