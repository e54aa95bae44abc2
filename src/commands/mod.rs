//! The commands of the contract, one file each: `run` (here), `plan`,
//! `validate`, `status`, `reset`, and `saml` actions. Each loads what
//! it needs, asks the machine and the step units, and hands results to the
//! reporter; `main` only maps the returned error to an exit code.

mod man;
mod metrics;
mod plan;
mod preflight;
mod renew;
mod reset;
mod saml;
mod status;
mod validate;

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{Cli, Command, SamlCommand};
use crate::config::{Config, default_state_dir};
use crate::error::{Error, exit};
use crate::machine::{self, Selection};
use crate::output::{Event, Reporter, Verbosity};
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
        Command::Plan { detailed_exitcode } => plan::plan(&cli, &report, *detailed_exitcode),
        Command::Validate { preflight } => validate::validate(&cli, &report, *preflight),
        Command::Status => status::status(&cli, &report),
        Command::Renew { dry_run } => renew::renew(&cli, &report, *dry_run),
        Command::Reset { step, all } => reset::reset(&cli, &report, step, *all),
        Command::Saml(SamlCommand::RevokeOldCert) => saml::revoke_old_cert(&cli, &report),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "tfe-bootstrap", &mut buf);
            write_stdout(&completion_fixed(*shell, buf))
        }
        Command::Init => write_stdout(STARTER.as_bytes()),
        Command::Man => match man::render() {
            Ok(buf) => write_stdout(&buf),
            Err(e) => Err(Error::Usage(format!("cannot write the man page: {e}"))),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // A command that reported its own end (`run`, `renew`) is not
            // said twice.
            if !report.has_finished() {
                report.emit(Event::Finished {
                    exit_code: e.exit_code(),
                    error: Some(&e.to_string()),
                    counts: [0; 4],
                    tfe_version: None,
                });
            }
            e.exit_code()
        }
    }
}

/// clap_complete's bash script spells the binary's hyphenated name two
/// ways: `tfe__bootstrap__subcmd__run` where it finds the subcommand, and
/// `tfe__subcmd__bootstrap__subcmd__run` in the cases that complete it, so
/// nothing after a subcommand completed (`run --f<TAB>`, step names). One
/// spelling for both (tests/it/first_contact.rs drives the function).
fn completion_fixed(shell: clap_complete::Shell, script: Vec<u8>) -> Vec<u8> {
    if shell != clap_complete::Shell::Bash {
        return script;
    }
    String::from_utf8_lossy(&script)
        .replace("tfe__subcmd__bootstrap", "tfe__bootstrap")
        .into_bytes()
}

/// Writes generated text to stdout; a closed stdout is an error, not a panic.
fn write_stdout(bytes: &[u8]) -> Result<u8, Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map(|()| exit::OK)
        .map_err(|e| Error::Usage(format!("cannot write to stdout: {e}")))
}

/// `tfe-bootstrap init`'s output.
const STARTER: &str = include_str!("../../config/starter.toml");

/// Where the config is looked for when neither `--config` nor
/// `TFE_BOOTSTRAP_CONFIG` names one (the path the systemd unit and
/// cloud-init examples use).
pub const DEFAULT_CONFIG: &str = "/etc/tfe-bootstrap/config.toml";

/// The config file: `--config` / `TFE_BOOTSTRAP_CONFIG`, else
/// [`DEFAULT_CONFIG`] when it exists.
fn find_config(cli: &Cli) -> Option<PathBuf> {
    cli.config.clone().or_else(|| {
        let p = PathBuf::from(DEFAULT_CONFIG);
        p.exists().then_some(p)
    })
}

fn config_path(cli: &Cli) -> Result<PathBuf, Error> {
    find_config(cli).ok_or_else(|| {
        Error::Usage(format!(
            "no config file: pass --config FILE, set TFE_BOOTSTRAP_CONFIG, or put it at {DEFAULT_CONFIG}"
        ))
    })
}

/// The config when one is given or found (for `status` and `reset`, which
/// also work without one).
pub(crate) fn load_if_any(cli: &Cli) -> Result<Option<Config>, Error> {
    match find_config(cli) {
        Some(p) => Ok(Some(Config::load(&p, cli.state_dir.as_deref())?)),
        None => Ok(None),
    }
}

pub(crate) fn load(cli: &Cli) -> Result<Config, Error> {
    Ok(Config::load(&config_path(cli)?, cli.state_dir.as_deref())?)
}

pub(crate) fn client(cfg: &Config, report: &Arc<Reporter>) -> Result<Client, Error> {
    let r = Arc::clone(report);
    Ok(Client::new(&cfg.tfe)
        .map_err(|e| {
            Error::Config(crate::config::ConfigError {
                file: cfg.file.clone(),
                problems: vec![e.to_string()],
            })
        })?
        .with_observer(Arc::new(move |ev| r.emit(Event::Request(ev)))))
}

fn run(cli: &Cli, sel: &Selection, report: &Arc<Reporter>) -> Result<u8, Error> {
    crate::stop::install();
    let cfg = load(cli)?;
    // Only what waiting cannot fix stops the run before it starts.
    let failed: Vec<String> = preflight::local(&cfg)
        .into_iter()
        .filter(|c| !c.ok)
        .map(|c| c.detail)
        .collect();
    if !failed.is_empty() {
        return Err(Error::Usage(format!(
            "preflight: {}; nothing was sent",
            failed.join("; ")
        )));
    }
    let client = client(&cfg, report)?;
    started(report, &cfg, "run");
    let result = machine::run(&cfg, sel, client, report);
    metrics::record(report, &cfg, "run", result.is_ok());
    result?;
    next_steps(report, &cfg);
    Ok(exit::OK)
}

/// After a run that ended well, in text output: where to sign in, as whom,
/// where the admin token is, and how Terraform gets a token for this host
/// (README "Day one").
fn next_steps(report: &Reporter, cfg: &Config) {
    if !report.speaks() || cfg.tfe.platform == crate::config::Platform::Hcp {
        return;
    }
    let Ok(Some(state)) = crate::session::load_state(&cfg.state_dir, None) else {
        return;
    };
    if !state.steps.contains_key(crate::step_name::ADMIN.as_str()) {
        return;
    }
    let user = state
        .facts
        .admin_username
        .clone()
        .or_else(|| cfg.admin.username.clone())
        .map(|u| format!(" as {u:?}"))
        .unwrap_or_default();
    let token = match &cfg.admin.token {
        Some(t) => format!("[admin] token ({})", t.origin()),
        None => cfg.admin.token_file.display().to_string(),
    };
    // Terraform's credentials key is the host with its port; TF_TOKEN_*
    // names cannot carry one (CLI config docs, "Environment Variable
    // Credentials").
    let host = cfg
        .tfe
        .address
        .split_once("://")
        .map(|(_, h)| h.trim_end_matches('/'))
        .unwrap_or(&cfg.tfe.address);
    let env = if host.contains(':') {
        " (TF_TOKEN_* cannot name a host with a port)".to_string()
    } else {
        format!(" or TF_TOKEN_{}", host.replace('.', "_").replace('-', "__"))
    };
    report.print(&format!(
        "next: sign in at {}{user}; its API token is in {token}",
        cfg.tfe.address
    ));
    report.print(&format!(
        "      that is a site admin's token: for Terraform itself, `terraform login {host}`, a \
         credentials \"{host}\" {{ token = ... }} block{env}, with an organization or team token"
    ));
}

/// The `run_started` event of `command`, with the TFE release an earlier
/// run recorded.
pub(super) fn started(report: &Reporter, cfg: &Config, command: &str) {
    let dir = cfg.state_dir.display().to_string();
    let seen = crate::session::load_state(&cfg.state_dir, None)
        .ok()
        .flatten()
        .and_then(|s| s.facts.tfe_version);
    report.emit(Event::RunStarted {
        command,
        address: &cfg.tfe.address,
        state_dir: &dir,
        platform: cfg.tfe.platform.as_str(),
        tfe_version: seen.as_deref(),
    });
}

/// The state dir `run` would use, and how it was found (for messages).
pub(crate) fn state_dir(cli: &Cli, cfg: Option<&Config>) -> (PathBuf, String) {
    if let Some(d) = &cli.state_dir {
        return (d.clone(), "from --state-dir".into());
    }
    match cfg {
        Some(c) => (
            c.state_dir.clone(),
            format!("for config {}", c.file.display()),
        ),
        None => (
            default_state_dir(),
            format!(
                "the default, as no config was given or found (--config, TFE_BOOTSTRAP_CONFIG, {DEFAULT_CONFIG})"
            ),
        ),
    }
}
