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
use sankalpa_api::marketplace::{
    InstallItem, InstallList, Installation, Installed, InstallsQuery, Item, ItemKind, ItemList,
    ItemVersion, PublishItem, Published, Review, ReviewItem, ReviewList, SearchQuery, SearchSort,
    VersionList, Visibility, YankVersion,
};
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, OffsetPage, Page, Rest, next_page, page_request, timestamp};

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

fn wire_kind(kind: ItemKind) -> v1::ItemKind {
    match kind {
        ItemKind::Chain => v1::ItemKind::Chain,
        ItemKind::Agent => v1::ItemKind::Agent,
    }
}

fn kind_name(kind: v1::ItemKind) -> &'static str {
    match kind {
        v1::ItemKind::Chain => "chain",
        v1::ItemKind::Agent => "agent",
        v1::ItemKind::Unspecified => "unknown",
    }
}

impl Rest for v1::Item {
    type Shown = Item;

    fn rest(self) -> Item {
        Item {
            kind: kind_name(self.kind()).to_owned(),
            visibility: match self.visibility() {
                v1::Visibility::Public => "public",
                v1::Visibility::Private | v1::Visibility::Unspecified => "private",
            }
            .to_owned(),
            id: self.id,
            slug: self.slug,
            publisher_tenant_id: self.publisher_tenant_id,
            name: self.name,
            description: self.description,
            tags: self.tags,
            author_id: self.author_id,
            author_name: self.author_name,
            latest_version: Some(self.latest_version).filter(|version| !version.is_empty()),
            downloads: self.downloads,
            rating_average: self.rating_average,
            rating_count: self.rating_count,
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
        }
    }
}

impl Rest for v1::ItemVersion {
    type Shown = ItemVersion;

    fn rest(self) -> ItemVersion {
        ItemVersion {
            item_id: self.item_id,
            version: self.version,
            sha256: self.sha256,
            size_bytes: self.size_bytes,
            release_notes: self.release_notes,
            yanked: self.yanked,
            yank_reason: Some(self.yank_reason).filter(|reason| !reason.is_empty()),
            yanked_at: timestamp(self.yanked_at),
            published_by: self.published_by,
            published_at: timestamp(self.published_at),
        }
    }
}

impl Rest for v1::ItemReview {
    type Shown = Review;

    fn rest(self) -> Review {
        Review {
            id: self.id,
            item_id: self.item_id,
            tenant_id: self.tenant_id,
            user_id: self.user_id,
            author_name: self.author_name,
            rating: self.rating,
            comment: self.comment,
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
        }
    }
}

impl Rest for v1::Installation {
    type Shown = Installation;

    fn rest(self) -> Installation {
        Installation {
            kind: kind_name(self.kind()).to_owned(),
            id: self.id,
            tenant_id: self.tenant_id,
            item_id: self.item_id,
            item_slug: self.item_slug,
            version: self.version,
            target: self.target,
            installed_by: self.installed_by,
            installed_at: timestamp(self.installed_at),
        }
    }
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
            .map_or(v1::ItemKind::Unspecified, wire_kind)
            .into(),
        tag: query.tag.unwrap_or_default(),
        sort: sort.into(),
        publisher_tenant_id: query.publisher_tenant_id.unwrap_or_default(),
        page: Some(page_request(Page {
            page_size: query.page_size,
            page_token: query.page_token,
        })),
    };
    let response = state
        .market()
        .search(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(ItemList {
        items: response.items.into_iter().map(Rest::rest).collect(),
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
        kind: wire_kind(body.kind).into(),
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
        item: response.item.map(Rest::rest),
        version: response.version.map(Rest::rest),
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
    Ok(axum::Json(item.into_inner().rest()))
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
        page: Some(page_request(page)),
    };
    let response = state
        .market()
        .list_versions(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(VersionList {
        versions: response.versions.into_iter().map(Rest::rest).collect(),
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
    Ok(axum::Json(version.into_inner().rest()))
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
    Ok(axum::Json(review.into_inner().rest()))
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
        page: Some(page_request(page)),
    };
    let response = state
        .market()
        .list_reviews(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(ReviewList {
        reviews: response.reviews.into_iter().map(Rest::rest).collect(),
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
            install: response.install.map(Rest::rest),
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
        page: Some(page_request(Page {
            page_size: query.page_size,
            page_token: query.page_token,
        })),
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
        installs: response.installs.into_iter().map(Rest::rest).collect(),
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
