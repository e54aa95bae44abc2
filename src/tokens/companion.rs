//! What travels beside a token in `[store]`: its companion
//! (`KEY-expiry`), and the escaping that puts an organization name into a
//! key every helper accepts.

use crate::store::{Store, StoreError};

/// A published token's non-secret companion, `[store]` key `KEY-expiry`:
/// `MINTED EXPIRES ID DIGEST`, the first two in unix seconds by TFE's
/// clock, ID the token's id (`-` when not known), DIGEST the first 16 hex
/// digits of the token's SHA-256, which ties the companion to the token it
/// describes (a token put by hand has none that matches). It lets another
/// node record the expiry without asking TFE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Companion {
    pub minted: u64,
    pub expires: Option<u64>,
    pub id: Option<String>,
}

pub fn companion_key(key: &str) -> String {
    format!("{key}-expiry")
}

impl Companion {
    pub fn value(&self, token: &str) -> String {
        format!(
            "{} {} {} {}",
            self.minted,
            self.expires.unwrap_or(0),
            self.id.as_deref().unwrap_or("-"),
            super::digest(token)
        )
    }

    /// The companion of `token` in `value`; `None` when it describes
    /// another token (or is not one).
    pub fn parse(value: &str, token: &str) -> Option<Companion> {
        let f: Vec<&str> = value.split_whitespace().collect();
        let [minted, expires, id, d] = f[..] else {
            return None;
        };
        if d != super::digest(token) {
            return None;
        }
        Some(Companion {
            minted: minted.parse().ok()?,
            expires: expires.parse().ok().filter(|e| *e > 0),
            id: (id != "-").then(|| id.to_string()),
        })
    }

    /// Reads `key`'s companion from the store, for `token`.
    pub fn get(fleet: &Store, key: &str, token: &str) -> Result<Option<Companion>, StoreError> {
        Ok(fleet
            .get(&companion_key(key))?
            .and_then(|v| Companion::parse(&v, token)))
    }

    /// Publishes `token` under `key`, its companion first: a node that
    /// sees the token finds what describes it.
    pub fn publish(&self, fleet: &Store, key: &str, token: &str) -> Result<(), StoreError> {
        fleet.put(&companion_key(key), &self.value(token))?;
        fleet.put(key, token.trim())
    }
}

/// Escapes an organization name into a `[store]` key: injective, and within
/// `[a-z0-9.-]` (Kubernetes names are the strictest): lower-case letters,
/// digits and `-` stay, every other byte becomes `.xx` (hex), so `team-a`,
/// `team_a` and `Team-A` get three different keys ([`super::TokenKind::store_key`]).
pub fn store_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' => out.push(b as char),
            _ => out.push_str(&format!(".{b:02x}")),
        }
    }
    out
}
