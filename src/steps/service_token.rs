//! What the service-account token steps (`org-token`, `team-token`) and
//! `token-ttl` share: mint once and keep the file, within the token type's
//! TTL policy. Regenerating a service-account token invalidates the previous
//! one (the "Service Accounts" page, source document service-accounts.txt), so an existing file is never re-minted silently; the one
//! exception is a token that a max-TTL policy this run enforces would refuse:
//! it is dead either way, so it is re-minted within the policy and the file
//! replaced atomically.

use std::path::Path;

use super::{admin_client, api_error, expiry_within, human_ms};
use crate::config::TFE_DEFAULT_TOKEN_LIFETIME_MS;
use crate::error::Error;
use crate::state::TokenFile;
use crate::step::{Ctx, Done, StepName};
use crate::tfe::api::TokenMeta;
use crate::tfe::{Client, TfeError};
use crate::tokens::{Claim, ClaimError, KeepError};
use crate::util::{rfc3339_unix, write_atomic};

/// Which service account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ServiceAccount {
    /// The organization's token (`POST .../organizations/:org/authentication-token`).
    Organization,
    /// The owners team's token (`POST /teams/:id/authentication-token`).
    OwnersTeam,
}

impl ServiceAccount {
    /// The `token-type` of its TTL policy.
    pub(super) fn policy_type(self) -> &'static str {
        match self {
            ServiceAccount::Organization => "organization",
            ServiceAccount::OwnersTeam => "team",
        }
    }
    pub(super) fn what(self) -> &'static str {
        match self {
            ServiceAccount::Organization => "the organization token",
            ServiceAccount::OwnersTeam => "the owners team token",
        }
    }
    /// Its `[store]` key, per organization (a renamed organization never
    /// gets the old one's token): `org-token-ORG` / `team-token-ORG`. ORG is
    /// escaped injectively into what every helper accepts (Kubernetes names
    /// are the strictest: lower case, digits, `-`, `.`): lower-case letters,
    /// digits and `-` stay, every other byte becomes `.xx` (hex), so
    /// `team-a`, `team_a` and `Team-A` get three different keys.
    pub(super) fn store_key(self, org: &str) -> String {
        let org = store_escape(org);
        match self {
            ServiceAccount::Organization => format!("org-token-{org}"),
            ServiceAccount::OwnersTeam => format!("team-token-{org}"),
        }
    }
    fn mint(self, c: &Client, org: &str, expired_at: Option<&str>) -> Result<String, TfeError> {
        match self {
            ServiceAccount::Organization => c.create_org_token(org, expired_at),
            ServiceAccount::OwnersTeam => c.create_team_token(&c.owners_team(org)?, expired_at),
        }
    }
    /// The token TFE holds for it now (its value is never shown again).
    fn meta(self, c: &Client, org: &str) -> Result<Option<TokenMeta>, TfeError> {
        match self {
            ServiceAccount::Organization => c.org_token_meta(org),
            ServiceAccount::OwnersTeam => c.team_token_meta(&c.owners_team(org)?),
        }
    }
}

/// See [`ServiceAccount::store_key`]: injective, and within `[a-z0-9.-]`.
pub(crate) fn store_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' => out.push(b as char),
            _ => out.push_str(&format!(".{b:02x}")),
        }
    }
    out
}

/// The TTL policy the config sets for `account`'s token type, in ms.
fn policy_ms(ctx: &Ctx<'_>, account: ServiceAccount) -> Option<u64> {
    ctx.cfg
        .organization
        .as_ref()?
        .token_ttl
        .as_ref()?
        .iter()
        .find(|(t, _)| *t == account.policy_type())
        .map(|(_, ms)| *ms)
}

/// The second place for `step`'s token, in the state directory.
pub(super) fn rescue_path(ctx: &Ctx<'_>, step: StepName) -> std::path::PathBuf {
    ctx.cfg.state_dir.join(format!("{step}.rescue"))
}

/// Mints a token for `account` within its policy (when the config sets
/// one) through the token lifecycle ([`crate::tokens`]): room claimed and
/// the intent saved before the POST, the token kept in `file` (0600,
/// atomically) or rescued, then published to `[store]`. The client retries
/// a lost answer, which only replaces a token nobody received.
pub(super) fn mint_to(
    ctx: &mut Ctx<'_>,
    step: StepName,
    account: ServiceAccount,
    file: &Path,
    org: &str,
) -> Result<TokenFile, Error> {
    let client = admin_client(ctx, step)?.clone();
    let rescue = rescue_path(ctx, step);
    let claim = Claim::make(file, &rescue).map_err(|e| {
        let (place, e) = match e {
            ClaimError::File(e) => (file.display().to_string(), e),
            ClaimError::Rescue(e) => (rescue.display().to_string(), e),
        };
        Error::env(
            step,
            format!(
                "cannot set aside room for {} at {place} ({e}); nothing was sent. Free space or fix permissions there, then rerun",
                account.what()
            ),
        )
    })?;
    ctx.state
        .facts
        .mint_intents
        .insert(step.as_str().into(), org.to_string());
    if let Err(e) = ctx.checkpoints.save(&ctx.state) {
        claim.discard();
        return Err(Error::env(
            step,
            format!(
                "cannot record the intent to mint {} ({e}); nothing was sent",
                account.what()
            ),
        ));
    }
    let expires = policy_ms(ctx, account).map(|ms| expiry_within(&client, ms));
    let expired_at = expires.map(rfc3339_unix);
    // The client retries a lost answer: each mint replaces the one before,
    // so the newest answer is the valid token and a lost one was never held.
    let token = match account.mint(&client, org, expired_at.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            claim.discard();
            return Err(api_error(step, ctx, e));
        }
    };
    claim.keep(&token).map_err(|e| match e {
        KeepError::Rescued(err, at) => Error::step(
            step,
            format!(
                "{} was minted but {} could not be written ({err}). It is safe in {} (0600): \
                 fix the cause, then rerun, which moves it into place",
                account.what(),
                file.display(),
                at.display()
            ),
        ),
        KeepError::Lost(err, e2) => Error::step(
            step,
            format!(
                "{} was minted but could not be written to {} ({err}) nor to {} ({e2}); nobody holds it. \
                 Free space, then rerun: this node recorded the mint and mints again",
                account.what(),
                file.display(),
                rescue.display()
            ),
        ),
    })?;
    ctx.state.facts.mint_intents.remove(step.as_str());
    let now = client.tfe_now();
    let expires = expires.unwrap_or(now + TFE_DEFAULT_TOKEN_LIFETIME_MS / 1000);
    let companion = Companion {
        minted: now,
        expires: Some(expires),
        id: None,
    };
    publish(ctx, step, account, file, org, &token, &companion)?;
    Ok(TokenFile {
        path: file.to_path_buf(),
        organization: org.to_string(),
        minted_unix: Some(now),
        expires_unix: Some(expires),
        minted_here: true,
        token_id: None,
    })
}

/// A published token's non-secret companion, `[store]` key `KEY-expiry`:
/// `MINTED EXPIRES ID DIGEST`, the first two in unix seconds by TFE's
/// clock, ID the token's id (`-` when not known), DIGEST the first 16 hex
/// digits of the token's SHA-256, which ties the companion to the token it
/// describes (a token put by hand has none that matches). It lets another
/// node record the expiry without asking TFE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Companion {
    pub minted: u64,
    pub expires: Option<u64>,
    pub id: Option<String>,
}

pub(super) fn companion_key(key: &str) -> String {
    format!("{key}-expiry")
}

impl Companion {
    pub(super) fn value(&self, token: &str) -> String {
        format!(
            "{} {} {} {}",
            self.minted,
            self.expires.unwrap_or(0),
            self.id.as_deref().unwrap_or("-"),
            crate::tokens::digest(token)
        )
    }

    /// The companion of `token` in `value`; `None` when it describes
    /// another token (or is not one).
    pub(super) fn parse(value: &str, token: &str) -> Option<Companion> {
        let f: Vec<&str> = value.split_whitespace().collect();
        let [minted, expires, id, d] = f[..] else {
            return None;
        };
        if d != crate::tokens::digest(token) {
            return None;
        }
        Some(Companion {
            minted: minted.parse().ok()?,
            expires: expires.parse().ok().filter(|e| *e > 0),
            id: (id != "-").then(|| id.to_string()),
        })
    }

    /// Reads `key`'s companion from the store, for `token`.
    pub(super) fn get(
        fleet: &crate::fleet::Store,
        key: &str,
        token: &str,
    ) -> Result<Option<Companion>, crate::fleet::StoreError> {
        Ok(fleet
            .get(&companion_key(key))?
            .and_then(|v| Companion::parse(&v, token)))
    }

    /// Publishes `token` under `key`, its companion first: a node that
    /// sees the token finds what describes it.
    pub(super) fn publish(
        &self,
        fleet: &crate::fleet::Store,
        key: &str,
        token: &str,
    ) -> Result<(), crate::fleet::StoreError> {
        fleet.put(&companion_key(key), &self.value(token))?;
        fleet.put(key, token.trim())
    }
}

/// Publishes a token this node minted to `[store]` (`put`: it replaces
/// whatever was there, which TFE no longer accepts), its companion first.
fn publish(
    ctx: &Ctx<'_>,
    step: StepName,
    account: ServiceAccount,
    file: &Path,
    org: &str,
    token: &str,
    companion: &Companion,
) -> Result<(), Error> {
    let Some(fleet) = ctx.fleet else {
        return Ok(());
    };
    companion.publish(fleet, &account.store_key(org), token).map_err(|e| {
        Error::step(
            step,
            format!(
                "{} was minted and written to {}, but it could not be published to [store]: {e}. \
                 The other nodes wait for it: fix the store and rerun this node",
                account.what(),
                file.display()
            ),
        )
    })
}

/// A token an earlier run rescued (its file could not be written): moved
/// into `file` and published. Whether there was one.
fn promote_rescued(
    ctx: &mut Ctx<'_>,
    step: StepName,
    account: ServiceAccount,
    file: &Path,
    org: &str,
) -> Result<bool, Error> {
    let rescue = rescue_path(ctx, step);
    let Some(token) = crate::tokens::rescued(&rescue) else {
        return Ok(false);
    };
    crate::redact::register(&token);
    crate::tokens::promote_rescued(&rescue, file).map_err(|e| {
        Error::step(
            step,
            format!(
                "{} is safe in {} (0600), but it still cannot be written to {}: {e}. Free space or fix permissions there, then rerun",
                account.what(),
                rescue.display(),
                file.display()
            ),
        )
    })?;
    ctx.state.facts.mint_intents.remove(step.as_str());
    let mut record = ctx
        .state
        .facts
        .token_files
        .get(step.as_str())
        .cloned()
        .unwrap_or_default();
    record.path = file.to_path_buf();
    record.organization = org.to_string();
    record.minted_here = true;
    let companion = Companion {
        minted: record.minted_unix.unwrap_or_else(|| ctx.client.tfe_now()),
        expires: record.expires_unix,
        id: record.token_id.clone(),
    };
    publish(ctx, step, account, file, org, &token, &companion)?;
    ctx.state
        .facts
        .token_files
        .insert(step.as_str().into(), record);
    Ok(true)
}

/// Mints a service-account token once and writes it. An existing file is
/// kept unless `--force`: regenerating invalidates the token in use. When
/// the config moves the file, the token is carried over instead of
/// regenerated.
pub(super) fn mint_once(
    ctx: &mut Ctx<'_>,
    step: StepName,
    account: ServiceAccount,
    file: &Path,
    org: &str,
) -> Result<Done, Error> {
    let what = account.what();
    if !file.exists() && promote_rescued(ctx, step, account, file, org)? {
        return Ok(Done::changed(format!(
            "{what} that an earlier run rescued moved into {} (0600)",
            file.display()
        )));
    }
    let previous = ctx.state.facts.token_files.get(step.as_str()).cloned();
    if !ctx.forced {
        if file.exists() {
            if let Some(p) = previous
                .as_ref()
                .filter(|p| p.path == file && p.organization != org)
            {
                return Err(Error::step(
                    step,
                    format!(
                        "{} holds {what} of organization {:?}, not {org:?}: move it away, or rerun with --force {step} to mint one for {org:?}",
                        file.display(),
                        p.organization,
                    ),
                ));
            }
            let record = previous
                .filter(|p| p.path == file)
                .unwrap_or_else(|| TokenFile {
                    path: file.to_path_buf(),
                    organization: org.to_string(),
                    ..TokenFile::default()
                });
            ctx.state
                .facts
                .token_files
                .insert(step.as_str().into(), record);
            // An earlier run may have stopped between writing the file and
            // publishing it: fill the gap, never replacing another node's.
            if let Some(fleet) = ctx.fleet
                && let Ok((t, _)) = crate::util::read_private(file)
            {
                fleet
                    .create(&account.store_key(org), t.trim())
                    .map_err(|e| Error::step(step, e))?;
            }
            return Ok(Done::unchanged(format!(
                "{} exists: not regenerated (that would invalidate the token in use; --force {step} mints a new one)",
                file.display(),
            )));
        }
        if let Some(p) =
            previous.filter(|p| p.organization == org && p.path != file && p.path.exists())
        {
            let (token, tightened) = crate::util::read_private(&p.path).map_err(|e| {
                Error::step(
                    step,
                    format!("cannot use {} to move it: {e}", p.path.display()),
                )
            })?;
            if let Some(w) = tightened {
                ctx.progress.warning(Some(step), &w);
            }
            write_atomic(file, token.as_bytes())
                .map_err(|e| Error::step(step, format!("cannot write {}: {e}", file.display())))?;
            let moved = TokenFile {
                path: file.to_path_buf(),
                ..p.clone()
            };
            ctx.state
                .facts
                .token_files
                .insert(step.as_str().into(), moved);
            return Ok(Done::changed(format!(
                "{what} copied from {} to {} (0600), not regenerated; the old file is left in place",
                p.path.display(),
                file.display()
            )));
        }
    }
    // This node's own mint was lost (a crash or a full disk between TFE's
    // answer and the file), or the duty holder that minted went silent:
    // nobody holds the token TFE has, so minting again invalidates nothing.
    let lost_here = ctx
        .state
        .facts
        .mint_intents
        .get(step.as_str())
        .map(String::as_str)
        == Some(org);
    if !ctx.forced
        && let Some(applied) = take_published(ctx, step, account, file, org)?
    {
        return Ok(applied);
    }
    if !ctx.forced && !lost_here && !ctx.took_over {
        // A token on TFE that this node does not hold is in use somewhere:
        // minting again would invalidate it (the "Service Accounts" page, source document service-accounts.txt).
        let client = admin_client(ctx, step)?.clone();
        if let Some(meta) = account
            .meta(&client, org)
            .map_err(|e| api_error(step, ctx, e))?
        {
            let created = meta
                .created_unix
                .map(|t| format!(" (created {})", rfc3339_unix(t)))
                .unwrap_or_default();
            let store_hint = if ctx.fleet.is_some() {
                format!("put it in [store] under key {}", account.store_key(org))
            } else {
                "configure a [store] so nodes share it (README, \"Many nodes\")".to_string()
            };
            return Err(Error::step(
                step,
                format!(
                    "TFE already has {what}{created}, and this node does not hold it; minting again would \
                     invalidate it wherever it is in use. Copy it from the node that wrote it to {}, or {store_hint}; \
                     or rerun with --force {step} to replace it",
                    file.display()
                ),
            ));
        }
    }
    let record = mint_to(ctx, step, account, file, org)?;
    let again = if lost_here || ctx.took_over {
        " (again: the token minted before was never kept, so nobody held it)"
    } else {
        ""
    };
    let until = record
        .expires_unix
        .map(|e| format!(", expires {}", rfc3339_unix(e)))
        .unwrap_or_default();
    ctx.state
        .facts
        .token_files
        .insert(step.as_str().into(), record);
    Ok(Done::changed(format!(
        "{what} written to {} (0600{until}){again}",
        file.display()
    )))
}

/// After `token-ttl` set the policies: re-mints, within the policy, each
/// service token this tool wrote whose lifetime the policy would refuse, and
/// replaces its file atomically. Returns a line per token re-minted.
pub(super) fn refit(
    ctx: &mut Ctx<'_>,
    step: StepName,
    accounts: &[(StepName, ServiceAccount)],
) -> Result<Vec<String>, Error> {
    let mut done = vec![];
    for (owner, account) in accounts {
        let Some(limit) = policy_ms(ctx, *account) else {
            continue;
        };
        let Some(rec) = ctx.state.facts.token_files.get(owner.as_str()).cloned() else {
            continue;
        };
        if !rec.path.exists() {
            continue;
        }
        let lifetime_ms = match (rec.minted_unix, rec.expires_unix) {
            (Some(m), Some(e)) => e.saturating_sub(m) * 1000,
            // A file this tool did not mint (or an older version wrote):
            // TFE says how long its token lives; no token there, nothing
            // to fit (verify-tokens judges the file).
            _ => {
                let client = admin_client(ctx, step)?.clone();
                match account
                    .meta(&client, &rec.organization)
                    .map_err(|e| api_error(step, ctx, e))?
                {
                    None => continue,
                    Some(m) => match (m.created_unix, m.expires_unix) {
                        (Some(c), Some(e)) => e.saturating_sub(c) * 1000,
                        // No `expired-at`: a token from before 2.0.0 kept by
                        // an upgrade (2.0.0 release notes), which lives
                        // longer than any policy.
                        (_, None) => u64::MAX,
                        (None, Some(_)) => TFE_DEFAULT_TOKEN_LIFETIME_MS,
                    },
                }
            }
        };
        if lifetime_ms <= limit {
            continue;
        }
        let new = mint_to(ctx, step, *account, &rec.path, &rec.organization)?;
        done.push(format!(
            "{} in {} re-minted within the {} TTL ({}; the old one lived {})",
            account.what(),
            rec.path.display(),
            account.policy_type(),
            human_ms(limit),
            if lifetime_ms == u64::MAX {
                "without an expiry".to_string()
            } else {
                human_ms(lifetime_ms)
            }
        ));
        ctx.state
            .facts
            .token_files
            .insert(owner.as_str().into(), new);
    }
    Ok(done)
}

/// With `[store]`: the token another node minted, written to `file` (0600,
/// atomically) with its lifetime read from TFE, so `token-ttl` judges it
/// like one this node minted.
fn take_published(
    ctx: &mut Ctx<'_>,
    step: StepName,
    account: ServiceAccount,
    file: &Path,
    org: &str,
) -> Result<Option<Done>, Error> {
    let Some(fleet) = ctx.fleet else {
        return Ok(None);
    };
    let Some(token) = fleet
        .get(&account.store_key(org))
        .map_err(|e| Error::step(step, e))?
    else {
        return Ok(None);
    };
    let token = crate::config::secret::Secret::new(token.trim(), "[store]");
    let client = admin_client(ctx, step)?.clone();
    // Checked before it is taken: a value left from an older token (or
    // another TFE) would otherwise end the run with a file TFE refuses.
    if !matches!(
        ctx.client
            .clone()
            .with_token(token.clone())
            .organization(org),
        Ok(Some(_))
    ) {
        let key = account.store_key(org);
        return Err(Error::step(
            step,
            format!(
                "[store] key {key} holds {} that TFE refuses for organization {org:?} (stale, or another TFE's); \
                 it was not taken. Rerun one node with --force {step}: it mints a new one and replaces the key \
                 (or `put {key}` a working token with the [store] command)",
                account.what()
            ),
        ));
    }
    ctx.checked.insert(token.expose());
    // Its lifetime: from the companion the minting node published, or
    // else from TFE.
    let key = account.store_key(org);
    let (minted, expires, id) =
        match Companion::get(fleet, &key, token.expose()).map_err(|e| Error::step(step, e))? {
            Some(c) => (Some(c.minted), c.expires, c.id),
            None => {
                let meta = account
                    .meta(&client, org)
                    .map_err(|e| api_error(step, ctx, e))?;
                (
                    meta.and_then(|m| m.created_unix),
                    meta.and_then(|m| m.expires_unix),
                    None,
                )
            }
        };
    write_atomic(file, format!("{}\n", token.expose()).as_bytes())
        .map_err(|e| Error::step(step, format!("cannot write {}: {e}", file.display())))?;
    ctx.state.facts.token_files.insert(
        step.as_str().into(),
        TokenFile {
            path: file.to_path_buf(),
            organization: org.to_string(),
            minted_unix: minted,
            expires_unix: expires,
            minted_here: false,
            token_id: id,
        },
    );
    Ok(Some(Done::unchanged(format!(
        "another node minted {}: took it from [store] into {} (0600)",
        account.what(),
        file.display()
    ))))
}

/// With `[store]`: the token another node published for `account`, when it
/// differs from the one in `file` (which TFE then refuses): written over
/// `file`. Whether it replaced the file.
pub(super) fn refresh_file(ctx: &Ctx<'_>, account: ServiceAccount, file: &Path, org: &str) -> bool {
    let Some(Ok(Some(token))) = ctx.fleet.map(|f| f.get(&account.store_key(org))) else {
        return false;
    };
    let current = crate::util::read_private(file)
        .map(|(t, _)| t.trim().to_string())
        .unwrap_or_default();
    if token.trim() == current {
        return false;
    }
    crate::redact::register(token.trim());
    write_atomic(file, format!("{}\n", token.trim()).as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_companion_describes_only_its_own_token() {
        let c = Companion {
            minted: 1_700_000_000,
            expires: Some(1_800_000_000),
            id: None,
        };
        let v = c.value("token-a");
        assert!(!v.contains("token-a"));
        assert_eq!(Companion::parse(&v, "token-a\n"), Some(c.clone()));
        assert_eq!(Companion::parse(&v, "token-b"), None, "another token's");
        assert_eq!(Companion::parse("1700000000 1800000000", "token-a"), None);
        let with_id = Companion {
            id: Some("at-123".into()),
            ..c
        };
        assert_eq!(
            Companion::parse(&with_id.value("t"), "t")
                .unwrap()
                .id
                .as_deref(),
            Some("at-123")
        );
    }

    #[test]
    fn store_keys_are_injective_and_helper_safe() {
        let names = ["team-a", "team_a", "Team-A", "team.5fa", "a", "A", "-", "_"];
        let keys: Vec<String> = names
            .iter()
            .map(|n| ServiceAccount::Organization.store_key(n))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(
                k.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'.'),
                "{k}"
            );
            for (j, other) in keys.iter().enumerate() {
                assert!(
                    i == j || k != other,
                    "{} and {} share {k}",
                    names[i],
                    names[j]
                );
            }
        }
        assert_eq!(
            ServiceAccount::Organization.store_key("team_a"),
            "org-token-team.5fa"
        );
    }
}
