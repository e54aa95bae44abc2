//! `reset`: forget checkpoints so steps run again. Never deletes a token file.

use super::{load, state_dir};
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
    let cfg = match &cli.config {
        Some(_) => Some(load(cli)?),
        None => None,
    };
    let dir = state_dir(cli, cfg.as_ref());
    let store = DirStore::new(&dir);
    if !store.file().exists() {
        report.print(&format!(
            "no checkpoints in {}: nothing to reset",
            dir.display()
        ));
        return Ok(exit::OK);
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
        report.print("nothing to forget: those steps had no checkpoint");
    } else {
        report.print(&format!(
            "forgot {} (the admin token file is kept); the next run applies {} again",
            forgotten.join(", "),
            if all { "every step" } else { "them" }
        ));
    }
    Ok(exit::OK)
}
