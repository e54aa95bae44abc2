//! The hand-off to Terraform: one entry of a `credentials.tfrc.json`, the
//! file `terraform login` keeps (Terraform CLI config docs, "Credentials":
//! `{"credentials": {"HOST": {"token": "..."}}}`, HOST with its port when
//! it has one). The entry for this TFE is set to the token the config
//! chooses; every other host's entry, and every other key of the file, is
//! kept. Written atomically at 0600, its directory made 0700 if missing.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::config::{Config, TerraformConfig, TerraformToken};
use crate::error::Error;
use crate::step::StepName;

use super::TokenKind;

/// The kind of token `[terraform] token` chooses.
pub fn kind(t: &TerraformConfig) -> TokenKind {
    match t.token {
        TerraformToken::Admin => TokenKind::Admin,
        TerraformToken::Organization => TokenKind::Org,
        TerraformToken::OwnersTeam => TokenKind::Team,
    }
}

/// The file the chosen token is in.
pub fn source_file<'c>(cfg: &'c Config, t: &TerraformConfig) -> Option<&'c Path> {
    let org = cfg.organization.as_ref();
    match kind(t) {
        TokenKind::Team => org.and_then(|o| o.owners_team_token_file.as_deref()),
        TokenKind::Org => org.and_then(|o| o.service_token_file.as_deref()),
        _ => Some(cfg.admin.token_file.as_path()),
    }
}

/// The token the credentials file holds for `host`, if any.
fn held(file: &Path, host: &str) -> Option<String> {
    let (text, _) = crate::util::read_private(file).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["credentials"][host]["token"].as_str().map(str::to_string)
}

/// Why the credentials file does not hold the chosen token now (a token
/// renewed or rotated since, the entry removed), or `None`.
pub fn stale(cfg: &Config, t: &TerraformConfig) -> Option<String> {
    let token = super::read(source_file(cfg, t)?).ok()?.0;
    (held(&t.credentials_file, &t.host).as_deref() != Some(token.as_str())).then(|| {
        format!(
            "{} does not hold the current {} for {}",
            t.credentials_file.display(),
            kind(t).what().trim_start_matches("the "),
            t.host
        )
    })
}

/// Sets this TFE's entry to the chosen token. `Ok(false)`: it held it.
pub fn write(cfg: &Config, t: &TerraformConfig, step: StepName) -> Result<bool, Error> {
    let file = &t.credentials_file;
    let Some(src) = source_file(cfg, t) else {
        return Err(Error::step(
            step,
            "internal: no token file for [terraform] token",
        ));
    };
    let (token, _) =
        super::read(src).map_err(|e| Error::step(step, format!("{}: {e}", src.display())))?;
    let mut doc = match crate::util::read_private(file) {
        Ok((text, _)) if text.trim().is_empty() => Value::Object(Map::new()),
        Ok((text, _)) => serde_json::from_str::<Value>(&text)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| {
                Error::env(
                    step,
                    format!(
                        "{} is not a JSON object as Terraform writes it; it was left as it is: fix or move it, then rerun",
                        file.display()
                    ),
                )
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Object(Map::new()),
        Err(e) => return Err(Error::env(step, format!("{}: {e}", file.display()))),
    };
    if doc["credentials"][&t.host]["token"].as_str() == Some(token.as_str()) {
        return Ok(false);
    }
    if !doc["credentials"].is_object() {
        doc["credentials"] = Value::Object(Map::new());
    }
    doc["credentials"][&t.host] = json!({"token": token});
    if let Some(dir) = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        crate::util::ensure_private_dir(dir)
            .map_err(|e| Error::env(step, format!("{}: {e}", dir.display())))?;
    }
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    crate::util::write_atomic(file, &bytes)
        .map_err(|e| Error::env(step, format!("cannot write {}: {e}", file.display())))?;
    Ok(true)
}
