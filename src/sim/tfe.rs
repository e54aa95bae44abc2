//! The simulated Terraform Enterprise: its data and its endpoints, following
//! `shared/spec/tfe-api.md`. Strict where TFE is documented to be strict, and
//! stricter where a lenient peer would let a client bug pass (unknown
//! attributes are refused with 422).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use serde_json::{Map, Value, json};

use super::http::{Request, Response};
use crate::util::rfc3339;

/// go-tfe's integration tests call this "Default 2-year TTL used by the API".
pub const DEFAULT_TTL_MS: u64 = 63_113_904_000;
/// Tokens issued by TFE >= 2.0 expire after 24 months by default.
pub const TOKEN_LIFETIME_MS: u64 = 2 * 365 * 24 * 3600 * 1000;
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
}

#[derive(Debug, Clone)]
pub struct Org {
    pub name: String,
    pub email: String,
    pub default_execution_mode: String,
    pub default_agent_pool: Option<String>,
    pub max_ttl_enabled: bool,
    pub owners: Vec<String>,
    pub ttl: BTreeMap<String, u64>,
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
    /// `None` = unlimited.
    pub iact_time_limit: Option<Duration>,
    /// Make the SMTP test mail fail with this status (401, 500 or 504).
    pub smtp_fail: Option<u16>,
    pub version: String,
}

/// The install's whole state.
pub struct Tfe {
    pub behaviour: Behaviour,
    pub boot: Instant,
    pub users: Vec<User>,
    pub tokens: Vec<Token>,
    pub general: Map<String, Value>,
    pub smtp: Map<String, Value>,
    pub saml: Map<String, Value>,
    pub twilio: Map<String, Value>,
    pub orgs: Vec<Org>,
    pub pools: Vec<Pool>,
    pub teams: Vec<Team>,
    pub test_mails: Vec<String>,
    pub test_sms: Vec<String>,
    pub initial_admin_attempts: u32,
    rng: fastrand::Rng,
}

fn now_ms() -> u64 {
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

/// The type of a settings attribute, for validation of PATCH bodies.
#[derive(Clone, Copy)]
enum Ty {
    Bool,
    Int(i64, i64),
    Str,
    Enum(&'static [&'static str]),
}

/// (name, type, writable, write-only)
type Attr = (&'static str, Ty, bool, bool);

/// A settings singleton: current values, schema, JSON:API id and type.
type SettingsRef<'a> = (
    &'a Map<String, Value>,
    &'static [Attr],
    &'static str,
    &'static str,
);

const GENERAL: &[Attr] = &[
    ("limit-user-organization-creation", Ty::Bool, true, false),
    ("support-email-address", Ty::Str, true, false),
    ("api-rate-limiting-enabled", Ty::Bool, true, false),
    ("api-rate-limit", Ty::Int(30, 1_000_000), true, false),
    (
        "send-passing-statuses-for-untriggered-speculative-plans",
        Ty::Bool,
        true,
        false,
    ),
    (
        "allow-speculative-plans-on-pull-requests-from-forks",
        Ty::Bool,
        true,
        false,
    ),
    ("default-remote-state-access", Ty::Bool, true, false),
    ("plan-timeout", Ty::Str, true, false),
    ("apply-timeout", Ty::Str, true, false),
    ("require-two-factor-for-admins", Ty::Bool, false, false),
    ("fair-run-queuing-enabled", Ty::Bool, false, false),
];

const SMTP: &[Attr] = &[
    ("enabled", Ty::Bool, true, false),
    ("host", Ty::Str, true, false),
    ("port", Ty::Int(1, 65535), true, false),
    ("sender", Ty::Str, true, false),
    ("auth", Ty::Enum(&["none", "plain", "login"]), true, false),
    ("username", Ty::Str, true, false),
    ("password", Ty::Str, true, true),
    ("test-email-address", Ty::Str, true, true),
];

const SAML: &[Attr] = &[
    ("enabled", Ty::Bool, true, false),
    ("debug", Ty::Bool, true, false),
    ("idp-cert", Ty::Str, true, false),
    ("certificate", Ty::Str, true, false),
    ("private-key", Ty::Str, true, true),
    ("slo-endpoint-url", Ty::Str, true, false),
    ("sso-endpoint-url", Ty::Str, true, false),
    ("attr-username", Ty::Str, true, false),
    ("attr-groups", Ty::Str, true, false),
    ("attr-site-admin", Ty::Str, true, false),
    ("site-admin-role", Ty::Str, true, false),
    (
        "sso-api-token-session-timeout",
        Ty::Int(1, i64::MAX),
        true,
        false,
    ),
    ("team-management-enabled", Ty::Bool, true, false),
    ("authn-requests-signed", Ty::Bool, true, false),
    ("want-assertions-signed", Ty::Bool, true, false),
    (
        "signature-signing-method",
        Ty::Enum(&["SHA1", "SHA256"]),
        true,
        false,
    ),
    (
        "signature-digest-method",
        Ty::Enum(&["SHA1", "SHA256"]),
        true,
        false,
    ),
    (
        "provider-type",
        Ty::Enum(&["okta", "entra", "saml", "unknown"]),
        true,
        false,
    ),
    ("old-idp-cert", Ty::Str, false, false),
    ("acs-consumer-url", Ty::Str, false, false),
    ("metadata-url", Ty::Str, false, false),
];

const TWILIO: &[Attr] = &[
    ("enabled", Ty::Bool, true, false),
    ("account-sid", Ty::Str, true, false),
    ("auth-token", Ty::Str, true, true),
    ("from-number", Ty::Str, true, false),
];

fn check_type(name: &str, ty: Ty, v: &Value) -> Result<(), String> {
    let ok = match ty {
        Ty::Bool => v.is_boolean(),
        Ty::Int(min, max) => match v.as_i64() {
            Some(n) if n < min => return Err(format!("{name} must be at least {min}")),
            Some(n) if n > max => return Err(format!("{name} must be at most {max}")),
            Some(_) => true,
            None => false,
        },
        Ty::Str => v.is_string() || v.is_null(),
        Ty::Enum(allowed) => match v.as_str() {
            Some(s) if allowed.contains(&s) => true,
            Some(s) => return Err(format!("{name} must be one of {allowed:?}, not {s:?}")),
            None => false,
        },
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{name} has the wrong type"))
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` to Unix milliseconds.
fn parse_rfc3339_ms(t: &str) -> Option<u64> {
    let t = t.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut h = time.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000).max(0)).ok()
}

fn looks_like_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !s.contains(char::is_whitespace))
}

impl Tfe {
    pub fn new(behaviour: Behaviour, seed: u64) -> Tfe {
        let general = json!({
            "limit-user-organization-creation": true,
            "support-email-address": "support@hashicorp.com",
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
        let obj = |v: Value| match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Tfe {
            behaviour,
            boot: Instant::now(),
            users: vec![],
            tokens: vec![],
            general: obj(general),
            smtp: obj(smtp),
            saml: obj(saml),
            twilio: obj(twilio),
            orgs: vec![],
            pools: vec![],
            teams: vec![],
            test_mails: vec![],
            test_sms: vec![],
            initial_admin_attempts: 0,
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
        let created = now_ms();
        self.tokens.push(Token {
            value: value.clone(),
            id,
            kind,
            created_ms: created,
            expires_ms: created + TOKEN_LIFETIME_MS,
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
                let created = now_ms();
                let token_id = format!("at-{}", self.random(16));
                self.tokens.push(Token {
                    value: value.clone(),
                    id: token_id,
                    kind: TokenKind::User(id),
                    created_ms: created,
                    expires_ms: created + TOKEN_LIFETIME_MS,
                });
                value
            }
            None => self.issue_token(TokenKind::User(id)),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.boot.elapsed() >= self.behaviour.ready_after
    }

    /// Routes one request. `Response` is what TFE would answer.
    pub fn handle(&mut self, req: &Request) -> Response {
        let path = req.path.trim_end_matches('/');
        let m = req.method.as_str();
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
            ("GET", "/admin/retrieve-iact") => return self.retrieve_iact(req),
            ("POST", "/admin/initial-admin-user") => return self.initial_admin(req),
            ("GET", "/api/v2/ping") => {
                return Response::empty(204)
                    .with_header("X-TFE-Current-Version", &self.behaviour.version)
                    .with_header("TFP-API-Version", "2.6")
                    .with_header("TFP-AppName", "Terraform Enterprise")
                    .with_header("X-RateLimit-Limit", "30");
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
        if req.is_mutating() {
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
                None => not_found(),
            },
            (_, ["admin", ..]) if !site_admin => not_found(),
            ("GET", ["admin", kind]) => match self.settings(kind) {
                Some((map, schema, id, ty)) => {
                    Response::json(200, &settings_doc(id, ty, map, schema))
                }
                None => not_found(),
            },
            ("PATCH", ["admin", kind]) => self.patch_settings(kind, req),
            ("POST" | "PATCH", ["admin", "twilio-settings", "verify"]) => self.twilio_verify(req),
            (
                "POST" | "PUT",
                [
                    "admin",
                    "saml-settings",
                    "actions",
                    "revoke-old-certificate",
                ],
            ) => {
                self.saml.insert("old-idp-cert".into(), Value::Null);
                Response::json(
                    200,
                    &settings_doc("saml", "saml-settings", &self.saml, SAML),
                )
            }
            ("POST", ["organizations"]) => self.create_org(req, user.as_ref()),
            ("POST", ["teams", tid, "authentication-token"]) => {
                let Some(team) = self.teams.iter().find(|t| t.id == *tid).cloned() else {
                    return not_found();
                };
                let owner = match &tok.kind {
                    TokenKind::User(id) => {
                        site_admin
                            || self
                                .orgs
                                .iter()
                                .any(|o| o.name == team.org && o.owners.contains(id))
                    }
                    TokenKind::Organization(o) => *o == team.org,
                    TokenKind::Team(..) => false,
                };
                if !owner {
                    return not_found();
                }
                self.tokens
                    .retain(|t| !matches!(&t.kind, TokenKind::Team(id, _) if *id == team.id));
                let value = self.issue_token(TokenKind::Team(team.id.clone(), team.org.clone()));
                Response::json(
                    201,
                    &json!({"data": {"id": format!("at-team-{}", team.id), "type": "authentication-tokens",
                    "attributes": {"token": value}}}),
                )
            }
            ("POST", ["users", uid, "authentication-tokens"]) => {
                let allowed = user.as_ref().is_some_and(|u| u.id == *uid || u.site_admin);
                if !allowed || !self.users.iter().any(|u| u.id == *uid) {
                    return not_found();
                }
                let uid = uid.to_string();
                self.user_token(&uid, req)
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
                    ("GET", ["token-ttl-policies"]) => Response::json(200, &self.ttl_doc(idx)),
                    ("PATCH", ["token-ttl-policies"]) => {
                        let owner = matches!(&tok.kind, TokenKind::User(id) if self.orgs[idx].owners.contains(id));
                        if !owner {
                            return errors(
                                403,
                                "forbidden",
                                "User is not part of the owners team of the organization",
                            );
                        }
                        self.patch_ttl(idx, req)
                    }
                    ("POST", ["authentication-token"]) => self.org_token(&org),
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

    fn readiness(&self, req: &Request) -> Response {
        if self.behaviour.legacy_health {
            return Response::new(404, "text/html", "<html><body>404 Not Found</body></html>");
        }
        let ok = self.is_ready();
        let status = if ok { "OK" } else { "ERROR" };
        if req
            .header("accept")
            .is_some_and(|a| a.contains("text/plain") || a.contains("text/html"))
        {
            return Response::new(if ok { 200 } else { 503 }, "text/plain", status);
        }
        let checks: Vec<Value> = [
            "archivist",
            "atlas",
            "database",
            "disk",
            "redis",
            "task-worker",
            "vault",
        ]
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"check": c, "status": if ok || i < 3 { "OK" } else { "ERROR" }}))
        .collect();
        Response::plain_json(
            if ok { 200 } else { 503 },
            &json!({"node": "tfe-sim", "status": status, "checks": checks}),
        )
    }

    fn health_check(&self) -> Response {
        if !self.behaviour.legacy_health {
            return Response::new(410, "text/plain", "Gone: use /api/v1/health/readiness\n");
        }
        if self.is_ready() {
            Response::new(200, "application/json", r#"{"passed":true}"#)
        } else {
            Response::new(
                502,
                "text/html",
                "<html><body>502 Bad Gateway</body></html>",
            )
        }
    }

    fn retrieve_iact(&self, req: &Request) -> Response {
        let b = &self.behaviour;
        let in_subnet = b.iact_subnets.iter().any(|n| n.contains(&req.peer));
        let in_time = b.iact_time_limit.is_none_or(|l| self.boot.elapsed() < l);
        if in_subnet && in_time {
            Response::new(200, "text/plain", b.iact.clone())
        } else {
            Response::new(
                401,
                "text/html; charset=utf-8",
                "<html><body><h1>401 Unauthorized</h1></body></html>",
            )
        }
    }

    fn initial_admin(&mut self, req: &Request) -> Response {
        self.initial_admin_attempts += 1;
        let fail = |status: u16, msg: &str| {
            Response::plain_json(status, &json!({"status": "error", "error": msg}))
        };
        if req.query_param("token") != Some(self.behaviour.iact.as_str()) {
            return fail(
                404,
                "Unauthorized to perform action: invalid initial admin creation token",
            );
        }
        if !self.users.is_empty() {
            return fail(
                404,
                "Unauthorized to perform action: an initial admin user already exists",
            );
        }
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body) else {
            return fail(422, "request body must be a JSON object");
        };
        if let Some(k) = body
            .keys()
            .find(|k| !["username", "email", "password"].contains(&k.as_str()))
        {
            return fail(422, &format!("unknown attribute {k}"));
        }
        let get = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (username, email, password) = (get("username"), get("email"), get("password"));
        if username.is_empty() || email.is_empty() || password.is_empty() {
            return fail(422, "username, email and password are required");
        }
        if !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return fail(422, "username may contain only letters, numbers, - and _");
        }
        if !looks_like_email(&email) {
            return fail(422, "email is invalid");
        }
        if password.chars().count() < 10 {
            return fail(422, "password must be at least 10 characters long");
        }
        let id = format!("user-{}", self.random(16));
        self.users.push(User {
            id: id.clone(),
            username,
            email,
            site_admin: true,
        });
        let token = self.issue_token(TokenKind::User(id));
        Response::plain_json(200, &json!({"status": "created", "token": token}))
    }

    fn settings(&self, kind: &str) -> Option<SettingsRef<'_>> {
        Some(match kind {
            "general-settings" => (&self.general, GENERAL, "general", "general-settings"),
            "smtp-settings" => (&self.smtp, SMTP, "smtp", "smtp-settings"),
            "saml-settings" => (&self.saml, SAML, "saml", "saml-settings"),
            "twilio-settings" => (&self.twilio, TWILIO, "twilio", "twilio-settings"),
            _ => return None,
        })
    }

    fn patch_settings(&mut self, kind: &str, req: &Request) -> Response {
        let Some((current, schema, id, ty)) = self.settings(kind) else {
            return not_found();
        };
        let current = current.clone();
        let attrs = match body_attributes(req, ty) {
            Ok(a) => a,
            Err(r) => return r,
        };
        let mut next = current.clone();
        for (k, v) in &attrs {
            let Some(&(_, t, writable, _)) = schema.iter().find(|a| a.0 == k) else {
                return invalid(format!("unknown attribute {k:?} for {ty}"));
            };
            if !writable {
                return invalid(format!("attribute {k:?} of {ty} is read-only"));
            }
            if let Err(e) = check_type(k, t, v) {
                return invalid(e);
            }
            next.insert(k.clone(), v.clone());
        }
        let truthy =
            |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_bool) == Some(true);
        let present =
            |m: &Map<String, Value>, k: &str| m.get(k).is_some_and(|v| !v.is_null() && v != "");
        match id {
            "smtp" if truthy(&next, "enabled") => {
                for k in ["host", "port", "sender"] {
                    if !present(&next, k) {
                        return invalid(format!("{k} is required when SMTP is enabled"));
                    }
                }
                if !next
                    .get("sender")
                    .and_then(Value::as_str)
                    .is_some_and(looks_like_email)
                {
                    return invalid("sender must be an email address");
                }
                if matches!(
                    next.get("auth").and_then(Value::as_str),
                    Some("plain" | "login")
                ) {
                    for k in ["username", "password"] {
                        if !present(&next, k) {
                            return invalid(format!("{k} is required for auth {:?}", next["auth"]));
                        }
                    }
                }
            }
            "saml" if truthy(&next, "enabled") => {
                for k in ["idp-cert", "slo-endpoint-url", "sso-endpoint-url"] {
                    if !present(&next, k) {
                        return invalid(format!("{k} is required when SAML is enabled"));
                    }
                }
            }
            "twilio" if truthy(&next, "enabled") => {
                for k in ["account-sid", "auth-token", "from-number"] {
                    if !present(&next, k) {
                        return invalid(format!("{k} is required when Twilio is enabled"));
                    }
                }
            }
            _ => {}
        }
        if id == "smtp"
            && let Some(to) = next.remove("test-email-address")
        {
            if let Some(code) = self.behaviour.smtp_fail {
                let detail = match code {
                    401 => "SMTP user credentials are invalid",
                    504 => "SMTP server timed out",
                    _ => "SMTP server returned a server error",
                };
                return errors(code, "smtp error", detail);
            }
            if let Some(to) = to.as_str() {
                self.test_mails.push(to.to_string());
            }
        }
        if id == "saml"
            && attrs.contains_key("idp-cert")
            && current.get("idp-cert") != attrs.get("idp-cert")
        {
            let old = current.get("idp-cert").cloned().unwrap_or(Value::Null);
            next.insert("old-idp-cert".into(), old);
        }
        let stored = match id {
            "general" => &mut self.general,
            "smtp" => &mut self.smtp,
            "saml" => &mut self.saml,
            _ => &mut self.twilio,
        };
        *stored = next;
        Response::json(200, &settings_doc(id, ty, stored, schema))
    }

    fn twilio_verify(&mut self, req: &Request) -> Response {
        let attrs = match body_attributes(req, "") {
            Ok(a) => a,
            Err(r) => return r,
        };
        if self.twilio.get("enabled").and_then(Value::as_bool) != Some(true) {
            return errors(400, "bad request", "Twilio is not enabled");
        }
        match attrs.get("test-number").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => {
                self.test_sms.push(n.to_string());
                Response::empty(200)
            }
            _ => errors(400, "bad request", "test-number is required"),
        }
    }

    fn org_doc(&self, idx: usize) -> Value {
        let o = &self.orgs[idx];
        let pool = match &o.default_agent_pool {
            Some(id) => json!({"data": {"type": "agent-pools", "id": id}}),
            None => json!({"data": null}),
        };
        json!({"data": {
            "id": o.name, "type": "organizations",
            "attributes": {
                "name": o.name, "email": o.email, "created-at": o.created,
                "default-execution-mode": o.default_execution_mode,
                "max-ttl-enabled": o.max_ttl_enabled,
                "user-tokens-enabled": true,
                "collaborator-auth-policy": "password",
                "cost-estimation-enabled": false,
            },
            "relationships": {"default-agent-pool": pool},
        }})
    }

    fn create_org(&mut self, req: &Request, user: Option<&User>) -> Response {
        let Some(user) = user.cloned() else {
            return not_found();
        };
        let limited = self
            .general
            .get("limit-user-organization-creation")
            .and_then(Value::as_bool)
            == Some(true);
        if limited && !user.site_admin {
            return not_found();
        }
        let attrs = match body_attributes(req, "organizations") {
            Ok(a) => a,
            Err(r) => return r,
        };
        for k in attrs.keys() {
            if ![
                "name",
                "email",
                "default-execution-mode",
                "max-ttl-enabled",
                "collaborator-auth-policy",
            ]
            .contains(&k.as_str())
            {
                return invalid(format!("unknown attribute {k:?} for organizations"));
            }
        }
        let name = attrs.get("name").and_then(Value::as_str).unwrap_or("");
        let email = attrs.get("email").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() || name.contains('/') || name.contains(char::is_whitespace) {
            return invalid("name is invalid");
        }
        if !looks_like_email(email) {
            return invalid("email is invalid");
        }
        if self.orgs.iter().any(|o| o.name == name) {
            return invalid("Name has already been taken");
        }
        let mode = attrs
            .get("default-execution-mode")
            .and_then(Value::as_str)
            .unwrap_or("remote");
        if !["remote", "local"].contains(&mode) {
            return invalid("default-execution-mode must be remote or local on create");
        }
        self.orgs.push(Org {
            name: name.into(),
            email: email.into(),
            default_execution_mode: mode.into(),
            default_agent_pool: None,
            max_ttl_enabled: attrs
                .get("max-ttl-enabled")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            owners: vec![user.id.clone()],
            ttl: TOKEN_TYPES
                .iter()
                .map(|t| (t.to_string(), DEFAULT_TTL_MS))
                .collect(),
            created: rfc3339(SystemTime::now()),
        });
        let team_id = format!("team-{}", self.random(16));
        self.teams.push(Team {
            id: team_id,
            name: "owners".into(),
            org: name.into(),
        });
        Response::json(201, &self.org_doc(self.orgs.len() - 1))
    }

    fn patch_org(&mut self, idx: usize, req: &Request) -> Response {
        let body: Value = match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(_) => return errors(400, "bad request", "body is not JSON"),
        };
        let attrs = match body_attributes(req, "organizations") {
            Ok(a) => a,
            Err(r) => return r,
        };
        let mut next = self.orgs[idx].clone();
        let mut pool_given: Option<Option<String>> = None;
        for (k, v) in &attrs {
            match k.as_str() {
                "email" => match v.as_str() {
                    Some(e) if looks_like_email(e) => next.email = e.into(),
                    _ => return invalid("email is invalid"),
                },
                "default-execution-mode" => match v.as_str() {
                    Some(s @ ("remote" | "local" | "agent")) => {
                        next.default_execution_mode = s.into()
                    }
                    _ => {
                        return invalid(
                            "default-execution-mode must be one of remote, local, agent",
                        );
                    }
                },
                "max-ttl-enabled" => match v.as_bool() {
                    Some(b) => next.max_ttl_enabled = b,
                    None => return invalid("max-ttl-enabled must be a boolean"),
                },
                "default-agent-pool-id" => match v {
                    Value::Null => pool_given = Some(None),
                    Value::String(s) => pool_given = Some(Some(s.clone())),
                    _ => return invalid("default-agent-pool-id must be a string or null"),
                },
                _ => return invalid(format!("unknown attribute {k:?} for organizations")),
            }
        }
        if let Some(rels) = body["data"].get("relationships").and_then(Value::as_object) {
            for (k, v) in rels {
                if k != "default-agent-pool" {
                    return invalid(format!("unknown relationship {k:?} for organizations"));
                }
                match &v["data"] {
                    Value::Null => pool_given = Some(None),
                    d if d["type"] == "agent-pools" && d["id"].is_string() => {
                        pool_given = Some(d["id"].as_str().map(String::from));
                    }
                    _ => {
                        return invalid(
                            "relationships.default-agent-pool.data must be {type: agent-pools, id} or null",
                        );
                    }
                }
            }
        }
        if let Some(pool) = pool_given {
            if let Some(id) = &pool {
                if next.default_execution_mode != "agent" {
                    return invalid(
                        "default agent pool must not be specified unless using 'agent' execution mode",
                    );
                }
                if !self.pools.iter().any(|p| &p.id == id && p.org == next.name) {
                    return invalid(format!(
                        "agent pool {id} does not exist in organization {}",
                        next.name
                    ));
                }
            }
            next.default_agent_pool = pool;
        }
        if next.default_execution_mode != "agent" {
            next.default_agent_pool = None;
        } else if next.default_agent_pool.is_none() {
            return invalid("default agent pool is required when using 'agent' execution mode");
        }
        self.orgs[idx] = next;
        Response::json(200, &self.org_doc(idx))
    }

    fn pool_doc(p: &Pool) -> Value {
        json!({"id": p.id, "type": "agent-pools", "attributes": {
            "name": p.name, "organization-scoped": p.organization_scoped, "agent-count": 0}})
    }

    fn list_pools(&self, org: &str, req: &Request) -> Response {
        let q = req.query_param("q").unwrap_or("");
        let data: Vec<Value> = self
            .pools
            .iter()
            .filter(|p| p.org == org && p.name.contains(q))
            .map(Self::pool_doc)
            .collect();
        let n = data.len();
        Response::json(
            200,
            &json!({"data": data, "meta": {"pagination": {
            "current-page": 1, "next-page": null, "prev-page": null, "total-pages": 1, "total-count": n}}}),
        )
    }

    fn create_pool(&mut self, org: &str, req: &Request) -> Response {
        let attrs = match body_attributes(req, "agent-pools") {
            Ok(a) => a,
            Err(r) => return r,
        };
        for k in attrs.keys() {
            if !["name", "organization-scoped"].contains(&k.as_str()) {
                return invalid(format!("unknown attribute {k:?} for agent-pools"));
            }
        }
        let Some(name) = attrs
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            return invalid("name is required");
        };
        if self.pools.iter().any(|p| p.org == org && p.name == name) {
            return invalid("Name has already been taken");
        }
        let pool = Pool {
            id: format!("apool-{}", self.random(16)),
            name: name.into(),
            org: org.into(),
            organization_scoped: attrs
                .get("organization-scoped")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        };
        let doc = json!({"data": Self::pool_doc(&pool)});
        self.pools.push(pool);
        Response::json(201, &doc)
    }

    fn ttl_doc(&self, idx: usize) -> Value {
        let data: Vec<Value> = self.orgs[idx]
            .ttl
            .iter()
            .map(|(t, ms)| {
                json!({"id": format!("ttl-{t}"), "type": "organization-token-ttl-policies",
                "attributes": {"token-type": t, "max-ttl-ms": ms}})
            })
            .collect();
        json!({"data": data})
    }

    fn patch_ttl(&mut self, idx: usize, req: &Request) -> Response {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        if body["data"].is_array() {
            return invalid(
                "data must be an object with attributes.token-ttl-policies, not an array",
            );
        }
        let attrs = match body_attributes(req, "organization-token-ttl-policies") {
            Ok(a) => a,
            Err(r) => return r,
        };
        if let Some(k) = attrs.keys().find(|k| *k != "token-ttl-policies") {
            return invalid(format!(
                "unknown attribute {k:?} for organization-token-ttl-policies"
            ));
        }
        let Some(list) = attrs.get("token-ttl-policies").and_then(Value::as_array) else {
            return invalid("token-ttl-policies must be an array");
        };
        if list.is_empty() {
            return invalid("token-ttl-policies must not be empty");
        }
        let mut next = self.orgs[idx].ttl.clone();
        for p in list {
            let (Some(t), Some(ms)) = (p["token-type"].as_str(), p["max-ttl-ms"].as_u64()) else {
                return invalid(
                    "each policy needs token-type (string) and max-ttl-ms (positive integer)",
                );
            };
            if !TOKEN_TYPES.contains(&t) {
                return invalid(format!(
                    "token-type {t:?} is not one of organization, team, user, audit_trails"
                ));
            }
            if ms == 0 || p.as_object().is_some_and(|o| o.len() != 2) {
                return invalid(
                    "max-ttl-ms must be positive and policies take only token-type and max-ttl-ms",
                );
            }
            next.insert(t.into(), ms);
        }
        self.orgs[idx].ttl = next;
        Response::json(200, &self.ttl_doc(idx))
    }

    fn org_token(&mut self, org: &str) -> Response {
        self.tokens
            .retain(|t| t.kind != TokenKind::Organization(org.to_string()));
        let value = self.issue_token(TokenKind::Organization(org.to_string()));
        let t = self.tokens.last().cloned();
        let Some(t) = t else {
            return errors(500, "internal", "");
        };
        Response::json(
            201,
            &json!({"data": {"id": t.id, "type": "authentication-tokens", "attributes": {
            "token": value, "created-at": rfc3339(UNIX_EPOCH + Duration::from_millis(t.created_ms)),
            "expired-at": rfc3339(UNIX_EPOCH + Duration::from_millis(t.expires_ms)), "description": null}}}),
        )
    }

    /// `POST /api/v2/users/:id/authentication-tokens`: a new user token,
    /// optionally with `expired-at` (RFC 3339, UTC, in the future).
    fn user_token(&mut self, uid: &str, req: &Request) -> Response {
        let attrs = match body_attributes(req, "authentication-tokens") {
            Ok(a) => a,
            Err(r) => return r,
        };
        if let Some(k) = attrs
            .keys()
            .find(|k| !["description", "expired-at"].contains(&k.as_str()))
        {
            return invalid(format!("unknown attribute {k:?} for authentication-tokens"));
        }
        let now = now_ms();
        let expires = match attrs.get("expired-at") {
            None | Some(Value::Null) => now + TOKEN_LIFETIME_MS,
            Some(Value::String(t)) => match parse_rfc3339_ms(t) {
                Some(ms) if ms > now => ms,
                Some(_) => return invalid("expired-at must be in the future"),
                None => {
                    return invalid(
                        "expired-at must be an RFC 3339 time like 2026-01-02T03:04:05Z",
                    );
                }
            },
            Some(_) => return invalid("expired-at must be a string"),
        };
        let value = self.issue_token(TokenKind::User(uid.to_string()));
        let Some(t) = self.tokens.last_mut() else {
            return errors(500, "internal", "");
        };
        t.expires_ms = expires;
        let t = t.clone();
        Response::json(
            201,
            &json!({"data": {"id": t.id, "type": "authentication-tokens", "attributes": {
            "token": value, "description": attrs.get("description").cloned().unwrap_or(Value::Null),
            "created-at": rfc3339(UNIX_EPOCH + Duration::from_millis(t.created_ms)),
            "expired-at": rfc3339(UNIX_EPOCH + Duration::from_millis(t.expires_ms))}}}),
        )
    }

    /// With `max-ttl-enabled`, TFE rejects existing tokens whose lifetime
    /// exceeds the policy for their type.
    fn ttl_rejects(&self, tok: &Token, idx: usize) -> Option<Response> {
        let org = &self.orgs[idx];
        if !org.max_ttl_enabled {
            return None;
        }
        let ty = match tok.kind {
            TokenKind::User(_) => "user",
            TokenKind::Organization(_) => "organization",
            TokenKind::Team(..) => "team",
        };
        let limit = org.ttl.get(ty).copied().unwrap_or(DEFAULT_TTL_MS);
        (tok.expires_ms.saturating_sub(tok.created_ms) > limit).then(|| {
            errors(
                401,
                "unauthorized",
                "token lifetime exceeds the organization's maximum TTL",
            )
        })
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
            "tokens": self.tokens.iter().map(|t| json!({"token": t.value, "lifetime-ms": t.expires_ms.saturating_sub(t.created_ms), "kind": match &t.kind {
                TokenKind::User(u) => json!({"user": u}), TokenKind::Organization(o) => json!({"organization": o}),
                TokenKind::Team(t, o) => json!({"team": t, "organization": o})}})).collect::<Vec<_>>(),
            "initial-admin-attempts": self.initial_admin_attempts,
            "settings": {"general": self.general, "smtp": smtp, "saml": saml, "twilio": twilio},
            "test-mails": self.test_mails,
            "test-sms": self.test_sms,
            "organizations": self.orgs.iter().map(|o| json!({
                "name": o.name, "email": o.email, "default-execution-mode": o.default_execution_mode,
                "default-agent-pool": o.default_agent_pool.as_ref().and_then(|id| self.pools.iter().find(|p| &p.id == id)).map(|p| p.name.clone()),
                "default-agent-pool-id": o.default_agent_pool,
                "max-ttl-enabled": o.max_ttl_enabled, "token-ttl-policies": o.ttl,
            })).collect::<Vec<_>>(),
            "agent-pools": self.pools.iter().map(|p| json!({"id": p.id, "name": p.name, "organization": p.org})).collect::<Vec<_>>(),
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

fn settings_doc(id: &str, ty: &str, m: &Map<String, Value>, schema: &[Attr]) -> Value {
    let attrs: Map<String, Value> = m
        .iter()
        .filter(|(k, _)| !schema.iter().any(|a| a.0 == k.as_str() && a.3))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({"data": {"id": id, "type": ty, "attributes": attrs}})
}

fn user_doc(u: &User) -> Value {
    json!({"data": {"id": u.id, "type": "users", "attributes": {
        "username": u.username, "email": u.email, "is-site-admin": u.site_admin,
        "is-service-account": false, "two-factor": {"enabled": false, "verified": false},
        "avatar-url": "", "unconfirmed-email": null}}})
}
