//! `customization`: the customization settings, exactly the keys
//! `[customization]` sets (support e-mail, login help, footer, error and
//! new-user messages), in `/api/v2/admin/customization-settings` (go-tfe
//! `admin_setting_customization.go` `AdminCustomizationSetting`; TFE 2.0.x
//! settings docs). Installs older than that endpoint (404) kept the support
//! e-mail in general-settings (the older PTFE "Settings API" page,
//! admin-settings-api.txt) and had no messages: the support e-mail goes
//! there, and a message is refused with what to do. Every key is confirmed
//! in TFE's reply.

use serde_json::{Map, Value};

use super::{admin_client, api_error, settings};
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applies, Ctx, Done, Drift, LiveCtx, Step, StepName};
use crate::tfe::api::SettingsKind;

pub const NAME: StepName = crate::step_name::CUSTOMIZATION;

/// The one customization key older installs kept in general-settings.
const SUPPORT_EMAIL: &str = "support-email-address";

pub struct Customization;

impl Step for Customization {
    fn name(&self) -> StepName {
        NAME
    }
    fn desired(&self, cfg: &Config) -> Applies {
        settings::desired(cfg.customization.as_ref(), "customization", None)
    }
    fn live(&self, cx: &LiveCtx<'_>) -> Result<Vec<Drift>, crate::tfe::TfeError> {
        let Some(c) = &cx.cfg.customization else {
            return Ok(vec![]);
        };
        let live = match cx.admin.settings(SettingsKind::Customization) {
            Ok(m) => m,
            Err(e) if e.status() == Some(404) => cx.admin.settings(SettingsKind::General)?,
            Err(e) => return Err(e),
        };
        Ok(c.attributes
            .iter()
            .map(|(k, want)| {
                Drift::new(k, live.get(k).cloned().unwrap_or(Value::Null), want.clone())
            })
            .collect())
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        let c = settings::section(ctx.cfg.customization.as_ref(), NAME)?;
        let client = admin_client(ctx, NAME)?.clone();
        let keys: Vec<&str> = c.attributes.keys().map(String::as_str).collect();
        // A release the table knows to lack them goes to general-settings
        // at once; any other tries customization-settings first.
        let absent = ctx.release().is_some_and(|v| !v.has_customization());
        let tried =
            (!absent).then(|| client.patch_settings(SettingsKind::Customization, &c.attributes));
        match tried {
            Some(Ok(())) => Ok(Done::changed(format!(
                "PATCH customization-settings ({})",
                keys.join(", ")
            ))),
            Some(Err(e)) if e.status() != Some(404) => Err(api_error(NAME, ctx, e)),
            _ => {
                let others: Vec<&str> = keys
                    .iter()
                    .copied()
                    .filter(|k| *k != SUPPORT_EMAIL)
                    .collect();
                if !others.is_empty() {
                    return Err(Error::step(
                        NAME,
                        format!(
                            "this TFE has no customization settings (customization-settings arrived in v202003-1), so {} cannot be set: remove them from [customization]",
                            others.join(", ")
                        ),
                    ));
                }
                let mut attrs = Map::new();
                attrs.insert(SUPPORT_EMAIL.into(), c.attributes[SUPPORT_EMAIL].clone());
                client
                    .patch_settings(SettingsKind::General, &attrs)
                    .map_err(|e| api_error(NAME, ctx, e))?;
                Ok(Done::changed(format!(
                    "PATCH general-settings ({SUPPORT_EMAIL}: this install has no customization settings)"
                )))
            }
        }
    }
}
