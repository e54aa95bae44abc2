//! `token-ttl`: the organization's per-token-type maximum TTL policies, then
//! `max-ttl-enabled`. It runs last: once enforced, TFE refuses tokens that
//! live longer than their type's policy, this run's own admin token included,
//! so the admin token is rotated first when the config asks for it.

use serde_json::{Map, Value, json};

use super::service_token::{self, ServiceAccount};
use super::{admin_client, api_error, expiry_within, human_ms, no_org, org_cfg};
use crate::config::Config;
use crate::config::secret::Secret;
use crate::error::Error;
use crate::step::{Applies, Ctx, Desired, Done, Drift, LiveCtx, Step, StepName};
use crate::tokens::{Claim, ClaimError};
use crate::util::rfc3339_unix;

pub const NAME: StepName = StepName::new("token-ttl");

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
        if rotates && super::admin::take_rotated(ctx, NAME)? {
            return Ok(Some(format!(
                "took the admin token rotated under the user TTL from [store] into {}",
                ctx.cfg.admin.token_file.display()
            )));
        }
        Ok(None)
    }
}

/// Mints a new admin token that expires within `ttl_ms` ([`expiry_within`]),
/// writes it to `token_file` atomically, and switches the run to it.
/// Returns the expiry; `None` for a team or organization token (its
/// service user has no tokens of its own to mint).
fn rotate_admin_token(ctx: &mut Ctx<'_>, ttl_ms: u64) -> Result<Option<String>, Error> {
    let client = admin_client(ctx, NAME)?.clone();
    let me = client.account().map_err(|e| api_error(NAME, ctx, e))?;
    // A service user's id is no user to mint for (account API docs).
    if me.service {
        return Ok(None);
    }
    let expires_unix = expiry_within(&client, ttl_ms);
    let expires = rfc3339_unix(expires_unix);
    let file = &ctx.cfg.admin.token_file;
    // Room for the new token before it exists; the rescue place is the
    // admin token's own. Failing here sends nothing.
    let claim = Claim::make(file, &super::admin::rescue_path(ctx.cfg)).map_err(|e| {
        let e = match e {
            ClaimError::File(e) | ClaimError::Rescue(e) => e,
        };
        Error::env(
            NAME,
            format!(
                "cannot set aside room for the rotated admin token beside {} or in the state directory ({e}); \
                 nothing was sent. Free space, then rerun",
                file.display()
            ),
        )
    })?;
    // A user may hold many tokens: the client retries a lost answer (a
    // 500, 502, 504 or a cut connection), which invalidates nothing and only
    // leaves an unused token that expires within the policy.
    let minted = match client.create_user_token(
        &me.id,
        "tfe-bootstrap (rotated within the organization's token TTL)",
        Some(&expires),
    ) {
        Ok(t) => t,
        Err(e) => {
            claim.discard();
            return Err(api_error(NAME, ctx, e));
        }
    };
    let token = minted.token;
    // The previous token still works (a user holds many).
    claim.keep_or_drop(&token).map_err(|why| {
        Error::step(
            NAME,
            format!(
                "a rotated admin token was minted but {} could not be written ({why}); the previous token is \
                 still in place and still works. Free space, then rerun: it rotates again",
                file.display()
            ),
        )
    })?;
    let described = service_token::Companion {
        minted: client.tfe_now(),
        expires: Some(expires_unix),
        id: minted.id,
    };
    // Its companion first (`admin-token-expiry`): a node that takes the
    // rotated token learns its id, so whichever node renews it later can
    // revoke it (renew's retirement needs the id).
    if let Some(f) = ctx.fleet {
        f.put(
            &service_token::companion_key(super::admin::STORE_KEY),
            &described.value(&token),
        )
        .map_err(|e| {
            Error::step(
                NAME,
                format!(
                    "the rotated admin token is in {}, but [store] did not take what describes it: {e}. \
                     Fix the store and rerun",
                    file.display()
                ),
            )
        })?;
    }
    super::admin::publish(ctx, &token, NAME, true)?;
    ctx.state.facts.admin_token_expires_unix = described.expires;
    ctx.state.facts.admin_token_minted_unix = Some(described.minted);
    ctx.state.facts.admin_token_id = described.id;
    ctx.admin = Some(
        ctx.client
            .clone()
            .with_token(Secret::new(token, "rotated admin token")),
    );
    Ok(Some(expires))
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
            _ if ctx.cfg.admin.rotate_token => match rotate_admin_token(ctx, ttl_ms)? {
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
        done.extend(service_token::refit(
            ctx,
            NAME,
            &[
                (super::org_token::NAME, ServiceAccount::Organization),
                (super::team_token::NAME, ServiceAccount::OwnersTeam),
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
