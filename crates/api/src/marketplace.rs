//! The marketplace: chains and custom agents published as versioned items, searched, reviewed
//! and installed into a tenant (`/api/marketplace/...`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// The package is a chain definition.
    Chain,
    /// The package is a custom agent definition.
    Agent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Public,
    /// Only the publisher tenant sees it.
    Private,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchSort {
    /// Best match first (with `q`).
    Relevance,
    Downloads,
    Rating,
    Newest,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Item {
    pub id: String,
    /// Unique per publisher tenant.
    pub slug: String,
    pub publisher_tenant_id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    /// `chain` or `agent`.
    pub kind: String,
    /// `public` or `private`.
    pub visibility: String,
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

#[derive(Debug, Serialize, Deserialize, ToSchema)]
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

#[derive(Debug, Serialize, Deserialize, ToSchema)]
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

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Installation {
    pub id: String,
    /// The installing tenant.
    pub tenant_id: String,
    pub item_id: String,
    pub item_slug: String,
    /// `chain` or `agent`.
    pub kind: String,
    pub version: String,
    /// What the install made in the tenant: the chain's id (`/api/chains/{id}`), or the custom
    /// agent's name (`/api/agents/{name}`).
    pub target: String,
    /// The user or key that installed it.
    pub installed_by: String,
    pub installed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
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

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemList {
    pub items: Vec<Item>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
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

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Published {
    pub item: Option<Item>,
    pub version: Option<ItemVersion>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionList {
    /// Highest semver first, yanked ones included and marked.
    pub versions: Vec<ItemVersion>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
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

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"rating": 5, "comment": "Saved us a day."}))]
pub struct ReviewItem {
    #[schema(minimum = 1, maximum = 5)]
    #[serde(deserialize_with = "crate::json::whole_required")]
    pub rating: u32,
    /// At most 4,000 characters once trimmed, without NUL.
    #[serde(default)]
    #[schema(max_length = 4000, pattern = r"^[^\u0000]*$")]
    pub comment: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewList {
    /// Newest first.
    pub reviews: Vec<Review>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"version": "1.2.0"}))]
pub struct InstallItem {
    /// An exact version (yanked ones included); the latest when absent.
    #[schema(
        max_length = 64,
        pattern = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-((0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$"
    )]
    pub version: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Installed {
    pub install: Option<Installation>,
    /// True when this version was installed in the tenant already and nothing was done.
    pub already_installed: bool,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
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

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InstallList {
    /// Newest first.
    pub installs: Vec<Installation>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}
