//! Integration tests: the real binaries against tfe-sim.

mod run;
mod sim_api;
mod survive;
mod util;
