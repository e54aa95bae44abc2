//! `smtp`: the SMTP settings (`PATCH /api/v2/admin/smtp-settings`). With
//! `test_email_address`, TFE sends a test mail synchronously on the PATCH, so
//! its 401/500/504 answers are about the SMTP server, not the TFE token.

use super::{admin_client, api_error, settings};
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applied, Ctx, Desired, Drift, LiveCtx, Step, StepName};
use crate::tfe::TfeError;
use crate::tfe::api::SettingsKind;

pub const NAME: StepName = StepName::new("smtp");

pub struct Smtp;

impl Step for Smtp {
    fn name(&self) -> StepName {
        NAME
    }
    fn desired(&self, cfg: &Config) -> Result<Desired, String> {
        settings::desired(cfg.smtp.as_ref(), "smtp", None)
    }
    fn live(&self, cx: &LiveCtx<'_>) -> Result<Vec<Drift>, String> {
        settings::live(cx, SettingsKind::Smtp, cx.cfg.smtp.as_ref())
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
        let s = settings::section(ctx.cfg.smtp.as_ref(), NAME)?;
        let mut detail = {
            let client = admin_client(ctx, NAME)?.clone();
            settings::patch(&client, SettingsKind::Smtp, s).map_err(|e| smtp_error(ctx, e))?
        };
        if let Some(to) = s
            .write_only
            .get("test-email-address")
            .and_then(|v| v.as_str())
        {
            detail.push_str(&format!("; TFE sent a test mail to {to}"));
        }
        Ok(Applied::changed(detail))
    }
}

/// SMTP's PATCH answers 401/500/504 about the *SMTP server*, not the TFE token.
fn smtp_error(ctx: &Ctx<'_>, e: TfeError) -> Error {
    let hint = match e.status() {
        Some(401) => {
            "the SMTP server refused [smtp] username/password during TFE's test mail (this 401 is about SMTP, not the TFE token)"
        }
        Some(500) => {
            "the SMTP server answered the test mail with an error: check [smtp] host, port, sender and the relay's logs"
        }
        Some(504) => {
            "TFE could not reach the SMTP server in time: check [smtp] host and port, and that TFE's network allows it"
        }
        _ => return api_error(NAME, ctx, e),
    };
    Error::step(NAME, format!("{e}; {hint}"))
}
