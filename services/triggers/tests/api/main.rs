//! The triggers service against the real fleet (testkit), delivering to receivers each test
//! runs on the loopback, and firing schedules' ticks through the orchestrator.

mod crash;
mod delivery;
mod disable;
mod guard;
mod helpers;
mod inbound;
mod rotation;
mod schedules;
mod tenants;
