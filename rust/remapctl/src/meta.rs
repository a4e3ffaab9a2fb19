//! `remapctl meta`: dump, restore, check and repair of on-disk metadata.

use clap::Subcommand;
use std::process::ExitCode;

/// `remapctl meta` subcommands.
#[derive(Subcommand)]
pub enum MetaCmd {
    /// Print the newest valid metadata as JSON.
    Dump {
        /// Spare device or image file.
        path: std::path::PathBuf,
    },
}

/// Runs a `meta` subcommand.
pub fn run(cmd: MetaCmd) -> ExitCode {
    match cmd {
        MetaCmd::Dump { path } => {
            eprintln!(
                "remapctl meta dump {}: not available in this build",
                path.display()
            );
            ExitCode::from(2)
        }
    }
}
