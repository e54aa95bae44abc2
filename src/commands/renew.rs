//! `renew`: replace the tokens the run wrote before they expire.

use std::sync::Arc;

use super::{client, load};
use crate::cli::Cli;
use crate::error::{Error, exit};
use crate::output::Reporter;

pub(super) fn renew(cli: &Cli, report: &Arc<Reporter>, dry_run: bool) -> Result<u8, Error> {
    crate::stop::install();
    let cfg = load(cli)?;
    let client = client(&cfg, report)?;
    let dir = cfg.state_dir.display().to_string();
    super::started(report, &cfg, "renew");
    if !crate::machine::renew(&cfg, client, report, dry_run)? {
        report.print(&format!(
            "no state in {dir}: `tfe-bootstrap run` has written no token yet, so there is nothing to renew"
        ));
    }
    Ok(exit::OK)
}
