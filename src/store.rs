//! `[store]`: what one node learns, carried to the others through a helper
//! command the operator supplies (README, "Many nodes").
//!
//! The helper is called as `<command...> VERB KEY`; values pass on stdin and
//! stdout only, never in argv:
//!
//! | verb | stdin | exit 0 | exit 3 |
//! | --- | --- | --- | --- |
//! | `get KEY` | – | present, value on stdout | absent |
//! | `put KEY` | value | stored (created or replaced) | – |
//! | `create KEY` | value | stored, KEY was absent | KEY was present, nothing changed |
//!
//! On top of those three verbs this module builds *duties*: who, among the
//! nodes running at once, does a piece of work. `create duty-X` decides; the
//! winner does it and then `put done-X`; the others wait for `done-X` (and
//! then confirm from TFE's live state). A node that dies holding a duty
//! blocks the others for at most `[store] wait`: then one of them takes the
//! next generation of the duty (`duty-X-r1`, ...) and does the work itself.
//! That takeover is the one trade-off: if the dead node had done the work
//! without saying so, it is done twice (one more test mail, at most).
//!
//! Keys (every helper scopes them by `TFE_BOOTSTRAP_ADDRESS`): `admin-token`,
//! `org-token-ORG`, `team-token-ORG` (ORG escaped injectively) with their
//! `-expiry` companions, `salt` (random), `duty-admin`/`done-admin`,
//! `duty-STEP-FP`/`done-STEP-FP` (FP: [`crate::step::Desired::duty_fingerprint`],
//! where secrets enter only through PBKDF2), with `-LIVE` after a rollback
//! and `-rN` after a takeover, and `applied-STEP`, whose value is the FP of
//! the config TFE last took for that step ([`Store::set_applied`]).
//! The helper's environment is minimal ([`crate::helper::Env`]).

use std::cell::OnceCell;
use std::time::{Duration, Instant};

use crate::config::StoreConfig;
use crate::config::duration::format_duration;
use crate::helper::{self, Failure};

/// Why a call to the `[store]` helper gave no usable answer. Each message
/// names the verb and the key (`what`), never a value.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The helper could not be started (not found, not executable).
    #[error("{what}: could not start ({source}); check [store] command")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// It did not answer within `[store] timeout`; it and its children
    /// were killed.
    #[error("{what}: no answer within [store] timeout ({}); it and its children were killed", format_duration(*.timeout))]
    TimedOut { what: String, timeout: Duration },
    /// Waiting on it failed.
    #[error("{what}: {source}")]
    Wait {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// It exited with a code that is neither 0 nor 3 (its last stderr line
    /// is in the message).
    #[error("{0}")]
    Failed(String),
    /// `put` exited 3, which is no answer to a put.
    #[error("[store] command put {key}: exit {code} is not an answer to put (0 = stored)")]
    NotAPutAnswer { key: String, code: i32 },
    /// The store's `salt` key is there but empty.
    #[error("[store] key salt is present but empty: delete it from the store and rerun")]
    EmptySalt,
    /// A stop was requested (SIGTERM / SIGINT) while waiting for a key.
    #[error("stopped while waiting for {key} in the store")]
    Stopped { key: String },
}

/// The helper's "absent" (get) / "already present" (create) exit code.
const EXIT_ABSENT: i32 = 3;
/// Duty generations tried before a node stops deferring and does the work.
const MAX_GENERATIONS: u32 = 3;

/// The configured helper, for one run.
pub struct Store {
    command: Vec<String>,
    /// `[store] env`, and the config's secret variables it never passes.
    env: Vec<String>,
    deny: Vec<String>,
    pub wait: Duration,
    timeout: Duration,
    address: String,
    salt: OnceCell<String>,
    /// The last duty this node took over had been reported failed (not
    /// silent): for the wording of the takeover warning.
    failed_before: std::cell::Cell<bool>,
    /// Duties this node took without waiting ([`Store::try_claim`]) and
    /// still holds: name → key. A later [`Store::claim`] of the same name
    /// returns it (the `iact` step takes the admin duty, `admin` does it).
    held: std::cell::RefCell<std::collections::BTreeMap<String, String>>,
}

/// Who does a duty.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// This node: do it, then [`Store::finish`] with this key.
    Mine(String),
    /// Another node did it (its `done-` key is there).
    Done,
    /// The node holding it said nothing within `[store] wait`: this node
    /// took it over (do it, then finish with this key).
    TakenOver(String),
}

impl Store {
    pub fn new(cfg: &StoreConfig, address: &str, secret_envs: &[String]) -> Store {
        Store {
            command: cfg.command.clone(),
            env: cfg.env.clone(),
            deny: secret_envs.to_vec(),
            wait: cfg.wait,
            timeout: cfg.timeout,
            address: address.to_string(),
            salt: OnceCell::new(),
            failed_before: std::cell::Cell::new(false),
            held: Default::default(),
        }
    }

    /// The helper as an operator types it (with the variable it is given),
    /// for messages that say how to fix a key by hand.
    pub fn command_line(&self) -> String {
        let quote = |a: &String| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-=:".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        };
        let argv: Vec<String> = self.command.iter().map(quote).collect();
        format!(
            "TFE_BOOTSTRAP_ADDRESS={} {}",
            quote(&self.address),
            argv.join(" ")
        )
    }

    fn call(
        &self,
        verb: &str,
        key: &str,
        input: Option<&str>,
    ) -> Result<(i32, String), StoreError> {
        let mut argv = self.command.clone();
        argv.push(verb.into());
        argv.push(key.into());
        let shown = self.command.first().cloned().unwrap_or_default();
        let what = format!("[store] command {shown:?} {verb} {key}");
        let done = helper::run(
            &argv,
            Some(input.unwrap_or("").as_bytes()),
            &helper::Env {
                pass: &self.env,
                deny: &self.deny,
                add: &[("TFE_BOOTSTRAP_ADDRESS", &self.address)],
            },
            self.timeout,
        )
        .map_err(|f| match f {
            Failure::Spawn(source) => StoreError::Spawn {
                what: what.clone(),
                source,
            },
            Failure::TimedOut => StoreError::TimedOut {
                what: what.clone(),
                timeout: self.timeout,
            },
            Failure::Wait(source) => StoreError::Wait {
                what: what.clone(),
                source,
            },
        })?;
        let code = done.status.code().unwrap_or(-1);
        if code != 0 && code != EXIT_ABSENT {
            return Err(StoreError::Failed(helper::failed(&what, &done)));
        }
        Ok((code, done.stdout))
    }

    /// `get KEY`: the value (one trailing newline stripped), or `None`.
    pub fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let (code, out) = self.call("get", key, None)?;
        if code == EXIT_ABSENT {
            return Ok(None);
        }
        let v = out
            .strip_suffix('\n')
            .map(|v| v.strip_suffix('\r').unwrap_or(v))
            .unwrap_or(&out);
        Ok(Some(v.to_string()))
    }

    /// `put KEY`: stores the value, replacing any.
    pub fn put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        match self.call("put", key, Some(value))? {
            (0, _) => Ok(()),
            (code, _) => Err(StoreError::NotAPutAnswer {
                key: key.to_string(),
                code,
            }),
        }
    }

    /// `create KEY`: stores the value only when KEY is absent; whether it did.
    pub fn create(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        Ok(self.call("create", key, Some(value))?.0 == 0)
    }

    /// Polls `get KEY` until it is present or `within` passes (or a stop is
    /// requested: an error).
    pub fn wait_for(&self, key: &str, within: Duration) -> Result<Option<String>, StoreError> {
        let deadline = Instant::now() + within;
        let mut pause = Duration::from_millis(50);
        loop {
            if let Some(v) = self.get(key)? {
                return Ok(Some(v));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            if !crate::stop::sleep(pause.min(left)) {
                return Err(StoreError::Stopped {
                    key: key.to_string(),
                });
            }
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// The fleet's salt: created by the first node that asks, read by the
    /// others. Read first: every node but the first finds it with one
    /// helper call (a slow helper such as the aws CLI costs about a second
    /// a call, and a cloud store's API has a rate limit).
    pub fn salt(&self) -> Result<&str, StoreError> {
        if let Some(s) = self.salt.get() {
            return Ok(s);
        }
        let salt = match self.get("salt")? {
            Some(s) => s,
            None => {
                let mut rng = fastrand::Rng::new();
                let mine: String = (0..32)
                    .map(|_| char::from_digit(rng.u32(..16), 16).unwrap_or('0'))
                    .collect();
                if self.create("salt", &mine)? {
                    mine
                } else {
                    // Another node created it between the read and ours.
                    self.get("salt")?.unwrap_or_default()
                }
            }
        };
        if salt.trim().is_empty() {
            return Err(StoreError::EmptySalt);
        }
        Ok(self.salt.get_or_init(|| salt.trim().to_string()))
    }

    /// Takes duty `name` when it is free, without waiting: `Some(Mine)`
    /// when this node took it, `Some(Done)` when it is done, `None` when
    /// another node holds it (then [`Store::claim`] waits for it).
    pub fn try_claim(&self, name: &str) -> Result<Option<Turn>, StoreError> {
        if self.get(&format!("done-{name}"))?.as_deref() == Some("done") {
            return Ok(Some(Turn::Done));
        }
        if !self.create(&format!("duty-{name}"), &node_id())? {
            return Ok(None);
        }
        self.held
            .borrow_mut()
            .insert(name.to_string(), name.to_string());
        Ok(Some(Turn::Mine(name.to_string())))
    }

    /// Gives back a duty this node took without waiting and can no longer
    /// do (it found no IACT): it is reported failed, so another node tries
    /// at once rather than after `[store] wait`. Best effort.
    pub fn give_up_held(&self, name: &str) {
        let key = self.held.borrow_mut().remove(name);
        if let Some(key) = key {
            let _ = self.finish(&key, false);
        }
    }

    /// Decides who does duty `name` (a step and its config fingerprint).
    /// Returns at once when the work is done or this node wins; otherwise
    /// waits up to `[store] wait` for the holder, then takes the duty over.
    pub fn claim(&self, name: &str) -> Result<Turn, StoreError> {
        if let Some(key) = self.held.borrow().get(name) {
            return Ok(Turn::Mine(key.clone()));
        }
        for generation in 0..MAX_GENERATIONS {
            let key = if generation == 0 {
                name.to_string()
            } else {
                format!("{name}-r{generation}")
            };
            let done = format!("done-{key}");
            match self.get(&done)?.as_deref() {
                Some("done") => return Ok(Turn::Done),
                Some(_) => {
                    // That generation failed: try the next.
                    self.failed_before.set(true);
                    continue;
                }
                None => {}
            }
            if self.create(&format!("duty-{key}"), &node_id())? {
                return Ok(if generation == 0 {
                    Turn::Mine(key)
                } else {
                    Turn::TakenOver(key)
                });
            }
            // Someone already took the next generation: waiting on this
            // one's holder would only wait on a node known to be gone.
            if self
                .get(&format!("duty-{name}-r{}", generation + 1))?
                .is_some()
            {
                continue;
            }
            match self.wait_for(&done, self.wait)?.as_deref() {
                Some("done") => return Ok(Turn::Done),
                // Failed, or silent past the wait: the next generation.
                Some(_) => self.failed_before.set(true),
                None => self.failed_before.set(false),
            }
        }
        Ok(Turn::TakenOver(format!("{name}-r{MAX_GENERATIONS}")))
    }

    /// The fingerprint of the config the fleet last applied for `step`
    /// (key `applied-STEP`), if any node recorded one.
    pub fn applied(&self, step: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(&format!("applied-{step}"))?
            .map(|v| v.trim().to_string()))
    }

    /// Records that TFE now holds `step` as the config with fingerprint
    /// `fp` says (`put applied-STEP`): a node that later meets the same
    /// fingerprint trusts it without reading TFE, as a node trusts its own
    /// checkpoint. Put before the duty's `done-` key, so a node that sees
    /// `done` finds it.
    pub fn set_applied(&self, step: &str, fp: &str) -> Result<(), StoreError> {
        self.put(&format!("applied-{step}"), fp)
    }

    /// Whether the duty this node last took over had been reported failed
    /// (rather than left silent past `[store] wait`).
    pub fn last_failure(&self) -> bool {
        self.failed_before.get()
    }

    /// Says how the duty ended: `done` lets the waiting nodes confirm and go
    /// on; a failure lets one of them try at once instead of after the wait.
    pub fn finish(&self, key: &str, ok: bool) -> Result<(), StoreError> {
        self.held.borrow_mut().retain(|_, k| k != key);
        self.put(&format!("done-{key}"), if ok { "done" } else { "failed" })
    }
}

/// Who holds a duty, for an operator reading the store: host and pid.
fn node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    format!(
        "{host} pid {} at {}",
        std::process::id(),
        crate::util::rfc3339(std::time::SystemTime::now())
    )
}
