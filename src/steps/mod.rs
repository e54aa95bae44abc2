//! The steps, one file each, one job each. Every file implements
//! [`crate::step::Step`]: its name, what it wants (the checkpoint
//! fingerprint's input) or why it does not apply, how its live state reads
//! (for `plan`'s drift), and how it applies. Steps never print and never
//! import the machine or the reporter: they return an
//! [`crate::step::Done`] and send warnings through [`crate::step::Progress`].
//!
//! This file holds only what several steps share: the site-admin client,
//! error wording, and "ensure" (read, create if missing).

pub mod admin;
pub mod agent_pool;
pub mod agent_token;
pub mod customization;
pub mod general;
pub mod iact;
pub mod org_defaults;
pub mod org_token;
pub mod organization;
pub mod renew;
pub mod saml;
mod service_token;
mod settings;
pub mod smtp;
pub mod team_token;
pub mod token_ttl;
pub mod twilio;
pub mod verify_tokens;
pub mod wait;
mod witness;

use crate::config::{Config, OrgConfig};
use crate::error::Error;
use crate::step::{Ctx, StepName};
use crate::tfe::{Client, TfeError};

pub use admin::load_admin_client;

/// The site-admin client, loading and checking the token on first use.
pub fn admin_client<'c>(ctx: &'c mut Ctx<'_>, step: StepName) -> Result<&'c Client, Error> {
    if ctx.admin.is_none() {
        let rotated = ctx.state.facts.admin_token_expires_unix.is_some();
        let (c, role) = load_admin_client(ctx.cfg, &ctx.client, step, rotated, ctx.progress)?;
        ctx.admin = Some(c);
        ctx.admin_role = Some(role);
    }
    if let Some(role) = &ctx.admin_role {
        admin::refuse_for(ctx.cfg, step, role)?;
    }
    ctx.admin
        .as_ref()
        .ok_or_else(|| Error::step(step, "internal: admin client missing"))
}

/// The `[organization]` section, for the steps that need it.
fn org_cfg(cfg: &Config, step: StepName) -> Result<&OrgConfig, Error> {
    cfg.organization
        .as_ref()
        .ok_or_else(|| Error::step(step, "no [organization] section"))
}

/// Why an organization step does not apply when `[organization]` is absent.
fn no_org() -> String {
    "no [organization] section".to_string()
}

/// Wraps a TFE error for `step`, adding what to do for the common cases.
pub fn api_error(step: StepName, ctx: &Ctx<'_>, e: TfeError) -> Error {
    let token_origin = match &ctx.cfg.admin.token {
        Some(t) => format!("[admin] token ({})", t.origin()),
        None => format!("token_file {}", ctx.cfg.admin.token_file.display()),
    };
    let hint = match (&e, e.status()) {
        (TfeError::Status { path, .. }, Some(404)) if path.starts_with("/api/v2/admin") => {
            format!("; the token is not a site admin's (it came from {token_origin})")
        }
        (_, Some(401)) if step != smtp::NAME => format!(
            "; TFE refused the token from {token_origin}: it may have been revoked or have expired (a max-TTL policy rejects older, longer-lived tokens)"
        ),
        (_, Some(403)) => "; the admin is not in the organization's owners team".into(),
        (TfeError::Status { .. }, Some(429)) => {
            "; TFE kept rate-limiting: raise [general] api_rate_limit or rerun later".into()
        }
        _ => String::new(),
    };
    Error::step(step, format!("{e}{hint}"))
}

/// How often an ambiguous create (connection lost after sending) is
/// re-checked and retried before giving up.
const AMBIGUOUS_RETRIES: usize = 3;

/// Reads, creates if missing; after an ambiguous create, reads again before
/// trying again, so a lost answer never makes a second object. Returns the
/// object and whether this call created it.
fn ensure<T>(
    mut read: impl FnMut() -> Result<Option<T>, TfeError>,
    mut create: impl FnMut() -> Result<T, TfeError>,
) -> Result<(T, bool), TfeError> {
    let mut tries = 0;
    loop {
        if let Some(v) = read()? {
            return Ok((v, tries > 0));
        }
        match create() {
            Ok(v) => return Ok((v, true)),
            Err(e) if e.is_ambiguous() && tries < AMBIGUOUS_RETRIES => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Unix seconds at which a token minted now lives for at most `ttl_ms`, by
/// TFE's clock (`client`'s [`Client::tfe_now`]): this host's clock may be
/// hours fast or days slow, and TFE judges `expired-at` by its own. The
/// margin scales with the lifetime: a hundredth of it, at least a minute
/// (the time between TFE's `Date` and its check) and at most a day, and
/// never more than half the lifetime.
fn expiry_within(client: &Client, ttl_ms: u64) -> u64 {
    let ttl_s = ttl_ms / 1000;
    let margin_s = (ttl_s / 100).clamp(60, 86_400).min(ttl_s / 2);
    client.tfe_now() + ttl_s - margin_s
}

fn human_ms(ms: u64) -> String {
    crate::config::duration::format_duration(std::time::Duration::from_millis(ms))
}
