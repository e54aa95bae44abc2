//! TFE endpoints, one function each, as go-tfe and the HashiCorp API docs
//! describe them (each function cites the file or page it follows). They
//! build bodies, pick the [`Replay`] class and decode answers; deciding what
//! to do with them is the steps' job.

use serde_json::{Map, Value, json};

use super::Method;
use super::{Body, Client, Replay, Response, TfeError};

/// The admin-settings singletons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsKind {
    General,
    /// Where today's TFE keeps `support-email-address` (go-tfe
    /// `AdminCustomizationSetting`); older installs have no such endpoint.
    Customization,
    Smtp,
    Saml,
    Twilio,
}

impl SettingsKind {
    pub fn path(self) -> &'static str {
        match self {
            SettingsKind::General => "/api/v2/admin/general-settings",
            SettingsKind::Customization => "/api/v2/admin/customization-settings",
            SettingsKind::Smtp => "/api/v2/admin/smtp-settings",
            SettingsKind::Saml => "/api/v2/admin/saml-settings",
            SettingsKind::Twilio => "/api/v2/admin/twilio-settings",
        }
    }
    pub fn json_type(self) -> &'static str {
        match self {
            SettingsKind::General => "general-settings",
            SettingsKind::Customization => "customization-settings",
            SettingsKind::Smtp => "smtp-settings",
            SettingsKind::Saml => "saml-settings",
            SettingsKind::Twilio => "twilio-settings",
        }
    }
}

impl SettingsKind {
    /// Attributes TFE never returns on a read (go-tfe's update options
    /// carry them, its read models do not): they cannot be confirmed.
    pub fn write_only(self) -> &'static [&'static str] {
        match self {
            SettingsKind::Smtp => &["password", "test-email-address"],
            SettingsKind::Saml => &["private-key"],
            SettingsKind::Twilio => &["auth-token"],
            SettingsKind::General | SettingsKind::Customization => &[],
        }
    }
}

/// Checks that TFE's answer holds every readable attribute that was sent,
/// with the value sent. A key TFE did not take is a [`TfeError::NotKept`]
/// naming it: never report "applied" for a value TFE does not hold.
pub fn confirm(
    method: Method,
    path: &str,
    sent: &Map<String, Value>,
    held: &Map<String, Value>,
    write_only: &[&str],
) -> Result<(), TfeError> {
    let keys: Vec<(String, Value, Value)> = sent
        .iter()
        .filter(|(k, _)| !write_only.contains(&k.as_str()))
        .filter(|(k, v)| held.get(*k) != Some(*v))
        .map(|(k, v)| {
            (
                k.clone(),
                v.clone(),
                held.get(k).cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    Err(TfeError::NotKept {
        method,
        path: path.into(),
        keys,
    })
}

/// Who a token belongs to (`GET /api/v2/account/details`).
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub site_admin: bool,
    /// The synthetic service user TFE answers for an organization or team
    /// token (account API docs; go-tfe `User.IsServiceAccount`).
    pub service: bool,
}

/// The parts of an organization the steps look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub name: String,
    pub email: String,
    pub default_execution_mode: String,
    pub default_agent_pool_id: Option<String>,
    pub max_ttl_enabled: Option<bool>,
    /// Every attribute as TFE answered it.
    pub attributes: Map<String, Value>,
}

fn decode_err(method: Method, path: &str, detail: impl Into<String>) -> TfeError {
    TfeError::Decode {
        method,
        path: path.into(),
        detail: detail.into(),
    }
}

fn json_of(resp: &Response, method: Method, path: &str) -> Result<Value, TfeError> {
    resp.json()
        .ok_or_else(|| decode_err(method, path, "the body is not JSON"))
}

/// `data.attributes` of a JSON:API document.
pub fn attributes<'a>(
    doc: &'a Value,
    method: Method,
    path: &str,
) -> Result<&'a Map<String, Value>, TfeError> {
    doc.get("data")
        .and_then(|d| d.get("attributes"))
        .and_then(Value::as_object)
        .ok_or_else(|| decode_err(method, path, "no data.attributes object"))
}

fn expiry_attrs(expired_at: Option<&str>) -> Value {
    match expired_at {
        Some(t) => json!({"expired-at": t}),
        None => json!({}),
    }
}

fn org_path(org: &str) -> String {
    format!("/api/v2/organizations/{}", segment(org))
}

/// One path segment, percent-encoded, with "." encoded too: a name such as
/// `..` must never become a dot-segment that a proxy resolves.
fn segment(s: &str) -> String {
    super::percent_encode(s).replace('.', "%2E")
}

impl Client {
    /// `GET /api/v1/health/readiness`, once (the wait loop does its own polling).
    pub fn readiness(&self) -> Result<Response, TfeError> {
        self.send(
            Method::Get,
            "/api/v1/health/readiness",
            &[],
            Body::None,
            Replay::Once,
        )
    }

    /// `GET /api/v2/ping`, once: HCP Terraform's readiness (it has no
    /// health endpoints; go-tfe's `NewClient` pings the same path).
    pub fn ping(&self) -> Result<Response, TfeError> {
        self.send(Method::Get, "/api/v2/ping", &[], Body::None, Replay::Once)
    }

    /// The readiness probe for `platform`: `/api/v2/ping` on HCP Terraform,
    /// `/api/v1/health/readiness` on Terraform Enterprise.
    pub fn ready_probe(&self, platform: crate::config::Platform) -> Result<Response, TfeError> {
        match platform {
            crate::config::Platform::Hcp => self.ping(),
            crate::config::Platform::Enterprise => self.readiness(),
        }
    }

    /// `GET /_health_check` (TFE < 1.2), once.
    pub fn health_check(&self) -> Result<Response, TfeError> {
        self.send(Method::Get, "/_health_check", &[], Body::None, Replay::Once)
    }

    /// `GET /admin/retrieve-iact`: the raw token, or the refusal as an error.
    pub fn retrieve_iact(&self) -> Result<String, TfeError> {
        let path = "/admin/retrieve-iact";
        let r = self.send(Method::Get, path, &[], Body::None, Replay::Safe)?;
        let token = r.body.trim().to_string();
        if token.is_empty() || token.contains(char::is_whitespace) || token.starts_with('<') {
            return Err(decode_err(Method::Get, path, "the answer is not a token"));
        }
        crate::redact::register(&token);
        Ok(token)
    }

    /// `POST /admin/initial-admin-user?token=IACT` (plain JSON). Returns the
    /// new admin's API token. Never retried after an ambiguous failure.
    pub fn create_initial_admin(
        &self,
        iact: &str,
        username: &str,
        email: &str,
        password: &str,
    ) -> Result<String, TfeError> {
        let path = "/admin/initial-admin-user";
        let body = json!({"username": username, "email": email, "password": password});
        let r = self.send(
            Method::Post,
            path,
            &[("token", iact)],
            Body::Json(&body),
            Replay::IfNotProcessed,
        )?;
        let v = json_of(&r, Method::Post, path)?;
        match (
            v.get("status").and_then(Value::as_str),
            v.get("token").and_then(Value::as_str),
        ) {
            (Some("created"), Some(t)) if !t.is_empty() => {
                crate::redact::register(t);
                Ok(t.to_string())
            }
            _ => Err(decode_err(
                Method::Post,
                path,
                "no \"created\" status with a token",
            )),
        }
    }

    /// `GET /api/v2/account/details`.
    pub fn account(&self) -> Result<Account, TfeError> {
        let path = "/api/v2/account/details";
        let r = self.send(Method::Get, path, &[], Body::None, Replay::Safe)?;
        let v = json_of(&r, Method::Get, path)?;
        let a = attributes(&v, Method::Get, path)?;
        Ok(Account {
            id: v["data"]["id"].as_str().unwrap_or_default().to_string(),
            username: a
                .get("username")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            site_admin: a
                .get("is-site-admin")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            service: a
                .get("is-service-account")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// `GET /api/v2/admin/<kind>`: the attributes.
    pub fn settings(&self, kind: SettingsKind) -> Result<Map<String, Value>, TfeError> {
        let r = self.send(Method::Get, kind.path(), &[], Body::None, Replay::Safe)?;
        let v = json_of(&r, Method::Get, kind.path())?;
        Ok(attributes(&v, Method::Get, kind.path())?.clone())
    }

    /// `PATCH /api/v2/admin/<kind>` with exactly these attributes. The SMTP
    /// PATCH is [`Replay::SideEffect`]: its 500/504 are about the SMTP server.
    ///
    /// The answer is the settings document: every readable attribute sent
    /// is confirmed in it ([`confirm`]).
    pub fn patch_settings(
        &self,
        kind: SettingsKind,
        attrs: &Map<String, Value>,
    ) -> Result<(), TfeError> {
        let body = json!({"data": {"type": kind.json_type(), "attributes": attrs}});
        let replay = if kind == SettingsKind::Smtp {
            Replay::SideEffect
        } else {
            Replay::Idempotent
        };
        let r = self.send(
            Method::Patch,
            kind.path(),
            &[],
            Body::JsonApi(&body),
            replay,
        )?;
        let v = json_of(&r, Method::Patch, kind.path())?;
        let held = attributes(&v, Method::Patch, kind.path())?;
        confirm(Method::Patch, kind.path(), attrs, held, kind.write_only())
    }

    /// Sends `method` to `path`; when TFE answers 404 or 405 (an install that
    /// has the endpoint under the other verb), sends `fallback` instead.
    fn send_either(
        &self,
        (method, fallback): (Method, Method),
        path: &str,
        body: Body<'_>,
        replay: Replay,
    ) -> Result<Response, TfeError> {
        match self.send(method, path, &[], body, replay) {
            Err(e) if matches!(e.status(), Some(404 | 405)) => {
                self.send(fallback, path, &[], body, replay)
            }
            other => other,
        }
    }

    /// `POST /api/v2/admin/twilio-settings/verify` (sends one SMS), as
    /// today's docs have it; on 404/405, `PATCH` as go-tfe v1 sends it (older
    /// installs). A 404 means nothing was sent, so the fallback cannot make a
    /// second SMS.
    pub fn twilio_verify(&self, test_number: &str) -> Result<(), TfeError> {
        let body = json!({"data": {"attributes": {"test-number": test_number}}});
        self.send_either(
            (Method::Post, Method::Patch),
            "/api/v2/admin/twilio-settings/verify",
            Body::JsonApi(&body),
            Replay::IfNotProcessed,
        )?;
        Ok(())
    }

    /// `POST /api/v2/admin/saml-settings/actions/revoke-old-certificate`
    /// (today's docs, go-tfe `RevokeIdpCert`, pytfe `revoke_idp_cert`); on
    /// 404/405, `PUT` as the older PTFE "Settings API" page (admin-settings-api.txt) has it.
    pub fn saml_revoke_old_cert(&self) -> Result<(), TfeError> {
        self.send_either(
            (Method::Post, Method::Put),
            "/api/v2/admin/saml-settings/actions/revoke-old-certificate",
            Body::None,
            Replay::Idempotent,
        )?;
        Ok(())
    }

    fn decode_org(v: &Value, method: Method, path: &str) -> Result<Organization, TfeError> {
        let a = attributes(v, method, path)?;
        let s = |k: &str| {
            a.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(Organization {
            name: s("name"),
            email: s("email"),
            default_execution_mode: s("default-execution-mode"),
            default_agent_pool_id: v["data"]["relationships"]["default-agent-pool"]["data"]["id"]
                .as_str()
                .map(String::from),
            max_ttl_enabled: a.get("max-ttl-enabled").and_then(Value::as_bool),
            attributes: a.clone(),
        })
    }

    /// `GET /api/v2/organizations/:name`; `Ok(None)` on 404.
    pub fn organization(&self, name: &str) -> Result<Option<Organization>, TfeError> {
        let path = org_path(name);
        match self.send(Method::Get, &path, &[], Body::None, Replay::Safe) {
            Ok(r) => Ok(Some(Self::decode_org(
                &json_of(&r, Method::Get, &path)?,
                Method::Get,
                &path,
            )?)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /api/v2/organizations`.
    pub fn create_organization(&self, name: &str, email: &str) -> Result<Organization, TfeError> {
        let path = "/api/v2/organizations";
        let body = json!({"data": {"type": "organizations", "attributes": {"name": name, "email": email}}});
        let r = self.send(
            Method::Post,
            path,
            &[],
            Body::JsonApi(&body),
            Replay::IfNotProcessed,
        )?;
        Self::decode_org(&json_of(&r, Method::Post, path)?, Method::Post, path)
    }

    /// `PATCH /api/v2/organizations/:name` with these attributes and, when
    /// given, the `default-agent-pool` relationship (`Some(None)` clears it).
    pub fn patch_organization(
        &self,
        name: &str,
        attrs: Map<String, Value>,
        pool: Option<Option<&str>>,
    ) -> Result<Organization, TfeError> {
        let path = org_path(name);
        let mut data = json!({"type": "organizations", "attributes": attrs});
        if let Some(pool) = pool {
            let rel = match pool {
                Some(id) => json!({"data": {"type": "agent-pools", "id": id}}),
                None => json!({"data": null}),
            };
            data["relationships"] = json!({"default-agent-pool": rel});
        }
        let body = json!({"data": data});
        let r = self.send(
            Method::Patch,
            &path,
            &[],
            Body::JsonApi(&body),
            Replay::Idempotent,
        )?;
        let v = json_of(&r, Method::Patch, &path)?;
        confirm(
            Method::Patch,
            &path,
            &attrs,
            attributes(&v, Method::Patch, &path)?,
            &[],
        )?;
        let org = Self::decode_org(&v, Method::Patch, &path)?;
        if let Some(want) = pool
            && org.default_agent_pool_id.as_deref() != want
        {
            return Err(TfeError::NotKept {
                method: Method::Patch,
                path,
                keys: vec![(
                    "default-agent-pool".into(),
                    json!(want),
                    json!(org.default_agent_pool_id),
                )],
            });
        }
        Ok(org)
    }

    /// Finds an agent pool by exact name. `q` is a substring search and the
    /// list is paginated (20 a page by default), so every page is read until
    /// the exact name turns up or `next-page` is null.
    pub fn find_agent_pool(&self, org: &str, name: &str) -> Result<Option<String>, TfeError> {
        let path = format!("{}/agent-pools", org_path(org));
        let mut page = 1u64;
        loop {
            let number = page.to_string();
            let query = [("q", name), ("page[number]", number.as_str())];
            let r = self.send(Method::Get, &path, &query, Body::None, Replay::Safe)?;
            let v = json_of(&r, Method::Get, &path)?;
            let list = v["data"]
                .as_array()
                .ok_or_else(|| decode_err(Method::Get, &path, "data is not a list"))?;
            if let Some(id) = list
                .iter()
                .find(|t| t["attributes"]["name"].as_str() == Some(name))
                .and_then(|t| t["id"].as_str())
            {
                return Ok(Some(id.to_string()));
            }
            match v["meta"]["pagination"]["next-page"].as_u64() {
                Some(next) if next > page && !list.is_empty() => page = next,
                _ => return Ok(None),
            }
        }
    }

    /// `POST .../agent-pools`: the new pool's id.
    pub fn create_agent_pool(&self, org: &str, name: &str) -> Result<String, TfeError> {
        let path = format!("{}/agent-pools", org_path(org));
        let body = json!({"data": {"type": "agent-pools", "attributes": {"name": name, "organization-scoped": true}}});
        let r = self.send(
            Method::Post,
            &path,
            &[],
            Body::JsonApi(&body),
            Replay::IfNotProcessed,
        )?;
        let v = json_of(&r, Method::Post, &path)?;
        v["data"]["id"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| decode_err(Method::Post, &path, "no data.id"))
    }

    /// `GET .../token-ttl-policies`: `token-type` → `max-ttl-ms`.
    pub fn token_ttl_policies(&self, org: &str) -> Result<Map<String, Value>, TfeError> {
        let path = format!("{}/token-ttl-policies", org_path(org));
        let r = self.send(Method::Get, &path, &[], Body::None, Replay::Safe)?;
        Self::decode_ttl(&json_of(&r, Method::Get, &path)?, Method::Get, &path)
    }

    fn decode_ttl(v: &Value, method: Method, path: &str) -> Result<Map<String, Value>, TfeError> {
        let list = v["data"]
            .as_array()
            .ok_or_else(|| decode_err(method, path, "data is not a list"))?;
        Ok(list
            .iter()
            .filter_map(|p| {
                let a = &p["attributes"];
                Some((
                    a["token-type"].as_str()?.to_string(),
                    a["max-ttl-ms"].clone(),
                ))
            })
            .collect())
    }

    /// `PATCH .../token-ttl-policies` in the object form (go-tfe, provider, OpenAPI).
    pub fn patch_token_ttl_policies(
        &self,
        org: &str,
        policies: &[(&str, u64)],
    ) -> Result<(), TfeError> {
        let path = format!("{}/token-ttl-policies", org_path(org));
        let list: Vec<Value> = policies
            .iter()
            .map(|(t, ms)| json!({"token-type": t, "max-ttl-ms": ms}))
            .collect();
        let body = json!({"data": {"type": "organization-token-ttl-policies", "attributes": {"token-ttl-policies": list}}});
        let r = self.send(
            Method::Patch,
            &path,
            &[],
            Body::JsonApi(&body),
            Replay::Idempotent,
        )?;
        let held = Self::decode_ttl(&json_of(&r, Method::Patch, &path)?, Method::Patch, &path)?;
        let sent: Map<String, Value> = policies
            .iter()
            .map(|(t, ms)| (t.to_string(), json!(ms)))
            .collect();
        confirm(Method::Patch, &path, &sent, &held, &[])
    }

    /// `POST /api/v2/users/:id/authentication-tokens`: a new token for the
    /// user, expiring at `expired_at` (RFC 3339). Returns the token.
    pub fn create_user_token(
        &self,
        user_id: &str,
        description: &str,
        expired_at: Option<&str>,
    ) -> Result<Minted, TfeError> {
        let path = format!("/api/v2/users/{}/authentication-tokens", segment(user_id));
        let mut attrs = expiry_attrs(expired_at);
        attrs["description"] = json!(description);
        self.mint(&path, "authentication-tokens", attrs)
    }

    /// `POST /api/v2/teams/:id/authentication-tokens` (plural): a described
    /// team token, one of many a team may hold, so the team's other tokens
    /// stay valid (pytfe `team_tokens.py` `create_with_options`; go-tfe
    /// `team_token.go`). Installs that predate it answer 404.
    pub fn create_described_team_token(
        &self,
        team_id: &str,
        description: &str,
        expired_at: Option<&str>,
    ) -> Result<Minted, TfeError> {
        let path = format!("/api/v2/teams/{}/authentication-tokens", segment(team_id));
        let mut attrs = expiry_attrs(expired_at);
        attrs["description"] = json!(description);
        // Not replayed after a lost answer: the same description would be
        // refused as taken; the caller's token still works, and a rerun
        // mints with a new description.
        self.mint_with(
            &path,
            "authentication-tokens",
            attrs,
            Replay::IfNotProcessed,
        )
    }

    /// `DELETE /api/v2/authentication-tokens/:id`: revokes a user, agent or
    /// described team token by id (go-tfe `user_token.go`, `agent_token.go`;
    /// pytfe `team_tokens.py` `delete_by_id`). `Ok(false)`: it was already
    /// gone (404).
    pub fn delete_token(&self, id: &str) -> Result<bool, TfeError> {
        self.delete(&format!("/api/v2/authentication-tokens/{}", segment(id)))
    }

    /// `DELETE /api/v2/teams/:id/authentication-token`: revokes the team's
    /// legacy (undescribed) token (go-tfe `team_token.go` `Delete`).
    /// `Ok(false)`: it had none.
    pub fn delete_legacy_team_token(&self, team_id: &str) -> Result<bool, TfeError> {
        self.delete(&format!(
            "/api/v2/teams/{}/authentication-token",
            segment(team_id)
        ))
    }

    fn delete(&self, path: &str) -> Result<bool, TfeError> {
        match self.send(Method::Delete, path, &[], Body::None, Replay::Idempotent) {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The id of the owners team of `org`.
    pub fn owners_team(&self, org: &str) -> Result<String, TfeError> {
        self.find_team(org, "owners")?
            .ok_or_else(|| TfeError::Decode {
                method: Method::Get,
                path: format!("/api/v2/organizations/{org}/teams"),
                detail: "the organization has no owners team".into(),
            })
    }

    /// The id of the team named `name` (`GET .../teams?filter[names]=`).
    pub fn find_team(&self, org: &str, name: &str) -> Result<Option<String>, TfeError> {
        self.find_id_by_name(
            &format!("{}/teams", org_path(org)),
            ("filter[names]", name),
            name,
        )
    }

    /// GETs the list at `path` filtered by `query` and returns the id of the
    /// item whose `attributes.name` is exactly `name` (filters may match more).
    fn find_id_by_name(
        &self,
        path: &str,
        query: (&str, &str),
        name: &str,
    ) -> Result<Option<String>, TfeError> {
        let r = self.send(Method::Get, path, &[query], Body::None, Replay::Safe)?;
        let v = json_of(&r, Method::Get, path)?;
        let list = v["data"]
            .as_array()
            .ok_or_else(|| decode_err(Method::Get, path, "data is not a list"))?;
        Ok(list
            .iter()
            .find(|t| t["attributes"]["name"].as_str() == Some(name))
            .and_then(|t| t["id"].as_str())
            .map(String::from))
    }

    /// `POST /api/v2/teams/:id/authentication-token`: mints the team's token
    /// (invalidating the previous one), expiring at `expired_at` (RFC 3339)
    /// when given. Type `authentication-token` (team-tokens docs, pytfe).
    pub fn create_team_token(
        &self,
        team_id: &str,
        expired_at: Option<&str>,
    ) -> Result<String, TfeError> {
        let path = format!("/api/v2/teams/{}/authentication-token", segment(team_id));
        self.mint_token(&path, "authentication-token", expiry_attrs(expired_at))
    }

    /// POSTs a document of `type_` with `attributes` to `path` and returns
    /// the `token` of the answer (shown this once by TFE).
    fn mint_token(&self, path: &str, type_: &str, attributes_: Value) -> Result<String, TfeError> {
        self.mint(path, type_, attributes_).map(|m| m.token)
    }

    /// The same, with the new token's id.
    fn mint(&self, path: &str, type_: &str, attributes_: Value) -> Result<Minted, TfeError> {
        self.mint_with(path, type_, attributes_, Replay::Regenerate)
    }

    fn mint_with(
        &self,
        path: &str,
        type_: &str,
        attributes_: Value,
        replay: Replay,
    ) -> Result<Minted, TfeError> {
        let body = json!({"data": {"type": type_, "attributes": attributes_}});
        let r = self.send(Method::Post, path, &[], Body::JsonApi(&body), replay)?;
        let v = json_of(&r, Method::Post, path)?;
        let token = attributes(&v, Method::Post, path)?
            .get("token")
            .and_then(Value::as_str)
            .inspect(|t| crate::redact::register(t))
            .map(String::from)
            .ok_or_else(|| decode_err(Method::Post, path, "no token in the answer"))?;
        Ok(Minted {
            id: v["data"]["id"].as_str().map(String::from),
            token,
        })
    }

    /// `POST .../authentication-token`: mints the organization token
    /// (invalidating the previous one), expiring at `expired_at` when given
    /// (go-tfe `OrganizationTokenCreateOptions.ExpiredAt`). Returns the token.
    pub fn create_org_token(
        &self,
        org: &str,
        expired_at: Option<&str>,
    ) -> Result<String, TfeError> {
        self.mint_token(
            &format!("{}/authentication-token", org_path(org)),
            "authentication-token",
            expiry_attrs(expired_at),
        )
    }

    /// `POST /api/v2/agent-pools/:id/authentication-tokens`: a new agent
    /// token for the pool, shown this once (API docs "Agent Tokens"; go-tfe
    /// `agent_token.go`). Returns its id and value. A pool holds many, so
    /// a retry after a lost answer only leaves an unused token.
    pub fn create_agent_token(
        &self,
        pool_id: &str,
        description: &str,
    ) -> Result<(String, String), TfeError> {
        let path = format!(
            "/api/v2/agent-pools/{}/authentication-tokens",
            segment(pool_id)
        );
        // go-tfe `agent_token.go`: the request type is `agent-tokens`.
        let body =
            json!({"data": {"type": "agent-tokens", "attributes": {"description": description}}});
        let r = self.send(
            Method::Post,
            &path,
            &[],
            Body::JsonApi(&body),
            Replay::Regenerate,
        )?;
        let v = json_of(&r, Method::Post, &path)?;
        let token = attributes(&v, Method::Post, &path)?
            .get("token")
            .and_then(Value::as_str)
            .inspect(|t| crate::redact::register(t))
            .map(String::from)
            .ok_or_else(|| decode_err(Method::Post, &path, "no token in the answer"))?;
        let id = v["data"]["id"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| decode_err(Method::Post, &path, "no id in the answer"))?;
        Ok((id, token))
    }

    /// The ids of the pool's agent tokens (`GET .../authentication-tokens`;
    /// values are never listed).
    pub fn agent_token_ids(&self, pool_id: &str) -> Result<Vec<String>, TfeError> {
        let path = format!(
            "/api/v2/agent-pools/{}/authentication-tokens",
            segment(pool_id)
        );
        let r = self.send(Method::Get, &path, &[], Body::None, Replay::Safe)?;
        let v = json_of(&r, Method::Get, &path)?;
        Ok(v["data"]
            .as_array()
            .ok_or_else(|| decode_err(Method::Get, &path, "data is not a list"))?
            .iter()
            .filter_map(|t| t["id"].as_str().map(String::from))
            .collect())
    }

    /// `GET .../organizations/:org/authentication-token`: whether the
    /// organization has a token, and its lifetime (go-tfe
    /// `organization_token.go` `Read`); `None` on 404.
    pub fn org_token_meta(&self, org: &str) -> Result<Option<TokenMeta>, TfeError> {
        self.token_meta(&format!("{}/authentication-token", org_path(org)))
    }

    /// `GET /api/v2/teams/:id/authentication-token` (go-tfe
    /// `team_token.go` `Read`); `None` on 404.
    pub fn team_token_meta(&self, team_id: &str) -> Result<Option<TokenMeta>, TfeError> {
        self.token_meta(&format!(
            "/api/v2/teams/{}/authentication-token",
            segment(team_id)
        ))
    }

    fn token_meta(&self, path: &str) -> Result<Option<TokenMeta>, TfeError> {
        match self.send(Method::Get, path, &[], Body::None, Replay::Safe) {
            Ok(r) => {
                let v = json_of(&r, Method::Get, path)?;
                let a = attributes(&v, Method::Get, path)?;
                let at = |k: &str| {
                    a.get(k)
                        .and_then(Value::as_str)
                        .and_then(crate::util::parse_rfc3339_ms)
                        .map(|ms| ms / 1000)
                };
                Ok(Some(TokenMeta {
                    created_unix: at("created-at"),
                    expires_unix: at("expired-at"),
                }))
            }
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A token just minted: its value (shown this once) and its id, when the
/// answer carries one.
#[derive(Debug, Clone)]
pub struct Minted {
    pub id: Option<String>,
    pub token: String,
}

/// A service token's metadata (TFE never shows its value again).
#[derive(Debug, Clone, Copy)]
pub struct TokenMeta {
    pub created_unix: Option<u64>,
    pub expires_unix: Option<u64>,
}
