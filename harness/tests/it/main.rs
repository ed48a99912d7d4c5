//! The harness's integration tests, one binary with a module per area (so the workspace
//! links the harness once). Each test starts its own real Redis and Postgres servers (or
//! containers, or the `overbook` binary) on free ports; none is shared between tests.

mod support;

mod access;
mod aimed;
mod api;
mod check;
mod ci;
mod cleanup;
mod conditions;
mod designs;
mod docker;
mod external;
mod interrupt;
mod layering;
mod leftovers;
mod locks;
mod matrix;
mod nightly;
mod nodes;
mod proxy;
mod refusals;
mod report;
mod run;
mod security;
mod service;
mod shards;
mod store;
mod verdict;
