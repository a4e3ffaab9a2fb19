//! remapctl: the dm-remap host tool.
//!
//! Subcommands live in their own modules; this file only wires them to clap. The
//! development tools (trace generators, evaluation) are a binary of their own,
//! `remap-lab`.

mod actions;
mod admin;
mod assemble;
mod boot;
mod dashboard;
mod dm;
mod http;
mod import;
mod meta;
mod metrics;
mod monitor;
mod plot;
mod policy;
mod predict;
mod status;

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
    /// Create a dm-remap target over a main device and a spare, after checking both.
    Create(admin::CreateArgs),
    /// Remove a dm-remap target (its metadata stays on the spare).
    Remove {
        /// Name of the device-mapper device.
        name: String,
    },
    /// Add a blank spare to a live target's pool (a table reload; I/O waits during the
    /// swap).
    SpareAdd(admin::SpareAddArgs),
    /// Take a spare out of a live target's pool: its blocks move to the other spares
    /// (I/O goes on), the table is reloaded without it, its metadata zeroed.
    SpareRemove(admin::SpareRemoveArgs),
    /// Show the figures of one dm-remap target, or of every one.
    Status(admin::StatusArgs),
    /// List the dm-remap targets, one line each.
    List(admin::ListArgs),
    /// Wait on device-mapper events and report every dm-remap target's changes (log,
    /// alert hook program).
    Monitor(monitor::MonitorArgs),
    /// Print every dm-remap target's figures in the Prometheus text format.
    Metrics(metrics::MetricsArgs),
    /// Find dm-remap setups on the disks (spares by their metadata, main devices by
    /// their recorded fingerprint) and create their targets.
    Assemble(assemble::AssembleArgs),
    /// Say whether a block device holds a dm-remap setup's metadata (for udev:
    /// `--export`).
    Probe(boot::ProbeArgs),
    /// Remap the blocks a `badblocks -o` list or a ddrescue mapfile names, on a live
    /// target, before anything writes them (unreadable sectors recorded lost).
    ImportBadblocks(import::ImportArgs),
    /// Inspect, back up, restore, check and repair a spare's metadata.
    #[command(subcommand)]
    Meta(meta::MetaCmd),
    /// Run the failure-prediction engine over recorded traces.
    Predict(predict::PredictArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Create(a) => admin::create(a),
        Cmd::Remove { name } => admin::remove(&name),
        Cmd::SpareAdd(a) => admin::spare_add(a),
        Cmd::SpareRemove(a) => admin::spare_remove(a),
        Cmd::Status(a) => admin::status(a),
        Cmd::List(a) => admin::list(a),
        Cmd::ImportBadblocks(a) => import::run(a),
        Cmd::Assemble(a) => assemble::run(a),
        Cmd::Probe(a) => boot::probe(a),
        Cmd::Metrics(a) => metrics::run(a),
        Cmd::Monitor(a) => monitor::run(a),
        Cmd::Meta(c) => meta::run(c),
        Cmd::Predict(a) => predict::run(a),
    }
}
