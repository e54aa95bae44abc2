//! Integration tests: the real binaries against tfe-sim.

mod balancer;
mod compat;
mod configs;
mod day_one;
mod examples;
mod extras;
mod faults;
mod first_contact;
mod first_users;
mod fleet;
mod fleet_field;
mod fuzz;
mod hcp;
mod hostile;
mod layout;
mod ops;
mod real_tfe;
mod renew;
mod run;
mod secrets;
mod sim_api;
mod survive;
mod tls;
mod util;
mod versions;
