//! `token-ttl`: the organization's per-token-type maximum TTL policies, then
//! `max-ttl-enabled`. It runs last: once enforced, TFE refuses tokens that
//! live longer than their type's policy, this run's own admin token included,
//! so the admin token is rotated first when the config asks for it.

use serde_json::{Map, Value, json};

use super::{admin_client, api_error, human_ms, no_org, org_cfg};
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applies, Ctx, Desired, Done, Drift, LiveCtx, Step, StepName};
use crate::tokens::{TokenKind, service};

pub const NAME: StepName = crate::step_name::TOKEN_TTL;

pub struct TokenTtl;

impl Step for TokenTtl {
    fn name(&self) -> StepName {
        NAME
    }
    fn desired(&self, cfg: &Config) -> Applies {
        let o = crate::need!(cfg.organization.as_ref(), no_org());
        if o.max_ttl_enabled.is_none() && o.token_ttl.is_none() {
            return Applies::no("no max_ttl_enabled or [organization.token_ttl]");
        }
        Applies::Yes(Desired::plain(
            json!({"org": o.name, "max_ttl_enabled": o.max_ttl_enabled, "token_ttl": o.token_ttl}),
        ))
    }
    fn live(&self, cx: &LiveCtx<'_>) -> Result<Vec<Drift>, crate::tfe::TfeError> {
        let Some(o) = &cx.cfg.organization else {
            return Ok(vec![]);
        };
        let Some(live) = cx.admin.organization(&o.name)? else {
            return Ok(vec![Drift::new("organization", json!(null), json!(o.name))]);
        };
        let mut rows = vec![];
        if let Some(e) = o.max_ttl_enabled {
            rows.push(Drift::new(
                "max-ttl-enabled",
                json!(live.max_ttl_enabled),
                json!(e),
            ));
        }
        if let Some(p) = &o.token_ttl {
            let policies = cx.admin.token_ttl_policies(&o.name)?;
            for (t, ms) in p {
                rows.push(Drift::new(
                    format!("ttl.{t}"),
                    policies.get(*t).cloned().unwrap_or(Value::Null),
                    json!(ms),
                ));
            }
        }
        Ok(rows)
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        token_ttl(ctx)
    }
    fn requires(&self, cfg: &Config) -> Option<crate::step::Requirement> {
        let o = cfg.organization.as_ref()?;
        (o.token_ttl.is_some() || o.max_ttl_enabled.is_some()).then_some(crate::step::Requirement {
            what: "token TTL policies",
            has: crate::tfe::version::TfeVersion::has_token_ttl,
            since: "2.0.1 (the provider's tfe_org_max_token_ttl_policy requires it; the 2.0.0 release notes announce the feature)",
            keys: "[organization.token_ttl] and [organization] max_ttl_enabled",
        })
    }
    /// The node that applied it may have rotated the admin token (the
    /// policy then refuses the old one): take the rotated one.
    fn follow(&self, ctx: &mut Ctx<'_>) -> Result<Option<String>, Error> {
        let rotates = ctx.cfg.admin.rotate_token
            && ctx.cfg.organization.as_ref().is_some_and(|o| {
                o.max_ttl_enabled == Some(true)
                    && o.token_ttl
                        .as_ref()
                        .is_some_and(|p| p.iter().any(|(t, _)| *t == "user"))
            });
        if rotates && crate::tokens::admin::take_rotated(ctx, NAME)? {
            return Ok(Some(format!(
                "took the admin token rotated under the user TTL from [store] into {}",
                ctx.cfg.admin.token_file.display()
            )));
        }
        Ok(None)
    }
}

/// Order: rotate the admin token when the user policy would refuse it, set
/// the policies, re-mint service tokens the policies would refuse, and only
/// then enforce `max-ttl-enabled`: no token this run holds or wrote is ever
/// dead, not even between two requests.
fn token_ttl(ctx: &mut Ctx<'_>) -> Result<Done, Error> {
    let o = org_cfg(ctx.cfg, NAME)?;
    let mut done = vec![];
    let user_ttl_ms = o
        .token_ttl
        .as_ref()
        .and_then(|p| p.iter().find(|(t, _)| *t == "user"))
        .map(|(_, ms)| *ms);
    if let (Some(true), Some(ttl_ms)) = (o.max_ttl_enabled, user_ttl_ms) {
        let now = admin_client(ctx, NAME)?.tfe_now();
        let within = |expires: u64| expires <= now + ttl_ms / 1000;
        match ctx.state.facts.admin_token_expires_unix {
            Some(exp) if within(exp) => {}
            _ if ctx.cfg.admin.rotate_token => match crate::tokens::admin::rotate(ctx, ttl_ms)? {
                Some(expires) => done.push(format!(
                    "admin token rotated in {} (expires {expires})",
                    ctx.cfg.admin.token_file.display()
                )),
                None => done.push(
                    "the run's token is a team or organization token: the user TTL does not apply to it, not rotated"
                        .into(),
                ),
            },
            // rotate_token = false with a policy shorter than TFE's default
            // lifetime is refused by config validation; nothing to do here.
            _ => {}
        }
    }
    let client = admin_client(ctx, NAME)?.clone();
    if let Some(policies) = &o.token_ttl {
        client
            .patch_token_ttl_policies(&o.name, policies)
            .map_err(|e| match e.status() {
                // A release that does not say its version, without them.
                Some(404) => Error::env(
                    NAME,
                    format!(
                        "{e}: this TFE has no token TTL policies (2.0.1 and later): remove \
                         [organization.token_ttl] and [organization] max_ttl_enabled, or upgrade TFE"
                    ),
                ),
                _ => api_error(NAME, ctx, e),
            })?;
        let list: Vec<String> = policies
            .iter()
            .map(|(t, ms)| format!("{t} {}", human_ms(*ms)))
            .collect();
        done.push(format!("TTL policies: {}", list.join(", ")));
        done.extend(service::refit(
            ctx,
            NAME,
            &[
                (crate::step_name::ORG_TOKEN, TokenKind::Org),
                (crate::step_name::TEAM_TOKEN, TokenKind::Team),
            ],
        )?);
    }
    if let Some(enabled) = o.max_ttl_enabled {
        let mut attrs = Map::new();
        attrs.insert("max-ttl-enabled".into(), Value::Bool(enabled));
        client
            .patch_organization(&o.name, attrs, None)
            .map_err(|e| api_error(NAME, ctx, e))?;
        done.push(format!("max-ttl-enabled = {enabled}"));
    }
    Ok(Done::changed(done.join("; ")))
}
