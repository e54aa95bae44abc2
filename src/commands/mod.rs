//! The commands of the contract, one file each: `run` (here), `plan`,
//! `validate`, `status`, `reset`, and `saml` actions. Each loads what
//! it needs, asks the machine and the step units, and hands results to the
//! reporter; `main` only maps the returned error to an exit code.

mod plan;
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
        Command::Validate => validate::validate(&cli, &report),
        Command::Status => status::status(&cli, &report),
        Command::Reset { step, all } => reset::reset(&cli, &report, step, *all),
        Command::Saml(SamlCommand::RevokeOldCert) => saml::revoke_old_cert(&cli, &report),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "tfe-bootstrap", &mut buf);
            write_stdout(&buf)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            match clap_mangen::Man::new(cmd).render(&mut buf) {
                Ok(()) => write_stdout(&buf),
                Err(e) => Err(Error::Usage(format!("cannot write the man page: {e}"))),
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // `run` reports its own failure through the event stream.
            let reported = matches!(e, Error::Step { .. } | Error::Interrupted { .. });
            if !matches!(cli.command, Command::Run { .. }) || !reported {
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

/// Writes generated text to stdout; a closed stdout is an error, not a panic.
fn write_stdout(bytes: &[u8]) -> Result<u8, Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map(|()| exit::OK)
        .map_err(|e| Error::Usage(format!("cannot write to stdout: {e}")))
}

fn config_path(cli: &Cli) -> Result<PathBuf, Error> {
    cli.config.clone().ok_or_else(|| {
        Error::Usage("no config file: pass --config FILE or set TFE_BOOTSTRAP_CONFIG".into())
    })
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
                problems: vec![e],
            })
        })?
        .with_observer(Arc::new(move |ev| r.emit(Event::Request(ev)))))
}

fn run(cli: &Cli, sel: &Selection, report: &Arc<Reporter>) -> Result<u8, Error> {
    crate::stop::install();
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

pub(crate) fn state_dir(cli: &Cli, cfg: Option<&Config>) -> PathBuf {
    cli.state_dir
        .clone()
        .or_else(|| cfg.map(|c| c.state_dir.clone()))
        .unwrap_or_else(default_state_dir)
}
