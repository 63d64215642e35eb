//! The kit every Sankalpa service is built from.
//!
//! A backend service stands on [`service::Skeleton`] (migrations, token keys, listeners,
//! serving and draining in one order).
//!
//! A service's `main.rs` reads its config ([`config`]), starts telemetry ([`telemetry`]), and
//! serves its gRPC API through [`grpc`] and its health/metrics endpoints through [`ops`]. Callers
//! are identified by [`auth`], errors cross the REST/gRPC boundary through [`problem`], events
//! are checked against JSON Schemas by [`schema`] (agents' inputs and outputs, chain inputs), events
//! go out through [`events`] (committed together with the change they announce through
//! [`outbox`]), and every server stops on [`shutdown::signal`].

pub mod auth;
pub mod backoff;
pub mod bounded_json;
pub mod cache;
pub mod config;
pub mod egress;
pub mod events;
pub mod exposition;
pub mod group_commit;
pub mod grpc;
pub mod limits;
pub mod metrics;
pub mod metrics_export;
pub mod nats;
pub mod objects;
pub mod ops;
pub mod outbox;
pub mod paging;
pub mod postgres;
pub mod problem;
pub mod schema;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod ttl_cache;

/// Every binary built on the kit allocates with mimalloc: request handling makes many short-lived
/// allocations across threads, where glibc's malloc spent a sixth of the gateway's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
