//! `agent-pool`: ensure the default agent pool named in `[organization]
//! default_agent_pool` exists (matched by exact name), and remember its id
//! for `org-defaults`.

use serde_json::json;

use super::{admin_client, api_error, ensure, no_org, org_cfg};
use crate::config::{Config, PoolRef};
use crate::error::Error;
use crate::step::{Applies, Ctx, Desired, Done, Step, StepName};

pub const NAME: StepName = crate::step_name::AGENT_POOL;

pub struct AgentPool;

impl Step for AgentPool {
    fn name(&self) -> StepName {
        NAME
    }
    fn desired(&self, cfg: &Config) -> Applies {
        let o = crate::need!(cfg.organization.as_ref(), no_org());
        match &o.default_agent_pool {
            Some(PoolRef::Name(n)) => {
                Applies::Yes(Desired::plain(json!({"org": o.name, "name": n})))
            }
            Some(PoolRef::Id(_)) => {
                Applies::no("default_agent_pool_id is given: nothing to create")
            }
            None => Applies::no("no default_agent_pool in [organization]"),
        }
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        let o = org_cfg(ctx.cfg, NAME)?;
        let Some(PoolRef::Name(name)) = &o.default_agent_pool else {
            return Err(Error::step(
                NAME,
                "no default_agent_pool name in [organization]",
            ));
        };
        let client = admin_client(ctx, NAME)?.clone();
        let (id, created) = ensure(
            || client.find_agent_pool(&o.name, name),
            || client.create_agent_pool(&o.name, name),
        )
        .map_err(|e| api_error(NAME, ctx, e))?;
        ctx.state.facts.agent_pool_id = Some(id.clone());
        Ok(Done::changed(if created {
            format!("created agent pool {name:?} ({id})")
        } else {
            format!("agent pool {name:?} exists ({id})")
        }))
    }
}
