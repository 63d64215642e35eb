//! `sankalpa.v1.MarketplaceService`: checks the caller's permission, turns wire messages into
//! checked domain values (the `input` checks, each naming its field), calls the domain modules
//! and turns their results back into wire messages.

use sankalpa_kit::grpc::timestamp;
use std::sync::Arc;

use sankalpa_kit::auth::{self as kit_auth, Principal};
use sankalpa_kit::paging;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::marketplace_service_server::MarketplaceService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::error::{MarketError, Result};
use crate::installs::{self, Installation, Installer};
use crate::items::{self, Item, ItemKey, Kind, Search, Sort, Visibility};
use crate::reviews::{self, Review, Reviewer};
use crate::versions::{self, ItemVersion, Publish, Publisher, Yank};
use crate::{State, input};

const READ: &str = "market:read";
const PUBLISH: &str = "market:publish";

pub struct MarketplaceApi {
    state: Arc<State>,
}

impl MarketplaceApi {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

/// The caller's own token, forwarded to the owning services so they check the caller's
/// permissions and tenant themselves.
fn bearer<T>(request: &Request<T>) -> Result<String> {
    kit_auth::bearer_token(request)
        .map(str::to_owned)
        .ok_or_else(|| MarketError::Precondition("an access token is required".to_owned()))
}

fn is_admin(caller: &Principal) -> bool {
    caller.roles.iter().any(|role| role == "admin")
        || caller.permissions.iter().any(|granted| granted == "*:*")
}

/// Counts are never negative in the database; the cast cannot lose anything.
fn unsigned(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

fn kind_message(kind: &str) -> i32 {
    match kind {
        "chain" => pb::ItemKind::Chain as i32,
        "agent" => pb::ItemKind::Agent as i32,
        _ => pb::ItemKind::Unspecified as i32,
    }
}

fn kind(field: &str, raw: i32, required: bool) -> Result<Option<Kind>> {
    match pb::ItemKind::try_from(raw) {
        Ok(pb::ItemKind::Chain) => Ok(Some(Kind::Chain)),
        Ok(pb::ItemKind::Agent) => Ok(Some(Kind::Agent)),
        Ok(pb::ItemKind::Unspecified) if !required => Ok(None),
        _ => Err(MarketError::invalid(field, "must be CHAIN or AGENT")),
    }
}

fn item_message(item: Item) -> pb::Item {
    pb::Item {
        id: item.id.to_string(),
        slug: item.slug,
        publisher_tenant_id: item.publisher_tenant_id.to_string(),
        name: item.name,
        description: item.description,
        tags: item.tags,
        kind: kind_message(&item.kind_text),
        visibility: if item.visibility == "public" {
            pb::Visibility::Public as i32
        } else {
            pb::Visibility::Private as i32
        },
        author_id: item.author_id,
        author_name: item.author_name,
        latest_version: item.latest_version,
        downloads: unsigned(item.downloads),
        rating_average: item.rating_average,
        rating_count: unsigned(item.rating_count),
        created_at: Some(timestamp(item.created_at)),
        updated_at: Some(timestamp(item.updated_at)),
    }
}

fn version_message(version: ItemVersion) -> pb::ItemVersion {
    pb::ItemVersion {
        item_id: version.item_id.to_string(),
        version: version.version,
        sha256: version.sha256,
        size_bytes: unsigned(version.size_bytes),
        release_notes: version.release_notes,
        yanked: version.yanked,
        yank_reason: version.yank_reason,
        yanked_at: version.yanked_at.map(timestamp),
        published_by: version.published_by,
        published_at: Some(timestamp(version.published_at)),
    }
}

fn review_message(review: Review) -> pb::ItemReview {
    pb::ItemReview {
        id: review.id.to_string(),
        item_id: review.item_id.to_string(),
        tenant_id: review.tenant_id.to_string(),
        user_id: review.user_id,
        author_name: review.author_name,
        rating: u32::try_from(review.rating).unwrap_or(0),
        comment: review.comment,
        created_at: Some(timestamp(review.created_at)),
        updated_at: Some(timestamp(review.updated_at)),
    }
}

fn install_message(install: Installation) -> pb::Installation {
    pb::Installation {
        id: install.id.to_string(),
        tenant_id: install.tenant_id.to_string(),
        item_id: install.item_id.to_string(),
        item_slug: install.item_slug,
        kind: kind_message(&install.kind),
        version: install.version,
        target: install.target,
        installed_by: install.installed_by,
        installed_at: Some(timestamp(install.installed_at)),
    }
}

/// The item a request names; a slug without a publisher is one of the caller's tenant.
fn item_key(tenant: Uuid, item: Option<&pb::ItemRef>) -> Result<ItemKey> {
    match item.and_then(|item| item.by.as_ref()) {
        Some(pb::item_ref::By::Id(id)) => Ok(ItemKey::Id(input::uuid("item.id", id)?)),
        Some(pb::item_ref::By::Slug(named)) => Ok(ItemKey::Slug {
            publisher: if named.publisher_tenant_id.is_empty() {
                tenant
            } else {
                input::uuid("item.slug.publisher_tenant_id", &named.publisher_tenant_id)?
            },
            slug: input::slug("item.slug.slug", &named.slug)?,
        }),
        None => Err(MarketError::invalid(
            "item",
            "must name an item by id or slug",
        )),
    }
}

/// What a message adds to a page besides its own encoding: its field tag and length, at most.
const PAGE_ENTRY_FRAMING_BYTES: usize = 8;

impl MarketplaceApi {
    /// The rows found for a page of `size` at `offset`, as wire messages, as many as fit in the
    /// page's byte budget (at least one, so paging always goes on), and the next page's token,
    /// which starts at the first row left out.
    fn fit<T, M: prost::Message>(
        &self,
        found: Vec<T>,
        message: impl Fn(T) -> M,
        size: i64,
        offset: i64,
    ) -> (Vec<M>, String) {
        let found_count = found.len();
        let mut bytes = 0usize;
        let mut kept = Vec::with_capacity(found_count);
        for row in found {
            let wire = message(row);
            bytes = bytes.saturating_add(wire.encoded_len() + PAGE_ENTRY_FRAMING_BYTES);
            if bytes > self.state.max_page_bytes && !kept.is_empty() {
                break;
            }
            kept.push(wire);
        }
        let next = input::next_page(size, offset, found_count, kept.len());
        (kept, next)
    }

    /// The item named by `item`, if the caller's tenant may see it.
    async fn item(&self, tenant: Uuid, item: Option<&pb::ItemRef>) -> Result<Item> {
        items::visible(&self.state.pool, tenant, &item_key(tenant, item)?).await
    }
}

#[tonic::async_trait]
impl MarketplaceService for MarketplaceApi {
    async fn publish(&self, request: Request<pb::PublishRequest>) -> Reply<pb::PublishResponse> {
        let caller = kit_auth::authorize(&request, PUBLISH)?.clone();
        let tenant = caller.tenant()?;
        let token = bearer(&request)?;
        let message = request.into_inner();
        let publisher = Publisher {
            tenant,
            subject: caller.subject.clone(),
            is_admin: is_admin(&caller),
        };
        if message.package_json.len() > self.state.max_package_bytes {
            return Err(MarketError::invalid(
                "package_json",
                format!("must be at most {} bytes", self.state.max_package_bytes),
            )
            .into());
        }
        // Only checked here, not kept: the owning service reads it. Ignored values build no
        // tree, which for a package of small values would be many times its size.
        if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(&message.package_json) {
            return Err(
                MarketError::invalid("package_json", format!("must be JSON: {err}")).into(),
            );
        }
        let publish = Publish {
            slug: input::slug("slug", &message.slug)?,
            name: input::text("name", &message.name, input::MAX_NAME_CHARS, true)?,
            description: input::text(
                "description",
                &message.description,
                input::MAX_DESCRIPTION_CHARS,
                false,
            )?,
            tags: input::tags(&message.tags)?,
            kind: kind("kind", message.kind, true)?.expect("a required kind is present"),
            visibility: match pb::Visibility::try_from(message.visibility) {
                Ok(pb::Visibility::Unspecified) => None,
                Ok(pb::Visibility::Public) => Some(Visibility::Public),
                Ok(pb::Visibility::Private) => Some(Visibility::Private),
                Err(_) => {
                    return Err(
                        MarketError::invalid("visibility", "must be PUBLIC or PRIVATE").into(),
                    );
                }
            },
            version: input::version("version", &message.version)?,
            package: message.package_json,
            release_notes: input::text(
                "release_notes",
                &message.release_notes,
                input::MAX_NOTES_CHARS,
                false,
            )?,
        };
        let (item, version) = versions::publish(&self.state, &token, &publisher, publish).await?;
        Ok(Response::new(pb::PublishResponse {
            item: Some(item_message(item)),
            version: Some(version_message(version)),
        }))
    }

    async fn get_item(&self, request: Request<pb::GetItemRequest>) -> Reply<pb::Item> {
        let caller = kit_auth::authorize(&request, READ)?;
        let tenant = caller.tenant()?;
        let item = self.item(tenant, request.get_ref().item.as_ref()).await?;
        Ok(Response::new(item_message(item)))
    }

    async fn list_versions(
        &self,
        request: Request<pb::ListVersionsRequest>,
    ) -> Reply<pb::ListVersionsResponse> {
        let caller = kit_auth::authorize(&request, READ)?;
        let tenant = caller.tenant()?;
        let message = request.get_ref();
        let (size, offset) = input::page(message.page.as_ref())?;
        let item = self.item(tenant, message.item.as_ref()).await?;
        let all = versions::list(&self.state.pool, item.id).await?;
        let found: Vec<ItemVersion> = all
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(size).unwrap_or(0))
            .collect();
        let (versions, next) = self.fit(found, version_message, size, offset);
        Ok(Response::new(pb::ListVersionsResponse {
            versions,
            page: paging::response(next),
        }))
    }

    async fn yank_version(
        &self,
        request: Request<pb::YankVersionRequest>,
    ) -> Reply<pb::ItemVersion> {
        let caller = kit_auth::authorize(&request, PUBLISH)?;
        let tenant = caller.tenant()?;
        let message = request.get_ref();
        let yank = Yank {
            version: input::version("version", &message.version)?,
            reason: input::text("reason", &message.reason, input::MAX_REASON_CHARS, false)?,
            unyank: message.unyank,
        };
        let item = self.item(tenant, message.item.as_ref()).await?;
        let publisher = Publisher {
            tenant,
            subject: caller.subject.clone(),
            is_admin: is_admin(caller),
        };
        let version = versions::yank(&self.state.pool, &publisher, &item, &yank).await?;
        Ok(Response::new(version_message(version)))
    }

    async fn search(&self, request: Request<pb::SearchRequest>) -> Reply<pb::SearchResponse> {
        let caller = kit_auth::authorize(&request, READ)?;
        let tenant = caller.tenant()?;
        let message = request.get_ref();
        let (size, offset) = input::page(message.page.as_ref())?;
        let query = input::text("query", &message.query, input::MAX_QUERY_CHARS, false)?;
        let sort = match pb::SearchSort::try_from(message.sort) {
            Ok(pb::SearchSort::Relevance) if !query.is_empty() => Sort::Relevance,
            Ok(pb::SearchSort::Unspecified) if !query.is_empty() => Sort::Relevance,
            Ok(
                pb::SearchSort::Relevance | pb::SearchSort::Unspecified | pb::SearchSort::Newest,
            ) => Sort::Newest,
            Ok(pb::SearchSort::Downloads) => Sort::Downloads,
            Ok(pb::SearchSort::Rating) => Sort::Rating,
            Err(_) => {
                return Err(MarketError::invalid("sort", "is not a known sort order").into());
            }
        };
        let search = Search {
            query,
            kind: kind("kind", message.kind, false)?,
            tag: if message.tag.is_empty() {
                None
            } else {
                Some(input::tag("tag", &message.tag)?)
            },
            publisher: if message.publisher_tenant_id.is_empty() {
                None
            } else {
                Some(input::uuid(
                    "publisher_tenant_id",
                    &message.publisher_tenant_id,
                )?)
            },
            sort,
            size,
            offset,
        };
        let found = {
            let _turn = self.state.searches.acquire().await.expect("never closed");
            items::search(&self.state.pool, tenant, &search).await?
        };
        let (items, next) = self.fit(found, item_message, size, offset);
        Ok(Response::new(pb::SearchResponse {
            items,
            page: paging::response(next),
        }))
    }

    async fn review(&self, request: Request<pb::ReviewRequest>) -> Reply<pb::ItemReview> {
        let caller = kit_auth::authorize(&request, READ)?.clone();
        let tenant = caller.tenant()?;
        let token = bearer(&request)?;
        let message = request.get_ref();
        let rating = match message.rating {
            rating @ 1..=5 => i16::try_from(rating).expect("1 to 5 fits"),
            _ => return Err(MarketError::invalid("rating", "must be 1 to 5").into()),
        };
        let comment = input::text("comment", &message.comment, input::MAX_COMMENT_CHARS, false)?;
        let item = self.item(tenant, message.item.as_ref()).await?;
        let reviewer = Reviewer {
            tenant,
            user: caller.subject.clone(),
            name: self
                .state
                .owners
                .display_name(&token, &caller.subject)
                .await,
        };
        let review = reviews::review(&self.state, &item, &reviewer, rating, &comment).await?;
        Ok(Response::new(review_message(review)))
    }

    async fn list_reviews(
        &self,
        request: Request<pb::ListReviewsRequest>,
    ) -> Reply<pb::ListReviewsResponse> {
        let caller = kit_auth::authorize(&request, READ)?;
        let tenant = caller.tenant()?;
        let message = request.get_ref();
        let (size, offset) = input::page(message.page.as_ref())?;
        let item = self.item(tenant, message.item.as_ref()).await?;
        let found = reviews::list(&self.state.pool, item.id, size, offset).await?;
        let (reviews, next) = self.fit(found, review_message, size, offset);
        Ok(Response::new(pb::ListReviewsResponse {
            reviews,
            page: paging::response(next),
        }))
    }

    async fn install(&self, request: Request<pb::InstallRequest>) -> Reply<pb::InstallResponse> {
        let caller = kit_auth::authorize(&request, READ)?;
        let tenant = caller.tenant()?;
        let token = bearer(&request)?;
        let message = request.get_ref();
        let version = message
            .version
            .as_deref()
            .map(|version| input::version("version", version))
            .transpose()?;
        let item = self.item(tenant, message.item.as_ref()).await?;
        let installer = Installer {
            tenant,
            subject: &caller.subject,
            token: &token,
        };
        let (install, already_installed) =
            installs::install(&self.state, &installer, &item, version.as_ref()).await?;
        Ok(Response::new(pb::InstallResponse {
            install: Some(install_message(install)),
            already_installed,
        }))
    }

    async fn list_installs(
        &self,
        request: Request<pb::ListInstallsRequest>,
    ) -> Reply<pb::ListInstallsResponse> {
        let caller = kit_auth::authorize(&request, READ)?;
        let tenant = caller.tenant()?;
        let message = request.get_ref();
        let (size, offset) = input::page(message.page.as_ref())?;
        let item = match &message.item {
            Some(item) => Some(self.item(tenant, Some(item)).await?.id),
            None => None,
        };
        let found = installs::list(&self.state.pool, tenant, item, size, offset).await?;
        let (installs, next) = self.fit(found, install_message, size, offset);
        Ok(Response::new(pb::ListInstallsResponse {
            installs,
            page: paging::response(next),
        }))
    }
}
