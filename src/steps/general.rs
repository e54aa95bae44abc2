//! `general`: the site-wide general settings, exactly the keys `[general]`
//! sets, each confirmed in TFE's reply. (`support_email_address`, which
//! today's TFE keeps in customization-settings, is the `customization`
//! step's.)

use super::{admin_client, api_error, settings};
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applies, Ctx, Done, Drift, LiveCtx, Step, StepName};
use crate::tfe::api::SettingsKind;

pub const NAME: StepName = crate::step_name::GENERAL;

pub struct General;

impl Step for General {
    fn name(&self) -> StepName {
        NAME
    }
    fn needs_site_admin(&self) -> bool {
        true
    }
    fn desired(&self, cfg: &Config) -> Applies {
        settings::desired(cfg.general.as_ref(), "general", None)
    }
    fn live(&self, cx: &LiveCtx<'_>) -> Result<Vec<Drift>, crate::tfe::TfeError> {
        settings::live(cx, SettingsKind::General, cx.cfg.general.as_ref())
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        let g = settings::section(ctx.cfg.general.as_ref(), NAME)?;
        let client = admin_client(ctx, NAME)?.clone();
        client
            .patch_settings(SettingsKind::General, &g.attributes)
            .map_err(|e| api_error(NAME, ctx, e))?;
        let keys: Vec<&str> = g.attributes.keys().map(String::as_str).collect();
        Ok(Done::changed(format!(
            "PATCH general-settings ({})",
            keys.join(", ")
        )))
    }
}
