//! Preflight checks, as kubeadm has them: what the environment must give a
//! run before it can succeed. `validate --preflight` runs them all and
//! reports each; `run` stops at once only for what waiting cannot fix (an
//! unusable state dir or token_file directory, a TLS certificate that does
//! not verify), since at first boot nothing listening yet is normal.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use crate::error::exit;
use crate::tfe::{Client, TfeError};
use crate::util::{probe_write, unsafe_owner_or_mode};

/// One check's result.
pub(super) struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// What was found, or what failed and what to do.
    pub detail: String,
    /// The exit code this failure maps to (2 environment, 3 unreachable).
    pub code: u8,
}

impl Check {
    fn pass(name: &'static str, detail: String) -> Check {
        Check {
            name,
            ok: true,
            detail,
            code: exit::OK,
        }
    }
    fn fail(name: &'static str, code: u8, detail: String) -> Check {
        Check {
            name,
            ok: false,
            detail,
            code,
        }
    }
}

/// Whether `dir` can hold secrets and be written: it (or, when it does not
/// exist yet, the nearest existing parent it would be created in) is safe
/// and writable. Nothing is left behind.
pub(super) fn dir_usable(dir: &Path, what: &str, key: &str) -> Result<String, String> {
    let mut at = dir;
    while !at.exists() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => break,
        }
    }
    let meta = std::fs::metadata(at).map_err(|e| format!("{what} {}: {e}", at.display()))?;
    if !meta.is_dir() {
        return Err(format!(
            "{what} {}: not a directory; set {key}",
            at.display()
        ));
    }
    if at == dir
        && let Some(why) = unsafe_owner_or_mode(at, &meta)
    {
        return Err(format!("{what}: {why}"));
    }
    probe_write(at).map_err(|e| {
        format!(
            "{what} {}: cannot write in {} ({e}); choose a writable directory with {key}",
            dir.display(),
            at.display()
        )
    })?;
    Ok(if at == dir {
        format!("{} is usable", dir.display())
    } else {
        format!("{} can be created in {}", dir.display(), at.display())
    })
}

/// The checks `run` makes before waiting: exit 2 for any failure.
pub(super) fn local(cfg: &Config) -> Vec<Check> {
    let mut out = vec![];
    let state = match dir_usable(
        &cfg.state_dir,
        "state directory",
        "[state] dir or --state-dir",
    ) {
        Ok(d) => Check::pass("state dir", d),
        Err(e) => Check::fail("state dir", exit::USAGE, e),
    };
    out.push(state);
    // The store answers a read (a helper that is missing, not executable
    // or cannot reach its backend fails here, before anything is sent).
    if let Some(s) = &cfg.store {
        let store = crate::store::Store::new(s, &cfg.tfe.address, &cfg.secret_envs);
        out.push(match store.get("salt") {
            Ok(_) => Check::pass("store", "[store] command answers a get".into()),
            // Said once, even when the helper's error already says it.
            Err(e @ crate::store::StoreError::Spawn { .. }) => {
                Check::fail("store", exit::USAGE, e.to_string())
            }
            Err(e) => Check::fail("store", exit::USAGE, format!("{e}; check [store] command")),
        });
    }
    // token_file is written when the admin is created or its token rotated.
    if cfg.admin.token.is_some() && !cfg.admin.rotate_token {
        return out;
    }
    let token_dir = cfg
        .admin
        .token_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let what = format!(
        "the directory of token_file {}",
        cfg.admin.token_file.display()
    );
    let token = match dir_usable(token_dir, &what, "[admin] token_file") {
        Ok(d) => Check::pass("token_file dir", d),
        Err(e) => Check::fail("token_file dir", exit::USAGE, e),
    };
    out.push(token);
    out
}

/// What may only mean "not up yet": DNS, a listener, TLS, readiness.
pub(super) fn remote(cfg: &Config, client: &Client) -> Vec<Check> {
    let mut out = vec![];
    let (host, port) = (&cfg.tfe.host, cfg.tfe.port);
    let addrs: Vec<_> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            out.push(Check::fail(
                "dns",
                exit::NOT_READY,
                format!("{host} does not resolve ({e}): check the host name in [tfe] address"),
            ));
            return out;
        }
    };
    out.push(Check::pass(
        "dns",
        format!(
            "{host} resolves to {}",
            addrs
                .iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ));
    let connect = addrs
        .iter()
        .find_map(|a| TcpStream::connect_timeout(a, Duration::from_secs(5)).ok());
    if connect.is_none() {
        out.push(Check::fail(
            "port",
            exit::NOT_READY,
            format!(
                "nothing accepts connections on {host}:{port}: check the port in [tfe] address ({}), \
                 or that TFE is up",
                cfg.tfe.address
            ),
        ));
        return out;
    }
    out.push(Check::pass(
        "port",
        format!("{host}:{port} accepts connections"),
    ));
    let probe = client.with_timeout(cfg.tfe.request_timeout.min(Duration::from_secs(10)));
    // Which app answers (TFP-AppName on the ping), against [tfe] platform.
    if let Ok(resp) = probe.ping()
        && let Some(app) = resp.app_name.as_deref()
    {
        let hcp = app.contains("HCP Terraform") || app.contains("Terraform Cloud");
        let want_hcp = cfg.tfe.platform == crate::config::Platform::Hcp;
        if hcp != want_hcp {
            out.push(Check::fail(
                "platform",
                exit::USAGE,
                format!(
                    "{} answers as {app} (TFP-AppName), but [tfe] platform is {}: set [tfe] platform = \"{}\"",
                    cfg.tfe.address,
                    if want_hcp { "hcp" } else { "enterprise" },
                    if hcp { "hcp" } else { "enterprise" }
                ),
            ));
            return out;
        }
    }
    out.extend(readiness(cfg, &probe));
    out
}

/// Whether TFE answers ready (then whether it hands this host the IACT),
/// is still starting, or is no TFE at all.
fn readiness(cfg: &Config, probe: &Client) -> Vec<Check> {
    let mut out = vec![];
    match probe.ready_probe(cfg.tfe.platform) {
        Ok(_) => {
            out.push(Check::pass("tfe", "TFE answers ready".into()));
            out.extend(iact(cfg, probe));
        }
        Err(TfeError::Tls { detail }) => out.push(Check::fail(
            "tls",
            exit::USAGE,
            format!("{}: {detail}", cfg.tfe.address),
        )),
        Err(e) => match e.status() {
            // No readiness endpoint: a release before 1.2 answers
            // `/_health_check`; whatever answers neither, nor the API's
            // ping, is no TFE.
            Some(404)
                if cfg.tfe.platform == crate::config::Platform::Enterprise
                    && probe.health_check().is_err_and(|h| h.status() == Some(404))
                    && probe.ping().is_err_and(|p| p.status() == Some(404)) =>
            {
                out.push(Check::fail(
                    "tfe",
                    exit::USAGE,
                    crate::steps::wait::not_tfe_words(&cfg.tfe.address),
                ))
            }
            Some(s) => out.push(Check::pass(
                "tfe",
                format!("TFE answers, not ready yet ({s}): `run` waits for it"),
            )),
            None => out.push(Check::fail(
                "tfe",
                exit::NOT_READY,
                format!("{e}: check [tfe] address ({})", cfg.tfe.address),
            )),
        },
    }
    out
}

/// Whether TFE hands this host the IACT over its HTTP API, when a run
/// would still ask it for one (no admin yet, `[iact] source` api or auto
/// without a pre-seeded token). Behind a load balancer TFE judges the
/// balancer's address: the refusal says so, and which setting to change.
fn iact(cfg: &Config, client: &Client) -> Option<Check> {
    use crate::config::IactSource;
    if cfg.tfe.platform != crate::config::Platform::Enterprise || cfg.admin.token.is_some() {
        return None;
    }
    // What a run still has when TFE refuses this host: the command, or, in
    // a fleet, another node that may create the admin and share its token.
    let fallback = match cfg.iact.source {
        IactSource::Api => None,
        IactSource::Auto if cfg.iact.token.is_none() => cfg
            .iact
            .command
            .as_ref()
            .map(|_| "`run` falls back to [iact] command"),
        _ => return None,
    }
    .or(cfg
        .store
        .as_ref()
        .map(|_| "with [store], another node may create the admin and share its token"));
    let state = crate::session::load_state(&cfg.state_dir, Some(&cfg.tfe.address))
        .ok()
        .flatten();
    if state
        .as_ref()
        .is_some_and(|s| s.steps.contains_key(crate::step_name::ADMIN.as_str()))
    {
        return None;
    }
    let first_ready = state.and_then(|s| s.facts.first_ready_unix);
    Some(
        match crate::steps::iact_source::api(cfg, client, first_ready) {
            Ok((_, how)) => Check::pass("iact", format!("TFE hands out the IACT over {how}")),
            Err(e) if e.is_empty() => return None,
            Err(e) => match fallback {
                Some(then) => Check::pass("iact", format!("{e}; {then}")),
                None => Check::fail("iact", exit::NO_ADMIN, e),
            },
        },
    )
}

/// The exit code for a list of checks: the first failure's, else 0.
pub(super) fn code(checks: &[Check]) -> u8 {
    checks
        .iter()
        .find(|c| !c.ok)
        .map(|c| c.code)
        .unwrap_or(exit::OK)
}
