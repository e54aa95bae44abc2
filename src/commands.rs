//! The commands of the contract: `run`, `plan`, `validate`, `status`,
//! `reset`. Each loads what it needs, calls the machine, and hands results
//! to the reporter; `main` only maps the returned error to an exit code.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::cli::{Cli, Command, SamlCommand};
use crate::config::{Config, PoolRef, default_state_dir};
use crate::error::{Error, exit};
use crate::machine::{self, Assessment, Selection, StepName};
use crate::output::{Event, Format, Reporter, Verbosity};
use crate::state::{CheckpointStore, DirStore};
use crate::steps;
use crate::tfe::Client;

/// Runs the parsed command line; returns the exit code.
pub fn main(cli: Cli) -> u8 {
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let report = Arc::new(Reporter::new(cli.output, verbosity));
    let result = match &cli.command {
        Command::Run { skip, only, force } => {
            let sel = Selection {
                skip: skip.clone(),
                only: only.clone(),
                force: force.clone(),
            };
            run(&cli, &sel, &report)
        }
        Command::Plan { detailed_exitcode } => plan(&cli, &report, *detailed_exitcode),
        Command::Validate => validate(&cli, &report),
        Command::Status => status(&cli, &report),
        Command::Reset { step, all } => reset(&cli, &report, step, *all),
        Command::Saml(SamlCommand::RevokeOldCert) => saml_revoke(&cli, &report),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "tfe-bootstrap", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Ok(()) => Ok(exit::OK),
                Err(e) => Err(Error::Usage(format!("cannot write the man page: {e}"))),
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // `run` reports its own failure through the event stream.
            if !matches!(cli.command, Command::Run { .. }) || !matches!(e, Error::Step { .. }) {
                report.emit(Event::Finished {
                    exit_code: e.exit_code(),
                    error: Some(&e.to_string()),
                    counts: [0; 4],
                });
            }
            e.exit_code()
        }
    }
}

fn config_path(cli: &Cli) -> Result<PathBuf, Error> {
    cli.config.clone().ok_or_else(|| {
        Error::Usage("no config file: pass --config FILE or set TFE_BOOTSTRAP_CONFIG".into())
    })
}

fn load(cli: &Cli) -> Result<Config, Error> {
    Ok(Config::load(&config_path(cli)?, cli.state_dir.as_deref())?)
}

fn client(cfg: &Config, report: &Arc<Reporter>) -> Result<Client, Error> {
    let r = Arc::clone(report);
    Ok(Client::new(&cfg.tfe)
        .map_err(|e| {
            Error::Config(crate::config::ConfigError {
                file: cfg.file.clone(),
                problems: vec![e],
            })
        })?
        .with_observer(Arc::new(move |ev| r.emit(Event::Request(ev)))))
}

fn run(cli: &Cli, sel: &Selection, report: &Arc<Reporter>) -> Result<u8, Error> {
    let cfg = load(cli)?;
    let client = client(&cfg, report)?;
    let dir = cfg.state_dir.display().to_string();
    report.emit(Event::RunStarted {
        command: "run",
        address: &cfg.tfe.address,
        state_dir: &dir,
    });
    machine::run(&cfg, sel, client, report).map(|()| exit::OK)
}

/// `saml revoke-old-cert`: one PUT with the admin token.
fn saml_revoke(cli: &Cli, report: &Arc<Reporter>) -> Result<u8, Error> {
    let cfg = load(cli)?;
    let base = client(&cfg, report)?;
    let step = StepName::Saml;
    let admin = steps::load_admin_client(&cfg, &base, step)?;
    admin
        .saml_revoke_old_cert()
        .map_err(|e| Error::step(step, format!("revoking the old IdP certificate: {e}")))?;
    report.print("revoked the previous SAML IdP certificate; only the current one is trusted now");
    Ok(exit::OK)
}

fn validate(cli: &Cli, report: &Reporter) -> Result<u8, Error> {
    let cfg = load(cli)?;
    for w in &cfg.warnings {
        report.emit(Event::Warning {
            step: None,
            message: w,
        });
    }
    let summary = cfg.summary();
    if report.format() == Format::Json {
        report.print_json(json!({"event": "validated", "config": cfg.file.display().to_string(), "summary": summary}));
        return Ok(exit::OK);
    }
    report.print(&format!("config {} is valid", cfg.file.display()));
    let mut lines = vec![];
    flatten("", &summary, &mut lines);
    for l in lines {
        report.print(&format!("  {l}"));
    }
    Ok(exit::OK)
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

fn state_dir(cli: &Cli, cfg: Option<&Config>) -> PathBuf {
    cli.state_dir
        .clone()
        .or_else(|| cfg.map(|c| c.state_dir.clone()))
        .unwrap_or_else(default_state_dir)
}

fn status(cli: &Cli, report: &Reporter) -> Result<u8, Error> {
    let cfg = match &cli.config {
        Some(_) => Some(load(cli)?),
        None => None,
    };
    let dir = state_dir(cli, cfg.as_ref());
    let state = machine::load_state(&dir, cfg.as_ref().map(|c| c.tfe.address.as_str()))?;
    let json_out = report.format() == Format::Json;
    let Some(state) = state else {
        if json_out {
            report.print_json(
                json!({"event": "status", "state_dir": dir.display().to_string(), "steps": []}),
            );
        } else {
            report.print(&format!(
                "no checkpoints in {} yet: nothing has run",
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
    let mut rows = vec![];
    for step in StepName::ALL {
        let cp = state.steps.get(step.as_str());
        let changed = match (&cfg, cp) {
            (Some(c), Some(cp)) => match steps::desired(step, c) {
                Ok(d) => Some(d.fingerprint(&state.salt) != cp.fingerprint),
                Err(_) => None,
            },
            _ => None,
        };
        let configured = cfg.as_ref().map(|c| steps::desired(step, c).is_ok());
        if json_out {
            rows.push(
                json!({"step": step.as_str(), "done": cp.is_some(), "at": cp.map(|c| &c.at),
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
            report.print(&format!("  {:<13} {what}", step.as_str()));
        }
    }
    // What the run learned on the way (never a secret).
    let f = &state.facts;
    let expires = f
        .admin_token_expires_unix
        .map(|t| crate::util::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t)));
    let token_files: Vec<Value> = f
        .token_files
        .iter()
        .map(|(step, t)| json!({"step": step, "path": t.path.display().to_string(), "organization": t.organization}))
        .collect();
    if json_out {
        report.print_json(json!({"event": "status", "state_dir": dir.display().to_string(),
            "tfe_address": state.tfe_address, "steps": rows,
            "facts": {"agent_pool_id": f.agent_pool_id, "admin_token_expires": expires, "token_files": token_files}}));
        return Ok(exit::OK);
    }
    if let Some(id) = &f.agent_pool_id {
        report.print(&format!("  default agent pool id: {id}"));
    }
    if let Some(e) = &expires {
        report.print(&format!(
            "  admin token (rotated by tfe-bootstrap) expires {e}: rotate or replace it before then"
        ));
    }
    for t in &token_files {
        report.print(&format!(
            "  {} token file: {} (organization {})",
            t["step"].as_str().unwrap_or(""),
            t["path"].as_str().unwrap_or(""),
            t["organization"]
        ));
    }
    Ok(exit::OK)
}

fn reset(cli: &Cli, report: &Reporter, steps_: &[StepName], all: bool) -> Result<u8, Error> {
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
            if *s == StepName::AgentPool {
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

/// One line of drift: a key, its live value, the desired one.
fn drift_rows(
    live: &Map<String, Value>,
    desired: &Map<String, Value>,
    write_only: &[&str],
) -> Vec<Value> {
    let mut rows = vec![];
    for (k, want) in desired {
        let have = live.get(k).cloned().unwrap_or(Value::Null);
        if &have != want {
            rows.push(json!({"key": k, "live": have, "desired": want}));
        }
    }
    for k in write_only {
        rows.push(json!({"key": k, "live": "write-only", "desired": "write-only, sent on apply"}));
    }
    rows
}

/// Live vs desired values for a step, when the admin token is at hand.
fn drift(
    step: StepName,
    cfg: &Config,
    admin: &Client,
    pool_id: Option<&str>,
) -> Result<Vec<Value>, String> {
    if let Some((kind, section)) = steps::settings::settings_of(step, cfg) {
        let Some(s) = section else { return Ok(vec![]) };
        let live = admin.settings(kind).map_err(|e| e.to_string())?;
        let mut wo: Vec<&str> = s.write_only.keys().map(String::as_str).collect();
        wo.extend(s.secrets.iter().map(|(k, _)| *k));
        return Ok(drift_rows(&live, &s.attributes, &wo));
    }
    let Some(o) = &cfg.organization else {
        return Ok(vec![]);
    };
    match step {
        StepName::Organization | StepName::OrgDefaults | StepName::TokenTtl => {
            let Some(live) = admin.organization(&o.name).map_err(|e| e.to_string())? else {
                return Ok(vec![
                    json!({"key": "organization", "live": null, "desired": o.name}),
                ]);
            };
            let mut l = Map::new();
            let mut d = Map::new();
            match step {
                StepName::Organization => {
                    l.insert("email".into(), json!(live.email));
                    d.insert("email".into(), json!(o.email));
                }
                StepName::OrgDefaults => {
                    if let Some(m) = &o.default_execution_mode {
                        l.insert(
                            "default-execution-mode".into(),
                            json!(live.default_execution_mode),
                        );
                        d.insert("default-execution-mode".into(), json!(m));
                        if m == "agent" {
                            let want = match &o.default_agent_pool {
                                Some(PoolRef::Id(id)) => Some(id.as_str()),
                                _ => pool_id,
                            };
                            l.insert(
                                "default-agent-pool".into(),
                                json!(live.default_agent_pool_id),
                            );
                            d.insert("default-agent-pool".into(), json!(want));
                        }
                    }
                }
                _ => {
                    if let Some(e) = o.max_ttl_enabled {
                        l.insert("max-ttl-enabled".into(), json!(live.max_ttl_enabled));
                        d.insert("max-ttl-enabled".into(), json!(e));
                    }
                    if let Some(p) = &o.token_ttl {
                        let policies = admin
                            .token_ttl_policies(&o.name)
                            .map_err(|e| e.to_string())?;
                        for (t, ms) in p {
                            l.insert(
                                format!("ttl.{t}"),
                                policies.get(*t).cloned().unwrap_or(Value::Null),
                            );
                            d.insert(format!("ttl.{t}"), json!(ms));
                        }
                    }
                }
            }
            Ok(drift_rows(&l, &d, &[]))
        }
        _ => Ok(vec![]),
    }
}

fn plan(cli: &Cli, report: &Arc<Reporter>, detailed: bool) -> Result<u8, Error> {
    let cfg = load(cli)?;
    let state = machine::load_state(&cfg.state_dir, Some(&cfg.tfe.address))?
        .unwrap_or_else(|| crate::state::State::new(&cfg.tfe.address));
    let assessed = machine::assess(&cfg, &state, &Selection::default());
    let token_at_hand = cfg.admin.token.is_some() || cfg.admin.token_file.exists();
    // Read-only in the transport: any non-GET fails before it is sent.
    let base = client(&cfg, report)?.read_only();
    let admin = if token_at_hand {
        Some(steps::load_admin_client(&cfg, &base, StepName::Admin).map_err(|e| e.to_string()))
    } else {
        None
    };
    let json_out = report.format() == Format::Json;
    if !json_out {
        report.print(&format!(
            "plan for {} (state {})",
            cfg.tfe.address,
            cfg.state_dir.display()
        ));
    }
    if let Some(Err(e)) = &admin {
        report.emit(Event::Warning {
            step: None,
            message: &format!("live values unavailable: {e}"),
        });
    }
    let mut pending = 0;
    for (step, a) in &assessed {
        let (action, detail) = match a {
            Assessment::NotConfigured(r) => ("skipped", r.clone()),
            Assessment::Excluded(r) => ("skipped", r.clone()),
            Assessment::Done { at } => ("done", format!("at {at}")),
            Assessment::Pending { changed: true, .. } => ("config changed", "will apply".into()),
            Assessment::Pending { .. } => ("will apply", String::new()),
        };
        let is_pending = matches!(a, Assessment::Pending { .. });
        let needs_token = is_pending && *step > StepName::Admin && !token_at_hand;
        if is_pending && *step != StepName::Wait {
            pending += 1;
        }
        let configured = !matches!(a, Assessment::NotConfigured(_));
        let rows = match (&admin, configured, *step > StepName::Admin) {
            (Some(Ok(c)), true, true) => drift(
                *step,
                &cfg,
                c,
                state.facts.agent_pool_id.as_deref(),
            )
            .unwrap_or_else(|e| {
                vec![json!({"key": "(live)", "live": format!("unreadable: {e}"), "desired": null})]
            }),
            _ => vec![],
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
        if json_out {
            report.print_json(json!({"event": "plan", "step": step.as_str(), "action": action, "detail": detail, "drift": rows}));
        } else {
            report.print(&format!("  {:<13} {:<17} {detail}", step.as_str(), action));
            for r in &rows {
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
                    step.as_str()
                ));
            }
        }
    }
    if json_out {
        report.print_json(json!({"event": "finished", "exit_code": 0, "pending": pending}));
    } else {
        report.print(&format!("{pending} step(s) pending"));
    }
    Ok(if detailed && pending > 0 { 2 } else { exit::OK })
}
