//! tfe-sim over real HTTP: each endpoint's success and error paths
//! (issue #2), as the simulator's cited sources (HashiCorp API docs,
//! go-tfe) describe TFE.

use std::time::Duration;

use serde_json::{Value, json};
use tfe_bootstrap::sim::faults::FaultRule;
use tfe_bootstrap::sim::{Sim, SimOptions};

use crate::util::*;

fn started(opts: SimOptions) -> (Sim, Http) {
    let sim = Sim::start(opts).unwrap();
    let http = Http::new(sim.url());
    (sim, http)
}

/// Creates the initial admin and returns its token.
fn admin(http: &Http) -> String {
    let body = json!({"username": "admin", "email": "a@example.com", "password": "0123456789ab"});
    let (s, v, _) = http.req(
        "POST",
        &format!("/admin/initial-admin-user?token={IACT}"),
        None,
        Some(&body),
        "application/json",
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "created");
    v["token"].as_str().unwrap().to_string()
}

#[test]
fn readiness_is_503_while_booting_then_200() {
    let (sim, http) = started(SimOptions {
        hold_ready: true,
        ..sim_opts()
    });
    let (s, v) = http.get("/api/v1/health/readiness", None);
    assert_eq!(s, 503);
    assert_eq!(v["status"], "ERROR");
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status"] == "ERROR")
    );
    // Before ready, the API answers 503 too.
    assert_eq!(http.get("/api/v2/ping", None).0, 503);
    sim.release_ready();
    assert_eq!(http.get("/api/v1/health/readiness", None).0, 200);
    let (_, v) = http.get("/api/v1/health/readiness", None);
    assert_eq!(v["status"], "OK");
    assert_eq!(
        http.get("/_health_check", None).0,
        410,
        "modern installs have removed /_health_check"
    );
}

#[test]
fn legacy_mode_has_health_check_and_no_readiness() {
    let (sim, http) = started(SimOptions {
        legacy_health: true,
        hold_ready: true,
        ..sim_opts()
    });
    assert_eq!(http.get("/api/v1/health/readiness", None).0, 404);
    assert_eq!(http.get("/_health_check", None).0, 502);
    sim.release_ready();
    assert_eq!(http.get("/_health_check", None).0, 200);
}

#[test]
fn port_stays_closed_until_opened() {
    let sim = Sim::start(SimOptions {
        hold_port: true,
        ..sim_opts()
    })
    .unwrap();
    assert!(
        !tfe_bootstrap::sim::http::port_open(sim.addr()),
        "port must be closed at first"
    );
    sim.open_port();
    assert!(wait_until(Duration::from_secs(30), || {
        tfe_bootstrap::sim::http::port_open(sim.addr())
    }));
}

#[test]
fn retrieve_iact_obeys_subnets_and_time_limit() {
    let (_s, http) = started(sim_opts());
    let (s, _, text) = http.req("GET", "/admin/retrieve-iact", None, None, "");
    assert_eq!((s, text.as_str()), (200, IACT));

    let (_s, http) = started(SimOptions {
        iact_subnets: vec!["10.0.0.0/8".parse().unwrap()],
        ..sim_opts()
    });
    let (s, _, text) = http.req("GET", "/admin/retrieve-iact", None, None, "");
    assert_eq!(s, 401);
    assert!(
        text.contains("<html>"),
        "401 with an HTML body, as nginx answers"
    );

    let (_s, http) = started(SimOptions {
        iact_time_limit: Some(Duration::ZERO),
        ..sim_opts()
    });
    assert_eq!(
        http.req("GET", "/admin/retrieve-iact", None, None, "").0,
        401,
        "window passed"
    );

    // Blank subnets: TFE's own host may still ask (FDO configuration docs,
    // TFE_IACT_SUBNETS); the Replicated-era shape had no such exception.
    let (_s, http) = started(SimOptions {
        iact_subnets: vec![],
        ..sim_opts()
    });
    assert_eq!(
        http.req("GET", "/admin/retrieve-iact", None, None, "").0,
        200,
        "no subnets: retrieval from the host itself"
    );
    let (_s, http) = started(SimOptions {
        iact_subnets: vec![],
        version: tfe_bootstrap::sim::tfe::PTFE_SETTINGS_PAGE.into(),
        ..sim_opts()
    });
    assert_eq!(
        http.req("GET", "/admin/retrieve-iact", None, None, "").0,
        401,
        "no subnets on the older shape: API retrieval disabled"
    );
}

#[test]
fn initial_admin_works_once_and_validates() {
    let (sim, http) = started(sim_opts());
    let post = |token: &str, body: Value| {
        http.req(
            "POST",
            &format!("/admin/initial-admin-user?token={token}"),
            None,
            Some(&body),
            "application/json",
        )
    };
    let good = json!({"username": "admin", "email": "a@example.com", "password": "0123456789ab"});
    let (s, v, _) = post("wrong", good.clone());
    assert_eq!((s, v["status"].as_str()), (404, Some("error")));
    let (s, v, _) = post(
        IACT,
        json!({"username": "admin", "email": "a@example.com", "password": "short"}),
    );
    assert_eq!(s, 422);
    assert!(v["error"].as_str().unwrap().contains("10 characters"));
    let (s, _, _) = post(IACT, json!({"username": "admin", "email": "a@example.com"}));
    assert_eq!(s, 422, "missing password");
    let (s, _, _) = post(
        IACT,
        json!({"username": "admin", "email": "a@example.com", "password": "0123456789ab", "admin": true}),
    );
    assert_eq!(s, 422, "unknown attribute");
    let (s, v, _) = post(IACT, good.clone());
    assert_eq!(s, 200);
    let token = v["token"].as_str().unwrap();
    assert!(token.contains(".atlasv1."), "{token}");
    let (s, v, _) = post(IACT, good);
    assert_eq!(s, 404, "works once");
    assert!(v["error"].as_str().unwrap().contains("already exists"));
    assert_eq!(sim.snapshot()["users"].as_array().unwrap().len(), 1);
}

#[test]
fn api_requires_a_token_content_type_and_site_admin() {
    let (_sim, http) = started(SimOptions {
        existing_admin_token: Some("existing-admin-token".into()),
        user_tokens: vec!["plain-user-token".into()],
        ..sim_opts()
    });
    let t = "existing-admin-token".to_string();
    assert_eq!(http.get("/api/v2/account/details", None).0, 401);
    assert_eq!(http.get("/api/v2/account/details", Some("nope")).0, 401);
    let (s, v) = http.get("/api/v2/account/details", Some(&t));
    assert_eq!(s, 200);
    assert_eq!(v["data"]["attributes"]["is-site-admin"], true);
    assert_eq!(v["data"]["attributes"]["username"], "existing-admin");
    let (s, v) = http.get("/api/v2/account/details", Some("plain-user-token"));
    assert_eq!(
        (s, &v["data"]["attributes"]["is-site-admin"]),
        (200, &json!(false))
    );
    assert_eq!(
        http.get("/api/v2/admin/general-settings", Some("plain-user-token"))
            .0,
        404,
        "TFE hides 403 as 404"
    );
    let body = json!({"data": {"attributes": {"api-rate-limit": 40}}});
    let (s, _, _) = http.req(
        "PATCH",
        "/api/v2/admin/general-settings",
        Some(&t),
        Some(&body),
        "application/json",
    );
    assert_eq!(s, 415, "JSON:API content type is required");
    let (s, _, _) = http.req(
        "PATCH",
        "/api/v2/admin/general-settings",
        Some(&t),
        Some(&body),
        "",
    );
    assert_eq!(s, 415);
}

#[test]
fn ping_reports_versions() {
    let sim = Sim::start(sim_opts()).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let r = agent
        .get(format!("{}/api/v2/ping", sim.url()))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(r.headers().get("x-tfe-current-version").unwrap(), "2.0.1");
    assert!(r.headers().get("tfp-api-version").is_some());
}

#[test]
fn general_settings_validate_and_merge() {
    let (_sim, http) = started(sim_opts());
    let t = admin(&http);
    let p = "/api/v2/admin/general-settings";
    let (s, v) = http.api(
        "PATCH",
        p,
        &t,
        &json!({"data": {"type": "general-settings", "attributes": {"api-rate-limit": 29}}}),
    );
    assert_eq!(s, 422);
    assert!(
        v["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("at least 30")
    );
    let (s, v) = http.api(
        "PATCH",
        p,
        &t,
        &json!({"data": {"attributes": {"api-rate-limt": 40}}}),
    );
    assert_eq!(s, 422, "misspelled key is refused");
    assert!(
        v["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("api-rate-limt")
    );
    let (s, _) = http.api(
        "PATCH",
        p,
        &t,
        &json!({"data": {"type": "", "attributes": {"api-rate-limit": 40}}}),
    );
    assert_eq!(s, 200, "go-tfe's empty type is tolerated");
    let (s, _) = http.api(
        "PATCH",
        p,
        &t,
        &json!({"data": {"type": "smtp-settings", "attributes": {}}}),
    );
    assert_eq!(s, 409, "a wrong type is refused");
    let (s, _) = http.api(
        "PATCH",
        p,
        &t,
        &json!({"data": {"attributes": {"fair-run-queuing-enabled": false}}}),
    );
    assert_eq!(s, 422, "read-only attribute");
    let (_, v) = http.get(p, Some(&t));
    assert_eq!(v["data"]["attributes"]["api-rate-limit"], 40);
    assert_eq!(
        v["data"]["attributes"]["limit-user-organization-creation"], true,
        "omitted keys keep their value"
    );
    assert_eq!(v["data"]["id"], "general");
}

#[test]
fn smtp_settings_send_a_test_mail_and_hide_write_only_fields() {
    let (sim, http) = started(sim_opts());
    let t = admin(&http);
    let p = "/api/v2/admin/smtp-settings";
    let base = json!({"enabled": true, "host": "smtp.example.com", "port": 587, "sender": "n@example.com"});
    let with = |extra: Value| {
        let mut a = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        json!({"data": {"type": "smtp-settings", "attributes": a}})
    };
    assert_eq!(
        http.api("PATCH", p, &t, &with(json!({"auth": "oauth"}))).0,
        422,
        "auth enum"
    );
    assert_eq!(
        http.api(
            "PATCH",
            p,
            &t,
            &with(json!({"auth": "login", "username": "u"}))
        )
        .0,
        422,
        "login needs a password"
    );
    assert_eq!(
        http.api(
            "PATCH",
            p,
            &t,
            &json!({"data": {"attributes": {"enabled": true}}})
        )
        .0,
        422,
        "enabled needs host"
    );
    assert!(
        sim.snapshot()["test-mails"].as_array().unwrap().is_empty(),
        "no mail for refused PATCHes"
    );
    let (s, v) = http.api(
        "PATCH",
        p,
        &t,
        &with(json!({"auth": "login", "username": "u", "password": "pw-secret", "test-email-address": "ops@example.com"})),
    );
    assert_eq!(s, 200);
    let attrs = &v["data"]["attributes"];
    assert!(
        attrs.get("password").is_none() && attrs.get("test-email-address").is_none(),
        "{v}"
    );
    assert_eq!(sim.snapshot()["test-mails"], json!(["ops@example.com"]));
    let (_, v) = http.get(p, Some(&t));
    assert!(!v.to_string().contains("pw-secret"));
    assert_eq!(v["data"]["attributes"]["auth"], "login");
    // Omitted attributes keep their value; no test address, no mail.
    assert_eq!(
        http.api(
            "PATCH",
            p,
            &t,
            &json!({"data": {"attributes": {"port": 25}}})
        )
        .0,
        200
    );
    assert_eq!(sim.snapshot()["test-mails"].as_array().unwrap().len(), 1);
}

#[test]
fn smtp_failures_use_the_documented_codes() {
    for code in [401u16, 500, 504] {
        let (_sim, http) = started(SimOptions {
            smtp_fail: Some(code),
            ..sim_opts()
        });
        let t = admin(&http);
        let body = json!({"data": {"attributes": {"enabled": true, "host": "h.example.com", "port": 25,
            "sender": "n@example.com", "test-email-address": "ops@example.com"}}});
        assert_eq!(
            http.api("PATCH", "/api/v2/admin/smtp-settings", &t, &body)
                .0,
            code
        );
    }
}

#[test]
fn saml_requires_fields_when_enabled_and_rotates_certs() {
    let (_sim, http) = started(sim_opts());
    let t = admin(&http);
    let p = "/api/v2/admin/saml-settings";
    assert_eq!(
        http.api(
            "PATCH",
            p,
            &t,
            &json!({"data": {"attributes": {"enabled": true}}})
        )
        .0,
        422
    );
    let full = json!({"data": {"attributes": {"enabled": true, "idp-cert": "CERT-1", "sso-endpoint-url": "https://idp/sso",
        "slo-endpoint-url": "https://idp/slo", "private-key": "KEY", "signature-signing-method": "SHA256"}}});
    let (s, v) = http.api("PATCH", p, &t, &full);
    assert_eq!(s, 200);
    assert!(v["data"]["attributes"].get("private-key").is_none());
    let (_, v) = http.api(
        "PATCH",
        p,
        &t,
        &json!({"data": {"attributes": {"idp-cert": "CERT-2"}}}),
    );
    assert_eq!(v["data"]["attributes"]["old-idp-cert"], "CERT-1");
    // Today's TFE revokes with POST; the seed's PUT is an older install's.
    let (s, _, _) = http.req(
        "PUT",
        &format!("{p}/actions/revoke-old-certificate"),
        Some(&t),
        None,
        "application/vnd.api+json",
    );
    assert_eq!(s, 404);
    let (s, v, _) = http.req(
        "POST",
        &format!("{p}/actions/revoke-old-certificate"),
        Some(&t),
        None,
        "application/vnd.api+json",
    );
    assert_eq!(s, 200);
    assert_eq!(v["data"]["attributes"]["old-idp-cert"], Value::Null);
    assert_eq!(
        http.api(
            "PATCH",
            p,
            &t,
            &json!({"data": {"attributes": {"acs-consumer-url": "x"}}})
        )
        .0,
        422,
        "read-only"
    );
}

#[test]
fn twilio_settings_and_verify() {
    let (sim, http) = started(sim_opts());
    let t = admin(&http);
    let p = "/api/v2/admin/twilio-settings";
    let verify = json!({"data": {"attributes": {"test-number": "+15555550199"}}});
    assert_eq!(
        http.api("POST", &format!("{p}/verify"), &t, &verify).0,
        400,
        "Twilio disabled"
    );
    let body = json!({"data": {"attributes": {"enabled": true, "account-sid": "AC1", "auth-token": "tok", "from-number": "+1555"}}});
    let (s, v) = http.api("PATCH", p, &t, &body);
    assert_eq!(s, 200);
    assert!(v["data"]["attributes"].get("auth-token").is_none());
    assert_eq!(
        http.api(
            "POST",
            &format!("{p}/verify"),
            &t,
            &json!({"data": {"attributes": {}}})
        )
        .0,
        400,
        "no test number"
    );
    assert_eq!(http.api("POST", &format!("{p}/verify"), &t, &verify).0, 200);
    assert_eq!(sim.snapshot()["test-sms"], json!(["+15555550199"]));
}

#[test]
fn organizations_pools_defaults_and_ttl() {
    let (sim, http) = started(sim_opts());
    let t = admin(&http);
    let create = json!({"data": {"type": "organizations", "attributes": {"name": "acme", "email": "ops@example.com"}}});
    assert_eq!(http.get("/api/v2/organizations/acme", Some(&t)).0, 404);
    assert_eq!(
        http.api("POST", "/api/v2/organizations", &t, &create).0,
        201
    );
    let (s, v) = http.api("POST", "/api/v2/organizations", &t, &create);
    assert_eq!(s, 422, "duplicate name");
    assert!(
        v["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("already been taken")
    );
    let bad = json!({"data": {"type": "organizations", "attributes": {"name": "a b", "email": "ops@example.com"}}});
    assert_eq!(http.api("POST", "/api/v2/organizations", &t, &bad).0, 422);
    let (s, v) = http.get("/api/v2/organizations/acme", Some(&t));
    assert_eq!(s, 200);
    assert_eq!(v["data"]["attributes"]["default-execution-mode"], "remote");

    // Pools: create, duplicate, list with q.
    let pool = |name: &str| json!({"data": {"type": "agent-pools", "attributes": {"name": name, "organization-scoped": true}}});
    let (s, v) = http.api(
        "POST",
        "/api/v2/organizations/acme/agent-pools",
        &t,
        &pool("pool-a"),
    );
    assert_eq!(s, 201);
    let id = v["data"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("apool-"));
    assert_eq!(
        http.api(
            "POST",
            "/api/v2/organizations/acme/agent-pools",
            &t,
            &pool("pool-a")
        )
        .0,
        422
    );
    http.api(
        "POST",
        "/api/v2/organizations/acme/agent-pools",
        &t,
        &pool("other"),
    );
    let (_, v) = http.get("/api/v2/organizations/acme/agent-pools?q=pool-a", Some(&t));
    assert_eq!(v["data"].as_array().unwrap().len(), 1);

    // A pool needs agent mode; switching away clears it; the attribute form works too.
    let rel = |mode: &str, id: &str| {
        json!({"data": {"type": "organizations", "attributes": {"default-execution-mode": mode},
        "relationships": {"default-agent-pool": {"data": {"type": "agent-pools", "id": id}}}}})
    };
    let (s, v) = http.api(
        "PATCH",
        "/api/v2/organizations/acme",
        &t,
        &rel("remote", &id),
    );
    assert_eq!(s, 422);
    assert!(
        v["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("must not be specified unless using 'agent'")
    );
    assert_eq!(
        http.api(
            "PATCH",
            "/api/v2/organizations/acme",
            &t,
            &rel("agent", "apool-nope")
        )
        .0,
        422
    );
    let (s, v) = http.api(
        "PATCH",
        "/api/v2/organizations/acme",
        &t,
        &rel("agent", &id),
    );
    assert_eq!(s, 200);
    assert_eq!(
        v["data"]["relationships"]["default-agent-pool"]["data"]["id"],
        id.as_str()
    );
    let local = json!({"data": {"type": "organizations", "attributes": {"default-execution-mode": "local"}}});
    let (_, v) = http.api("PATCH", "/api/v2/organizations/acme", &t, &local);
    assert_eq!(
        v["data"]["relationships"]["default-agent-pool"]["data"],
        Value::Null,
        "switching away clears the pool"
    );
    let attr_form = json!({"data": {"type": "organizations", "attributes": {"default-execution-mode": "agent", "default-agent-pool-id": id}}});
    assert_eq!(
        http.api("PATCH", "/api/v2/organizations/acme", &t, &attr_form)
            .0,
        200
    );
    let ttl_on = json!({"data": {"type": "organizations", "attributes": {"max-ttl-enabled": false, "bogus": 1}}});
    assert_eq!(
        http.api("PATCH", "/api/v2/organizations/acme", &t, &ttl_on)
            .0,
        422,
        "unknown attribute"
    );

    // TTL policies: object form only; underscore spelling only.
    let p = "/api/v2/organizations/acme/token-ttl-policies";
    let (_, v) = http.get(p, Some(&t));
    assert_eq!(v["data"].as_array().unwrap().len(), 4);
    let obj = |t: &str, ms: u64| json!({"data": {"type": "organization-token-ttl-policies", "attributes": {"token-ttl-policies": [{"token-type": t, "max-ttl-ms": ms}]}}});
    assert_eq!(
        http.api("PATCH", p, &t, &obj("audit-trails", 3_600_000)).0,
        422,
        "hyphen spelling refused"
    );
    let array_form = json!({"data": [{"type": "organization-token-ttl-policies", "attributes": {"token-type": "user", "max-ttl-ms": 3_600_000}}]});
    assert_eq!(
        http.api("PATCH", p, &t, &array_form).0,
        422,
        "python-tfe's array form refused"
    );
    assert_eq!(http.api("PATCH", p, &t, &obj("user", 0)).0, 422);
    let (s, v) = http.api("PATCH", p, &t, &obj("audit_trails", 3_600_000));
    assert_eq!(s, 200);
    assert_eq!(
        v["data"].as_array().unwrap().len(),
        4,
        "always lists all types"
    );
    let snap = sim.snapshot();
    assert_eq!(
        snap["organizations"][0]["token-ttl-policies"]["audit_trails"],
        3_600_000
    );
    assert_eq!(
        snap["organizations"][0]["token-ttl-policies"]["user"],
        tfe_bootstrap::sim::tfe::DEFAULT_TTL_MS,
        "partial update"
    );
}

#[test]
fn org_token_has_one_valid_token_at_a_time() {
    let (_sim, http) = started(sim_opts());
    let t = admin(&http);
    let create = json!({"data": {"type": "organizations", "attributes": {"name": "acme", "email": "ops@example.com"}}});
    http.api("POST", "/api/v2/organizations", &t, &create);
    let mint = || {
        let (s, v) = http.api(
            "POST",
            "/api/v2/organizations/acme/authentication-token",
            &t,
            &json!({"data": {"type": "authentication-token"}}),
        );
        assert_eq!(s, 201);
        v["data"]["attributes"]["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // The docs' and pytfe's type is singular; the plural is another resource.
    let (s, _) = http.api(
        "POST",
        "/api/v2/organizations/acme/authentication-token",
        &t,
        &json!({"data": {"type": "authentication-tokens"}}),
    );
    assert_eq!(s, 409);
    let first = mint();
    assert_eq!(http.get("/api/v2/organizations/acme", Some(&first)).0, 200);
    let second = mint();
    assert_eq!(
        http.get("/api/v2/organizations/acme", Some(&first)).0,
        401,
        "regenerating invalidates the previous token"
    );
    assert_eq!(http.get("/api/v2/organizations/acme", Some(&second)).0, 200);
}

#[test]
fn scripted_faults_act_before_the_server_does() {
    let (sim, http) = started(sim_opts());
    let t = admin(&http);
    sim.add_fault(FaultRule::parse("patch=/api/v2/admin/general-settings:503").unwrap());
    sim.add_fault(FaultRule::parse("get=/api/v2/admin/general-settings:429=1.5").unwrap());
    let body = json!({"data": {"attributes": {"api-rate-limit": 77}}});
    assert_eq!(
        http.api("PATCH", "/api/v2/admin/general-settings", &t, &body)
            .0,
        503
    );
    assert_eq!(
        sim.snapshot()["settings"]["general"]["api-rate-limit"],
        30,
        "the fault came before the change"
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let r = agent
        .get(format!("{}/api/v2/admin/general-settings", sim.url()))
        .header("Authorization", format!("Bearer {t}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers().get("x-ratelimit-reset").unwrap(), "1.5");
    // A dropped connection: no answer at all.
    sim.add_fault(FaultRule::parse("get=/api/v2/ping:drop").unwrap());
    assert!(
        agent
            .get(format!("{}/api/v2/ping", sim.url()))
            .call()
            .is_err()
    );
    let log = sim.requests();
    assert!(
        log.iter()
            .any(|e| e.fault.as_deref() == Some("drop") && e.status == 0)
    );
}

#[test]
fn sim_state_endpoint_and_faults_endpoint() {
    let (_sim, http) = started(sim_opts());
    let (s, _, _) = http.req(
        "POST",
        "/_sim/faults",
        None,
        Some(&json!("x")),
        "text/plain",
    );
    assert_eq!(s, 400, "a bad rule is refused");
    let (s, v, _) = http.req("POST", "/_sim/faults", None, None, "text/plain");
    assert_eq!((s, &v["added"]), (200, &json!(0)));
    let (s, v) = http.get("/_sim/state", None);
    assert_eq!(s, 200);
    for k in [
        "users",
        "settings",
        "organizations",
        "agent-pools",
        "test-mails",
        "requests",
    ] {
        assert!(v.get(k).is_some(), "/_sim/state lacks {k}");
    }
}

#[test]
fn tfe_sim_binary_prints_its_url_and_documents_its_flags() {
    let help = std::process::Command::new(sim_bin())
        .arg("--help")
        .output_timed()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--tls-cert",
        "--tls-key",
        "--listen-after",
        "--ready-after",
        "--legacy-health",
        "--iact",
        "--iact-subnets",
        "--iact-time-limit",
        "--fault",
        "--fault-rate",
        "--seed",
        "--existing-admin-token",
    ] {
        assert!(
            text.contains(flag),
            "tfe-sim --help does not document {flag}"
        );
    }
    let mut child = std::process::Command::new(sim_bin())
        .args(["--iact", "bin-iact-value"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let out = std::process::Command::new(sim_bin())
        .args(["iact", "--url", &url])
        .output_timed()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "bin-iact-value"
    );
    let bad = std::process::Command::new(sim_bin())
        .args(["--listen", "0.0.0.0:0"])
        .output_timed()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "only loopback");
}
