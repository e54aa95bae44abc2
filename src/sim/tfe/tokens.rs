//! Tokens minted through the API: organization, team and user tokens.

use serde_json::{Map, Value, json};

use super::*;
use crate::sim::http::{Request, Response};
use crate::tfe::version::TfeVersion;

use crate::util::parse_rfc3339_ms;

/// `expired-at` from a token-creating body: `None` when absent or null
/// (TFE then applies its default lifetime), else Unix ms in the future.
fn requested_expiry(attrs: &Map<String, Value>, now: u64) -> Result<Option<u64>, Response> {
    match attrs.get("expired-at") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) => match parse_rfc3339_ms(t) {
            Some(ms) if ms > now => Ok(Some(ms)),
            Some(_) => Err(invalid("expired-at must be in the future")),
            None => Err(invalid(
                "expired-at must be an RFC 3339 time like 2026-01-02T03:04:05Z",
            )),
        },
        Some(_) => Err(invalid("expired-at must be a string")),
    }
}

/// The attributes of an optional token-creating body (the docs' older curl
/// examples POST no body at all, so an empty body is accepted) and the
/// expiry it asks for.
fn token_request(
    now: u64,
    req: &Request,
    ty: &str,
    allowed: &[&str],
) -> Result<(Map<String, Value>, Option<u64>), Response> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok((Map::new(), None));
    }
    let attrs = body_attributes(req, ty)?;
    if let Some(k) = attrs.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(format!("unknown attribute {k:?} for {ty}")));
    }
    let expires = requested_expiry(&attrs, now)?;
    Ok((attrs, expires))
}

fn token_doc(t: &Token, value: &str, description: Value) -> Value {
    json!({"data": {"id": t.id, "type": "authentication-tokens", "attributes": {
        "token": value, "description": description,
        "created-at": rfc3339(UNIX_EPOCH + Duration::from_millis(t.created_ms)),
        "expired-at": (t.expires_ms != NO_EXPIRY)
            .then(|| rfc3339(UNIX_EPOCH + Duration::from_millis(t.expires_ms)))}}})
}

/// A token's metadata, never its value (TFE shows a value once, at
/// creation: the "Service Accounts" page, source document service-accounts.txt).
fn meta_response(t: &Token) -> Response {
    let mut doc = token_doc(t, "", Value::Null);
    doc["data"]["attributes"]["token"] = Value::Null;
    Response::json(200, &doc)
}

impl Tfe {
    /// Issues a token that expires at `expires_ms`, or after TFE's default
    /// lifetime when `None`, and returns it with its value.
    fn issue_with_expiry(&mut self, kind: TokenKind, expires_ms: Option<u64>) -> (Token, String) {
        let value = self.issue_token(kind);
        let Some(t) = self.tokens.last_mut() else {
            unreachable!("issue_token just pushed a token")
        };
        if let Some(e) = expires_ms {
            t.expires_ms = e;
        }
        (t.clone(), value)
    }

    /// `POST /api/v2/organizations/:org/authentication-token`: replaces the
    /// organization's token (the "Service Accounts" page, source document service-accounts.txt: one valid token at a time).
    ///
    /// Body type: the organization-tokens docs and pytfe send
    /// `authentication-token`; go-tfe (`organization_token.go`,
    /// `OrganizationTokenCreateOptions` has no `primary` tag) sends `""`. Both
    /// are accepted; any other type is 409, as for every JSON:API resource.
    /// `expired-at`: go-tfe `OrganizationTokenCreateOptions.ExpiredAt`.
    pub(super) fn org_token(&mut self, org: &str, req: &Request) -> Response {
        let expires =
            match token_request(self.now_ms(), req, "authentication-token", &["expired-at"]) {
                Ok((_, e)) => e,
                Err(r) => return r,
            };
        self.tokens
            .retain(|t| t.kind != TokenKind::Organization(org.to_string()));
        let (t, value) = self.issue_with_expiry(TokenKind::Organization(org.to_string()), expires);
        Response::json(201, &token_doc(&t, &value, Value::Null))
    }

    /// `GET /api/v2/organizations/:org/authentication-token`: the token's
    /// metadata, never its value (go-tfe `organization_token.go` `Read`; TFE
    /// shows a token's value once, at creation: the "Service Accounts" page, source document service-accounts.txt). 404 when none.
    pub(super) fn read_org_token(&self, org: &str) -> Response {
        match self
            .tokens
            .iter()
            .find(|t| t.kind == TokenKind::Organization(org.to_string()))
        {
            Some(t) => meta_response(t),
            None => not_found(),
        }
    }

    /// `POST /api/v2/teams/:team_id/authentication-token`: replaces the
    /// team's token. Body type `authentication-token` (team-tokens docs,
    /// pytfe; go-tfe's `TeamTokenCreateOptions` sends `""`); the plural
    /// `authentication-tokens` is refused with 409. `expired-at`: go-tfe
    /// `TeamTokenCreateOptions.ExpiredAt`; without it the token lives two years
    /// (team-tokens docs).
    pub(super) fn team_token(
        &mut self,
        tid: &str,
        tok: &Token,
        site_admin: bool,
        req: &Request,
    ) -> Response {
        let Some(team) = self.team_owned_by(tid, tok, site_admin) else {
            return not_found();
        };
        let (attrs, expires) = match token_request(
            self.now_ms(),
            req,
            "authentication-token",
            &["expired-at", "description"],
        ) {
            Ok(x) => x,
            Err(r) => return r,
        };
        // Only the legacy (undescribed) token is replaced; described ones
        // stay (pytfe `team_tokens.py` `create_with_options`).
        self.tokens.retain(|t| {
            !(matches!(&t.kind, TokenKind::Team(id, _) if *id == team.id)
                && t.description.is_none())
        });
        let (t, value) =
            self.issue_with_expiry(TokenKind::Team(team.id.clone(), team.org.clone()), expires);
        let description = attrs.get("description").cloned().unwrap_or(Value::Null);
        Response::json(201, &token_doc(&t, &value, description))
    }

    /// The team `tid` when `tok` may manage its token (a site admin, an
    /// owner of its organization, or that organization's token); TFE
    /// answers 404 otherwise, as for every resource one may not see.
    fn team_owned_by(&self, tid: &str, tok: &Token, site_admin: bool) -> Option<Team> {
        let team = self.teams.iter().find(|t| t.id == tid)?;
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
        owner.then(|| team.clone())
    }

    /// `GET /api/v2/teams/:team_id/authentication-token`: the team token's
    /// metadata, never its value (go-tfe `team_token.go` `Read`); 404 when
    /// the team has none.
    pub(super) fn read_team_token(&self, tid: &str, tok: &Token, site_admin: bool) -> Response {
        let Some(team) = self.team_owned_by(tid, tok, site_admin) else {
            return not_found();
        };
        match self.legacy_team_token(&team.id) {
            Some(t) => meta_response(t),
            None => not_found(),
        }
    }

    /// The team's one legacy (undescribed) token.
    fn legacy_team_token(&self, team_id: &str) -> Option<&Token> {
        self.tokens.iter().find(|t| {
            matches!(&t.kind, TokenKind::Team(id, _) if id == team_id) && t.description.is_none()
        })
    }

    /// `POST /api/v2/teams/:team_id/authentication-tokens` (plural): a
    /// described team token, one of many a team may hold; the legacy token
    /// and the other described ones stay valid. Type `authentication-tokens`,
    /// a `description` unique within the team, optional `expired-at`
    /// (pytfe `resources/team_tokens.py` `create_with_options`: "create a
    /// new token with the given unique description, allowing for the
    /// creation of multiple team tokens"; go-tfe `team_token.go`). Which TFE
    /// release added it is not in our sources: modelled for the current
    /// version line and absent (404, as for any unknown path) under a
    /// `vYYYYMM-N` version (and the undocumented older shape).
    pub(super) fn described_team_token(
        &mut self,
        tid: &str,
        tok: &Token,
        site_admin: bool,
        req: &Request,
    ) -> Response {
        if !matches!(self.release(), Some(TfeVersion::Numbered(..))) {
            return not_found();
        }
        let Some(team) = self.team_owned_by(tid, tok, site_admin) else {
            return not_found();
        };
        let (attrs, expires) = match token_request(
            self.now_ms(),
            req,
            "authentication-tokens",
            &["expired-at", "description"],
        ) {
            Ok(x) => x,
            Err(r) => return r,
        };
        let Some(description) = attrs
            .get("description")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        else {
            return invalid("description is required");
        };
        // pytfe says the description is unique; the 422 and its wording are
        // this simulator's (how TFE refuses a duplicate is not in our
        // sources). The client never repeats one: each renewal's carries the
        // time and a random nonce, and a lost answer is not replayed.
        if self.tokens.iter().any(|t| {
            matches!(&t.kind, TokenKind::Team(id, _) if *id == team.id)
                && t.description.as_deref() == Some(description)
        }) {
            return invalid("description has already been taken");
        }
        let description = description.to_string();
        let (mut t, value) =
            self.issue_with_expiry(TokenKind::Team(team.id.clone(), team.org.clone()), expires);
        if let Some(last) = self.tokens.last_mut() {
            last.description = Some(description.clone());
        }
        t.description = Some(description.clone());
        Response::json(201, &token_doc(&t, &value, json!(description)))
    }

    /// `DELETE /api/v2/teams/:team_id/authentication-token`: revokes the
    /// team's legacy token (go-tfe `team_token.go` `Delete`; pytfe
    /// `team_tokens.py` `delete`). 204; 404 when it has none.
    pub(super) fn delete_team_token(
        &mut self,
        tid: &str,
        tok: &Token,
        site_admin: bool,
    ) -> Response {
        let Some(team) = self.team_owned_by(tid, tok, site_admin) else {
            return not_found();
        };
        let Some(id) = self.legacy_team_token(&team.id).map(|t| t.id.clone()) else {
            return not_found();
        };
        self.tokens.retain(|t| t.id != id);
        Response::empty(204)
    }

    /// `DELETE /api/v2/authentication-tokens/:id` for a user's own token (a
    /// site admin may delete any user's: go-tfe `user_token.go` `Delete`)
    /// or a team token by id (pytfe `team_tokens.py` `delete_by_id`). 204;
    /// 404 for an unknown id or one the caller may not manage.
    pub(super) fn delete_token_by_id(
        &mut self,
        tok: &Token,
        user: Option<&User>,
        site_admin: bool,
        id: &str,
    ) -> Response {
        let Some(target) = self.tokens.iter().find(|t| t.id == id).cloned() else {
            return not_found();
        };
        let allowed = match &target.kind {
            TokenKind::User(owner) => site_admin || user.is_some_and(|u| &u.id == owner),
            TokenKind::Team(tid, _) => self.team_owned_by(tid, tok, site_admin).is_some(),
            TokenKind::Organization(_) => false,
        };
        if !allowed {
            return not_found();
        }
        self.tokens.retain(|t| t.id != id);
        Response::empty(204)
    }

    /// `POST /api/v2/users/:id/authentication-tokens`: a new user token,
    /// optionally with `expired-at` (user-tokens docs; type
    /// `authentication-tokens`, plural, as those docs write it).
    pub(super) fn user_token(&mut self, uid: &str, req: &Request) -> Response {
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
        let expires = match requested_expiry(&attrs, self.now_ms()) {
            Ok(e) => e,
            Err(r) => return r,
        };
        let (t, value) = self.issue_with_expiry(TokenKind::User(uid.to_string()), expires);
        let description = attrs.get("description").cloned().unwrap_or(Value::Null);
        Response::json(201, &token_doc(&t, &value, description))
    }
}
