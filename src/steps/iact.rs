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

/// Runs the `[iact] command` in its own process group. The deadline
/// (`command_timeout`) covers the command and the reading of its output:
/// when the command exits, or at the deadline, the whole group is killed,
/// so a background child left holding stdout cannot stretch the wait.
fn from_command(argv: &[String], timeout: Duration) -> Result<(Secret, String), String> {
    use std::os::unix::process::CommandExt;
    use std::sync::mpsc;
    let shown = argv.first().cloned().unwrap_or_default();
    let deadline = Instant::now() + timeout;
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("command {shown:?} could not start: {e}"))?;
    let group = child.id() as libc::pid_t;
    let kill_group = || {
        // SAFETY: kill(2) with a negative pid signals that process group;
        // the group is the child's own (process_group(0) above).
        unsafe { libc::kill(-group, libc::SIGKILL) };
    };
    let (tx, rx) = mpsc::channel::<(bool, String)>();
    for (is_out, pipe) in [
        (
            true,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            false,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(64 * 1024).read_to_end(&mut buf);
            }
            let _ = tx.send((is_out, String::from_utf8_lossy(&buf).into_owned()));
        });
    }
    let too_late = || {
        format!(
            "command {shown:?} did not finish within [iact] command_timeout ({}); it and its children were killed",
            format_duration(timeout)
        )
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() >= deadline => {
                kill_group();
                let _ = child.wait();
                return Err(too_late());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                kill_group();
                return Err(format!("command {shown:?}: {e}"));
            }
        }
    };
    // What the command left running in its group is not wanted: killing it
    // closes the pipes it may still hold.
    kill_group();
    let (mut out, mut err) = (None, None);
    while out.is_none() || err.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.max(Duration::from_millis(200))) {
            Ok((true, s)) => out = Some(s),
            Ok((false, s)) => err = Some(s),
            Err(_) => return Err(too_late()),
        }
    }
    let (out, err) = (out.unwrap_or_default(), err.unwrap_or_default());
    if !status.success() {
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let last: String = hide_tokens(last).chars().take(200).collect();
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

/// A failing command's stderr is shown to help the operator, but it may
/// hold a token this run never learned (so the redactor cannot know it):
/// every run of 16 or more token characters with both letters and digits
/// becomes `[redacted]`. Words, paths and messages survive.
fn hide_tokens(line: &str) -> String {
    let is_tok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '=');
    let mut out = String::with_capacity(line.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let secret_like = word.len() >= 16
            && word.chars().any(|c| c.is_ascii_digit())
            && word.chars().any(|c| c.is_ascii_alphabetic());
        out.push_str(if secret_like {
            crate::redact::REDACTED
        } else {
            word
        });
        word.clear();
    };
    for c in line.chars() {
        if is_tok(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_command_stderr_are_hidden() {
        assert_eq!(
            hide_tokens(
                "Error: no such container: terraform-enterprise (token iact-5e1f0c7b9a2d4e6f8a0b)"
            ),
            "Error: no such container: terraform-enterprise (token [redacted])"
        );
        assert_eq!(
            hide_tokens("/usr/bin/docker exited 125"),
            "/usr/bin/docker exited 125"
        );
    }
}
