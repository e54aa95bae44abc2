//! tfe-bootstrap: takes a freshly installed Terraform Enterprise from "the
//! installer just finished" to "ready for its first users", unattended.
//!
//! Data flows one way: CLI ([`cli`]) → config ([`config`]) → machine
//! ([`machine`]) → steps ([`steps`]) → TFE client ([`tfe`]) → wire. Steps
//! never print; they return outcomes and the [`output`] reporter renders
//! events. Checkpoints live in [`state`]. [`sim`] is the TFE simulator the
//! tests, benchmarks and demo run against.
//!
//! | module | owns |
//! |---|---|
//! | [`cli`] | clap definitions only |
//! | [`commands`] | run / plan / validate / status / reset |
//! | [`config`] | TOML → validated [`config::Config`], durations, secrets |
//! | [`machine`] | the ordered step list; checkpoint, skip and force logic |
//! | [`steps`] | one file per step family, each with one job |
//! | [`tfe`] | transport (agent, TLS, retry) and TFE endpoints |
//! | [`state`] | checkpoint store: atomic writes, lock, permissions |
//! | [`output`] | text / JSON events / progress: the one place that prints |
//! | [`error`] | the error type and the contract's exit codes |
//! | [`sim`] | the TFE simulator |

pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod machine;
pub mod output;
pub mod sim;
pub mod state;
pub mod steps;
pub mod tfe;
pub mod util;
