//! Signing up, in and out: registration, login, token refresh (`/api/users/...`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::tenants::Tenant;
use crate::users::User;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery staple", "display_name": "Ada", "tenant_name": "Analytical Engines"}))]
pub struct Register {
    #[schema(schema_with = crate::users::email_schema)]
    pub email: String,
    #[schema(schema_with = crate::users::password_schema)]
    pub password: String,
    /// At most 100 characters once trimmed; the email's local part when absent or blank.
    #[serde(default)]
    #[schema(max_length = 100, pattern = r"^[^\u0000]*$")]
    pub display_name: String,
    /// The new tenant's name, at most 100 characters once trimmed; the email's local part when
    /// absent or blank.
    #[serde(default)]
    #[schema(max_length = 100, pattern = r"^[^\u0000]*$")]
    pub tenant_name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Registered {
    pub user: Option<User>,
    pub tenant: Option<Tenant>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery staple"}))]
pub struct Login {
    #[schema(schema_with = crate::users::email_schema)]
    pub email: String,
    #[schema(schema_with = crate::users::password_schema)]
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Trade it at `/api/users/refresh` for a new pair; it works once.
    pub refresh_token: String,
    pub user: Option<User>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"refresh_token": "rt_4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99"}))]
pub struct RefreshToken {
    pub refresh_token: String,
}
