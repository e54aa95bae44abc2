//! `organization`: ensure the organization exists (read, create if
//! missing; after an ambiguous failure read again first, so a lost answer
//! never makes a second one) and that its e-mail is the configured one.

use serde_json::{Map, json};

use super::{admin_client, api_error, ensure, no_org, org_cfg};
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applied, Ctx, Desired, Drift, LiveCtx, Step, StepName};

pub const NAME: StepName = StepName::new("organization");

pub struct Organization;

impl Step for Organization {
    fn name(&self) -> StepName {
        NAME
    }
    fn desired(&self, cfg: &Config) -> Result<Desired, String> {
        let o = cfg.organization.as_ref().ok_or_else(no_org)?;
        Ok(Desired::plain(json!({"name": o.name, "email": o.email})))
    }
    fn live(&self, cx: &LiveCtx<'_>) -> Result<Vec<Drift>, String> {
        let Some(o) = &cx.cfg.organization else {
            return Ok(vec![]);
        };
        Ok(
            match cx.admin.organization(&o.name).map_err(|e| e.to_string())? {
                None => vec![Drift::new("organization", json!(null), json!(o.name))],
                Some(live) => vec![Drift::new("email", json!(live.email), json!(o.email))],
            },
        )
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
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
        if created {
            return Ok(Applied::changed(format!(
                "created organization {:?}",
                o.name
            )));
        }
        if org.email != o.email {
            let mut attrs = Map::new();
            attrs.insert("email".into(), json!(o.email));
            client
                .patch_organization(&o.name, attrs, None)
                .map_err(|e| api_error(NAME, ctx, e))?;
            return Ok(Applied::changed(format!(
                "organization {:?} exists; email set to {}",
                o.name, o.email
            )));
        }
        Ok(Applied::changed(format!(
            "organization {:?} exists",
            o.name
        )))
    }
}
