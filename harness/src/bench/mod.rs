//! The benchmarks behind `overbook bench`: each prints figures measured side by side in
//! one run (never a timed assertion; the machines are shared and noisy).
//!
//! - [`check`]: `bench check`, the checkers' speed and memory on a synthetic history.
//! - [`proxy`]: `bench proxy`, what the fault proxy costs with no fault.
//! - [`run`]: `bench run` (harness vs pgbench) and `bench detect` (detection power).
//! - [`backends`]: `bench backends`, servers' start-to-ready, local vs docker.
//! - [`service`]: `bench service`, overbook's HTTP driver vs wrk on the same service.
//! - [`options`]: the benchmarks' flags.
//! - [`reproduce`]: `bench reproduce`, how often a failing run's command fails again.

pub mod backends;
pub mod check;
pub mod options;
pub mod proxy;
pub mod reproduce;
pub mod run;
pub mod service;
