//! `organization`, `agent-pool`, `org-defaults`, `org-token`, `token-ttl`.
//!
//! Creation is "ensure": read first, create when missing, and after an
//! ambiguous failure read again before trying once more, so a crash or a
//! dropped connection never makes a second organization or pool.

use serde_json::{Map, Value, json};

use super::{Applied, admin_client, api_error};
use crate::config::{OrgConfig, PoolRef};
use crate::error::Error;
use crate::machine::{Ctx, StepName};
use crate::tfe::{Client, TfeError};
use std::time::{Duration, UNIX_EPOCH};

use std::path::Path;

use crate::config::secret::Secret;
use crate::state::TokenFile;
use crate::util::{rfc3339, unix_now, write_atomic};

fn org_cfg<'c>(ctx: &Ctx<'c>, step: StepName) -> Result<&'c OrgConfig, Error> {
    ctx.cfg
        .organization
        .as_ref()
        .ok_or_else(|| Error::step(step, "no [organization] section"))
}

/// How often an ambiguous create (connection lost after sending) is
/// re-checked and retried before giving up.
const AMBIGUOUS_RETRIES: usize = 3;

/// Reads, creates if missing; after an ambiguous create, reads again before
/// trying again, so a lost answer never makes a second object.
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

pub fn ensure_org(ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
    let step = StepName::Organization;
    let o = org_cfg(ctx, step)?;
    let client = admin_client(ctx, step)?.clone();
    let (org, created) = ensure(|| client.organization(&o.name), || client.create_organization(&o.name, &o.email))
        .map_err(|e| {
            if e.status() == Some(422) {
                Error::step(step, format!("{e}; if the organization exists, this admin cannot see it: add the admin to its owners team"))
            } else {
                api_error(step, ctx, e)
            }
        })?;
    if created {
        return Ok(Applied::changed(format!(
            "created organization {:?}",
            o.name
        )));
    }
    if org.email != o.email {
        let mut attrs = Map::new();
        attrs.insert("email".into(), json!(o.email));
        client
            .patch_organization(&o.name, attrs, None)
            .map_err(|e| api_error(step, ctx, e))?;
        return Ok(Applied::changed(format!(
            "organization {:?} exists; email set to {}",
            o.name, o.email
        )));
    }
    Ok(Applied::changed(format!(
        "organization {:?} exists",
        o.name
    )))
}

fn find_or_create_pool(client: &Client, org: &str, name: &str) -> Result<(String, bool), TfeError> {
    ensure(
        || client.find_agent_pool(org, name),
        || client.create_agent_pool(org, name),
    )
}

pub fn ensure_pool(ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
    let step = StepName::AgentPool;
    let o = org_cfg(ctx, step)?;
    let Some(PoolRef::Name(name)) = &o.default_agent_pool else {
        return Err(Error::step(
            step,
            "no default_agent_pool name in [organization]",
        ));
    };
    let client = admin_client(ctx, step)?.clone();
    let (id, created) =
        find_or_create_pool(&client, &o.name, name).map_err(|e| api_error(step, ctx, e))?;
    ctx.state.facts.agent_pool_id = Some(id.clone());
    Ok(Applied::changed(if created {
        format!("created agent pool {name:?} ({id})")
    } else {
        format!("agent pool {name:?} exists ({id})")
    }))
}

pub fn defaults(ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
    let step = StepName::OrgDefaults;
    let o = org_cfg(ctx, step)?;
    let Some(mode) = &o.default_execution_mode else {
        return Err(Error::step(
            step,
            "no default_execution_mode in [organization]",
        ));
    };
    let client = admin_client(ctx, step)?.clone();
    let pool_id = match &o.default_agent_pool {
        Some(PoolRef::Id(id)) => Some(id.clone()),
        Some(PoolRef::Name(name)) => match ctx.state.facts.agent_pool_id.clone() {
            Some(id) => Some(id),
            None => Some(
                client
                    .find_agent_pool(&o.name, name)
                    .map_err(|e| api_error(step, ctx, e))?
                    .ok_or_else(|| Error::step(step, format!("agent pool {name:?} does not exist; run the agent-pool step (it is not excluded, is it?)")))?,
            ),
        },
        None => None,
    };
    let mut attrs = Map::new();
    attrs.insert("default-execution-mode".into(), json!(mode));
    let pool = if mode == "agent" {
        Some(pool_id.as_deref())
    } else {
        None
    };
    client
        .patch_organization(&o.name, attrs, pool)
        .map_err(|e| api_error(step, ctx, e))?;
    Ok(Applied::changed(match pool_id {
        Some(id) if mode == "agent" => format!("default execution mode agent, default pool {id}"),
        _ => format!("default execution mode {mode}"),
    }))
}

/// Mints a service-account token once and writes it (0600, atomically).
/// An existing file is kept unless `--force`: regenerating invalidates the
/// token in use. When the config moves the file, the token is carried over
/// instead of regenerated. After an ambiguous failure the mint is retried,
/// which only invalidates a token nobody received.
fn mint_once(
    ctx: &mut Ctx<'_>,
    step: StepName,
    file: &Path,
    org: &str,
    what: &str,
    mint: impl Fn(&crate::tfe::Client) -> Result<String, TfeError>,
) -> Result<Applied, Error> {
    let record = TokenFile {
        path: file.to_path_buf(),
        organization: org.to_string(),
    };
    let previous = ctx.state.facts.token_files.get(step.as_str()).cloned();
    if !ctx.forced {
        if file.exists() {
            if let Some(p) = previous
                .as_ref()
                .filter(|p| p.path == file && p.organization != org)
            {
                return Err(Error::step(
                    step,
                    format!(
                        "{} holds {what} of organization {:?}, not {org:?}: move it away, or rerun with --force {} to mint one for {org:?}",
                        file.display(),
                        p.organization,
                        step.as_str()
                    ),
                ));
            }
            ctx.state
                .facts
                .token_files
                .insert(step.as_str().into(), record);
            return Ok(Applied::unchanged(format!(
                "{} exists: not regenerated (that would invalidate the token in use; --force {} mints a new one)",
                file.display(),
                step.as_str()
            )));
        }
        if let Some(p) =
            previous.filter(|p| p.organization == org && p.path != file && p.path.exists())
        {
            let token = std::fs::read(&p.path).map_err(|e| {
                Error::step(
                    step,
                    format!("cannot read {} to move it: {e}", p.path.display()),
                )
            })?;
            write_atomic(file, &token)
                .map_err(|e| Error::step(step, format!("cannot write {}: {e}", file.display())))?;
            ctx.state
                .facts
                .token_files
                .insert(step.as_str().into(), record);
            return Ok(Applied::changed(format!(
                "{what} copied from {} to {} (0600), not regenerated; the old file is left in place",
                p.path.display(),
                file.display()
            )));
        }
    }
    let client = admin_client(ctx, step)?.clone();
    let mut tries = 0;
    let token = loop {
        match mint(&client) {
            Err(e) if e.is_ambiguous() && tries < AMBIGUOUS_RETRIES => tries += 1,
            r => break r.map_err(|e| api_error(step, ctx, e))?,
        }
    };
    write_atomic(file, format!("{token}\n").as_bytes()).map_err(|e| {
        Error::step(
            step,
            format!(
                "{what} was minted but {} could not be written: {e}; fix it and rerun with --force {}",
                file.display(),
                step.as_str()
            ),
        )
    })?;
    ctx.state
        .facts
        .token_files
        .insert(step.as_str().into(), record);
    Ok(Applied::changed(format!(
        "{what} written to {} (0600)",
        file.display()
    )))
}

pub fn org_token(ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
    let step = StepName::OrgToken;
    let o = org_cfg(ctx, step)?;
    let Some(file) = &o.service_token_file else {
        return Err(Error::step(step, "no [organization.service_token] file"));
    };
    let name = o.name.clone();
    mint_once(ctx, step, file, &name, "the organization token", |c| {
        c.create_org_token(&name)
    })
}

pub fn team_token(ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
    let step = StepName::TeamToken;
    let o = org_cfg(ctx, step)?;
    let Some(file) = &o.owners_team_token_file else {
        return Err(Error::step(
            step,
            "no [organization.owners_team_token] file",
        ));
    };
    let name = o.name.clone();
    mint_once(ctx, step, file, &name, "the owners team token", |c| {
        let team = c
            .find_team(&name, "owners")?
            .ok_or_else(|| TfeError::Decode {
                method: "GET",
                path: format!("/api/v2/organizations/{name}/teams"),
                detail: "the organization has no owners team".into(),
            })?;
        c.create_team_token(&team)
    })
}

/// TFE >= 2.0 issues tokens for 24 months unless told otherwise.
const TFE_DEFAULT_TOKEN_LIFETIME_MS: u64 = 2 * 365 * 86_400_000;

/// Mints a new admin token that expires within `ttl_ms` (one hour short of
/// it, or half of it when it is shorter than two hours), writes it to
/// `token_file` atomically, and switches the run to it. Returns the expiry.
fn rotate_admin_token(ctx: &mut Ctx<'_>, step: StepName, ttl_ms: u64) -> Result<String, Error> {
    let client = admin_client(ctx, step)?.clone();
    let me = client.account().map_err(|e| api_error(step, ctx, e))?;
    let margin_s = if ttl_ms > 2 * 3_600_000 {
        3600
    } else {
        ttl_ms / 2000
    };
    let expires_unix = unix_now() + ttl_ms / 1000 - margin_s;
    let expires = rfc3339(UNIX_EPOCH + Duration::from_secs(expires_unix));
    let token = client
        .create_user_token(
            &me.id,
            "tfe-bootstrap (rotated within the organization's token TTL)",
            &expires,
        )
        .map_err(|e| api_error(step, ctx, e))?;
    let file = &ctx.cfg.admin.token_file;
    write_atomic(file, format!("{token}\n").as_bytes()).map_err(|e| {
        Error::step(
            step,
            format!("a rotated admin token was minted but {} could not be written: {e}; the previous token is still in place", file.display()),
        )
    })?;
    ctx.state.facts.admin_token_expires_unix = Some(expires_unix);
    ctx.admin = Some(
        ctx.client
            .clone()
            .with_token(Secret::new(token, "rotated admin token")),
    );
    Ok(expires)
}

pub fn token_ttl(ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
    let step = StepName::TokenTtl;
    let o = org_cfg(ctx, step)?;
    let mut done = vec![];
    // Once enforced, TFE refuses tokens that live longer than the policy, this
    // run's own 24-month admin token included: rotate first when asked to.
    let user_ttl_ms = o
        .token_ttl
        .as_ref()
        .and_then(|p| p.iter().find(|(t, _)| *t == "user"))
        .map(|(_, ms)| *ms);
    if let (Some(true), Some(ttl_ms)) = (o.max_ttl_enabled, user_ttl_ms) {
        let within = |expires: u64| expires <= unix_now() + ttl_ms / 1000;
        match ctx.state.facts.admin_token_expires_unix {
            Some(exp) if within(exp) => {}
            _ if ctx.cfg.admin.rotate_token => {
                let expires = rotate_admin_token(ctx, step, ttl_ms)?;
                done.push(format!("admin token rotated in {} (expires {expires})", ctx.cfg.admin.token_file.display()));
            }
            _ if ttl_ms < TFE_DEFAULT_TOKEN_LIFETIME_MS => ctx.warn(
                step,
                &format!(
                    "the user-token TTL ({}) is shorter than the admin token's lifetime (TFE issues 24-month tokens): \
                     once enforced, TFE refuses that token for organization {:?}, so later runs that change it fail with 401. \
                     Set [admin] rotate_token = true to mint a token within the policy first",
                    human_ms(ttl_ms),
                    o.name
                ),
            ),
            _ => {}
        }
    }
    let client = admin_client(ctx, step)?.clone();
    // Policies first, enforcement second.
    if let Some(policies) = &o.token_ttl {
        client
            .patch_token_ttl_policies(&o.name, policies)
            .map_err(|e| api_error(step, ctx, e))?;
        let list: Vec<String> = policies
            .iter()
            .map(|(t, ms)| format!("{t} {}", human_ms(*ms)))
            .collect();
        done.push(format!("TTL policies: {}", list.join(", ")));
    }
    if let Some(enabled) = o.max_ttl_enabled {
        let mut attrs = Map::new();
        attrs.insert("max-ttl-enabled".into(), Value::Bool(enabled));
        client
            .patch_organization(&o.name, attrs, None)
            .map_err(|e| api_error(step, ctx, e))?;
        done.push(format!("max-ttl-enabled = {enabled}"));
    }
    Ok(Applied::changed(done.join("; ")))
}

fn human_ms(ms: u64) -> String {
    crate::config::duration::format_duration(std::time::Duration::from_millis(ms))
}
