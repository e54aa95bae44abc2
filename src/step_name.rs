//! [`StepName`] and every step's name: a leaf that the error type, the
//! step vocabulary, the steps and the commands use, so that none imports
//! another's module for a name (no circle in the module graph:
//! `tests/it/layout.rs`). The engine's `ORDER` is the one list of steps;
//! each step file takes its `NAME` from here.

use std::fmt;

/// A step's stable name (flags, the state file and JSON events use it).
/// Each step file's `const NAME` is one of the constants below; the
/// engine's order is the one list of all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StepName(&'static str);

impl StepName {
    pub const fn new(name: &'static str) -> StepName {
        StepName(name)
    }
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

pub const WAIT: StepName = StepName::new("wait");
pub const IACT: StepName = StepName::new("iact");
pub const ADMIN: StepName = StepName::new("admin");
pub const GENERAL: StepName = StepName::new("general");
pub const CUSTOMIZATION: StepName = StepName::new("customization");
pub const SMTP: StepName = StepName::new("smtp");
pub const SAML: StepName = StepName::new("saml");
pub const TWILIO: StepName = StepName::new("twilio");
pub const ORGANIZATION: StepName = StepName::new("organization");
pub const AGENT_POOL: StepName = StepName::new("agent-pool");
pub const ORG_DEFAULTS: StepName = StepName::new("org-defaults");
pub const ORG_TOKEN: StepName = StepName::new("org-token");
pub const TEAM_TOKEN: StepName = StepName::new("team-token");
pub const AGENT_TOKEN: StepName = StepName::new("agent-token");
pub const TOKEN_TTL: StepName = StepName::new("token-ttl");
pub const TERRAFORM_CREDENTIALS: StepName = StepName::new("terraform-credentials");
pub const VERIFY_TOKENS: StepName = StepName::new("verify-tokens");
