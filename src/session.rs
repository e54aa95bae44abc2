//! One command session: what `run` and `renew` open the same way (the
//! state directory's lock, the state and its owner check, the `[store]`
//! handle, the step context), and the one end-of-command report
//! ([`Tally`]: a `step_finished` per step, then `finished`).

use std::time::Duration;

use crate::config::Config;
use crate::error::Error;
use crate::output::{Event, Reporter};
use crate::state::{CheckpointStore, DirStore, LockGuard, State};
use crate::step::{Ctx, Outcome, StepName};
use crate::store::Store;
use crate::tfe::Client;

/// An open session: the state directory locked for this command.
pub struct Session {
    checkpoints: DirStore,
    _lock: LockGuard,
    fleet: Option<Store>,
}

impl Session {
    /// Locks the state directory and loads the state, checking that it
    /// belongs to this TFE. `Ok(None)`: there is no state yet and `create`
    /// is false (`renew`: nothing was written, nothing to renew); with
    /// `create` a new state is begun.
    pub fn open(cfg: &Config, create: bool) -> Result<Option<(Session, State)>, Error> {
        let checkpoints = DirStore::new(&cfg.state_dir);
        let lock = checkpoints.lock()?;
        let state = match checkpoints.load()? {
            Some(s) => {
                checkpoints.check_owner(&s, &cfg.tfe.address)?;
                s
            }
            None if create => State::new(&cfg.tfe.address),
            None => return Ok(None),
        };
        let fleet = cfg
            .store
            .as_ref()
            .map(|s| Store::new(s, &cfg.tfe.address, &cfg.secret_envs));
        let session = Session {
            checkpoints,
            _lock: lock,
            fleet,
        };
        Ok(Some((session, state)))
    }

    /// The context the steps (or `renew`) work in, over `state`.
    pub fn ctx<'a>(
        &'a self,
        cfg: &'a Config,
        client: Client,
        state: State,
        report: &'a Reporter,
    ) -> Ctx<'a> {
        Ctx::new(
            cfg,
            client,
            state,
            &self.checkpoints,
            self.fleet.as_ref(),
            report,
        )
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

/// The end-of-command report: how many steps ended how, each said as it
/// ends, and the `finished` event.
#[derive(Debug, Default)]
pub struct Tally {
    counts: [usize; 4],
}

impl Tally {
    /// Counts an outcome without saying it (said elsewhere, or not a step's).
    pub fn count(&mut self, o: Outcome) {
        let i = match o {
            Outcome::Applied => 0,
            Outcome::Unchanged => 1,
            Outcome::Skipped => 2,
            Outcome::Failed => 3,
        };
        self.counts[i] += 1;
    }

    /// Counts and says one step's end.
    pub fn step(
        &mut self,
        report: &Reporter,
        step: StepName,
        outcome: Outcome,
        elapsed: Duration,
        detail: &str,
    ) {
        self.count(outcome);
        report.emit(Event::StepFinished {
            step,
            outcome,
            elapsed,
            detail,
        });
    }

    /// The `finished` event; `release`: the TFE version the run knows (see
    /// [`Ctx::release`]).
    pub fn finish(&self, report: &Reporter, err: Option<&Error>, release: Option<&str>) {
        let msg = err.map(|e| e.to_string());
        report.emit(Event::Finished {
            exit_code: err.map(Error::exit_code).unwrap_or(0),
            error: msg.as_deref(),
            counts: self.counts,
            tfe_version: release,
        });
    }

    /// Emits `finished` for `e` and hands it back (`return Err(t.ended(..))`).
    pub fn ended(&self, report: &Reporter, ctx: &Ctx<'_>, e: Error) -> Error {
        self.finish(report, Some(&e), ctx.state.facts.tfe_version.as_deref());
        e
    }
}
