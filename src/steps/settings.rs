//! What the four admin-settings steps (`general`, `smtp`, `saml`, `twilio`)
//! share: PATCH exactly the attributes the config sets (omitted ones keep
//! their value on TFE), plus the write-only values; read the singleton back
//! for drift. Each step's own file adds what is particular to it.

use serde_json::{Map, Value, json};

use crate::config::SettingsConfig;
use crate::error::Error;
use crate::step::{Applies, Desired, Drift, LiveCtx, StepName};
use crate::tfe::api::SettingsKind;
use crate::tfe::{Client, TfeError};

/// The fingerprint's input: the attributes, the write-only values, and the
/// secrets (by placeholder; their values enter only hashed).
pub(super) fn desired(
    s: Option<&SettingsConfig>,
    table: &str,
    extra: Option<(&str, &str)>,
) -> Applies {
    let s = crate::need!(s, format!("no [{table}] section"));
    let mut value = Value::Object(s.attributes.clone());
    for (k, v) in &s.write_only {
        value[k] = v.clone();
    }
    for (k, _) in &s.secrets {
        value[*k] = json!("<secret>");
    }
    if let Some((k, v)) = extra {
        value[k] = json!(v);
    }
    Applies::Yes(Desired {
        value,
        secrets: s.secrets.iter().map(|(_, v)| v.clone()).collect(),
    })
}

/// Live values of the configured attributes, and the write-only keys.
pub(super) fn live(
    cx: &LiveCtx<'_>,
    kind: SettingsKind,
    s: Option<&SettingsConfig>,
) -> Result<Vec<Drift>, crate::tfe::TfeError> {
    let Some(s) = s else { return Ok(vec![]) };
    let live = cx.admin.settings(kind)?;
    let mut rows: Vec<Drift> = s
        .attributes
        .iter()
        .map(|(k, want)| Drift::new(k, live.get(k).cloned().unwrap_or(Value::Null), want.clone()))
        .collect();
    rows.extend(s.write_only.keys().map(Drift::write_only));
    rows.extend(s.secrets.iter().map(|(k, _)| Drift::write_only(*k)));
    Ok(rows)
}

/// Whether TFE holds every readable attribute the section sets (write-only
/// values cannot be read back, so they cannot be confirmed this way).
pub(super) fn holds(
    client: &Client,
    kind: SettingsKind,
    s: &SettingsConfig,
) -> Result<bool, TfeError> {
    let live = client.settings(kind)?;
    Ok(crate::tfe::api::confirm(
        crate::tfe::Method::Get,
        kind.path(),
        &s.attributes,
        &live,
        kind.write_only(),
    )
    .is_ok())
}

/// PATCHes the section; returns the detail line (`PATCH <type> (keys)`).
pub(super) fn patch(
    client: &Client,
    kind: SettingsKind,
    s: &SettingsConfig,
) -> Result<String, TfeError> {
    let mut attrs: Map<String, Value> = s.attributes.clone();
    for (k, v) in &s.write_only {
        attrs.insert(k.clone(), v.clone());
    }
    for (k, v) in &s.secrets {
        attrs.insert((*k).into(), v.expose().into());
    }
    client.patch_settings(kind, &attrs)?;
    let mut keys: Vec<&str> = s.attributes.keys().map(String::as_str).collect();
    keys.extend(s.secrets.iter().map(|(k, _)| *k));
    let mut detail = format!("PATCH {} ({})", kind.json_type(), keys.join(", "));
    let unread: Vec<&str> = attrs
        .keys()
        .map(String::as_str)
        .filter(|k| kind.write_only().contains(k))
        .collect();
    if !unread.is_empty() {
        detail.push_str(&format!(
            "; confirmed from TFE's answer except write-only {}",
            unread.join(", ")
        ));
    }
    Ok(detail)
}

/// Says why a settings step does not run: its section is absent.
pub(super) fn section(
    s: Option<&SettingsConfig>,
    step: StepName,
) -> Result<&SettingsConfig, Error> {
    s.ok_or_else(|| Error::step(step, format!("no [{step}] section")))
}
