//! Users: the caller (`/api/users/me`, and `/api/principal`, which answers for an API key too)
//! and the administration of a tenant's users (`users:admin`). Another tenant's user answers
//! 404, as if it did not exist.
//!
//! A client (the web UI, the CLI) asks who it is far more often than users change, and the
//! token it sends was already verified here, locally: so `/api/users/me` answers from what auth
//! last said about the caller for a couple of seconds ([`Profiles`]) rather than asking auth
//! every time. A change made through this gateway (roles, removal) is seen at once.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use sankalpa_api::users::{CreateUser, Principal, SetRoles, User, UserList};
use sankalpa_kit::problem::Problem;
use sankalpa_kit::ttl_cache::TtlCache;
use sankalpa_proto::v1;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, Page, Rest, next_page, page_request, timestamp};

const USERS_ADMIN: &str = "users:admin";

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(principal))
        .routes(routes!(list, create))
        .routes(routes!(get_one, delete))
        .routes(routes!(set_roles))
}

impl Rest for v1::User {
    type Shown = User;

    fn rest(self) -> User {
        User {
            id: self.id,
            tenant_id: self.tenant_id,
            email: self.email,
            display_name: self.display_name,
            roles: self.roles,
            permissions: self.permissions,
            created_at: timestamp(self.created_at),
        }
    }
}

/// The caller.
#[utoipa::path(
    get,
    path = "/api/users/me",
    tag = "users",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn me(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<axum::Json<User>, Problem> {
    let principal = &caller.principal;
    // Only a user has a profile: auth refuses an API key, and that answer is not kept.
    let cached = principal.kind == "user";
    if let Some(user) = cached
        .then(|| state.profiles.get(&principal.tenant_id, &principal.subject))
        .flatten()
    {
        return Ok(axum::Json(user));
    }
    let user: User = state
        .auth()
        .me(state.request_as(&caller, v1::MeRequest {})?)
        .await?
        .into_inner()
        .rest();
    if cached {
        state
            .profiles
            .put(&principal.tenant_id, &principal.subject, &user);
    }
    Ok(axum::Json(user))
}

/// Who the credential acts as, a user or an API key: what the gateway verified, without asking
/// auth (a user's profile is `/api/users/me`; a key has none).
#[utoipa::path(
    get,
    path = "/api/principal",
    tag = "users",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The caller's principal", body = Principal),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn principal(caller: Caller) -> axum::Json<Principal> {
    let principal = caller.principal;
    axum::Json(Principal {
        kind: principal.kind,
        id: principal.subject,
        tenant_id: principal.tenant_id,
        roles: principal.roles,
        permissions: principal.permissions,
    })
}

/// The most users remembered at once.
const PROFILES_CAPACITY: usize = 10_000;

/// What auth last said about each recent caller, for `ttl`, keyed by tenant and user id.
pub struct Profiles {
    ttl: Duration,
    entries: TtlCache<(String, String), User>,
}

impl Profiles {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: TtlCache::new(PROFILES_CAPACITY),
        }
    }

    fn get(&self, tenant: &str, user: &str) -> Option<User> {
        self.entries.get(&(tenant.to_owned(), user.to_owned()))
    }

    fn put(&self, tenant: &str, user: &str, profile: &User) {
        self.entries.insert(
            (tenant.to_owned(), user.to_owned()),
            profile.clone(),
            self.ttl,
        );
    }

    /// Drops what is remembered of a user this gateway just changed.
    fn forget(&self, tenant: &str, user: &str) {
        self.entries.remove(&(tenant.to_owned(), user.to_owned()));
    }
}

/// The users of the caller's tenant.
#[utoipa::path(
    get,
    path = "/api/users",
    tag = "users",
    params(Page),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of users", body = UserList),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing users:admin", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<axum::Json<UserList>, Problem> {
    caller.require(USERS_ADMIN)?;
    let request = v1::ListUsersRequest {
        page: Some(page_request(page)),
    };
    let response = state
        .auth()
        .list_users(state.request_as(&caller, request)?)
        .await?
        .into_inner();
    Ok(axum::Json(UserList {
        users: response.users.into_iter().map(Rest::rest).collect(),
        next_page_token: next_page(response.page),
    }))
}

/// Adds a user to the caller's tenant.
#[utoipa::path(
    post,
    path = "/api/users",
    tag = "users",
    request_body = CreateUser,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The new user", body = User),
        (status = 400, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing users:admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email is taken", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<CreateUser>,
) -> Result<(StatusCode, axum::Json<User>), Problem> {
    caller.require(USERS_ADMIN)?;
    let request = v1::CreateUserRequest {
        email: body.email,
        password: body.password,
        display_name: body.display_name,
        roles: body.roles,
    };
    let user = state
        .auth()
        .create_user(state.request_as(&caller, request)?)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(user.into_inner().rest())))
}

/// One user of the caller's tenant.
#[utoipa::path(
    get,
    path = "/api/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 403, description = "Missing users:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<User>, Problem> {
    caller.require(USERS_ADMIN)?;
    let user = state
        .auth()
        .get_user(state.request_as(&caller, v1::GetUserRequest { id })?)
        .await?;
    Ok(axum::Json(user.into_inner().rest()))
}

/// Removes a user from the caller's tenant.
#[utoipa::path(
    delete,
    path = "/api/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "The user is deleted"),
        (status = 403, description = "Missing users:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(USERS_ADMIN)?;
    state
        .auth()
        .delete_user(state.request_as(&caller, v1::DeleteUserRequest { id: id.clone() })?)
        .await?;
    state.profiles.forget(&caller.principal.tenant_id, &id);
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a user's roles.
#[utoipa::path(
    put,
    path = "/api/users/{id}/roles",
    tag = "users",
    params(("id" = String, Path, description = "The user id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    request_body = SetRoles,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The user with its new roles", body = User),
        (status = 400, description = "Unknown role", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing users:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn set_roles(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<SetRoles>,
) -> Result<axum::Json<User>, Problem> {
    caller.require(USERS_ADMIN)?;
    let request = v1::SetUserRolesRequest {
        id: id.clone(),
        roles: body.roles,
    };
    let user = state
        .auth()
        .set_user_roles(state.request_as(&caller, request)?)
        .await?;
    state.profiles.forget(&caller.principal.tenant_id, &id);
    Ok(axum::Json(user.into_inner().rest()))
}
