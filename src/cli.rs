//! Command-line definitions (clap) and nothing else.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::output::Format;
use crate::step::StepName;

/// What `--version` prints: the version, the target triple and the git
/// commit the binary was built from (`build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("TFE_BOOTSTRAP_TARGET"),
    ", commit ",
    env!("TFE_BOOTSTRAP_COMMIT"),
    ")"
);

/// Takes a freshly installed Terraform Enterprise to "ready for its first
/// users": waits for readiness, creates the initial admin, configures
/// settings and the organization. Resumable: every finished step is
/// checkpointed, and a rerun repeats no side effect.
///
/// Exit codes: 0 done, 1 a step failed, 2 usage/config error (nothing sent),
/// 3 TFE not ready in time, 4 no admin could be created, 5 state dir locked.
#[derive(Parser, Debug)]
#[command(name = "tfe-bootstrap", version = VERSION, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Config file (TOML).
    #[arg(long, global = true, env = "TFE_BOOTSTRAP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// State directory; overrides `[state] dir`.
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: Format,

    /// One line per HTTP request (method, path, status, latency; never bodies).
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Help for a command that reads no config and sends nothing: the global
/// flags (`--config`, `--state-dir`, `--output`, `-v`, `-q`) mean nothing
/// there, so its help leaves them out (they are still accepted).
const NO_FLAGS_HELP: &str = "{about-with-newline}\n{usage-heading} {usage}\n";
/// The same, for a command with positional arguments.
const POSITIONALS_HELP: &str =
    "{about-with-newline}\n{usage-heading} {usage}\n\nArguments:\n{positionals}\n";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the state machine to the end, skipping checkpointed steps whose config is unchanged.
    Run {
        /// Steps to leave out (comma-separated).
        #[arg(long, value_delimiter = ',', value_parser = StepParser, value_name = "STEP,...")]
        skip: Vec<StepName>,
        /// Run only these steps (comma-separated).
        #[arg(long, value_delimiter = ',', value_parser = StepParser, value_name = "STEP,...")]
        only: Vec<StepName>,
        /// Re-run these steps even though they are done (comma-separated).
        #[arg(long, value_delimiter = ',', value_parser = StepParser, value_name = "STEP,...")]
        force: Vec<StepName>,
    },
    /// Say step by step what `run` would do now, with live vs desired values (read-only).
    Plan {
        /// Exit 0 when nothing is pending, 2 when changes are pending, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Check the config and every referenced secret; print a summary with secrets masked.
    Validate {
        /// Also check the environment: state and token_file directories, and
        /// whether TFE resolves, listens, speaks TLS and answers, and, while
        /// the admin is still to be created, hands this host the IACT (exit 2
        /// for the config or environment, 3 for an unreachable TFE, 4 for an
        /// IACT refused).
        #[arg(long)]
        preflight: bool,
    },
    /// Print the checkpoints: each step, done or not, when, and whether its config changed since.
    Status,
    /// Replace every token the run wrote (admin token_file, organization,
    /// owners team) whose remaining life is under `[renew] before` (a third
    /// of its lifetime by default); revoke replaced tokens once their
    /// `[renew] grace` has passed. What is due is judged by TFE's clock (one
    /// `GET /api/v2/ping` reads it); when nothing is due, that read is all it
    /// sends: for a daily systemd timer or cron. Exit codes as `run`.
    Renew {
        /// Say what would be renewed or revoked, and change nothing (TFE's
        /// clock is still read, to judge what is due).
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a commented starter config to stdout: the least a first boot
    /// needs, nothing that can lock anyone out
    /// (`tfe-bootstrap init > /etc/tfe-bootstrap/config.toml`).
    #[command(help_template = NO_FLAGS_HELP, override_usage = "tfe-bootstrap init")]
    Init,
    /// SAML actions.
    #[command(subcommand)]
    Saml(SamlCommand),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    #[command(
        help_template = POSITIONALS_HELP,
        override_usage = "tfe-bootstrap completions <SHELL>"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout: `tfe-bootstrap man > tfe-bootstrap.1`.
    #[command(help_template = NO_FLAGS_HELP, override_usage = "tfe-bootstrap man")]
    Man,
    /// Forget checkpoints so the step(s) run again. Never deletes the admin token file.
    Reset {
        /// Steps to forget (comma-separated).
        #[arg(long, value_delimiter = ',', value_parser = StepParser, value_name = "STEP,...",
              required_unless_present = "all", conflicts_with = "all")]
        step: Vec<StepName>,
        /// Forget every checkpoint.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SamlCommand {
    /// Revoke the previous IdP certificate kept for rotation, once the new one
    /// is known to work (POST .../saml-settings/actions/revoke-old-certificate;
    /// PUT on older installs that answer the POST with 404/405).
    RevokeOldCert,
}

/// Parses a step name, and offers the names to `--help`, completions and
/// the man page.
#[derive(Clone, Copy)]
pub struct StepParser;

impl clap::builder::TypedValueParser for StepParser {
    type Value = StepName;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<StepName, clap::Error> {
        let text = value.to_str().unwrap_or("");
        parse_step(text).map_err(|e| {
            clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{e}\n")).with_cmd(cmd)
        })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            crate::machine::names().map(|n| clap::builder::PossibleValue::new(n.as_str())),
        ))
    }
}

/// A name that is no step's (`--skip`, `--only`, `--force`, `reset
/// --step`): the message lists the valid names and a close match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown step {given:?}{hint}; steps are: {all}")]
pub struct UnknownStep {
    pub given: String,
    hint: String,
    all: String,
}

/// Parses a step name.
pub fn parse_step(s: &str) -> Result<StepName, UnknownStep> {
    let s = s.trim();
    crate::machine::names()
        .find(|n| n.as_str() == s)
        .ok_or_else(|| {
            let all: Vec<&str> = crate::machine::names().map(StepName::as_str).collect();
            let hint = crate::config::did_you_mean(s, all.iter().copied())
                .map(|m| format!(" (did you mean {m:?}?)"))
                .unwrap_or_default();
            UnknownStep {
                given: s.to_string(),
                hint,
                all: all.join(", "),
            }
        })
}
