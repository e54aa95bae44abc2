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
use crate::util::write_atomic;

fn org_cfg<'c>(ctx: &Ctx<'c>, step: StepName) -> Result<&'c OrgConfig, Error> {
    ctx.cfg
        .organization
        .as_ref()
        .ok_or_else(|| Error::step(step, "no [organization] section"))
}

/// Reads, creates if missing; after an ambiguous create, reads again and
/// creates at most once more.
fn ensure<T>(
    mut read: impl FnMut() -> Result<Option<T>, TfeError>,
    mut create: impl FnMut() -> Result<T, TfeError>,
) -> Result<(T, bool), TfeError> {
    if let Some(v) = read()? {
        return Ok((v, false));
    }
    match create() {
        Ok(v) => Ok((v, true)),
        Err(e) if e.is_ambiguous() => match read()? {
            Some(v) => Ok((v, true)),
            None => create().map(|v| (v, true)),
        },
        Err(e) => Err(e),
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
        return Ok(Applied::applied(format!(
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
        return Ok(Applied::applied(format!(
            "organization {:?} exists; email set to {}",
            o.name, o.email
        )));
    }
    Ok(Applied::applied(format!(
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
    Ok(Applied::applied(if created {
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
    Ok(Applied::applied(match pool_id {
        Some(id) if mode == "agent" => format!("default execution mode agent, default pool {id}"),
        _ => format!("default execution mode {mode}"),
    }))
}

pub fn org_token(ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
    let step = StepName::OrgToken;
    let o = org_cfg(ctx, step)?;
    let Some(file) = &o.service_token_file else {
        return Err(Error::step(step, "no [organization.service_token] file"));
    };
    if file.exists() && !ctx.forced {
        return Ok(Applied::unchanged(format!(
            "{} exists: not regenerated (that would invalidate the token in use; --force org-token mints a new one)",
            file.display()
        )));
    }
    let client = admin_client(ctx, step)?.clone();
    // A re-sent POST only invalidates a token nobody received, so one retry is safe.
    let token = match client.create_org_token(&o.name) {
        Err(e) if e.is_ambiguous() => client.create_org_token(&o.name),
        r => r,
    }
    .map_err(|e| api_error(step, ctx, e))?;
    write_atomic(file, format!("{token}\n").as_bytes()).map_err(|e| {
        Error::step(
            step,
            format!("the organization token was minted but {} could not be written: {e}; fix it and rerun with --force org-token", file.display()),
        )
    })?;
    Ok(Applied::applied(format!(
        "organization token written to {} (0600)",
        file.display()
    )))
}

pub fn token_ttl(ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
    let step = StepName::TokenTtl;
    let o = org_cfg(ctx, step)?;
    let client = admin_client(ctx, step)?.clone();
    let mut done = vec![];
    // Policies first, enforcement second: once enforced, TFE may refuse this
    // run's own (24-month) token for the organization.
    if let (Some(true), Some(policies)) = (o.max_ttl_enabled, &o.token_ttl) {
        if let Some((_, ms)) = policies.iter().find(|(t, _)| *t == "user") {
            const TFE_DEFAULT_TOKEN_LIFETIME_MS: u64 = 2 * 365 * 86_400_000;
            if *ms < TFE_DEFAULT_TOKEN_LIFETIME_MS {
                ctx.warn(
                    step,
                    &format!(
                        "the user-token TTL ({} days) is shorter than the admin token's lifetime (TFE issues 24-month tokens): \
                         once enforced, TFE may refuse that token for organization {:?}; mint a shorter-lived admin token for later automation",
                        ms / 86_400_000,
                        o.name
                    ),
                );
            }
        }
    }
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
    Ok(Applied::applied(done.join("; ")))
}

fn human_ms(ms: u64) -> String {
    crate::config::duration::format_duration(std::time::Duration::from_millis(ms))
}
