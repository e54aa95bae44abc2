//! `iact`: obtain the Initial Admin Creation Token, in memory only.
//!
//! The sources are in `steps/iact_source.rs`. With `[store]`, only the
//! node that takes the duty to create the admin obtains it: the duty is
//! taken here, without waiting, and held by this node's store handle until
//! the `admin` step finishes it.

use serde_json::json;

use super::iact_source::obtain;
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applies, Ctx, Desired, Done, Schedule, Step, StepName};

pub const NAME: StepName = crate::step_name::IACT;

pub struct Iact;

impl Step for Iact {
    fn name(&self) -> StepName {
        NAME
    }
    /// `[iact] token` only when it is the one source: with `source =
    /// "auto"`, an absent token falls through to the next source.
    fn secret_keys(&self, cfg: &Config) -> Vec<&'static str> {
        match cfg.iact.source {
            crate::config::IactSource::Token => vec!["[iact] token"],
            _ => vec![],
        }
    }
    /// Needed only while the admin is still to be created.
    fn schedule(&self) -> Schedule {
        Schedule::With(crate::step_name::ADMIN)
    }
    fn desired(&self, cfg: &Config) -> Applies {
        if cfg.tfe.platform == crate::config::Platform::Hcp {
            return Applies::no("not on HCP Terraform (no IACT there)");
        }
        if cfg.admin.token.is_some() {
            return Applies::no("not needed: [admin] token is given");
        }
        if cfg.admin.token_file.exists() {
            return Applies::No(format!(
                "not needed: admin token file {} exists",
                cfg.admin.token_file.display()
            ));
        }
        if let Some(p) = crate::tokens::admin::rescued(cfg) {
            return Applies::No(format!(
                "not needed: an earlier run kept the admin token in {}",
                p.display()
            ));
        }
        Applies::Yes(Desired::plain(json!({"address": cfg.tfe.address})))
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        run(ctx)
    }
}

fn run(ctx: &mut Ctx<'_>) -> Result<Done, Error> {
    if crate::tokens::admin::published(ctx, NAME)?.is_some() {
        return Ok(Done::unchanged(
            "not needed: another node created the admin and published its token to [store]",
        ));
    }
    // With a store, the node that takes the duty to create the admin is
    // the one that needs the IACT; the others wait for its token (one of
    // them obtains the IACT if it takes the duty over).
    if let Some(fleet) = ctx.fleet {
        match fleet
            .try_claim(crate::step_name::ADMIN.as_str())
            .map_err(|e| Error::step(NAME, e))?
        {
            Some(crate::store::Turn::Mine(_)) => {}
            _ => {
                return Ok(Done::unchanged(
                    "not needed: another node creates the admin (this node obtains the IACT if it takes that over)",
                ));
            }
        }
    }
    let got = obtain(ctx);
    // Without an IACT this node cannot create the admin: let another try
    // at once rather than after [store] wait.
    if got.is_err()
        && let Some(fleet) = ctx.fleet
    {
        fleet.give_up_held(crate::step_name::ADMIN.as_str());
    }
    got
}
