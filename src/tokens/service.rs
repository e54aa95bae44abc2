//! The service-account tokens' lifecycle, which the token steps
//! (`org-token`, `team-token`), `token-ttl`, `verify-tokens` and `renew`
//! share: mint once and keep the file, within the token type's
//! TTL policy. Regenerating a service-account token invalidates the previous
//! one (the "Service Accounts" page, source document service-accounts.txt), so an existing file is never re-minted silently; the one
//! exception is a token that a max-TTL policy this run enforces would refuse:
//! it is dead either way, so it is re-minted within the policy and the file
//! replaced atomically.

use std::path::Path;

use super::admin::client as admin_client;
use super::companion::Companion;
use super::{Claim, ClaimError, KeepError};
use super::{TokenKind, expiry_within, human_ms};
use crate::config::TFE_DEFAULT_TOKEN_LIFETIME_MS;
use crate::error::Error;
use crate::state::TokenFile;
use crate::step::{Ctx, Done, StepName, api_error};
use crate::tfe::api::TokenMeta;
use crate::tfe::{Client, TfeError};
use crate::util::{rfc3339_unix, write_atomic};

/// Mints a new token for a service account: the owners team's for
/// [`TokenKind::Team`], the organization's for the others.
fn mint_for(
    kind: TokenKind,
    c: &Client,
    org: &str,
    expired_at: Option<&str>,
) -> Result<String, TfeError> {
    match kind {
        TokenKind::Team => c.create_team_token(&c.owners_team(org)?, expired_at),
        _ => c.create_org_token(org, expired_at),
    }
}

/// The token TFE holds for a service account now (its value is never
/// shown again).
fn meta_for(kind: TokenKind, c: &Client, org: &str) -> Result<Option<TokenMeta>, TfeError> {
    match kind {
        TokenKind::Team => c.team_token_meta(&c.owners_team(org)?),
        _ => c.org_token_meta(org),
    }
}

/// The second place for the token `step` mints, in the state directory:
/// `STEP.rescue` ([`TokenKind::rescue_path`] for the token steps; `token-ttl`
/// re-mints under its own name, as 0.1.0 did).
pub(crate) fn rescue_path(ctx: &Ctx<'_>, step: StepName) -> std::path::PathBuf {
    ctx.cfg.state_dir.join(format!("{step}.rescue"))
}

/// Mints a token for `account` within its policy (when the config sets
/// one) through the token lifecycle ([`crate::tokens`]): room claimed and
/// the intent saved before the POST, the token kept in `file` (0600,
/// atomically) or rescued, then published to `[store]`. The client retries
/// a lost answer, which only replaces a token nobody received.
pub(crate) fn mint_to(
    ctx: &mut Ctx<'_>,
    step: StepName,
    account: TokenKind,
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
    let expires = account
        .policy_ms(ctx.cfg)
        .map(|ms| expiry_within(&client, ms));
    let expired_at = expires.map(rfc3339_unix);
    // The client retries a lost answer: each mint replaces the one before,
    // so the newest answer is the valid token and a lost one was never held.
    let token = match mint_for(account, &client, org, expired_at.as_deref()) {
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

/// Publishes a token this node minted to `[store]` (`put`: it replaces
/// whatever was there, which TFE no longer accepts), its companion first.
fn publish(
    ctx: &Ctx<'_>,
    step: StepName,
    account: TokenKind,
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
    account: TokenKind,
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
pub(crate) fn mint_once(
    ctx: &mut Ctx<'_>,
    step: StepName,
    account: TokenKind,
    file: &Path,
    org: &str,
    taken_over: bool,
) -> Result<Done, Error> {
    let what = account.what();
    if !file.exists() && promote_rescued(ctx, step, account, file, org)? {
        return Ok(Done::changed(format!(
            "{what} that an earlier run rescued moved into {} (0600)",
            file.display()
        )));
    }
    if !ctx.forced
        && let Some(done) = keep_or_carry(ctx, step, account, file, org)?
    {
        return Ok(done);
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
    if !ctx.forced && !lost_here && !taken_over {
        refuse_if_held_elsewhere(ctx, step, account, file, org)?;
    }
    let record = mint_to(ctx, step, account, file, org)?;
    let again = if lost_here || taken_over {
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

/// Without `--force`: an existing file is kept (regenerating would
/// invalidate the token in use), and a file the config moved is carried
/// over instead of re-minted. `None`: neither; a mint may follow.
fn keep_or_carry(
    ctx: &mut Ctx<'_>,
    step: StepName,
    account: TokenKind,
    file: &Path,
    org: &str,
) -> Result<Option<Done>, Error> {
    let what = account.what();
    let previous = ctx.state.facts.token_files.get(step.as_str()).cloned();
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
        return Ok(Some(Done::unchanged(format!(
            "{} exists: not regenerated (that would invalidate the token in use; --force {step} mints a new one)",
            file.display(),
        ))));
    }
    if let Some(p) = previous.filter(|p| p.organization == org && p.path != file && p.path.exists())
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
        return Ok(Some(Done::changed(format!(
            "{what} copied from {} to {} (0600), not regenerated; the old file is left in place",
            p.path.display(),
            file.display()
        ))));
    }
    Ok(None)
}

/// A token on TFE that this node does not hold is in use somewhere:
/// minting again would invalidate it (the "Service Accounts" page, source
/// document service-accounts.txt). Refused, saying where to get it.
fn refuse_if_held_elsewhere(
    ctx: &mut Ctx<'_>,
    step: StepName,
    account: TokenKind,
    file: &Path,
    org: &str,
) -> Result<(), Error> {
    let what = account.what();
    // A token on TFE that this node does not hold is in use somewhere:
    // minting again would invalidate it (the "Service Accounts" page, source document service-accounts.txt).
    let client = admin_client(ctx, step)?.clone();
    if let Some(meta) = meta_for(account, &client, org).map_err(|e| api_error(step, ctx, e))? {
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
    Ok(())
}

/// After `token-ttl` set the policies: re-mints, within the policy, each
/// service token this tool wrote whose lifetime the policy would refuse, and
/// replaces its file atomically. Returns a line per token re-minted.
pub(crate) fn refit(
    ctx: &mut Ctx<'_>,
    step: StepName,
    accounts: &[(StepName, TokenKind)],
) -> Result<Vec<String>, Error> {
    let mut done = vec![];
    for (owner, account) in accounts {
        let Some(limit) = account.policy_ms(ctx.cfg) else {
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
                match meta_for(*account, &client, &rec.organization)
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
            account.policy_type().unwrap_or_default(),
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
    account: TokenKind,
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
                let meta = meta_for(account, &client, org).map_err(|e| api_error(step, ctx, e))?;
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
/// differs from the one in `file` (which TFE then refuses) and TFE accepts
/// it for organization `org`: written over `file` (0600, atomically). A
/// published value TFE refuses too is not taken: the file stays as it was.
/// Whether it replaced the file.
pub(crate) fn refresh_file(ctx: &Ctx<'_>, account: TokenKind, file: &Path, org: &str) -> bool {
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
    let c = ctx
        .client
        .clone()
        .with_token(crate::config::secret::Secret::new(
            token.trim(),
            format!("[store] {}", account.store_key(org)),
        ));
    if !matches!(c.organization(org), Ok(Some(_))) {
        return false;
    }
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
        let keys: Vec<String> = names.iter().map(|n| TokenKind::Org.store_key(n)).collect();
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
        assert_eq!(TokenKind::Org.store_key("team_a"), "org-token-team.5fa");
    }
}
