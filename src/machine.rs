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
use crate::fleet::{Store, Turn};
use crate::output::{Event, Reporter};
use crate::state::{Checkpoint, CheckpointStore, DirStore, State};
use crate::step::{Applies, Ctx, Done, LiveCtx, Outcome, Schedule, Step, StepName};
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

/// A name that is no step's (`--skip`, `--only`, `--force`, `reset
/// --step`): the message lists the valid names and a close match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown step {given:?}{hint}; steps are: {all}")]
pub struct UnknownStep {
    pub given: String,
    hint: String,
    all: String,
}

/// Parses a step name.
pub fn parse_step(s: &str) -> Result<StepName, UnknownStep> {
    let s = s.trim();
    names().find(|n| n.as_str() == s).ok_or_else(|| {
        let all: Vec<&str> = names().map(StepName::as_str).collect();
        let hint = crate::config::did_you_mean(s, all.iter().copied())
            .map(|m| format!(" (did you mean {m:?}?)"))
            .unwrap_or_default();
        UnknownStep {
            given: s.to_string(),
            hint,
            all: all.join(", "),
        }
    })
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
    let mut out: Vec<(&'static dyn Step, Assessment)> = vec![];
    for &step in ORDER {
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
        let a = match (step.desired(cfg), excluded) {
            (Applies::No(reason), _) => Assessment::NotConfigured(reason),
            (Applies::Yes(_), Some(why)) => Assessment::Excluded(why.into()),
            // Done with a secret that is gone now (a used IACT or password
            // the operator removed): unchanged, never re-sent without it.
            (Applies::Yes(_), None) if !missing.is_empty() => {
                match state.steps.get(name.as_str()) {
                    Some(c) if !sel.force.contains(&name) => Assessment::Done { at: c.at.clone() },
                    _ => Assessment::NeedsSecret(format!(
                        "step {name} has to send {}: provide it and rerun (nothing was sent)",
                        missing.join("; ")
                    )),
                }
            }
            (Applies::Yes(d), None) => {
                let fp = d.fingerprint(&state.salt);
                let forced = sel.force.contains(&name);
                match state.steps.get(name.as_str()) {
                    Some(_) if forced => Assessment::Pending {
                        changed: false,
                        forced: true,
                    },
                    Some(c) if c.fingerprint == fp => Assessment::Done { at: c.at.clone() },
                    Some(c) if step.schedule() == Schedule::Once => {
                        Assessment::Done { at: c.at.clone() }
                    }
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
    // Schedules that depend on the others: a guard runs when anything else
    // will, and only then; a helper step runs only with the step it serves.
    let mut pending: Vec<StepName> = out
        .iter()
        .filter(|(_, a)| a.is_pending())
        .map(|(s, _)| s.name())
        .collect();
    // verify-tokens also runs alone when its last check failed or a token
    // file changed on disk since: a run never ends green on a dead file.
    let recheck = steps::verify_tokens::recheck(cfg, state).filter(|_| {
        out.iter().any(|(s, a)| {
            s.name() == steps::verify_tokens::NAME
                && matches!(a, Assessment::Done { .. } | Assessment::Pending { .. })
        })
    });
    if recheck.is_some() {
        pending.push(steps::verify_tokens::NAME);
    }
    for (step, a) in out.iter_mut() {
        if !matches!(a, Assessment::Pending { .. } | Assessment::Done { .. }) {
            continue;
        }
        let name = step.name();
        let done_or = |why: String| match state.steps.get(name.as_str()) {
            Some(c) => Assessment::Done { at: c.at.clone() },
            None => Assessment::NotConfigured(why),
        };
        match step.schedule() {
            Schedule::WithAnyOther => {
                let alone = name == steps::verify_tokens::NAME && recheck.is_some();
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
            _ => {}
        }
    }
    out
}

/// Runs the machine to the end (the `run` command).
pub fn run(cfg: &Config, sel: &Selection, client: Client, report: &Reporter) -> Result<(), Error> {
    let checkpoints = DirStore::new(&cfg.state_dir);
    // A secret that a pending step must send and that is absent stops the
    // run before the state directory is touched or anything is sent.
    if !cfg.absent.is_empty() {
        let peek = checkpoints
            .load()
            .ok()
            .flatten()
            .unwrap_or_else(|| State::new(&cfg.tfe.address));
        if let Some(e) = needs_secret(&assess(cfg, &peek, sel)) {
            finish(report, &[0; 4], Some(&e), None);
            return Err(e);
        }
    }
    let _lock = checkpoints.lock()?;
    let state = match checkpoints.load()? {
        Some(s) => {
            checkpoints.check_owner(&s, &cfg.tfe.address)?;
            s
        }
        None => State::new(&cfg.tfe.address),
    };
    let plan = assess(cfg, &state, sel);
    let mut counts = [0usize; 4];
    let fleet = cfg
        .store
        .as_ref()
        .map(|s| Store::new(s, &cfg.tfe.address, &cfg.secret_envs));
    let mut ctx = Ctx::new(cfg, client, state, &checkpoints, fleet.as_ref(), report);
    for w in &cfg.warnings {
        report.emit(Event::Warning {
            step: None,
            message: w,
        });
    }
    for w in unchecked_secrets(cfg, &plan) {
        report.emit(Event::Warning {
            step: None,
            message: &w,
        });
    }
    // Checked again under the lock: another run may have moved on since.
    if let Some(e) = needs_secret(&plan) {
        return Err(ended(report, &counts, &ctx, e));
    }
    // What the pending steps need of the TFE release: checked once TFE is
    // ready, before the first step that may change anything. On a node of
    // a fleet the nodes that send a step check it (`apply_step`), unless
    // it is forced here.
    let mut needs: Vec<(&'static dyn Step, crate::step::Requirement)> = plan
        .iter()
        .filter(|(_, a)| match a {
            Assessment::Pending { forced, .. } => fleet.is_none() || *forced,
            _ => false,
        })
        .filter_map(|(s, _)| s.requires(cfg).map(|r| (*s, r)))
        .collect();
    for (step, a) in plan {
        let name = step.name();
        if !needs.is_empty()
            && a.is_pending()
            && name != steps::wait::NAME
            && let Err(e) = release_has(&mut ctx, &std::mem::take(&mut needs), true)
        {
            return Err(ended(report, &counts, &ctx, e));
        }
        if let Some(signal) = crate::stop::requested() {
            let e = Error::Interrupted {
                signal,
                after: None,
            };
            return Err(ended(report, &counts, &ctx, e));
        }
        let (outcome, detail) = match a {
            Assessment::NotConfigured(reason) | Assessment::NeedsSecret(reason) => {
                (Outcome::Skipped, reason)
            }
            Assessment::Excluded(why) => (Outcome::Skipped, format!("excluded by {why}")),
            Assessment::Done { at } => (Outcome::Unchanged, format!("done at {at}")),
            Assessment::Pending { changed, forced } => {
                report.emit(Event::StepStarted { step: name });
                let started = Instant::now();
                ctx.forced = forced;
                let fresh = !ctx.state.steps.contains_key(name.as_str());
                let result = match apply_step(step, &mut ctx, fresh) {
                    // Another node may have rotated the admin token under a
                    // TTL policy, which made this node's copy invalid: take
                    // the published one and try the step once more.
                    Err(_) if steps::admin::refresh_from_store(&mut ctx) => {
                        apply_step(step, &mut ctx, fresh)
                    }
                    r => r,
                };
                let elapsed = started.elapsed();
                match result {
                    Ok(applied) => {
                        if applied.outcome != Outcome::Skipped
                            && let Applies::Yes(d) = step.desired(cfg)
                        {
                            let cp = Checkpoint {
                                status: "done".into(),
                                at: rfc3339(SystemTime::now()),
                                fingerprint: d.fingerprint(&ctx.state.salt),
                                detail: Some(applied.detail.clone()),
                            };
                            ctx.state.steps.insert(name.as_str().into(), cp);
                            if let Some(o) = ctx.client.clock_offset() {
                                ctx.state.facts.tfe_clock_offset = Some(o);
                            }
                            if let Err(e) = checkpoints.save(&ctx.state) {
                                let e = Error::step(
                                    name,
                                    format!(
                                        "done, but its checkpoint could not be saved: {e}; free space or fix the state directory, then rerun"
                                    ),
                                );
                                count(&mut counts, Outcome::Failed);
                                return Err(ended(report, &counts, &ctx, e));
                            }
                        }
                        let mut detail = applied.detail;
                        if changed && applied.outcome == Outcome::Applied {
                            detail.push_str(" (config changed)");
                        }
                        if applied.outcome == Outcome::Applied {
                            ctx.checked.clear();
                        }
                        count(&mut counts, applied.outcome);
                        report.emit(Event::StepFinished {
                            step: name,
                            outcome: applied.outcome,
                            elapsed,
                            detail: &detail,
                        });
                        continue;
                    }
                    Err(e) => {
                        // A stop request cut a wait short: say so, not "failed".
                        let e = match crate::stop::requested() {
                            Some(signal) => Error::Interrupted {
                                signal,
                                after: Some(name),
                            },
                            None => e,
                        };
                        // A failed check is checked again on the next run,
                        // even when nothing else is left to do.
                        if name == steps::verify_tokens::NAME
                            && ctx.state.steps.remove(name.as_str()).is_some()
                        {
                            ctx.state.facts.verified.clear();
                            let _ = checkpoints.save(&ctx.state);
                        }
                        let msg = match &e {
                            Error::Step { message, .. } => message.clone(),
                            other => other.to_string(),
                        };
                        count(&mut counts, Outcome::Failed);
                        report.emit(Event::StepFinished {
                            step: name,
                            outcome: Outcome::Failed,
                            elapsed,
                            detail: &msg,
                        });
                        return Err(ended(report, &counts, &ctx, e));
                    }
                }
            }
        };
        count(&mut counts, outcome);
        report.emit(Event::StepFinished {
            step: name,
            outcome,
            elapsed: Duration::ZERO,
            detail: &detail,
        });
    }
    finish(
        report,
        &counts,
        None,
        ctx.state.facts.tfe_version.as_deref(),
    );
    Ok(())
}

/// Whether the TFE release has what `needs` asks for ([`Ctx::release`]);
/// when it stays unknown the steps run and keep their fallbacks. A release
/// known to lack a feature stops the run here, before anything changed.
fn release_has(
    ctx: &mut Ctx<'_>,
    needs: &[(&'static dyn Step, crate::step::Requirement)],
    before_any_change: bool,
) -> Result<(), Error> {
    if needs.is_empty() || ctx.cfg.tfe.platform == crate::config::Platform::Hcp {
        return Ok(());
    }
    let Some(v) = ctx.release() else {
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
                step.name(),
                format!(
                    "TFE {v} has no {} (they arrive in {}): remove {} from the config, or upgrade TFE first. {sent}",
                    r.what, r.since, r.keys
                ),
            ));
        }
    }
    Ok(())
}

/// [`release_has`] for one step a node of a fleet is about to send: the
/// other nodes did their part, so the check is made where it matters.
fn fleet_release_has(step: &'static dyn Step, ctx: &mut Ctx<'_>) -> Result<(), Error> {
    match step.requires(ctx.cfg) {
        Some(r) => release_has(ctx, &[(step, r)], false),
        None => Ok(()),
    }
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

/// Applies a pending step. A step this node never checkpointed first reads
/// TFE: when every readable key already matches it is unchanged and sends
/// nothing (a replacement node, or work another node did). With `[store]`,
/// the nodes running at once decide through a duty who applies it; the
/// others wait, then take the fleet's word (`applied-STEP`, which names the
/// config TFE last took for the step) or, where that word is older than
/// their config, confirm from live state.
fn apply_step(step: &'static dyn Step, ctx: &mut Ctx<'_>, fresh: bool) -> Result<Done, Error> {
    let name = step.name();
    let on_change = step.schedule() == Schedule::OnChange;
    let shared = on_change && !ctx.forced;
    let Some(fleet) = ctx.fleet.filter(|_| shared) else {
        if shared
            && fresh
            && !ctx.new_install
            && let Some(d) = converged(step, ctx)
        {
            return Ok(Done::unchanged(d));
        }
        let applied = step.apply(ctx)?;
        // `--force` on a node of a fleet: the fleet's record follows what
        // TFE holds now.
        if let Some(fleet) = ctx.fleet.filter(|_| on_change && !step.writes_node_files()) {
            let fp = duty_fingerprint(step, ctx, fleet)?;
            fleet.set_applied(name.as_str(), &fp).map_err(|e| {
                Error::step(
                    name,
                    format!("applied, but the other nodes could not be told: {e}; fix the store and rerun"),
                )
            })?;
        }
        return Ok(applied);
    };
    let store_err = |e: crate::fleet::StoreError| Error::step(name, e);
    let fp = duty_fingerprint(step, ctx, fleet)?;
    let duty = format!("{name}-{}", &fp[..16]);
    // A step that writes this node's own file runs here whatever the
    // fleet did; the others end at the fleet's word when it names this
    // very config, as a node's own checkpoint would.
    let local = step.writes_node_files();
    let trusted = || -> Result<bool, Error> {
        Ok(!local && fleet.applied(name.as_str()).map_err(store_err)?.as_deref() == Some(&*fp))
    };
    let by_word = || {
        Done::unchanged(format!(
            "the fleet applied this config ([store] key applied-{name}); nothing sent"
        ))
    };
    if trusted()? {
        return followed(step, ctx, by_word());
    }
    let turn = fleet.claim(&duty).map_err(store_err)?;
    let turn_kind = match &turn {
        Turn::TakenOver(_) => TurnKind::TakenOver,
        _ => TurnKind::Other,
    };
    let key = match turn {
        // The token another node minted (or this node's own to mint,
        // when nobody published one): the step knows.
        Turn::Done if local => return step.apply(ctx),
        Turn::Done => {
            if trusted()? {
                return followed(step, ctx, by_word());
            }
            // The done key is older than the fleet's word (the config was
            // rolled back A→B→A), or nobody recorded the word: TFE says.
            // The node that applied it may also have rotated the admin
            // token under a TTL policy: refused, take the published one.
            let confirmed = converged(step, ctx).or_else(|| {
                steps::admin::refresh_from_store(ctx)
                    .then(|| converged(step, ctx))
                    .flatten()
            });
            if let Some(d) = confirmed {
                let _ = fleet.set_applied(name.as_str(), &fp);
                return followed(
                    step,
                    ctx,
                    Done::unchanged(format!("another node applied it: {d}")),
                );
            }
            // TFE holds something else: a new duty, named after TFE's live
            // values, so that still one node applies it for the whole fleet.
            let again = format!("{duty}-{}", live_mark(step, ctx));
            match fleet.claim(&again).map_err(store_err)? {
                Turn::Done => {
                    if trusted()? {
                        return followed(step, ctx, by_word());
                    }
                    if let Some(d) = converged(step, ctx) {
                        return followed(
                            step,
                            ctx,
                            Done::unchanged(format!("another node applied it: {d}")),
                        );
                    }
                    fleet_release_has(step, ctx)?;
                    let applied = step.apply(ctx)?;
                    fleet.set_applied(name.as_str(), &fp).map_err(store_err)?;
                    return Ok(applied);
                }
                // Between this node's read and its claim another node may
                // have applied it (under a duty named after the older live
                // values): read once more before sending.
                Turn::Mine(k) => match converged(step, ctx) {
                    Some(d) => {
                        let _ = fleet.set_applied(name.as_str(), &fp);
                        let _ = fleet.finish(&k, true);
                        return followed(
                            step,
                            ctx,
                            Done::unchanged(format!("another node applied it: {d}")),
                        );
                    }
                    None => k,
                },
                Turn::TakenOver(k) => {
                    if let Some(a) = took_over(step, ctx, fleet, &k, &fp) {
                        return Ok(a);
                    }
                    k
                }
            }
        }
        // A node new to this TFE (no checkpoint) that holds the duty reads
        // TFE first: it may already hold the config (set by hand, or by
        // nodes that ran before the store was configured).
        Turn::Mine(key) => {
            if !local
                && fresh
                && !ctx.new_install
                && let Some(d) = converged(step, ctx)
            {
                let told = fleet
                    .set_applied(name.as_str(), &fp)
                    .and(fleet.finish(&key, true));
                told.map_err(store_err)?;
                return Ok(Done::unchanged(d));
            }
            key
        }
        Turn::TakenOver(key) => {
            if let Some(a) = took_over(step, ctx, fleet, &key, &fp) {
                return Ok(a);
            }
            key
        }
    };
    ctx.took_over = matches!(turn_kind, TurnKind::TakenOver);
    let result = fleet_release_has(step, ctx).and_then(|()| step.apply(ctx));
    ctx.took_over = false;
    // The word first, then `done`: a node that sees `done` finds the word.
    let word = match (&result, local) {
        (Ok(_), false) => fleet.set_applied(name.as_str(), &fp),
        _ => Ok(()),
    };
    let finished = fleet.finish(&key, result.is_ok());
    let applied = result?;
    word.and(finished).map_err(|e| {
        Error::step(
            name,
            format!("applied, but the other nodes could not be told: {e}; they take over after [store] wait"),
        )
    })?;
    Ok(applied)
}

/// `applied`, after [`Step::follow`] took whatever the applying node
/// changed that this node uses too.
fn followed(step: &'static dyn Step, ctx: &mut Ctx<'_>, applied: Done) -> Result<Done, Error> {
    Ok(match step.follow(ctx)? {
        Some(more) => Done::unchanged(format!("{}; {more}", applied.detail)),
        None => applied,
    })
}

/// The fingerprint that names `step`'s duty and its `applied-STEP` word:
/// its shared config, secrets only through PBKDF2 under the fleet's salt.
fn duty_fingerprint(
    step: &'static dyn Step,
    ctx: &Ctx<'_>,
    fleet: &Store,
) -> Result<String, Error> {
    let name = step.name();
    let salt = fleet.salt().map_err(|e| Error::step(name, e))?.to_string();
    match step.shared(ctx.cfg) {
        Applies::Yes(d) => Ok(d.duty_fingerprint(&salt)),
        // Only a step that applies reaches its duty: this is a bug, said so.
        Applies::No(why) => Err(Error::step(
            name,
            format!("internal: applied although it does not apply ({why})"),
        )),
    }
}

/// A duty whose holder went silent or failed. TFE is read back first: when
/// it already holds the step's readable values, the holder applied it and
/// only could not say so (a `put done-...` that failed), and applying again
/// would send a second test mail. `Some(outcome)` ends the step there.
fn took_over(
    step: &'static dyn Step,
    ctx: &mut Ctx<'_>,
    fleet: &Store,
    key: &str,
    fp: &str,
) -> Option<Done> {
    let name = step.name();
    if !step.writes_node_files()
        && let Some(d) = converged(step, ctx)
    {
        let _ = fleet.set_applied(name.as_str(), fp);
        let _ = fleet.finish(key, true);
        return Some(Done::unchanged(format!(
            "the node that took this step did not report it, but TFE holds it: {d}"
        )));
    }
    let why = match fleet.last_failure() {
        true => "reported a failure".to_string(),
        false => format!(
            "did not finish it within [store] wait ({})",
            crate::config::duration::format_duration(fleet.wait)
        ),
    };
    ctx.warn(
        name,
        &format!(
            "the node that took this step {why}, and TFE does not hold it: this node applies it. \
             If that node had applied it without saying so, its side effect (a test mail, an SMS) happens twice"
        ),
    );
    None
}

/// A short, non-secret mark of what TFE holds now for `step` (its readable
/// live values; `none` when it has none): names a new duty after a rollback.
fn live_mark(step: &'static dyn Step, ctx: &mut Ctx<'_>) -> String {
    let Ok(admin) = steps::admin_client(ctx, step.name()).cloned() else {
        return "none".into();
    };
    let rows = step
        .live(&LiveCtx {
            cfg: ctx.cfg,
            admin: &admin,
            state: &ctx.state,
        })
        .unwrap_or_default();
    let live: Vec<String> = rows
        .iter()
        .filter(|r| !r.write_only)
        .map(|r| format!("{}={}", r.key, r.live))
        .collect();
    if live.is_empty() {
        return "none".into();
    }
    crate::util::sha256_hex(&[live.join("\n").as_bytes()])[..8].to_string()
}

enum TurnKind {
    TakenOver,
    Other,
}

/// Whether TFE already holds every readable key of `step` (at least one):
/// the detail line saying so, and what could not be compared.
fn converged(step: &'static dyn Step, ctx: &mut Ctx<'_>) -> Option<String> {
    let name = step.name();
    let admin = steps::admin_client(ctx, name).ok()?.clone();
    let rows = step
        .live(&LiveCtx {
            cfg: ctx.cfg,
            admin: &admin,
            state: &ctx.state,
        })
        .ok()?;
    let readable: Vec<&str> = rows
        .iter()
        .filter(|r| !r.write_only)
        .map(|r| r.key.as_str())
        .collect();
    if readable.is_empty() || rows.iter().any(|r| r.differs()) {
        return None;
    }
    // An intent left by a crash is settled: TFE holds the change.
    ctx.state.facts.witnesses.remove(name.as_str());
    let unread: Vec<&str> = rows
        .iter()
        .filter(|r| r.write_only)
        .map(|r| r.key.as_str())
        .collect();
    let mut d = format!("TFE already holds {}; nothing sent", readable.join(", "));
    if !unread.is_empty() {
        d.push_str(&format!(
            " (write-only {} cannot be compared: --force {name} re-sends them)",
            unread.join(", ")
        ));
    }
    Some(d)
}

pub(crate) fn count(counts: &mut [usize; 4], o: Outcome) {
    let i = match o {
        Outcome::Applied => 0,
        Outcome::Unchanged => 1,
        Outcome::Skipped => 2,
        Outcome::Failed => 3,
    };
    counts[i] += 1;
}

/// Emits `finished` for `e` and hands it back (`return Err(ended(..))`).
fn ended(report: &Reporter, counts: &[usize; 4], ctx: &Ctx<'_>, e: Error) -> Error {
    finish(
        report,
        counts,
        Some(&e),
        ctx.state.facts.tfe_version.as_deref(),
    );
    e
}

/// The `finished` event; `release`: the TFE version the run knows (see
/// [`Ctx::release`]).
pub(crate) fn finish(
    report: &Reporter,
    counts: &[usize; 4],
    err: Option<&Error>,
    release: Option<&str>,
) {
    let msg = err.map(|e| e.to_string());
    report.emit(Event::Finished {
        exit_code: err.map(Error::exit_code).unwrap_or(0),
        error: msg.as_deref(),
        counts: *counts,
        tfe_version: release,
    });
}

/// `tfe-bootstrap renew`: under the state lock, renews every token the
/// state records whose renewal is due ([`steps::renew`]), reporting one
/// line per token. `Ok(false)`: there is no state yet (nothing written,
/// nothing to renew).
pub fn renew(
    cfg: &Config,
    client: Client,
    report: &Reporter,
    dry_run: bool,
) -> Result<bool, Error> {
    let checkpoints = DirStore::new(&cfg.state_dir);
    let _lock = checkpoints.lock()?;
    let Some(state) = checkpoints.load()? else {
        return Ok(false);
    };
    checkpoints.check_owner(&state, &cfg.tfe.address)?;
    let fleet = cfg
        .store
        .as_ref()
        .map(|s| Store::new(s, &cfg.tfe.address, &cfg.secret_envs));
    let mut ctx = Ctx::new(cfg, client, state, &checkpoints, fleet.as_ref(), report);
    let started = Instant::now();
    let mut counts = [0usize; 4];
    match steps::renew::renew(&mut ctx, dry_run) {
        Ok(done) => {
            for r in done {
                count(&mut counts, r.applied.outcome);
                report.emit(Event::StepFinished {
                    step: r.step,
                    outcome: r.applied.outcome,
                    elapsed: started.elapsed(),
                    detail: &r.applied.detail,
                });
            }
            finish(
                report,
                &counts,
                None,
                ctx.state.facts.tfe_version.as_deref(),
            );
            Ok(true)
        }
        Err(e) => {
            if let Error::Step { step, message, .. } = &e {
                count(&mut counts, Outcome::Failed);
                report.emit(Event::StepFinished {
                    step: *step,
                    outcome: Outcome::Failed,
                    elapsed: started.elapsed(),
                    detail: message,
                });
            }
            finish(
                report,
                &counts,
                Some(&e),
                ctx.state.facts.tfe_version.as_deref(),
            );
            Err(e)
        }
    }
}

/// Loads the state for read-only commands (no lock taken; never written).
pub fn load_state(
    cfg_dir: &std::path::Path,
    address: Option<&str>,
) -> Result<Option<State>, Error> {
    let checkpoints = DirStore::new(cfg_dir);
    let st = checkpoints.load()?;
    if let (Some(s), Some(a)) = (&st, address) {
        checkpoints.check_owner(s, a)?;
    }
    Ok(st)
}
