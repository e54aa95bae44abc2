//! `agent-token`: an agent token for the default agent pool, so agents can
//! join as soon as the run ends (with `default_execution_mode = "agent"`,
//! every run waits for one). Minted once through the token lifecycle
//! ([`crate::tokens`]: room claimed before the POST, kept or rescued after
//! it) and written to `[organization.agent_token] file` (0600); with
//! `[store]`, published as `agent-token-ORG` (`ID TOKEN`) so one node
//! mints for the whole fleet. A pool holds many tokens (API docs "Agent
//! Tokens"), so a mint never invalidates another; `verify-tokens` checks
//! that the token's id is still in the pool.

use serde_json::json;

use super::{admin_client, api_error, no_org, org_cfg};
use crate::config::{Config, PoolRef};
use crate::error::Error;
use crate::step::{Applies, Ctx, Desired, Done, Step, StepName};

pub const NAME: StepName = crate::step_name::AGENT_TOKEN;

pub struct AgentToken;

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
        crate::tokens::agent::write(ctx, &org, &pool, file, &a.description)
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
