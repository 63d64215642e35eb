//! The gateway's REST API, exercised end to end: a real auth service (and memory, agent-runner,
//! the chain orchestrator and the marketplace, for their routes) and a real gateway on free
//! ports, each test with its own database, Redis keys and event stream.
//! One binary, to link once.

mod access;
mod agents;
mod chain_definitions;
mod chain_settings;
mod chains;
mod chat;
mod console;
mod console_files;
mod dashboard;
mod docs;
mod events;
mod helpers;
mod limits;
mod marketplace;
mod memory;
mod metrics;
mod models;
mod nlp;
mod revocation;
mod sessions;
mod tenancy;
mod tokens;
mod upstream;
