//! The steps, one job each. A step declares what it wants applied
//! ([`desired`], which feeds the checkpoint fingerprint) and applies it
//! ([`apply`]), returning an [`Applied`]. Steps never print.

mod admin;
mod iact;
mod organization;
pub mod settings;
mod wait;

use serde_json::{Value, json};

use crate::config::Config;
use crate::error::Error;
use crate::machine::{Ctx, Desired, StepName};
use crate::output::Outcome;
use crate::tfe::{Client, TfeError};

pub use admin::load_admin_client;

/// What a step did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub outcome: Outcome,
    pub detail: String,
}

impl Applied {
    pub fn changed(detail: impl Into<String>) -> Applied {
        Applied {
            outcome: Outcome::Applied,
            detail: detail.into(),
        }
    }
    pub fn unchanged(detail: impl Into<String>) -> Applied {
        Applied {
            outcome: Outcome::Unchanged,
            detail: detail.into(),
        }
    }
}

/// What `step` wants applied under `cfg`, or why it does not apply.
pub fn desired(step: StepName, cfg: &Config) -> Result<Desired, String> {
    let plain = |value: Value| {
        Ok(Desired {
            value,
            secrets: vec![],
        })
    };
    let org = cfg.organization.as_ref();
    let no_org = || "no [organization] section".to_string();
    match step {
        StepName::Wait => plain(json!({"address": cfg.tfe.address})),
        StepName::Iact if cfg.admin.token.is_some() => {
            Err("not needed: [admin] token is given".into())
        }
        StepName::Iact => plain(json!({"address": cfg.tfe.address})),
        StepName::Admin => Ok(match &cfg.admin.token {
            Some(t) => Desired {
                value: json!({"token": "given"}),
                secrets: vec![t.clone()],
            },
            None => Desired {
                value: json!({"username": cfg.admin.username, "email": cfg.admin.email,
                              "token_file": cfg.admin.token_file.display().to_string()}),
                secrets: cfg.admin.password.iter().cloned().collect(),
            },
        }),
        StepName::General => settings::desired(cfg.general.as_ref(), "general", None),
        StepName::Smtp => settings::desired(cfg.smtp.as_ref(), "smtp", None),
        StepName::Saml => settings::desired(cfg.saml.as_ref(), "saml", None),
        StepName::Twilio => settings::desired(
            cfg.twilio.as_ref(),
            "twilio",
            cfg.twilio_test_number.as_deref(),
        ),
        StepName::Organization => {
            let o = org.ok_or_else(no_org)?;
            plain(json!({"name": o.name, "email": o.email}))
        }
        StepName::AgentPool => match org.ok_or_else(no_org)?.default_agent_pool.as_ref() {
            Some(crate::config::PoolRef::Name(n)) => {
                plain(json!({"org": org.map(|o| &o.name), "name": n}))
            }
            Some(crate::config::PoolRef::Id(_)) => {
                Err("default_agent_pool_id is given: nothing to create".into())
            }
            None => Err("no default_agent_pool in [organization]".into()),
        },
        StepName::OrgDefaults => {
            let o = org.ok_or_else(no_org)?;
            let mode = o
                .default_execution_mode
                .as_ref()
                .ok_or("no default_execution_mode in [organization]")?;
            let pool = o.default_agent_pool.as_ref().map(|p| match p {
                crate::config::PoolRef::Name(n) => json!({"name": n}),
                crate::config::PoolRef::Id(i) => json!({"id": i}),
            });
            plain(json!({"org": o.name, "mode": mode, "pool": pool}))
        }
        StepName::OrgToken => {
            let o = org.ok_or_else(no_org)?;
            let file = o
                .service_token_file
                .as_ref()
                .ok_or("no [organization.service_token]")?;
            plain(json!({"org": o.name, "file": file.display().to_string()}))
        }
        StepName::TeamToken => {
            let o = org.ok_or_else(no_org)?;
            let file = o
                .owners_team_token_file
                .as_ref()
                .ok_or("no [organization.owners_team_token]")?;
            plain(json!({"org": o.name, "team": "owners", "file": file.display().to_string()}))
        }
        StepName::TokenTtl => {
            let o = org.ok_or_else(no_org)?;
            if o.max_ttl_enabled.is_none() && o.token_ttl.is_none() {
                return Err("no max_ttl_enabled or [organization.token_ttl]".into());
            }
            plain(
                json!({"org": o.name, "max_ttl_enabled": o.max_ttl_enabled, "token_ttl": o.token_ttl}),
            )
        }
    }
}

/// Applies `step`.
pub fn apply(step: StepName, ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
    match step {
        StepName::Wait => wait::run(ctx),
        StepName::Iact => iact::run(ctx),
        StepName::Admin => admin::run(ctx),
        StepName::General | StepName::Smtp | StepName::Saml | StepName::Twilio => {
            settings::run(step, ctx)
        }
        StepName::Organization => organization::ensure_org(ctx),
        StepName::AgentPool => organization::ensure_pool(ctx),
        StepName::OrgDefaults => organization::defaults(ctx),
        StepName::OrgToken => organization::org_token(ctx),
        StepName::TeamToken => organization::team_token(ctx),
        StepName::TokenTtl => organization::token_ttl(ctx),
    }
}

/// The site-admin client, loading and checking the token on first use.
pub fn admin_client<'c>(ctx: &'c mut Ctx<'_>, step: StepName) -> Result<&'c Client, Error> {
    if ctx.admin.is_none() {
        let c = load_admin_client(ctx.cfg, &ctx.client, step)?;
        ctx.admin = Some(c);
    }
    ctx.admin
        .as_ref()
        .ok_or_else(|| Error::step(step, "internal: admin client missing"))
}

/// Wraps a TFE error for `step`, adding what to do for the common cases.
pub fn api_error(step: StepName, ctx: &Ctx<'_>, e: TfeError) -> Error {
    let token_origin = match &ctx.cfg.admin.token {
        Some(t) => format!("[admin] token ({})", t.origin()),
        None => format!("token_file {}", ctx.cfg.admin.token_file.display()),
    };
    let hint = match (&e, e.status()) {
        (TfeError::Status { path, .. }, Some(404)) if path.starts_with("/api/v2/admin") => {
            format!("; the token is not a site admin's (it came from {token_origin})")
        }
        (_, Some(401)) if step != StepName::Smtp => format!(
            "; TFE refused the token from {token_origin}: it may have been revoked or have expired (a max-TTL policy rejects older, longer-lived tokens)"
        ),
        (_, Some(403)) => "; the admin is not in the organization's owners team".into(),
        (TfeError::Status { .. }, Some(429)) => {
            "; TFE kept rate-limiting: raise [general] api_rate_limit or rerun later".into()
        }
        _ => String::new(),
    };
    Error::step(step, format!("{e}{hint}"))
}
