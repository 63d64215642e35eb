//! The marketplace: chains and custom agents one tenant publishes for others to find, review
//! and install, in front of the marketplace service (`/api/marketplace...`; the spec's
//! `GET /api/marketplace` searches and `POST /api/marketplace` publishes).
//!
//! A package is JSON in REST and JSON text on the wire, passed through as sent ([`RawValue`]).
//! The gateway checks market:read / market:publish before calling; the marketplace checks again,
//! and a private item of another tenant is 404 there, as if it did not exist. Installing also
//! needs chains:write (a chain) or agents:write (an agent), which the owning service checks on
//! the caller's forwarded token. A stored package that no longer matches its SHA-256 is refused
//! at install as a 500 of type `.../data-loss`, as a damaged memory backup is. The marketplace
//! names invalid fields as its wire messages do (`package_json.steps[0].agent`, `item.id`,
//! `query`); they are renamed here to what the client sent (`package.steps[0].agent`, `id`, `q`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, OffsetPage, Page, next_page, timestamp};

const READ: &str = "market:read";
const PUBLISH: &str = "market:publish";

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(search, publish))
        .routes(routes!(installs))
        .routes(routes!(get_one))
        .routes(routes!(versions))
        .routes(routes!(yank))
        .routes(routes!(reviews, review))
        .routes(routes!(install))
}

/// A problem from the marketplace, its field names turned into this API's.
fn problem(status: tonic::Status) -> Problem {
    crate::json::renamed(status, rest_field)
}

/// `package_json.steps[0]` -> `package.steps[0]`, `item.id` -> `id`, `query` -> `q`,
/// `page.page_size` -> `page_size`.
fn rest_field(field: &str) -> String {
    let field = field.strip_prefix("page.").unwrap_or(field);
    match field {
        "query" => "q".to_owned(),
        "item.id" => "id".to_owned(),
        field => field.replacen("package_json", "package", 1),
    }
}

/// The item a path names.
fn by_id(id: String) -> Option<v1::ItemRef> {
    Some(v1::ItemRef {
        by: Some(v1::item_ref::By::Id(id)),
    })
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// The package is a chain definition.
    Chain,
    /// The package is a custom agent definition.
    Agent,
}

impl From<ItemKind> for v1::ItemKind {
    fn from(kind: ItemKind) -> Self {
        match kind {
            ItemKind::Chain => Self::Chain,
            ItemKind::Agent => Self::Agent,
        }
    }
}

fn kind_name(kind: v1::ItemKind) -> &'static str {
    match kind {
        v1::ItemKind::Chain => "chain",
        v1::ItemKind::Agent => "agent",
        v1::ItemKind::Unspecified => "unknown",
    }
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Public,
    /// Only the publisher tenant sees it.
    Private,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchSort {
    /// Best match first (with `q`).
    Relevance,
    Downloads,
    Rating,
    Newest,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Item {
    pub id: String,
    /// Unique per publisher tenant.
    pub slug: String,
    pub publisher_tenant_id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    /// `chain` or `agent`.
    pub kind: &'static str,
    /// `public` or `private`.
    pub visibility: &'static str,
    pub author_id: String,
    pub author_name: String,
    /// The highest version that is not yanked; absent when every version is yanked.
    pub latest_version: Option<String>,
    /// Installs, counted once per tenant and version.
    pub downloads: u64,
    /// The mean rating, 0 without reviews.
    pub rating_average: f64,
    pub rating_count: u64,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<v1::Item> for Item {
    fn from(item: v1::Item) -> Self {
        Self {
            kind: kind_name(item.kind()),
            visibility: match item.visibility() {
                v1::Visibility::Public => "public",
                v1::Visibility::Private | v1::Visibility::Unspecified => "private",
            },
            id: item.id,
            slug: item.slug,
            publisher_tenant_id: item.publisher_tenant_id,
            name: item.name,
            description: item.description,
            tags: item.tags,
            author_id: item.author_id,
            author_name: item.author_name,
            latest_version: Some(item.latest_version).filter(|version| !version.is_empty()),
            downloads: item.downloads,
            rating_average: item.rating_average,
            rating_count: item.rating_count,
            created_at: timestamp(item.created_at),
            updated_at: timestamp(item.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemVersion {
    pub item_id: String,
    /// Semantic version 2.0.0.
    pub version: String,
    /// Hex SHA-256 of the stored package, checked before every install.
    pub sha256: String,
    pub size_bytes: u64,
    pub release_notes: String,
    /// Hidden from "latest", still installable by exact version.
    pub yanked: bool,
    pub yank_reason: Option<String>,
    pub yanked_at: Option<DateTime<Utc>>,
    /// The user or key that published it.
    pub published_by: String,
    pub published_at: Option<DateTime<Utc>>,
}

impl From<v1::ItemVersion> for ItemVersion {
    fn from(version: v1::ItemVersion) -> Self {
        Self {
            item_id: version.item_id,
            version: version.version,
            sha256: version.sha256,
            size_bytes: version.size_bytes,
            release_notes: version.release_notes,
            yanked: version.yanked,
            yank_reason: Some(version.yank_reason).filter(|reason| !reason.is_empty()),
            yanked_at: timestamp(version.yanked_at),
            published_by: version.published_by,
            published_at: timestamp(version.published_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Review {
    pub id: String,
    pub item_id: String,
    /// The reviewer's tenant.
    pub tenant_id: String,
    pub user_id: String,
    pub author_name: String,
    /// 1 to 5.
    pub rating: u32,
    pub comment: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<v1::ItemReview> for Review {
    fn from(review: v1::ItemReview) -> Self {
        Self {
            id: review.id,
            item_id: review.item_id,
            tenant_id: review.tenant_id,
            user_id: review.user_id,
            author_name: review.author_name,
            rating: review.rating,
            comment: review.comment,
            created_at: timestamp(review.created_at),
            updated_at: timestamp(review.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Installation {
    pub id: String,
    /// The installing tenant.
    pub tenant_id: String,
    pub item_id: String,
    pub item_slug: String,
    /// `chain` or `agent`.
    pub kind: &'static str,
    pub version: String,
    /// What the install made in the tenant: the chain's id (`/api/chains/{id}`), or the custom
    /// agent's name (`/api/agents/{name}`).
    pub target: String,
    /// The user or key that installed it.
    pub installed_by: String,
    pub installed_at: Option<DateTime<Utc>>,
}

impl From<v1::Installation> for Installation {
    fn from(install: v1::Installation) -> Self {
        Self {
            kind: kind_name(install.kind()),
            id: install.id,
            tenant_id: install.tenant_id,
            item_id: install.item_id,
            item_slug: install.item_slug,
            version: install.version,
            target: install.target,
            installed_by: install.installed_by,
            installed_at: timestamp(install.installed_at),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Full-text query over name, description and tags; every item when absent. At most 200
    /// characters, without NUL.
    #[param(max_length = 200, pattern = r"^[^\u0000]*$")]
    pub q: Option<String>,
    /// `chain` or `agent`; both when absent.
    pub kind: Option<ItemKind>,
    /// Only items with this tag (lowercase `[a-z0-9][a-z0-9-]*`, at most 32 bytes); every item
    /// when empty.
    #[param(pattern = r"^([a-z0-9][a-z0-9-]{0,31})?$")]
    pub tag: Option<String>,
    /// `relevance` (the default with `q`), `downloads`, `rating` or `newest` (the default
    /// without `q`).
    pub sort: Option<SearchSort>,
    /// Only items of this publisher tenant; every publisher's when empty.
    #[param(
        pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})?$"
    )]
    pub publisher_tenant_id: Option<String>,
    /// At most 200; the service default (50) when absent or 0.
    #[param(maximum = 200)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page: an offset, at most 10,000.
    #[param(pattern = r"^(\+?0*(10000|[0-9]{1,4}))?$")]
    pub page_token: Option<String>,
}

/// A tag: lowercase `[a-z0-9][a-z0-9-]*`, at most 32 bytes.
#[derive(ToSchema)]
#[schema(pattern = r"^[a-z0-9][a-z0-9-]{0,31}$")]
pub struct Tag(pub String);

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemList {
    pub items: Vec<Item>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"slug": "build-and-test", "name": "Build and test", "description": "Builds an API, then its tests", "tags": ["api", "testing"], "kind": "chain", "visibility": "public", "version": "1.0.0", "package": {"agents": ["api_builder", "test_writer"], "mode": "sequential"}, "release_notes": "First release"}))]
pub struct PublishItem {
    /// Unique in the publisher tenant: `[a-z0-9][a-z0-9-]{0,63}`. Publishing to an existing
    /// slug adds a version to that item.
    #[schema(pattern = r"^[a-z0-9][a-z0-9-]{0,63}$")]
    pub slug: String,
    /// 1 to 100 characters once trimmed, without NUL.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub name: String,
    /// At most 2,000 characters once trimmed, without NUL.
    #[serde(default)]
    #[schema(max_length = 2000, pattern = r"^[^\u0000]*$")]
    pub description: String,
    /// At most 20; repeats are dropped.
    #[serde(default)]
    #[schema(value_type = Vec<Tag>, max_items = 20)]
    pub tags: Vec<String>,
    pub kind: ItemKind,
    /// Unchanged for an existing item when absent; a new item is then private.
    pub visibility: Option<Visibility>,
    /// Semantic version 2.0.0 of at most 64 bytes; versions are immutable.
    #[schema(
        max_length = 64,
        pattern = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-((0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$"
    )]
    pub version: String,
    /// A chain definition (kind `chain`) or a custom agent definition (kind `agent`), checked by
    /// the chain orchestrator or agent-runner before anything is stored.
    #[schema(value_type = Object)]
    pub package: Box<RawValue>,
    /// At most 10,000 characters once trimmed, without NUL.
    #[serde(default)]
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    pub release_notes: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    pub item: Option<Item>,
    pub version: Option<ItemVersion>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionList {
    /// Highest semver first, yanked ones included and marked.
    pub versions: Vec<ItemVersion>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"reason": "breaks on empty input"}))]
pub struct YankVersion {
    /// Why, for people: at most 500 characters once trimmed, without NUL.
    #[serde(default)]
    #[schema(max_length = 500, pattern = r"^[^\u0000]*$")]
    pub reason: String,
    /// Undo an earlier yank.
    #[serde(default)]
    pub unyank: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"rating": 5, "comment": "Saved us a day."}))]
pub struct ReviewItem {
    #[schema(minimum = 1, maximum = 5)]
    #[serde(deserialize_with = "sankalpa_api::json::whole_required")]
    pub rating: u32,
    /// At most 4,000 characters once trimmed, without NUL.
    #[serde(default)]
    #[schema(max_length = 4000, pattern = r"^[^\u0000]*$")]
    pub comment: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewList {
    /// Newest first.
    pub reviews: Vec<Review>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"version": "1.2.0"}))]
pub struct InstallItem {
    /// An exact version (yanked ones included); the latest when absent.
    #[schema(
        max_length = 64,
        pattern = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-((0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$"
    )]
    pub version: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Installed {
    pub install: Option<Installation>,
    /// True when this version was installed in the tenant already and nothing was done.
    pub already_installed: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstallsQuery {
    /// Only installs of this item (a UUID).
    #[param(
        pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$"
    )]
    pub item_id: Option<String>,
    /// At most 200; the service default (50) when absent or 0.
    #[param(maximum = 200)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page: an offset, at most 10,000.
    #[param(pattern = r"^(\+?0*(10000|[0-9]{1,4}))?$")]
    pub page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstallList {
    /// Newest first.
    pub installs: Vec<Installation>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

/// Public items and the caller's tenant's private ones, matching `q`, filtered and sorted.
#[utoipa::path(
    get,
    path = "/api/marketplace",
    tag = "marketplace",
    params(SearchQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of items", body = ItemList),
        (status = 400, description = "An invalid filter, naming it", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing market:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn search(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<SearchQuery>,
) -> Result<axum::Json<ItemList>, Problem> {
    caller.require(READ)?;
    let sort = match query.sort {
        None => v1::SearchSort::Unspecified,
        Some(SearchSort::Relevance) => v1::SearchSort::Relevance,
        Some(SearchSort::Downloads) => v1::SearchSort::Downloads,
        Some(SearchSort::Rating) => v1::SearchSort::Rating,
        Some(SearchSort::Newest) => v1::SearchSort::Newest,
    };
    let request = v1::SearchRequest {
        query: query.q.unwrap_or_default(),
        kind: query
            .kind
            .map_or(v1::ItemKind::Unspecified, v1::ItemKind::from)
            .into(),
        tag: query.tag.unwrap_or_default(),
        sort: sort.into(),
        publisher_tenant_id: query.publisher_tenant_id.unwrap_or_default(),
        page: Some(
            Page {
                page_size: query.page_size,
                page_token: query.page_token,
            }
            .into(),
        ),
    };
    let response = state
        .market()
        .search(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(ItemList {
        items: response.items.into_iter().map(Item::from).collect(),
        next_page_token: next_page(response.page),
    }))
}

/// Publishes a version of an item of the caller's tenant, creating the item on its first
/// version. The package is checked by the service that owns its kind; a bad one stores nothing.
#[utoipa::path(
    post,
    path = "/api/marketplace",
    tag = "marketplace",
    request_body = PublishItem,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The item and the new version", body = Published, headers(("Location" = String, description = "The item's URL"))),
        (status = 400, description = "Invalid input or package, naming the field (`package.steps[0].agent`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing market:publish, or not the item's author or an admin of its tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The version exists already", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The kind differs from the existing item's", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn publish(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<PublishItem>,
) -> Result<Response, Problem> {
    caller.require(PUBLISH)?;
    let visibility = match body.visibility {
        None => v1::Visibility::Unspecified,
        Some(Visibility::Public) => v1::Visibility::Public,
        Some(Visibility::Private) => v1::Visibility::Private,
    };
    let request = v1::PublishRequest {
        slug: body.slug,
        name: body.name,
        description: body.description,
        tags: body.tags,
        kind: v1::ItemKind::from(body.kind).into(),
        visibility: visibility.into(),
        version: body.version,
        package_json: String::from(Box::<str>::from(body.package)),
        release_notes: body.release_notes,
    };
    let response = state
        .market()
        .publish(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    let published = Published {
        item: response.item.map(Item::from),
        version: response.version.map(ItemVersion::from),
    };
    let id = published.item.as_ref().map_or("", |item| item.id.as_str());
    let location = format!("/api/marketplace/items/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(published),
    )
        .into_response())
}

/// One item.
#[utoipa::path(
    get,
    path = "/api/marketplace/items/{id}",
    tag = "marketplace",
    params(("id" = String, Path, description = "The item id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The item", body = Item),
        (status = 403, description = "Missing market:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item, or a private item of another tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Item>, Problem> {
    caller.require(READ)?;
    let request = v1::GetItemRequest { item: by_id(id) };
    let item = state
        .market()
        .get_item(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?;
    Ok(axum::Json(item.into_inner().into()))
}

/// An item's versions, highest first, yanked ones included.
#[utoipa::path(
    get,
    path = "/api/marketplace/items/{id}/versions",
    tag = "marketplace",
    params(("id" = String, Path, description = "The item id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$"), OffsetPage),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of versions", body = VersionList),
        (status = 403, description = "Missing market:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item, or a private item of another tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn versions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> Result<axum::Json<VersionList>, Problem> {
    caller.require(READ)?;
    let request = v1::ListVersionsRequest {
        item: by_id(id),
        page: Some(page.into()),
    };
    let response = state
        .market()
        .list_versions(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(VersionList {
        versions: response
            .versions
            .into_iter()
            .map(ItemVersion::from)
            .collect(),
        next_page_token: next_page(response.page),
    }))
}

/// Yanks a version (hidden from "latest", still installable by exact version), or with
/// `unyank: true` brings it back.
#[utoipa::path(
    post,
    path = "/api/marketplace/items/{id}/versions/{version}/yank",
    tag = "marketplace",
    params(
        ("id" = String, Path, description = "The item id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$"),
        ("version" = String, Path, description = "The exact version", pattern = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-((0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$"),
    ),
    request_body = YankVersion,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The version as it is now", body = ItemVersion),
        (status = 403, description = "Missing market:publish, or not the item's author or an admin of its tenant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item or version", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn yank(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, version)): Path<(String, String)>,
    Body(body): Body<YankVersion>,
) -> Result<axum::Json<ItemVersion>, Problem> {
    caller.require(PUBLISH)?;
    let request = v1::YankVersionRequest {
        item: by_id(id),
        version,
        reason: body.reason,
        unyank: body.unyank,
    };
    let version = state
        .market()
        .yank_version(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?;
    Ok(axum::Json(version.into_inner().into()))
}

/// Creates or replaces the caller's review of an item (one per user), updating its rating.
#[utoipa::path(
    post,
    path = "/api/marketplace/items/{id}/reviews",
    tag = "marketplace",
    params(("id" = String, Path, description = "The item id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    request_body = ReviewItem,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The review", body = Review),
        (status = 400, description = "A rating outside 1 to 5 or a comment too long", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing market:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item, or a private item of another tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An item of the caller's own tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn review(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<ReviewItem>,
) -> Result<axum::Json<Review>, Problem> {
    caller.require(READ)?;
    let request = v1::ReviewRequest {
        item: by_id(id),
        rating: body.rating,
        comment: body.comment,
    };
    let review = state
        .market()
        .review(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?;
    Ok(axum::Json(review.into_inner().into()))
}

/// An item's reviews, newest first.
#[utoipa::path(
    get,
    path = "/api/marketplace/items/{id}/reviews",
    tag = "marketplace",
    params(("id" = String, Path, description = "The item id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$"), OffsetPage),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of reviews", body = ReviewList),
        (status = 403, description = "Missing market:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item, or a private item of another tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn reviews(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> Result<axum::Json<ReviewList>, Problem> {
    caller.require(READ)?;
    let request = v1::ListReviewsRequest {
        item: by_id(id),
        page: Some(page.into()),
    };
    let response = state
        .market()
        .list_reviews(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(ReviewList {
        reviews: response.reviews.into_iter().map(Review::from).collect(),
        next_page_token: next_page(response.page),
    }))
}

/// Installs a version into the caller's tenant: a chain becomes a chain there, an agent a
/// custom agent. Installing a version already installed changes nothing (200).
#[utoipa::path(
    post,
    path = "/api/marketplace/items/{id}/install",
    tag = "marketplace",
    params(("id" = String, Path, description = "The item id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    request_body = InstallItem,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Installed", body = Installed),
        (status = 200, description = "This version was installed already; nothing was done", body = Installed),
        (status = 403, description = "Missing market:read, or chains:write / agents:write for the kind", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item or version, or a private item of another tenant", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The stored package does not match its checksum (type .../data-loss); nothing was installed", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn install(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<InstallItem>,
) -> Result<(StatusCode, axum::Json<Installed>), Problem> {
    caller.require(READ)?;
    let request = v1::InstallRequest {
        item: by_id(id),
        version: body.version,
    };
    let response = state
        .market()
        .install(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    let status = if response.already_installed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        axum::Json(Installed {
            install: response.install.map(Installation::from),
            already_installed: response.already_installed,
        }),
    ))
}

/// The caller's tenant's installs, newest first.
#[utoipa::path(
    get,
    path = "/api/marketplace/installs",
    tag = "marketplace",
    params(InstallsQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of installs", body = InstallList),
        (status = 403, description = "Missing market:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`item_id` names no item the caller can see", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn installs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<InstallsQuery>,
) -> Result<axum::Json<InstallList>, Problem> {
    caller.require(READ)?;
    let request = v1::ListInstallsRequest {
        item: query.item_id.and_then(by_id),
        page: Some(
            Page {
                page_size: query.page_size,
                page_token: query.page_token,
            }
            .into(),
        ),
    };
    let response = state
        .market()
        .list_installs(state.request_as(&caller, request)?)
        .await
        .map_err(|status| {
            crate::json::renamed(status, |field| match field {
                "item.id" => "item_id".to_owned(),
                field => rest_field(field),
            })
        })?
        .into_inner();
    Ok(axum::Json(InstallList {
        installs: response
            .installs
            .into_iter()
            .map(Installation::from)
            .collect(),
        next_page_token: next_page(response.page),
    }))
}

#[cfg(test)]
mod tests {
    use super::rest_field;

    #[test]
    fn the_marketplaces_field_names_become_the_rest_apis() {
        assert_eq!(rest_field("package_json"), "package");
        assert_eq!(
            rest_field("package_json.steps[0].agent"),
            "package.steps[0].agent"
        );
        assert_eq!(rest_field("item.id"), "id");
        assert_eq!(rest_field("query"), "q");
        assert_eq!(rest_field("page.page_token"), "page_token");
        assert_eq!(rest_field("slug"), "slug");
    }
}
