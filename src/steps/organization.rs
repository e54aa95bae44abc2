//! `organization`: ensure the organization exists (read, create if
//! missing; after an ambiguous failure read again first, so a lost answer
//! never makes a second one) and that its e-mail and security settings
//! (`collaborator_auth_policy`, `session_timeout`, `session_remember`) are
//! the configured ones, each confirmed from TFE's answer.

use serde_json::{Map, Value, json};

use super::{admin_client, api_error, ensure, no_org, org_cfg};
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applies, Ctx, Desired, Done, Drift, LiveCtx, Step, StepName};

pub const NAME: StepName = crate::step_name::ORGANIZATION;

pub struct Organization;

impl Step for Organization {
    fn name(&self) -> StepName {
        NAME
    }
    fn desired(&self, cfg: &Config) -> Applies {
        let o = crate::need!(cfg.organization.as_ref(), no_org());
        let mut d = json!({"name": o.name, "email": o.email});
        if !o.security.is_empty() {
            d["security"] = Value::Object(o.security.clone());
        }
        Applies::Yes(Desired::plain(d))
    }
    fn live(&self, cx: &LiveCtx<'_>) -> Result<Vec<Drift>, crate::tfe::TfeError> {
        let Some(o) = &cx.cfg.organization else {
            return Ok(vec![]);
        };
        Ok(match cx.admin.organization(&o.name)? {
            None => vec![Drift::new("organization", json!(null), json!(o.name))],
            Some(live) => std::iter::once(Drift::new("email", json!(live.email), json!(o.email)))
                .chain(o.security.iter().map(|(k, want)| {
                    Drift::new(
                        k,
                        live.attributes.get(k).cloned().unwrap_or(Value::Null),
                        want.clone(),
                    )
                }))
                .collect(),
        })
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        let o = org_cfg(ctx.cfg, NAME)?;
        let client = admin_client(ctx, NAME)?.clone();
        let (org, created) = ensure(
            || client.organization(&o.name),
            || client.create_organization(&o.name, &o.email),
        )
        .map_err(|e| match e.status() {
            // The read said 404: it does not exist, or this token cannot see it.
            Some(422) => Error::step(
                NAME,
                format!(
                    "{e}; organization {:?} exists but this token cannot see it: use a token of one of its owners \
                     (or add this user to its owners team), or choose another [organization] name",
                    o.name
                ),
            ),
            Some(403 | 404) => Error::step(
                NAME,
                format!(
                    "{e}; organization {:?} does not exist (or this token cannot see it), and this token may not \
                     create organizations (a team or organization token cannot; on TFE, limit_user_organization_creation \
                     leaves it to site admins). Create it in the UI, or use an owner's user token",
                    o.name
                ),
            ),
            _ => api_error(NAME, ctx, e),
        })?;
        // What differs: the e-mail (an existing organization) and the
        // security settings (a new one has TFE's defaults).
        let mut attrs = Map::new();
        if !created && org.email != o.email {
            attrs.insert("email".into(), json!(o.email));
        }
        for (k, want) in &o.security {
            if org.attributes.get(k) != Some(want) {
                attrs.insert(k.clone(), want.clone());
            }
        }
        let what = if created {
            format!("created organization {:?}", o.name)
        } else {
            format!("organization {:?} exists", o.name)
        };
        if attrs.is_empty() {
            return Ok(Done::changed(what));
        }
        let keys: Vec<String> = attrs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        client
            .patch_organization(&o.name, attrs, None)
            .map_err(|e| api_error(NAME, ctx, e))?;
        Ok(Done::changed(format!("{what}; set {}", keys.join(", "))))
    }
}
