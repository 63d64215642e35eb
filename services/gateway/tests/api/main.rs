//! The gateway's REST API, exercised end to end: a real auth service (and memory, for its
//! routes) and a real gateway on free ports, each test with its own database and Redis keys.
//! One binary, to link once.

mod access;
mod docs;
mod helpers;
mod limits;
mod memory;
mod sessions;
mod tokens;
