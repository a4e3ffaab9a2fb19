//! `remapctl predict`: the prediction engine over recorded traces.

use clap::Args;
use std::process::ExitCode;

/// Arguments of `remapctl predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// Trace CSV file or directory of them.
    #[arg(long)]
    pub trace: std::path::PathBuf,
}

/// Runs `predict`.
pub fn run(a: PredictArgs) -> ExitCode {
    eprintln!(
        "remapctl predict {}: not available in this build",
        a.trace.display()
    );
    ExitCode::from(2)
}
