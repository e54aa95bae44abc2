//! `team-token`: the owners team's token, minted once and written to
//! `[organization.owners_team_token] file` (0600).

use serde_json::json;

use super::{no_org, org_cfg, service_token};
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applied, Ctx, Desired, Step, StepName};

pub const NAME: StepName = StepName::new("team-token");

pub struct TeamToken;

impl Step for TeamToken {
    fn name(&self) -> StepName {
        NAME
    }
    fn desired(&self, cfg: &Config) -> Result<Desired, String> {
        let o = cfg.organization.as_ref().ok_or_else(no_org)?;
        let file = o
            .owners_team_token_file
            .as_ref()
            .ok_or("no [organization.owners_team_token]")?;
        Ok(Desired::plain(
            json!({"org": o.name, "team": "owners", "file": file.display().to_string()}),
        ))
    }
    fn writes_node_files(&self) -> bool {
        true
    }
    /// Every node writes its own file; the token is the same.
    fn shared(&self, cfg: &Config) -> Result<Desired, String> {
        self.desired(cfg)?;
        let o = cfg.organization.as_ref().ok_or_else(no_org)?;
        Ok(Desired::plain(json!({"org": o.name, "team": "owners"})))
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
        let o = org_cfg(ctx.cfg, NAME)?;
        let Some(file) = &o.owners_team_token_file else {
            return Err(Error::step(
                NAME,
                "no [organization.owners_team_token] file",
            ));
        };
        let name = o.name.clone();
        service_token::mint_once(ctx, NAME, service_token::Account::OwnersTeam, file, &name)
    }
}
