//! `plan`: what `run` would do now, step by step, and for each configured
//! step TFE's live values beside the desired ones (drift), read through the
//! same step units `run` applies. Read-only, enforced in the transport.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{client, load};
use crate::cli::Cli;
use crate::error::{Error, exit};
use crate::machine::{self, Assessment, Selection};
use crate::output::{Event, Format, Reporter};
use crate::step::{Drift, LiveCtx, Schedule, Step};
use crate::steps;
use crate::tfe::Client;

fn row_json(d: &Drift) -> Value {
    if d.write_only {
        json!({"key": d.key, "live": "write-only", "desired": "write-only, sent on apply"})
    } else {
        json!({"key": d.key, "live": d.live, "desired": d.desired})
    }
}

pub(super) fn plan(cli: &Cli, report: &Arc<Reporter>, detailed: bool) -> Result<u8, Error> {
    let cfg = load(cli)?;
    let state = crate::session::load_state(&cfg.state_dir, Some(&cfg.tfe.address))?
        .unwrap_or_else(|| crate::state::State::new(&cfg.tfe.address));
    let assessed = machine::assess(&cfg, &state, &Selection::default());
    let token_at_hand = cfg.admin.token.is_some() || cfg.admin.token_file.exists();
    // Read-only in the transport: any non-GET fails before it is sent.
    let base = client(&cfg, report)?.read_only();
    reachable(&cfg, &base)?;
    let admin = token_at_hand.then(|| {
        steps::load_admin_client(
            &cfg,
            &base,
            crate::step_name::ADMIN,
            state.facts.admin_token_expires_unix.is_some(),
            report.as_ref(),
        )
        .map(|(c, _)| c)
        .map_err(|e| e.to_string())
    });
    let json_out = report.format() == Format::Json;
    let release = state.facts.tfe_version.clone();
    if !json_out {
        let seen = release
            .as_deref()
            .map(|v| format!("; TFE {v} when last seen"))
            .unwrap_or_default();
        report.print(&format!(
            "plan for {} (state {}; platform {}{seen})",
            cfg.tfe.address,
            cfg.state_dir.display(),
            cfg.tfe.platform.as_str()
        ));
    }
    if let Some(Err(e)) = &admin {
        report.emit(Event::Warning {
            step: None,
            message: &format!("live values unavailable: {e}"),
        });
    }
    let admin = match &admin {
        Some(Ok(c)) => Some(c),
        _ => None,
    };
    let lines: Vec<Line> = assessed
        .iter()
        .map(|(step, a)| line(*step, a, &cfg, &state, admin, token_at_hand))
        .collect();
    let pending = print_lines(report, lines, json_out);
    if json_out {
        report.print_json(
            json!({"event": "finished", "exit_code": 0, "pending": pending,
            "platform": cfg.tfe.platform.as_str(), "tfe_version": release}),
        );
    } else {
        report.print(&format!("{pending} step(s) pending"));
    }
    Ok(if detailed && pending > 0 { 2 } else { exit::OK })
}

/// A plan is read from TFE: one that cannot be reached gives no plan,
/// rather than "will apply" for everything.
fn reachable(cfg: &crate::config::Config, base: &Client) -> Result<(), Error> {
    let probe = base.with_timeout(
        cfg.tfe
            .request_timeout
            .min(std::time::Duration::from_secs(10)),
    );
    if let Err(e) = probe.ready_probe(cfg.tfe.platform)
        && e.status().is_none()
    {
        return Err(Error::step(
            crate::step_name::WAIT,
            format!(
                "cannot plan: TFE at {} cannot be reached ({e}); `plan` reads live values from TFE. \
                 Check [tfe] address, or `validate --preflight` to see which check fails",
                cfg.tfe.address
            ),
        ));
    }
    Ok(())
}

/// One step's line of the plan.
struct Line {
    step: &'static dyn Step,
    action: &'static str,
    detail: String,
    rows: Vec<Value>,
    is_pending: bool,
}

/// What `step` would do, and its drift read with `admin` (when the token
/// is at hand and the step comes after the admin exists).
fn line(
    step: &'static dyn Step,
    a: &Assessment,
    cfg: &crate::config::Config,
    state: &crate::state::State,
    admin: Option<&Client>,
    token_at_hand: bool,
) -> Line {
    let name = step.name();
    let after_admin = machine::position(name) > machine::position(crate::step_name::ADMIN);
    let (action, detail) = match a {
        Assessment::NotConfigured(r) => ("skipped", r.clone()),
        Assessment::NeedsSecret(r) => ("needs secret", r.clone()),
        Assessment::Excluded(r) => ("skipped", r.clone()),
        Assessment::Done { at } => ("done", format!("at {at}")),
        Assessment::Pending { changed: true, .. } => ("config changed", "will apply".into()),
        Assessment::Pending { .. } => ("will apply", String::new()),
    };
    let configured = !matches!(a, Assessment::NotConfigured(_));
    let live = match (admin, configured, after_admin) {
        (Some(c), true, true) => Some(step.live(&LiveCtx {
            cfg,
            admin: c,
            state,
        })),
        _ => None,
    };
    // As `run` does: a step never checkpointed here whose readable
    // settings TFE already holds is checkpointed without a request.
    let in_sync = matches!(
        a,
        Assessment::Pending {
            changed: false,
            forced: false
        }
    ) && step.schedule() == Schedule::OnChange
        && !state.steps.contains_key(name.as_str())
        && matches!(&live, Some(Ok(rows))
            if rows.iter().any(|d| !d.write_only) && !rows.iter().any(Drift::differs));
    let (action, detail) = if in_sync {
        (
            "in sync",
            "TFE already holds it: `run` checkpoints it and sends nothing".to_string(),
        )
    } else {
        (action, detail)
    };
    // A change that waits for an absent secret is pending too: `run` stops
    // on it (exit 2), so `--detailed-exitcode` says 2.
    let is_pending = (a.is_pending() && !in_sync) || matches!(a, Assessment::NeedsSecret(_));
    let needs_token = is_pending && after_admin && !token_at_hand;
    let rows: Vec<Value> = match live {
        Some(Ok(rows)) => rows
            .iter()
            .filter(|d| d.write_only || d.differs())
            .map(row_json)
            .collect(),
        Some(Err(e)) => vec![json!({"key": "(live)", "error": e.to_string()})],
        None => vec![],
    };
    let real_drift = rows
        .iter()
        .any(|r| r["live"] != "write-only" && r["key"] != "(live)");
    let action = if needs_token {
        "needs admin token"
    } else if action == "done" && real_drift {
        "done, drifted"
    } else {
        action
    };
    Line {
        step,
        action,
        detail,
        rows,
        is_pending,
    }
}

/// Prints the lines; how many steps are pending. A guard (`wait`) or a
/// final check (`verify-tokens`) runs only with another step: when every
/// other step is done or in sync, neither runs.
fn print_lines(report: &Reporter, lines: Vec<Line>, json_out: bool) -> usize {
    let others = lines
        .iter()
        .any(|l| l.is_pending && l.step.schedule() != Schedule::WithAnyOther);
    let mut pending = 0;
    for l in lines {
        let name = l.step.name();
        let (action, detail) =
            if l.is_pending && !others && l.step.schedule() == Schedule::WithAnyOther {
                ("not needed", "nothing else to do".to_string())
            } else {
                (l.action, l.detail)
            };
        if l.is_pending && action != "not needed" {
            pending += 1;
        }
        if json_out {
            report.print_json(json!({"event": "plan", "step": name.as_str(), "action": action, "detail": detail, "drift": l.rows}));
            continue;
        }
        report.print(&format!("  {:<13} {:<17} {detail}", name.as_str(), action));
        for r in &l.rows {
            if let Some(e) = r["error"].as_str() {
                report.print(&format!("      live values could not be read: {e}"));
                continue;
            }
            report.print(&format!(
                "      {}: live {} -> desired {}",
                r["key"].as_str().unwrap_or("?"),
                r["live"],
                r["desired"]
            ));
        }
        if action == "done, drifted" {
            report.print(&format!(
                "      (changed outside tfe-bootstrap; `run --force {}` re-applies it)",
                name.as_str()
            ));
        }
    }
    pending
}
