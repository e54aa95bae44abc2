//! `org-token`: the organization's service-account token, minted once and
//! written to `[organization.service_token] file` (0600).

use serde_json::json;

use super::{no_org, org_cfg};
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applies, Ctx, Desired, Done, Step, StepName};
use crate::tokens::{TokenKind, service};

pub const NAME: StepName = crate::step_name::ORG_TOKEN;

pub struct OrgToken;

impl Step for OrgToken {
    fn name(&self) -> StepName {
        NAME
    }
    fn desired(&self, cfg: &Config) -> Applies {
        let o = crate::need!(cfg.organization.as_ref(), no_org());
        let file = crate::need!(
            o.service_token_file.as_ref(),
            "no [organization.service_token]"
        );
        Applies::Yes(Desired::plain(
            json!({"org": o.name, "file": file.display().to_string()}),
        ))
    }
    fn writes_node_files(&self) -> bool {
        true
    }
    /// Every node writes its own file; the token is the same.
    fn shared(&self, cfg: &Config) -> Applies {
        if let Applies::No(why) = self.desired(cfg) {
            return Applies::No(why);
        }
        let o = crate::need!(cfg.organization.as_ref(), no_org());
        Applies::Yes(Desired::plain(json!({"org": o.name})))
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        mint(ctx, false)
    }
    /// The holder that went silent may have minted a token nobody holds:
    /// minting again invalidates nothing.
    fn take_over(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        mint(ctx, true)
    }
}

fn mint(ctx: &mut Ctx<'_>, taken_over: bool) -> Result<Done, Error> {
    let o = org_cfg(ctx.cfg, NAME)?;
    let Some(file) = &o.service_token_file else {
        return Err(Error::step(NAME, "no [organization.service_token] file"));
    };
    let name = o.name.clone();
    service::mint_once(ctx, NAME, TokenKind::Org, file, &name, taken_over)
}
