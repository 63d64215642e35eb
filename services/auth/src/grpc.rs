//! `sankalpa.v1.AuthService`: turns wire messages into calls on the domain modules and their
//! results back into wire messages. Permission checks happen here, before any work.

use sankalpa_kit::grpc::timestamp;
use std::sync::Arc;

use chrono::Utc;
use sankalpa_kit::auth::{self as kit_auth, permission_grants};
use sankalpa_kit::paging;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::auth_service_server::AuthService;
use tonic::{Request, Response, Status};

use crate::error::AuthError;
use crate::{
    State, accounts, api_keys, audit, input, revocations, roles, sessions, tenants, users,
};

pub struct AuthApi {
    state: Arc<State>,
}

impl AuthApi {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

fn user_message(user: users::User) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        tenant_id: user.tenant_id.to_string(),
        email: user.email,
        display_name: user.display_name,
        roles: user.roles,
        permissions: user.permissions,
        created_at: Some(timestamp(user.created_at)),
    }
}

fn tenant_message(tenant: tenants::Tenant) -> pb::Tenant {
    pb::Tenant {
        id: tenant.id.to_string(),
        name: tenant.name,
        created_at: Some(timestamp(tenant.created_at)),
    }
}

fn key_message(key: api_keys::ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: key.id.to_string(),
        tenant_id: key.tenant_id.to_string(),
        name: key.name,
        prefix: key.prefix,
        permissions: key.permissions,
        created_at: Some(timestamp(key.created_at)),
        expires_at: key.expires_at.map(timestamp),
        revoked_at: key.revoked_at.map(timestamp),
        purpose: match api_keys::Purpose::named(&key.purpose) {
            api_keys::Purpose::Tool => pb::ApiKeyPurpose::Tool,
            api_keys::Purpose::ChainRun => pb::ApiKeyPurpose::ChainRun,
            api_keys::Purpose::Schedule => pb::ApiKeyPurpose::Schedule,
        }
        .into(),
        created_by: key.created_by,
    }
}

fn token_pair(issued: sessions::Issued) -> pb::TokenPair {
    pb::TokenPair {
        access_token: issued.access_token,
        token_type: "Bearer".to_owned(),
        expires_in: issued.expires_in,
        refresh_token: issued.refresh_token,
        user: Some(user_message(issued.user)),
        refresh_expires_in: issued.refresh_expires_in,
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Reply<pb::RegisterResponse> {
        let message = request.into_inner();
        let (user, tenant) = accounts::register(
            &self.state,
            accounts::Registration {
                email: &message.email,
                password: &message.password,
                display_name: &message.display_name,
                tenant_name: &message.tenant_name,
            },
        )
        .await?;
        Ok(Response::new(pb::RegisterResponse {
            user: Some(user_message(user)),
            tenant: Some(tenant_message(tenant)),
        }))
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Reply<pb::TokenPair> {
        let message = request.into_inner();
        let issued = accounts::login(&self.state, &message.email, &message.password).await?;
        Ok(Response::new(token_pair(issued)))
    }

    async fn refresh(&self, request: Request<pb::RefreshRequest>) -> Reply<pb::TokenPair> {
        let issued = sessions::refresh(&self.state, &request.into_inner().refresh_token).await?;
        Ok(Response::new(token_pair(issued)))
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Reply<pb::LogoutResponse> {
        let message = request.into_inner();
        if message.everywhere {
            sessions::logout_everywhere(&self.state, &message.refresh_token).await?;
        } else {
            sessions::logout(&self.state, &message.refresh_token).await?;
        }
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn exchange_api_key(
        &self,
        request: Request<pb::ExchangeApiKeyRequest>,
    ) -> Reply<pb::AccessToken> {
        let (access_token, expires_in) =
            api_keys::exchange(&self.state, &request.into_inner().api_key).await?;
        Ok(Response::new(pb::AccessToken {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in,
        }))
    }

    async fn get_jwks(&self, _request: Request<pb::GetJwksRequest>) -> Reply<pb::Jwks> {
        Ok(Response::new(pb::Jwks {
            jwks_json: self.state.signer.jwks_json().to_owned(),
        }))
    }

    async fn list_revocations(
        &self,
        _request: Request<pb::ListRevocationsRequest>,
    ) -> Reply<pb::ListRevocationsResponse> {
        Ok(Response::new(pb::ListRevocationsResponse {
            revocations: revocations::in_force(&self.state.pool).await?,
        }))
    }

    async fn me(&self, request: Request<pb::MeRequest>) -> Reply<pb::User> {
        let caller = kit_auth::principal(&request)?;
        if caller.kind != "user" {
            return Err(Status::failed_precondition("an API key is not a user"));
        }
        let id = input::id("sub", &caller.subject)?;
        let user = users::get(&self.state.pool, caller.tenant()?, id).await?;
        Ok(Response::new(user_message(user)))
    }

    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Reply<pb::User> {
        let caller = kit_auth::authorize(&request, "users:admin")?;
        let tenant = caller.tenant()?;
        let message = request.get_ref();
        let user = accounts::create_user(
            &self.state,
            tenant,
            &caller.subject,
            accounts::NewMember {
                email: &message.email,
                password: &message.password,
                display_name: &message.display_name,
                roles: &message.roles,
            },
        )
        .await?;
        Ok(Response::new(user_message(user)))
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Reply<pb::User> {
        let caller = kit_auth::authorize(&request, "users:admin")?;
        let id = input::id("id", &request.get_ref().id)?;
        let user = users::get(&self.state.pool, caller.tenant()?, id).await?;
        Ok(Response::new(user_message(user)))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Reply<pb::ListUsersResponse> {
        let caller = kit_auth::authorize(&request, "users:admin")?;
        let (size, after) = paging::after_id(request.get_ref().page.as_ref())?;
        let mut rows = users::list(&self.state.pool, caller.tenant()?, size, after).await?;
        let next_page_token = paging::next_token(&mut rows, size, |user| user.id.to_string());
        Ok(Response::new(pb::ListUsersResponse {
            users: rows.into_iter().map(user_message).collect(),
            page: paging::response(next_page_token),
        }))
    }

    async fn set_user_roles(&self, request: Request<pb::SetUserRolesRequest>) -> Reply<pb::User> {
        let caller = kit_auth::authorize(&request, "users:admin")?;
        let message = request.get_ref();
        let id = input::id("id", &message.id)?;
        let user = accounts::set_roles(
            &self.state,
            caller.tenant()?,
            &caller.subject,
            id,
            &message.roles,
        )
        .await?;
        Ok(Response::new(user_message(user)))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Reply<pb::DeleteUserResponse> {
        let caller = kit_auth::authorize(&request, "users:admin")?;
        let id = input::id("id", &request.get_ref().id)?;
        accounts::delete_user(&self.state, caller.tenant()?, &caller.subject, id).await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Reply<pb::CreateApiKeyResponse> {
        let caller = kit_auth::principal(&request)?;
        let tenant = caller.tenant()?;
        let message = request.get_ref();
        let purpose = match message.purpose() {
            pb::ApiKeyPurpose::Tool => api_keys::Purpose::Tool,
            pb::ApiKeyPurpose::ChainRun => api_keys::Purpose::ChainRun,
            pb::ApiKeyPurpose::Schedule => api_keys::Purpose::Schedule,
        };
        // A key that could mint keys would outlive its own revocation and expiry; a chain run's
        // key made by a key ends with that key, and lives no longer.
        let mut latest_expiry = None;
        match (purpose, caller.kind.as_str()) {
            (api_keys::Purpose::Tool, "user") => caller.require("keys:admin")?,
            (api_keys::Purpose::Tool, _) => {
                return Err(Status::permission_denied(
                    "an API key cannot create API keys",
                ));
            }
            (api_keys::Purpose::ChainRun | api_keys::Purpose::Schedule, "user") => {}
            (api_keys::Purpose::ChainRun | api_keys::Purpose::Schedule, _) => {
                let maker =
                    api_keys::maker_key(&self.state, tenant, &caller.subject, purpose).await?;
                latest_expiry = maker.expires_at;
            }
        }
        let name = input::name("name", &message.name)?;
        let permissions = if message.permissions.is_empty() {
            caller.permissions.clone()
        } else {
            roles::validate_permissions(&message.permissions)?
        };
        // A key never holds more than the person who made it.
        if let Some(excess) = permissions.iter().find(|wanted| {
            !caller
                .permissions
                .iter()
                .any(|granted| granted == *wanted || permission_grants(granted, wanted))
        }) {
            return Err(AuthError::Forbidden(excess.clone()).into());
        }
        let max_ttl = self.state.api_key_max_ttl.as_secs();
        let lifetime = match message.expires_in_seconds {
            0 => max_ttl,
            seconds if seconds > max_ttl => {
                return Err(AuthError::invalid(
                    "expires_in_seconds",
                    format!("must be at most {max_ttl} (a key lives at most that long)"),
                )
                .into());
            }
            seconds => seconds,
        };
        let mut expires_at =
            Utc::now() + chrono::Duration::seconds(i64::try_from(lifetime).unwrap_or(i64::MAX));
        if let Some(latest) = latest_expiry {
            expires_at = expires_at.min(latest);
        }
        let (key, secret) = api_keys::create(
            &self.state,
            api_keys::NewKey {
                tenant_id: tenant,
                name: &name,
                permissions: &permissions,
                expires_at,
                created_by: &caller.subject,
                purpose,
            },
        )
        .await?;
        Ok(Response::new(pb::CreateApiKeyResponse {
            key: Some(key_message(key)),
            secret,
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Reply<pb::ListApiKeysResponse> {
        let caller = kit_auth::authorize(&request, "keys:admin")?;
        let (size, before) = paging::after_id(request.get_ref().page.as_ref())?;
        let mut rows = api_keys::list(&self.state, caller.tenant()?, size, before).await?;
        let next_page_token = paging::next_token(&mut rows, size, |key| key.id.to_string());
        Ok(Response::new(pb::ListApiKeysResponse {
            keys: rows.into_iter().map(key_message).collect(),
            page: paging::response(next_page_token),
        }))
    }

    async fn revoke_api_key(&self, request: Request<pb::RevokeApiKeyRequest>) -> Reply<pb::ApiKey> {
        let caller = kit_auth::principal(&request)?;
        let id = input::id("id", &request.get_ref().id)?;
        // A key may always revoke itself: a chain runs' key does once no run needs it, and holds
        // nothing like keys:admin. Any other key takes keys:admin.
        if !(caller.kind == "api_key" && caller.subject == id.to_string()) {
            caller.require("keys:admin")?;
        }
        let key = api_keys::revoke(&self.state, caller.tenant()?, id, &caller.subject).await?;
        Ok(Response::new(key_message(key)))
    }

    async fn create_tenant(&self, request: Request<pb::CreateTenantRequest>) -> Reply<pb::Tenant> {
        let caller = kit_auth::authorize(&request, "tenants:admin")?;
        let tenant =
            accounts::create_tenant(&self.state, &caller.subject, &request.get_ref().name).await?;
        Ok(Response::new(tenant_message(tenant)))
    }

    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Reply<pb::ListTenantsResponse> {
        kit_auth::authorize(&request, "tenants:admin")?;
        let (size, after) = paging::after_id(request.get_ref().page.as_ref())?;
        let mut rows = tenants::list(&self.state.pool, size, after).await?;
        let next_page_token = paging::next_token(&mut rows, size, |tenant| tenant.id.to_string());
        Ok(Response::new(pb::ListTenantsResponse {
            tenants: rows.into_iter().map(tenant_message).collect(),
            page: paging::response(next_page_token),
        }))
    }

    async fn get_tenant(&self, request: Request<pb::GetTenantRequest>) -> Reply<pb::Tenant> {
        let caller = kit_auth::principal(&request)?;
        let id = input::id("id", &request.get_ref().id)?;
        // Members may read their own tenant; another tenant is "not found" unless the caller
        // administers tenants.
        if caller.tenant_id != id.to_string() && !caller.can("tenants:admin") {
            return Err(AuthError::NotFound("tenant").into());
        }
        let tenant = tenants::get(&self.state.pool, id).await?;
        Ok(Response::new(tenant_message(tenant)))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Reply<pb::ListAuditEventsResponse> {
        let caller = kit_auth::authorize(&request, "users:admin")?;
        let (size, before) = paging::after_id(request.get_ref().page.as_ref())?;
        let mut rows = audit::list(&self.state.pool, caller.tenant()?, size, before).await?;
        let next_page_token = paging::next_token(&mut rows, size, |event| event.id.to_string());
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: rows
                .into_iter()
                .map(|event| pb::AuditEvent {
                    id: event.id.to_string(),
                    tenant_id: event.tenant_id.map(|id| id.to_string()).unwrap_or_default(),
                    actor: event.actor,
                    action: event.action,
                    target: event.target,
                    details_json: event.details.to_string(),
                    at: Some(timestamp(event.at)),
                })
                .collect(),
            page: paging::response(next_page_token),
        }))
    }
}
