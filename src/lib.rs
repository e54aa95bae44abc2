//! tfe-bootstrap: takes a freshly installed Terraform Enterprise from "the
//! installer just finished" to "ready for its first users", unattended.
//!
//! Data flows one way: CLI ([`cli`]) → commands ([`commands`]) → machine
//! ([`machine`]) → steps ([`steps`]) → TFE client ([`tfe`]) → wire. Steps
//! never print; they return outcomes and the [`output`] reporter renders
//! events. [`step`] is the vocabulary both sides share, and a leaf: it never
//! imports the machine, the steps or the reporter. Checkpoints live in
//! [`state`]. [`sim`] is the TFE simulator the tests, benchmarks and demo run
//! against.
//!
//! | module | owns |
//! |---|---|
//! | [`cli`] | clap definitions only |
//! | [`commands`] | run / plan / validate / status / reset / saml, one file each |
//! | [`config`] | TOML → validated [`config::Config`], by section; durations, secrets |
//! | [`machine`] | the ordered step list; checkpoint, skip, only and force logic |
//! | [`step`] | what a step is: name, [`step::Step`] trait, outcome, context |
//! | [`step_name`] | the step's name: a leaf the error type and [`step`] share |
//! | [`steps`] | one file per step, each with one job |
//! | [`tfe`] | transport (agent, TLS, retry) and TFE endpoints |
//! | [`state`] | checkpoint store: atomic writes, lock, permissions |
//! | [`fleet`] | the `[store]` helper: what one node tells the others |
//! | [`helper`] | runs operator commands: own process group, one deadline |
//! | [`output`] | text / JSON events / progress: the one place that prints |
//! | [`redact`] | every secret the run knows, scrubbed from every output |
//! | [`stop`] | SIGTERM / SIGINT: stop at the next safe point |
//! | [`tokens`] | the one token lifecycle: claim, keep, rescue, read back, stamp |
//! | [`util`] | timestamps, hashing, atomic and no-follow file access |
//! | [`error`] | the error type and the contract's exit codes |
//! | [`sim`] | the TFE simulator |

pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod fleet;
pub mod helper;
pub mod machine;
pub mod output;
pub mod redact;
pub mod session;
pub mod sim;
pub mod state;
pub mod step;
pub mod step_name;
pub mod steps;
pub mod stop;
pub mod store;
pub mod tfe;
pub mod tokens;
pub mod util;
