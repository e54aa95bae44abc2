//! `twilio`: the Twilio settings (`PATCH /api/v2/admin/twilio-settings`),
//! and with `test_number` one verification SMS, sent only when the settings
//! were applied in this run.

use super::{admin_client, api_error, settings};
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applied, Ctx, Desired, Drift, LiveCtx, Step, StepName};
use crate::tfe::api::SettingsKind;

pub const NAME: StepName = StepName::new("twilio");

pub struct Twilio;

impl Step for Twilio {
    fn name(&self) -> StepName {
        NAME
    }
    fn desired(&self, cfg: &Config) -> Result<Desired, String> {
        let extra = cfg
            .twilio_test_number
            .as_deref()
            .map(|n| ("test-number", n));
        settings::desired(cfg.twilio.as_ref(), "twilio", extra)
    }
    fn live(&self, cx: &LiveCtx<'_>) -> Result<Vec<Drift>, String> {
        settings::live(cx, SettingsKind::Twilio, cx.cfg.twilio.as_ref())
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
        let s = settings::section(ctx.cfg.twilio.as_ref(), NAME)?;
        let mut detail = {
            let client = admin_client(ctx, NAME)?.clone();
            settings::patch(&client, SettingsKind::Twilio, s)
                .map_err(|e| api_error(NAME, ctx, e))?
        };
        if let Some(n) = &ctx.cfg.twilio_test_number {
            let client = admin_client(ctx, NAME)?.clone();
            client
                .twilio_verify(n)
                .map_err(|e| api_error(NAME, ctx, e))?;
            detail.push_str(&format!("; verification SMS sent to {n}"));
        }
        Ok(Applied::changed(detail))
    }
}
