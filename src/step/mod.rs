//! What a step is, in the vocabulary that the machine, the steps, the
//! commands and the reporter share: its [`StepName`], the [`Step`] trait
//! each file under `steps/` implements, the [`Outcome`] it ends with, what it
//! [`Desired`] (the checkpoint fingerprint's input), how its live state
//! compares ([`Drift`]), and the run context [`Ctx`] it works in.
//!
//! This module is a leaf of the step graph: it imports the config, the state,
//! the TFE client and the error type, never `machine`, `steps` or `output`.
//! That keeps the data flow one way (machine → steps → tfe) and lets the
//! reporter render outcomes without knowing the machine.

use serde_json::Value;

use crate::config::Config;
use crate::config::secret::Secret;
use crate::error::Error;
use crate::state::State;
use crate::tfe::Client;
use crate::util::sha256_hex;

mod ctx;

pub use crate::step_name::StepName;
pub use ctx::{Checked, Ctx, Progress, Role, api_error};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Unchanged,
    Skipped,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// How a step ended (applied, unchanged or skipped) and what it did.
#[derive(Debug, Clone)]
pub struct Done {
    pub outcome: Outcome,
    pub detail: String,
}

impl Done {
    pub fn changed(detail: impl Into<String>) -> Done {
        Done {
            outcome: Outcome::Applied,
            detail: detail.into(),
        }
    }
    pub fn unchanged(detail: impl Into<String>) -> Done {
        Done {
            outcome: Outcome::Unchanged,
            detail: detail.into(),
        }
    }
}

/// Whether a step applies under a config: what it wants, or why it does not
/// (its section is absent, or it is not needed). Not applying is an answer,
/// not a failure: the machine skips such a step and says why.
pub enum Applies {
    /// It applies: what it wants (the checkpoint fingerprint's input).
    Yes(Desired),
    /// It does not, and why (shown as the step's `skipped` detail).
    No(String),
}

impl Applies {
    pub fn no(why: impl Into<String>) -> Applies {
        Applies::No(why.into())
    }
    /// What it wants, when it applies.
    pub fn wanted(self) -> Option<Desired> {
        match self {
            Applies::Yes(d) => Some(d),
            Applies::No(_) => None,
        }
    }
    pub fn applies(&self) -> bool {
        matches!(self, Applies::Yes(_))
    }
}

/// `need!(option, why)`: the value inside, or return [`Applies::No`] with
/// `why` from the enclosing `desired` / `shared`.
#[macro_export]
macro_rules! need {
    ($e:expr, $why:expr) => {
        match $e {
            Some(v) => v,
            None => return $crate::step::Applies::No(($why).into()),
        }
    };
}

/// PBKDF2 rounds for a secret in a `[store]` duty key (OWASP's 2023 advice
/// for PBKDF2-HMAC-SHA256 is 600,000 for stored passwords; a duty key also
/// carries the non-secret config, so a guess must match it too).
pub const DUTY_KDF_ROUNDS: u32 = 210_000;

/// What a step wants applied: a canonical JSON value plus the secrets it
/// sends (which enter the fingerprint only hashed).
pub struct Desired {
    pub value: Value,
    pub secrets: Vec<Secret>,
}

impl Desired {
    /// A desired value with no secret in it.
    pub fn plain(value: Value) -> Desired {
        Desired {
            value,
            secrets: vec![],
        }
    }
    /// The fingerprint that names a `[store]` duty, which every node (and
    /// anyone who can list the store) sees beside the store's salt. Each
    /// secret enters only through PBKDF2-HMAC-SHA256 with
    /// [`DUTY_KDF_ROUNDS`] rounds, salted by the store's salt and the
    /// secret's position: confirming one guessed secret against a key name
    /// costs that many HMACs, where a plain hash cost one.
    pub fn duty_fingerprint(&self, salt: &str) -> String {
        let canonical = self.value.to_string();
        let derived: Vec<[u8; 32]> = self
            .secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                crate::util::pbkdf2_sha256(
                    s.expose().as_bytes(),
                    format!("tfe-bootstrap duty {salt} {i}").as_bytes(),
                    DUTY_KDF_ROUNDS,
                )
            })
            .collect();
        let mut parts: Vec<&[u8]> = vec![salt.as_bytes(), canonical.as_bytes()];
        parts.extend(derived.iter().map(|d| &d[..]));
        sha256_hex(&parts)
    }

    /// The fingerprint of what it wants without its secrets: recorded
    /// beside the checkpoint (`<state dir>/public-fingerprints.json`), so
    /// that a change of its other keys is seen even while a secret it sends
    /// is absent (issue 33: a changed key is never skipped).
    /// A secret's place in the value (`"<secret>"`, set only while the
    /// secret is there: `steps/settings.rs`) is left out, so the value reads
    /// the same with the secret absent.
    pub fn public_fingerprint(&self, salt: &str) -> String {
        let mut value = self.value.clone();
        if let Some(m) = value.as_object_mut() {
            m.retain(|_, v| v.as_str() != Some("<secret>"));
        }
        let canonical = value.to_string();
        sha256_hex(&[salt.as_bytes(), b"public", canonical.as_bytes()])
    }

    pub fn fingerprint(&self, salt: &str) -> String {
        let canonical = self.value.to_string();
        let mut parts: Vec<&[u8]> = vec![salt.as_bytes(), canonical.as_bytes()];
        parts.extend(self.secrets.iter().map(|s| s.expose().as_bytes()));
        sha256_hex(&parts)
    }
}

/// When a step runs, besides "its config changed or it never ran".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// When it was never done, its config changed, or `--force` (the default).
    OnChange,
    /// Done once for good: a later config change does not make it pending
    /// (`admin`: an admin is created once).
    Once,
    /// Runs whenever any other step runs, and only then: a guard before
    /// them (`wait`) or a check after them (`verify-tokens`).
    WithAnyOther,
    /// Only when the named step will run (`iact` serves `admin`).
    With(StepName),
}

/// One compared key: TFE's live value beside the config's.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    pub key: String,
    pub live: Value,
    pub desired: Value,
    /// Write-only on TFE (passwords, the test address): never readable, so
    /// never compared.
    pub write_only: bool,
}

impl Drift {
    pub fn new(key: impl Into<String>, live: Value, desired: Value) -> Drift {
        Drift {
            key: key.into(),
            live,
            desired,
            write_only: false,
        }
    }
    pub fn write_only(key: impl Into<String>) -> Drift {
        Drift {
            key: key.into(),
            live: Value::Null,
            desired: Value::Null,
            write_only: true,
        }
    }
    /// A readable key whose live value differs from the desired one.
    pub fn differs(&self) -> bool {
        !self.write_only && self.live != self.desired
    }
}

/// What a read-only look at TFE may use (`plan`'s drift).
pub struct LiveCtx<'a> {
    pub cfg: &'a Config,
    /// The site-admin client (read-only in `plan`).
    pub admin: &'a Client,
    pub state: &'a State,
}

/// A feature a step needs of the TFE release (see [`Step::requires`]).
#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    /// What it is, in the operator's words.
    pub what: &'static str,
    /// Whether a release has it.
    pub has: fn(crate::tfe::version::TfeVersion) -> bool,
    /// The first release that has it, and the source.
    pub since: &'static str,
    /// The config keys that ask for it.
    pub keys: &'static str,
}

/// One step: one file under `src/steps/`, one job.
pub trait Step: Sync {
    fn name(&self) -> StepName;

    /// When it runs; see [`Schedule`].
    fn schedule(&self) -> Schedule {
        Schedule::OnChange
    }

    /// What it wants under `cfg` (the fingerprint's input), or why it does
    /// not apply (its section is absent, or it is not needed).
    fn desired(&self, cfg: &Config) -> Applies;

    /// What the nodes of a fleet share of it: the input of its `[store]`
    /// duty key. By default all it wants; a step whose desired value names
    /// node-local files leaves them out, so every node meets the same duty.
    fn shared(&self, cfg: &Config) -> Applies {
        self.desired(cfg)
    }

    /// What it needs of the TFE release, when the config asks for that
    /// (see [`crate::tfe::version`]): checked once TFE is ready and before
    /// any step changes anything, so a release without it stops the run
    /// with nothing changed (exit 2).
    fn requires(&self, _cfg: &Config) -> Option<Requirement> {
        None
    }

    /// Whether applying it writes a file on this node (a token file): then
    /// every node runs it, even when the fleet already applied its shared
    /// part, since TFE holding the config does not put the file here.
    fn writes_node_files(&self) -> bool {
        false
    }

    /// The config keys of the secrets it sends when it applies under `cfg`
    /// (`[smtp] password`, ...). When one is absent (see
    /// [`Config::absent`]), a step already done counts as unchanged, and a
    /// step still to do stops the run before anything is sent.
    fn secret_keys(&self, _cfg: &Config) -> Vec<&'static str> {
        vec![]
    }

    /// TFE's live values beside the desired ones, for `plan`'s drift. Steps
    /// with nothing readable to compare keep the default (no rows).
    fn live(&self, _cx: &LiveCtx<'_>) -> Result<Vec<Drift>, crate::tfe::TfeError> {
        Ok(vec![])
    }

    /// Applies it.
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error>;

    /// What this node does when another node of the fleet applied it:
    /// nothing by default (TFE holds it). A step whose applying node
    /// changed something every node uses (`token-ttl` rotates the admin
    /// token) takes that here. A line for the step's detail, if any.
    fn follow(&self, _ctx: &mut Ctx<'_>) -> Result<Option<String>, Error> {
        Ok(None)
    }

    /// Applies it on a node that took its `[store]` duty over from a holder
    /// that went silent or failed: whatever that holder minted and did not
    /// publish is held by nobody. By default as [`Step::apply`].
    fn take_over(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        self.apply(ctx)
    }

    /// Whether only a site admin's token can run it (the `/api/v2/admin`
    /// endpoints; the PTFE "Settings API" page, admin-settings-api.txt):
    /// with another token it is refused before it sends anything.
    fn needs_site_admin(&self) -> bool {
        false
    }

    /// Whether it needs a ready TFE: every step but the one that waits for
    /// it. The run reads the TFE release before the first such step.
    fn needs_ready_tfe(&self) -> bool {
        true
    }

    /// Why it must run although its checkpoint matches (`verify-tokens`:
    /// its last check failed, or a token file changed since), or `None`.
    fn recheck(&self, _cfg: &Config, _state: &State) -> Option<String> {
        None
    }

    /// What its failure changes in the state before the run ends; whether it
    /// changed anything (then the state is saved). `verify-tokens` forgets
    /// its checkpoint, so a failed check is checked again on the next run.
    fn on_failure(&self, _state: &mut State) -> bool {
        false
    }
}
