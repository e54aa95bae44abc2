//! `iact`: obtain the Initial Admin Creation Token, in memory only.
//!
//! Sources, per `[iact] source`: `token` (pre-seeded, as TFE_IACT_TOKEN),
//! `api` (`GET /admin/retrieve-iact`, only when this host's address toward
//! TFE is inside `subnets` and the time limit since TFE first answered ready
//! has not passed), `command` (argv, no shell, stdout trimmed). `auto` tries
//! them in that order; a refusal falls through to the next. Nothing
//! obtainable: exit 4, with every source's reason.

use std::io::Read;
use std::net::{IpAddr, ToSocketAddrs, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::config::duration::format_duration;
use crate::config::secret::Secret;
use crate::config::{Config, IactSource};
use crate::error::Error;
use crate::step::{Applied, Ctx, Desired, Schedule, Step, StepName};
use crate::util::unix_now;

pub const NAME: StepName = StepName::new("iact");

pub struct Iact;

impl Step for Iact {
    fn name(&self) -> StepName {
        NAME
    }
    /// Needed only while the admin is still to be created.
    fn schedule(&self) -> Schedule {
        Schedule::With(super::admin::NAME)
    }
    fn desired(&self, cfg: &Config) -> Result<Desired, String> {
        if cfg.admin.token.is_some() {
            return Err("not needed: [admin] token is given".into());
        }
        if cfg.admin.token_file.exists() {
            return Err(format!(
                "not needed: admin token file {} exists",
                cfg.admin.token_file.display()
            ));
        }
        if let Some(p) = super::admin::rescued(cfg) {
            return Err(format!(
                "not needed: an earlier run kept the admin token in {}",
                p.display()
            ));
        }
        Ok(Desired::plain(json!({"address": cfg.tfe.address})))
    }
    fn apply(&self, ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
        run(ctx)
    }
}

fn run(ctx: &mut Ctx<'_>) -> Result<Applied, Error> {
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
            IactSource::Api if cfg.subnets.is_empty() => Err(None),
            IactSource::Api => from_api(ctx).map_err(Some),
            IactSource::Command => match &cfg.command {
                None => Err(None),
                Some(argv) => from_command(argv, cfg.command_timeout).map_err(Some),
            },
            IactSource::Auto => Err(None),
        };
        match got {
            Ok((token, how)) => {
                ctx.iact = Some(token);
                return Ok(Applied::changed(format!("obtained from {how}")));
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

/// This host's source address toward TFE (no packet is sent: a UDP
/// "connect" only picks the route).
fn local_addr_toward(host: &str, port: u16) -> Result<IpAddr, String> {
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
    Ok(sock.local_addr().map_err(|e| e.to_string())?.ip())
}

fn from_api(ctx: &Ctx<'_>) -> Result<(Secret, String), String> {
    let cfg = &ctx.cfg.iact;
    let me = local_addr_toward(&ctx.cfg.tfe.host, ctx.cfg.tfe.port)
        .map_err(|e| format!("HTTP API: {e}"))?;
    if !cfg.subnets.iter().any(|n| n.contains(&me)) {
        let nets: Vec<String> = cfg.subnets.iter().map(|n| n.to_string()).collect();
        return Err(format!(
            "HTTP API: this host's address toward TFE ({me}) is outside [iact] subnets ({})",
            nets.join(", ")
        ));
    }
    if let (Some(limit), Some(first)) = (cfg.time_limit, ctx.state.facts.first_ready_unix) {
        let age = Duration::from_secs(unix_now().saturating_sub(first));
        if age >= limit {
            return Err(format!(
                "HTTP API: its window ([iact] time_limit {}) has passed: TFE first answered ready {} ago",
                format_duration(limit),
                format_duration(Duration::from_secs(age.as_secs()))
            ));
        }
    }
    match ctx.client.retrieve_iact() {
        Ok(t) => Ok((
            Secret::new(t, "GET /admin/retrieve-iact"),
            "the HTTP API (/admin/retrieve-iact)".into(),
        )),
        Err(e) => Err(format!(
            "HTTP API refused: {e} (outside TFE's iact_subnet_list, or its time limit passed)"
        )),
    }
}

fn from_command(argv: &[String], timeout: Duration) -> Result<(Secret, String), String> {
    let shown = argv.first().cloned().unwrap_or_default();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("command {shown:?} could not start: {e}"))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.take(64 * 1024).read_to_string(&mut s);
        }
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.take(64 * 1024).read_to_string(&mut s);
        }
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "command {shown:?} did not finish within [iact] command_timeout ({})",
                    format_duration(timeout)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("command {shown:?}: {e}")),
        }
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if !status.success() {
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let last: String = last.chars().take(200).collect();
        return Err(format!(
            "command {shown:?} failed ({status}){}",
            if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            }
        ));
    }
    let token = out.trim_matches(|c: char| c == '\r' || c == '\n' || c == ' ' || c == '\t');
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
