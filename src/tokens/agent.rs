//! The agent token's lifecycle (the `agent-token` step decides when): a
//! token an earlier run rescued moved into its file, one another node
//! published taken (its id checked in the pool first), or a new one minted
//! with room claimed before the POST and the token kept or rescued after
//! it, then published to `[store]` as `agent-token-ORG` (`ID TOKEN`).

use std::path::Path;

use super::admin::client as admin_client;
use super::{Claim, ClaimError, KeepError, TokenKind};
use crate::error::Error;
use crate::state::AgentTokenRecord;
use crate::step::{Ctx, Done, api_error};
use crate::step_name::AGENT_TOKEN as NAME;
use crate::util::write_atomic;

/// Writes an agent token of `pool` to `file`: a rescued one, a published
/// one (unless `--force`), or a new one with `description`.
pub fn write(
    ctx: &mut Ctx<'_>,
    org: &str,
    pool: &str,
    file: &Path,
    description: &str,
) -> Result<Done, Error> {
    // An earlier run kept the token in the state dir only.
    let rescue = TokenKind::Agent.rescue_path(ctx.cfg);
    if let Some(v) = crate::tokens::rescued(&rescue)
        && let Some((id, _)) = v.split_once(' ')
    {
        let id = id.to_string();
        let token = v
            .split_once(' ')
            .map(|(_, t)| t.to_string())
            .unwrap_or_default();
        crate::redact::register(&token);
        write_atomic(file, format!("{token}\n").as_bytes())
            .map_err(|e| Error::step(NAME, format!("cannot write {}: {e}", file.display())))?;
        let _ = std::fs::remove_file(&rescue);
        record(ctx, file, (pool, &id, &token), true);
        publish(ctx, org, &id, &token, file)?;
        return Ok(Done::changed(format!(
            "agent token {id} that an earlier run rescued moved into {}",
            file.display()
        )));
    }
    if !ctx.forced
        && let Some(applied) = take_published(ctx, org, pool, file)?
    {
        return Ok(applied);
    }
    let client = admin_client(ctx, NAME)?.clone();
    let claim = Claim::make(file, &rescue).map_err(|e| {
        let e = match e {
            ClaimError::File(e) | ClaimError::Rescue(e) => e,
        };
        Error::env(
            NAME,
            format!("cannot set aside room for the agent token beside {} or in the state directory ({e}); nothing was sent", file.display()),
        )
    })?;
    let (id, token) = match client.create_agent_token(pool, description) {
        Ok(t) => t,
        Err(e) => {
            claim.discard();
            return Err(api_error(NAME, ctx, e));
        }
    };
    // The rescue place holds "ID TOKEN", so a rerun knows which one it is.
    if let Err(e) = claim.keep(&token) {
        return Err(match e {
            KeepError::Rescued(err, at) => {
                let _ = write_atomic(&at, format!("{id} {token}\n").as_bytes());
                Error::step(
                    NAME,
                    format!(
                        "agent token {id} was minted but {} could not be written ({err}). It is safe in {} (0600): fix the cause, then rerun",
                        file.display(),
                        at.display()
                    ),
                )
            }
            KeepError::Lost(err, _) => Error::step(
                NAME,
                format!(
                    "agent token {id} was minted but could not be written to {} ({err}); it is unused. Free space, then rerun: a pool holds many tokens",
                    file.display()
                ),
            ),
        });
    }
    record(ctx, file, (pool, &id, &token), true);
    publish(ctx, org, &id, &token, file)?;
    Ok(Done::changed(format!(
        "agent token {id} for pool {pool} written to {} (0600)",
        file.display()
    )))
}

fn record(
    ctx: &mut Ctx<'_>,
    file: &Path,
    (pool, id, token): (&str, &str, &str),
    minted_here: bool,
) {
    ctx.state.facts.agent_token = Some(AgentTokenRecord {
        path: file.to_path_buf(),
        pool_id: pool.to_string(),
        token_id: id.to_string(),
        minted_here,
        digest: Some(crate::tokens::digest(token)),
    });
}

fn publish(ctx: &Ctx<'_>, org: &str, id: &str, token: &str, file: &Path) -> Result<(), Error> {
    let Some(fleet) = ctx.fleet else {
        return Ok(());
    };
    fleet.put(&TokenKind::Agent.store_key(org), &format!("{id} {token}")).map_err(|e| {
        Error::step(NAME, format!(
            "the agent token was written to {}, but it could not be published to [store]: {e}. The other nodes wait for it: fix the store and rerun this node",
            file.display()))
    })
}

/// With `[store]`: the agent token another node minted, after checking that
/// its id is still in the pool.
fn take_published(
    ctx: &mut Ctx<'_>,
    org: &str,
    pool: &str,
    file: &Path,
) -> Result<Option<Done>, Error> {
    let Some(fleet) = ctx.fleet else {
        return Ok(None);
    };
    let key = TokenKind::Agent.store_key(org);
    let Some(v) = fleet.get(&key).map_err(|e| Error::step(NAME, e))? else {
        return Ok(None);
    };
    let Some((id, token)) = v.trim().split_once(' ') else {
        return Err(Error::step(
            NAME,
            format!(
                "[store] key {key} does not hold \"ID TOKEN\"; rerun one node with --force {NAME} to replace it"
            ),
        ));
    };
    crate::redact::register(token);
    let client = admin_client(ctx, NAME)?.clone();
    let ids = client
        .agent_token_ids(pool)
        .map_err(|e| api_error(NAME, ctx, e))?;
    if !ids.iter().any(|i| i == id) {
        return Err(Error::step(
            NAME,
            format!(
                "[store] key {key} holds agent token {id}, which pool {pool} no longer has (stale, or another TFE's); \
             it was not taken. Rerun one node with --force {NAME}: it mints a new one and replaces the key"
            ),
        ));
    }
    write_atomic(file, format!("{token}\n").as_bytes())
        .map_err(|e| Error::step(NAME, format!("cannot write {}: {e}", file.display())))?;
    let (id, pool) = (id.to_string(), pool.to_string());
    record(ctx, file, (&pool, &id, token), false);
    Ok(Some(Done::unchanged(format!(
        "another node minted agent token {id}: took it from [store] into {} (0600)",
        file.display()
    ))))
}
