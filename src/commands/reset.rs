//! `reset`: forget checkpoints so steps run again. Never deletes a token file.

use super::{load_if_any, state_dir};
use crate::cli::Cli;
use crate::error::{Error, exit};
use crate::output::{Format, Reporter};
use crate::state::{CheckpointStore, DirStore};
use crate::step::StepName;
use crate::steps;
use serde_json::json;

pub(super) fn reset(
    cli: &Cli,
    report: &Reporter,
    steps_: &[StepName],
    all: bool,
) -> Result<u8, Error> {
    let cfg = load_if_any(cli)?;
    let (dir, how) = state_dir(cli, cfg.as_ref());
    let store = DirStore::new(&dir);
    if !store.file().exists() {
        // Asked to forget what is not there: say where we looked, and fail,
        // so that a wrong state dir is never mistaken for success.
        return Err(Error::Usage(format!(
            "no checkpoints in {} ({how}): nothing was reset. If the run used another state \
             directory, pass its config with --config or the directory with --state-dir",
            dir.display()
        )));
    }
    let _lock = store.lock()?;
    let forgotten: Vec<String> = if all {
        // A damaged file must be removable too: that is the documented way out.
        store.clear()?;
        vec!["all".into()]
    } else {
        let Some(mut state) = store.load()? else {
            return Ok(exit::OK);
        };
        let mut gone = vec![];
        for s in steps_ {
            if state.steps.remove(s.as_str()).is_some() {
                gone.push(s.as_str().to_string());
            }
            if *s == steps::agent_pool::NAME {
                state.facts.agent_pool_id = None;
            }
        }
        store.save(&state)?;
        gone
    };
    if report.format() == Format::Json {
        report.print_json(json!({"event": "reset", "forgotten": forgotten, "state_dir": dir.display().to_string()}));
    } else if forgotten.is_empty() {
        return Err(Error::Usage(format!(
            "nothing was reset: {} had no checkpoint in {}",
            steps_
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            dir.display()
        )));
    } else {
        report.print(&format!(
            "forgot {} (the admin token file is kept); the next run applies {} again",
            forgotten.join(", "),
            if all { "every step" } else { "them" }
        ));
    }
    Ok(exit::OK)
}
