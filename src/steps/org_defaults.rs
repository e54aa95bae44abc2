//! `org-defaults`: the organization's default execution mode and, in
//! `agent` mode, its default agent pool (the relationship form go-tfe and
//! the provider send).

use serde_json::{Map, json};

use super::{admin_client, api_error, no_org, org_cfg};
use crate::config::{Config, PoolRef};
use crate::error::Error;
use crate::step::{Applies, Ctx, Desired, Done, Drift, LiveCtx, Step, StepName};

pub const NAME: StepName = crate::step_name::ORG_DEFAULTS;

pub struct OrgDefaults;

impl Step for OrgDefaults {
    fn name(&self) -> StepName {
        NAME
    }
    fn desired(&self, cfg: &Config) -> Applies {
        let o = crate::need!(cfg.organization.as_ref(), no_org());
        let mode = crate::need!(
            o.default_execution_mode.as_ref(),
            "no default_execution_mode in [organization]"
        );
        let pool = o.default_agent_pool.as_ref().map(|p| match p {
            PoolRef::Name(n) => json!({"name": n}),
            PoolRef::Id(i) => json!({"id": i}),
        });
        Applies::Yes(Desired::plain(
            json!({"org": o.name, "mode": mode, "pool": pool}),
        ))
    }
    fn live(&self, cx: &LiveCtx<'_>) -> Result<Vec<Drift>, crate::tfe::TfeError> {
        let Some(o) = &cx.cfg.organization else {
            return Ok(vec![]);
        };
        let Some(mode) = &o.default_execution_mode else {
            return Ok(vec![]);
        };
        let Some(live) = cx.admin.organization(&o.name)? else {
            return Ok(vec![Drift::new("organization", json!(null), json!(o.name))]);
        };
        let mut rows = vec![Drift::new(
            "default-execution-mode",
            json!(live.default_execution_mode),
            json!(mode),
        )];
        if mode == "agent" {
            let want = match &o.default_agent_pool {
                Some(PoolRef::Id(id)) => Some(id.as_str()),
                _ => cx.state.facts.agent_pool_id.as_deref(),
            };
            rows.push(Drift::new(
                "default-agent-pool",
                json!(live.default_agent_pool_id),
                json!(want),
            ));
        }
        Ok(rows)
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        let o = org_cfg(ctx.cfg, NAME)?;
        let Some(mode) = &o.default_execution_mode else {
            return Err(Error::step(
                NAME,
                "no default_execution_mode in [organization]",
            ));
        };
        let client = admin_client(ctx, NAME)?.clone();
        let pool_id = match &o.default_agent_pool {
            Some(PoolRef::Id(id)) => Some(id.clone()),
            Some(PoolRef::Name(name)) => match ctx.state.facts.agent_pool_id.clone() {
                Some(id) => Some(id),
                None => Some(
                    client
                        .find_agent_pool(&o.name, name)
                        .map_err(|e| api_error(NAME, ctx, e))?
                        .ok_or_else(|| Error::step(NAME, format!("agent pool {name:?} does not exist; run the agent-pool step (it is not excluded, is it?)")))?,
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
            .map_err(|e| api_error(NAME, ctx, e))?;
        Ok(Done::changed(match pool_id {
            Some(id) if mode == "agent" => {
                format!("default execution mode agent, default pool {id}")
            }
            _ => format!("default execution mode {mode}"),
        }))
    }
}
