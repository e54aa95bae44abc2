//! Where the Initial Admin Creation Token comes from, per `[iact] source`:
//! `token` (pre-seeded, as TFE_IACT_TOKEN), `api` (`GET
//! /admin/retrieve-iact`, only when this host's address toward TFE is
//! inside `subnets` and the time limit since TFE first answered ready has
//! not passed), `command` (argv, no shell, stdout trimmed). `auto` tries
//! them in that order; a refusal falls through to the next. Nothing
//! obtainable: exit 4, with every source's reason. Used by the `iact` step
//! and by the `admin` step of a node that took the admin duty over.

use std::net::{IpAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use crate::config::duration::format_duration;
use crate::config::secret::Secret;
use crate::config::{Config, IactSource};
use crate::error::Error;
use crate::step::{Ctx, Done};
use crate::step_name::IACT as NAME;
use crate::tfe::Client;
use crate::util::unix_now;

/// Obtains the IACT from the configured sources into `ctx.iact`.
pub(super) fn obtain(ctx: &mut Ctx<'_>) -> Result<Done, Error> {
    let cfg = &ctx.cfg.iact;
    let order: &[IactSource] = match cfg.source {
        IactSource::Auto => &[IactSource::Token, IactSource::Api, IactSource::Command],
        IactSource::Token => &[IactSource::Token],
        IactSource::Api => &[IactSource::Api],
        IactSource::Command => &[IactSource::Command],
    };
    let mut reasons: Vec<String> = vec![];
    for source in order {
        let got = match source {
            IactSource::Token => cfg
                .token
                .clone()
                .map(|t| (t, "the pre-seeded [iact] token".to_string()))
                .ok_or(None),
            IactSource::Api => from_api(ctx).map_err(|e| (!e.is_empty()).then_some(e)),
            IactSource::Command => match &cfg.command {
                None => Err(None),
                Some(argv) => from_command(
                    argv,
                    &crate::helper::Env {
                        pass: &cfg.env,
                        deny: &ctx.cfg.secret_envs,
                        add: &[],
                    },
                    cfg.command_timeout,
                )
                .map_err(Some),
            },
            IactSource::Auto => Err(None),
        };
        match got {
            Ok((token, how)) => {
                ctx.iact = Some(token);
                return Ok(Done::changed(format!("obtained from {how}")));
            }
            Err(Some(reason)) => reasons.push(reason),
            Err(None) => {}
        }
    }
    Err(Error::no_admin(
        NAME,
        format!(
            "could not obtain the Initial Admin Creation Token: {}. Pre-seed it (TFE_IACT_TOKEN on the install, \
             [iact] token here), or give [iact] command; if TFE already has an admin, set [admin] token instead",
            if reasons.is_empty() {
                "no source is configured".to_string()
            } else {
                reasons.join("; ")
            }
        ),
    ))
}

/// This host's source address toward TFE, and TFE's address it goes to
/// (no packet is sent: a UDP "connect" only picks the route).
fn route_toward(host: &str, port: u16) -> Result<(IpAddr, IpAddr), String> {
    let target = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let bind = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    sock.connect(target)
        .map_err(|e| format!("no route to {target}: {e}"))?;
    Ok((
        sock.local_addr().map_err(|e| e.to_string())?.ip(),
        target.ip(),
    ))
}

fn from_api(ctx: &Ctx<'_>) -> Result<(Secret, String), String> {
    api(ctx.cfg, &ctx.client, ctx.state.facts.first_ready_unix)
}

/// `GET /admin/retrieve-iact` if this host may ask: `Err("")` when there
/// is nothing to try, else the reason it was not obtained. `first_ready`
/// is when TFE first answered ready (the start of its time limit).
pub(crate) fn api(
    cfg: &Config,
    client: &Client,
    first_ready: Option<u64>,
) -> Result<(Secret, String), String> {
    let iact = &cfg.iact;
    let (me, tfe) =
        route_toward(&cfg.tfe.host, cfg.tfe.port).map_err(|e| format!("HTTP API: {e}"))?;
    // Without [iact] subnets only TFE's own host may ask (blank
    // TFE_IACT_SUBNETS still allows localhost: FDO configuration docs);
    // from anywhere else there is nothing to try ("" skips the source).
    if iact.subnets.is_empty() && !me.is_loopback() {
        return Err(String::new());
    }
    let nets: Vec<String> = iact.subnets.iter().map(|n| n.to_string()).collect();
    if !iact.subnets.is_empty() && !iact.subnets.iter().any(|n| n.contains(&me)) {
        return Err(format!(
            "HTTP API: this host's address toward TFE ({me}) is outside [iact] subnets ({})",
            nets.join(", ")
        ));
    }
    if let (Some(limit), Some(first)) = (iact.time_limit, first_ready) {
        let age = Duration::from_secs(unix_now().saturating_sub(first));
        if age >= limit {
            return Err(format!(
                "HTTP API: its window ([iact] time_limit {}) has passed: TFE first answered ready {} ago",
                format_duration(limit),
                format_duration(Duration::from_secs(age.as_secs()))
            ));
        }
    }
    match client.retrieve_iact() {
        Ok(t) => Ok((
            Secret::new(t, "GET /admin/retrieve-iact"),
            format!("the HTTP API (/admin/retrieve-iact, asked from {me})"),
        )),
        Err(e) if nets.is_empty() => Err(format!(
            "HTTP API refused: {e}. TFE refuses even a request from its own host ({me} toward {tfe}): \
             TFE_IACT_SUBNETS on the install is not blank (give its CIDRs as [iact] subnets), its \
             TFE_IACT_TIME_LIMIT has passed, or a proxy at {tfe} stands between (then set \
             TFE_IACT_TRUSTED_PROXIES on the install to the proxy's address)"
        )),
        // "TFE then reads {me} from X-Forwarded-For" is the one belief this
        // advice shares with tfe-sim (sim/tfe/boot.rs `iact_client`): TFE's
        // docs name TFE_IACT_TRUSTED_PROXIES but not how it reads the
        // header. The setting itself is documented.
        Err(e) => Err(format!(
            "HTTP API refused: {e}. TFE judges the address it sees. This host asks from {me} \
             (inside [iact] subnets ({})), so unless TFE_IACT_TIME_LIMIT has passed or \
             TFE_IACT_SUBNETS differs from [iact] subnets, TFE saw another address: that of a load \
             balancer or proxy at {tfe} in front of TFE. Set TFE_IACT_TRUSTED_PROXIES on the install \
             to the balancer's address (TFE then reads {me} from X-Forwarded-For)",
            nets.join(", ")
        )),
    }
}

/// Runs the `[iact] command` (see [`crate::helper`]): its deadline,
/// `command_timeout`, covers the command and the reading of its output.
fn from_command(
    argv: &[String],
    env: &crate::helper::Env<'_>,
    timeout: Duration,
) -> Result<(Secret, String), String> {
    use crate::helper::Failure;
    let shown = argv.first().cloned().unwrap_or_default();
    let done = crate::helper::run(argv, None, env, timeout).map_err(|f| match f {
        Failure::Spawn(e) => format!("command {shown:?} could not start: {e}"),
        Failure::TimedOut => format!(
            "command {shown:?} did not finish within [iact] command_timeout ({}); it and its children were killed",
            format_duration(timeout)
        ),
        Failure::Wait(e) => format!("command {shown:?}: {e}"),
    })?;
    if !done.status.success() {
        return Err(crate::helper::failed(&format!("command {shown:?}"), &done));
    }
    let token = done
        .stdout
        .trim_matches(|c: char| c == '\r' || c == '\n' || c == ' ' || c == '\t');
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(format!(
            "command {shown:?} printed no single token on stdout"
        ));
    }
    Ok((
        Secret::new(token, "[iact] command"),
        format!("the command {shown:?}"),
    ))
}
