//! The gateway's REST API, exercised end to end: a real auth service and a real gateway on free
//! ports, each test with its own database and Redis keys. One binary, to link once.

mod access;
mod docs;
mod helpers;
mod limits;
mod sessions;
mod tokens;
