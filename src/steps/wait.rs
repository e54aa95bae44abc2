//! `wait`: poll until TFE answers ready.
//!
//! `GET /api/v1/health/readiness` (TFE >= 1.2); on 404 fall back to
//! `GET /_health_check` (older installs), and back again on 410. Anything but
//! 200 — a refused connection, a 503, a redirect — means "not yet". The poll
//! interval starts at 100 ms and doubles up to `[wait] max_interval`; past
//! `[wait] timeout` the run stops with exit 3. A certificate that fails
//! verification stops at once: waiting cannot fix it. On HCP Terraform
//! (`platform = "hcp"`), which has no health endpoints, `GET /api/v2/ping`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::config::duration::format_duration;
use crate::config::{Config, Platform};
use crate::error::Error;
use crate::step::{Applies, Ctx, Desired, Done, Schedule, Step, StepName};
use crate::tfe::TfeError;
use crate::util::unix_now;

pub const NAME: StepName = crate::step_name::WAIT;

pub struct Wait;

impl Step for Wait {
    fn name(&self) -> StepName {
        NAME
    }
    /// It is what waits for a ready TFE.
    fn needs_ready_tfe(&self) -> bool {
        false
    }
    fn schedule(&self) -> Schedule {
        Schedule::WithAnyOther
    }
    fn desired(&self, cfg: &Config) -> Applies {
        Applies::Yes(Desired::plain(json!({"address": cfg.tfe.address})))
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        run(ctx)
    }
}

fn run(ctx: &mut Ctx<'_>) -> Result<Done, Error> {
    let started = Instant::now();
    let deadline = started + ctx.cfg.wait.timeout;
    let mut interval = Duration::from_millis(100).min(ctx.cfg.wait.max_interval);
    // A release an earlier run learned that has no readiness endpoint
    // (before 1.2.0) is asked the old way first; a first contact cannot
    // know and tries readiness, then falls back.
    let mut legacy = ctx.cfg.tfe.platform == Platform::Enterprise
        && ctx
            .state
            .facts
            .tfe_version
            .as_deref()
            .and_then(crate::tfe::version::TfeVersion::parse)
            .is_some_and(|v| !v.has_readiness());
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let (last, suspect_address) = match poll(ctx, legacy, attempt, deadline)? {
            Poll::Ready(done) => return Ok(done),
            Poll::OtherWay => {
                legacy = !legacy;
                attempt -= 1;
                continue;
            }
            Poll::NotYet { last, suspect } => (last, suspect),
        };
        ctx.progress.wait_poll(attempt, &last, started.elapsed());
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(ctx, attempt, &last, suspect_address));
        }
        if !crate::stop::sleep(interval.min(deadline - now)) {
            return Err(Error::step(NAME, "stopped while waiting for TFE"));
        }
        interval = (interval * 2).min(ctx.cfg.wait.max_interval);
    }
}

/// What one poll found.
enum Poll {
    Ready(Done),
    /// The other health endpoint is the one to ask (a release before 1.2.0
    /// has no readiness endpoint; a newer one has no `/_health_check`).
    OtherWay,
    /// Not ready yet: what it answered, and whether that may mean a wrong
    /// `[tfe] address` (nothing listens, the name does not resolve) rather
    /// than a TFE still booting.
    NotYet {
        last: String,
        suspect: bool,
    },
}

/// One poll of readiness (`legacy`: `/_health_check`), never outliving the
/// wait: a TFE that accepts but does not answer must not hold the run past
/// `[wait] timeout`.
fn poll(ctx: &mut Ctx<'_>, legacy: bool, attempt: u32, deadline: Instant) -> Result<Poll, Error> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(200));
    let mut poller = ctx
        .client
        .with_timeout(left.min(ctx.cfg.tfe.request_timeout));
    // HCP Terraform's ping with the token, as go-tfe always sends it: a
    // refused token is then said at once, not waited on.
    if ctx.cfg.tfe.platform == Platform::Hcp
        && let Some(t) = &ctx.cfg.admin.token
    {
        poller = poller.with_token(t.clone());
    }
    let result = if legacy {
        poller.health_check()
    } else {
        poller.ready_probe(ctx.cfg.tfe.platform)
    };
    let e = match result {
        Ok(resp) => {
            platform_matches(ctx, resp.app_name.as_deref())?;
            if let Some(v) = &resp.tfe_version {
                ctx.state.facts.tfe_version = Some(v.clone());
            }
            ctx.state.facts.first_ready_unix.get_or_insert(unix_now());
            let via = if legacy {
                " (legacy /_health_check)"
            } else if ctx.cfg.tfe.platform == Platform::Hcp {
                " (GET /api/v2/ping)"
            } else {
                ""
            };
            return Ok(Poll::Ready(Done::changed(format!(
                "TFE is ready after {attempt} poll{}{via}",
                if attempt == 1 { "" } else { "s" }
            ))));
        }
        Err(TfeError::Tls { detail }) => {
            // Waiting cannot fix a certificate or a scheme: exit 2.
            return Err(Error::env(
                NAME,
                format!("cannot connect to {}: {detail}", ctx.cfg.tfe.address),
            ));
        }
        Err(e) => e,
    };
    let mut suspect = false;
    let last = match e.status() {
        Some(404) if !legacy && ctx.cfg.tfe.platform == Platform::Enterprise => {
            return Ok(Poll::OtherWay);
        }
        // Neither health endpoint: HCP Terraform has none. Its ping
        // says which app answers (`TFP-AppName`).
        Some(404) if legacy => {
            match poller.ping() {
                Ok(resp) => platform_matches(ctx, resp.app_name.as_deref())?,
                // Readiness (1.2 and later), `/_health_check` (before) and
                // the API's ping all 404: whatever answers is no TFE, and
                // waiting would only spend [wait] timeout.
                Err(p) if p.status() == Some(404) => return Err(not_tfe(ctx)),
                Err(_) => {}
            }
            "TFE answered 404 (still starting)".to_string()
        }
        Some(401) if ctx.cfg.tfe.platform == Platform::Hcp => {
            return Err(Error::env(
                NAME,
                format!(
                    "{} refused [admin] token (401) on GET /api/v2/ping: set a working user or team token there",
                    ctx.cfg.tfe.address
                ),
            ));
        }
        Some(410) if legacy => return Ok(Poll::OtherWay),
        Some(s) => format!("TFE answered {s} (still starting)"),
        None => match e {
            TfeError::Transport { detail, .. } => {
                suspect = !detail.starts_with("timed out waiting");
                describe(ctx, &detail)
            }
            other => other.to_string(),
        },
    };
    Ok(Poll::NotYet { last, suspect })
}

/// What answers at `[tfe] address` is no TFE (every health endpoint and the
/// API's ping answer 404): a config error, said at once.
pub fn not_tfe(ctx: &Ctx<'_>) -> Error {
    Error::env(NAME, not_tfe_words(&ctx.cfg.tfe.address))
}

/// The words of [`not_tfe`], for `validate --preflight` too.
pub fn not_tfe_words(address: &str) -> String {
    format!(
        "{address} is not TFE: it answers 404 on /api/v1/health/readiness, /_health_check and /api/v2/ping, \
         one of which every TFE release answers. Check [tfe] address: the host and port must be TFE's \
         (another web server listens there)"
    )
}

/// The error when TFE did not become ready within `[wait] timeout`.
fn timed_out(ctx: &Ctx<'_>, attempt: u32, last: &str, suspect_address: bool) -> Error {
    let check = if suspect_address {
        format!(
            "Check [tfe] address ({}): the host and port must be TFE's, and reachable from here",
            ctx.cfg.tfe.address
        )
    } else {
        "Check that the install is running".to_string()
    };
    Error::not_ready(
        NAME,
        format!(
            "TFE at {} did not become ready within {} ([wait] timeout; {attempt} poll{}, last: {last}). \
         {check}, then rerun: finished steps are kept",
            ctx.cfg.tfe.address,
            format_duration(ctx.cfg.wait.timeout),
            if attempt == 1 { "" } else { "s" }
        ),
    )
}

/// The app that answered (`TFP-AppName`) against `[tfe] platform`: HCP
/// Terraform answering an enterprise config, or Terraform Enterprise an
/// HCP config, is a config error said at once (exit 2), not a wait.
fn platform_matches(ctx: &Ctx<'_>, app: Option<&str>) -> Result<(), Error> {
    let Some(app) = app else { return Ok(()) };
    let hcp = app.contains("HCP Terraform") || app.contains("Terraform Cloud");
    let mismatch = match ctx.cfg.tfe.platform {
        Platform::Enterprise => hcp.then_some("platform = \"hcp\""),
        Platform::Hcp => (!hcp && app.contains("Terraform Enterprise"))
            .then_some("platform = \"enterprise\" (the default)"),
    };
    match mismatch {
        None => Ok(()),
        Some(fix) => Err(Error::env(
            NAME,
            format!(
                "{} answers as {app} (TFP-AppName), but [tfe] platform says otherwise: set [tfe] {fix}, or point [tfe] address at the other platform",
                ctx.cfg.tfe.address
            ),
        )),
    }
}

/// A transport failure in the operator's terms: DNS, nothing listening,
/// no answer, or what the transport said.
fn describe(ctx: &Ctx<'_>, detail: &str) -> String {
    let at = format!("{}:{}", ctx.cfg.tfe.host, ctx.cfg.tfe.port);
    if detail.starts_with("the host name does not resolve") {
        format!("the name {} does not resolve (DNS)", ctx.cfg.tfe.host)
    } else if detail.starts_with("connection refused") {
        format!("nothing listens on {at} (connection refused)")
    } else if detail.starts_with("connect timed out") {
        format!("no answer from {at} (connect timed out: a firewall, or the wrong host?)")
    } else {
        detail.to_string()
    }
}
