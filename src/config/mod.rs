//! Configuration: the TOML file ([`raw`]) turned into a validated [`Config`]
//! that the rest of the program can trust ("parse, don't validate").
//!
//! Every rule of the contract (README "Configuration": all rules are checked
//! before any request) runs in [`Config::load`]; a violation is a
//! [`ConfigError`] naming the file, the key and what to do, and nothing has
//! been sent or written by then. Secrets are resolved here and never printed
//! afterwards; one whose variable or file is absent is recorded in
//! [`Config::absent`], an error only for a step that still has to send it.

mod check;
pub mod duration;
mod keys;
mod organization;
pub mod raw;
pub mod secret;
mod sections;
mod settings;

use check::{Checker, describe_toml_error};
pub use check::{did_you_mean, looks_like_email};
pub use keys::KNOWN_KEYS;

use std::fmt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde_json::{Map, Value, json};

use raw::RawConfig;
use secret::Secret;

/// A config that failed to load: the file and every problem found.
#[derive(Debug)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// Every problem found, each naming its key and what to do: the file
    /// does not parse, a key is unknown or has a wrong value, a rule
    /// between keys is broken. Found before anything is sent (exit 2).
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

/// `[tfe] platform`: what the address serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Terraform Enterprise: every step (the default).
    Enterprise,
    /// HCP Terraform: only the per-organization steps, with an organization
    /// owner's token; readiness is `GET /api/v2/ping`.
    Hcp,
}

impl Platform {
    /// The config's word for it (`[tfe] platform`).
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Enterprise => "enterprise",
            Platform::Hcp => "hcp",
        }
    }
}

/// HCP Terraform's address, the default with `platform = "hcp"`.
pub const HCP_ADDRESS: &str = "https://app.terraform.io";

/// `[tfe]`
#[derive(Debug, Clone)]
pub struct TfeConfig {
    /// Defaults to enterprise.
    pub platform: Platform,
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
    /// One request, every retry and wait included. Defaults to 2m.
    pub request_deadline: Duration,
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
    /// As [`StoreConfig::env`], for the command.
    pub env: Vec<String>,
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
    /// The rotated token goes to `token_file`, and later runs use it even
    /// when `[admin] token` is given. Defaults to true.
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
    /// Security settings of the organization, in TFE's wire spelling and
    /// units (`collaborator-auth-policy`; `session-timeout` and
    /// `session-remember` in minutes: organizations API docs).
    pub security: Map<String, Value>,
    pub service_token_file: Option<PathBuf>,
    /// `[organization.owners_team_token] file`: the owners team's token.
    pub owners_team_token_file: Option<PathBuf>,
    /// `[organization.agent_token]`: an agent token for the default agent
    /// pool, written to `file`, with `description` (default `tfe-bootstrap`).
    pub agent_token: Option<AgentTokenConfig>,
    /// `(token-type, max-ttl-ms)` in wire spelling (`audit_trails`).
    pub token_ttl: Option<Vec<(&'static str, u64)>>,
}

/// `[store]`: the helper command that carries what one node learns to the
/// others (README, "Many nodes").
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// argv, no shell; called as `<command...> VERB KEY`.
    pub command: Vec<String>,
    /// Environment variables the helper gets besides the minimal set
    /// (names, or prefixes ending in `*`); never a config secret's.
    pub env: Vec<String>,
    /// How long a node waits for what another node is doing. Defaults to 10m.
    pub wait: Duration,
    /// One helper call. Defaults to 30s.
    pub timeout: Duration,
}

/// `[renew]`: when `tfe-bootstrap renew` replaces a token, and when it
/// revokes the one it replaced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenewConfig {
    /// Renew once a token has less than this left; `None`: a third of the
    /// token's lifetime.
    pub before: Option<Duration>,
    /// How long a replaced token stays valid after its replacement was
    /// written (and published): `None` is at once without `[store]`, two
    /// days with one (every node's daily renew takes the new token first).
    pub grace: Option<Duration>,
}

/// `[terraform] token`: which token Terraform gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerraformToken {
    /// The admin's (a site admin's: for administration).
    Admin,
    /// The organization's (`[organization.service_token]`).
    Organization,
    /// The owners team's (`[organization.owners_team_token]`).
    OwnersTeam,
}

impl TerraformToken {
    /// As the config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TerraformToken::Admin => "admin",
            TerraformToken::Organization => "organization",
            TerraformToken::OwnersTeam => "owners_team",
        }
    }
}

/// `[terraform]`: the hand-off to Terraform, a `credentials.tfrc.json`
/// entry for this TFE (Terraform CLI config docs, "Credentials").
#[derive(Debug, Clone, PartialEq)]
pub struct TerraformConfig {
    /// Default: `$HOME/.terraform.d/credentials.tfrc.json`, where `terraform
    /// login` keeps its tokens.
    pub credentials_file: PathBuf,
    /// Which token: admin, organization or owners_team. Default:
    /// owners_team, else organization, whichever the config writes, else
    /// admin.
    pub token: TerraformToken,
    /// The credentials' key: TFE's host, with its port when the address has
    /// one. Default: from `[tfe] address`.
    pub host: String,
}

/// With `[store]`, the grace a replaced token keeps when `[renew] grace`
/// is not set: two daily timer runs.
pub const FLEET_RENEW_GRACE: Duration = Duration::from_secs(2 * 86_400);

impl RenewConfig {
    /// Renew once less than this is left of a token that lives `lifetime`.
    pub fn before_for(&self, lifetime: Duration) -> Duration {
        self.before.unwrap_or(lifetime / 3)
    }
}

/// `[organization.agent_token]`
#[derive(Debug, Clone, PartialEq)]
pub struct AgentTokenConfig {
    pub file: PathBuf,
    pub description: String,
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
    pub customization: Option<SettingsConfig>,
    pub smtp: Option<SettingsConfig>,
    pub saml: Option<SettingsConfig>,
    pub twilio: Option<SettingsConfig>,
    /// `[twilio] test_number`: one verification SMS when Twilio is applied.
    pub twilio_test_number: Option<String>,
    pub organization: Option<OrgConfig>,
    pub state_dir: PathBuf,
    pub store: Option<StoreConfig>,
    pub renew: RenewConfig,
    pub terraform: Option<TerraformConfig>,
    /// `[metrics] textfile`: a Prometheus textfile (node_exporter's textfile
    /// collector) written at the end of `run` and `renew`.
    pub metrics_textfile: Option<PathBuf>,
    /// Non-fatal findings (e.g. a literal secret in a world-readable file).
    pub warnings: Vec<String>,
    /// Secrets whose source is absent (config key → why, e.g. "refers to
    /// environment variable TFE_IACT_TOKEN which is not set"). Not an error
    /// by itself: the IACT and the admin password are used once, and an
    /// operator removes them afterwards. A step that must send one fails
    /// before anything is sent; a step done with it counts as unchanged.
    pub absent: std::collections::BTreeMap<String, String>,
    /// The environment variables the config's secrets come from: never
    /// passed to a child process.
    pub secret_envs: Vec<String>,
}

/// TFE's lifetime for a token created without `expired-at`: two years
/// (team-tokens docs; go-tfe's TTL integration test: 63113904000 ms).
pub const TFE_DEFAULT_TOKEN_LIFETIME_MS: u64 = 63_113_904_000;

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

impl Config {
    /// Reads, parses and validates `file`. `state_dir` (from `--state-dir`)
    /// overrides `[state] dir`.
    pub fn load(file: &Path, state_dir: Option<&Path>) -> Result<Config, ConfigError> {
        let err = |p: String| ConfigError {
            file: file.to_path_buf(),
            problems: vec![p],
        };
        let text = crate::util::read_capped_text(file, crate::util::cap::CONFIG).map_err(|e| {
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

    /// Validates an already parsed file, section by section
    /// (`config/sections.rs`): every problem is reported, each naming its key.
    pub fn from_raw(
        mut raw: RawConfig,
        file: &Path,
        state_dir: Option<&Path>,
        file_readable_by_others: bool,
    ) -> Result<Config, ConfigError> {
        let mut c = Checker {
            problems: vec![],
            absent: Default::default(),
            secret_envs: vec![],
            warnings: vec![],
        };
        let warnings: Vec<String> = file_readable_by_others
            .then(|| sections::literal_secrets(&raw, file))
            .flatten()
            .into_iter()
            .collect();
        let t = raw.tfe.take().unwrap_or_default();
        let platform = sections::platform(&mut c, &t);
        let hcp = platform == Platform::Hcp;
        if hcp {
            sections::hcp_only(&mut c, &raw);
        }
        let tfe = sections::tfe(&mut c, &t, platform);
        let wait = sections::wait(&mut c, &raw.wait.unwrap_or_default());
        let a = raw.admin.unwrap_or_default();
        let state_dir = state_dir
            .map(Path::to_path_buf)
            .or_else(|| raw.state.and_then(|s| s.dir))
            .unwrap_or_else(default_state_dir);
        let (admin, needs_creation) = sections::admin(&mut c, &a, hcp, &state_dir);
        let iact = sections::iact(
            &mut c,
            &raw.iact.unwrap_or_default(),
            needs_creation,
            &tfe.host,
        );
        let old_email = raw
            .general
            .as_ref()
            .and_then(|g| g.support_email_address.clone());
        let customization =
            settings::customization(&mut c, raw.customization.as_ref(), old_email.as_ref());
        let general = raw
            .general
            .map(|g| settings::general(&mut c, g))
            .filter(|g| !g.attributes.is_empty());
        let smtp = raw.smtp.map(|s| settings::smtp(&mut c, s));
        let saml = raw.saml.map(|s| settings::saml(&mut c, s));
        let (twilio, twilio_test_number) = raw
            .twilio
            .map(|t| settings::twilio(&mut c, t))
            .map_or((None, None), |(t, n)| (Some(t), n));
        let organization = raw
            .organization
            .map(|o| organization::organization(&mut c, o));

        sections::admin_lockout(&mut c, organization.as_ref(), &a);
        let store = sections::store(&mut c, raw.store.as_ref(), tfe.request_deadline);
        let renew = sections::renew(&mut c, raw.renew.as_ref());
        let terraform = raw
            .terraform
            .as_ref()
            .and_then(|t| sections::terraform(&mut c, t, organization.as_ref(), &tfe));
        let metrics_textfile = raw
            .metrics
            .as_ref()
            .and_then(|m| sections::metrics(&mut c, m));
        sections::child_env(&mut c, store.as_ref(), &iact);
        if !c.problems.is_empty() {
            return Err(ConfigError {
                file: file.to_path_buf(),
                problems: c.problems,
            });
        }
        Ok(Config {
            file: file.to_path_buf(),
            tfe,
            wait,
            iact,
            admin,
            general,
            customization,
            smtp,
            saml,
            twilio,
            twilio_test_number,
            organization,
            state_dir,
            store,
            renew,
            terraform,
            metrics_textfile,
            warnings: warnings.into_iter().chain(c.warnings).collect(),
            absent: c.absent,
            secret_envs: c.secret_envs,
        })
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
                // The config's own key names, not TFE's wire spelling.
                Value::Object(
                    m.into_iter()
                        .map(|(k, v)| (k.replace('-', "_"), v))
                        .collect(),
                )
            })
        };
        let secret = |s: &Option<Secret>| s.as_ref().map(|s| s.to_string());
        json!({
            "tfe": {"platform": match self.tfe.platform { Platform::Enterprise => "enterprise", Platform::Hcp => "hcp" },
                    "address": self.tfe.address, "ca_bundle": self.tfe.ca_bundle.as_ref().map(|(p, _)| p.display().to_string()),
                    "allow_insecure_http": self.tfe.allow_insecure_http,
                    "request_timeout": duration::format_duration(self.tfe.request_timeout),
                    "request_deadline": duration::format_duration(self.tfe.request_deadline)},
            "wait": {"timeout": duration::format_duration(self.wait.timeout), "max_interval": duration::format_duration(self.wait.max_interval)},
            "iact": {"source": format!("{:?}", self.iact.source).to_lowercase(), "token": secret(&self.iact.token),
                     "command": self.iact.command, "subnets": self.iact.subnets.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                     "time_limit": self.iact.time_limit.map(duration::format_duration).unwrap_or_else(|| "unlimited".into())},
            "admin": {"username": self.admin.username, "email": self.admin.email, "password": secret(&self.admin.password),
                      "token": secret(&self.admin.token), "token_file": self.admin.token_file.display().to_string(),
                      "rotate_token": self.admin.rotate_token},
            "general": settings(&self.general),
            "customization": settings(&self.customization),
            "smtp": settings(&self.smtp),
            "saml": settings(&self.saml),
            "twilio": settings(&self.twilio),
            "organization": self.organization.as_ref().map(|o| json!({
                "name": o.name, "email": o.email, "default_execution_mode": o.default_execution_mode,
                "default_agent_pool": o.default_agent_pool.as_ref().map(|p| match p { PoolRef::Name(n) => n.clone(), PoolRef::Id(i) => i.clone() }),
                "max_ttl_enabled": o.max_ttl_enabled,
                "service_token_file": o.service_token_file.as_ref().map(|p| p.display().to_string()),
                "owners_team_token_file": o.owners_team_token_file.as_ref().map(|p| p.display().to_string()),
                "agent_token": o.agent_token.as_ref().map(|a| json!({"file": a.file.display().to_string(), "description": a.description})),
                "collaborator_auth_policy": o.security.get("collaborator-auth-policy"),
                "session_timeout": o.security.get("session-timeout").and_then(Value::as_u64).map(|m| duration::format_duration(Duration::from_secs(m * 60))),
                "session_remember": o.security.get("session-remember").and_then(Value::as_u64).map(|m| duration::format_duration(Duration::from_secs(m * 60))),
                "token_ttl": o.token_ttl.as_ref().map(|v| v.iter().map(|(t, ms)| (t.to_string(), json!(duration::format_duration(Duration::from_millis(*ms))))).collect::<Map<_, _>>()),
            })),
            "state": {"dir": self.state_dir.display().to_string()},
            "store": self.store.as_ref().map(|s| json!({"command": s.command,
                "wait": duration::format_duration(s.wait), "timeout": duration::format_duration(s.timeout)})),
            "terraform": self.terraform.as_ref().map(|t| json!({"credentials_file": t.credentials_file.display().to_string(),
                "token": t.token.as_str(),
                "host": t.host})),
            "metrics": self.metrics_textfile.as_ref().map(|f| json!({"textfile": f.display().to_string()})),
            "renew": {"before": self.renew.before.map(duration::format_duration).unwrap_or_else(|| "a third of each token's lifetime".into()),
                      "grace": self.renew.grace.map(duration::format_duration)},
        })
    }
}
