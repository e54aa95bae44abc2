//! The kinds of token the run writes, and what each has: the step that
//! writes it, its `[store]` key and companion, its rescue place in the
//! state directory, and the TTL policy type that bounds it. Every place
//! that needs one of these asks the kind, so no kind has a copy of its own.

use std::path::PathBuf;

use crate::config::Config;
use crate::step::StepName;
use crate::step_name::{ADMIN, AGENT_TOKEN, ORG_TOKEN, TEAM_TOKEN};

use super::companion::store_escape;

/// A token the run writes to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The site admin's user token (`[admin] token_file`).
    Admin,
    /// The organization's token (`[organization.service_token]`).
    Org,
    /// The owners team's token (`[organization.owners_team_token]`).
    Team,
    /// An agent token of the default pool (`[organization.agent_token]`).
    Agent,
}

impl TokenKind {
    /// Every kind, in the order the run writes them.
    pub const ALL: [TokenKind; 4] = [
        TokenKind::Admin,
        TokenKind::Org,
        TokenKind::Team,
        TokenKind::Agent,
    ];

    /// The step that writes it: the name `renew`, `status` and the events
    /// use for it.
    pub fn step(self) -> StepName {
        match self {
            TokenKind::Admin => ADMIN,
            TokenKind::Org => ORG_TOKEN,
            TokenKind::Team => TEAM_TOKEN,
            TokenKind::Agent => AGENT_TOKEN,
        }
    }

    /// In the operator's words.
    pub fn what(self) -> &'static str {
        match self {
            TokenKind::Admin => "the admin token",
            TokenKind::Org => "the organization token",
            TokenKind::Team => "the owners team token",
            TokenKind::Agent => "the agent token",
        }
    }

    /// Its `[store]` key: `admin-token`, and per organization (a renamed
    /// organization never gets the old one's token) `org-token-ORG`,
    /// `team-token-ORG`, `agent-token-ORG`, ORG escaped injectively into
    /// what every helper accepts ([`store_escape`]).
    pub fn store_key(self, org: &str) -> String {
        let org = store_escape(org);
        match self {
            TokenKind::Admin => "admin-token".to_string(),
            TokenKind::Org => format!("org-token-{org}"),
            TokenKind::Team => format!("team-token-{org}"),
            TokenKind::Agent => format!("agent-token-{org}"),
        }
    }

    /// Its second place, in the state directory: where the token goes when
    /// its file cannot be written after TFE minted it.
    pub fn rescue_path(self, cfg: &Config) -> PathBuf {
        cfg.state_dir.join(format!(
            "{}.rescue",
            match self {
                TokenKind::Admin => "admin-token",
                _ => self.step().as_str(),
            }
        ))
    }

    /// The `token-type` of the TTL policy that bounds it; agent tokens
    /// have none (they carry no expiry: API docs "Agent Tokens").
    pub fn policy_type(self) -> Option<&'static str> {
        match self {
            TokenKind::Admin => Some("user"),
            TokenKind::Org => Some("organization"),
            TokenKind::Team => Some("team"),
            TokenKind::Agent => None,
        }
    }

    /// The lifetime the config's TTL policy allows it, in ms.
    pub fn policy_ms(self, cfg: &Config) -> Option<u64> {
        let t = self.policy_type()?;
        cfg.organization
            .as_ref()?
            .token_ttl
            .as_ref()?
            .iter()
            .find(|(p, _)| *p == t)
            .map(|(_, ms)| *ms)
    }
}
