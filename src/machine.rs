//! The state machine: the ordered step list, and the checkpoint / skip /
//! force logic. The only place that knows the order.
//!
//! ```text
//!  wait ──► iact ──► admin ──► general ──► smtp ──► saml ──► twilio
//!   │        │         │                                        │
//!   │        │         └─ token_file written (0600) before the   ▼
//!   │        │            admin checkpoint                  organization ──► agent-pool
//!   │        └─ IACT kept in memory only                                        │
//!   └─ first-ready time (start of the IACT API window)                          ▼
//!                          token-ttl ◄── team-token ◄── org-token ◄──── org-defaults
//!                                          (last: it may invalidate the run's own token)
//! ```
//!
//! Each step is checkpointed in `state.json` with a fingerprint of the
//! config it applied (secrets enter only through a salted hash). A rerun
//! skips a step while its fingerprint matches and re-applies it when the
//! config changed, so a crash, reboot or config change resumes exactly where
//! it stopped. When nothing is pending the run sends no request at all.
//! `wait` runs whenever anything else is pending; `iact` only when the admin
//! must still be created and no token is at hand.

use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::config::secret::Secret;
use crate::error::Error;
use crate::output::{Event, Outcome, Reporter};
use crate::state::{Checkpoint, CheckpointStore, DirStore, State};
use crate::steps;
use crate::tfe::Client;
use crate::util::{rfc3339, sha256_hex};

/// The steps, in the contract's order. Names are stable: flags, the state
/// file and JSON events use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepName {
    Wait,
    Iact,
    Admin,
    General,
    Smtp,
    Saml,
    Twilio,
    Organization,
    AgentPool,
    OrgDefaults,
    OrgToken,
    TeamToken,
    TokenTtl,
}

impl StepName {
    pub const ALL: [StepName; 13] = [
        StepName::Wait,
        StepName::Iact,
        StepName::Admin,
        StepName::General,
        StepName::Smtp,
        StepName::Saml,
        StepName::Twilio,
        StepName::Organization,
        StepName::AgentPool,
        StepName::OrgDefaults,
        StepName::OrgToken,
        StepName::TeamToken,
        StepName::TokenTtl,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Wait => "wait",
            StepName::Iact => "iact",
            StepName::Admin => "admin",
            StepName::General => "general",
            StepName::Smtp => "smtp",
            StepName::Saml => "saml",
            StepName::Twilio => "twilio",
            StepName::Organization => "organization",
            StepName::AgentPool => "agent-pool",
            StepName::OrgDefaults => "org-defaults",
            StepName::OrgToken => "org-token",
            StepName::TeamToken => "team-token",
            StepName::TokenTtl => "token-ttl",
        }
    }

    /// Parses a step name; the error lists the valid names and a close match.
    pub fn parse(s: &str) -> Result<StepName, String> {
        let s = s.trim();
        StepName::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = StepName::ALL.iter().map(|n| n.as_str()).collect();
                let hint = crate::config::did_you_mean(s, names.iter().copied())
                    .map(|m| format!(" (did you mean {m:?}?)"))
                    .unwrap_or_default();
                format!("unknown step {s:?}{hint}; steps are: {}", names.join(", "))
            })
    }
}

/// What a step wants applied: a canonical JSON value plus the secrets it
/// sends (which enter the fingerprint only hashed).
pub struct Desired {
    pub value: serde_json::Value,
    pub secrets: Vec<Secret>,
}

impl Desired {
    pub fn fingerprint(&self, salt: &str) -> String {
        let canonical = self.value.to_string();
        let mut parts: Vec<&[u8]> = vec![salt.as_bytes(), canonical.as_bytes()];
        parts.extend(self.secrets.iter().map(|s| s.expose().as_bytes()));
        sha256_hex(&parts)
    }
}

/// Where a step stands before a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Assessment {
    /// Its config section is absent, or it is not needed (reason given).
    NotConfigured(String),
    /// Left out by `--skip` / `--only`.
    Excluded(String),
    /// Checkpointed with the current config.
    Done { at: String },
    /// Will run. `changed`: it was done with a different config; `forced`: `--force`.
    Pending { changed: bool, forced: bool },
}

/// `run`'s step selection flags.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub skip: Vec<StepName>,
    pub only: Vec<StepName>,
    pub force: Vec<StepName>,
}

/// Decides, without any request, what each step would do now.
pub fn assess(cfg: &Config, state: &State, sel: &Selection) -> Vec<(StepName, Assessment)> {
    let mut out: Vec<(StepName, Assessment)> = vec![];
    for step in StepName::ALL {
        let excluded = if sel.skip.contains(&step) {
            Some("--skip")
        } else if !sel.only.is_empty() && !sel.only.contains(&step) {
            Some("not in --only")
        } else {
            None
        };
        let a = match (steps::desired(step, cfg), excluded) {
            (Err(reason), _) => Assessment::NotConfigured(reason),
            (Ok(_), Some(why)) => Assessment::Excluded(why.into()),
            (Ok(d), None) => {
                let fp = d.fingerprint(&state.salt);
                let forced = sel.force.contains(&step);
                match state.steps.get(step.as_str()) {
                    Some(_) if forced => Assessment::Pending {
                        changed: false,
                        forced: true,
                    },
                    Some(c) if c.fingerprint == fp => Assessment::Done { at: c.at.clone() },
                    // An admin is created once; a later [admin] change cannot re-create it.
                    Some(c) if step == StepName::Admin => Assessment::Done { at: c.at.clone() },
                    Some(_) => Assessment::Pending {
                        changed: true,
                        forced: false,
                    },
                    None => Assessment::Pending {
                        changed: false,
                        forced,
                    },
                }
            }
        };
        out.push((step, a));
    }
    // `wait` is a guard: it runs when anything else will, and only then.
    let others_pending = out
        .iter()
        .any(|(s, a)| *s != StepName::Wait && matches!(a, Assessment::Pending { .. }));
    // `iact` is needed only while the admin is still to be created without a token.
    let admin_pending = out
        .iter()
        .any(|(s, a)| *s == StepName::Admin && matches!(a, Assessment::Pending { .. }));
    for (step, a) in out.iter_mut() {
        match step {
            StepName::Wait if matches!(a, Assessment::Pending { .. } | Assessment::Done { .. }) => {
                *a = if others_pending {
                    Assessment::Pending {
                        changed: false,
                        forced: false,
                    }
                } else {
                    match state.steps.get("wait") {
                        Some(c) => Assessment::Done { at: c.at.clone() },
                        None => Assessment::NotConfigured("nothing else to do".into()),
                    }
                };
            }
            StepName::Iact if matches!(a, Assessment::Pending { .. } | Assessment::Done { .. }) => {
                let forced = matches!(a, Assessment::Pending { forced: true, .. });
                *a = if !admin_pending {
                    match state.steps.get("iact") {
                        Some(c) => Assessment::Done { at: c.at.clone() },
                        None => Assessment::NotConfigured(
                            "not needed: the admin step does not run".into(),
                        ),
                    }
                } else if cfg.admin.token_file.exists() {
                    Assessment::NotConfigured(format!(
                        "not needed: admin token file {} exists",
                        cfg.admin.token_file.display()
                    ))
                } else {
                    Assessment::Pending {
                        changed: false,
                        forced,
                    }
                };
            }
            _ => {}
        }
    }
    out
}

/// Everything a step may use. Steps never print: they return an
/// [`steps::Applied`] and may emit warnings through `report`.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    /// Unauthenticated client (readiness, IACT, initial admin).
    pub client: Client,
    /// The site-admin client, once the token is known and checked.
    pub admin: Option<Client>,
    pub state: State,
    pub report: &'a Reporter,
    /// The IACT, in memory only.
    pub iact: Option<Secret>,
    /// `--force` for the current step.
    pub forced: bool,
}

impl<'a> Ctx<'a> {
    pub fn warn(&self, step: StepName, message: &str) {
        self.report.emit(Event::Warning {
            step: Some(step),
            message,
        });
    }
}

/// Runs the machine to the end (the `run` command).
pub fn run(cfg: &Config, sel: &Selection, client: Client, report: &Reporter) -> Result<(), Error> {
    let store = DirStore::new(&cfg.state_dir);
    let _lock = store.lock()?;
    let state = match store.load()? {
        Some(s) => {
            store.check_owner(&s, &cfg.tfe.address)?;
            s
        }
        None => State::new(&cfg.tfe.address),
    };
    let plan = assess(cfg, &state, sel);
    let mut counts = [0usize; 4];
    let mut ctx = Ctx {
        cfg,
        client,
        admin: None,
        state,
        report,
        iact: None,
        forced: false,
    };
    for w in &cfg.warnings {
        report.emit(Event::Warning {
            step: None,
            message: w,
        });
    }
    for (step, a) in plan {
        let (outcome, detail) = match a {
            Assessment::NotConfigured(reason) => (Outcome::Skipped, reason),
            Assessment::Excluded(why) => (Outcome::Skipped, format!("excluded by {why}")),
            Assessment::Done { at } => (Outcome::Unchanged, format!("done at {at}")),
            Assessment::Pending { changed, forced } => {
                report.emit(Event::StepStarted { step });
                let started = Instant::now();
                ctx.forced = forced;
                let result = steps::apply(step, &mut ctx);
                let elapsed = started.elapsed();
                match result {
                    Ok(applied) => {
                        if applied.outcome != Outcome::Skipped {
                            let desired = steps::desired(step, cfg).ok();
                            if let Some(d) = desired {
                                let cp = Checkpoint {
                                    status: "done".into(),
                                    at: rfc3339(SystemTime::now()),
                                    fingerprint: d.fingerprint(&ctx.state.salt),
                                    detail: Some(applied.detail.clone()),
                                };
                                ctx.state.steps.insert(step.as_str().into(), cp);
                                store.save(&ctx.state)?;
                            }
                        }
                        let mut detail = applied.detail;
                        if changed && applied.outcome == Outcome::Applied {
                            detail.push_str(" (config changed)");
                        }
                        count(&mut counts, applied.outcome);
                        report.emit(Event::StepFinished {
                            step,
                            outcome: applied.outcome,
                            elapsed,
                            detail: &detail,
                        });
                        continue;
                    }
                    Err(e) => {
                        let msg = match &e {
                            Error::Step { message, .. } => message.clone(),
                            other => other.to_string(),
                        };
                        count(&mut counts, Outcome::Failed);
                        report.emit(Event::StepFinished {
                            step,
                            outcome: Outcome::Failed,
                            elapsed,
                            detail: &msg,
                        });
                        finish(report, &counts, Some(&e));
                        return Err(e);
                    }
                }
            }
        };
        count(&mut counts, outcome);
        report.emit(Event::StepFinished {
            step,
            outcome,
            elapsed: Duration::ZERO,
            detail: &detail,
        });
    }
    finish(report, &counts, None);
    Ok(())
}

fn count(counts: &mut [usize; 4], o: Outcome) {
    let i = match o {
        Outcome::Applied => 0,
        Outcome::Unchanged => 1,
        Outcome::Skipped => 2,
        Outcome::Failed => 3,
    };
    counts[i] += 1;
}

fn finish(report: &Reporter, counts: &[usize; 4], err: Option<&Error>) {
    let msg = err.map(|e| e.to_string());
    report.emit(Event::Finished {
        exit_code: err.map(Error::exit_code).unwrap_or(0),
        error: msg.as_deref(),
        counts: *counts,
    });
}

/// Loads the state for read-only commands (no lock taken; never written).
pub fn load_state(
    cfg_dir: &std::path::Path,
    address: Option<&str>,
) -> Result<Option<State>, Error> {
    let store = DirStore::new(cfg_dir);
    let st = store.load()?;
    if let (Some(s), Some(a)) = (&st, address) {
        store.check_owner(s, a)?;
    }
    Ok(st)
}
