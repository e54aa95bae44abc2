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
pub(crate) mod iact_source;
pub mod org_defaults;
pub mod org_token;
pub mod organization;
pub mod saml;
mod settings;
pub mod smtp;
pub mod team_token;
pub mod terraform_credentials;
pub mod token_ttl;
pub mod twilio;
pub mod verify_tokens;
pub mod wait;
mod witness;

use crate::config::{Config, OrgConfig};
use crate::error::Error;
use crate::step::StepName;
use crate::tfe::TfeError;

pub use crate::step::api_error;
pub use crate::tokens::admin::{client as admin_client, load_admin_client};
pub(crate) use crate::tokens::human_ms;

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

/// How often an ambiguous create (connection lost after sending, or a 500)
/// is re-checked and retried before giving up.
const AMBIGUOUS_RETRIES: usize = 3;

/// Reads, creates if missing; after an ambiguous create, reads again before
/// trying again, so a lost answer never makes a second object. A 500 counts
/// as ambiguous here: TFE, or a load balancer in front of it, may or may
/// not have processed the POST, and the object can be read back by name
/// before a re-send (the client does not re-send a creating POST after a
/// 500 itself: `tfe::decide`). Returns the object and whether this call
/// created it.
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
            Err(e)
                if (e.is_ambiguous() || e.status() == Some(500)) && tries < AMBIGUOUS_RETRIES =>
            {
                tries += 1
            }
            Err(e) => return Err(e),
        }
    }
}
