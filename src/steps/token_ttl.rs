//! `token-ttl`: the organization's per-token-type maximum TTL policies, then
//! `max-ttl-enabled`. It runs last: once enforced, TFE refuses tokens that
//! live longer than their type's policy, this run's own admin token included,
//! so the admin token is rotated first when the config asks for it.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::{admin_client, api_error, human_ms, no_org, org_cfg};
use crate::config::Config;
use crate::config::secret::Secret;
use crate::error::Error;
use crate::step::{Applied, Ctx, Desired, Drift, LiveCtx, Step, StepName};
use crate::util::{rfc3339, unix_now, write_atomic};

pub const NAME: StepName = StepName::new("token-ttl");

pub struct TokenTtl;

impl Step for TokenTtl {
    fn name(&self) -> StepName {
        NAME
    }
    fn desired(&self, cfg: &Config) -> Result<Desired, String> {
        let o = cfg.organization.as_ref().ok_or_else(no_org)?;
        if o.max_ttl_enabled.is_none() && o.token_ttl.is_none() {
            return Err("no max_ttl_enabled or [organization.token_ttl]".into());
        }
        Ok(Desired::plain(
            json!({"org": o.name, "max_ttl_enabled": o.max_ttl_enabled, "token_ttl": o.token_ttl}),
        ))
    }
    fn live(&self, cx: &LiveCtx<'_>) -> Result<Vec<Drift>, String> {
        let Some(o) = &cx.cfg.organization else {
            return Ok(vec![]);
        };
        let Some(live) = cx.admin.organization(&o.name).map_err(|e| e.to_string())? else {
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
            let policies = cx
                .admin
                .token_ttl_policies(&o.name)
                .map_err(|e| e.to_string())?;
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
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
        token_ttl(ctx)
    }
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

fn token_ttl(ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
    let step = NAME;
    let o = org_cfg(ctx.cfg, step)?;
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
