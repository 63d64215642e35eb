//! The REST API of Sankalpa as Rust types: every request body, query and response the gateway
//! serves on the routes moved here, and the problem document of its errors. The gateway serves
//! these very types (their utoipa schemas make its OpenAPI document), and [`client`] sends and
//! reads them, so a shape is written once for the server, the CLI and the tests.
//!
//! The gateway converts the services' wire (gRPC) messages into these types itself: this crate
//! knows nothing of the wire, which keeps it light for clients.

pub mod agents;
pub mod chain_definition;
pub mod chains;
pub mod chat;
pub mod client;
pub mod events;
pub mod inbound;
pub mod json;
pub mod keys;
pub mod marketplace;
pub mod memory;
pub mod models;
pub mod nlp;
pub mod paging;
pub mod problem;
pub mod schedules;
pub mod sessions;
pub mod status;
pub mod tenants;
pub mod users;
pub mod webhooks;

pub use problem::{FieldViolation, Problem};
