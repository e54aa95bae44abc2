//! The one error type the commands return, and its exit code per the
//! contract (README "Exit codes", the man page's EXIT STATUS).

use std::fmt;

use crate::config::ConfigError;
use crate::state::StateError;
use crate::step_name::StepName;

/// Exit codes of the contract.
pub mod exit {
    /// Every configured step is done.
    pub const OK: u8 = 0;
    /// A step failed (API error, unexpected response).
    pub const STEP_FAILED: u8 = 1;
    /// Usage, config or environment error (an unusable state directory or
    /// token file); nothing sent, nothing on disk changed.
    pub const USAGE: u8 = 2;
    /// TFE did not become ready within `[wait] timeout`.
    pub const NOT_READY: u8 = 3;
    /// No initial admin could be created, and no admin token to resume with.
    pub const NO_ADMIN: u8 = 4;
    /// Another run holds the state directory's lock.
    pub const LOCKED: u8 = 5;
}

/// What stopped a command.
#[derive(Debug)]
pub enum Error {
    /// Bad command line (exit 2).
    Usage(String),
    /// The config file is unusable (exit 2).
    Config(ConfigError),
    /// The state directory is unusable (exit 2) or locked (exit 5).
    State(StateError),
    /// SIGTERM / SIGINT stopped the run at a safe point (exit 128 + signal).
    Interrupted {
        signal: i32,
        after: Option<StepName>,
    },
    /// A step stopped: the exit code comes from `kind`.
    Step {
        step: StepName,
        kind: StepFailure,
        message: String,
    },
}

/// Why a step stopped, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepFailure {
    /// TFE refused or failed a request, or answered what cannot be used
    /// (exit 1): a rerun after the cause is fixed goes on.
    Failed,
    /// What the operator's config or machine must fix, found before the
    /// step sent anything (exit 2, which systemd does not retry): no
    /// space, unsafe permissions, a release or platform the config does
    /// not fit.
    Environment,
    /// TFE did not become ready within `[wait] timeout` (exit 3).
    NotReady,
    /// No initial admin could be created and no admin token is at hand
    /// (exit 4).
    NoAdmin,
}

impl StepFailure {
    pub fn exit_code(self) -> u8 {
        match self {
            StepFailure::Failed => exit::STEP_FAILED,
            StepFailure::Environment => exit::USAGE,
            StepFailure::NotReady => exit::NOT_READY,
            StepFailure::NoAdmin => exit::NO_ADMIN,
        }
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Config(_) => exit::USAGE,
            Error::State(StateError::Locked { .. }) => exit::LOCKED,
            // A checkpoint that could not be saved mid-run (a disk that
            // filled up): worth a retry once space is freed.
            Error::State(StateError::Io { .. }) => exit::STEP_FAILED,
            Error::State(_) => exit::USAGE,
            Error::Step { kind, .. } => kind.exit_code(),
            Error::Interrupted { signal, .. } => (128 + signal).clamp(0, 255) as u8,
        }
    }

    pub fn step(step: StepName, message: impl fmt::Display) -> Error {
        Error::Step {
            step,
            kind: StepFailure::Failed,
            message: message.to_string(),
        }
    }
    pub fn not_ready(step: StepName, message: impl fmt::Display) -> Error {
        Error::Step {
            step,
            kind: StepFailure::NotReady,
            message: message.to_string(),
        }
    }
    /// What the environment must fix (no space, unsafe permissions), found
    /// before anything was sent: exit 2, which systemd does not retry.
    pub fn env(step: StepName, message: impl fmt::Display) -> Error {
        Error::Step {
            step,
            kind: StepFailure::Environment,
            message: message.to_string(),
        }
    }
    pub fn no_admin(step: StepName, message: impl fmt::Display) -> Error {
        Error::Step {
            step,
            kind: StepFailure::NoAdmin,
            message: message.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => f.write_str(m),
            Error::Config(e) => e.fmt(f),
            Error::State(e) => e.fmt(f),
            Error::Step { step, message, .. } => write!(f, "step {}: {message}", step.as_str()),
            Error::Interrupted { signal, after } => {
                write!(f, "stopped by {}", crate::stop::name(*signal))?;
                if let Some(s) = after {
                    write!(f, " during step {}", s.as_str())?;
                }
                write!(f, "; finished steps are checkpointed: rerun to continue")
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

impl From<StateError> for Error {
    fn from(e: StateError) -> Self {
        Error::State(e)
    }
}
