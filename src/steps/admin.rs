//! `admin`: create the initial admin once and keep its token safe.
//!
//! Order of preference: `[admin] token` (resume with an existing site-admin
//! token); a token already in `token_file` (a crash after the file was
//! written); otherwise `POST /admin/initial-admin-user` with the IACT, and the
//! returned token is written (atomically, 0600) before the step is
//! checkpointed. The POST is never re-sent after an ambiguous failure: the
//! IACT is one-time and its answer holds the only copy of the token.

use std::path::Path;

use serde_json::json;

use crate::config::Config;
use crate::config::secret::Secret;
use crate::error::Error;
use crate::step::{Applied, Ctx, Desired, Schedule, Step, StepName};
use crate::tfe::{Client, TfeError};
use crate::util::{ensure_private_dir, write_atomic};

pub const NAME: StepName = StepName::new("admin");

pub struct Admin;

impl Step for Admin {
    fn name(&self) -> StepName {
        NAME
    }
    /// An admin is created once; a later `[admin]` change cannot re-create it.
    fn schedule(&self) -> Schedule {
        Schedule::Once
    }
    fn desired(&self, cfg: &Config) -> Result<Desired, String> {
        Ok(match &cfg.admin.token {
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
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
        run(ctx)
    }
}

fn resume_advice(cfg: &Config) -> String {
    format!(
        "If you hold a site-admin token, set [admin] token = {{ env = \"TFE_TOKEN\" }} (or write it to {}) and rerun",
        cfg.admin.token_file.display()
    )
}

/// Reads the admin token from `[admin] token` or `token_file`, checks it
/// with `GET /api/v2/account/details`, and returns an authenticated client.
///
/// `rotated`: this tool rotated the admin token into `token_file` (the
/// state says so); that token is then used even when `[admin] token` is
/// given, since the given one may no longer pass the TTL policy.
pub fn load_admin_client(
    cfg: &Config,
    client: &Client,
    step: StepName,
    rotated: bool,
) -> Result<Client, Error> {
    let given = cfg
        .admin
        .token
        .as_ref()
        .filter(|_| !(rotated && cfg.admin.token_file.exists()));
    let (token, origin) = match given {
        Some(t) => (t.clone(), format!("[admin] token ({})", t.origin())),
        None => {
            let file = &cfg.admin.token_file;
            let text = std::fs::read_to_string(file).map_err(|e| {
                let why = if e.kind() == std::io::ErrorKind::NotFound {
                    "does not exist".to_string()
                } else {
                    format!("cannot be read: {e}")
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
    match c.account() {
        Ok(a) if a.site_admin => Ok(c),
        Ok(a) => Err(Error::no_admin(
            step,
            format!(
                "the token from {origin} belongs to {:?}, who is not a site admin. {}",
                a.username,
                resume_advice(cfg)
            ),
        )),
        Err(e) if e.status() == Some(401) => Err(Error::no_admin(
            step,
            format!(
                "TFE refused the admin token from {origin} (401): it was revoked or has expired. {}",
                resume_advice(cfg)
            ),
        )),
        Err(e) => Err(Error::step(
            step,
            format!("checking the admin token from {origin}: {e}"),
        )),
    }
}

/// Fails early when `token_file` could not be written, so that the one-time
/// answer is never received with nowhere to keep it.
fn preflight_token_file(path: &Path) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure_private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    tempfile::Builder::new()
        .prefix(".tfe-bootstrap-probe-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))
}

fn run(ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
    let cfg = ctx.cfg;
    let step = NAME;
    if cfg.admin.token.is_some() || cfg.admin.token_file.exists() {
        let rotated = ctx.state.facts.admin_token_expires_unix.is_some();
        let c = load_admin_client(cfg, &ctx.client, step, rotated)?;
        ctx.admin = Some(c);
        let how = if cfg.admin.token.is_some() {
            "using the site-admin token from [admin] token".to_string()
        } else {
            format!(
                "using the admin token already saved in {}",
                cfg.admin.token_file.display()
            )
        };
        return Ok(Applied::unchanged(how));
    }
    let Some(iact) = ctx.iact.clone() else {
        return Err(Error::no_admin(
            step,
            format!("no IACT was obtained in this run. {}", resume_advice(cfg)),
        ));
    };
    let (Some(username), Some(email), Some(password)) =
        (&cfg.admin.username, &cfg.admin.email, &cfg.admin.password)
    else {
        return Err(Error::step(
            step,
            "[admin] username, email and password are required to create the admin",
        ));
    };
    preflight_token_file(&cfg.admin.token_file).map_err(|e| {
        Error::step(
            step,
            format!(
                "token_file {}: {e}; nothing was sent",
                cfg.admin.token_file.display()
            ),
        )
    })?;
    let token = match ctx.client.create_initial_admin(
        iact.expose(),
        username,
        email,
        password.expose(),
    ) {
        Ok(t) => t,
        Err(e) if e.status() == Some(404) => {
            return Err(Error::no_admin(
                step,
                format!(
                    "TFE refused to create the initial admin ({e}): it already has users, or the IACT is not this install's. {}",
                    resume_advice(cfg)
                ),
            ));
        }
        Err(e @ TfeError::Status { status: 422, .. }) => {
            return Err(Error::step(
                step,
                format!("{e}; check [admin] username, email and password"),
            ));
        }
        Err(e) if e.is_ambiguous() => {
            return Err(Error::step(
                step,
                format!(
                    "{e}. It is not re-sent, because the IACT is one-time and only its answer carries the admin token. \
                     Rerun: if TFE did not create the admin, the rerun creates it; if it did, TFE answers 404 and \
                     you will need [admin] token"
                ),
            ));
        }
        Err(e) => return Err(Error::step(step, e.to_string())),
    };
    // The only copy of the token: keep it before anything else.
    write_atomic(&cfg.admin.token_file, format!("{token}\n").as_bytes()).map_err(|e| {
        Error::step(
            step,
            format!(
                "the admin {username:?} was created but its token could not be written to {}: {e}. \
                 Free space or fix permissions, then create a token for {username:?} in the TFE UI and set [admin] token",
                cfg.admin.token_file.display()
            ),
        )
    })?;
    ctx.state.facts.admin_username = Some(username.clone());
    ctx.admin = Some(
        ctx.client
            .clone()
            .with_token(Secret::new(token, "initial-admin-user")),
    );
    ctx.iact = None;
    Ok(Applied::changed(format!(
        "created site admin {username:?}; token saved to {} (0600)",
        cfg.admin.token_file.display()
    )))
}
