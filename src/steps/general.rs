//! `general`: the site-wide general settings, exactly the keys `[general]`
//! sets. `support_email_address` is not a general setting on today's TFE:
//! it lives in `/api/v2/admin/customization-settings` (go-tfe
//! `AdminCustomizationSetting`; `AdminGeneralSetting` has no such field).
//! Older installs have no customization endpoint (404) and keep it in
//! general-settings (the older PTFE "Settings API" page, admin-settings-api.txt); the step decides from TFE's answer, and
//! every key is confirmed in TFE's reply.

use serde_json::{Map, Value};

use super::{admin_client, api_error, settings};
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applied, Ctx, Desired, Drift, LiveCtx, Step, StepName};
use crate::tfe::api::SettingsKind;

pub const NAME: StepName = StepName::new("general");

/// The one `[general]` key that today's TFE keeps in customization-settings.
const SUPPORT_EMAIL: &str = "support-email-address";

pub struct General;

impl Step for General {
    fn name(&self) -> StepName {
        NAME
    }
    fn desired(&self, cfg: &Config) -> Result<Desired, String> {
        settings::desired(cfg.general.as_ref(), "general", None)
    }
    fn live(&self, cx: &LiveCtx<'_>) -> Result<Vec<Drift>, String> {
        let Some(g) = &cx.cfg.general else {
            return Ok(vec![]);
        };
        let (custom, general) = split(&g.attributes);
        let mut rows = vec![];
        let mut general_live = None;
        if let Some(want) = custom {
            let live = match cx.admin.settings(SettingsKind::Customization) {
                Ok(m) => m,
                Err(e) if e.status() == Some(404) => {
                    let m = cx
                        .admin
                        .settings(SettingsKind::General)
                        .map_err(|e| e.to_string())?;
                    general_live = Some(m.clone());
                    m
                }
                Err(e) => return Err(e.to_string()),
            };
            let have = live.get(SUPPORT_EMAIL).cloned().unwrap_or(Value::Null);
            rows.push(Drift::new(SUPPORT_EMAIL, have, want));
        }
        if !general.is_empty() {
            let live = match general_live {
                Some(m) => m,
                None => cx
                    .admin
                    .settings(SettingsKind::General)
                    .map_err(|e| e.to_string())?,
            };
            rows.extend(general.iter().map(|(k, want)| {
                Drift::new(k, live.get(k).cloned().unwrap_or(Value::Null), want.clone())
            }));
        }
        Ok(rows)
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
        let g = settings::section(ctx.cfg.general.as_ref(), NAME)?;
        let client = admin_client(ctx, NAME)?.clone();
        let (custom, mut general) = split(&g.attributes);
        let mut done = vec![];
        if let Some(email) = custom {
            let mut attrs = Map::new();
            attrs.insert(SUPPORT_EMAIL.into(), email.clone());
            match client.patch_settings(SettingsKind::Customization, &attrs) {
                Ok(()) => done.push(format!("PATCH customization-settings ({SUPPORT_EMAIL})")),
                // An install older than customization-settings keeps it in
                // general settings.
                Err(e) if e.status() == Some(404) => {
                    general.insert(SUPPORT_EMAIL.into(), email);
                }
                Err(e) => return Err(api_error(NAME, ctx, e)),
            }
        }
        if !general.is_empty() {
            client
                .patch_settings(SettingsKind::General, &general)
                .map_err(|e| api_error(NAME, ctx, e))?;
            let keys: Vec<&str> = general.keys().map(String::as_str).collect();
            done.insert(0, format!("PATCH general-settings ({})", keys.join(", ")));
        }
        Ok(Applied::changed(done.join("; ")))
    }
}

/// `support-email-address` (if set) apart from the general settings proper.
fn split(attrs: &Map<String, Value>) -> (Option<Value>, Map<String, Value>) {
    let mut general = attrs.clone();
    (general.remove(SUPPORT_EMAIL), general)
}
