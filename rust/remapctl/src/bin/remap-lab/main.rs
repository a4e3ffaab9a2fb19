//! remap-lab: development tools for the prediction engine, apart from the admin CLI.
//!
//! `remap-lab tracegen` writes generated fleets of device traces with known outcomes
//! (two independent families), `remap-lab evaluate` measures the engine against
//! baselines on a fleet, and `remap-lab crosseval` tunes the engine's knobs on one
//! family and reports on the other. Documentation/prediction.md gives the figures.

mod crosseval;
mod evaluate;
mod tracegen;
mod tracegen_b;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Development tools for the dm-remap prediction engine.
#[derive(Parser)]
#[command(name = "remap-lab", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate synthetic device traces with known outcomes.
    Tracegen(tracegen::TracegenArgs),
    /// Measure the prediction engine against baselines on a generated fleet.
    Evaluate(evaluate::EvaluateArgs),
    /// Tune the engine's knobs on one trace family, report on the other (both ways).
    Crosseval(crosseval::CrossevalArgs),
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Tracegen(a) => tracegen::run(a),
        Cmd::Evaluate(a) => evaluate::run(a),
        Cmd::Crosseval(a) => crosseval::run(a),
    }
}
