//! `reset`: forget checkpoints so steps run again. Never deletes a token
//! file; forgetting the admin moves a saved admin token aside.

use super::{load_if_any, state_dir};
use crate::cli::Cli;
use crate::error::{Error, exit};
use crate::output::{Format, Reporter};
use crate::state::{CheckpointStore, DirStore};
use crate::step::StepName;

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
    let forgotten = forget(&store, steps_, all)?;
    // Forgetting the admin means TFE was reinstalled (or is to be): the saved
    // token belongs to the old install, and the admin step prefers a saved
    // token over the IACT. Move it aside, never delete it. `--all` keeps
    // it: that is also the way out of a damaged state file, where the token
    // is still good.
    let moved = match cfg.as_ref() {
        Some(cfg) if !all && steps_.contains(&crate::step_name::ADMIN) => {
            crate::tokens::admin::set_aside(cfg)?
        }
        _ => None,
    };
    // Nothing to forget is exit 2 in every output format: a wrong step name
    // or state dir must never pass for success in a script.
    if forgotten.is_empty() && moved.is_none() {
        return Err(Error::Usage(format!(
            "nothing was reset: {} had no checkpoint in {}",
            steps_
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            dir.display()
        )));
    }
    print_reset(report, &forgotten, moved.as_deref(), &dir, steps_, all);
    Ok(exit::OK)
}

/// What the next run really does with a forgotten step: most read TFE
/// first and send nothing when it already holds what they want.
fn next_run(step: Option<StepName>) -> &'static str {
    let Some(step) = step else {
        return "every step runs; each reads TFE first and sends nothing where TFE already holds what it wants                 (write-only values are not re-sent: `run --force STEP` re-sends them); the admin token file is used";
    };
    match step.as_str() {
        "wait" => "waits for TFE to answer ready again",
        "iact" => "obtains the IACT only if the admin step still needs one",
        "admin" => {
            "uses the saved admin token if token_file still holds one, else creates the admin with the IACT"
        }
        "org-token" | "team-token" | "agent-token" => {
            "keeps the token file when it exists (no request); `run --force STEP` mints a new token"
        }
        "verify-tokens" => "checks every token file against TFE again",
        _ => {
            "reads TFE first and sends nothing if TFE already holds the readable settings (write-only values such as              passwords are not re-sent then: `run --force STEP` re-sends them)"
        }
    }
}

/// Forgets the checkpoints of `steps_` (or every one); the names forgotten.
fn forget(store: &DirStore, steps_: &[StepName], all: bool) -> Result<Vec<String>, Error> {
    Ok(if all {
        // A damaged file must be removable too: that is the documented way out.
        store.clear()?;
        vec!["all".into()]
    } else {
        let Some(mut state) = store.load()? else {
            return Ok(vec![]);
        };
        let mut gone = vec![];
        for s in steps_ {
            if state.steps.remove(s.as_str()).is_some() {
                gone.push(s.as_str().to_string());
            }
            if *s == crate::step_name::AGENT_POOL {
                state.facts.agent_pool_id = None;
            }
        }
        store.save(&state)?;
        gone
    })
}

/// What was reset, and what the next run does.
fn print_reset(
    report: &Reporter,
    forgotten: &[String],
    moved: Option<&std::path::Path>,
    dir: &std::path::Path,
    steps_: &[StepName],
    all: bool,
) {
    let moved_note = moved
        .map(|p| {
            format!(
                "; the saved admin token was moved aside to {}, so the next run creates the admin with a new IACT",
                p.display()
            )
        })
        .unwrap_or_else(|| " (the admin token file is kept)".into());
    if report.format() == Format::Json {
        report.print_json(
            json!({"event": "reset", "forgotten": forgotten, "state_dir": dir.display().to_string(),
                                 "token_file_moved_to": moved.map(|p| p.display().to_string())}),
        );
    } else {
        report.print(&format!("forgot {}{moved_note}", forgotten.join(", ")));
        if all {
            report.print(&format!("  next run: {}", next_run(None)));
        } else {
            for s in steps_
                .iter()
                .filter(|s| forgotten.iter().any(|f| f == s.as_str()))
            {
                report.print(&format!(
                    "  {:<13} next run: {}",
                    s.as_str(),
                    next_run(Some(*s))
                ));
            }
        }
    }
}
