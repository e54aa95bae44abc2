//! `admin`: create the initial admin once and keep its token safe.
//!
//! Order of preference: `[admin] token` (resume with an existing site-admin
//! token); a token already in `token_file` (a crash after the file was
//! written); otherwise `POST /admin/initial-admin-user` with the IACT, and the
//! returned token is written (atomically, 0600) before the step is
//! checkpointed. The POST is never re-sent after an ambiguous failure: the
//! IACT is one-time and its answer holds the only copy of the token.

use serde_json::json;

use crate::config::Config;
use crate::config::secret::Secret;
use crate::error::Error;
use crate::step::{Applies, Ctx, Desired, Done, Role, Schedule, Step, StepName};
use crate::store::Turn;
use crate::tfe::TfeError;
use crate::tokens::admin::{
    STORE_KEY, adopt, claim_space, keep_token, load_admin_client, promote_rescued, publish,
    published, rescued, resume_advice, token_origin,
};

pub const NAME: StepName = crate::step_name::ADMIN;

pub struct Admin;

impl Step for Admin {
    fn name(&self) -> StepName {
        NAME
    }
    /// The password only while the admin is still to be created (no token
    /// given, none saved or rescued); a given token always.
    fn secret_keys(&self, cfg: &Config) -> Vec<&'static str> {
        if cfg.admin.token.is_some() || cfg.admin.token_file.exists() || rescued(cfg).is_some() {
            return vec![];
        }
        vec!["[admin] token", "[admin] password"]
    }
    /// An admin is created once; a later `[admin]` change cannot re-create it.
    fn schedule(&self) -> Schedule {
        Schedule::Once
    }
    fn desired(&self, cfg: &Config) -> Applies {
        if cfg.tfe.platform == crate::config::Platform::Hcp {
            return Applies::no(
                "not on HCP Terraform (no site admin there): [admin] token is checked by the first step that uses it",
            );
        }
        Applies::Yes(match &cfg.admin.token {
            Some(t) => Desired {
                value: json!({"token": "given"}),
                secrets: vec![t.clone()],
            },
            None => Desired {
                value: json!({"username": cfg.admin.username, "email": cfg.admin.email,
                              "token_file": cfg.admin.token_file.display().to_string()}),
                secrets: cfg.admin.password.iter().cloned().collect(),
            },
        })
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        run(ctx)
    }
}

fn run(ctx: &mut Ctx<'_>) -> Result<Done, Error> {
    let cfg = ctx.cfg;
    let step = NAME;
    if cfg.admin.token.is_none()
        && !cfg.admin.token_file.exists()
        && let Some(r) = rescued(cfg)
    {
        promote_rescued(cfg, &r, ctx.progress)?;
    }
    if cfg.admin.token.is_some() || cfg.admin.token_file.exists() {
        let rotated = ctx.state.facts.admin_token_expires_unix.is_some();
        let (c, role) = load_admin_client(cfg, &ctx.client, step, rotated, ctx.progress)?;
        ctx.admin = Some(c);
        let how = if let Role::Other(whose) = &role {
            ctx.admin_role = Some(role.clone());
            format!(
                "using the token from {}: {whose}, so only the organization steps can run",
                token_origin(cfg)
            )
        } else if cfg.admin.token.is_some() {
            "using the site-admin token from [admin] token".to_string()
        } else {
            // A crash between writing token_file and publishing: fill the gap.
            if ctx.fleet.is_some()
                && let Ok((t, _)) = crate::util::read_private(&cfg.admin.token_file)
            {
                publish(ctx, &t, step, false)?;
            }
            format!(
                "using the admin token already saved in {}",
                cfg.admin.token_file.display()
            )
        };
        return Ok(Done::unchanged(how));
    }
    if let Some(t) = published(ctx, step)? {
        adopt(ctx, &t, step)?;
        return Ok(Done::unchanged(format!(
            "another node created the admin: took its token from [store] into {} (0600)",
            cfg.admin.token_file.display()
        )));
    }
    let (Some(username), Some(email), Some(password)) =
        (&cfg.admin.username, &cfg.admin.email, &cfg.admin.password)
    else {
        return Err(Error::step(
            step,
            "[admin] username, email and password are required to create the admin",
        ));
    };
    // With a store, one node sends the one-time POST; the others wait for
    // the token it publishes.
    // The iact step may have taken the duty already: the store handle
    // holds it, and the claim returns it.
    let duty = match ctx.fleet {
        Some(fleet) => match fleet
            .claim(NAME.as_str())
            .map_err(|e| Error::step(step, e))?
        {
            Turn::Done => return take_published(ctx, fleet),
            Turn::Mine(k) | Turn::TakenOver(k) => Some((fleet, k)),
        },
        None => None,
    };
    // The iact step leaves it to this node when another node held the
    // duty then: this node creates the admin now, so it needs it.
    if ctx.iact.is_none() && duty.is_some() {
        let obtained = super::iact_source::obtain(ctx);
        if let Err(e) = obtained {
            if let Some((fleet, key)) = &duty {
                let _ = fleet.finish(key, false);
            }
            return Err(e);
        }
    }
    let Some(iact) = ctx.iact.clone() else {
        if let Some((fleet, key)) = &duty {
            let _ = fleet.finish(key, false);
        }
        return Err(Error::no_admin(
            step,
            format!("no IACT was obtained in this run. {}", resume_advice(cfg)),
        ));
    };
    let created = create(ctx, &iact, (username, email, password));
    if let Some((fleet, key)) = duty {
        fleet
            .finish(&key, created.is_ok())
            .map_err(|e| Error::step(step, e))?;
    }
    created
}

/// Waits for the admin token the node that created the admin publishes.
fn take_published(ctx: &mut Ctx<'_>, fleet: &crate::store::Store) -> Result<Done, Error> {
    let cfg = ctx.cfg;
    match fleet
        .wait_for(STORE_KEY, fleet.wait)
        .map_err(|e| Error::step(NAME, e))?
    {
        Some(t) => {
            adopt(ctx, &t, NAME)?;
            Ok(Done::unchanged(format!(
                "another node created the admin: took its token from [store] into {} (0600)",
                cfg.admin.token_file.display()
            )))
        }
        None => Err(Error::no_admin(
            NAME,
            format!(
                "TFE already has users, and no node published the admin token to [store] (key {STORE_KEY}) \
                 within [store] wait ({}). If the node that created the admin is gone, take the token from \
                 its token_file (or create one in the TFE UI) and `put {STORE_KEY}` it with the store helper, \
                 or set [admin] token; then rerun",
                crate::config::duration::format_duration(fleet.wait)
            ),
        )),
    }
}

/// The one-time POST, and keeping its token.
fn create(
    ctx: &mut Ctx<'_>,
    iact: &Secret,
    (username, email, password): (&String, &String, &Secret),
) -> Result<Done, Error> {
    let cfg = ctx.cfg;
    let step = NAME;
    let claims = claim_space(cfg)?;
    let post = |ctx: &Ctx<'_>| {
        ctx.client
            .create_initial_admin(iact.expose(), username, email, password.expose())
    };
    let token = match post(ctx) {
        Ok(t) => Ok(t),
        // A 500 (TFE failed, or a load balancer in front of it) or a lost
        // answer. TFE creates the initial admin only while it has no user
        // ("This token can only be used to create the admin user when there
        // are no users configured": the initial-admin-user API page, source
        // document initial-admin-user-api.txt; a 404 otherwise), so one
        // re-send with the same IACT either creates it or is refused: it
        // never makes a second admin. Not after a timeout: that POST may
        // still be on its way through TFE, and would race the re-send. (A
        // dropped connection could hide one still in flight too; that TFE's
        // "no users yet" check holds against two at once is unconfirmed.)
        Err(first)
            if first.status() == Some(500) || (first.is_ambiguous() && !first.timed_out()) =>
        {
            ctx.warn(
                step,
                &format!("the initial-admin POST failed ({first}): sent it once more, which TFE refuses if the first one created the admin"),
            );
            post(ctx).map_err(|e| match e.status() {
                Some(404) => TfeError::Status {
                    method: crate::tfe::Method::Post,
                    path: "/admin/initial-admin-user".into(),
                    status: 404,
                    detail: format!(
                        "the re-send was refused after the first POST failed ({first}): the first one may have \
                         created the admin, whose token then never arrived"
                    ),
                    ambiguous: false,
                },
                _ => e,
            })
        }
        Err(e) => Err(e),
    };
    let token = match token {
        Ok(t) => t,
        Err(e) => {
            claims.discard();
            if e.status() == Some(404)
                && let Some(fleet) = ctx.fleet
            {
                // Another node won the one-time creation (one that did not
                // take the duty: an older version, a hand run).
                return take_published(ctx, fleet);
            }
            return Err(post_error(cfg, e));
        }
    };
    // The only copy of the token: keep it before anything else, then tell
    // the other nodes.
    keep_token(cfg, username, &token, claims)?;
    publish(ctx, &token, step, true)?;
    ctx.state.facts.admin_username = Some(username.clone());
    ctx.new_install = true;
    ctx.admin = Some(
        ctx.client
            .clone()
            .with_token(Secret::new(token, "initial-admin-user")),
    );
    ctx.iact = None;
    Ok(Done::changed(format!(
        "created site admin {username:?}; token saved to {} (0600)",
        cfg.admin.token_file.display()
    )))
}

/// What a failed initial-admin POST means, and what to do.
fn post_error(cfg: &Config, e: TfeError) -> Error {
    match e {
        e if e.status() == Some(404) => Error::no_admin(
            NAME,
            format!(
                "TFE refused to create the initial admin ({e}): it already has users, or the IACT is not this install's. {}. \
                 When several nodes run this config, add a [store] (see README, \"Many nodes\"): the node that creates \
                 the admin then hands its token to the others",
                resume_advice(cfg)
            ),
        ),
        e @ TfeError::Status { status: 422, .. } => Error::step(
            NAME,
            format!("{e}; check [admin] username, email and password"),
        ),
        e if e.is_ambiguous() => Error::step(
            NAME,
            format!(
                "{e}. It is not re-sent, because the IACT is one-time and only its answer carries the admin token. \
                 Rerun: if TFE did not create the admin, the rerun creates it; if it did, TFE answers 404 and \
                 you will need [admin] token"
            ),
        ),
        e => Error::step(NAME, e.to_string()),
    }
}
