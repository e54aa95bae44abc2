//! `status`: the checkpoints, offline: each step, done or not, when, and
//! whether its config changed since; and what the run learned on the way.

use serde_json::{Value, json};

use super::{load_if_any, state_dir};
use crate::cli::Cli;
use crate::config::Config;
use crate::error::{Error, exit};
use crate::machine::ORDER;
use crate::output::{Format, Reporter};
use crate::state::{CheckpointStore, DirStore, State};
use crate::tokens::renew::Held;

pub(super) fn status(cli: &Cli, report: &Reporter) -> Result<u8, Error> {
    let cfg = load_if_any(cli)?;
    let (dir, how) = state_dir(cli, cfg.as_ref());
    let state = crate::session::load_state(&dir, cfg.as_ref().map(|c| c.tfe.address.as_str()))?;
    let json_out = report.format() == Format::Json;
    let Some(state) = state else {
        if json_out {
            report.print_json(
                json!({"event": "status", "state_dir": dir.display().to_string(), "steps": []}),
            );
        } else {
            report.print(&format!(
                "no checkpoints in {} ({how}): no step has finished yet (a run that stopped in \
                 its first step, such as a wait that timed out, leaves none)",
                dir.display()
            ));
        }
        return Ok(exit::OK);
    };
    if !json_out {
        report.print(&format!(
            "state {} for {}",
            DirStore::new(&dir).location(),
            state.tfe_address
        ));
    }
    let rows = step_rows(report, cfg.as_ref(), &state, json_out);
    // What the run learned on the way (never a secret).
    let f = &state.facts;
    // Each token the config writes: when it expires, when renew replaces it.
    let held = cfg
        .as_ref()
        .map(|c| crate::tokens::renew::held(c, &state))
        .unwrap_or_default();
    // The facts agree with `tokens`: the admin token's expiry as renew
    // judges it (the initial admin's by TFE's default lifetime), and every
    // token file the run wrote, the admin's too; without a config, what
    // the state records.
    let admin_held = held
        .iter()
        .find(|h| h.kind == crate::tokens::TokenKind::Admin);
    let expires = admin_held
        .and_then(|h| h.expires)
        .or(f.admin_token_expires_unix)
        .map(crate::util::rfc3339_unix);
    let mut token_files: Vec<Value> = held
        .iter()
        .filter(|h| h.kind != crate::tokens::TokenKind::Agent)
        .map(|h| json!({"step": h.step.as_str(), "path": h.file.display().to_string(), "organization": h.org}))
        .collect();
    for (step, t) in &f.token_files {
        if !token_files.iter().any(|v| v["step"] == step.as_str()) {
            token_files.push(json!({"step": step, "path": t.path.display().to_string(), "organization": t.organization}));
        }
    }
    let tokens: Vec<Value> = held
        .iter()
        .map(|h| {
            json!({"step": h.step.as_str(), "path": h.file.display().to_string(),
                   "expires": h.expires.map(crate::util::rfc3339_unix),
                   "renew_from": h.renew_at.map(crate::util::rfc3339_unix)})
        })
        .collect();
    if json_out {
        report.print_json(json!({"event": "status", "state_dir": dir.display().to_string(),
            "tfe_address": state.tfe_address, "steps": rows, "tokens": tokens,
            "facts": {"agent_pool_id": f.agent_pool_id, "admin_token_expires": expires, "token_files": token_files,
                      "tfe_version": f.tfe_version,
                      "agent_token": f.agent_token.as_ref().map(|a| json!({"path": a.path.display().to_string(), "pool_id": a.pool_id, "token_id": a.token_id}))}}));
        return Ok(exit::OK);
    }
    print_facts(report, &state, &held, cfg.is_none());
    Ok(exit::OK)
}

/// One row per step: done or not, when, and whether its config changed
/// since (printed now as text; returned for JSON).
fn step_rows(report: &Reporter, cfg: Option<&Config>, state: &State, json_out: bool) -> Vec<Value> {
    let mut rows = vec![];
    for step in ORDER {
        let name = step.name();
        let cp = state.steps.get(name.as_str());
        let changed = match (cfg, cp) {
            (Some(c), Some(cp)) => config_changed(*step, c, state, cp),
            _ => None,
        };
        let configured = cfg.map(|c| step.desired(c).applies());
        if json_out {
            rows.push(
                json!({"step": name.as_str(), "done": cp.is_some(), "at": cp.map(|c| &c.at),
                             "config_changed": changed, "configured": configured,
                             "detail": cp.and_then(|c| c.detail.as_ref())}),
            );
        } else {
            let what = match (cp, changed) {
                (Some(cp), Some(true)) => format!("done {}  (config changed since)", cp.at),
                (Some(cp), _) => format!("done {}", cp.at),
                (None, _) if configured == Some(false) => "not configured".into(),
                (None, _) => "not done".into(),
            };
            report.print(&format!("  {:<13} {what}", name.as_str()));
        }
    }
    rows
}

/// What the run learned on the way, as text (never a secret).
fn print_facts(report: &Reporter, state: &State, held: &[Held], no_config: bool) {
    let f = &state.facts;
    let expires = f.admin_token_expires_unix.map(crate::util::rfc3339_unix);
    if let Some(v) = &f.tfe_version {
        report.print(&format!("  TFE version (as TFE last reported it): {v}"));
    }
    if let Some(id) = &f.agent_pool_id {
        report.print(&format!("  default agent pool id: {id}"));
    }
    if let Some(a) = &f.agent_token {
        report.print(&format!(
            "  agent token file: {} (token {} in pool {})",
            a.path.display(),
            a.token_id,
            a.pool_id
        ));
    }
    for h in held {
        let when = match (h.expires, h.renew_at) {
            (Some(e), Some(r)) => format!(
                "expires {}{}; `tfe-bootstrap renew` replaces it from {}",
                crate::util::rfc3339_unix(e),
                h.note,
                crate::util::rfc3339_unix(r)
            ),
            _ => format!("does not expire{}", h.note),
        };
        report.print(&format!(
            "  {} token {}: {when}",
            h.step.as_str(),
            h.file.display()
        ));
    }
    if let (Some(e), true) = (&expires, no_config) {
        report.print(&format!(
            "  admin token (rotated by tfe-bootstrap) expires {e}: `tfe-bootstrap renew --config FILE` replaces it before then"
        ));
    }
    for (step, t) in &f.token_files {
        report.print(&format!(
            "  {step} token file: {} (organization {})",
            t.path.display(),
            json!(t.organization)
        ));
    }
}

/// Whether `step`'s config changed since its checkpoint, as `run` judges
/// it: with a secret it sends absent, by the fingerprint without secrets
/// (`None` when the state has none: it cannot be told); a step done once
/// for good (`admin`) never counts as changed.
fn config_changed(
    step: &'static dyn crate::step::Step,
    cfg: &Config,
    state: &State,
    cp: &crate::state::Checkpoint,
) -> Option<bool> {
    let crate::step::Applies::Yes(d) = step.desired(cfg) else {
        return None;
    };
    if step.schedule() == crate::step::Schedule::Once {
        return Some(false);
    }
    let absent = step
        .secret_keys(cfg)
        .iter()
        .any(|k| cfg.absent.contains_key(*k));
    if absent {
        let name = step.name();
        return state
            .public
            .get(name.as_str())
            .map(|p| *p != d.public_fingerprint(&state.salt));
    }
    Some(d.fingerprint(&state.salt) != cp.fingerprint)
}
