//! The harness's integration tests, one binary with a module per area (so the workspace
//! links the harness once). Each test starts its own real Redis and Postgres servers (or
//! containers, or the `overbook` binary) on free ports; none is shared between tests.

#[path = "../../../reports/tests/fixture/mod.rs"]
mod fixture;

mod aimed;
mod api;
mod cleanup;
mod designs;
mod docker;
mod locks;
mod matrix;
mod nightly;
mod nodes;
mod proxy;
mod report;
mod run;
mod security;
mod service;
mod verdict;
mod verdicts;
