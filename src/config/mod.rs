//! Configuration: the TOML file ([`raw`]) turned into a validated [`Config`]
//! that the rest of the program can trust ("parse, don't validate").
//!
//! Every rule of the contract (`shared/spec/interface.md`, "Rules checked
//! before any request") runs in [`Config::load`]; a violation is a
//! [`ConfigError`] naming the file, the key and what to do, and nothing has
//! been sent or written by then. Secrets are resolved here (env vars and
//! files must exist and be non-empty) and never printed afterwards.

pub mod duration;
pub mod raw;
pub mod secret;

use std::fmt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde_json::{Map, Value, json};

use duration::parse_duration;
use raw::{RawConfig, TtlValue};
use secret::{Secret, SecretSource};

/// A config that failed to load: the file and every problem found.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config file {}: ", self.file.display())?;
        if let [one] = self.problems.as_slice() {
            return f.write_str(one);
        }
        write!(f, "{} problems:", self.problems.len())?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// `[tfe]`
#[derive(Debug, Clone)]
pub struct TfeConfig {
    /// Base URL without a trailing slash, e.g. `https://tfe.example.com`.
    pub address: String,
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// `ca_bundle`: path and PEM contents. Defaults to none (system roots only).
    pub ca_bundle: Option<(PathBuf, Vec<u8>)>,
    /// Defaults to false.
    pub allow_insecure_http: bool,
    /// Defaults to 30s.
    pub request_timeout: Duration,
}

/// `[wait]`
#[derive(Debug, Clone)]
pub struct WaitConfig {
    /// Defaults to 30m.
    pub timeout: Duration,
    /// Defaults to 1s.
    pub max_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IactSource {
    Auto,
    Token,
    Api,
    Command,
}

/// `[iact]`
#[derive(Debug, Clone)]
pub struct IactConfig {
    /// Defaults to auto.
    pub source: IactSource,
    pub token: Option<Secret>,
    pub command: Option<Vec<String>>,
    /// Defaults to 60s.
    pub command_timeout: Duration,
    pub subnets: Vec<IpNet>,
    /// Defaults to 60m; `None` = "unlimited".
    pub time_limit: Option<Duration>,
}

/// `[admin]`
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<Secret>,
    /// Defaults to `<state dir>/admin-token`.
    pub token_file: PathBuf,
    /// An existing site-admin token to resume with instead of creating one.
    pub token: Option<Secret>,
    /// Before enforcing a user-token TTL shorter than the admin token's
    /// lifetime, mint a new admin token within it and replace `token_file`.
    /// Defaults to false.
    pub rotate_token: bool,
}

/// An admin-settings section: the attributes to PATCH (kebab-case, as on the
/// wire) and the write-only secrets sent alongside.
#[derive(Debug, Clone, Default)]
pub struct SettingsConfig {
    pub attributes: Map<String, Value>,
    pub secrets: Vec<(&'static str, Secret)>,
    /// Write-only, non-secret attributes (e.g. `test-email-address`).
    pub write_only: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PoolRef {
    Name(String),
    Id(String),
}

/// `[organization]`
#[derive(Debug, Clone)]
pub struct OrgConfig {
    pub name: String,
    pub email: String,
    pub default_execution_mode: Option<String>,
    pub default_agent_pool: Option<PoolRef>,
    pub max_ttl_enabled: Option<bool>,
    pub service_token_file: Option<PathBuf>,
    /// `[organization.owners_team_token] file`: the owners team's token.
    pub owners_team_token_file: Option<PathBuf>,
    /// `(token-type, max-ttl-ms)` in wire spelling (`audit_trails`).
    pub token_ttl: Option<Vec<(&'static str, u64)>>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub tfe: TfeConfig,
    pub wait: WaitConfig,
    pub iact: IactConfig,
    pub admin: AdminConfig,
    pub general: Option<SettingsConfig>,
    pub smtp: Option<SettingsConfig>,
    pub saml: Option<SettingsConfig>,
    pub twilio: Option<SettingsConfig>,
    /// `[twilio] test_number`: one verification SMS when Twilio is applied.
    pub twilio_test_number: Option<String>,
    pub organization: Option<OrgConfig>,
    pub state_dir: PathBuf,
    /// Non-fatal findings (e.g. a literal secret in a world-readable file).
    pub warnings: Vec<String>,
}

/// Every key the parser accepts, as `table.key` (for docs and the
/// "example.toml covers every key" test).
pub const KNOWN_KEYS: &[&str] = &[
    "tfe.address",
    "tfe.ca_bundle",
    "tfe.allow_insecure_http",
    "tfe.request_timeout",
    "wait.timeout",
    "wait.max_interval",
    "iact.source",
    "iact.token",
    "iact.command",
    "iact.command_timeout",
    "iact.subnets",
    "iact.time_limit",
    "admin.username",
    "admin.email",
    "admin.password",
    "admin.token_file",
    "admin.token",
    "admin.rotate_token",
    "general.limit_user_organization_creation",
    "general.support_email_address",
    "general.api_rate_limiting_enabled",
    "general.api_rate_limit",
    "general.send_passing_statuses_for_untriggered_speculative_plans",
    "general.allow_speculative_plans_on_pull_requests_from_forks",
    "general.default_remote_state_access",
    "general.plan_timeout",
    "general.apply_timeout",
    "smtp.enabled",
    "smtp.host",
    "smtp.port",
    "smtp.sender",
    "smtp.auth",
    "smtp.username",
    "smtp.password",
    "smtp.test_email_address",
    "saml.enabled",
    "saml.debug",
    "saml.idp_cert",
    "saml.certificate",
    "saml.private_key",
    "saml.slo_endpoint_url",
    "saml.sso_endpoint_url",
    "saml.attr_username",
    "saml.attr_groups",
    "saml.attr_site_admin",
    "saml.site_admin_role",
    "saml.sso_api_token_session_timeout",
    "saml.team_management_enabled",
    "saml.authn_requests_signed",
    "saml.want_assertions_signed",
    "saml.signature_signing_method",
    "saml.signature_digest_method",
    "saml.provider_type",
    "twilio.enabled",
    "twilio.account_sid",
    "twilio.auth_token",
    "twilio.from_number",
    "twilio.test_number",
    "organization.name",
    "organization.email",
    "organization.default_execution_mode",
    "organization.default_agent_pool",
    "organization.default_agent_pool_id",
    "organization.max_ttl_enabled",
    "organization.service_token.file",
    "organization.owners_team_token.file",
    "organization.token_ttl.organization",
    "organization.token_ttl.team",
    "organization.token_ttl.user",
    "organization.token_ttl.audit_trails",
    "state.dir",
];

/// Does this look like an e-mail address (`local@domain.tld`, no spaces)?
pub fn looks_like_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((l, d))
        if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
            && !d.contains('@') && !s.contains(char::is_whitespace))
}

/// The default state directory: `/var/lib/tfe-bootstrap` for root,
/// `$XDG_STATE_HOME/tfe-bootstrap` (or `~/.local/state/tfe-bootstrap`) otherwise.
pub fn default_state_dir() -> PathBuf {
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if is_root {
        return PathBuf::from("/var/lib/tfe-bootstrap");
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("tfe-bootstrap");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/state/tfe-bootstrap"),
        None => PathBuf::from("/var/lib/tfe-bootstrap"),
    }
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate within a small edit distance.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Turns a toml/serde error into one line: where, which table, what, and a hint.
fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let msg = err.message().trim().to_string();
    let (line, table) = match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let table = before
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| l.starts_with('[') && !l.starts_with("[["))
                .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
            (Some(line), table)
        }
        None => (None, None),
    };
    let mut out = String::new();
    if let Some(l) = line {
        out.push_str(&format!("line {l}: "));
    }
    if let Some(t) = &table {
        out.push_str(&format!("[{t}] "));
    }
    // serde: "unknown field `hots`, expected one of `host`, `port`" / "expected `a` or `b`"
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once('`')
    {
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        out.push_str(&format!("unknown key {field:?}"));
        match did_you_mean(field, candidates.iter().copied()) {
            Some(s) => out.push_str(&format!(": did you mean {s:?}?")),
            None if !candidates.is_empty() => {
                out.push_str(&format!("; this table takes: {}", candidates.join(", ")))
            }
            None => {}
        }
        return out;
    }
    out.push_str(&msg);
    out
}

/// No duration in the config may exceed this (keeps deadline arithmetic safe).
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

struct Checker {
    problems: Vec<String>,
}

impl Checker {
    fn fail(&mut self, key: &str, msg: impl fmt::Display) {
        self.problems.push(format!("{key}: {msg}"));
    }
    fn duration(&mut self, key: &str, v: Option<&String>, default: &str) -> Duration {
        let text = v.map(String::as_str).unwrap_or(default);
        match parse_duration(text) {
            Ok(d) if d > MAX_DURATION => {
                self.fail(key, format!("{text:?} is longer than 100 years"));
                Duration::ZERO
            }
            Ok(d) => d,
            Err(e) => {
                self.fail(key, e);
                Duration::ZERO
            }
        }
    }
    fn secret(&mut self, key: &str, v: Option<&SecretSource>) -> Option<Secret> {
        match v?.resolve() {
            Ok(s) => Some(s),
            Err(e) => {
                self.fail(key, format!("{e}; set it or remove the key"));
                None
            }
        }
    }
    fn email(&mut self, key: &str, v: Option<&String>) {
        if let Some(e) = v
            && !looks_like_email(e)
        {
            self.fail(key, format!("{e:?} does not look like an e-mail address"));
        }
    }
    fn required<'a>(&mut self, key: &str, v: Option<&'a String>, why: &str) -> Option<&'a String> {
        match v {
            Some(s) if !s.trim().is_empty() => Some(s),
            _ => {
                self.fail(key, format!("is required {why}"));
                None
            }
        }
    }
}

fn parse_address(
    c: &mut Checker,
    raw: Option<&String>,
    allow_http: bool,
) -> (String, bool, String, u16) {
    let Some(a) = raw.filter(|a| !a.trim().is_empty()) else {
        c.fail(
            "[tfe] address",
            "is required, e.g. address = \"https://tfe.example.com\"",
        );
        return (String::new(), true, String::new(), 443);
    };
    let a = a.trim().trim_end_matches('/');
    let (https, rest) = if let Some(r) = a.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = a.strip_prefix("http://") {
        (false, r)
    } else {
        c.fail(
            "[tfe] address",
            format!("{a:?} must start with https:// (or http:// with allow_insecure_http = true)"),
        );
        return (String::new(), true, String::new(), 443);
    };
    if !https && !allow_http {
        c.fail(
            "[tfe] address",
            format!("{a:?} is plain http://: the admin password and tokens would cross the network in clear text; use https:// or set [tfe] allow_insecure_http = true (lab use only)"),
        );
    }
    if rest.contains('@') {
        // Not echoed: what precedes '@' may be a password.
        c.fail(
            "[tfe] address",
            "must not hold a user or password (user:pass@host); tfe-bootstrap authenticates with tokens",
        );
        return (String::new(), https, String::new(), 0);
    }
    if rest.contains(['/', '?', '#']) || rest.is_empty() {
        c.fail(
            "[tfe] address",
            format!("{a:?} must be scheme://host[:port] with no path or query"),
        );
        return (a.into(), https, String::new(), 0);
    }
    let default_port = if https { 443 } else { 80 };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, "")) => (h.to_string(), Some(default_port)),
            Some((h, p)) => (
                h.to_string(),
                p.strip_prefix(':').and_then(|p| p.parse().ok()),
            ),
            None => (String::new(), None),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()),
            None => (rest.to_string(), Some(default_port)),
        }
    };
    match port {
        Some(p) if p > 0 && !host.is_empty() => (a.to_string(), https, host, p),
        _ => {
            c.fail(
                "[tfe] address",
                format!("{a:?} has an invalid host or port"),
            );
            (a.into(), https, host, 0)
        }
    }
}

fn parse_ttl(c: &mut Checker, key: &str, v: &TtlValue) -> Option<u64> {
    let ms = match v {
        TtlValue::Millis(n) if *n > 0 => *n as u64,
        TtlValue::Millis(n) => {
            c.fail(
                key,
                format!("{n} must be a positive number of milliseconds"),
            );
            return None;
        }
        TtlValue::Text(t) => match parse_duration(t) {
            Ok(d) if d > MAX_DURATION => {
                c.fail(key, format!("{t:?} is longer than 100 years"));
                return None;
            }
            Ok(d) => d.as_millis() as u64,
            Err(e) => {
                c.fail(key, e);
                return None;
            }
        },
    };
    if ms == 0 {
        c.fail(key, "must be positive");
        return None;
    }
    Some(ms)
}

impl Config {
    /// Reads, parses and validates `file`. `state_dir` (from `--state-dir`)
    /// overrides `[state] dir`.
    pub fn load(file: &Path, state_dir: Option<&Path>) -> Result<Config, ConfigError> {
        let err = |p: String| ConfigError {
            file: file.to_path_buf(),
            problems: vec![p],
        };
        let text = std::fs::read_to_string(file).map_err(|e| {
            err(format!(
                "cannot be read: {e}; pass --config FILE or set TFE_BOOTSTRAP_CONFIG"
            ))
        })?;
        let raw: RawConfig =
            toml::from_str(&text).map_err(|e| err(describe_toml_error(&text, &e)))?;
        let world_readable = std::fs::metadata(file)
            .map(|m| m.permissions().mode() & 0o077 != 0)
            .unwrap_or(false);
        Self::from_raw(raw, file, state_dir, world_readable)
    }

    /// Validates an already parsed file.
    pub fn from_raw(
        raw: RawConfig,
        file: &Path,
        state_dir: Option<&Path>,
        file_readable_by_others: bool,
    ) -> Result<Config, ConfigError> {
        let mut c = Checker { problems: vec![] };
        let mut warnings = vec![];
        if file_readable_by_others {
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
            if !literal.is_empty() {
                warnings.push(format!(
                    "{} holds literal secrets ({}) and is readable by group or others: chmod 600 it, or use {{ env = \"NAME\" }} / {{ file = \"PATH\" }}",
                    file.display(),
                    literal.join(", ")
                ));
            }
        }

        // [tfe]
        let t = raw.tfe.unwrap_or_default();
        let allow_http = t.allow_insecure_http.unwrap_or(false);
        let (address, https, host, port) = parse_address(&mut c, t.address.as_ref(), allow_http);
        let ca_bundle = t.ca_bundle.as_ref().and_then(|p| match std::fs::read(p) {
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
        });
        let request_timeout =
            c.duration("[tfe] request_timeout", t.request_timeout.as_ref(), "30s");
        if request_timeout.is_zero() && t.request_timeout.is_some() {
            c.fail("[tfe] request_timeout", "must be positive");
        }

        // [wait]
        let w = raw.wait.unwrap_or_default();
        let wait = WaitConfig {
            timeout: c.duration("[wait] timeout", w.timeout.as_ref(), "30m"),
            max_interval: c.duration("[wait] max_interval", w.max_interval.as_ref(), "1s"),
        };
        if wait.max_interval.is_zero() && w.max_interval.is_some() {
            c.fail("[wait] max_interval", "must be positive");
        }

        // [admin]
        let a = raw.admin.unwrap_or_default();
        let admin_token = c.secret("[admin] token", a.token.as_ref());
        let password = c.secret("[admin] password", a.password.as_ref());
        let needs_creation = a.token.is_none();
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
        let state_dir = state_dir
            .map(Path::to_path_buf)
            .or_else(|| raw.state.and_then(|s| s.dir))
            .unwrap_or_else(default_state_dir);
        let admin = AdminConfig {
            username: a.username.clone(),
            email: a.email.clone(),
            password,
            token_file: a
                .token_file
                .clone()
                .unwrap_or_else(|| state_dir.join("admin-token")),
            token: admin_token,
            rotate_token: a.rotate_token.unwrap_or(false),
        };
        if admin.rotate_token && a.token.is_some() {
            c.fail(
                "[admin] rotate_token",
                "needs the admin token in token_file, not [admin] token (a rotated token replaces token_file)",
            );
        }

        // [iact]
        let i = raw.iact.unwrap_or_default();
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
            command_timeout: c.duration(
                "[iact] command_timeout",
                i.command_timeout.as_ref(),
                "60s",
            ),
            subnets,
            time_limit,
        };
        let has_token = i.token.is_some();
        let has_api = i.subnets.as_ref().is_some_and(|s| !s.is_empty());
        let has_cmd = i.command.as_ref().is_some_and(|s| !s.is_empty());
        match source {
            IactSource::Token if !has_token => c.fail("[iact] token", "is required with source = \"token\""),
            IactSource::Api if !has_api => c.fail("[iact] subnets", "is required with source = \"api\" (the CIDRs TFE's iact_subnet_list / TFE_IACT_SUBNETS allow)"),
            IactSource::Command if !has_cmd => c.fail("[iact] command", "is required with source = \"command\""),
            IactSource::Auto if needs_creation && !has_token && !has_api && !has_cmd => c.fail(
                "[iact]",
                "gives no way to obtain the Initial Admin Creation Token: set token, subnets or command (or [admin] token to skip admin creation)",
            ),
            _ => {}
        }

        // [general]
        let general = raw.general.map(|g| {
            let mut m = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            };
            put(
                "limit-user-organization-creation",
                g.limit_user_organization_creation.map(Value::from),
            );
            put(
                "support-email-address",
                g.support_email_address.clone().map(Value::from),
            );
            put(
                "api-rate-limiting-enabled",
                g.api_rate_limiting_enabled.map(Value::from),
            );
            put("api-rate-limit", g.api_rate_limit.map(Value::from));
            put(
                "send-passing-statuses-for-untriggered-speculative-plans",
                g.send_passing_statuses_for_untriggered_speculative_plans
                    .map(Value::from),
            );
            put(
                "allow-speculative-plans-on-pull-requests-from-forks",
                g.allow_speculative_plans_on_pull_requests_from_forks
                    .map(Value::from),
            );
            put(
                "default-remote-state-access",
                g.default_remote_state_access.map(Value::from),
            );
            put("plan-timeout", g.plan_timeout.clone().map(Value::from));
            put("apply-timeout", g.apply_timeout.clone().map(Value::from));
            if let Some(n) = g.api_rate_limit
                && n < 30
            {
                c.fail(
                    "[general] api_rate_limit",
                    format!("{n} is below TFE's minimum of 30 requests per second"),
                );
            }
            c.email(
                "[general] support_email_address",
                g.support_email_address.as_ref(),
            );
            if m.is_empty() {
                c.fail(
                    "[general]",
                    "is empty: set at least one key or remove the table",
                );
            }
            SettingsConfig {
                attributes: m,
                ..Default::default()
            }
        });

        // [smtp]
        let smtp = raw.smtp.map(|s| {
            let mut m = Map::new();
            if let Some(v) = s.enabled {
                m.insert("enabled".into(), v.into());
            }
            if let Some(v) = &s.host {
                m.insert("host".into(), v.clone().into());
            }
            if let Some(v) = s.port {
                if !(1..=65535).contains(&v) {
                    c.fail("[smtp] port", format!("{v} is not a port (1-65535)"));
                }
                m.insert("port".into(), v.into());
            }
            if let Some(v) = &s.sender {
                m.insert("sender".into(), v.clone().into());
            }
            let auth = s.auth.clone().unwrap_or_else(|| "none".into());
            if !["none", "plain", "login"].contains(&auth.as_str()) {
                let hint = did_you_mean(&auth, ["none", "plain", "login"])
                    .map(|x| format!(" (did you mean {x:?}?)"))
                    .unwrap_or_default();
                c.fail(
                    "[smtp] auth",
                    format!("{auth:?} is not one of none, plain, login{hint}"),
                );
            }
            if s.auth.is_some() {
                m.insert("auth".into(), auth.clone().into());
            }
            if let Some(v) = &s.username {
                m.insert("username".into(), v.clone().into());
            }
            let password = c.secret("[smtp] password", s.password.as_ref());
            if auth == "plain" || auth == "login" {
                c.required(
                    "[smtp] username",
                    s.username.as_ref(),
                    &format!("with auth = {auth:?}"),
                );
                if s.password.is_none() {
                    c.fail(
                        "[smtp] password",
                        format!("is required with auth = {auth:?}"),
                    );
                }
            }
            if s.enabled == Some(true) {
                let why = "when enabled = true";
                c.required("[smtp] host", s.host.as_ref(), why);
                if s.port.is_none() {
                    c.fail("[smtp] port", format!("is required {why}"));
                }
                c.required("[smtp] sender", s.sender.as_ref(), why);
            }
            c.email("[smtp] sender", s.sender.as_ref());
            c.email("[smtp] test_email_address", s.test_email_address.as_ref());
            let mut write_only = Map::new();
            if let Some(t) = &s.test_email_address {
                write_only.insert("test-email-address".into(), t.clone().into());
            }
            SettingsConfig {
                attributes: m,
                secrets: password.map(|p| vec![("password", p)]).unwrap_or_default(),
                write_only,
            }
        });

        // [saml]
        let saml = raw.saml.map(|s| {
            let mut m = Map::new();
            let text = |c: &mut Checker,
                        key: &str,
                        wire: &str,
                        v: Option<&SecretSource>,
                        m: &mut Map<String, Value>| {
                if let Some(sec) = c.secret(&format!("[saml] {key}"), v) {
                    m.insert(wire.into(), sec.expose().to_string().into());
                }
            };
            text(&mut c, "idp_cert", "idp-cert", s.idp_cert.as_ref(), &mut m);
            text(
                &mut c,
                "certificate",
                "certificate",
                s.certificate.as_ref(),
                &mut m,
            );
            for (wire, v) in [
                ("enabled", s.enabled),
                ("debug", s.debug),
                ("team-management-enabled", s.team_management_enabled),
                ("authn-requests-signed", s.authn_requests_signed),
                ("want-assertions-signed", s.want_assertions_signed),
            ] {
                if let Some(v) = v {
                    m.insert(wire.into(), v.into());
                }
            }
            for (wire, v) in [
                ("slo-endpoint-url", &s.slo_endpoint_url),
                ("sso-endpoint-url", &s.sso_endpoint_url),
                ("attr-username", &s.attr_username),
                ("attr-groups", &s.attr_groups),
                ("attr-site-admin", &s.attr_site_admin),
                ("site-admin-role", &s.site_admin_role),
            ] {
                if let Some(v) = v {
                    m.insert(wire.into(), v.clone().into());
                }
            }
            for (key, v) in [
                ("slo_endpoint_url", &s.slo_endpoint_url),
                ("sso_endpoint_url", &s.sso_endpoint_url),
            ] {
                if let Some(u) = v
                    && !u.starts_with("https://")
                    && !u.starts_with("http://")
                {
                    c.fail(
                        &format!("[saml] {key}"),
                        format!("{u:?} must be an http(s) URL"),
                    );
                }
            }
            for (key, wire, v) in [
                (
                    "signature_signing_method",
                    "signature-signing-method",
                    &s.signature_signing_method,
                ),
                (
                    "signature_digest_method",
                    "signature-digest-method",
                    &s.signature_digest_method,
                ),
            ] {
                if let Some(x) = v {
                    if !["SHA1", "SHA256"].contains(&x.as_str()) {
                        c.fail(
                            &format!("[saml] {key}"),
                            format!("{x:?} is not one of SHA1, SHA256"),
                        );
                    }
                    m.insert(wire.into(), x.clone().into());
                }
            }
            if let Some(p) = &s.provider_type {
                if !["okta", "entra", "saml", "unknown"].contains(&p.as_str()) {
                    c.fail(
                        "[saml] provider_type",
                        format!("{p:?} is not one of okta, entra, saml, unknown"),
                    );
                }
                m.insert("provider-type".into(), p.clone().into());
            }
            if let Some(t) = &s.sso_api_token_session_timeout {
                let d = c.duration("[saml] sso_api_token_session_timeout", Some(t), "14d");
                m.insert("sso-api-token-session-timeout".into(), d.as_secs().into());
            }
            if s.enabled == Some(true) {
                let why = "when enabled = true";
                if s.idp_cert.is_none() {
                    c.fail("[saml] idp_cert", format!("is required {why}"));
                }
                c.required("[saml] sso_endpoint_url", s.sso_endpoint_url.as_ref(), why);
                c.required("[saml] slo_endpoint_url", s.slo_endpoint_url.as_ref(), why);
            }
            let key = c.secret("[saml] private_key", s.private_key.as_ref());
            SettingsConfig {
                attributes: m,
                secrets: key.map(|k| vec![("private-key", k)]).unwrap_or_default(),
                write_only: Map::new(),
            }
        });

        // [twilio]
        let mut twilio_test_number = None;
        let twilio = raw.twilio.map(|t| {
            let mut m = Map::new();
            if let Some(v) = t.enabled {
                m.insert("enabled".into(), v.into());
            }
            if let Some(v) = &t.account_sid {
                m.insert("account-sid".into(), v.clone().into());
            }
            if let Some(v) = &t.from_number {
                m.insert("from-number".into(), v.clone().into());
            }
            let token = c.secret("[twilio] auth_token", t.auth_token.as_ref());
            if t.enabled == Some(true) {
                let why = "when enabled = true";
                c.required("[twilio] account_sid", t.account_sid.as_ref(), why);
                c.required("[twilio] from_number", t.from_number.as_ref(), why);
                if t.auth_token.is_none() {
                    c.fail("[twilio] auth_token", format!("is required {why}"));
                }
            }
            if t.test_number.is_some() && t.enabled != Some(true) {
                c.fail(
                    "[twilio] test_number",
                    "needs enabled = true (TFE only sends the test SMS when Twilio is enabled)",
                );
            }
            twilio_test_number = t.test_number.clone();
            SettingsConfig {
                attributes: m,
                secrets: token.map(|k| vec![("auth-token", k)]).unwrap_or_default(),
                write_only: Map::new(),
            }
        });

        // [organization]
        let organization = raw.organization.map(|o| {
            let why = "in [organization]";
            let name = c.required("[organization] name", o.name.as_ref(), why).cloned().unwrap_or_default();
            if name.contains('/') || name.contains(char::is_whitespace) {
                c.fail("[organization] name", format!("{name:?} must not contain '/' or white space"));
            }
            let email = c.required("[organization] email", o.email.as_ref(), why).cloned().unwrap_or_default();
            c.email("[organization] email", o.email.as_ref());
            if let Some(m) = &o.default_execution_mode
                && !["remote", "local", "agent"].contains(&m.as_str()) {
                    c.fail("[organization] default_execution_mode", format!("{m:?} is not one of remote, local, agent"));
                }
            let pool = match (&o.default_agent_pool, &o.default_agent_pool_id) {
                (Some(_), Some(_)) => {
                    c.fail("[organization] default_agent_pool", "give either default_agent_pool (a name) or default_agent_pool_id, not both");
                    None
                }
                (Some(n), None) if !n.trim().is_empty() => Some(PoolRef::Name(n.clone())),
                (None, Some(id)) if id.starts_with("apool-") => Some(PoolRef::Id(id.clone())),
                (None, Some(id)) => {
                    c.fail("[organization] default_agent_pool_id", format!("{id:?} is not an agent pool id (apool-...)"));
                    None
                }
                (Some(_), None) => {
                    c.fail("[organization] default_agent_pool", "must not be empty");
                    None
                }
                (None, None) => None,
            };
            let key = if o.default_agent_pool_id.is_some() { "default_agent_pool_id" } else { "default_agent_pool" };
            match (o.default_execution_mode.as_deref(), &pool) {
                (Some("agent"), None) if o.default_agent_pool.is_none() && o.default_agent_pool_id.is_none() => c.fail(
                    "[organization] default_agent_pool",
                    "is required with default_execution_mode = \"agent\" (a pool name, created if missing, or default_agent_pool_id)",
                ),
                (mode, Some(_)) if mode != Some("agent") => c.fail(
                    &format!("[organization] {key}"),
                    format!("is only valid with default_execution_mode = \"agent\" (it is {})", mode.map(|m| format!("{m:?}")).unwrap_or_else(|| "not set".into())),
                ),
                _ => {}
            }
            let service_token_file = o.service_token.as_ref().and_then(|s| {
                if s.file.is_none() {
                    c.fail("[organization.service_token] file", "is required: where to write the organization token (mode 0600)");
                }
                s.file.clone()
            });
            let owners_team_token_file = o.owners_team_token.as_ref().and_then(|s| {
                if s.file.is_none() {
                    c.fail(
                        "[organization.owners_team_token] file",
                        "is required: where to write the owners team's token (mode 0600)",
                    );
                }
                s.file.clone()
            });
            if owners_team_token_file.is_some() && owners_team_token_file == service_token_file {
                c.fail("[organization.owners_team_token] file", "must differ from [organization.service_token] file");
            }
            let token_ttl = o.token_ttl.as_ref().map(|t| {
                let mut v = vec![];
                for (key, wire, val) in [
                    ("organization", "organization", &t.organization), ("team", "team", &t.team),
                    ("user", "user", &t.user), ("audit_trails", "audit_trails", &t.audit_trails),
                ] {
                    if let Some(val) = val
                        && let Some(ms) = parse_ttl(&mut c, &format!("[organization.token_ttl] {key}"), val) {
                            v.push((wire, ms));
                        }
                }
                if t.organization.is_none() && t.team.is_none() && t.user.is_none() && t.audit_trails.is_none() {
                    c.fail("[organization.token_ttl]", "is empty: set at least one of organization, team, user, audit_trails, or remove the table");
                }
                v
            });
            OrgConfig {
                name,
                email,
                default_execution_mode: o.default_execution_mode.clone(),
                default_agent_pool: pool,
                max_ttl_enabled: o.max_ttl_enabled,
                service_token_file,
                owners_team_token_file,
                token_ttl,
            }
        });

        if !c.problems.is_empty() {
            return Err(ConfigError {
                file: file.to_path_buf(),
                problems: c.problems,
            });
        }
        let cfg = Config {
            file: file.to_path_buf(),
            tfe: TfeConfig {
                address,
                https,
                host,
                port,
                ca_bundle,
                allow_insecure_http: allow_http,
                request_timeout,
            },
            wait,
            iact,
            admin,
            general,
            smtp,
            saml,
            twilio,
            twilio_test_number,
            organization,
            state_dir,
            warnings,
        };
        Ok(cfg)
    }

    /// A readable summary for `validate`, secrets shown only by origin.
    pub fn summary(&self) -> Value {
        let settings = |s: &Option<SettingsConfig>| {
            s.as_ref().map(|s| {
                let mut m = s.attributes.clone();
                for (k, v) in &s.write_only {
                    m.insert(k.clone(), v.clone());
                }
                for (k, sec) in &s.secrets {
                    m.insert((*k).into(), sec.to_string().into());
                }
                for k in ["idp-cert", "certificate"] {
                    if let Some(Value::String(v)) = m.get(k) {
                        let n = v.len();
                        m.insert(k.into(), format!("<{n} bytes>").into());
                    }
                }
                Value::Object(m)
            })
        };
        let secret = |s: &Option<Secret>| s.as_ref().map(|s| s.to_string());
        json!({
            "tfe": {"address": self.tfe.address, "ca_bundle": self.tfe.ca_bundle.as_ref().map(|(p, _)| p.display().to_string()),
                    "allow_insecure_http": self.tfe.allow_insecure_http,
                    "request_timeout": duration::format_duration(self.tfe.request_timeout)},
            "wait": {"timeout": duration::format_duration(self.wait.timeout), "max_interval": duration::format_duration(self.wait.max_interval)},
            "iact": {"source": format!("{:?}", self.iact.source).to_lowercase(), "token": secret(&self.iact.token),
                     "command": self.iact.command, "subnets": self.iact.subnets.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                     "time_limit": self.iact.time_limit.map(duration::format_duration).unwrap_or_else(|| "unlimited".into())},
            "admin": {"username": self.admin.username, "email": self.admin.email, "password": secret(&self.admin.password),
                      "token": secret(&self.admin.token), "token_file": self.admin.token_file.display().to_string(),
                      "rotate_token": self.admin.rotate_token},
            "general": settings(&self.general),
            "smtp": settings(&self.smtp),
            "saml": settings(&self.saml),
            "twilio": settings(&self.twilio),
            "organization": self.organization.as_ref().map(|o| json!({
                "name": o.name, "email": o.email, "default_execution_mode": o.default_execution_mode,
                "default_agent_pool": o.default_agent_pool.as_ref().map(|p| match p { PoolRef::Name(n) => n.clone(), PoolRef::Id(i) => i.clone() }),
                "max_ttl_enabled": o.max_ttl_enabled,
                "service_token_file": o.service_token_file.as_ref().map(|p| p.display().to_string()),
                "owners_team_token_file": o.owners_team_token_file.as_ref().map(|p| p.display().to_string()),
                "token_ttl": o.token_ttl.as_ref().map(|v| v.iter().map(|(t, ms)| (t.to_string(), json!(ms))).collect::<Map<_, _>>()),
            })),
            "state": {"dir": self.state_dir.display().to_string()},
        })
    }
}
