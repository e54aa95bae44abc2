//! `verify-tokens`: the last step. Proves that every token this run holds or
//! wrote still authenticates under the policies the run just enforced: the
//! admin token (account details, and a read of the organization), the
//! organization token and the owners team token (a read of the
//! organization). A max-TTL policy refuses longer-lived tokens with 401, so
//! this is where a token that would be dead at the end of the run is caught,
//! with the step that fixes it named. It runs whenever any other step runs,
//! and only then: a rerun with nothing pending still sends no request.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{admin_client, api_error};
use crate::config::Config;
use crate::config::secret::Secret;
use crate::error::Error;
use crate::state::State;
use crate::step::{Applies, Ctx, Desired, Done, Schedule, Step, StepName};
use crate::tokens::{TokenKind, service};

pub const NAME: StepName = crate::step_name::VERIFY_TOKENS;

pub struct VerifyTokens;

impl Step for VerifyTokens {
    fn name(&self) -> StepName {
        NAME
    }
    fn schedule(&self) -> Schedule {
        Schedule::WithAnyOther
    }
    fn desired(&self, cfg: &Config) -> Applies {
        let o = cfg.organization.as_ref();
        Applies::Yes(Desired::plain(json!({
            "organization": o.map(|o| &o.name),
            "files": [
                cfg.admin.token_file.display().to_string(),
                o.and_then(|o| o.service_token_file.as_ref()).map(|p| p.display().to_string()),
                o.and_then(|o| o.owners_team_token_file.as_ref()).map(|p| p.display().to_string()),
                o.and_then(|o| o.agent_token.as_ref()).map(|a| a.file.display().to_string()),
            ],
        })))
    }
    fn recheck(&self, cfg: &Config, state: &State) -> Option<String> {
        recheck(cfg, state)
    }
    /// A failed check is checked again on the next run, even when nothing
    /// else is left to do: its checkpoint and the stamps go.
    fn on_failure(&self, state: &mut State) -> bool {
        if state.steps.remove(NAME.as_str()).is_none() {
            return false;
        }
        state.facts.verified.clear();
        true
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        let checked = verify(ctx)?;
        ctx.state.facts.verified = stamped(ctx.cfg, &ctx.state)
            .into_iter()
            .map(|p| (p.display().to_string(), crate::tokens::stamp(&p)))
            .collect();
        Ok(Done::changed(format!(
            "every token authenticates: {}",
            checked.join(", ")
        )))
    }
}

/// Why `verify-tokens` must run although no other step does: it failed
/// last time (its checkpoint was dropped), or a token file changed on disk
/// since it last passed.
fn recheck(cfg: &Config, state: &State) -> Option<String> {
    if state.steps.is_empty() {
        return None;
    }
    if !state.steps.contains_key(NAME.as_str()) {
        return Some("the last check did not pass".into());
    }
    stamped(cfg, state)
        .into_iter()
        .find(|p| {
            state
                .facts
                .verified
                .get(&p.display().to_string())
                .map(String::as_str)
                != Some(crate::tokens::stamp(p).as_str())
        })
        .map(|p| format!("{} changed since it was last verified", p.display()))
}

/// The files whose stamps `verify-tokens` keeps: the token files, and the
/// agent token's file (checked against the pool and the digest recorded
/// when it was written).
fn stamped(cfg: &Config, state: &State) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = token_files(cfg, state)
        .into_iter()
        .map(|(p, _, _)| p)
        .collect();
    if let Some(a) = cfg
        .organization
        .as_ref()
        .and_then(|o| o.agent_token.as_ref())
    {
        out.push(a.file.clone());
    }
    out
}

/// Every token file the config names and this run keeps: the admin
/// token_file (unless the run uses `[admin] token` unrotated), and each
/// service token file whose step applies, with the step that mints it.
fn token_files(cfg: &Config, state: &State) -> Vec<(PathBuf, StepName, Option<TokenKind>)> {
    let mut out = vec![];
    let rotated = state.facts.admin_token_expires_unix.is_some();
    if cfg.tfe.platform != crate::config::Platform::Hcp && (cfg.admin.token.is_none() || rotated) {
        out.push((cfg.admin.token_file.clone(), crate::step_name::ADMIN, None));
    }
    if let Some(o) = &cfg.organization {
        if let Some(f) = &o.service_token_file {
            out.push((f.clone(), crate::step_name::ORG_TOKEN, Some(TokenKind::Org)));
        }
        if let Some(f) = &o.owners_team_token_file {
            out.push((
                f.clone(),
                crate::step_name::TEAM_TOKEN,
                Some(TokenKind::Team),
            ));
        }
    }
    out
}

/// Checks every token from disk; re-mints a dead service token this node
/// minted itself. The names of what was checked.
fn verify(ctx: &mut Ctx<'_>) -> Result<Vec<String>, Error> {
    let admin = admin_client(ctx, NAME)?.clone();
    let files = token_files(ctx.cfg, &ctx.state);
    // The admin token as it is on disk now, not as this run remembers it.
    let (admin, origin) = match files.iter().find(|(_, _, a)| a.is_none()) {
        Some((file, _, _)) => {
            let (token, tightened) = crate::tokens::read(file).map_err(|e| {
                Error::step(
                    NAME,
                    format!(
                        "token_file {}: {e}. Put the admin token back there (or set [admin] token) and rerun",
                        file.display()
                    ),
                )
            })?;
            if let Some(w) = tightened {
                ctx.warn(NAME, &w);
            }
            let c = ctx
                .client
                .clone()
                .with_token(Secret::new(token, format!("file {}", file.display())));
            (c, format!("token_file {}", file.display()))
        }
        None => (admin, "[admin] token".to_string()),
    };
    let mut checked = vec![origin.clone()];
    let Some(o) = &ctx.cfg.organization else {
        admin.account().map_err(|e| api_error(NAME, ctx, e))?;
        return Ok(checked);
    };
    // With an organization, reading it proves the token authenticates and
    // that no max-TTL policy refuses it (a policy refuses a user token only
    // for its organization's resources); a team or organization token has
    // no account to read.
    let token = admin
        .token()
        .map(|t| t.expose().to_string())
        .unwrap_or_default();
    if !ctx.checked.contains(&token)
        && admin
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
    for (file, owner, account) in files {
        let Some(account) = account else { continue };
        if let Err(e) = check_file(ctx, &file, &o.name, owner) {
            // Another node re-minted it (under a TTL policy, or with
            // --force) and published the new one: take that.
            if service::refresh_file(ctx, account, &file, &o.name)
                && check_file(ctx, &file, &o.name, owner).is_ok()
            {
                ctx.warn(
                    NAME,
                    &format!(
                        "{} no longer worked: replaced it with the token another node published to [store]",
                        file.display()
                    ),
                );
            } else if owns(ctx, owner, &o.name) {
                // This node minted it, so nobody else holds it: the file is
                // the only copy, and it is dead. A new one replaces nothing
                // that works.
                let record = service::mint_to(ctx, owner, account, &file, &o.name)?;
                ctx.state
                    .facts
                    .token_files
                    .insert(owner.as_str().into(), record);
                check_file(ctx, &file, &o.name, owner)?;
                ctx.warn(
                    NAME,
                    &format!(
                        "{} did not hold a working token ({}); this node minted it, so it minted a new one there",
                        file.display(),
                        short(&e)
                    ),
                );
            } else {
                return Err(e);
            }
        }
        checked.push(file.display().to_string());
    }
    if let Some(a) = &o.agent_token {
        checked.push(check_agent_token(ctx, &a.file)?);
    }
    Ok(checked)
}

/// The agent token's file holds a token, and its id is still in the pool
/// (TFE never shows an agent token again, and the API does not take one as
/// a bearer token: the pool's list is what can be checked).
fn check_agent_token(ctx: &mut Ctx<'_>, file: &Path) -> Result<String, Error> {
    let owner = crate::step_name::AGENT_TOKEN;
    let (token, _) = crate::tokens::read(file).map_err(|e| {
        Error::step(
            NAME,
            format!(
                "{}: {e}; `run --force {owner}` mints a new agent token",
                file.display()
            ),
        )
    })?;
    let Some(rec) = ctx
        .state
        .facts
        .agent_token
        .clone()
        .filter(|r| r.path == file)
    else {
        // Written by hand or an older version: nothing recorded to check.
        return Ok(format!(
            "{} (not minted here: its id is unknown)",
            file.display()
        ));
    };
    if rec
        .digest
        .as_ref()
        .is_some_and(|d| *d != crate::tokens::digest(&token))
    {
        return Err(Error::step(
            NAME,
            format!(
                "{} changed since agent token {} was written there: it holds another value now (edited, \
                 restored or copied over), which this tool cannot check. Put agent token {} back, or run \
                 `run --force {owner}` to mint a new one into it",
                file.display(),
                rec.token_id,
                rec.token_id
            ),
        ));
    }
    let admin = admin_client(ctx, NAME)?.clone();
    let ids = admin
        .agent_token_ids(&rec.pool_id)
        .map_err(|e| api_error(NAME, ctx, e))?;
    if !ids.contains(&rec.token_id) {
        return Err(Error::step(
            NAME,
            format!(
                "agent token {} in {} is no longer in pool {} (revoked); `run --force {owner}` mints a new one",
                rec.token_id,
                file.display(),
                rec.pool_id
            ),
        ));
    }
    Ok(format!(
        "{} (agent token {} in pool {})",
        file.display(),
        rec.token_id,
        rec.pool_id
    ))
}

/// Whether this node minted `owner`'s token for `org` (not taken from
/// `[store]`, not copied in by hand).
fn owns(ctx: &Ctx<'_>, owner: StepName, org: &str) -> bool {
    ctx.state
        .facts
        .token_files
        .get(owner.as_str())
        .is_some_and(|r| r.minted_here && r.organization == org)
}

fn short(e: &Error) -> String {
    match e {
        Error::Step { message, .. } => message.split(';').next().unwrap_or("").to_string(),
        other => other.to_string(),
    }
}

/// Reads `org` with the token in `file` (from disk, never through a link);
/// a refusal names the file and the step that mints a replacement.
fn check_file(ctx: &Ctx<'_>, file: &Path, org: &str, owner: StepName) -> Result<(), Error> {
    let (text, tightened) = crate::tokens::read(file).map_err(|e| {
        Error::step(
            NAME,
            format!(
                "{}: {e}; `run --force {owner}` mints a new one (it invalidates the one TFE holds)",
                file.display()
            ),
        )
    })?;
    if let Some(w) = tightened {
        ctx.progress.warning(Some(NAME), &w);
    }
    if ctx.checked.contains(&text) {
        return Ok(());
    }
    let token = Secret::new(text, format!("file {}", file.display()));
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
