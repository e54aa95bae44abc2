//! `Config::from_raw`, one section at a time: each function checks its
//! section's keys into the [`Checker`] (every problem at once, each naming
//! its key) and builds that section's part of the [`Config`]. The order of
//! the calls in `from_raw` is the order problems are reported in.

use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;

use super::check::{Checker, parse_address};
use super::raw::{
    RawAdmin, RawConfig, RawIact, RawMetrics, RawRenew, RawStore, RawTerraform, RawTfe, RawWait,
};
use super::secret::SecretSource;
use super::{
    AdminConfig, HCP_ADDRESS, IactConfig, IactSource, OrgConfig, Platform, RenewConfig,
    StoreConfig, TFE_DEFAULT_TOKEN_LIFETIME_MS, TerraformConfig, TfeConfig, WaitConfig,
    did_you_mean, duration,
};

/// The warning for a file readable by group or others that holds literal
/// secrets, if it does.
pub(super) fn literal_secrets(raw: &RawConfig, file: &Path) -> Option<String> {
    let literal: Vec<&str> = [
        (
            "[iact] token",
            raw.iact.as_ref().and_then(|i| i.token.as_ref()),
        ),
        (
            "[admin] password",
            raw.admin.as_ref().and_then(|a| a.password.as_ref()),
        ),
        (
            "[admin] token",
            raw.admin.as_ref().and_then(|a| a.token.as_ref()),
        ),
        (
            "[smtp] password",
            raw.smtp.as_ref().and_then(|s| s.password.as_ref()),
        ),
        (
            "[saml] private_key",
            raw.saml.as_ref().and_then(|s| s.private_key.as_ref()),
        ),
        (
            "[twilio] auth_token",
            raw.twilio.as_ref().and_then(|t| t.auth_token.as_ref()),
        ),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_some_and(SecretSource::is_literal))
    .map(|(k, _)| k)
    .collect();
    (!literal.is_empty()).then(|| {
        format!(
            "{} holds literal secrets ({}) and is readable by group or others: chmod 600 it, or use {{ env = \"NAME\" }} / {{ file = \"PATH\" }}",
            file.display(),
            literal.join(", ")
        )
    })
}

/// `[tfe] platform`.
pub(super) fn platform(c: &mut Checker, t: &RawTfe) -> Platform {
    match t.platform.as_deref().unwrap_or("enterprise") {
        "enterprise" => Platform::Enterprise,
        "hcp" => Platform::Hcp,
        other => {
            let hint = did_you_mean(other, ["enterprise", "hcp"])
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            c.fail(
                "[tfe] platform",
                format!("{other:?} is not one of enterprise, hcp{hint}"),
            );
            Platform::Enterprise
        }
    }
}

/// With `platform = "hcp"`: what only Terraform Enterprise has is refused
/// before any request, and `[admin] token` is required.
pub(super) fn hcp_only(c: &mut Checker, raw: &RawConfig) {
    // What only Terraform Enterprise has: refused before any request.
    let admin_creation = raw
        .admin
        .as_ref()
        .is_some_and(|a| a.username.is_some() || a.email.is_some() || a.password.is_some());
    for (section, present) in [
        ("[iact]", raw.iact.is_some()),
        ("[general]", raw.general.is_some()),
        ("[smtp]", raw.smtp.is_some()),
        ("[saml]", raw.saml.is_some()),
        ("[twilio]", raw.twilio.is_some()),
        ("[admin] username/email/password", admin_creation),
    ] {
        if present {
            c.fail(
                section,
                "is Terraform Enterprise only: HCP Terraform has no site admin, IACT or admin settings. \
                 Remove it, or set [tfe] platform = \"enterprise\"",
            );
        }
    }
    if raw.admin.as_ref().is_none_or(|a| a.token.is_none()) {
        c.fail(
            "[admin] token",
            "is required with platform = \"hcp\": an organization owner's user or team token, \
             e.g. token = { env = \"TFE_TOKEN\" }",
        );
    }
}

/// `[tfe]`: the address and how to reach it.
pub(super) fn tfe(c: &mut Checker, t: &RawTfe, platform: Platform) -> TfeConfig {
    let default_address = (platform == Platform::Hcp).then(|| HCP_ADDRESS.to_string());
    let allow_http = t.allow_insecure_http.unwrap_or(false);
    let (address, https, host, port) = parse_address(
        c,
        t.address.as_ref().or(default_address.as_ref()),
        allow_http,
    );
    let ca_bundle = t.ca_bundle.as_ref().and_then(|p| {
        match crate::util::read_capped(p, crate::util::cap::SECRET_FILE) {
            Ok(pem) if String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") => {
                Some((p.clone(), pem))
            }
            Ok(_) => {
                c.fail(
                    "[tfe] ca_bundle",
                    format!(
                        "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                        p.display()
                    ),
                );
                None
            }
            Err(e) => {
                c.fail(
                    "[tfe] ca_bundle",
                    format!("{} cannot be read: {e}", p.display()),
                );
                None
            }
        }
    });
    let request_timeout = c.duration("[tfe] request_timeout", t.request_timeout.as_ref(), "30s");
    let request_deadline = c.duration("[tfe] request_deadline", t.request_deadline.as_ref(), "2m");
    if request_deadline < request_timeout && !request_deadline.is_zero() {
        c.fail(
            "[tfe] request_deadline",
            format!(
                "{} is shorter than [tfe] request_timeout ({}): it must leave room for at least one whole attempt",
                duration::format_duration(request_deadline),
                duration::format_duration(request_timeout)
            ),
        );
    }
    TfeConfig {
        platform,
        address,
        https,
        host,
        port,
        ca_bundle,
        allow_insecure_http: allow_http,
        request_timeout,
        request_deadline,
    }
}

/// `[wait]`.
pub(super) fn wait(c: &mut Checker, w: &RawWait) -> WaitConfig {
    let wait = WaitConfig {
        timeout: c.duration("[wait] timeout", w.timeout.as_ref(), "30m"),
        max_interval: c.duration("[wait] max_interval", w.max_interval.as_ref(), "1s"),
    };
    if wait.max_interval.is_zero() && w.max_interval.is_some() {
        c.fail("[wait] max_interval", "must be positive");
    }
    wait
}

/// `[admin]`, and whether the run is to create the initial admin (no
/// `[admin] token`, not on HCP Terraform).
pub(super) fn admin(
    c: &mut Checker,
    a: &RawAdmin,
    hcp: bool,
    state_dir: &Path,
) -> (AdminConfig, bool) {
    let admin_token = c.secret("[admin] token", a.token.as_ref());
    let password = c.secret("[admin] password", a.password.as_ref());
    let needs_creation = a.token.is_none() && !hcp;
    if needs_creation {
        let why = "to create the initial admin (or give [admin] token to resume with an existing site-admin token)";
        c.required("[admin] username", a.username.as_ref(), why);
        c.required("[admin] email", a.email.as_ref(), why);
        if a.password.is_none() {
            c.fail("[admin] password", format!("is required {why}"));
        }
    }
    if let Some(u) = &a.username
        && !u
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        c.fail(
            "[admin] username",
            format!("{u:?} may contain only letters, digits, - and _"),
        );
    }
    c.email("[admin] email", a.email.as_ref());
    if let Some(p) = &password
        && p.expose().chars().count() < 10
    {
        c.fail(
            "[admin] password",
            "must be at least 10 characters (TFE refuses shorter ones)",
        );
    }
    let admin = AdminConfig {
        username: a.username.clone(),
        email: a.email.clone(),
        password,
        token_file: a
            .token_file
            .clone()
            .unwrap_or_else(|| state_dir.join("admin-token")),
        token: admin_token,
        rotate_token: a.rotate_token.unwrap_or(true),
    };
    (admin, needs_creation)
}

/// `[iact]`; `needs_creation`: the run creates the admin, so it needs a
/// way to the IACT. `host`: TFE's, which may be this very host.
pub(super) fn iact(c: &mut Checker, i: &RawIact, needs_creation: bool, host: &str) -> IactConfig {
    let source = match i.source.as_deref().unwrap_or("auto") {
        "auto" => IactSource::Auto,
        "token" => IactSource::Token,
        "api" => IactSource::Api,
        "command" => IactSource::Command,
        other => {
            let hint = did_you_mean(other, ["auto", "token", "api", "command"])
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            c.fail(
                "[iact] source",
                format!("{other:?} is not one of auto, token, api, command{hint}"),
            );
            IactSource::Auto
        }
    };
    let mut subnets = vec![];
    for s in i.subnets.iter().flatten() {
        match s
            .parse::<IpNet>()
            .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        {
            Ok(n) => subnets.push(n),
            Err(_) => c.fail(
                "[iact] subnets",
                format!("{s:?} is not a CIDR like \"10.0.0.0/16\""),
            ),
        }
    }
    let time_limit = match i.time_limit.as_deref() {
        Some("unlimited") => None,
        other => Some(c.duration("[iact] time_limit", other.map(String::from).as_ref(), "60m")),
    };
    let command = i.command.clone();
    if let Some(cmd) = &command
        && (cmd.is_empty() || cmd[0].trim().is_empty())
    {
        c.fail("[iact] command", "must be a non-empty argv list, e.g. [\"docker\", \"exec\", \"tfe\", \"tfectl\", \"admin\", \"token\"]");
    }
    let iact = IactConfig {
        source,
        token: c.secret("[iact] token", i.token.as_ref()),
        command,
        env: i.env.clone().unwrap_or_default(),
        command_timeout: c.duration("[iact] command_timeout", i.command_timeout.as_ref(), "60s"),
        subnets,
        time_limit,
    };
    let has_token = i.token.is_some();
    // TFE on this very host may be asked with no subnets (blank
    // TFE_IACT_SUBNETS still allows localhost: FDO configuration docs).
    let local = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let has_api = i.subnets.as_ref().is_some_and(|s| !s.is_empty()) || local;
    let has_cmd = i.command.as_ref().is_some_and(|s| !s.is_empty());
    match source {
        IactSource::Token if !has_token => c.fail("[iact] token", "is required with source = \"token\""),
        IactSource::Api if !has_api => c.fail("[iact] subnets", "is required with source = \"api\" (the CIDRs TFE's iact_subnet_list / TFE_IACT_SUBNETS allow)"),
        IactSource::Command if !has_cmd => c.fail("[iact] command", "is required with source = \"command\""),
        IactSource::Auto if needs_creation && !has_token && !has_api && !has_cmd => c.fail(
            "[iact]",
            "gives no way to obtain the Initial Admin Creation Token: set token, subnets or command (or [admin] token to skip admin creation); \
             with no subnets only TFE's own host (a localhost [tfe] address) may use the HTTP API",
        ),
        _ => {}
    }
    iact
}

/// The one combination that locks the admin out.
pub(super) fn admin_lockout(c: &mut Checker, organization: Option<&OrgConfig>, a: &RawAdmin) {
    // The one combination that locks the admin out: a max-TTL policy for
    // user tokens shorter than the lifetime of the admin token this tool
    // keeps (TFE's two-year default), with rotation turned off.
    let user_ttl = organization.and_then(|o| {
        (o.max_ttl_enabled == Some(true))
            .then_some(o.token_ttl.as_ref()?.iter().find(|(t, _)| *t == "user")?.1)
    });
    if let Some(ttl) = user_ttl.filter(|ms| *ms < TFE_DEFAULT_TOKEN_LIFETIME_MS) {
        let human = duration::format_duration(Duration::from_millis(ttl));
        if a.rotate_token == Some(false) {
            c.fail(
                "[admin] rotate_token",
                format!(
                    "is false, but [organization.token_ttl] user = {human} with max_ttl_enabled = true would make TFE refuse \
                     the admin token in token_file (TFE issues it for two years) and lock later runs out: \
                     remove rotate_token (it defaults to true) or set it to true"
                ),
            );
        }
    }
}

/// `[store]`; `request_deadline`: `[tfe] request_deadline`.
pub(super) fn store(
    c: &mut Checker,
    store: Option<&RawStore>,
    request_deadline: Duration,
) -> Option<StoreConfig> {
    store.map(|s| {
        let command = s.command.clone().unwrap_or_default();
        if command.is_empty() || command[0].trim().is_empty() {
            c.fail(
                "[store] command",
                "is required: the helper's argv, e.g. [\"/usr/local/bin/tfe-store\"] (see scripts/store/)",
            );
        }
        let wait = c.duration("[store] wait", s.wait.as_ref(), "10m");
        let timeout = c.duration("[store] timeout", s.timeout.as_ref(), "30s");
        // A node takes a duty over after `wait`: shorter than what the
        // holder's request may still take, and the takeover sends a
        // second SMTP PATCH (a second test mail) while the first is on
        // its way.
        if !wait.is_zero() && !request_deadline.is_zero() && wait < request_deadline {
            c.fail(
                "[store] wait",
                format!(
                    "{} is shorter than [tfe] request_deadline ({}), the longest one request may take: \
                     another node could take a step over while its request is still on its way (a second \
                     test mail). Make it at least {}",
                    duration::format_duration(wait),
                    duration::format_duration(request_deadline),
                    duration::format_duration(request_deadline)
                ),
            );
        }
        StoreConfig {
            command,
            env: s.env.clone().unwrap_or_default(),
            wait,
            timeout,
        }
    })
}

/// `[renew]`: `before` must be positive; `grace` may be zero (revoke the
/// replaced token at once).
pub(super) fn renew(c: &mut Checker, renew: Option<&RawRenew>) -> RenewConfig {
    renew
        .as_ref()
        .map(|r| RenewConfig {
            before: r
                .before
                .as_ref()
                .map(|_| c.duration("[renew] before", r.before.as_ref(), "1d")),
            grace: r
                .grace
                .as_ref()
                .and_then(|g| match duration::parse_duration(g) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        c.fail("[renew] grace", e);
                        None
                    }
                }),
        })
        .unwrap_or_default()
}

/// Child processes never get a secret's variable (see `helper::Env`).
pub(super) fn child_env(c: &mut Checker, store: Option<&StoreConfig>, iact: &IactConfig) {
    for (key, list) in [
        ("[store] env", store.as_ref().map(|s| &s.env)),
        ("[iact] env", Some(&iact.env)),
    ] {
        for name in list.into_iter().flatten() {
            let pattern = name.strip_suffix('*').unwrap_or(name);
            if pattern.is_empty()
                || !pattern
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            {
                c.fail(
                    key,
                    format!("{name:?} is not a variable name (or a prefix ending in *)"),
                );
            } else if let Some(secret) = c.secret_envs.iter().find(|v| {
                if name.ends_with('*') {
                    v.starts_with(pattern)
                } else {
                    *v == name
                }
            }) {
                c.fail(
                    key,
                    format!("{name:?} would pass {secret}, which holds a secret of this config: a command never gets it"),
                );
            }
        }
    }
}

/// `[terraform]`: which token goes to Terraform, for which host, where.
pub(super) fn terraform(
    c: &mut Checker,
    t: &RawTerraform,
    org: Option<&OrgConfig>,
    tfe: &TfeConfig,
) -> Option<TerraformConfig> {
    use super::TerraformToken as T;
    let has_team = org.is_some_and(|o| o.owners_team_token_file.is_some());
    let has_org = org.is_some_and(|o| o.service_token_file.is_some());
    let token = match t.token.as_deref() {
        None if has_team => T::OwnersTeam,
        None if has_org => T::Organization,
        None | Some("admin") => T::Admin,
        Some("organization") if has_org => T::Organization,
        Some("owners_team") if has_team => T::OwnersTeam,
        Some(k @ ("organization" | "owners_team")) => {
            let table = if k == "organization" {
                "[organization.service_token]"
            } else {
                "[organization.owners_team_token]"
            };
            c.fail(
                "[terraform] token",
                format!("{k:?} needs {table} with a file: the run writes that token, and Terraform gets it"),
            );
            return None;
        }
        Some(other) => {
            let hint = did_you_mean(other, ["admin", "organization", "owners_team"])
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            c.fail(
                "[terraform] token",
                format!("{other:?} is not one of admin, organization, owners_team{hint}"),
            );
            return None;
        }
    };
    let credentials_file = match (&t.credentials_file, std::env::var_os("HOME")) {
        (Some(f), _) => f.clone(),
        (None, Some(h)) if !h.is_empty() => {
            std::path::PathBuf::from(h).join(".terraform.d/credentials.tfrc.json")
        }
        (None, _) => {
            c.fail(
                "[terraform] credentials_file",
                "is required when HOME is not set (Terraform reads ~/.terraform.d/credentials.tfrc.json)",
            );
            return None;
        }
    };
    let default_port = if tfe.https { 443 } else { 80 };
    let host = t.host.clone().unwrap_or_else(|| {
        if tfe.port == default_port {
            tfe.host.clone()
        } else {
            format!("{}:{}", tfe.host, tfe.port)
        }
    });
    if host.trim().is_empty() || host.contains('/') {
        c.fail(
            "[terraform] host",
            format!("{host:?} is not a host name (with an optional :port)"),
        );
        return None;
    }
    Some(TerraformConfig {
        credentials_file,
        token,
        host,
    })
}

/// `[metrics] textfile`: required, and a `.prom` file, the only ones
/// node_exporter's textfile collector reads.
pub(super) fn metrics(c: &mut Checker, m: &RawMetrics) -> Option<std::path::PathBuf> {
    let f = m.textfile.clone();
    if f.as_ref()
        .is_none_or(|f| f.extension().is_none_or(|e| e != "prom"))
    {
        c.fail(
            "[metrics] textfile",
            "is required, and must end in .prom (node_exporter's textfile collector reads only those), \
             e.g. \"/var/lib/prometheus/node-exporter/tfe-bootstrap.prom\"",
        );
    }
    f
}
