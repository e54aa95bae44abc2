//! Tokens minted through the API: organization, team and user tokens.

use serde_json::{Value, json};

use super::*;
use crate::sim::http::{Request, Response};

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

impl Tfe {
    pub(super) fn org_token(&mut self, org: &str) -> Response {
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
}
