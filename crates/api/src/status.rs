//! The fleet's health (`/api/status`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// `ok` when every service serves, `degraded` otherwise.
    pub status: String,
    pub version: String,
    pub uptime_seconds: u64,
    pub services: Vec<ServiceHealth>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceHealth {
    pub name: String,
    /// `serving`, `not_serving`, `unknown` or `unreachable`.
    pub status: String,
}
