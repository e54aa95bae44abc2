//! `terraform-credentials`: the hand-off to Terraform. With `[terraform]`,
//! the chosen token (the owners team's, the organization's or the admin's)
//! goes into this TFE's entry of a `credentials.tfrc.json`
//! ([`crate::tokens::credentials`]), other hosts' entries kept, so that
//! `terraform init` with a `cloud` block works at once. It runs after
//! `token-ttl` (a rotated token is the one written), again whenever the
//! file no longer holds the current token (a renewal, an edit), and
//! `renew` keeps it current too. It sends nothing.

use serde_json::json;

use crate::config::Config;
use crate::error::Error;
use crate::state::State;
use crate::step::{Applies, Ctx, Desired, Done, Step, StepName};
use crate::tokens::credentials;

pub const NAME: StepName = crate::step_name::TERRAFORM_CREDENTIALS;

pub struct TerraformCredentials;

impl Step for TerraformCredentials {
    fn name(&self) -> StepName {
        NAME
    }
    fn desired(&self, cfg: &Config) -> Applies {
        let t = crate::need!(cfg.terraform.as_ref(), "no [terraform] section");
        Applies::Yes(Desired::plain(json!({
            "file": t.credentials_file.display().to_string(),
            "host": t.host,
            "token": t.token.as_str(),
        })))
    }
    /// Every node writes its own file.
    fn writes_node_files(&self) -> bool {
        true
    }
    fn recheck(&self, cfg: &Config, state: &State) -> Option<String> {
        if !state.steps.contains_key(NAME.as_str()) {
            return None;
        }
        credentials::stale(cfg, cfg.terraform.as_ref()?)
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        let Some(t) = ctx.cfg.terraform.as_ref() else {
            return Err(Error::step(NAME, "no [terraform] section"));
        };
        let what = credentials::kind(t).what();
        let (file, host) = (t.credentials_file.display(), &t.host);
        Ok(match credentials::write(ctx.cfg, t, NAME)? {
            true => Done::changed(format!(
                "{what} for {host} written to {file} (0600; other hosts kept): `terraform init` uses it"
            )),
            false => Done::unchanged(format!("{file} already holds {what} for {host}")),
        })
    }
}
