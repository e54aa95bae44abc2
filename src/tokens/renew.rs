//! Renewal (`tfe-bootstrap renew`): not a step of the run, but the token
//! lifecycle ([`crate::tokens`]) applied again to every token the run
//! wrote, once less than `[renew] before` is left of it (a third of its
//! lifetime by default). The replacement is minted within the token type's
//! TTL policy, written atomically over the file, checked against TFE and
//! published to `[store]`; only then is the replaced token revoked, and
//! with `[store]` only after `[renew] grace`, so every node's file has
//! moved to the new one first.
//!
//! | token | replacement | the replaced one |
//! |---|---|---|
//! | admin (`token_file`) | a new user token | revoked by id, when known |
//! | owners team | a described team token (pytfe `team_tokens.py`); the legacy form where TFE has no described tokens | revoked (legacy form: replaced at once) |
//! | organization | a new organization token | replaced at once: TFE holds one |
//! | agent | never due: agent tokens carry no expiry (API docs "Agent Tokens") | |
//!
//! In a fleet, a node whose file differs from what `[store]` holds takes
//! the published token (after checking it) instead of renewing; among the
//! nodes due at once, a duty per token and day picks the one that renews.
//! Nothing is sent to TFE when nothing is due.

use std::path::PathBuf;

use super::admin::client as admin_client;
use super::companion::Companion;
use super::{Claim, ClaimError, TokenKind, expiry_within, service};
use crate::config::secret::Secret;
use crate::config::{Config, FLEET_RENEW_GRACE, TFE_DEFAULT_TOKEN_LIFETIME_MS};
use crate::error::Error;
use crate::state::{Retiring, State, TokenFile};
use crate::step::{Ctx, Done, StepName, api_error};
use crate::store::Turn;
use crate::util::{rfc3339_unix, unix_now, write_atomic};

/// A token this config writes, as the state knows it.
#[derive(Debug, Clone)]
pub struct Held {
    /// Which token it is.
    pub kind: TokenKind,
    /// The step that writes it (`admin`, `org-token`, `team-token`,
    /// `agent-token`): the name `renew`, `status` and the events use.
    pub step: StepName,
    pub file: PathBuf,
    /// Its organization (service and agent tokens).
    pub org: Option<String>,
    /// When it expires (Unix seconds, TFE's clock); `None`: never (agent
    /// tokens) or not known yet.
    pub expires: Option<u64>,
    /// When `renew` replaces it (Unix seconds).
    pub renew_at: Option<u64>,
    /// How its expiry is known, for messages ("" when recorded at mint).
    pub note: &'static str,
}

/// TFE's time now as this host knows it without asking: its clock
/// corrected by the offset TFE's `Date` showed last time.
pub fn tfe_now(state: &State) -> u64 {
    unix_now().saturating_add_signed(state.facts.tfe_clock_offset.unwrap_or(0))
}

fn with_schedule(
    cfg: &Config,
    kind: TokenKind,
    file: PathBuf,
    org: Option<String>,
    minted: Option<u64>,
    expires: Option<u64>,
    note: &'static str,
) -> Held {
    let renew_at = expires.map(|e| {
        let lifetime = minted
            .map(|m| e.saturating_sub(m))
            .unwrap_or(TFE_DEFAULT_TOKEN_LIFETIME_MS / 1000);
        let before = cfg
            .renew
            .before_for(std::time::Duration::from_secs(lifetime))
            .as_secs();
        e.saturating_sub(before)
    });
    Held {
        kind,
        step: kind.step(),
        file,
        org,
        expires,
        renew_at,
        note,
    }
}

/// Every token file this config writes that the state records, with when
/// it expires and when `renew` replaces it.
pub fn held(cfg: &Config, state: &State) -> Vec<Held> {
    let mut out = vec![];
    let f = &state.facts;
    // The admin token is this tool's to renew when this tool wrote it: the
    // initial admin's (no [admin] token given) or one it rotated.
    let rotated = f.admin_token_expires_unix.is_some();
    if (rotated || cfg.admin.token.is_none())
        && state.steps.contains_key(crate::step_name::ADMIN.as_str())
    {
        let (minted, expires, note) = match f.admin_token_expires_unix {
            Some(e) => (f.admin_token_minted_unix, Some(e), ""),
            // The initial admin's token: TFE's default lifetime from when
            // the admin was created (team-tokens docs: two years).
            None => {
                let at = state
                    .steps
                    .get(crate::step_name::ADMIN.as_str())
                    .and_then(|c| crate::util::parse_rfc3339_ms(&c.at).map(|ms| ms / 1000));
                (
                    at,
                    at.map(|a| a + TFE_DEFAULT_TOKEN_LIFETIME_MS / 1000),
                    " (TFE's default lifetime, from when the admin was created)",
                )
            }
        };
        out.push(with_schedule(
            cfg,
            TokenKind::Admin,
            cfg.admin.token_file.clone(),
            None,
            minted,
            expires,
            note,
        ));
    }
    let org = cfg.organization.as_ref();
    for (kind, file) in [
        (
            TokenKind::Org,
            org.and_then(|o| o.service_token_file.as_ref()),
        ),
        (
            TokenKind::Team,
            org.and_then(|o| o.owners_team_token_file.as_ref()),
        ),
    ] {
        let (Some(file), Some(rec)) = (file, f.token_files.get(kind.step().as_str())) else {
            continue;
        };
        if rec.path != *file {
            continue;
        }
        out.push(with_schedule(
            cfg,
            kind,
            rec.path.clone(),
            Some(rec.organization.clone()),
            rec.minted_unix,
            rec.expires_unix,
            "",
        ));
    }
    if let (Some(a), Some(o)) = (&f.agent_token, org)
        && o.agent_token.as_ref().is_some_and(|c| c.file == a.path)
    {
        out.push(Held {
            kind: TokenKind::Agent,
            step: TokenKind::Agent.step(),
            file: a.path.clone(),
            org: Some(o.name.clone()),
            expires: None,
            renew_at: None,
            note: " (agent tokens carry no expiry)",
        });
    }
    out
}

/// One token's `renew` outcome.
pub struct Renewed {
    pub step: StepName,
    pub applied: Done,
}

/// The token's `[store]` key; its non-secret companion
/// ([`Companion`]) lets the other nodes record the new expiry.
fn store_key(h: &Held) -> String {
    h.kind.store_key(h.org.as_deref().unwrap_or(""))
}

/// Renews every due token (or, with `dry_run`, says which would be), then
/// revokes replaced tokens whose grace has passed. Saves the state after
/// each change.
pub fn renew(ctx: &mut Ctx<'_>, dry_run: bool) -> Result<Vec<Renewed>, Error> {
    let mut out = vec![];
    let held = held(ctx.cfg, &ctx.state);
    if held.iter().any(|h| h.renew_at.is_some()) {
        read_tfe_clock(ctx);
    }
    for h in held {
        let step = h.step;
        let applied = renew_one(ctx, &h, dry_run)?;
        out.push(Renewed { step, applied });
    }
    retire(ctx, dry_run, &mut out)?;
    // The hand-off to Terraform follows the token it hands over.
    if let Some(t) = ctx.cfg.terraform.as_ref()
        && !dry_run
        && super::credentials::stale(ctx.cfg, t).is_some()
    {
        let step = crate::step_name::TERRAFORM_CREDENTIALS;
        super::credentials::write(ctx.cfg, t, step)?;
        out.push(Renewed {
            step,
            applied: Done::changed(format!(
                "{} for {} written to {} (0600)",
                super::credentials::kind(t).what(),
                t.host,
                t.credentials_file.display()
            )),
        });
    }
    Ok(out)
}

/// What is due is judged by TFE's clock, and this host's clock may have
/// moved since TFE's offset was last seen (an RTC reset at a reboot, NTP
/// not yet synced, a VM restored from a snapshot): one read (`GET
/// /api/v2/ping`, which changes nothing) takes TFE's `Date` now. When TFE
/// does not answer, the offset seen last time stands, and a warning says so.
fn read_tfe_clock(ctx: &mut Ctx<'_>) {
    ctx.release();
    match ctx.client.clock_offset() {
        Some(o) => ctx.state.facts.tfe_clock_offset = Some(o),
        None => ctx.progress.warning(
            None,
            "TFE did not answer a ping, so its clock is taken as this host's clock plus the offset \
             seen last time: if this host's clock has moved since, what is due may be misjudged. \
             Check that TFE is reachable and rerun renew",
        ),
    }
}

fn save(ctx: &mut Ctx<'_>, step: StepName) -> Result<(), Error> {
    if let Some(o) = ctx.client.clock_offset() {
        ctx.state.facts.tfe_clock_offset = Some(o);
    }
    ctx.checkpoints.save(&ctx.state).map_err(|e| {
        Error::step(
            step,
            format!(
                "renewed, but the state could not be saved: {e}; free space or fix the state directory, then rerun renew"
            ),
        )
    })
}

fn when(t: u64) -> String {
    rfc3339_unix(t)
}

fn renew_one(ctx: &mut Ctx<'_>, h: &Held, dry_run: bool) -> Result<Done, Error> {
    let step = h.step;
    if !h.file.exists() {
        return Ok(Done::unchanged(format!(
            "{} is missing: not renewed (`tfe-bootstrap run` writes it again)",
            h.file.display()
        )));
    }
    // Another node renewed it: take the published token.
    if !dry_run && let Some(a) = take_published(ctx, h)? {
        return Ok(a);
    }
    let (Some(expires), Some(renew_at)) = (h.expires, h.renew_at) else {
        return Ok(Done::unchanged(format!(
            "{}: never renewed{}",
            h.file.display(),
            if h.note.is_empty() {
                " (its expiry is not known)"
            } else {
                h.note
            }
        )));
    };
    let now = tfe_now(&ctx.state);
    if now < renew_at {
        return Ok(Done::unchanged(format!(
            "{}: expires {}{}; renewed from {}",
            h.file.display(),
            when(expires),
            h.note,
            when(renew_at)
        )));
    }
    if dry_run {
        return Ok(Done::changed(format!(
            "would renew {} (expires {}{}; due since {})",
            h.file.display(),
            when(expires),
            h.note,
            when(renew_at)
        )));
    }
    let Some(fleet) = ctx.fleet else {
        return mint(ctx, h);
    };
    let day = rfc3339_unix(now)[..10].replace('-', "");
    let org = h.org.as_deref().map(crate::tokens::companion::store_escape);
    let duty = match org {
        Some(o) => format!("renew-{step}-{o}-{day}"),
        None => format!("renew-{step}-{day}"),
    };
    match fleet.claim(&duty).map_err(|e| Error::step(step, e))? {
        Turn::Done => match take_published(ctx, h)? {
            Some(a) => Ok(a),
            None => Err(Error::step(
                step,
                format!(
                    "another node renewed it today, but [store] key {} still holds the token in {}: \
                     check that node's renew log, then rerun",
                    store_key(h),
                    h.file.display()
                ),
            )),
        },
        Turn::Mine(key) | Turn::TakenOver(key) => {
            let r = mint(ctx, h);
            let told = fleet.finish(&key, r.is_ok());
            let a = r?;
            told.map_err(|e| {
                Error::step(
                    step,
                    format!("renewed, but the other nodes could not be told: {e}; they take the new token from [store] on their next renew"),
                )
            })?;
            Ok(a)
        }
    }
}

/// With `[store]`: the token another node published for `h`, when it
/// differs from the file's and TFE accepts it, written over the file
/// (0600, atomically) with its expiry recorded.
fn take_published(ctx: &mut Ctx<'_>, h: &Held) -> Result<Option<Done>, Error> {
    let step = h.step;
    let Some(fleet) = ctx.fleet else {
        return Ok(None);
    };
    let key = store_key(h);
    let Some(value) = fleet.get(&key).map_err(|e| Error::step(step, e))? else {
        return Ok(None);
    };
    // The agent token's value is "ID TOKEN".
    let (id, token) = match value.trim().split_once(' ') {
        Some((i, t)) if h.kind == TokenKind::Agent => (Some(i.to_string()), t.to_string()),
        _ => (None, value.trim().to_string()),
    };
    let current = crate::tokens::read(&h.file)
        .map(|(t, _)| t)
        .unwrap_or_default();
    if token == current || h.kind == TokenKind::Agent {
        return Ok(None);
    }
    // Only a token renewed after the one in the file: never an older value
    // over this node's newer one (its own renewal that could not be
    // published), nor a value without a companion that describes it (one
    // put by hand: the run's checks judge it).
    let Some(meta) = Companion::get(fleet, &key, &token).map_err(|e| Error::step(step, e))? else {
        return Ok(None);
    };
    let (minted, expires) = (Some(meta.minted), meta.expires);
    let ours = minted_of(&ctx.state, h).unwrap_or(0);
    if minted.is_none_or(|m| m < ours) {
        return Ok(None);
    }
    crate::redact::register(&token);
    let c = ctx
        .client
        .clone()
        .with_token(Secret::new(token.as_str(), format!("[store] {key}")));
    let works = match h.kind {
        TokenKind::Admin => c.account().is_ok_and(|a| a.site_admin),
        _ => {
            let org = h.org.as_deref().unwrap_or("");
            matches!(c.organization(org), Ok(Some(_)))
        }
    };
    if !works {
        // A stale value (the run reports a stale key); this file stays.
        return Ok(None);
    }
    write_atomic(&h.file, format!("{token}\n").as_bytes())
        .map_err(|e| Error::step(step, format!("cannot write {}: {e}", h.file.display())))?;
    record(ctx, h, minted, expires, meta.id.or(id), false);
    if h.kind == TokenKind::Admin {
        ctx.admin = Some(c);
    }
    save(ctx, step)?;
    Ok(Some(Done::changed(format!(
        "another node renewed it: took the new token from [store] into {} (0600{})",
        h.file.display(),
        expires
            .map(|e| format!(", expires {}", when(e)))
            .unwrap_or_default()
    ))))
}

/// When the token in `h.file` was minted, as this node recorded it.
fn minted_of(state: &State, h: &Held) -> Option<u64> {
    match h.kind {
        TokenKind::Admin => state.facts.admin_token_minted_unix,
        _ => state.facts.token_files.get(h.step.as_str())?.minted_unix,
    }
}

/// Records the token now in `h.file`.
fn record(
    ctx: &mut Ctx<'_>,
    h: &Held,
    minted: Option<u64>,
    expires: Option<u64>,
    id: Option<String>,
    minted_here: bool,
) {
    let f = &mut ctx.state.facts;
    if h.kind == TokenKind::Admin {
        f.admin_token_minted_unix = minted;
        f.admin_token_expires_unix =
            expires.or_else(|| minted.map(|m| m + TFE_DEFAULT_TOKEN_LIFETIME_MS / 1000));
        f.admin_token_id = id;
    } else if h.kind != TokenKind::Agent {
        f.token_files.insert(
            h.step.as_str().into(),
            TokenFile {
                path: h.file.clone(),
                organization: h.org.clone().unwrap_or_default(),
                minted_unix: minted,
                expires_unix: expires,
                minted_here,
                token_id: id,
            },
        );
    }
    // The file changed: verify-tokens checks it again on the next run.
    f.verified.remove(&h.file.display().to_string());
}

/// Publishes a renewed token and its expiry (put: it replaces the old).
fn publish(
    ctx: &Ctx<'_>,
    h: &Held,
    token: &str,
    minted: u64,
    expires: u64,
    id: Option<&str>,
) -> Result<(), Error> {
    let Some(fleet) = ctx.fleet else {
        return Ok(());
    };
    Companion {
        minted,
        expires: Some(expires),
        id: id.map(String::from),
    }
    .publish(fleet, &store_key(h), token)
        .map_err(|e| {
            Error::step(
                h.step,
                format!(
                    "renewed into {}, but it could not be published to [store]: {e}. The other nodes keep the \
                     replaced token until its grace ends: fix the store and rerun renew here",
                    h.file.display()
                ),
            )
        })
}

/// The grace a replaced token keeps.
fn grace(cfg: &Config) -> u64 {
    match (cfg.renew.grace, &cfg.store) {
        (Some(g), _) => g.as_secs(),
        (None, Some(_)) => FLEET_RENEW_GRACE.as_secs(),
        (None, None) => 0,
    }
}

/// Mints the replacement of `h` (this node's turn).
fn mint(ctx: &mut Ctx<'_>, h: &Held) -> Result<Done, Error> {
    match h.kind {
        TokenKind::Admin => renew_admin(ctx, h),
        TokenKind::Team => renew_team(ctx, h),
        TokenKind::Org | TokenKind::Agent => renew_org(ctx, h),
    }
}

fn claim(ctx: &Ctx<'_>, h: &Held, rescue: &std::path::Path) -> Result<Claim, Error> {
    Claim::make(&h.file, rescue).map_err(|e| {
        let e = match e {
            ClaimError::File(e) | ClaimError::Rescue(e) => e,
        };
        Error::env(
            h.step,
            format!(
                "cannot set aside room for the renewed token beside {} or in {} ({e}); nothing was sent. \
                 Free space or fix permissions there, then rerun renew",
                h.file.display(),
                ctx.cfg.state_dir.display()
            ),
        )
    })
}

/// Keeps a replacement whose predecessor still works ([`Claim::keep_or_drop`])
/// and returns a client that uses it, with when it was minted and when it
/// expires ([`kept`]).
fn keep_beside(
    ctx: &Ctx<'_>,
    h: &Held,
    claim: Claim,
    token: &str,
    expires: Option<u64>,
) -> Result<(u64, u64, crate::tfe::Client), Error> {
    claim.keep_or_drop(token).map_err(|why| {
        Error::step(
            h.step,
            format!(
                "a replacement was minted but {} could not be written ({why}); the token there still works. \
                 Free space, then rerun renew",
                h.file.display()
            ),
        )
    })?;
    Ok(kept(ctx, h, token, expires))
}

/// A renewed token now in `h.file`: when it was minted, when it expires
/// (TFE's default lifetime when no policy set `expires`), and a client
/// that uses it.
fn kept(
    ctx: &Ctx<'_>,
    h: &Held,
    token: &str,
    expires: Option<u64>,
) -> (u64, u64, crate::tfe::Client) {
    let now = ctx.client.tfe_now();
    let fresh = ctx.client.clone().with_token(Secret::new(
        token,
        format!("renewed token in {}", h.file.display()),
    ));
    (
        now,
        expires.unwrap_or(now + TFE_DEFAULT_TOKEN_LIFETIME_MS / 1000),
        fresh,
    )
}

/// Puts `old` back into the file after its replacement failed the check.
fn restore(h: &Held, old: &str, why: String) -> Error {
    let back = write_atomic(&h.file, format!("{old}\n").as_bytes());
    Error::step(
        h.step,
        format!(
            "the renewed token for {} {why}; {}",
            h.file.display(),
            match back {
                Ok(()) => "the previous token, which still works, is back in place".to_string(),
                Err(e) => format!("the previous token could not be put back ({e})"),
            }
        ),
    )
}

fn retire_later(
    ctx: &mut Ctx<'_>,
    what: StepName,
    token_id: Option<String>,
    legacy_team_id: Option<String>,
) {
    if token_id.is_none() && legacy_team_id.is_none() {
        return;
    }
    let not_before_unix = tfe_now(&ctx.state) + grace(ctx.cfg);
    ctx.state.facts.retiring.push(Retiring {
        what: what.as_str().into(),
        token_id,
        legacy_team_id,
        not_before_unix,
    });
}

fn renew_admin(ctx: &mut Ctx<'_>, h: &Held) -> Result<Done, Error> {
    let step = h.step;
    let client = admin_client(ctx, step)?.clone();
    let me = client.account().map_err(|e| api_error(step, ctx, e))?;
    let lifetime_ms = TokenKind::Admin.policy_ms(ctx.cfg).or_else(|| {
        let f = &ctx.state.facts;
        match (f.admin_token_minted_unix, f.admin_token_expires_unix) {
            (Some(m), Some(e)) if e > m => Some((e - m) * 1000),
            _ => None,
        }
    });
    let expires = lifetime_ms.map(|ms| expiry_within(&client, ms));
    let (old, _) = crate::tokens::read(&h.file)
        .map_err(|e| Error::step(step, format!("{}: {e}", h.file.display())))?;
    let minted = super::admin::mint_user_token(
        ctx,
        step,
        &client,
        &me.id,
        "tfe-bootstrap (renewed)",
        expires,
    )?;
    let (now, expires, fresh) = kept(ctx, h, &minted.token, expires);
    if !fresh.account().is_ok_and(|a| a.site_admin) {
        return Err(restore(
            h,
            &old,
            "is not accepted as a site admin's by TFE".into(),
        ));
    }
    publish(ctx, h, &minted.token, now, expires, minted.id.as_deref())?;
    let old_id = ctx.state.facts.admin_token_id.clone();
    record(ctx, h, Some(now), Some(expires), minted.id, true);
    retire_later(ctx, step, old_id.clone(), None);
    ctx.admin = Some(fresh);
    save(ctx, step)?;
    Ok(Done::changed(format!(
        "renewed into {} (0600, expires {}){}",
        h.file.display(),
        when(expires),
        retire_note(ctx.cfg, old_id.is_some())
    )))
}

fn retire_note(cfg: &Config, known: bool) -> String {
    if !known {
        return "; the replaced token's id is not known, so it lives until it expires".into();
    }
    match grace(cfg) {
        0 => "; the replaced token is revoked now".into(),
        g => format!(
            "; the replaced token is revoked by a renew after {}",
            crate::config::duration::format_duration(std::time::Duration::from_secs(g))
        ),
    }
}

fn renew_team(ctx: &mut Ctx<'_>, h: &Held) -> Result<Done, Error> {
    let step = h.step;
    let org = h.org.clone().unwrap_or_default();
    let client = admin_client(ctx, step)?.clone();
    let team = client
        .owners_team(&org)
        .map_err(|e| api_error(step, ctx, e))?;
    let expires = TokenKind::Team
        .policy_ms(ctx.cfg)
        .map(|ms| expiry_within(&client, ms));
    let (old, _) = crate::tokens::read(&h.file)
        .map_err(|e| Error::step(step, format!("{}: {e}", h.file.display())))?;
    let claim = claim(ctx, h, &h.kind.rescue_path(ctx.cfg))?;
    // TFE wants it unique within the team: the time and a nonce.
    let description = format!(
        "tfe-bootstrap owners token, {} {:08x}",
        rfc3339_unix(client.tfe_now()),
        fastrand::u32(..)
    );
    let minted = match client.create_described_team_token(
        &team,
        &description,
        expires.map(rfc3339_unix).as_deref(),
    ) {
        Ok(m) => m,
        // An install without described team tokens: the legacy form,
        // which replaces the team's one token at once.
        Err(e) if matches!(e.status(), Some(404 | 405)) => {
            claim.discard();
            return renew_org(ctx, h);
        }
        Err(e) => {
            claim.discard();
            return Err(api_error(step, ctx, e));
        }
    };
    let (now, expires, fresh) = keep_beside(ctx, h, claim, &minted.token, expires)?;
    if !matches!(fresh.organization(&org), Ok(Some(_))) {
        return Err(restore(
            h,
            &old,
            format!("is refused by TFE for organization {org:?}"),
        ));
    }
    publish(ctx, h, &minted.token, now, expires, minted.id.as_deref())?;
    let old_id = ctx
        .state
        .facts
        .token_files
        .get(step.as_str())
        .and_then(|r| r.token_id.clone());
    let legacy = old_id.is_none().then(|| team.clone());
    record(ctx, h, Some(now), Some(expires), minted.id, true);
    retire_later(ctx, step, old_id, legacy);
    save(ctx, step)?;
    Ok(Done::changed(format!(
        "renewed into {} (0600, expires {}){}",
        h.file.display(),
        when(expires),
        retire_note(ctx.cfg, true)
    )))
}

/// The organization token (and the owners token on installs without
/// described team tokens): TFE holds one, so the mint replaces it at once
/// ([`service::mint_to`]: claim, intent, mint, keep, publish).
fn renew_org(ctx: &mut Ctx<'_>, h: &Held) -> Result<Done, Error> {
    let step = h.step;
    let org = h.org.clone().unwrap_or_default();
    let rec = service::mint_to(ctx, step, h.kind, &h.file, &org)?;
    let (token, _) = crate::tokens::read(&h.file)
        .map_err(|e| Error::step(step, format!("{}: {e}", h.file.display())))?;
    let fresh = ctx
        .client
        .clone()
        .with_token(Secret::new(token.as_str(), "renewed token"));
    if !matches!(fresh.organization(&org), Ok(Some(_))) {
        return Err(Error::step(
            step,
            format!(
                "the renewed token in {} is refused by TFE for organization {org:?}; rerun renew",
                h.file.display()
            ),
        ));
    }
    let (now, expires) = (
        rec.minted_unix.unwrap_or_else(|| ctx.client.tfe_now()),
        rec.expires_unix.unwrap_or(0),
    );
    record(ctx, h, Some(now), Some(expires), None, true);
    save(ctx, step)?;
    Ok(Done::changed(format!(
        "renewed into {} (0600, expires {}); TFE holds one such token, so the replaced one stopped working at once: \
         whatever reads this file must read it again",
        h.file.display(),
        when(expires)
    )))
}

/// Revokes the replaced tokens whose grace has passed.
fn retire(ctx: &mut Ctx<'_>, dry_run: bool, out: &mut Vec<Renewed>) -> Result<(), Error> {
    let now = tfe_now(&ctx.state);
    let due: Vec<Retiring> = ctx
        .state
        .facts
        .retiring
        .iter()
        .filter(|r| r.not_before_unix <= now)
        .cloned()
        .collect();
    for r in due {
        let step = held_step(&r.what);
        let what = match (&r.token_id, &r.legacy_team_id) {
            (Some(id), _) => format!("token {id}"),
            (None, Some(t)) => format!("the legacy token of team {t}"),
            (None, None) => continue,
        };
        if dry_run {
            out.push(Renewed {
                step,
                applied: Done::changed(format!("would revoke the replaced {what}")),
            });
            continue;
        }
        let client = admin_client(ctx, step)?.clone();
        let res = match (&r.token_id, &r.legacy_team_id) {
            (Some(id), _) => client.delete_token(id),
            (None, Some(t)) => client.delete_legacy_team_token(t),
            (None, None) => Ok(false),
        };
        let gone = res.map_err(|e| api_error(step, ctx, e))?;
        ctx.state.facts.retiring.retain(|x| *x != r);
        save(ctx, step)?;
        out.push(Renewed {
            step,
            applied: Done::changed(if gone {
                format!("revoked the replaced {what}")
            } else {
                format!("the replaced {what} was already gone")
            }),
        });
    }
    Ok(())
}

fn held_step(what: &str) -> StepName {
    TokenKind::ALL
        .into_iter()
        .map(TokenKind::step)
        .find(|s| s.as_str() == what)
        .unwrap_or(crate::step_name::ADMIN)
}
