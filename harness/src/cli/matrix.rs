//! `overbook matrix`: the run options every cell shares, parsed here into a [`RunSpec`];
//! the matrix itself is in [`crate::matrix`].

use std::process::ExitCode;

use crate::cli::run::spec_from_words;
use crate::cli::MatrixArgs;
use crate::run::spec::{BackendKind, RunSpec};

/// The run every cell starts from: the options after `--`, the matrix's service, time
/// limit and store, quiet (each cell's output goes to its log).
pub fn base_spec(args: &MatrixArgs) -> anyhow::Result<RunSpec> {
    let spec = spec_from_words(&args.run_args).map_err(|e| {
        anyhow::anyhow!(
            "the run options after `--` ({}) are not valid for `overbook run`: {e}",
            args.run_args.join(" ")
        )
    })?;
    Ok(RunSpec {
        service: args.service.spec()?,
        guard: args.service.guard.or(spec.guard),
        time_limit: args.options.time_limit,
        store: args.options.store.clone(),
        progress: false,
        ..spec
    })
}

/// Runs `overbook matrix`.
pub fn run(args: &MatrixArgs) -> anyhow::Result<ExitCode> {
    let base = base_spec(args)?;
    if base.backend == BackendKind::Auto {
        // Once for the whole matrix: every cell resolves the backend the same way.
        crate::cli::run::say_fallback(base.backend, &base.resolve_backend()?);
    }
    crate::matrix::run(&args.options, &args.run_args, &base)
}
