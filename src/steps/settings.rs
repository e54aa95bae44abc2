//! `general`, `smtp`, `saml`, `twilio`: PATCH exactly the attributes the
//! config sets (omitted ones keep their value on TFE), plus the write-only
//! secrets. An SMTP PATCH with `test_email_address` makes TFE send a test
//! mail; Twilio's `test_number` sends one SMS, only when the settings were
//! applied in this run.

use serde_json::{Map, Value, json};

use super::{Applied, admin_client, api_error};
use crate::config::{Config, SettingsConfig};
use crate::error::Error;
use crate::machine::{Ctx, Desired, StepName};
use crate::tfe::TfeError;
use crate::tfe::api::SettingsKind;

pub fn desired(
    s: Option<&SettingsConfig>,
    table: &str,
    extra: Option<&str>,
) -> Result<Desired, String> {
    let s = s.ok_or_else(|| format!("no [{table}] section"))?;
    let mut value = Value::Object(s.attributes.clone());
    for (k, v) in &s.write_only {
        value[k] = v.clone();
    }
    for (k, _) in &s.secrets {
        value[*k] = json!("<secret>");
    }
    if let Some(x) = extra {
        value["test-number"] = json!(x);
    }
    Ok(Desired {
        value,
        secrets: s.secrets.iter().map(|(_, v)| v.clone()).collect(),
    })
}

/// For the four settings steps: the singleton they PATCH and their config
/// section (`None` inside when the section is absent). `None` for other steps.
pub fn settings_of(
    step: StepName,
    cfg: &Config,
) -> Option<(SettingsKind, Option<&SettingsConfig>)> {
    Some(match step {
        StepName::General => (SettingsKind::General, cfg.general.as_ref()),
        StepName::Smtp => (SettingsKind::Smtp, cfg.smtp.as_ref()),
        StepName::Saml => (SettingsKind::Saml, cfg.saml.as_ref()),
        StepName::Twilio => (SettingsKind::Twilio, cfg.twilio.as_ref()),
        _ => return None,
    })
}

pub fn run(step: StepName, ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
    let cfg = ctx.cfg;
    let Some((kind, Some(s))) = settings_of(step, cfg) else {
        return Ok(Applied {
            outcome: crate::output::Outcome::Skipped,
            detail: "not configured".into(),
        });
    };
    let mut attrs: Map<String, Value> = s.attributes.clone();
    for (k, v) in &s.write_only {
        attrs.insert(k.clone(), v.clone());
    }
    for (k, v) in &s.secrets {
        attrs.insert((*k).into(), v.expose().into());
    }
    let client = admin_client(ctx, step)?.clone();
    if let Err(e) = client.patch_settings(kind, &attrs) {
        return Err(smtp_hint(step, ctx, e));
    }
    let mut keys: Vec<&str> = s.attributes.keys().map(String::as_str).collect();
    keys.extend(s.secrets.iter().map(|(k, _)| *k));
    let mut detail = format!("PATCH {} ({})", kind.json_type(), keys.join(", "));
    if let Some(to) = s
        .write_only
        .get("test-email-address")
        .and_then(Value::as_str)
    {
        detail.push_str(&format!("; TFE sent a test mail to {to}"));
    }
    if step == StepName::Twilio
        && let Some(n) = &cfg.twilio_test_number
    {
        client
            .twilio_verify(n)
            .map_err(|e| api_error(step, ctx, e))?;
        detail.push_str(&format!("; verification SMS sent to {n}"));
    }
    Ok(Applied::changed(detail))
}

/// SMTP's PATCH answers 401/500/504 about the *SMTP server*, not the TFE token.
fn smtp_hint(step: StepName, ctx: &Ctx<'_>, e: TfeError) -> Error {
    if step != StepName::Smtp {
        return api_error(step, ctx, e);
    }
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
        _ => return api_error(step, ctx, e),
    };
    Error::step(step, format!("{e}; {hint}"))
}
