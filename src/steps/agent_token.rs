//! `agent-token`: an agent token for the default agent pool, so agents can
//! join as soon as the run ends (with `default_execution_mode = "agent"`,
//! every run waits for one). Minted once through the token lifecycle
//! ([`crate::tokens`]: room claimed before the POST, kept or rescued after
//! it) and written to `[organization.agent_token] file` (0600); with
//! `[store]`, published as `agent-token-ORG` (`ID TOKEN`) so one node
//! mints for the whole fleet. A pool holds many tokens (API docs "Agent
//! Tokens"), so a mint never invalidates another; `verify-tokens` checks
//! that the token's id is still in the pool.

use std::path::Path;

use serde_json::json;

use super::service_token::store_escape;
use super::{admin_client, api_error, no_org, org_cfg};
use crate::config::{Config, PoolRef};
use crate::error::Error;
use crate::state::AgentTokenRecord;
use crate::step::{Applies, Ctx, Desired, Done, Step, StepName};
use crate::tokens::{Claim, ClaimError, KeepError};

pub const NAME: StepName = StepName::new("agent-token");

pub struct AgentToken;

/// Its `[store]` key (ORG escaped as the service tokens' keys are).
pub fn store_key(org: &str) -> String {
    format!("agent-token-{}", store_escape(org))
}

impl Step for AgentToken {
    fn name(&self) -> StepName {
        NAME
    }
    fn desired(&self, cfg: &Config) -> Applies {
        let o = crate::need!(cfg.organization.as_ref(), no_org());
        let a = crate::need!(o.agent_token.as_ref(), "no [organization.agent_token]");
        let pool = match &o.default_agent_pool {
            Some(PoolRef::Name(n)) => json!({"name": n}),
            Some(PoolRef::Id(i)) => json!({"id": i}),
            None => return Applies::no("no agent pool in [organization]"),
        };
        Applies::Yes(Desired::plain(json!({"org": o.name, "pool": pool,
            "description": a.description, "file": a.file.display().to_string()})))
    }
    fn writes_node_files(&self) -> bool {
        true
    }
    /// Every node writes its own file; the token is the same.
    fn shared(&self, cfg: &Config) -> Applies {
        let mut d = crate::need!(self.desired(cfg).wanted(), "no [organization.agent_token]");
        if let Some(m) = d.value.as_object_mut() {
            m.remove("file");
        }
        Applies::Yes(d)
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        let o = org_cfg(ctx.cfg, NAME)?;
        let Some(a) = o.agent_token.clone() else {
            return Err(Error::step(NAME, "no [organization.agent_token]"));
        };
        let org = o.name.clone();
        let pool = pool_id(ctx)?;
        let file = a.file.as_path();
        if !ctx.forced && file.exists() {
            let record = ctx
                .state
                .facts
                .agent_token
                .clone()
                .filter(|r| r.path == file);
            return Ok(Done::unchanged(match record {
                Some(r) => format!(
                    "{} holds agent token {} (not minted again)",
                    file.display(),
                    r.token_id
                ),
                None => format!(
                    "{} exists: not minted again (a pool holds many tokens; --force {NAME} mints another)",
                    file.display()
                ),
            }));
        }
        // An earlier run kept the token in the state dir only.
        let rescue = ctx.cfg.state_dir.join(format!("{NAME}.rescue"));
        if let Some(v) = crate::tokens::rescued(&rescue)
            && let Some((id, _)) = v.split_once(' ')
        {
            let id = id.to_string();
            let token = v
                .split_once(' ')
                .map(|(_, t)| t.to_string())
                .unwrap_or_default();
            crate::redact::register(&token);
            crate::util::write_atomic(file, format!("{token}\n").as_bytes())
                .map_err(|e| Error::step(NAME, format!("cannot write {}: {e}", file.display())))?;
            let _ = std::fs::remove_file(&rescue);
            record(ctx, file, (&pool, &id, &token), true);
            publish(ctx, &org, &id, &token, file)?;
            return Ok(Done::changed(format!(
                "agent token {id} that an earlier run rescued moved into {}",
                file.display()
            )));
        }
        if !ctx.forced
            && let Some(applied) = take_published(ctx, &org, &pool, file)?
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
        let (id, token) = match client.create_agent_token(&pool, &a.description) {
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
                    let _ = crate::util::write_atomic(&at, format!("{id} {token}\n").as_bytes());
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
        record(ctx, file, (&pool, &id, &token), true);
        publish(ctx, &org, &id, &token, file)?;
        Ok(Done::changed(format!(
            "agent token {id} for pool {pool} written to {} (0600)",
            file.display()
        )))
    }
}

/// The default pool's id: the one `agent-pool` found or made, the
/// configured id, or a lookup by name.
fn pool_id(ctx: &mut Ctx<'_>) -> Result<String, Error> {
    let o = org_cfg(ctx.cfg, NAME)?;
    match &o.default_agent_pool {
        Some(PoolRef::Id(i)) => Ok(i.clone()),
        Some(PoolRef::Name(n)) => {
            if let Some(id) = ctx.state.facts.agent_pool_id.clone() {
                return Ok(id);
            }
            let (org, n) = (o.name.clone(), n.clone());
            let client = admin_client(ctx, NAME)?.clone();
            client
                .find_agent_pool(&org, &n)
                .map_err(|e| api_error(NAME, ctx, e))?
                .ok_or_else(|| Error::step(NAME, format!("agent pool {n:?} does not exist in {org:?}; the agent-pool step creates it")))
        }
        None => Err(Error::step(NAME, "no agent pool in [organization]")),
    }
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
    fleet.put(&store_key(org), &format!("{id} {token}")).map_err(|e| {
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
    let key = store_key(org);
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
    crate::util::write_atomic(file, format!("{token}\n").as_bytes())
        .map_err(|e| Error::step(NAME, format!("cannot write {}: {e}", file.display())))?;
    let (id, pool) = (id.to_string(), pool.to_string());
    record(ctx, file, (&pool, &id, token), false);
    Ok(Some(Done::unchanged(format!(
        "another node minted agent token {id}: took it from [store] into {} (0600)",
        file.display()
    ))))
}
