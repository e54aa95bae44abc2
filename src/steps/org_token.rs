//! `org-token`: the organization's service-account token, minted once and
//! written to `[organization.service_token] file` (0600).

use serde_json::json;

use super::{no_org, org_cfg, service_token};
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applies, Ctx, Desired, Done, Step, StepName};

pub const NAME: StepName = StepName::new("org-token");

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
        let o = org_cfg(ctx.cfg, NAME)?;
        let Some(file) = &o.service_token_file else {
            return Err(Error::step(NAME, "no [organization.service_token] file"));
        };
        let name = o.name.clone();
        service_token::mint_once(
            ctx,
            NAME,
            service_token::ServiceAccount::Organization,
            file,
            &name,
        )
    }
}
