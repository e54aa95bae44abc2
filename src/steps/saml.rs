//! `saml`: the SAML settings (`PATCH /api/v2/admin/saml-settings`): every
//! writable attribute `[saml]` sets, the private key write-only.

use super::{admin_client, api_error, settings};
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applies, Ctx, Done, Drift, LiveCtx, Step, StepName};
use crate::tfe::api::SettingsKind;

pub const NAME: StepName = crate::step_name::SAML;

pub struct Saml;

impl Step for Saml {
    fn name(&self) -> StepName {
        NAME
    }
    fn needs_site_admin(&self) -> bool {
        true
    }
    fn secret_keys(&self, _cfg: &Config) -> Vec<&'static str> {
        vec![
            "[saml] idp_cert",
            "[saml] certificate",
            "[saml] private_key",
        ]
    }
    fn desired(&self, cfg: &Config) -> Applies {
        settings::desired(cfg.saml.as_ref(), "saml", None)
    }
    fn live(&self, cx: &LiveCtx<'_>) -> Result<Vec<Drift>, crate::tfe::TfeError> {
        settings::live(cx, SettingsKind::Saml, cx.cfg.saml.as_ref())
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        let s = settings::section(ctx.cfg.saml.as_ref(), NAME)?;
        let detail = {
            let client = admin_client(ctx, NAME)?.clone();
            settings::patch(&client, SettingsKind::Saml, s).map_err(|e| api_error(NAME, ctx, e))?
        };
        Ok(Done::changed(detail))
    }
}
