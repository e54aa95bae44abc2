//! `tfe-bootstrap`: parse the command line, run the command, exit with the
//! contract's code.

use std::process::ExitCode;

use clap::Parser;
use tfe_bootstrap::cli::Cli;

fn main() -> ExitCode {
    ExitCode::from(tfe_bootstrap::commands::main(Cli::parse()))
}
