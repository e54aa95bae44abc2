//! The simulated Terraform Enterprise: its data and its endpoints, following
//! the HashiCorp API docs and go-tfe (each behaviour cites its source).
//! Strict where TFE is documented to be strict, and stricter where a
//! lenient peer would let a client bug pass (attributes no source names
//! are refused with 422).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use serde_json::{Map, Value, json};

use super::http::{Request, Response};
use crate::tfe::version::TfeVersion;

mod boot;
mod orgs;
mod settings;
mod tokens;
mod workspaces;
pub use workspaces::Workspace;

use crate::util::rfc3339;
use boot::looks_like_email;
use settings::{Attr, SAML, SMTP, TWILIO, settings_doc};

/// The default maximum TTL per token type when no policy is set. Source:
/// go-tfe `organization_token_ttl_policy_integration_test.go` calls
/// 63113904000 ms the "Default 2-year TTL used by the API" (365.2425 days x 2).
pub const DEFAULT_TTL_MS: u64 = 63_113_904_000;
/// A token created without `expired-at` expires two years after creation
/// (team-tokens docs; TFE 2.0.0 release notes: new tokens default to 24
/// months). The same two years as [`DEFAULT_TTL_MS`]: so a user TTL policy
/// of exactly "2y" (730 days) is shorter than a default token's lifetime.
pub const TOKEN_LIFETIME_MS: u64 = DEFAULT_TTL_MS;
/// `expires_ms` of a token without an expiry: one minted before 2.0.0,
/// kept by an upgrade (2.0.0 release notes: "Existing tokens without
/// expiration dates still function"). Its `expired-at` reads null; a
/// max-TTL policy refuses it, as it refuses any token living longer.
pub const NO_EXPIRY: u64 = u64::MAX;
pub const TOKEN_TYPES: [&str; 4] = ["organization", "team", "user", "audit_trails"];

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub site_admin: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    User(String),
    Organization(String),
    /// A team token: (team id, organization).
    Team(String, String),
}

#[derive(Debug, Clone)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub org: String,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub value: String,
    pub id: String,
    pub kind: TokenKind,
    pub created_ms: u64,
    pub expires_ms: u64,
    /// A described team token (one of many a team may hold); `None` for
    /// every other token and for a team's one legacy token.
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Org {
    pub name: String,
    pub email: String,
    pub default_execution_mode: String,
    pub default_agent_pool: Option<String>,
    pub max_ttl_enabled: bool,
    /// `collaborator-auth-policy`, `session-timeout`, `session-remember`
    /// (organizations API docs; go-tfe `Organization`).
    pub security: Map<String, Value>,
    pub owners: Vec<String>,
    pub ttl: BTreeMap<String, u64>,
    pub created: String,
}

/// An agent token: belongs to one pool, shown once at creation.
#[derive(Debug, Clone)]
pub struct AgentToken {
    pub id: String,
    pub pool: String,
    pub description: String,
    pub value: String,
    pub created: String,
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub id: String,
    pub name: String,
    pub org: String,
    pub organization_scoped: bool,
}

/// Knobs that shape one simulated install.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub ready_after: Duration,
    pub legacy_health: bool,
    pub iact: String,
    pub iact_subnets: Vec<IpNet>,
    pub iact_trusted_proxies: Vec<IpNet>,
    /// `None` = unlimited.
    pub iact_time_limit: Option<Duration>,
    /// Make the SMTP test mail fail with this status (401, 500 or 504).
    pub smtp_fail: Option<u16>,
    pub version: String,
    /// HCP Terraform rather than Terraform Enterprise (see [`Tfe::handle`]).
    pub hcp: bool,
    /// Enforce the API rate limit of the general settings (see
    /// `Tfe::rate_limited`).
    pub rate_limit: bool,
    /// A site admin counts as an owner of every organization for the token
    /// TTL policies (unconfirmed; off: only the owners team's members).
    pub site_admin_owner: bool,
    /// The tokens given at start carry no expiry, as after an upgrade from
    /// 1.x ([`NO_EXPIRY`]).
    pub tokens_without_expiry: bool,
}

/// `--tfe-version` for the undocumented older settings shape ([`Tfe::legacy_api`]).
pub const PTFE_SETTINGS_PAGE: &str = "ptfe-settings-page";

/// The install's whole state.
pub struct Tfe {
    pub behaviour: Behaviour,
    pub boot: Instant,
    /// Not ready until the test releases it (`SimOptions::hold_ready`).
    pub ready_held: bool,
    /// How far TFE's clock is ahead of this host's (`Sim::advance_clock`):
    /// time passing for TFE, or a client whose clock fell behind. Every
    /// expiry, creation time and `Date` header reads [`Tfe::now_ms`].
    pub clock_ahead_ms: u64,
    pub users: Vec<User>,
    pub tokens: Vec<Token>,
    pub general: Map<String, Value>,
    pub customization: Map<String, Value>,
    pub smtp: Map<String, Value>,
    pub saml: Map<String, Value>,
    pub twilio: Map<String, Value>,
    pub cost_estimation: Map<String, Value>,
    pub orgs: Vec<Org>,
    pub pools: Vec<Pool>,
    pub agent_tokens: Vec<AgentToken>,
    pub teams: Vec<Team>,
    pub workspaces: Vec<Workspace>,
    pub test_mails: Vec<String>,
    pub test_sms: Vec<String>,
    pub initial_admin_attempts: u32,
    /// Requests this second, per user (rate limiting).
    rate: BTreeMap<String, (u64, u32)>,
    /// How many requests the rate limit refused.
    pub rate_limited_count: u64,
    rng: fastrand::Rng,
}

impl Tfe {
    /// The API rate limit, per user (a service token counts as its own
    /// user). Source: TFE API docs "Rate Limiting" (api-docs/index.mdx): each
    /// user may make `api-rate-limit` requests per second when
    /// `api-rate-limiting-enabled` (general settings; default 30, at least
    /// 30); past it the API answers 429 with `X-RateLimit-Limit` and
    /// `X-RateLimit-Reset` (seconds, a float) until the window passes. Here a
    /// window is one wall-clock second.
    fn rate_limited(&mut self, tok: &Token) -> Option<Response> {
        if !self.behaviour.rate_limit || self.general["api-rate-limiting-enabled"] != true {
            return None;
        }
        let limit = self.general["api-rate-limit"].as_u64().unwrap_or(30) as u32;
        let who = match &tok.kind {
            TokenKind::User(id) => id.clone(),
            TokenKind::Organization(o) => format!("org:{o}"),
            TokenKind::Team(t, _) => format!("team:{t}"),
        };
        let now = self.now_ms();
        let second = now / 1000;
        let entry = self.rate.entry(who).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        entry.1 += 1;
        if entry.1 <= limit {
            return None;
        }
        self.rate_limited_count += 1;
        let reset = (1000 - now % 1000) as f64 / 1000.0;
        Some(
            errors(
                429,
                "Too many requests",
                "You have exceeded the API's rate limit.",
            )
            .with_header("X-RateLimit-Limit", &limit.to_string())
            .with_header("X-RateLimit-Reset", &format!("{reset:.3}")),
        )
    }
}

fn host_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn errors(status: u16, title: &str, detail: &str) -> Response {
    Response::json(
        status,
        &json!({"errors": [{"status": status.to_string(), "title": title, "detail": detail}]}),
    )
}

fn invalid(detail: impl AsRef<str>) -> Response {
    errors(422, "invalid attribute", detail.as_ref())
}

fn not_found() -> Response {
    errors(404, "not found", "")
}

impl Tfe {
    pub fn new(behaviour: Behaviour, seed: u64) -> Tfe {
        let legacy = behaviour.version.starts_with('v');
        let mut general = json!({
            "limit-user-organization-creation": true,
            "api-rate-limiting-enabled": true,
            "api-rate-limit": 30,
            "send-passing-statuses-for-untriggered-speculative-plans": false,
            "allow-speculative-plans-on-pull-requests-from-forks": false,
            "default-remote-state-access": true,
            "plan-timeout": "2h",
            "apply-timeout": "24h",
            "require-two-factor-for-admins": false,
            "fair-run-queuing-enabled": true,
        });
        let customization = json!({
            "support-email-address": "support@hashicorp.com", "login-help": null,
            "footer": null, "error": null, "new-user": null,
        });
        if legacy {
            general["support-email-address"] = json!("support@hashicorp.com");
            if let Value::Object(g) = &mut general {
                g.retain(|k, _| settings::GENERAL_LEGACY.iter().any(|a| a.0 == k));
            }
        }
        let smtp = json!({"enabled": false, "host": null, "port": null, "sender": null, "auth": "none", "username": null});
        let saml = json!({
            "enabled": false, "debug": false, "idp-cert": null, "certificate": null,
            "slo-endpoint-url": null, "sso-endpoint-url": null,
            "attr-username": "Username", "attr-groups": "MemberOf", "attr-site-admin": "SiteAdmin",
            "site-admin-role": "site-admins", "sso-api-token-session-timeout": 1_209_600,
            "team-management-enabled": false, "authn-requests-signed": false, "want-assertions-signed": false,
            "signature-signing-method": "SHA256", "signature-digest-method": "SHA256", "provider-type": "saml",
            "old-idp-cert": null,
            "acs-consumer-url": "https://tfe.example.com/users/saml/auth",
            "metadata-url": "https://tfe.example.com/users/saml/metadata",
        });
        let twilio = json!({"enabled": false, "account-sid": null, "from-number": null});
        let cost_estimation = json!({
            "enabled": false, "aws-access-key-id": null, "aws-enabled": false,
            "aws-instance-profile-enabled": false, "gcp-enabled": false, "azure-enabled": false,
            "azure-client-id": null, "azure-subscription-id": null, "azure-tenant-id": null,
        });
        let obj = |v: Value| match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Tfe {
            behaviour,
            boot: Instant::now(),
            ready_held: false,
            clock_ahead_ms: 0,
            users: vec![],
            tokens: vec![],
            general: obj(general),
            customization: obj(customization),
            smtp: obj(smtp),
            saml: obj(saml),
            twilio: obj(twilio),
            cost_estimation: obj(cost_estimation),
            orgs: vec![],
            pools: vec![],
            teams: vec![],
            workspaces: vec![],
            test_mails: vec![],
            test_sms: vec![],
            initial_admin_attempts: 0,
            rate: BTreeMap::new(),
            agent_tokens: vec![],
            rate_limited_count: 0,
            rng: fastrand::Rng::with_seed(seed ^ 0x7fe5_1a11),
        }
    }

    fn random(&mut self, n: usize) -> String {
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| ALNUM[self.rng.usize(..ALNUM.len())] as char)
            .collect()
    }

    /// Issues a token in TFE's observed format `<14>.atlasv1.<64>`.
    pub fn issue_token(&mut self, kind: TokenKind) -> String {
        let value = format!("{}.atlasv1.{}", self.random(14), self.random(64));
        let id = format!("at-{}", self.random(16));
        let created = self.now_ms();
        self.tokens.push(Token {
            value: value.clone(),
            id,
            kind,
            created_ms: created,
            expires_ms: created + TOKEN_LIFETIME_MS,
            description: None,
        });
        value
    }

    /// Adds a user directly (the `--existing-admin-token` / `--user-token` flags).
    pub fn add_user(&mut self, username: &str, site_admin: bool, token: Option<String>) -> String {
        let id = format!("user-{}", self.random(16));
        self.users.push(User {
            id: id.clone(),
            username: username.into(),
            email: format!("{username}@example.com"),
            site_admin,
        });
        match token {
            Some(value) => {
                let created = self.now_ms();
                let token_id = format!("at-{}", self.random(16));
                let expires_ms = if self.behaviour.tokens_without_expiry {
                    NO_EXPIRY
                } else {
                    created + TOKEN_LIFETIME_MS
                };
                self.tokens.push(Token {
                    value: value.clone(),
                    id: token_id,
                    kind: TokenKind::User(id),
                    created_ms: created,
                    expires_ms,
                    description: None,
                });
                value
            }
            None => self.issue_token(TokenKind::User(id)),
        }
    }

    /// The release `--tfe-version` claims, read by the client's own table
    /// ([`crate::tfe::version`]); `None` for [`PTFE_SETTINGS_PAGE`].
    pub fn release(&self) -> Option<TfeVersion> {
        TfeVersion::parse(&self.behaviour.version)
    }

    /// `--tfe-version ptfe-settings-page`: not a documented release but the
    /// shape the older PTFE "Settings API" page (source document
    /// admin-settings-api.txt) shows and go-tfe v1 was written against: PUT
    /// to revoke the old SAML certificate, PATCH to verify Twilio,
    /// `support-email-address` in general settings, no
    /// customization-settings. It reports no version header, so a client
    /// meets it only through its fallbacks. Every documented release (the
    /// v202309-1 and 2.0.x docs) has POST for both and customization-settings.
    pub fn legacy_api(&self) -> bool {
        self.behaviour.version == PTFE_SETTINGS_PAGE
    }

    /// Whether this release has customization-settings: every documented
    /// one from v202003-1 (the v202309-1 settings docs: "Customization
    /// Settings", available since v202003-1) and every numbered release.
    /// Before it, `support-email-address` is a general setting: the older
    /// Settings API page (www.terraform.io `docs/cloud/api/admin/settings`,
    /// the PTFE shape, `GENERAL_LEGACY`) shows it there and no
    /// customization endpoint. An unknown release has them.
    ///
    /// The cut-over release is the same one the client's table
    /// (`tfe/version.rs`) reads from the same page, so a test against it
    /// shows only that both follow that page. If a real release disagrees
    /// in the direction that matters today (the client expects the
    /// endpoint and meets 404), the client falls back to general settings;
    /// `an_unknown_release_is_met_through_the_fallbacks` covers that path.
    pub fn has_customization(&self) -> bool {
        !self.legacy_api() && self.release().is_none_or(|v| v.has_customization())
    }

    /// A monthly release (`vYYYYMM-N`; docs v202309-1): general settings
    /// without `support-email-address` (it is a customization setting) and
    /// without plan/apply timeouts (v202309-1 `api-docs/admin/settings.mdx`).
    pub fn monthly(&self) -> bool {
        matches!(self.release(), Some(TfeVersion::Monthly(..)))
    }

    /// Token TTL policies: from 2.0.0 (2.0.0 release notes: "Terraform
    /// Enterprise now supports a maximum token time to live (TTL) policy");
    /// 404 before, as for any path a release does not have.
    pub fn has_token_ttl(&self) -> bool {
        self.release()
            .is_some_and(|v| v.at_least(TfeVersion::Numbered(2, 0, 0)))
    }

    /// `/api/v1/health/readiness`: from 1.2.0 (releases/1.2.x); `--legacy-health`
    /// forces an install without it.
    pub fn has_readiness(&self) -> bool {
        !self.behaviour.legacy_health && self.release().is_some_and(TfeVersion::has_readiness)
    }

    /// `/_health_check`: gone (410) from 2.0.0 (releases/2.0.x, Breaking
    /// Changes).
    pub fn has_health_check(&self) -> bool {
        self.behaviour.legacy_health
            || !self
                .release()
                .is_some_and(|v| v.at_least(TfeVersion::Numbered(2, 0, 0)))
    }

    pub fn is_ready(&self) -> bool {
        !self.ready_held && self.boot.elapsed() >= self.behaviour.ready_after
    }

    /// The id of the user holding API token `value`.
    pub fn user_of(&self, value: &str) -> Option<String> {
        self.tokens.iter().find_map(|t| match &t.kind {
            TokenKind::User(id) if t.value == value => Some(id.clone()),
            _ => None,
        })
    }

    /// Routes one request. `Response` is what TFE would answer.
    ///
    /// With `hcp`, HCP Terraform: the admin API is "only available for
    /// Terraform Enterprise and \[does\] not function against HCP Terraform"
    /// (go-tfe `tfe.go`, `Admin`), so `/api/v2/admin/*` is 404 for every
    /// token. The install-time endpoints (IACT, initial admin, the health
    /// checks) are described only for self-hosted installs (TFE
    /// initial-admin and monitoring docs; seeds 000/001), so they are 404
    /// too: a client that calls them on HCP fails here as it would there.
    /// `/api/v2/ping` answers (go-tfe's `PingEndpoint`, "a
    /// no-op API endpoint", called by `NewClient`) with `TFP-AppName`.
    pub fn handle(&mut self, req: &Request) -> Response {
        let resp = self.route(req);
        // TFE's nginx sends `Date` (RFC 9110 section 6.6.1) by TFE's clock.
        let date = crate::util::http_date(self.now_ms() / 1000);
        resp.with_header("Date", &date)
    }

    /// TFE's time now (Unix milliseconds): this host's clock plus
    /// [`Tfe::clock_ahead_ms`].
    pub fn now_ms(&self) -> u64 {
        host_now_ms() + self.clock_ahead_ms
    }

    /// [`Tfe::now_ms`] in RFC 3339, for `created-at` attributes.
    pub fn now_rfc3339(&self) -> String {
        crate::util::rfc3339(UNIX_EPOCH + Duration::from_millis(self.now_ms()))
    }

    fn route(&mut self, req: &Request) -> Response {
        let path = req.path.trim_end_matches('/');
        let m = req.method.as_str();
        if self.behaviour.hcp {
            match (m, path) {
                ("GET", "/api/v2/ping") => {
                    return Response::empty(204)
                        .with_header("TFP-API-Version", "2.6")
                        .with_header("TFP-AppName", "HCP Terraform")
                        .with_header("X-RateLimit-Limit", "30");
                }
                (_, p) if !p.starts_with("/api/v2/") || p.starts_with("/api/v2/admin") => {
                    return not_found();
                }
                _ => {}
            }
        }
        match (m, path) {
            ("GET", "/api/v1/health/readiness") => return self.readiness(req),
            ("GET", "/_health_check") => return self.health_check(),
            _ => {}
        }
        if !self.is_ready() {
            return errors(
                503,
                "service unavailable",
                "Terraform Enterprise is starting",
            );
        }
        match (m, path) {
            ("GET", "/.well-known/terraform.json") => {
                return Response::plain_json(200, &discovery_doc());
            }
            ("GET", "/admin/retrieve-iact") => return self.retrieve_iact(req),
            ("POST", "/admin/initial-admin-user") => return self.initial_admin(req),
            ("GET", "/api/v2/ping") => {
                // Numbered releases say `X-TFE-Current-Version`, monthly
                // ones `X-TFE-Version` (the provider's `RemoteTFEVersion()`
                // reads both: terraform-provider-tfe
                // `internal/provider/provider.go`; go-tfe `tfe.go`
                // `getRawAPIMetadata()` sends this ping).
                let r = Response::empty(204)
                    .with_header("TFP-API-Version", "2.6")
                    .with_header("TFP-AppName", "Terraform Enterprise")
                    .with_header("X-RateLimit-Limit", "30");
                return match self.release() {
                    Some(TfeVersion::Numbered(..)) => {
                        r.with_header("X-TFE-Current-Version", &self.behaviour.version)
                    }
                    Some(TfeVersion::Monthly(..)) => {
                        r.with_header("X-TFE-Version", &self.behaviour.version)
                    }
                    None => r,
                };
            }
            _ => {}
        }
        if !path.starts_with("/api/v2/") {
            return not_found();
        }
        // Bearer authentication.
        let token = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(tok) = token
            .and_then(|t| self.tokens.iter().find(|k| k.value == t))
            .cloned()
        else {
            return errors(401, "unauthorized", "");
        };
        // An expired token authenticates nothing (api-tokens docs).
        if tok.expires_ms <= self.now_ms() {
            return errors(401, "unauthorized", "token has expired");
        }
        // Organization and team tokens belong to one organization, whose
        // max-TTL policy refuses them everywhere once enforced.
        if let TokenKind::Organization(o) | TokenKind::Team(_, o) = &tok.kind
            && let Some(idx) = self.orgs.iter().position(|x| &x.name == o)
            && let Some(resp) = self.ttl_rejects(&tok, idx)
        {
            return resp;
        }
        if let Some(resp) = self.rate_limited(&tok) {
            return resp;
        }
        // The content type describes a request document (JSON:API: it is
        // required on requests that send one); a DELETE without a body, as
        // go-tfe and pytfe send it, has nothing to describe. Whether TFE
        // refuses one without the header is not in our sources: the client
        // sends it anyway (go-tfe sets it on every request), so it works
        // against either behaviour.
        if req.is_mutating() && !(req.method == "DELETE" && req.body.is_empty()) {
            let ct = req.header("content-type").unwrap_or("");
            if !ct.starts_with("application/vnd.api+json") {
                return errors(
                    415,
                    "unsupported media type",
                    "Content-Type must be application/vnd.api+json",
                );
            }
        }
        let user = match &tok.kind {
            TokenKind::User(id) => self.users.iter().find(|u| &u.id == id).cloned(),
            TokenKind::Organization(_) | TokenKind::Team(..) => None,
        };
        let site_admin = user.as_ref().is_some_and(|u| u.site_admin);
        let segs: Vec<&str> = path["/api/v2/".len()..].split('/').collect();
        match (m, segs.as_slice()) {
            ("GET", ["account", "details"]) => match &user {
                Some(u) => Response::json(200, &user_doc(u)),
                None => Response::json(200, &service_user_doc(&tok.kind)),
            },
            (_, ["admin", ..]) if !site_admin => not_found(),
            ("GET", ["admin", kind]) => match self.settings(kind) {
                Some((map, schema, id, ty)) => {
                    Response::json(200, &settings_doc(id, ty, map, schema))
                }
                None => not_found(),
            },
            ("PATCH", ["admin", kind]) => self.patch_settings(kind, req),
            // Twilio verify: today's docs POST; go-tfe v1 sends PATCH
            // (`admin_setting_twilio.go` `Verify`). Modelled by version: today's
            // TFE answers POST, a legacy install the PATCH go-tfe was written for.
            (v @ ("POST" | "PATCH"), ["admin", "twilio-settings", "verify"]) => {
                let wanted = if self.legacy_api() { "PATCH" } else { "POST" };
                if v != wanted {
                    return not_found();
                }
                self.twilio_verify(req)
            }
            // Revoke the old IdP certificate: today's docs (heading and curl),
            // go-tfe `RevokeIdpCert` and pytfe `revoke_idp_cert` POST; seed
            // 002 (the older settings page) says PUT. By version, as above.
            (
                v @ ("POST" | "PUT"),
                [
                    "admin",
                    "saml-settings",
                    "actions",
                    "revoke-old-certificate",
                ],
            ) => {
                let wanted = if self.legacy_api() { "PUT" } else { "POST" };
                if v != wanted {
                    return not_found();
                }
                self.saml.insert("old-idp-cert".into(), Value::Null);
                Response::json(
                    200,
                    &settings_doc("saml", "saml-settings", &self.saml, SAML),
                )
            }
            ("POST", ["organizations"]) => self.create_org(req, user.as_ref()),
            ("POST", ["teams", tid, "authentication-token"]) => {
                let tid = tid.to_string();
                self.team_token(&tid, &tok, site_admin, req)
            }
            ("GET", ["teams", tid, "authentication-token"]) => {
                self.read_team_token(tid, &tok, site_admin)
            }
            ("POST", ["users", uid, "authentication-tokens"]) => {
                let allowed = user.as_ref().is_some_and(|u| u.id == *uid || u.site_admin);
                if !allowed || !self.users.iter().any(|u| u.id == *uid) {
                    return not_found();
                }
                let uid = uid.to_string();
                self.user_token(&uid, req)
            }
            (_, ["agent-pools", pool, "authentication-tokens"]) => {
                let pool = pool.to_string();
                self.agent_tokens_of(&tok, site_admin, &pool, req)
            }
            ("POST", ["teams", tid, "authentication-tokens"]) => {
                let tid = tid.to_string();
                self.described_team_token(&tid, &tok, site_admin, req)
            }
            ("DELETE", ["teams", tid, "authentication-token"]) => {
                let tid = tid.to_string();
                self.delete_team_token(&tid, &tok, site_admin)
            }
            ("DELETE", ["authentication-tokens", id]) => {
                let id = id.to_string();
                if self.agent_tokens.iter().any(|t| t.id == id) {
                    self.delete_agent_token(&tok, site_admin, &id)
                } else {
                    self.delete_token_by_id(&tok, user.as_ref(), site_admin, &id)
                }
            }
            ("GET" | "PATCH", ["workspaces", id]) => {
                let id = id.to_string();
                let orgs = self.orgs.clone();
                let kind = tok.kind.clone();
                self.workspace_by_id(&id, req, |org| match &kind {
                    TokenKind::User(u) => {
                        site_admin || orgs.iter().any(|o| o.name == org && o.owners.contains(u))
                    }
                    TokenKind::Organization(o) | TokenKind::Team(_, o) => o == org,
                })
            }
            (_, ["organizations", org, rest @ ..]) => {
                let org = org.to_string();
                let Some(idx) = self.orgs.iter().position(|o| o.name == org) else {
                    return errors(
                        404,
                        "not found",
                        "Organization does not exist or user does not belong to the organization",
                    );
                };
                let member = match &tok.kind {
                    TokenKind::User(id) => site_admin || self.orgs[idx].owners.contains(id),
                    TokenKind::Organization(o) | TokenKind::Team(_, o) => *o == org,
                };
                if !member {
                    return not_found();
                }
                if let Some(resp) = self.ttl_rejects(&tok, idx) {
                    return resp;
                }
                match (m, rest) {
                    ("GET", []) => Response::json(200, &self.org_doc(idx)),
                    ("PATCH", []) => self.patch_org(idx, req),
                    ("GET", ["agent-pools"]) => self.list_pools(&org, req),
                    ("POST", ["agent-pools"]) => self.create_pool(&org, req),
                    (_, ["token-ttl-policies"]) if !self.has_token_ttl() => not_found(),
                    // The owners team's: go-tfe `v2/openapi/spec.json` lists
                    // 403 "User is not part of the owners team of the
                    // organization" for these paths. That
                    // the GET answers it too, and whether a site admin
                    // outside the owners team counts, are not in our
                    // sources: both are modelled (`--site-admin-owns-orgs`
                    // for the other answer), and the client copes with both.
                    (_, ["token-ttl-policies"])
                        if !(matches!(&tok.kind, TokenKind::User(id) if self.orgs[idx].owners.contains(id))
                            || (site_admin && self.behaviour.site_admin_owner)) =>
                    {
                        errors(
                            403,
                            "forbidden",
                            "User is not part of the owners team of the organization",
                        )
                    }
                    ("GET", ["token-ttl-policies"]) => Response::json(200, &self.ttl_doc(idx)),
                    ("PATCH", ["token-ttl-policies"]) => self.patch_ttl(idx, req),
                    ("GET", ["entitlement-set"]) => self.entitlement_set(&org),
                    ("GET", ["workspaces", name]) => self.show_workspace(&org, name),
                    ("POST", ["workspaces"]) => self.create_workspace(&org, req),
                    ("POST", ["authentication-token"]) => self.org_token(&org, req),
                    ("GET", ["authentication-token"]) => self.read_org_token(&org),
                    ("GET", ["teams"]) => {
                        let names: Vec<String> = req
                            .query_param("filter[names]")
                            .map(|n| n.split(',').map(String::from).collect())
                            .unwrap_or_default();
                        let data: Vec<Value> = self
                            .teams
                            .iter()
                            .filter(|t| t.org == org && (names.is_empty() || names.contains(&t.name)))
                            .map(|t| json!({"id": t.id, "type": "teams", "attributes": {"name": t.name, "visibility": "secret"}}))
                            .collect();
                        Response::json(200, &json!({"data": data}))
                    }
                    _ => not_found(),
                }
            }
            _ => not_found(),
        }
    }

    /// Everything a test may want to check, as JSON.
    pub fn snapshot(&self) -> Value {
        let settings = |m: &Map<String, Value>, schema: &[Attr]| {
            let mut out = Map::new();
            for (k, v) in m {
                if !schema.iter().any(|a| a.0 == k && a.3) {
                    out.insert(k.clone(), v.clone());
                }
            }
            Value::Object(out)
        };
        let mut smtp = settings(&self.smtp, SMTP);
        smtp["password-set"] = json!(self.smtp.get("password").is_some_and(|p| !p.is_null()));
        let mut saml = settings(&self.saml, SAML);
        saml["private-key-set"] = json!(self.saml.get("private-key").is_some_and(|p| !p.is_null()));
        let mut twilio = settings(&self.twilio, TWILIO);
        twilio["auth-token-set"] =
            json!(self.twilio.get("auth-token").is_some_and(|p| !p.is_null()));
        json!({
            "ready": self.is_ready(),
            "users": self.users.iter().map(|u| json!({"id": u.id, "username": u.username, "email": u.email, "site-admin": u.site_admin})).collect::<Vec<_>>(),
            "tokens": self.tokens.iter().map(|t| json!({"token": t.value, "id": t.id, "description": t.description, "lifetime-ms": t.expires_ms.saturating_sub(t.created_ms), "expires-unix": t.expires_ms / 1000, "kind": match &t.kind {
                TokenKind::User(u) => json!({"user": u}), TokenKind::Organization(o) => json!({"organization": o}),
                TokenKind::Team(t, o) => json!({"team": t, "organization": o})}})).collect::<Vec<_>>(),
            "initial-admin-attempts": self.initial_admin_attempts,
            "rate-limited": self.rate_limited_count,
            "settings": {"general": self.general, "customization": self.customization, "smtp": smtp, "saml": saml, "twilio": twilio,
                "cost-estimation": settings(&self.cost_estimation, settings::COST_ESTIMATION)},
            "test-mails": self.test_mails,
            "test-sms": self.test_sms,
            "organizations": self.orgs.iter().map(|o| json!({
                "name": o.name, "email": o.email, "default-execution-mode": o.default_execution_mode,
                "default-agent-pool": o.default_agent_pool.as_ref().and_then(|id| self.pools.iter().find(|p| &p.id == id)).map(|p| p.name.clone()),
                "default-agent-pool-id": o.default_agent_pool,
                "max-ttl-enabled": o.max_ttl_enabled, "token-ttl-policies": o.ttl,
            })).collect::<Vec<_>>(),
            "agent-pools": self.pools.iter().map(|p| json!({"id": p.id, "name": p.name, "organization": p.org})).collect::<Vec<_>>(),
            "workspaces": self.workspaces.iter().map(|w| json!({"id": w.id, "name": w.name, "organization": w.organization,
                "execution-mode": w.execution_mode, "terraform-version": w.terraform_version})).collect::<Vec<_>>(),
            "agent-tokens": self.agent_tokens.iter().map(|t| json!({"id": t.id, "pool": t.pool, "description": t.description, "token": t.value})).collect::<Vec<_>>(),
        })
    }
}

/// Extracts `data.attributes` from a JSON:API body, checking `data.type`
/// when present (`""` is tolerated: go-tfe sends it for settings).
fn body_attributes(req: &Request, want_type: &str) -> Result<Map<String, Value>, Response> {
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|_| errors(400, "bad request", "body is not valid JSON"))?;
    let data = body
        .get("data")
        .filter(|d| d.is_object())
        .ok_or_else(|| invalid("body must have a data object"))?;
    if let Some(t) = data.get("type") {
        let t = t.as_str().unwrap_or("?");
        if !t.is_empty() && !want_type.is_empty() && t != want_type {
            return Err(errors(
                409,
                "conflict",
                &format!("data.type must be {want_type:?}, not {t:?}"),
            ));
        }
    }
    match data.get("attributes") {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(invalid("data.attributes must be an object")),
    }
}

/// The service user of an organization or team token. The account API docs
/// (`api-docs/account`, 1.0.x to 2.0.x and v202206-1 on): "HCP Terraform
/// associates team and organization tokens with a synthetic user account
/// called service user" and returns it "for account requests authenticated
/// by a team or organization token", with an `authenticated-resource`
/// relationship to the team or organization. `is-service-account` is go-tfe
/// `User.IsServiceAccount`. Its id and username are the sim's own: the docs
/// do not show them.
fn service_user_doc(kind: &TokenKind) -> Value {
    let (name, rel) = match kind {
        TokenKind::Organization(o) => (
            format!("api-org-{o}"),
            json!({"id": o, "type": "organizations"}),
        ),
        TokenKind::Team(t, _) => (format!("api-team-{t}"), json!({"id": t, "type": "teams"})),
        TokenKind::User(_) => return Value::Null,
    };
    json!({"data": {"id": format!("user-svc-{name}"), "type": "users", "attributes": {
        "username": name, "is-site-admin": false, "is-service-account": true,
        "two-factor": {"enabled": false, "verified": false}, "avatar-url": ""},
        "relationships": {"authenticated-resource": {"data": rel}}}})
}

/// The remote service discovery document (Terraform docs "Remote Service
/// Discovery": `GET /.well-known/terraform.json`, a JSON object of service
/// ids to URLs relative to it), with the services a TFE host lists:
/// - `tfe.v2`, `tfe.v2.1`, `tfe.v2.2` and `state.v2` at `/api/v2/`, as
///   Terraform's own cloud backend test server serves them (terraform
///   `internal/cloud/testing.go`, `testDefaultRequestHandlers`);
/// - `modules.v1` at `/api/registry/v1/modules/`: the private registry's
///   module API (TFE "Registry Modules API" docs, which point at the Module
///   Registry HTTP API under that base; the module registry protocol docs
///   name `modules.v1`); `providers.v1` at `/api/registry/v1/providers/`
///   is HCP Terraform's listing, unconfirmed for TFE;
/// - `login.v1`, in the shape Terraform's login protocol defines (docs
///   "Login Protocol": `client`, `grant_types`, `authz`, `token`, `ports`);
///   its paths and the `motd.v1` path are those HCP Terraform's document
///   lists (`/app/settings/tokens?source=terraform-login`,
///   `/api/terraform/token`, `/api/terraform/motd`): no TFE docs page names
///   them, so for a TFE they are the sim's belief, unconfirmed. tfe-bootstrap
///   itself reads none of this document (only the Terraform CLI and SDKs
///   do), so no belief of the client's rests on it.
///
/// The sim serves no registry or login flow behind these paths.
pub fn discovery_doc() -> Value {
    json!({
        "login.v1": {
            "client": "terraform-cli",
            "grant_types": ["authz_code"],
            "authz": "/app/settings/tokens?source=terraform-login",
            "token": "/api/terraform/token",
            "ports": [10000, 10010],
        },
        "modules.v1": "/api/registry/v1/modules/",
        "motd.v1": "/api/terraform/motd",
        "providers.v1": "/api/registry/v1/providers/",
        "state.v2": "/api/v2/",
        "tfe.v2": "/api/v2/",
        "tfe.v2.1": "/api/v2/",
        "tfe.v2.2": "/api/v2/",
    })
}

fn user_doc(u: &User) -> Value {
    json!({"data": {"id": u.id, "type": "users", "attributes": {
        "username": u.username, "email": u.email, "is-site-admin": u.site_admin,
        "is-service-account": false, "two-factor": {"enabled": false, "verified": false},
        "avatar-url": "", "unconfirmed-email": null}}})
}
