//! Each TFE release the simulator models (`--tfe-version`, issue 24): the
//! client learns the release, sends the form that release's docs give
//! first (no 404/405 round trip on a change), converges, and refuses a
//! step the release lacks before anything is changed.

use tfe_bootstrap::sim::SimOptions;

use crate::util::*;

/// The documented releases the simulator follows.
const RELEASES: &[&str] = &["2.0.1", "2.0.0", "1.1.0", "v202309-1"];

fn world(version: &str, ttl: bool) -> World {
    let w = World::new(SimOptions {
        version: version.into(),
        ..sim_opts()
    });
    let mut t = w.config_text().replace(
        "api_rate_limit = 60\n",
        "api_rate_limit = 60\n\n[customization]\nsupport_email_address = \"help@example.com\"\n",
    );
    if !ttl {
        t = without_ttl(&t);
    }
    w.write_config(&(t + TWILIO_SECTION));
    w
}

/// A default world after a successful run, an HTTP client for its
/// simulator, and the admin token the run wrote.
fn after_a_run() -> (World, Http, String) {
    let w = World::new(sim_opts());
    assert_code(&w.run(&["run"]), 0);
    let h = Http::new(w.sim.url());
    let admin = w.token_at(&w.token_file());
    (w, h, admin)
}

#[test]
fn every_modelled_release_gets_its_documented_forms_first_and_converges() {
    for v in RELEASES {
        let ttl = *v == "2.0.1";
        let w = world(v, ttl);
        let r = w.run(&["run"]);
        assert_code(&r, 0);
        let refused: Vec<String> = w
            .mutating()
            .iter()
            .filter(|q| matches!(q.status, 404 | 405))
            .map(|q| format!("{} {} {}", q.method, q.path, q.status))
            .collect();
        assert!(
            refused.is_empty(),
            "{v}: a change was refused first: {refused:?}"
        );
        let s = w.snapshot();
        assert_eq!(
            s["settings"]["customization"]["support-email-address"], "help@example.com",
            "{v}"
        );
        assert_eq!(s["test-sms"].as_array().unwrap().len(), 1, "{v}");
        assert!(
            w.requests().iter().any(|q| q.method == "POST"
                && q.path == "/api/v2/admin/twilio-settings/verify"
                && q.status == 200),
            "{v}: Twilio verified with POST"
        );
        assert!(w.assert_token_files_work() >= 1, "{v}");
        // Once the release is known, not even the readiness probe meets a
        // 404 (releases before 1.2.0 have only /_health_check).
        let before = w.requests().len();
        w.edit_config("api_rate_limit = 60", "api_rate_limit = 61");
        assert_code(&w.run(&["run"]), 0);
        let again: Vec<String> = w.requests()[before..]
            .iter()
            .filter(|q| matches!(q.status, 404 | 405 | 410))
            .map(|q| format!("{} {} {}", q.method, q.path, q.status))
            .collect();
        assert!(again.is_empty(), "{v}: {again:?}");
        // The release is recorded and shown.
        let st = w.run(&["status"]);
        assert!(
            st.stdout.contains(v),
            "{v}: status shows it:\n{}",
            st.stdout
        );
    }
}

#[test]
fn a_ttl_step_against_a_release_without_ttl_policies_exits_2_with_nothing_changed() {
    for v in ["1.1.0", "2.0.0", "v202309-1"] {
        let w = world(v, true);
        let r = w.run(&["run"]);
        assert_code(&r, 2);
        assert!(
            r.stderr
                .contains(&format!("TFE {v} has no token TTL policies"))
                && r.stderr.contains("[organization.token_ttl]")
                && r.stderr.contains("Nothing was changed"),
            "{v}: {}",
            r.stderr
        );
        assert!(w.mutating().is_empty(), "{v}: {:?}", w.mutating());
        assert!(w.snapshot()["users"].as_array().unwrap().is_empty(), "{v}");
    }
}

/// The undocumented older shape (the PTFE "Settings API" page) reports no
/// version: the client meets it through its fallbacks and still converges.
#[test]
fn an_unknown_release_is_met_through_the_fallbacks() {
    let w = world(tfe_bootstrap::sim::tfe::PTFE_SETTINGS_PAGE, false);
    let t = w.config_text().replace(
        "\n[customization]\nsupport_email_address",
        "support_email_address",
    );
    w.write_config(&t);
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert_eq!(
        w.snapshot()["settings"]["general"]["support-email-address"],
        "help@example.com"
    );
}

/// A client that starts where Terraform CLI and the SDKs start: the remote
/// service discovery document. It follows `tfe.v2` and authenticates with
/// the admin token the run wrote.
#[test]
fn a_client_that_starts_from_the_discovery_document_authenticates() {
    let (_w, h, admin) = after_a_run();
    let (st, doc) = h.get("/.well-known/terraform.json", None);
    assert_eq!(st, 200);
    let base = doc["tfe.v2"]
        .as_str()
        .expect("tfe.v2 in the discovery document");
    let (st, me) = h.get(&format!("{}account/details", base), Some(&admin));
    assert_eq!(st, 200, "{me}");
    assert_eq!(me["data"]["attributes"]["username"], "tfe-admin");
    assert_eq!(me["data"]["attributes"]["is-site-admin"], true);
}

/// The discovery document lists what a TFE host offers (issue 33), in the
/// forms the docs define: every service URL relative and ending in `/`
/// (Remote Service Discovery, module registry protocol), and `login.v1` as
/// the login protocol describes it. An SDK that reads `modules.v1` or
/// `login.v1` at start-up finds them. The exact paths compared are the
/// sim's choices (sim/tfe/mod.rs `discovery_doc` says which are
/// unconfirmed); the forms are the docs'.
#[test]
fn the_discovery_document_lists_what_a_tfe_host_offers() {
    let (_w, h, _admin) = after_a_run();
    let (st, doc) = h.get("/.well-known/terraform.json", None);
    assert_eq!(st, 200);
    for (id, path) in [
        ("tfe.v2", "/api/v2/"),
        ("tfe.v2.1", "/api/v2/"),
        ("tfe.v2.2", "/api/v2/"),
        ("state.v2", "/api/v2/"),
        ("modules.v1", "/api/registry/v1/modules/"),
        ("providers.v1", "/api/registry/v1/providers/"),
    ] {
        assert_eq!(doc[id], path, "{id} in {doc}");
    }
    assert!(
        doc["motd.v1"].as_str().is_some_and(|p| p.starts_with('/')),
        "{doc}"
    );
    let login = &doc["login.v1"];
    assert_eq!(login["client"], "terraform-cli", "{login}");
    assert!(
        login["grant_types"]
            .as_array()
            .is_some_and(|g| g.iter().any(|t| t == "authz_code")),
        "{login}"
    );
    for k in ["authz", "token"] {
        assert!(
            login[k].as_str().is_some_and(|p| p.starts_with('/')),
            "{k}: {login}"
        );
    }
    let ports: Vec<u64> = login["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_u64())
        .collect();
    assert!(
        ports.len() == 2 && ports[0] <= ports[1] && ports[0] >= 1024,
        "{login}"
    );
}

/// An organization or team token's account is its service user (account
/// API docs), and a run that uses the owners team token as its token says
/// whose it is and runs the organization steps.
#[test]
fn a_service_token_answers_its_service_user() {
    let w = World::new(sim_opts()).with_service_tokens();
    assert_code(&w.run(&["run"]), 0);
    let h = Http::new(w.sim.url());
    let org = w.token_at(&w.dir.path().join("org-token"));
    let (st, me) = h.get("/api/v2/account/details", Some(&org));
    assert_eq!(st, 200, "{me}");
    assert_eq!(me["data"]["attributes"]["is-service-account"], true);
    assert_eq!(me["data"]["attributes"]["is-site-admin"], false);
    assert_eq!(
        me["data"]["relationships"]["authenticated-resource"]["data"],
        serde_json::json!({"id": "my-org", "type": "organizations"})
    );
    let team = w.token_at(&w.dir.path().join("owners-token"));
    let other = tempfile::tempdir().unwrap();
    w.write_config(&format!(
        r#"
[tfe]
address = "{}"
allow_insecure_http = true

[admin]
token = {{ env = "T_TEAM" }}

[organization]
name = "my-org"
email = "platform@example.com"
default_execution_mode = "remote"

[state]
dir = "{}"
"#,
        w.sim.url(),
        other.path().join("state").display()
    ));
    let r = to_run(
        w.command(&["run"])
            .env("T_TEAM", &team)
            .output_timed()
            .unwrap(),
    );
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("service user") && r.stdout.contains("only the organization steps"),
        "{}",
        r.stdout
    );
    assert!(!r.both().contains(&team));
    assert_eq!(
        w.snapshot()["organizations"][0]["default-execution-mode"],
        "remote"
    );
}

/// Cost-estimation settings (go-tfe `admin_setting_cost_estimation.go`):
/// read, patched with the admin token, secrets never read back.
#[test]
fn cost_estimation_settings_are_modelled() {
    let (_w, h, admin) = after_a_run();
    let path = "/api/v2/admin/cost-estimation-settings";
    let (st, v) = h.get(path, Some(&admin));
    assert_eq!(
        (st, &v["data"]["type"]),
        (200, &serde_json::json!("cost-estimation-settings"))
    );
    let body = serde_json::json!({"data": {"type": "cost-estimation-settings", "attributes": {
        "enabled": true, "aws-enabled": true, "aws-access-key-id": "AKIAEXAMPLE",
        "aws-secret-key": "secret-aws-key"}}});
    let (st, v) = h.api("PATCH", path, &admin, &body);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["attributes"]["aws-access-key-id"], "AKIAEXAMPLE");
    assert!(v["data"]["attributes"].get("aws-secret-key").is_none());
    let bad = serde_json::json!({"data": {"type": "cost-estimation-settings", "attributes": {"enabled": "yes"}}});
    assert_eq!(h.api("PATCH", path, &admin, &bad).0, 422);
}

/// With no `[iact] subnets` and TFE on this very host, the API is asked
/// (blank TFE_IACT_SUBNETS still allows localhost: FDO configuration docs).
#[test]
fn blank_subnets_still_fetch_the_iact_from_the_host_itself() {
    let w = World::new(SimOptions {
        iact_subnets: vec![],
        ..sim_opts()
    });
    w.edit_config("subnets = [\"127.0.0.0/8\"]", "subnets = []");
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("/admin/retrieve-iact"), "{}", r.stdout);
}

/// Whether a site admin outside an organization's owners team may set its
/// token TTL policies is not in our sources: the simulator models both
/// answers, and the client copes with both: it sets them where TFE lets
/// it, and otherwise stops naming the owners team, with nothing else
/// undone.
#[test]
fn ttl_policies_of_an_organization_the_admin_does_not_own() {
    const ADMIN: &str = "existingAdmin1.atlasv1.adminadminadminadminadminadminadminadminadminad";
    const OWNER: &str = "orgOwnerToken1.atlasv1.ownerownerownerownerownerownerownerownerownerow";
    for site_admin_owner in [false, true] {
        let w = World::new(SimOptions {
            existing_admin_token: Some(ADMIN.into()),
            owned_orgs: vec![("my-org".into(), OWNER.into())],
            site_admin_owner,
            ..sim_opts()
        });
        let t = w
            .config_text()
            .replace("[admin]\n", "[admin]\ntoken = { env = \"T_ADMIN\" }\n");
        w.write_config(&t);
        let r = to_run(
            w.command(&["run"])
                .env("T_ADMIN", ADMIN)
                .output_timed()
                .unwrap(),
        );
        let s = w.snapshot();
        let policies = s["organizations"][0]["token-ttl-policies"].clone();
        if site_admin_owner {
            assert_code(&r, 0);
            assert!(!policies.is_null(), "{s}");
        } else {
            assert_code(&r, 1);
            assert!(
                r.stderr.contains("step token-ttl") && r.stderr.contains("owners team"),
                "{}",
                r.stderr
            );
            assert_eq!(
                s["organizations"][0]["max-ttl-enabled"], false,
                "nothing enforced"
            );
        }
        assert!(!r.both().contains(ADMIN));
    }
}

/// An install upgraded from 1.x keeps tokens without an expiry (2.0.0
/// release notes). Given such a token, the run treats it as living longer
/// than any policy: it rotates it under the user TTL, and the file it
/// leaves works while the policy refuses the old token.
#[test]
fn a_token_without_an_expiry_is_rotated_under_the_policy() {
    const ADMIN: &str = "upgradedAdmin1.atlasv1.adminadminadminadminadminadminadminadminadminad";
    let w = World::new(SimOptions {
        existing_admin_token: Some(ADMIN.into()),
        tokens_without_expiry: true,
        ..sim_opts()
    });
    let h = Http::new(w.sim.url());
    let s = w.snapshot();
    let given = s["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["token"] == ADMIN)
        .unwrap()
        .clone();
    assert!(
        given["lifetime-ms"].as_u64().unwrap() > 1_000_000_000_000_000,
        "{given}"
    );
    let t = w
        .config_text()
        .replace("[admin]\n", "[admin]\ntoken = { env = \"T_ADMIN\" }\n");
    w.write_config(&t);
    let r = to_run(
        w.command(&["run"])
            .env("T_ADMIN", ADMIN)
            .output_timed()
            .unwrap(),
    );
    assert_code(&r, 0);
    assert!(r.stdout.contains("admin token rotated"), "{}", r.stdout);
    let rotated = w.token_at(&w.token_file());
    assert_eq!(h.get("/api/v2/organizations/my-org", Some(&rotated)).0, 200);
    assert_eq!(
        h.get("/api/v2/organizations/my-org", Some(ADMIN)).0,
        401,
        "the policy refuses the token without an expiry"
    );
}

/// Strictness TFE does not have: an organization created and updated with
/// every attribute go-tfe's options send (`organization.go`) is taken, and
/// read back; a name no source gives is still refused.
#[test]
fn organization_attributes_go_tfe_sends_are_taken() {
    let (_w, h, admin) = after_a_run();
    let attrs = serde_json::json!({
        "name": "other-org", "email": "ops@example.com", "assessments-enforced": true,
        "session-remember": 600, "session-timeout": 60, "collaborator-auth-policy": "two_factor_mandatory",
        "cost-estimation-enabled": true, "owners-team-saml-role-id": "owners",
        "send-passing-statuses-for-untriggered-speculative-plans": false,
        "aggregated-commit-status-enabled": true, "speculative-plan-management-enabled": true,
        "allow-force-delete-workspaces": false, "default-execution-mode": "local",
        "stacks-enabled": false,
    });
    let body = serde_json::json!({"data": {"type": "organizations", "attributes": attrs}});
    let (st, v) = h.api("POST", "/api/v2/organizations", &admin, &body);
    assert_eq!(st, 201, "{v}");
    let (_, v) = h.get("/api/v2/organizations/other-org", Some(&admin));
    let got = &v["data"]["attributes"];
    assert_eq!(got["collaborator-auth-policy"], "two_factor_mandatory");
    assert_eq!(got["cost-estimation-enabled"], true);
    assert_eq!(got["session-timeout"], 60);
    let patch = serde_json::json!({"data": {"type": "organizations", "attributes": {
        "assessments-enforced": false, "email": "new@example.com"}}});
    assert_eq!(
        h.api("PATCH", "/api/v2/organizations/other-org", &admin, &patch)
            .0,
        200
    );
    let bad =
        serde_json::json!({"data": {"type": "organizations", "attributes": {"no-such-thing": 1}}});
    assert_eq!(
        h.api("PATCH", "/api/v2/organizations/other-org", &admin, &bad)
            .0,
        422
    );
}

/// The release and platform, once learned, are in the `finished` event,
/// the next `run_started`, `plan` and `status`.
#[test]
fn the_release_shows_in_events_plan_and_status() {
    let w = World::new(sim_opts());
    let r = w.run(&["run", "--output", "json"]);
    assert_code(&r, 0);
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let finished = events.iter().find(|e| e["event"] == "finished").unwrap();
    assert_eq!(finished["tfe_version"], "2.0.1", "{finished}");
    let started = events.iter().find(|e| e["event"] == "run_started").unwrap();
    assert_eq!(started["platform"], "enterprise");
    w.edit_config("api_rate_limit = 60", "api_rate_limit = 70");
    let r = w.run(&["run", "--output", "json"]);
    let started: serde_json::Value =
        serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(started["tfe_version"], "2.0.1", "{started}");
    let p = w.run(&["plan"]);
    assert!(
        p.stdout.contains("TFE 2.0.1") && p.stdout.contains("platform enterprise"),
        "{}",
        p.stdout
    );
    let s = w.run(&["status"]);
    assert!(s.stdout.contains("2.0.1"), "{}", s.stdout);
}

/// Without subnets the HTTP API is only TFE's own host's: against any
/// other address `source = "api"` without `[iact] subnets` is refused
/// before anything is sent, naming the key.
#[test]
fn api_without_subnets_is_refused_for_a_remote_tfe() {
    let w = World::new(sim_opts());
    let t = w
        .config_text()
        .replace(
            "source = \"auto\"\nsubnets = [\"127.0.0.0/8\"]",
            "source = \"api\"",
        )
        .replace(w.sim.url(), "https://tfe.example.com");
    w.write_config(&t);
    let r = w.run(&["validate"]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("[iact] subnets"), "{}", r.stderr);
    assert!(w.requests().is_empty());
}

/// A monthly release before v202003-1 has no customization-settings (the
/// v202309-1 settings docs date them from v202003-1): the client, knowing
/// the release, never asks for them and puts the support address in the
/// general settings, where that release keeps it.
#[test]
fn a_release_before_customization_settings_gets_the_address_in_general() {
    let w = world("v201912-1", false);
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    let s = w.snapshot();
    assert_eq!(
        s["settings"]["general"]["support-email-address"],
        "help@example.com"
    );
    let asked: Vec<String> = w
        .requests()
        .iter()
        .filter(|q| q.path.contains("customization-settings"))
        .map(|q| format!("{} {} {}", q.method, q.path, q.status))
        .collect();
    assert!(asked.is_empty(), "{asked:?}\n{}", r.stdout);
    // The tool's own HTTP client agrees: that release answers 404 there.
    let admin = w.token_at(&w.token_file());
    let (st, _) = Http::new(w.sim.url()).get("/api/v2/admin/customization-settings", Some(&admin));
    assert_eq!(st, 404);
    // A rerun after a change sends nothing for customization.
    w.edit_config("api_rate_limit = 60", "api_rate_limit = 61");
    assert_code(&w.run(&["run"]), 0);
}
