//! `renew`: replace the tokens the run wrote before they expire, in the
//! same session as `run` ([`crate::session`]): under the state lock, every
//! token the state records whose renewal is due, one line per token.

use std::sync::Arc;
use std::time::Instant;

use super::{client, load};
use crate::cli::Cli;
use crate::error::{Error, exit};
use crate::output::Reporter;
use crate::session::{Session, Tally};
use crate::step::Outcome;

pub(super) fn renew(cli: &Cli, report: &Arc<Reporter>, dry_run: bool) -> Result<u8, Error> {
    crate::stop::install();
    let cfg = load(cli)?;
    let client = client(&cfg, report)?;
    let dir = cfg.state_dir.display().to_string();
    super::started(report, &cfg, "renew");
    let Some((session, state)) = Session::open(&cfg, false)? else {
        report.print(&format!(
            "no state in {dir}: `tfe-bootstrap run` has written no token yet, so there is nothing to renew"
        ));
        return Ok(exit::OK);
    };
    let result = renew_in(&cfg, &session, state, client, report, dry_run);
    if !dry_run {
        super::metrics::record(report, &cfg, "renew", result.is_ok());
    }
    result
}

/// The renewal in an open session, reported through one [`Tally`].
fn renew_in(
    cfg: &crate::config::Config,
    session: &Session,
    state: crate::state::State,
    client: crate::tfe::Client,
    report: &Reporter,
    dry_run: bool,
) -> Result<u8, Error> {
    let mut ctx = session.ctx(cfg, client, state, report);
    let started = Instant::now();
    let mut tally = Tally::default();
    match crate::tokens::renew::renew(&mut ctx, dry_run) {
        Ok(done) => {
            for r in done {
                let o = r.applied.outcome;
                tally.step(report, r.step, o, started.elapsed(), &r.applied.detail);
            }
            tally.finish(report, None, ctx.state.facts.tfe_version.as_deref());
            Ok(exit::OK)
        }
        Err(e) => {
            if let Error::Step { step, message, .. } = &e {
                tally.step(report, *step, Outcome::Failed, started.elapsed(), message);
            }
            Err(tally.ended(report, &ctx, e))
        }
    }
}
