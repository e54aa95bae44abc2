//! `validate`: check the config and every referenced secret, offline, and
//! print a summary with secrets masked.

use serde_json::{Value, json};

use super::{client, load, preflight};
use crate::cli::Cli;
use crate::error::{Error, exit};
use crate::output::{Event, Format, Reporter};

pub(super) fn validate(
    cli: &Cli,
    report: &std::sync::Arc<Reporter>,
    with_preflight: bool,
) -> Result<u8, Error> {
    let cfg = load(cli)?;
    for w in &cfg.warnings {
        report.emit(Event::Warning {
            step: None,
            message: w,
        });
    }
    let (needed, secret_lines) = secrets_needed(&cfg);
    // Absent secrets are normal where the config is checked before they
    // exist (an image build): a warning. The preflight checks this machine
    // as it is now, so there they are an environment error.
    if !needed.is_empty() && with_preflight {
        return Err(Error::Usage(format!(
            "config {}: {}; provide them, then rerun",
            cfg.file.display(),
            needed.join("; ")
        )));
    }
    for n in &needed {
        report.emit(Event::Warning {
            step: None,
            message: &format!("{n}: set it before `run` (validate --preflight fails until then)"),
        });
    }
    let summary = cfg.summary();
    if report.format() == Format::Json {
        report.print_json(json!({"event": "validated", "config": cfg.file.display().to_string(), "summary": summary, "secrets": secret_lines}));
    } else {
        report.print(&format!("config {} is valid", cfg.file.display()));
    }
    if report.format() != Format::Json {
        for l in &secret_lines {
            report.print(&format!("  secrets: {l}"));
        }
    }
    // The summary in the config's own key names and units, with
    // --preflight too (its checks follow).
    if report.format() != Format::Json {
        let mut lines = vec![];
        flatten("", &summary, &mut lines);
        for l in lines {
            report.print(&format!("  {l}"));
        }
    }
    if !with_preflight {
        return Ok(exit::OK);
    }
    run_preflight(&cfg, report)
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        Value::Null => {}
        other => out.push(format!("{prefix} = {other}")),
    }
}

/// Which absent secrets the next run still needs, by the checkpoints (a
/// used IACT or admin password may be gone, and that is fine), and a line
/// per secret for the summary.
fn secrets_needed(cfg: &crate::config::Config) -> (Vec<String>, Vec<String>) {
    // Which secrets the next run still needs, by the checkpoints: a used
    // IACT or admin password may be gone, and that is fine.
    let state = crate::session::load_state(&cfg.state_dir, Some(&cfg.tfe.address))
        .ok()
        .flatten()
        .unwrap_or_else(|| crate::state::State::new(&cfg.tfe.address));
    let plan = crate::machine::assess(cfg, &state, &Default::default());
    let mut needed = vec![];
    let mut secret_lines = vec![];
    for (k, why) in &cfg.absent {
        let needs = plan.iter().find(|(step, a)| {
            matches!(a, crate::machine::Assessment::NeedsSecret(_))
                && step.secret_keys(cfg).contains(&k.as_str())
        });
        match needs {
            Some((step, _)) => needed.push(format!(
                "{k} {why}: step {} still has to send it",
                step.name()
            )),
            None => secret_lines.push(format!(
                "{k}: absent, not needed (no step still to run sends it)"
            )),
        }
    }
    if state.steps.contains_key(crate::step_name::ADMIN.as_str()) {
        for (k, present) in [
            ("[admin] password", cfg.admin.password.is_some()),
            ("[iact] token", cfg.iact.token.is_some()),
        ] {
            if present && !cfg.absent.contains_key(k) {
                secret_lines.push(format!(
                    "{k}: no longer needed (the admin step is done): you may remove it"
                ));
            }
        }
    }
    (needed, secret_lines)
}

/// `--preflight`: this machine's checks and TFE's, and their exit code.
fn run_preflight(
    cfg: &crate::config::Config,
    report: &std::sync::Arc<Reporter>,
) -> Result<u8, Error> {
    let mut checks = preflight::local(cfg);
    checks.extend(preflight::remote(cfg, &client(cfg, report)?));
    let code = preflight::code(&checks);
    if report.format() == Format::Json {
        let rows: Vec<Value> = checks
            .iter()
            .map(|c| json!({"check": c.name, "ok": c.ok, "detail": c.detail}))
            .collect();
        report.print_json(json!({"event": "preflight", "checks": rows, "exit_code": code}));
    } else {
        report.print("preflight:");
        for c in &checks {
            report.print(&format!(
                "  {} {:<15} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            ));
        }
        let failed = checks.iter().filter(|c| !c.ok).count();
        report.print(&if failed == 0 {
            "preflight passed".to_string()
        } else {
            format!("preflight failed: {failed} check(s) (exit {code})")
        });
    }
    Ok(code)
}
