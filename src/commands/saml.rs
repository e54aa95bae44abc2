//! `saml revoke-old-cert`: revoke the previous SAML IdP certificate once the
//! new one is known to work.

use std::sync::Arc;

use super::{client, load};
use crate::cli::Cli;
use crate::error::{Error, exit};
use crate::output::Reporter;
use crate::steps;

/// `saml revoke-old-cert`: reads the SAML settings, then one POST with the
/// admin token (PUT on older installs) when there is a previous certificate.
pub(super) fn revoke_old_cert(cli: &Cli, report: &Arc<Reporter>) -> Result<u8, Error> {
    let cfg = load(cli)?;
    let base = client(&cfg, report)?;
    let step = crate::step_name::SAML;
    let rotated = crate::session::load_state(&cfg.state_dir, Some(&cfg.tfe.address))?
        .is_some_and(|s| s.facts.admin_token_expires_unix.is_some());
    let (admin, role) = steps::load_admin_client(&cfg, &base, step, rotated, report.as_ref())?;
    crate::tokens::admin::refuse_unless_site_admin(&cfg, step, &role)?;
    // Read first: with no previous certificate (`old-idp-cert`, SAML
    // settings API docs) there is nothing to revoke, and nothing is sent.
    let saml = admin
        .settings(crate::tfe::api::SettingsKind::Saml)
        .map_err(|e| Error::step(step, format!("reading the SAML settings: {e}")))?;
    if saml
        .get("old-idp-cert")
        .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
    {
        report.print("no previous SAML IdP certificate on TFE: nothing to revoke, nothing sent");
        return Ok(exit::OK);
    }
    admin
        .saml_revoke_old_cert()
        .map_err(|e| Error::step(step, format!("revoking the old IdP certificate: {e}")))?;
    report.print("revoked the previous SAML IdP certificate; only the current one is trusted now");
    Ok(exit::OK)
}
