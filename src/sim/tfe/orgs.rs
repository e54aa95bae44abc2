//! Organizations, agent pools and the token TTL policies.

use serde_json::{Value, json};

use super::*;
use crate::sim::http::{Request, Response};

impl Tfe {
    pub(super) fn org_doc(&self, idx: usize) -> Value {
        let o = &self.orgs[idx];
        let pool = match &o.default_agent_pool {
            Some(id) => json!({"data": {"type": "agent-pools", "id": id}}),
            None => json!({"data": null}),
        };
        let mut doc = json!({"data": {
            "id": o.name, "type": "organizations",
            "attributes": {
                "name": o.name, "email": o.email, "created-at": o.created,
                "default-execution-mode": o.default_execution_mode,
                "max-ttl-enabled": o.max_ttl_enabled,
                "user-tokens-enabled": true,
                "cost-estimation-enabled": false,
            },
            "relationships": {"default-agent-pool": pool},
        }});
        for (k, v) in &o.security {
            doc["data"]["attributes"][k] = v.clone();
        }
        doc
    }

    pub(super) fn create_org(&mut self, req: &Request, user: Option<&User>) -> Response {
        let Some(user) = user.cloned() else {
            return not_found();
        };
        // `limit-user-organization-creation` is a TFE admin setting
        // (settings API docs, general settings). HCP Terraform has no admin
        // settings (go-tfe `tfe.go`, `Admin`: "do not function against HCP
        // Terraform"), so nothing limits a user there; that any user may
        // create an organization on HCP Terraform is from its organizations
        // docs as remembered, not checked against the page here. A team or
        // organization token creates none (no `user`, above).
        let limited = !self.behaviour.hcp
            && self
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
        let mut kept = Map::new();
        for (k, v) in &attrs {
            if ["name", "email", "default-execution-mode", "max-ttl-enabled"].contains(&k.as_str())
            {
                continue;
            }
            match other_attribute(k, v) {
                Some(Ok(v)) => {
                    kept.insert(k.clone(), v);
                }
                Some(Err(e)) => return invalid(e),
                None => return invalid(format!("unknown attribute {k:?} for organizations")),
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
        let max_ttl = attrs
            .get("max-ttl-enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let idx = self.insert_org(name, email, mode, max_ttl, &user.id);
        self.orgs[idx].security.extend(kept);
        Response::json(201, &self.org_doc(idx))
    }

    /// Adds an organization owned by `owner` (a user id), with its owners
    /// team, as creating one does: the creator owns it and every
    /// organization has an `owners` team (teams docs; go-tfe's team tests
    /// look the team up by the name "owners"). Paraphrased, not quoted.
    /// Returns its index.
    pub fn insert_org(
        &mut self,
        name: &str,
        email: &str,
        mode: &str,
        max_ttl_enabled: bool,
        owner: &str,
    ) -> usize {
        self.orgs.push(Org {
            name: name.into(),
            email: email.into(),
            default_execution_mode: mode.into(),
            default_agent_pool: None,
            max_ttl_enabled,
            // TFE's defaults as the UI shows them (two weeks for both);
            // not confirmed against a docs page.
            security: [
                ("collaborator-auth-policy".to_string(), json!("password")),
                ("session-timeout".to_string(), json!(20160)),
                ("session-remember".to_string(), json!(20160)),
            ]
            .into_iter()
            .collect(),
            owners: vec![owner.to_string()],
            ttl: TOKEN_TYPES
                .iter()
                .map(|t| (t.to_string(), DEFAULT_TTL_MS))
                .collect(),
            created: self.now_rfc3339(),
        });
        let team_id = format!("team-{}", self.random(16));
        self.teams.push(Team {
            id: team_id,
            name: "owners".into(),
            org: name.into(),
        });
        self.orgs.len() - 1
    }

    pub(super) fn patch_org(&mut self, idx: usize, req: &Request) -> Response {
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
                _ => match other_attribute(k, v) {
                    Some(Ok(v)) => {
                        next.security.insert(k.clone(), v);
                    }
                    Some(Err(e)) => return invalid(e),
                    None => return invalid(format!("unknown attribute {k:?} for organizations")),
                },
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

    pub(super) fn pool_doc(p: &Pool) -> Value {
        json!({"id": p.id, "type": "agent-pools", "attributes": {
            "name": p.name, "organization-scoped": p.organization_scoped, "agent-count": 0}})
    }

    /// `GET .../agent-pools`: `q` is a substring search on the name, and the
    /// list is paginated, 20 a page unless `page[size]` says otherwise (at
    /// most 100), pages from `page[number]` = 1 (TFE API docs, "Pagination";
    /// go-tfe `agent_pool.go` `AgentPoolListOptions{ListOptions, Query}`).
    pub(super) fn list_pools(&self, org: &str, req: &Request) -> Response {
        let q = req.query_param("q").unwrap_or("");
        let num = |k: &str, default: usize| match req.query_param(k) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or(()),
        };
        let (Ok(page), Ok(size)) = (num("page[number]", 1), num("page[size]", 20)) else {
            return errors(
                400,
                "bad request",
                "page[number] and page[size] must be positive integers",
            );
        };
        let size = size.min(100);
        let all: Vec<Value> = self
            .pools
            .iter()
            .filter(|p| p.org == org && p.name.contains(q))
            .map(Self::pool_doc)
            .collect();
        let total = all.len();
        let pages = total.div_ceil(size).max(1);
        let data: Vec<Value> = all.into_iter().skip((page - 1) * size).take(size).collect();
        let next = (page < pages).then_some(page + 1);
        let prev = (page > 1).then(|| page - 1);
        Response::json(
            200,
            &json!({"data": data, "meta": {"pagination": {
            "current-page": page, "page-size": size, "next-page": next, "prev-page": prev,
            "total-pages": pages, "total-count": total}}}),
        )
    }

    pub(super) fn create_pool(&mut self, org: &str, req: &Request) -> Response {
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

    pub(super) fn ttl_doc(&self, idx: usize) -> Value {
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

    pub(super) fn patch_ttl(&mut self, idx: usize, req: &Request) -> Response {
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

    /// With `max-ttl-enabled`, TFE rejects existing tokens whose lifetime
    /// exceeds the policy for their type: "When you enable this option, HCP
    /// Terraform automatically rejects any existing token that exceeds your
    /// configured TTL" (TFE 2.0.x organizations settings docs, "Maximum Time
    /// to Live"); the provider's `tfe_org_max_token_ttl_policy` docs: such
    /// tokens "will stop working and return an unauthorized error". A user
    /// token is refused for this organization's resources; an organization or
    /// team token everywhere (the router checks it on every request).
    pub(super) fn ttl_rejects(&self, tok: &Token, idx: usize) -> Option<Response> {
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
}

/// Agent tokens. Sources: TFE API docs "Agent Tokens" (agent-tokens.mdx):
/// `POST /agent-pools/:id/authentication-tokens` with type `agent-tokens`
/// and a `description` creates one and shows its
/// `token` once; `GET` on the same path lists the pool's tokens without
/// their values; `DELETE /authentication-tokens/:id` revokes one. go-tfe
/// `agent_token.go` (`AgentTokenCreateOptions.Description` is required;
/// `AgentToken` has `id`, `created-at`, `description`, `last-used-at`,
/// `token`); terraform-provider-tfe `resource_tfe_agent_token.go`. A pool
/// may hold many tokens. Managing them takes a site admin or an owner of
/// the pool's organization.
impl Tfe {
    fn may_manage_pool(&self, tok: &Token, site_admin: bool, pool: &str) -> Option<String> {
        let org = self.pools.iter().find(|p| p.id == pool)?.org.clone();
        let ok = site_admin
            || match &tok.kind {
                TokenKind::User(id) => self
                    .orgs
                    .iter()
                    .any(|o| o.name == org && o.owners.contains(id)),
                TokenKind::Organization(o) | TokenKind::Team(_, o) => *o == org,
            };
        ok.then_some(org)
    }

    fn agent_token_doc(t: &AgentToken, with_value: bool) -> Value {
        let mut attrs =
            json!({"created-at": t.created, "description": t.description, "last-used-at": null});
        if with_value {
            attrs["token"] = json!(t.value);
        }
        json!({"id": t.id, "type": "authentication-tokens", "attributes": attrs})
    }

    pub(super) fn agent_tokens_of(
        &mut self,
        tok: &Token,
        site_admin: bool,
        pool: &str,
        req: &Request,
    ) -> Response {
        if self.may_manage_pool(tok, site_admin, pool).is_none() {
            return not_found();
        }
        match req.method.as_str() {
            "GET" => {
                let data: Vec<Value> = self
                    .agent_tokens
                    .iter()
                    .filter(|t| t.pool == pool)
                    .map(|t| Self::agent_token_doc(t, false))
                    .collect();
                Response::json(200, &json!({"data": data}))
            }
            "POST" => {
                // The request's type is `agent-tokens` (go-tfe
                // `agent_token.go`: `AgentTokenCreateOptions.Type` is
                // `primary,agent-tokens`; the API docs' example payload
                // too), the answer's `authentication-tokens`. Not knowing
                // how strict TFE is about it, both are accepted.
                let attrs = match body_attributes(req, "agent-tokens")
                    .or_else(|_| body_attributes(req, "authentication-tokens"))
                {
                    Ok(a) => a,
                    Err(r) => return r,
                };
                let Some(description) = attrs
                    .get("description")
                    .and_then(Value::as_str)
                    .filter(|d| !d.is_empty())
                else {
                    return invalid("description is required");
                };
                let t = AgentToken {
                    id: format!("at-{}", self.random(16)),
                    pool: pool.to_string(),
                    description: description.to_string(),
                    value: format!("{}.atlasv1.{}", self.random(14), self.random(60)),
                    created: self.now_rfc3339(),
                };
                let doc = Self::agent_token_doc(&t, true);
                self.agent_tokens.push(t);
                Response::json(201, &json!({"data": doc}))
            }
            _ => errors(405, "method not allowed", ""),
        }
    }

    pub(super) fn delete_agent_token(
        &mut self,
        tok: &Token,
        site_admin: bool,
        id: &str,
    ) -> Response {
        let Some(pool) = self
            .agent_tokens
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.pool.clone())
        else {
            return not_found();
        };
        if self.may_manage_pool(tok, site_admin, &pool).is_none() {
            return not_found();
        }
        self.agent_tokens.retain(|t| t.id != id);
        Response::empty(204)
    }
}

/// The other attributes an organization create or update may carry, as
/// go-tfe's `OrganizationCreateOptions` / `OrganizationUpdateOptions` send
/// them (`organization.go`; TFE takes them): `Some(Ok(value kept))`,
/// `Some(Err(why))` for a value of the wrong kind, `None` for a name no
/// source gives (422, as TFE answers an unknown attribute).
fn other_attribute(k: &str, v: &Value) -> Option<Result<Value, String>> {
    Some(match k {
        // Organizations API docs, "Update an Organization":
        // `password` or `two_factor_mandatory`.
        "collaborator-auth-policy" => match v.as_str() {
            Some(p @ ("password" | "two_factor_mandatory")) => Ok(json!(p)),
            _ => Err("collaborator-auth-policy must be password or two_factor_mandatory".into()),
        },
        // The same page: minutes, integers (go-tfe `SessionTimeout`,
        // `SessionRemember` are ints; terraform-cloud-mcp's
        // `update_organization`, written from that page: "session timeout
        // after inactivity in minutes", "total expiration time in
        // minutes"). Bounds are not in our sources.
        "session-timeout" | "session-remember" => match v.as_u64() {
            Some(n) if n > 0 => Ok(json!(n)),
            _ => Err(format!("{k} must be a positive number of minutes")),
        },
        "assessments-enforced"
        | "cost-estimation-enabled"
        | "send-passing-statuses-for-untriggered-speculative-plans"
        | "aggregated-commit-status-enabled"
        | "speculative-plan-management-enabled"
        | "allow-force-delete-workspaces"
        | "stacks-enabled" => match v {
            Value::Bool(_) => Ok(v.clone()),
            _ => Err(format!("{k} must be a boolean")),
        },
        "owners-team-saml-role-id" => match v {
            Value::String(_) | Value::Null => Ok(v.clone()),
            _ => Err(format!("{k} must be a string")),
        },
        _ => return None,
    })
}
