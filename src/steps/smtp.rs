//! `smtp`: the SMTP settings (`PATCH /api/v2/admin/smtp-settings`). With
//! `test_email_address`, TFE sends a test mail synchronously on the PATCH, so
//! its 401/500/504 answers are about the SMTP server, not the TFE token.
//!
//! The test mail is a witness: at most one per change, whatever the faults.
//! The PATCH is never repeated after it may have reached TFE (a slow relay
//! outlasting `request_timeout`); the settings are read back instead, and
//! the step counts as applied when TFE holds them. A rerun that finds its
//! own intent for the same change (see `steps/witness.rs`) reads back first.

use std::time::{Duration, Instant};

use super::{admin_client, api_error, settings, witness};
use crate::config::Config;
use crate::error::Error;
use crate::step::{Applies, Ctx, Done, Drift, LiveCtx, Step, StepName};
use crate::tfe::api::SettingsKind;
use crate::tfe::{Client, TfeError};

pub const NAME: StepName = crate::step_name::SMTP;

pub struct Smtp;

impl Step for Smtp {
    fn name(&self) -> StepName {
        NAME
    }
    fn needs_site_admin(&self) -> bool {
        true
    }
    fn secret_keys(&self, _cfg: &Config) -> Vec<&'static str> {
        vec!["[smtp] password"]
    }
    fn desired(&self, cfg: &Config) -> Applies {
        settings::desired(cfg.smtp.as_ref(), "smtp", None)
    }
    fn live(&self, cx: &LiveCtx<'_>) -> Result<Vec<Drift>, crate::tfe::TfeError> {
        settings::live(cx, SettingsKind::Smtp, cx.cfg.smtp.as_ref())
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        let s = settings::section(ctx.cfg.smtp.as_ref(), NAME)?;
        let fp = witness::fingerprint(ctx, self)?;
        let client = admin_client(ctx, NAME)?.clone();
        let unread = "the password and test address cannot be read back";
        if witness::sent_before(ctx, NAME, &fp)
            && settings::holds(&client, SettingsKind::Smtp, s)
                .map_err(|e| api_error(NAME, ctx, e))?
        {
            witness::clear(ctx, NAME);
            return Ok(Done::changed(format!(
                "an earlier run's PATCH reached TFE, which holds these settings ({unread}); \
                 not sent again, so no second test mail"
            )));
        }
        witness::record(ctx, NAME, &fp)?;
        let mut detail = match settings::patch(&client, SettingsKind::Smtp, s) {
            Ok(d) => d,
            Err(e) => match after_failure(ctx, &client, s, e)? {
                Next::Done(done) => return Ok(done),
                Next::Sent(d) => d,
            },
        };
        witness::clear(ctx, NAME);
        if let Some(to) = s
            .write_only
            .get("test-email-address")
            .and_then(|v| v.as_str())
        {
            // TFE sends no test mail while SMTP is disabled: never claim one.
            if s.attributes.get("enabled") == Some(&serde_json::Value::Bool(false)) {
                detail.push_str(&format!(
                    "; no test mail to {to}: SMTP is disabled (enabled = false), so TFE sends none"
                ));
            } else {
                detail.push_str(&format!("; TFE sent a test mail to {to}"));
            }
        }
        Ok(Done::changed(detail))
    }
}

/// Where a failed PATCH leaves the step.
enum Next {
    /// Ended: TFE holds the settings after all.
    Done(Done),
    /// Sent once more, and TFE took it (the detail line).
    Sent(String),
}

/// A PATCH that failed. Settings are idempotent; only the test mail is not,
/// so TFE is read back before anything is sent again:
/// - a lost answer after a timeout: TFE may still be talking to the relay,
///   so it is read back for up to `[tfe] request_timeout`, never re-sent;
/// - a dropped connection: read back for up to `[tfe] request_timeout` too
///   (a proxy may have cut it while TFE still works); when TFE still does
///   not hold the settings it is taken as not taken, so no mail went, and
///   it is sent once more. That rests on a belief no source confirms, and
///   which tfe-sim shares (sim/tfe/settings.rs): that TFE saves the
///   settings in the request that sends the mail, within that window;
///   were it slower, the re-send would be a second mail;
/// - a 500: TFE's API docs give it for an SMTP server error during the test
///   mail, but TFE itself, or a load balancer in front of it, answers 500
///   too: read back, and when TFE does not hold the settings say both,
///   with TFE's own words, rather than blame the mail server.
fn after_failure(
    ctx: &mut Ctx<'_>,
    client: &Client,
    s: &crate::config::SettingsConfig,
    e: TfeError,
) -> Result<Next, Error> {
    let unread = "the password and test address cannot be read back";
    let held = |within: Duration| {
        if within.is_zero() {
            settings::holds(client, SettingsKind::Smtp, s).unwrap_or(false)
        } else {
            read_back(client, s, within)
        }
    };
    if e.is_ambiguous() && e.timed_out() {
        let waited = ctx.cfg.tfe.request_timeout;
        if held(waited) {
            witness::clear(ctx, NAME);
            return Ok(Next::Done(Done::changed(format!(
                "TFE's answer to the PATCH was lost ({e}), but it holds these settings ({unread}); \
                 the PATCH was not repeated, so there was one test mail"
            ))));
        }
        return Err(Error::step(
            NAME,
            format!(
                "{e}; TFE did not show the new settings within {}s either. The PATCH is not repeated \
                 in this run: with a test_email_address every PATCH sends a test mail. A rerun reads \
                 TFE's settings first and sends again only if they do not hold this change. If the \
                 relay is slow, raise [tfe] request_timeout",
                waited.as_secs()
            ),
        ));
    }
    if e.is_ambiguous() {
        // A proxy may have cut the connection while TFE still talks to the
        // relay: TFE gets the same window as after a timeout to show them.
        if held(ctx.cfg.tfe.request_timeout) {
            witness::clear(ctx, NAME);
            return Ok(Next::Done(Done::changed(format!(
                "TFE's answer to the PATCH was lost ({e}), but it holds these settings ({unread}); \
                 the PATCH was not repeated, so there was one test mail"
            ))));
        }
        ctx.warn(
            NAME,
            &format!("the SMTP PATCH's connection was lost ({e}) and TFE does not hold the settings: sent once more"),
        );
        return settings::patch(client, SettingsKind::Smtp, s)
            .map(Next::Sent)
            .map_err(|e| smtp_error(ctx, e));
    }
    if e.status() == Some(500) && held(Duration::ZERO) {
        witness::clear(ctx, NAME);
        return Ok(Next::Done(Done::changed(format!(
            "TFE answered 500 to the PATCH ({e}) but holds these settings ({unread}): \
             the test mail is unconfirmed (check the inbox); not sent again"
        ))));
    }
    Err(smtp_error(ctx, e))
}

/// Reads the settings back until TFE holds them or `within` passes: TFE may
/// still be talking to the relay when the client's timeout ended.
fn read_back(client: &Client, s: &crate::config::SettingsConfig, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut reader = client.with_timeout(within);
    reader.retry.deadline = within;
    loop {
        if settings::holds(&reader, SettingsKind::Smtp, s).unwrap_or(false) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        if !crate::stop::sleep(Duration::from_millis(250)) {
            return false;
        }
    }
}

/// SMTP's PATCH answers 401/500/504 about the *SMTP server*, not the TFE token.
fn smtp_error(ctx: &Ctx<'_>, e: TfeError) -> Error {
    let hint = match e.status() {
        Some(401) => {
            "the SMTP server refused [smtp] username/password during TFE's test mail (this 401 is about SMTP, not the TFE token)"
        }
        Some(500) => {
            "TFE's API docs give 500 here when the SMTP server answered the test mail with an error, but TFE itself, \
             or a load balancer in front of it, answers 500 too: TFE's own words are above. If they speak of the SMTP \
             server, check [smtp] host, port, sender and the relay's logs; otherwise check TFE's logs. TFE does not \
             hold the new settings, and a rerun sends them again"
        }
        Some(504) => {
            "TFE could not reach the SMTP server in time: check [smtp] host and port, and that TFE's network allows it"
        }
        _ => return api_error(NAME, ctx, e),
    };
    Error::step(NAME, format!("{e}; {hint}"))
}
