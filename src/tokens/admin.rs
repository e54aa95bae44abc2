//! The admin token's lifecycle: where the run's site-admin token comes
//! from (`[admin] token`, `token_file`, a rescue, the `[store]`), how it is
//! checked ([`load_admin_client`]), claimed and kept before the one-time
//! answer exists (`claim_space`, `keep_token`), published to the other
//! nodes and adopted from them (checked as a site admin's first), and
//! refreshed when another node rotated it under a TTL policy
//! ([`refresh_from_store`]). The site-admin client of a run is
//! [`client`]: loaded and checked on first use.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::config::secret::Secret;
use crate::error::Error;
use crate::step::{Ctx, Progress, Role, StepName, api_error};
use crate::step_name::{ADMIN, TOKEN_TTL};
use crate::tfe::Client;
use crate::util::{rfc3339_unix, write_atomic};

use super::{Claim, ClaimError, KeepError};

/// The site-admin client, loading and checking the token on first use.
pub fn client<'c>(ctx: &'c mut Ctx<'_>, step: StepName) -> Result<&'c Client, Error> {
    if ctx.admin.is_none() {
        let rotated = ctx.state.facts.admin_token_expires_unix.is_some();
        let (c, role) = load_admin_client(ctx.cfg, &ctx.client, step, rotated, ctx.progress)?;
        ctx.admin = Some(c);
        ctx.admin_role = Some(role);
    }
    ctx.admin
        .as_ref()
        .ok_or_else(|| Error::step(step, "internal: admin client missing"))
}

/// Before a step that only a site admin can run: the run's token, loaded
/// if need be, must be a site admin's.
pub fn require_site_admin(ctx: &mut Ctx<'_>, step: StepName) -> Result<(), Error> {
    client(ctx, step)?;
    match &ctx.admin_role {
        Some(role) => refuse_unless_site_admin(ctx.cfg, step, role),
        None => Ok(()),
    }
}

pub(crate) fn resume_advice(cfg: &Config) -> String {
    format!(
        "If you hold a site-admin token, set [admin] token = {{ env = \"TFE_TOKEN\" }} (or write it to {}) and rerun",
        cfg.admin.token_file.display()
    )
}

/// Refuses `step`, which only a site admin's token can run
/// ([`crate::step::Step::needs_site_admin`]), when the run's token is
/// someone else's.
pub fn refuse_unless_site_admin(cfg: &Config, step: StepName, role: &Role) -> Result<(), Error> {
    match role {
        Role::Other(whose) => Err(Error::step(
            step,
            format!(
                "needs a site admin's token, and the token from {} is {whose}'s. Give a site admin's token \
                 in [admin] token, or remove [{step}] (an organization owner's token runs the organization steps only)",
                token_origin(cfg)
            ),
        )),
        Role::SiteAdmin => Ok(()),
    }
}

/// Where the run's admin token comes from, for messages.
pub(crate) fn token_origin(cfg: &Config) -> String {
    match &cfg.admin.token {
        Some(t) => format!("[admin] token ({})", t.origin()),
        None => format!("token_file {}", cfg.admin.token_file.display()),
    }
}

/// Reads the admin token from `[admin] token` or `token_file`, checks it
/// with `GET /api/v2/account/details`, and returns an authenticated client
/// and whose token it is. A token that is not a site admin's is accepted
/// (an organization owner runs the per-organization steps with it); a step
/// that needs a site admin refuses it ([`refuse_unless_site_admin`]).
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
    super::rescued(&p).map(|_| p)
}

/// Moves a rescued token into token_file (an earlier run could not write
/// it there), so the run goes on as if it had.
pub(crate) fn promote_rescued(
    cfg: &Config,
    rescued: &Path,
    progress: &dyn Progress,
) -> Result<(), Error> {
    super::promote_rescued(rescued, &cfg.admin.token_file).map_err(|e| {
        Error::step(
            ADMIN,
            format!(
                "the admin token is safe in {} (0600), but it still cannot be written to token_file {}: {e}. \
                 Free space or fix permissions there, then rerun (or move the file yourself)",
                rescued.display(),
                cfg.admin.token_file.display()
            ),
        )
    })?;
    progress.warning(
        Some(ADMIN),
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
pub(crate) fn claim_space(cfg: &Config) -> Result<Claim, Error> {
    let file = &cfg.admin.token_file;
    Claim::make(file, &rescue_path(cfg)).map_err(|e| match e {
        ClaimError::File(e) => Error::env(
            ADMIN,
            format!(
                "token_file {}: cannot set aside room for the admin token ({e}); nothing was sent. \
                 Free space in {} or fix its permissions, then rerun",
                file.display(),
                file.parent().unwrap_or(Path::new(".")).display()
            ),
        ),
        ClaimError::Rescue(e) => Error::env(
            ADMIN,
            format!(
                "state directory {}: cannot set aside a second place for the admin token ({e}); \
                 nothing was sent. Free space there, then rerun",
                cfg.state_dir.display()
            ),
        ),
    })
}

/// Keeps the one copy of the token ([`Claim::keep`]).
pub(crate) fn keep_token(
    cfg: &Config,
    username: &str,
    token: &str,
    claim: Claim,
) -> Result<(), Error> {
    let file = &cfg.admin.token_file;
    match claim.keep(token) {
        Ok(()) => Ok(()),
        Err(KeepError::Rescued(err, at)) => Err(Error::step(
            ADMIN,
            format!(
                "the admin {username:?} was created, but its token could not be written to token_file {} ({err}). \
                 It is safe in {} (0600): fix the cause, then rerun, which moves it into place",
                file.display(),
                at.display()
            ),
        )),
        Err(KeepError::Lost(err, e2)) => Err(Error::step(
            ADMIN,
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
pub(crate) fn adopt(ctx: &mut Ctx<'_>, token: &str, step: StepName) -> Result<(), Error> {
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
    if !dead || !take_rotated(ctx, ADMIN).unwrap_or(false) {
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
        && let Ok(Some(c)) = super::companion::Companion::get(f, STORE_KEY, &token)
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

/// `token-ttl`: rotates the admin token into token_file within the user
/// TTL policy: a new user token that expires within `ttl_ms`
/// ([`super::expiry_within`]; the previous one still works, a user holds
/// many), written atomically, published with its companion first, and
/// used by the run from then on. Returns the expiry; `None` for a team or
/// organization token (its service user has no tokens of its own to mint).
pub fn rotate(ctx: &mut Ctx<'_>, ttl_ms: u64) -> Result<Option<String>, Error> {
    let client = client(ctx, TOKEN_TTL)?.clone();
    let me = client.account().map_err(|e| api_error(TOKEN_TTL, ctx, e))?;
    // A service user's id is no user to mint for (account API docs).
    if me.service {
        return Ok(None);
    }
    let expires_unix = super::expiry_within(&client, ttl_ms);
    let expires = rfc3339_unix(expires_unix);
    let file = ctx.cfg.admin.token_file.clone();
    let minted = mint_user_token(
        ctx,
        TOKEN_TTL,
        &client,
        &me.id,
        "tfe-bootstrap (rotated within the organization's token TTL)",
        Some(expires_unix),
    )?;
    let token = minted.token;
    let described = super::companion::Companion {
        minted: client.tfe_now(),
        expires: Some(expires_unix),
        id: minted.id,
    };
    // Its companion first (`admin-token-expiry`): a node that takes the
    // rotated token learns its id, so whichever node renews it later can
    // revoke it (renew's retirement needs the id).
    if let Some(f) = ctx.fleet {
        f.put(
            &super::companion::companion_key(STORE_KEY),
            &described.value(&token),
        )
        .map_err(|e| {
            Error::step(
                TOKEN_TTL,
                format!(
                    "the rotated admin token is in {}, but [store] did not take what describes it: {e}. \
                     Fix the store and rerun",
                    file.display()
                ),
            )
        })?;
    }
    publish(ctx, &token, TOKEN_TTL, true)?;
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

/// `reset --step admin` (TFE was reinstalled): moves the saved admin token
/// aside to `<token_file>.stale-<unix time>`, never deleting it, so the
/// next run creates the admin with the new install's IACT. `None`: there
/// is none to move (or the run uses `[admin] token`).
pub fn set_aside(cfg: &Config) -> Result<Option<PathBuf>, Error> {
    if cfg.admin.token.is_some() || std::fs::symlink_metadata(&cfg.admin.token_file).is_err() {
        return Ok(None);
    }
    let stale = cfg.admin.token_file.with_file_name(format!(
        "{}.stale-{}",
        cfg.admin
            .token_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "admin-token".into()),
        crate::util::unix_now()
    ));
    std::fs::rename(&cfg.admin.token_file, &stale).map_err(|e| {
        Error::Usage(format!(
            "the checkpoints were reset, but token_file {} could not be moved aside to {}: {e}. \
             Move it yourself, or the next run keeps using it",
            cfg.admin.token_file.display(),
            stale.display()
        ))
    })?;
    Ok(Some(stale))
}

/// Mints a new user token for the admin (`user_id`) into token_file: room
/// claimed beside it and at its rescue place first (failing there sends
/// nothing), then the token kept over the file atomically. The previous
/// token still works (a user holds many), so a file that cannot be written
/// keeps it and the new one is dropped; the client retries a lost answer,
/// which only leaves an unused token that expires within the policy. The
/// one mint of a user token: `token-ttl`'s rotation and `renew`.
pub fn mint_user_token(
    ctx: &Ctx<'_>,
    step: StepName,
    client: &Client,
    user_id: &str,
    description: &str,
    expires_unix: Option<u64>,
) -> Result<crate::tfe::api::Minted, Error> {
    let file = &ctx.cfg.admin.token_file;
    let claim = Claim::make(file, &rescue_path(ctx.cfg)).map_err(|e| {
        let e = match e {
            ClaimError::File(e) | ClaimError::Rescue(e) => e,
        };
        Error::env(
            step,
            format!(
                "cannot set aside room for a new admin token beside {} or in the state directory {} ({e}); \
                 nothing was sent. Free space or fix permissions there, then rerun",
                file.display(),
                ctx.cfg.state_dir.display()
            ),
        )
    })?;
    let expires = expires_unix.map(rfc3339_unix);
    let minted = match client.create_user_token(user_id, description, expires.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            claim.discard();
            return Err(api_error(step, ctx, e));
        }
    };
    claim.keep_or_drop(&minted.token).map_err(|why| {
        Error::step(
            step,
            format!(
                "a new admin token was minted but {} could not be written ({why}); the previous token is \
                 still in place and still works. Free space, then rerun",
                file.display()
            ),
        )
    })?;
    Ok(minted)
}
