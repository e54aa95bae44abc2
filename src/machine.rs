//! The state machine: the ordered step list, and the checkpoint / skip /
//! only / force logic. The only place that knows the order; what each step
//! wants and does lives in its own file under `steps/`.
//!
//! ```text
//!  wait ──► iact ──► admin ──► general ──► customization ──► smtp ──► saml ──► twilio
//!   │        │         │                                                          │
//!   │        │         └─ token_file written (0600) before the   ▼
//!   │        │            admin checkpoint                  organization ──► agent-pool
//!   │        └─ IACT kept in memory only                                        │
//!   └─ first-ready time (start of the IACT API window)                          ▼
//!        token-ttl ◄── agent-token ◄── team-token ◄── org-token ◄──── org-defaults
//!                                          (it may invalidate older tokens)
//!                              │
//!                              └──► verify-tokens (every token file still authenticates)
//! ```
//!
//! Each step is checkpointed in `state.json` with a fingerprint of the
//! config it applied (secrets enter only through a salted hash). A rerun
//! skips a step while its fingerprint matches and re-applies it when the
//! config changed, so a crash, reboot or config change resumes exactly where
//! it stopped. When nothing is pending the run sends no request at all.
//! Besides that, a step's [`Schedule`] says when it runs: `wait` whenever
//! anything else runs, `iact` only with `admin`, `admin` once for good,
//! `verify-tokens` (last) whenever anything else ran.

use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::error::Error;
use crate::fleet;
use crate::output::{Event, Reporter};
use crate::session::{Session, Tally};
use crate::state::{Checkpoint, State};
use crate::step::{Applies, Ctx, Done, Outcome, Schedule, Step, StepName};
use crate::steps;
use crate::tfe::Client;
use crate::util::rfc3339;

/// The steps, in the contract's order. Adding a step: one file under
/// `src/steps/` (its `mod` line in `steps/mod.rs`) and one line here.
pub const ORDER: &[&dyn Step] = &[
    &steps::wait::Wait,
    &steps::iact::Iact,
    &steps::admin::Admin,
    &steps::general::General,
    &steps::customization::Customization,
    &steps::smtp::Smtp,
    &steps::saml::Saml,
    &steps::twilio::Twilio,
    &steps::organization::Organization,
    &steps::agent_pool::AgentPool,
    &steps::org_defaults::OrgDefaults,
    &steps::org_token::OrgToken,
    &steps::team_token::TeamToken,
    &steps::agent_token::AgentToken,
    &steps::token_ttl::TokenTtl,
    &steps::terraform_credentials::TerraformCredentials,
    &steps::verify_tokens::VerifyTokens,
];

/// Every step name, in order.
pub fn names() -> impl Iterator<Item = StepName> {
    ORDER.iter().map(|s| s.name())
}

/// Where `step` stands in the order (for "before/after" questions).
pub fn position(step: StepName) -> usize {
    names().position(|n| n == step).unwrap_or(usize::MAX)
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
    /// Would run, but a secret it sends is absent (the message names the
    /// key and why): the run stops before sending anything.
    NeedsSecret(String),
}

impl Assessment {
    pub fn is_pending(&self) -> bool {
        matches!(self, Assessment::Pending { .. })
    }
}

/// `run`'s step selection flags.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub skip: Vec<StepName>,
    pub only: Vec<StepName>,
    pub force: Vec<StepName>,
}

/// Decides, without any request, what each step would do now.
pub fn assess(
    cfg: &Config,
    state: &State,
    sel: &Selection,
) -> Vec<(&'static dyn Step, Assessment)> {
    let mut out: Vec<(&'static dyn Step, Assessment)> = ORDER
        .iter()
        .map(|&step| (step, assess_one(step, cfg, state, sel)))
        .collect();
    scheduled(&mut out, cfg, state);
    out
}

/// One step on its own: its config, the selection flags, its checkpoint.
fn assess_one(step: &'static dyn Step, cfg: &Config, state: &State, sel: &Selection) -> Assessment {
    let name = step.name();
    let excluded = if sel.skip.contains(&name) {
        Some("--skip")
    } else if !sel.only.is_empty() && !sel.only.contains(&name) {
        Some("not in --only")
    } else {
        None
    };
    let missing: Vec<String> = step
        .secret_keys(cfg)
        .into_iter()
        .filter_map(|k| cfg.absent.get(k).map(|why| format!("{k} {why}")))
        .collect();
    let checkpoint = state.steps.get(name.as_str());
    let forced = sel.force.contains(&name);
    match (step.desired(cfg), excluded) {
        (Applies::No(reason), _) => Assessment::NotConfigured(reason),
        (Applies::Yes(_), Some(why)) => Assessment::Excluded(why.into()),
        // Done with a secret that is gone now (a used IACT or password
        // the operator removed): unchanged, never re-sent without it;
        // unless its other keys changed since (seen through the fingerprint
        // without secrets), which cannot be applied without the secret.
        (Applies::Yes(d), None) if !missing.is_empty() => {
            let changed = state
                .public
                .get(name.as_str())
                .is_some_and(|p| *p != d.public_fingerprint(&state.salt));
            match checkpoint {
                Some(c) if !forced && (!changed || step.schedule() == Schedule::Once) => {
                    Assessment::Done { at: c.at.clone() }
                }
                Some(_) if !forced => Assessment::NeedsSecret(format!(
                    "step {name}'s config changed since it was applied, and applying it has to send {}: \
                     provide it and rerun (nothing was sent)",
                    missing.join("; ")
                )),
                _ => Assessment::NeedsSecret(format!(
                    "step {name} has to send {}: provide it and rerun (nothing was sent)",
                    missing.join("; ")
                )),
            }
        }
        (Applies::Yes(d), None) => match checkpoint {
            Some(_) if forced => Assessment::Pending {
                changed: false,
                forced: true,
            },
            Some(c) if c.fingerprint == d.fingerprint(&state.salt) => {
                Assessment::Done { at: c.at.clone() }
            }
            Some(c) if step.schedule() == Schedule::Once => Assessment::Done { at: c.at.clone() },
            Some(_) => Assessment::Pending {
                changed: true,
                forced: false,
            },
            None => Assessment::Pending {
                changed: false,
                forced,
            },
        },
    }
}

/// Schedules that depend on the others: a guard runs when anything else
/// will, and only then; a helper step runs only with the step it serves;
/// a step that must be checked again ([`Step::recheck`]) runs alone too.
fn scheduled(out: &mut [(&'static dyn Step, Assessment)], cfg: &Config, state: &State) {
    let live = |a: &Assessment| matches!(a, Assessment::Pending { .. } | Assessment::Done { .. });
    let rechecked: Vec<StepName> = out
        .iter()
        .filter(|(s, a)| live(a) && s.recheck(cfg, state).is_some())
        .map(|(s, _)| s.name())
        .collect();
    let pending: Vec<StepName> = out
        .iter()
        .filter(|(_, a)| a.is_pending())
        .map(|(s, _)| s.name())
        .chain(rechecked.iter().copied())
        .collect();
    for (step, a) in out.iter_mut() {
        if !live(a) {
            continue;
        }
        let name = step.name();
        let done_or = |why: String| match state.steps.get(name.as_str()) {
            Some(c) => Assessment::Done { at: c.at.clone() },
            None => Assessment::NotConfigured(why),
        };
        match step.schedule() {
            Schedule::WithAnyOther => {
                let alone = rechecked.contains(&name);
                *a = if alone || pending.iter().any(|p| *p != name) {
                    Assessment::Pending {
                        changed: false,
                        forced: false,
                    }
                } else {
                    done_or("nothing else to do".into())
                };
            }
            // What it obtained is kept in memory only, so it runs again
            // whenever the step it serves does, checkpoint or not.
            Schedule::With(other) => {
                let forced = matches!(a, Assessment::Pending { forced: true, .. });
                *a = if pending.contains(&other) {
                    Assessment::Pending {
                        changed: false,
                        forced,
                    }
                } else {
                    done_or(format!("not needed: the {other} step does not run"))
                };
            }
            // Done, but what it made changed since (its `recheck`).
            _ if rechecked.contains(&name) => {
                *a = Assessment::Pending {
                    changed: false,
                    forced: false,
                };
            }
            _ => {}
        }
    }
}

/// Runs the machine to the end (the `run` command).
pub fn run(cfg: &Config, sel: &Selection, client: Client, report: &Reporter) -> Result<(), Error> {
    // A secret that a pending step must send and that is absent stops the
    // run before the state directory is touched or anything is sent.
    if !cfg.absent.is_empty() {
        let peek = crate::session::load_state(&cfg.state_dir, None)
            .ok()
            .flatten()
            .unwrap_or_else(|| State::new(&cfg.tfe.address));
        if let Some(e) = needs_secret(&assess(cfg, &peek, sel)) {
            Tally::default().finish(report, Some(&e), None);
            return Err(e);
        }
    }
    let Some((session, state)) = Session::open(cfg, true)? else {
        return Err(Error::Usage("internal: no state was begun".into()));
    };
    let plan = assess(cfg, &state, sel);
    let mut ctx = session.ctx(cfg, client, state, report);
    let mut tally = Tally::default();
    for w in cfg
        .warnings
        .iter()
        .cloned()
        .chain(unchecked_secrets(cfg, &plan))
    {
        report.emit(Event::Warning {
            step: None,
            message: &w,
        });
    }
    // Checked again under the lock: another run may have moved on since.
    if let Some(e) = needs_secret(&plan) {
        return Err(tally.ended(report, &ctx, e));
    }
    let mut needs = release_needs(cfg, &plan, ctx.fleet.is_some());
    for (step, a) in plan {
        let name = step.name();
        if !needs.is_empty()
            && a.is_pending()
            && step.needs_ready_tfe()
            && let Err(e) = ctx.release_has(&std::mem::take(&mut needs), true)
        {
            return Err(tally.ended(report, &ctx, e));
        }
        if let Some(signal) = crate::stop::requested() {
            let e = Error::Interrupted {
                signal,
                after: None,
            };
            return Err(tally.ended(report, &ctx, e));
        }
        let (outcome, detail) = match a {
            Assessment::NotConfigured(reason) | Assessment::NeedsSecret(reason) => {
                (Outcome::Skipped, reason)
            }
            Assessment::Excluded(why) => (Outcome::Skipped, format!("excluded by {why}")),
            Assessment::Done { at } => (Outcome::Unchanged, format!("done at {at}")),
            Assessment::Pending { changed, forced } => {
                ctx.forced = forced;
                match run_pending(step, changed, &mut ctx, &mut tally, report) {
                    Ok(()) => continue,
                    Err(e) => return Err(tally.ended(report, &ctx, e)),
                }
            }
        };
        tally.step(report, name, outcome, Duration::ZERO, &detail);
    }
    tally.finish(report, None, ctx.state.facts.tfe_version.as_deref());
    Ok(())
}

/// What the pending steps need of the TFE release: checked once TFE is
/// ready, before the first step that may change anything. On a node of a
/// fleet the node that sends a step checks it ([`fleet::apply`]), unless
/// it is forced here.
fn release_needs(
    cfg: &Config,
    plan: &[(&'static dyn Step, Assessment)],
    in_fleet: bool,
) -> Vec<(StepName, crate::step::Requirement)> {
    plan.iter()
        .filter(|(_, a)| match a {
            Assessment::Pending { forced, .. } => !in_fleet || *forced,
            _ => false,
        })
        .filter_map(|(s, _)| s.requires(cfg).map(|r| (s.name(), r)))
        .collect()
}

/// Applies one pending step ([`fleet::apply`]) and checkpoints it; says how
/// it ended. `changed`: it was done before with another config.
fn run_pending(
    step: &'static dyn Step,
    changed: bool,
    ctx: &mut Ctx<'_>,
    tally: &mut Tally,
    report: &Reporter,
) -> Result<(), Error> {
    let name = step.name();
    report.emit(Event::StepStarted { step: name });
    let started = Instant::now();
    let fresh = !ctx.state.steps.contains_key(name.as_str());
    let applied = match fleet::apply(step, ctx, fresh) {
        Ok(applied) => applied,
        Err(e) => {
            // A stop request cut a wait short: say so, not "failed".
            let e = match crate::stop::requested() {
                Some(signal) => Error::Interrupted {
                    signal,
                    after: Some(name),
                },
                None => e,
            };
            if step.on_failure(&mut ctx.state) {
                let _ = ctx.checkpoints.save(&ctx.state);
            }
            let msg = match &e {
                Error::Step { message, .. } => message.clone(),
                other => other.to_string(),
            };
            tally.step(report, name, Outcome::Failed, started.elapsed(), &msg);
            return Err(e);
        }
    };
    let elapsed = started.elapsed();
    if let Err(e) = checkpoint(step, ctx, &applied) {
        tally.count(Outcome::Failed);
        return Err(e);
    }
    let mut detail = applied.detail;
    if applied.outcome == Outcome::Applied {
        if changed {
            detail.push_str(" (config changed)");
        }
        ctx.checked.clear();
    }
    tally.step(report, name, applied.outcome, elapsed, &detail);
    Ok(())
}

/// Records `step` as done with the config it applied (unless it skipped
/// itself), and TFE's clock offset, in the state file.
fn checkpoint(step: &'static dyn Step, ctx: &mut Ctx<'_>, applied: &Done) -> Result<(), Error> {
    let Applies::Yes(d) = step.desired(ctx.cfg) else {
        return Ok(());
    };
    if applied.outcome == Outcome::Skipped {
        return Ok(());
    }
    let cp = Checkpoint {
        status: "done".into(),
        at: rfc3339(SystemTime::now()),
        fingerprint: d.fingerprint(&ctx.state.salt),
        detail: Some(applied.detail.clone()),
    };
    ctx.state.steps.insert(step.name().as_str().into(), cp);
    let name = step.name().as_str().to_string();
    if d.secrets.is_empty() {
        ctx.state.public.remove(&name);
    } else {
        let public = d.public_fingerprint(&ctx.state.salt);
        ctx.state.public.insert(name, public);
    }
    if let Some(o) = ctx.client.clock_offset() {
        ctx.state.facts.tfe_clock_offset = Some(o);
    }
    ctx.checkpoints.save(&ctx.state).map_err(|e| {
        Error::step(
            step.name(),
            format!(
                "done, but its checkpoint could not be saved: {e}; free space or fix the state directory, then rerun"
            ),
        )
    })
}

/// The usage error naming every absent secret a pending step must send.
fn needs_secret(plan: &[(&'static dyn Step, Assessment)]) -> Option<Error> {
    let blocked: Vec<&str> = plan
        .iter()
        .filter_map(|(_, a)| match a {
            Assessment::NeedsSecret(m) => Some(m.as_str()),
            _ => None,
        })
        .collect();
    (!blocked.is_empty()).then(|| Error::Usage(blocked.join("\n")))
}

/// One warning per absent secret of a step that is done: its value cannot
/// be checked for changes, so the step stays as it was applied.
pub fn unchecked_secrets(cfg: &Config, plan: &[(&'static dyn Step, Assessment)]) -> Vec<String> {
    let mut out = vec![];
    for (step, a) in plan {
        if !matches!(a, Assessment::Done { .. }) {
            continue;
        }
        for k in step.secret_keys(cfg) {
            if let Some(why) = cfg.absent.get(k) {
                out.push(format!(
                    "{k} {why}: step {} is done, and stays as it was applied (a change to that secret cannot be seen without it; nothing is sent for it)",
                    step.name()
                ));
            }
        }
    }
    out
}
