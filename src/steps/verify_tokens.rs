//! `verify-tokens`: the last step. Proves that every token this run holds or
//! wrote still authenticates under the policies the run just enforced: the
//! admin token (account details, and a read of the organization), the
//! organization token and the owners team token (a read of the
//! organization). A max-TTL policy refuses longer-lived tokens with 401, so
//! this is where a token that would be dead at the end of the run is caught,
//! with the step that fixes it named. It runs whenever any other step runs,
//! and only then: a rerun with nothing pending still sends no request.

use std::path::Path;

use serde_json::json;

use super::service_token::{self, Account};
use super::{admin_client, api_error};
use crate::config::Config;
use crate::config::secret::Secret;
use crate::error::Error;
use crate::step::{Applied, Ctx, Desired, Schedule, Step, StepName};

pub const NAME: StepName = StepName::new("verify-tokens");

pub struct VerifyTokens;

impl Step for VerifyTokens {
    fn name(&self) -> StepName {
        NAME
    }
    fn schedule(&self) -> Schedule {
        Schedule::WithAnyOther
    }
    fn desired(&self, cfg: &Config) -> Result<Desired, String> {
        let o = cfg.organization.as_ref();
        Ok(Desired::plain(json!({
            "organization": o.map(|o| &o.name),
            "files": [
                cfg.admin.token_file.display().to_string(),
                o.and_then(|o| o.service_token_file.as_ref()).map(|p| p.display().to_string()),
                o.and_then(|o| o.owners_team_token_file.as_ref()).map(|p| p.display().to_string()),
            ],
        })))
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
        let admin = admin_client(ctx, NAME)?.clone();
        let origin = match &ctx.cfg.admin.token {
            Some(_) => "[admin] token".to_string(),
            None => format!("token_file {}", ctx.cfg.admin.token_file.display()),
        };
        match admin.account() {
            // A team or organization token has no account (404); the read
            // of the organization below is what proves it works.
            Err(e) if e.status() == Some(404) => {}
            r => {
                r.map_err(|e| api_error(NAME, ctx, e))?;
            }
        }
        let mut checked = vec![origin.clone()];
        let Some(o) = &ctx.cfg.organization else {
            return Ok(Applied::changed(format!("{origin} authenticates")));
        };
        if admin
            .organization(&o.name)
            .map_err(|e| api_error(NAME, ctx, e))?
            .is_none()
        {
            return Err(Error::step(
                NAME,
                format!(
                    "the admin token from {origin} cannot see organization {:?}",
                    o.name
                ),
            ));
        }
        for (file, owner, account) in [
            (
                &o.service_token_file,
                super::org_token::NAME,
                Account::Organization,
            ),
            (
                &o.owners_team_token_file,
                super::team_token::NAME,
                Account::OwnersTeam,
            ),
        ] {
            let Some(file) = file.as_ref().filter(|f| f.exists()) else {
                continue;
            };
            if let Err(e) = check_file(ctx, file, &o.name, owner) {
                // Another node re-minted it (under a TTL policy, or with
                // --force) and published the new one: take that.
                if !service_token::refresh_file(ctx, account, file, &o.name) {
                    return Err(e);
                }
                check_file(ctx, file, &o.name, owner)?;
                ctx.warn(
                    NAME,
                    &format!(
                        "{} no longer worked: replaced it with the token another node published to [store]",
                        file.display()
                    ),
                );
            }
            checked.push(file.display().to_string());
        }
        Ok(Applied::changed(format!(
            "every token authenticates: {}",
            checked.join(", ")
        )))
    }
}

/// Reads `org` with the token in `file`; a refusal names the file and the
/// step that mints a replacement.
fn check_file(ctx: &Ctx<'_>, file: &Path, org: &str, owner: StepName) -> Result<(), Error> {
    let (text, tightened) = crate::util::read_private(file)
        .map_err(|e| Error::step(NAME, format!("cannot use {}: {e}", file.display())))?;
    if let Some(w) = tightened {
        ctx.progress.warning(Some(NAME), &w);
    }
    let token = Secret::new(text.trim(), format!("file {}", file.display()));
    match ctx.client.clone().with_token(token).organization(org) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Error::step(
            NAME,
            format!(
                "the token in {} cannot see organization {org:?}; `run --force {owner}` mints a new one",
                file.display()
            ),
        )),
        Err(e) => Err(Error::step(
            NAME,
            format!(
                "the token in {} no longer works ({e}); `run --force {owner}` mints a new one within the policy",
                file.display()
            ),
        )),
    }
}
