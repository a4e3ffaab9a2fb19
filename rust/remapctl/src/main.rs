//! remapctl: the dm-remap host tool.
//!
//! Subcommands live in their own modules; this file only wires them to clap. The
//! development tools (trace generators, evaluation) are a binary of their own,
//! `remap-lab`.

mod meta;
mod plot;
mod predict;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Meta(c) => meta::run(c),
        Cmd::Predict(a) => predict::run(a),
    }
}
