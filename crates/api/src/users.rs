//! Users: the caller (`/api/users/me`; `/api/principal`, which an API key has too) and the
//! administration of a tenant's users.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::{ObjectBuilder, Type};

/// The schema of an email field as auth accepts it, shared by every request that carries one.
pub fn email_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "An email address (at most 254 bytes), trimmed and lower-cased.",
        ))
        .max_length(Some(254))
        .pattern(Some(
            r"^\s*[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@\x00-\x1f\x7f-\x9f]*\.[^\s@\x00-\x1f\x7f-\x9f]*\s*$",
        ))
}

/// The schema of a password field as auth accepts it.
pub fn password_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("8 to 128 characters."))
        .min_length(Some(8))
        .max_length(Some(128))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub display_name: String,
    /// admin, developer, viewer.
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
}

/// Who a credential acts as, as the gateway verified it: a user (a login's access token) or an
/// API key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Principal {
    /// `user` or `api_key`.
    pub kind: String,
    /// The user's id, or the API key's.
    pub id: String,
    pub tenant_id: String,
    /// A user's roles; none for an API key.
    pub roles: Vec<String>,
    /// What it may do; a key's are those of its own its creator still holds.
    pub permissions: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub users: Vec<User>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"email": "grace@example.com", "password": "correct horse battery staple", "display_name": "Grace", "roles": ["developer"]}))]
pub struct CreateUser {
    #[schema(schema_with = crate::users::email_schema)]
    pub email: String,
    #[schema(schema_with = crate::users::password_schema)]
    pub password: String,
    /// At most 100 characters once trimmed; the email's local part when absent or blank.
    #[serde(default)]
    #[schema(max_length = 100, pattern = r"^[^\u0000]*$")]
    pub display_name: String,
    /// The user's roles; `developer` when absent or empty.
    #[serde(default)]
    #[schema(value_type = Vec<Role>)]
    pub roles: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"roles": ["viewer"]}))]
pub struct SetRoles {
    /// At least one; each once (repeats are ignored).
    #[schema(value_type = Vec<Role>, min_items = 1)]
    pub roles: Vec<String>,
}

/// A role, as auth names it. Requests carry roles as text, for auth to check and name the
/// field of one it does not know; this is their schema.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Developer,
    Viewer,
}
