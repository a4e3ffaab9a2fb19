//! remapctl: the dm-remap host tool.
//!
//! Subcommands live in their own modules; this file only wires them to clap.

mod crosseval;
mod evaluate;
mod meta;
mod plot;
mod predict;
mod tracegen;
mod tracegen_b;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// dm-remap host tool.
#[derive(Parser)]
#[command(name = "remapctl", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Inspect, back up, restore, check and repair a spare's metadata.
    #[command(subcommand)]
    Meta(meta::MetaCmd),
    /// Run the failure-prediction engine over recorded traces.
    Predict(predict::PredictArgs),
    /// Generate synthetic device traces with known outcomes.
    Tracegen(tracegen::TracegenArgs),
    /// Measure the prediction engine against baselines on a generated fleet.
    Evaluate(evaluate::EvaluateArgs),
    /// Tune the engine's knobs on one trace family, report on the other (both ways).
    Crosseval(crosseval::CrossevalArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Meta(c) => meta::run(c),
        Cmd::Predict(a) => predict::run(a),
        Cmd::Tracegen(a) => tracegen::run(a),
        Cmd::Evaluate(a) => evaluate::run(a),
        Cmd::Crosseval(a) => crosseval::run(a),
    }
}
