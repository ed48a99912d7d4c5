//! `overbook api check FILE --service CMD`: how a user writes a mapping. The service is
//! started once against fresh local servers, with no fault, and one booking goes
//! through every call of the mapping (see [`crate::sut::service::api::probe`]).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::cli::ApiCheckArgs;
use crate::nodes::tempdir::Scratch;
use crate::nodes::{Backend, Cluster, NodeOptions};
use crate::sut::service::{api::probe, ApiSpec, ServiceSpec, ServiceSystem};
use crate::sut::System;

/// Runs `overbook api check`.
pub fn check(args: &ApiCheckArgs) -> anyhow::Result<ExitCode> {
    // A bad mapping is exit 2 before anything starts.
    let api = ApiSpec::load(&args.file).map_err(anyhow::Error::msg)?;
    if args.service.trim().is_empty() {
        bail!("--service: the command is empty");
    }
    if args.service_ready_timeout.is_zero() {
        bail!("--service-ready-timeout must be positive");
    }
    let spec = ServiceSpec {
        api: Some(api),
        dir: args.service_dir.clone(),
        ready_timeout: args.service_ready_timeout,
        ..ServiceSpec::new(args.service.clone())
    };
    let scratch = Scratch::new("api-check").context("a directory for the servers' logs")?;
    // One thread: servers are spawned from it, and their parent-death signal is tied to
    // the spawning thread, which must live as long as they do.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async {
        let cluster = Arc::new(
            Cluster::start(&Backend::Local, &NodeOptions::new(scratch.path()))
                .await
                .context("starting Redis and Postgres")?,
        );
        let result = check_on(&spec, &cluster, &scratch).await;
        let _ = cluster.shutdown().await;
        result
    })
}

async fn check_on(
    spec: &ServiceSpec,
    cluster: &Arc<Cluster>,
    scratch: &Scratch,
) -> anyhow::Result<ExitCode> {
    let system = ServiceSystem::new(
        spec,
        cluster,
        scratch.path(),
        workloads::RunClock::start(),
        Duration::from_millis(500),
        Duration::from_secs(10),
        false,
    )?;
    system.setup().await?;
    let replicas = system.replicas().context("the service's replicas")?;
    let mapping = &spec.api.as_ref().context("a mapping")?.mapping;
    let mut out = std::io::stdout();
    let verdict = probe::check_steps(mapping, replicas.addr(0), &mut out).await;
    system.shutdown().await;
    match verdict {
        Ok(()) => {
            println!(
                "mapping OK: book, read, cancel and read recorded what a correct service would"
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(step) => {
            println!("mapping NOT OK: {}", checkers::text::for_terminal(&step));
            Ok(ExitCode::from(1))
        }
    }
}
