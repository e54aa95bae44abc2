//! tfe-bootstrap: takes a freshly installed Terraform Enterprise from "the
//! installer just finished" to "ready for its first users", unattended.
pub mod config;
pub mod sim;
pub mod util;
