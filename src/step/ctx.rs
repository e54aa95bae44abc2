//! The run context a step works in: [`Ctx`], whose token the run holds
//! ([`Role`]), the tokens already checked in this run ([`Checked`]), where
//! warnings go ([`Progress`]), and what the TFE release has
//! ([`Ctx::release`], [`Ctx::release_has`]).

use std::time::Duration;

use crate::config::Config;
use crate::config::secret::Secret;
use crate::error::Error;
use crate::state::{CheckpointStore, State};
use crate::store::Store;
use crate::tfe::{Client, TfeError};
use crate::util::sha256_hex;

use super::{Requirement, StepName};

/// Where steps send what the operator should see while they work; the
/// reporter implements it. Steps never print.
pub trait Progress {
    fn warning(&self, step: Option<StepName>, message: &str);
    /// One readiness poll that did not answer ready.
    fn wait_poll(&self, attempt: u32, status: &str, elapsed: Duration);
}

/// Whose token the run holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A site admin's: every step can run.
    SiteAdmin,
    /// Anyone else's (an organization owner's user token, or a team or
    /// organization token, which has no account): only the per-organization
    /// steps can run. The text names whose.
    Other(String),
}

/// Tokens that read the organization in this run, since the last step
/// that changed anything (their SHA-256 only, never the tokens): the last
/// check, `verify-tokens`, does not ask TFE about them again. The machine
/// forgets them whenever a step applies a change.
#[derive(Debug, Default)]
pub struct Checked(std::collections::HashSet<String>);

impl Checked {
    pub fn insert(&mut self, token: &str) {
        self.0.insert(sha256_hex(&[token.trim().as_bytes()]));
    }
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(&sha256_hex(&[token.trim().as_bytes()]))
    }
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// Everything a step may use while it applies.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    /// Unauthenticated client (readiness, IACT, initial admin).
    pub client: Client,
    /// The site-admin client, once the token is known and checked.
    pub admin: Option<Client>,
    /// Whose token `admin` holds, when known (set where it is loaded).
    pub admin_role: Option<Role>,
    pub state: State,
    /// Where `state` is saved (the state directory; not `[store]`, which
    /// is [`Ctx::fleet`]); a step saves only to record an intent before a
    /// side effect (see `steps::witness`).
    pub checkpoints: &'a dyn CheckpointStore,
    /// `[store]`: what other nodes published, and who does which duty.
    pub fleet: Option<&'a Store>,
    pub progress: &'a dyn Progress,
    /// The IACT, in memory only.
    pub iact: Option<Secret>,
    /// `--force` for the current step.
    pub forced: bool,
    /// This run created the initial admin: TFE was untouched, so there is
    /// no live state worth reading before applying.
    pub new_install: bool,
    /// See [`Checked`].
    pub checked: Checked,
    /// The TFE release, once [`Ctx::release`] asked for it in this run.
    pub release: Option<Option<crate::tfe::version::TfeVersion>>,
}

impl<'a> Ctx<'a> {
    /// A context before any step ran: no admin client yet, nothing forced.
    pub fn new(
        cfg: &'a Config,
        client: Client,
        state: State,
        checkpoints: &'a dyn CheckpointStore,
        fleet: Option<&'a Store>,
        progress: &'a dyn Progress,
    ) -> Ctx<'a> {
        Ctx {
            cfg,
            client,
            admin: None,
            admin_role: None,
            state,
            checkpoints,
            fleet,
            progress,
            iact: None,
            forced: false,
            new_install: false,
            checked: Checked::default(),
            release: None,
        }
    }

    /// The TFE release, learned once per run from `GET /api/v2/ping` (its
    /// version header; an upgrade changes it, so a recorded one is not
    /// reused) and recorded in the state for `status`. `None` when TFE
    /// does not say or the table does not know it: callers keep their
    /// fallbacks then.
    pub fn release(&mut self) -> Option<crate::tfe::version::TfeVersion> {
        if let Some(r) = self.release {
            return r;
        }
        let said = match self.client.ping() {
            Ok(r) => r.tfe_version,
            Err(_) => None,
        };
        if said.is_some() {
            self.state.facts.tfe_version = said.clone();
        }
        let r = said
            .as_deref()
            .and_then(crate::tfe::version::TfeVersion::parse);
        self.release = Some(r);
        r
    }

    pub fn warn(&self, step: StepName, message: &str) {
        self.progress.warning(Some(step), message);
    }

    /// Whether the TFE release has what `needs` asks for ([`Ctx::release`]);
    /// when it stays unknown the steps run and keep their fallbacks. A
    /// release known to lack a feature is an error naming the keys that ask
    /// for it. `before_any_change`: said before any step changed anything
    /// (the whole run's check), or by a node of a fleet about to send one.
    pub fn release_has(
        &mut self,
        needs: &[(StepName, Requirement)],
        before_any_change: bool,
    ) -> Result<(), Error> {
        if needs.is_empty() || self.cfg.tfe.platform == crate::config::Platform::Hcp {
            return Ok(());
        }
        let Some(v) = self.release() else {
            return Ok(());
        };
        for (step, r) in needs {
            if !(r.has)(v) {
                let sent = if before_any_change {
                    "Nothing was changed"
                } else {
                    "This node did not send it"
                };
                return Err(Error::env(
                    *step,
                    format!(
                        "TFE {v} has no {} (they arrive in {}): remove {} from the config, or upgrade TFE first. {sent}",
                        r.what, r.since, r.keys
                    ),
                ));
            }
        }
        Ok(())
    }
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
        (_, Some(401)) if step != crate::step_name::SMTP => format!(
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
