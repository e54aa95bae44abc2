//! `twilio`: the Twilio settings (`PATCH /api/v2/admin/twilio-settings`),
//! and with `test_number` one verification SMS, sent only when the settings
//! were applied in this run.
//!
//! The SMS is a witness: at most one per change. The intent is saved before
//! the verify request leaves (`steps/witness.rs`); a rerun that finds it for
//! the same change, with TFE holding the settings, does not send again.

use super::{admin_client, api_error, settings, witness};
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applies, Ctx, Done, Drift, LiveCtx, Step, StepName};
use crate::tfe::api::SettingsKind;

pub const NAME: StepName = crate::step_name::TWILIO;

pub struct Twilio;

impl Step for Twilio {
    fn name(&self) -> StepName {
        NAME
    }
    fn needs_site_admin(&self) -> bool {
        true
    }
    fn secret_keys(&self, _cfg: &Config) -> Vec<&'static str> {
        vec!["[twilio] auth_token"]
    }
    fn desired(&self, cfg: &Config) -> Applies {
        let extra = cfg
            .twilio_test_number
            .as_deref()
            .map(|n| ("test-number", n));
        settings::desired(cfg.twilio.as_ref(), "twilio", extra)
    }
    fn live(&self, cx: &LiveCtx<'_>) -> Result<Vec<Drift>, crate::tfe::TfeError> {
        settings::live(cx, SettingsKind::Twilio, cx.cfg.twilio.as_ref())
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        let s = settings::section(ctx.cfg.twilio.as_ref(), NAME)?;
        let mut detail = {
            let client = admin_client(ctx, NAME)?.clone();
            settings::patch(&client, SettingsKind::Twilio, s)
                .map_err(|e| api_error(NAME, ctx, e))?
        };
        if let Some(n) = &ctx.cfg.twilio_test_number {
            let fp = witness::fingerprint(ctx, self)?;
            let client = admin_client(ctx, NAME)?.clone();
            if witness::sent_before(ctx, NAME, &fp) {
                witness::clear(ctx, NAME);
                detail.push_str(&format!(
                    "; the verification SMS to {n} was sent (or may have been) by an earlier run: not sent again"
                ));
                return Ok(Done::changed(detail));
            }
            witness::record(ctx, NAME, &fp)?;
            match client.twilio_verify(n) {
                Ok(()) => {}
                Err(e) if e.is_ambiguous() => {
                    return Err(Error::step(
                        NAME,
                        format!(
                            "{e}; the verification SMS is not repeated, and a rerun will not send it again"
                        ),
                    ));
                }
                Err(e) => {
                    witness::forget(ctx, NAME)?;
                    return Err(api_error(NAME, ctx, e));
                }
            }
            witness::clear(ctx, NAME);
            detail.push_str(&format!("; verification SMS sent to {n}"));
        }
        Ok(Done::changed(detail))
    }
}
