//! Health, readiness, the IACT and the initial admin: what a fresh install
//! answers before anyone has logged in.

use serde_json::{Value, json};

use super::*;
use crate::sim::http::{Request, Response};

pub(super) fn looks_like_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !s.contains(char::is_whitespace))
}

impl Tfe {
    pub(super) fn readiness(&self, req: &Request) -> Response {
        if !self.has_readiness() {
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

    pub(super) fn health_check(&self) -> Response {
        if !self.has_health_check() {
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

    pub(super) fn retrieve_iact(&self, req: &Request) -> Response {
        let b = &self.behaviour;
        // Blank subnets: no retrieval from outside the host, but from the
        // host itself it works (FDO configuration docs, TFE_IACT_SUBNETS:
        // "Blank means API retrieval from outside the host is disabled;
        // then run `curl http://localhost:80/admin/retrieve-iact` inside
        // the container"). The Replicated-era setting had no such
        // exception (`iact_subnet_list`, no default: disabled), modelled
        // for the older shape.
        let client = iact_client(req, &b.iact_trusted_proxies);
        let in_subnet = b.iact_subnets.iter().any(|n| n.contains(&client))
            || (b.iact_subnets.is_empty() && client.is_loopback() && !self.legacy_api());
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

    pub(super) fn initial_admin(&mut self, req: &Request) -> Response {
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
}

/// The address TFE judges an IACT request by. The setting's existence and
/// meaning: TFE's configuration reference, section "Initial admin creation
/// token" (`web-unified-docs:.../2.0.x/docs/enterprise/deploy/reference/
/// configuration.mdx`, as shared/spec/tfe-api.md cites it: "proxy IPs
/// allowed to fetch the IACT through a proxy"), and HashiCorp's
/// terraform-enterprise-hvd modules, whose `tfe_iact_trusted_proxies`
/// variable reads "Comma-separated list of proxy IP addresses that are
/// allowed to retrieve the TFE initial admin creation token via the API or
/// web browser" and lands in TFE_IACT_TRUSTED_PROXIES. Without it TFE sees
/// the balancer's own address. How TFE then finds the client is
/// UNCONFIRMED (the spec: "presumably X-Forwarded-For"; no source says
/// which entry): modelled as Rails' `ActionDispatch::RemoteIp` does it
/// (TFE's web tier is Rails), from a trusted peer only, the rightmost
/// `X-Forwarded-For` entry that is not itself a trusted proxy. The client
/// sends no `X-Forwarded-For` (a balancer adds it), so its requests do not
/// depend on this; its advice (steps/iact_source.rs) shares the belief and
/// says so there, and the trusted-balancer test proves only this model.
fn iact_client(req: &Request, trusted: &[IpNet]) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&req.peer) {
        return req.peer;
    }
    let forwarded: Vec<std::net::IpAddr> = req
        .header("x-forwarded-for")
        .unwrap_or("")
        .split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .copied()
        .unwrap_or(req.peer)
}
