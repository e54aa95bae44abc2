//! `admin`: create the initial admin once and keep its token safe.
//!
//! Order of preference: `[admin] token` (resume with an existing site-admin
//! token); a token already in `token_file` (a crash after the file was
//! written); otherwise `POST /admin/initial-admin-user` with the IACT, and the
//! returned token is written (atomically, 0600) before the step is
//! checkpointed. The POST is never re-sent after an ambiguous failure: the
//! IACT is one-time and its answer holds the only copy of the token.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::config::Config;
use crate::config::secret::Secret;
use crate::error::Error;
use crate::fleet::Turn;
use crate::step::{Applies, Ctx, Desired, Done, Progress, Role, Schedule, Step, StepName};
use crate::tfe::{Client, TfeError};
use crate::tokens::{self, Claim, ClaimError, KeepError};
use crate::util::write_atomic;

pub const NAME: StepName = StepName::new("admin");

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

fn resume_advice(cfg: &Config) -> String {
    format!(
        "If you hold a site-admin token, set [admin] token = {{ env = \"TFE_TOKEN\" }} (or write it to {}) and rerun",
        cfg.admin.token_file.display()
    )
}

/// The steps that only a site admin's token can run (the `/api/v2/admin`
/// endpoints; the PTFE "Settings API" page, admin-settings-api.txt).
pub fn needs_site_admin(step: StepName) -> bool {
    [
        super::general::NAME,
        super::smtp::NAME,
        super::saml::NAME,
        super::twilio::NAME,
    ]
    .contains(&step)
}

/// Why `step` cannot run with a token of `role`, or nothing.
pub fn refuse_for(cfg: &Config, step: StepName, role: &Role) -> Result<(), Error> {
    match role {
        Role::Other(whose) if needs_site_admin(step) => Err(Error::step(
            step,
            format!(
                "needs a site admin's token, and the token from {} is {whose}'s. Give a site admin's token \
                 in [admin] token, or remove [{step}] (an organization owner's token runs the organization steps only)",
                token_origin(cfg)
            ),
        )),
        _ => Ok(()),
    }
}

/// Where the run's admin token comes from, for messages.
fn token_origin(cfg: &Config) -> String {
    match &cfg.admin.token {
        Some(t) => format!("[admin] token ({})", t.origin()),
        None => format!("token_file {}", cfg.admin.token_file.display()),
    }
}

/// Reads the admin token from `[admin] token` or `token_file`, checks it
/// with `GET /api/v2/account/details`, and returns an authenticated client
/// and whose token it is. A token that is not a site admin's is accepted
/// (an organization owner runs the per-organization steps with it), except
/// for a step that [`needs_site_admin`].
///
/// `rotated`: this tool rotated the admin token into `token_file` (the
/// state says so); that token is then used even when `[admin] token` is
/// given, since the given one may no longer pass the TTL policy.
pub fn load_admin_client(
    cfg: &Config,
    client: &Client,
    step: StepName,
    rotated: bool,
    progress: &dyn Progress,
) -> Result<(Client, Role), Error> {
    let given = cfg
        .admin
        .token
        .as_ref()
        .filter(|_| !(rotated && cfg.admin.token_file.exists()));
    let (token, origin) = match given {
        Some(t) => (t.clone(), format!("[admin] token ({})", t.origin())),
        None => {
            let file = &cfg.admin.token_file;
            let (text, tightened) = crate::util::read_private(file).map_err(|e| {
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    // Unsafe owner or mode, or unreadable: the environment's to fix.
                    return Error::env(step, format!("token_file {}: {e}", file.display()));
                }
                let why = if e.kind() == std::io::ErrorKind::NotFound {
                    "does not exist".to_string()
                } else {
                    format!("cannot be used: {e}")
                };
                Error::no_admin(
                    step,
                    format!(
                        "no admin token: token_file {} {why} and [admin] token is not set. {}; \
                         or `tfe-bootstrap reset --step admin` if TFE was reinstalled",
                        file.display(),
                        resume_advice(cfg)
                    ),
                )
            })?;
            if let Some(w) = tightened {
                progress.warning(Some(step), &w);
            }
            let t = text.trim();
            if t.is_empty() {
                return Err(Error::no_admin(
                    step,
                    format!(
                        "token_file {} is empty. {}",
                        file.display(),
                        resume_advice(cfg)
                    ),
                ));
            }
            (
                Secret::new(t, format!("file {}", file.display())),
                format!("token_file {}", file.display()),
            )
        }
    };
    let c = client.clone().with_token(token);
    let role = match c.account() {
        Ok(a) if a.site_admin => Role::SiteAdmin,
        // A team or organization token: TFE answers its synthetic service
        // user (account API docs, "service user").
        Ok(a) if a.service => Role::Other(format!(
            "a team or organization token (service user {:?}), not a site admin",
            a.username
        )),
        Ok(a) => Role::Other(format!("{:?}, who is not a site admin", a.username)),
        // Installs that answer a team or organization token with 404 (no
        // user) are met too: the organization read in verify-tokens is
        // what proves such a token works.
        Err(e) if e.status() == Some(404) => {
            Role::Other("a team or organization token, not a site admin".into())
        }
        Err(e) if e.status() == Some(401) => {
            let reinstall = if given.is_none() {
                format!(
                    " If TFE was reinstalled, the token belongs to the old install: `tfe-bootstrap reset --step admin` \
                     moves token_file {} aside, and the next run creates the admin with the new install's IACT",
                    cfg.admin.token_file.display()
                )
            } else {
                String::new()
            };
            return Err(Error::no_admin(
                step,
                format!(
                    "TFE refused the admin token from {origin} (401): it was revoked or has expired. {}.{reinstall}",
                    resume_advice(cfg).trim_end_matches('.')
                ),
            ));
        }
        Err(e) => {
            return Err(Error::step(
                step,
                format!("checking the admin token from {origin}: {e}"),
            ));
        }
    };
    refuse_for(cfg, step, &role)?;
    Ok((c, role))
}

/// The second place for the admin token, in the state directory: used when
/// token_file cannot be written after TFE created the admin.
pub fn rescue_path(cfg: &Config) -> PathBuf {
    cfg.state_dir.join("admin-token.rescue")
}

/// A rescued admin token waiting to be moved into token_file.
pub fn rescued(cfg: &Config) -> Option<PathBuf> {
    let p = rescue_path(cfg);
    tokens::rescued(&p).map(|_| p)
}

/// Moves a rescued token into token_file (an earlier run could not write
/// it there), so the run goes on as if it had.
fn promote_rescued(cfg: &Config, rescued: &Path, progress: &dyn Progress) -> Result<(), Error> {
    tokens::promote_rescued(rescued, &cfg.admin.token_file).map_err(|e| {
        Error::step(
            NAME,
            format!(
                "the admin token is safe in {} (0600), but it still cannot be written to token_file {}: {e}. \
                 Free space or fix permissions there, then rerun (or move the file yourself)",
                rescued.display(),
                cfg.admin.token_file.display()
            ),
        )
    })?;
    progress.warning(
        Some(NAME),
        &format!(
            "moved the admin token an earlier run rescued to {} into token_file {}",
            rescued.display(),
            cfg.admin.token_file.display()
        ),
    );
    Ok(())
}

/// Claims the space for the token before the one-time answer exists: in
/// token_file's directory, and a second claim in the state directory.
/// Either failing is an environment error: nothing has been sent.
fn claim_space(cfg: &Config) -> Result<Claim, Error> {
    let file = &cfg.admin.token_file;
    Claim::make(file, &rescue_path(cfg)).map_err(|e| match e {
        ClaimError::File(e) => Error::env(
            NAME,
            format!(
                "token_file {}: cannot set aside room for the admin token ({e}); nothing was sent. \
                 Free space in {} or fix its permissions, then rerun",
                file.display(),
                file.parent().unwrap_or(Path::new(".")).display()
            ),
        ),
        ClaimError::Rescue(e) => Error::env(
            NAME,
            format!(
                "state directory {}: cannot set aside a second place for the admin token ({e}); \
                 nothing was sent. Free space there, then rerun",
                cfg.state_dir.display()
            ),
        ),
    })
}

/// Keeps the one copy of the token ([`Claim::keep`]).
fn keep_token(cfg: &Config, username: &str, token: &str, claim: Claim) -> Result<(), Error> {
    let file = &cfg.admin.token_file;
    match claim.keep(token) {
        Ok(()) => Ok(()),
        Err(KeepError::Rescued(err, at)) => Err(Error::step(
            NAME,
            format!(
                "the admin {username:?} was created, but its token could not be written to token_file {} ({err}). \
                 It is safe in {} (0600): fix the cause, then rerun, which moves it into place",
                file.display(),
                at.display()
            ),
        )),
        Err(KeepError::Lost(err, e2)) => Err(Error::step(
            NAME,
            format!(
                "the admin {username:?} was created but its token could not be written to {} ({err}) nor to {} ({e2}). \
                 Free space or fix permissions, then create a token for {username:?} in the TFE UI and set [admin] token",
                file.display(),
                rescue_path(cfg).display()
            ),
        )),
    }
}

/// The `[store]` key of the admin token.
pub const STORE_KEY: &str = "admin-token";

/// The admin token another node published to `[store]`, if any.
pub fn published(ctx: &Ctx<'_>, step: StepName) -> Result<Option<String>, Error> {
    match ctx.fleet {
        Some(f) => f.get(STORE_KEY).map_err(|e| Error::step(step, e)),
        None => Ok(None),
    }
}

/// Takes the admin token another node published: checks that it is a site
/// admin's, writes it to token_file (0600, atomically) and uses it.
fn adopt(ctx: &mut Ctx<'_>, token: &str, step: StepName) -> Result<(), Error> {
    let token = token.trim();
    let c = ctx
        .client
        .clone()
        .with_token(Secret::new(token, "[store] admin-token"));
    match c.account() {
        Ok(a) if a.site_admin => {}
        Ok(a) => {
            return Err(Error::no_admin(
                step,
                format!(
                    "the admin token in [store] (key {STORE_KEY}) belongs to {:?}, who is not a site admin: put a site admin's token there",
                    a.username
                ),
            ));
        }
        Err(e) if e.status() == Some(401) => {
            return Err(Error::no_admin(
                step,
                format!(
                    "TFE refused the admin token in [store] (key {STORE_KEY}): it was revoked or has expired, \
                     or it is a previous install's (a store outlives a TFE reinstall). Put a working site-admin \
                     token there with `printf %s \"$TOKEN\" | {} put {STORE_KEY}` (or set [admin] token) and rerun",
                    ctx.fleet.map(|f| f.command_line()).unwrap_or_default()
                ),
            ));
        }
        Err(e) => {
            return Err(Error::step(
                step,
                format!("checking the admin token from [store]: {e}"),
            ));
        }
    }
    let file = &ctx.cfg.admin.token_file;
    write_atomic(file, format!("{token}\n").as_bytes()).map_err(|e| {
        Error::step(
            step,
            format!(
                "cannot write the admin token from [store] to token_file {}: {e}",
                file.display()
            ),
        )
    })?;
    ctx.admin = Some(c);
    Ok(())
}

/// Publishes the admin token this node holds, for the nodes waiting on it:
/// `put` when it is new (created or rotated here), `create` when it only
/// fills a gap (an earlier run could not publish), never replacing another
/// node's.
pub fn publish(ctx: &Ctx<'_>, token: &str, step: StepName, replace: bool) -> Result<(), Error> {
    let Some(f) = ctx.fleet else { return Ok(()) };
    let r = if replace {
        f.put(STORE_KEY, token.trim())
    } else {
        f.create(STORE_KEY, token.trim()).map(|_| ())
    };
    r.map_err(|e| {
        Error::step(
            step,
            format!(
                "the admin token is in token_file {}, but it could not be published to [store]: {e}. \
                 Other nodes wait for it; fix the store and rerun this node",
                ctx.cfg.admin.token_file.display()
            ),
        )
    })
}

/// After a step failed: when the admin token this run uses is refused (401,
/// for its account or its organization) and `[store]` holds another one (a node rotated it under a TTL policy),
/// takes that one. Whether it did, so the step can be tried again.
pub fn refresh_from_store(ctx: &mut Ctx<'_>) -> bool {
    let (Some(_), Some(admin)) = (ctx.fleet, ctx.admin.as_ref()) else {
        return false;
    };
    // A max-TTL policy refuses a user token only for its organization's
    // resources: with an organization, reading it is the one check.
    let refused = |r: Result<(), crate::tfe::TfeError>| r.is_err_and(|e| e.status() == Some(401));
    let dead = match &ctx.cfg.organization {
        Some(o) => refused(admin.organization(&o.name).map(|_| ())),
        None => refused(admin.account().map(|_| ())),
    };
    if !dead || !take_rotated(ctx, NAME).unwrap_or(false) {
        return false;
    }
    ctx.progress.warning(
        None,
        &format!(
            "TFE refused this node's admin token (another node rotated it under the token TTL policy): \
             took the one in [store] and wrote it to token_file {}",
            ctx.cfg.admin.token_file.display()
        ),
    );
    true
}

/// With `[store]`: when the admin token published there is not the one in
/// token_file (another node rotated it under the user TTL policy), takes
/// it (checked as a site admin's) and records the rotation as the node
/// that rotated it did: from now on token_file holds the token to use, not
/// a given `[admin] token` that the policy refuses. Whether it took one.
pub fn take_rotated(ctx: &mut Ctx<'_>, step: StepName) -> Result<bool, Error> {
    let Some(token) = published(ctx, step)? else {
        return Ok(false);
    };
    let current = crate::util::read_private(&ctx.cfg.admin.token_file)
        .map(|(t, _)| t.trim().to_string())
        .unwrap_or_default();
    if token.trim() == current {
        return Ok(false);
    }
    adopt(ctx, &token, step)?;
    // What the rotating node said of it: its expiry and id (so a renew on
    // this node can revoke it once it is replaced).
    if let Some(f) = ctx.fleet
        && let Ok(Some(c)) = super::service_token::Companion::get(f, STORE_KEY, &token)
    {
        let facts = &mut ctx.state.facts;
        facts.admin_token_minted_unix = Some(c.minted);
        facts.admin_token_expires_unix = c.expires;
        facts.admin_token_id = c.id;
        return Ok(true);
    }
    let user_ttl_ms = ctx
        .cfg
        .organization
        .as_ref()
        .and_then(|o| o.token_ttl.as_ref())
        .and_then(|p| p.iter().find(|(t, _)| *t == "user"))
        .map(|(_, ms)| *ms);
    if let (Some(ms), Some(c)) = (user_ttl_ms, ctx.admin.as_ref()) {
        ctx.state.facts.admin_token_expires_unix = Some(super::expiry_within(c, ms));
    }
    Ok(true)
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
    let held = ctx.admin_duty.take().map(Turn::Mine);
    let duty = match ctx.fleet {
        Some(fleet) => match held
            .map(Ok)
            .unwrap_or_else(|| fleet.claim(NAME.as_str()))
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
        let obtained = super::iact::obtain(ctx);
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
fn take_published(ctx: &mut Ctx<'_>, fleet: &crate::fleet::Store) -> Result<Done, Error> {
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
    let token =
        match ctx
            .client
            .create_initial_admin(iact.expose(), username, email, password.expose())
        {
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
