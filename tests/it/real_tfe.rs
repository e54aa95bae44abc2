//! What a real TFE does (issue 10): every token the run wrote still works at
//! the end, endpoints as today's TFE has them (and as older installs had
//! them), settings confirmed from TFE's answer, and pagination. The
//! simulator is as strict as its cited sources here, so these tests fail when
//! the client is wrong about TFE.

use std::collections::BTreeMap;

use serde_json::Value;
use tfe_bootstrap::sim::SimOptions;
use tfe_bootstrap::sim::tfe::{Org, Pool};

use crate::util::*;

/// The full config with both service-token steps, the contract's TTLs
/// (organization 1y, team 90d, user 30d, audit_trails 2y) and rotate_token at
/// its default.
fn tokens_world(opts: SimOptions) -> World {
    let w = World::new(opts).with_service_tokens();
    w.edit_config("rotate_token = true\n", "");
    w
}

fn file_token(w: &World, name: &str) -> String {
    let p = if name == "admin-token" {
        w.token_file()
    } else {
        w.dir.path().join(name)
    };
    w.token_at(&p)
}

/// The end-of-run invariant a user depends on: every token file answers 200.
#[track_caller]
fn every_token_file_works(w: &World) {
    let http = Http::new(w.sim.url());
    let admin = file_token(w, "admin-token");
    assert_eq!(
        http.get("/api/v2/account/details", Some(&admin)).0,
        200,
        "admin token: account details"
    );
    for (name, token) in [
        ("admin token", admin.clone()),
        ("org token", file_token(w, "org-token")),
        ("team token", file_token(w, "owners-token")),
    ] {
        assert_eq!(
            http.get("/api/v2/organizations/my-org", Some(&token)).0,
            200,
            "{name}: organization read"
        );
    }
}

/// Lifetime (ms) of the token the simulator issued with this value.
fn lifetime(w: &World, token: &str) -> u64 {
    w.snapshot()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["token"] == token)
        .and_then(|t| t["lifetime-ms"].as_u64())
        .expect("token issued by the simulator")
}

#[test]
fn every_token_file_authenticates_after_the_run_and_after_a_ttl_change() {
    let w = tokens_world(sim_opts());
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("verify-tokens"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("except write-only password, test-email-address"),
        "the detail says what could not be confirmed: {}",
        r.stdout
    );
    let org = &w.snapshot()["organizations"][0];
    assert_eq!(org["max-ttl-enabled"], true, "the policy is enforced");
    every_token_file_works(&w);
    // Minted within their type's policy, not with TFE's two-year default.
    let day = 86_400_000u64;
    assert!(lifetime(&w, &file_token(&w, "org-token")) <= 365 * day);
    assert!(lifetime(&w, &file_token(&w, "owners-token")) <= 90 * day);
    assert!(lifetime(&w, &file_token(&w, "admin-token")) <= 30 * day);

    // A second run that tightens the team TTL: the team token no longer
    // fits, so it is re-minted within the new policy; the org token fits and
    // is kept (re-minting it would invalidate it for everyone else).
    let (org_before, team_before) = (file_token(&w, "org-token"), file_token(&w, "owners-token"));
    w.edit_config("team = \"90d\"", "team = \"30d\"");
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("re-minted"), "{}", r.stdout);
    every_token_file_works(&w);
    assert_eq!(file_token(&w, "org-token"), org_before, "org token kept");
    assert_ne!(file_token(&w, "owners-token"), team_before);
    assert!(lifetime(&w, &file_token(&w, "owners-token")) <= 30 * day);

    // Nothing pending: no request at all.
    let before = w.requests().len();
    assert_code(&w.run(&["run"]), 0);
    assert_eq!(w.requests().len(), before, "a finished rerun sends nothing");
}

#[test]
fn killed_right_after_max_ttl_is_enforced_a_rerun_converges() {
    // Where is the max-ttl-enabled PATCH? The last mutating request of a run.
    let probe = tokens_world(sim_opts());
    assert_code(&probe.run(&["run"]), 0);
    let mutating = probe.mutating();
    let last = mutating.last().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.as_str()),
        ("PATCH", "/api/v2/organizations/my-org")
    );
    let n = mutating.len();

    let w = tokens_world(sim_opts());
    w.kill_at(&format!("mutating={n}:pause-after"));
    assert_eq!(
        w.snapshot()["organizations"][0]["max-ttl-enabled"],
        true,
        "TFE acted on the PATCH before the client died"
    );
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    every_token_file_works(&w);
}

#[test]
fn the_exact_pool_on_page_two_of_a_substring_search_is_found() {
    let w = World::new(sim_opts());
    // The organization exists already (made outside the run, so the admin is
    // not in its owners team): this test is about pools, not TTL policies.
    let t = w.config_text();
    let cut = t.find("max_ttl_enabled = true").unwrap();
    let rest = &t[t.find("[state]").unwrap()..];
    w.write_config(&format!("{}\n{rest}", &t[..cut]));
    // 24 pools whose names contain "default-pool", then the exact one: 25 in
    // all, the exact one 21st, on page 2 at TFE's 20 a page.
    let exact = w.sim.with_tfe(|t| {
        t.orgs.push(Org {
            name: "my-org".into(),
            email: "platform@example.com".into(),
            default_execution_mode: "remote".into(),
            default_agent_pool: None,
            max_ttl_enabled: false,
            security: Default::default(),
            owners: vec![],
            ttl: BTreeMap::new(),
            created: "2026-01-01T00:00:00Z".into(),
        });
        for i in 0..24 {
            t.pools.push(Pool {
                id: format!("apool-near{i:02}"),
                name: format!("default-pool-{i:02}"),
                org: "my-org".into(),
                organization_scoped: true,
            });
        }
        t.pools.push(Pool {
            id: "apool-exact".into(),
            name: "default-pool".into(),
            org: "my-org".into(),
            organization_scoped: true,
        });
        "apool-exact"
    });
    assert_code(&w.run(&["run"]), 0);
    let s = w.snapshot();
    assert_eq!(
        s["agent-pools"].as_array().unwrap().len(),
        25,
        "no duplicate"
    );
    assert_eq!(s["organizations"][0]["default-agent-pool-id"], exact);
    assert!(
        !w.mutating()
            .iter()
            .any(|r| r.path.ends_with("/agent-pools")),
        "no pool created"
    );
    assert!(
        w.requests()
            .iter()
            .filter(|r| r.path == "/api/v2/organizations/my-org/agent-pools")
            .count()
            >= 2,
        "both pages read: {:?}",
        w.requests()
            .iter()
            .map(|r| (&r.method, &r.path))
            .collect::<Vec<_>>()
    );
}

/// A config with a support address, SAML-free Twilio with a test SMS.
fn endpoints_world(version: &str) -> World {
    let w = World::new(SimOptions {
        version: version.into(),
        ..sim_opts()
    });
    let t = w.config_text().replace(
        "api_rate_limit = 60\n",
        "api_rate_limit = 60\nsupport_email_address = \"help@example.com\"\n",
    ) + TWILIO_SECTION;
    w.write_config(&t);
    w
}

/// Gives TFE a previous SAML IdP certificate (two certificate changes with
/// the admin token), so `saml revoke-old-cert` has something to revoke.
fn plant_old_cert(w: &World) {
    let admin = w.token_at(&w.token_file());
    for cert in [
        "-----BEGIN CERTIFICATE-----\nMIIBold\n-----END CERTIFICATE-----",
        "-----BEGIN CERTIFICATE-----\nMIIBnew\n-----END CERTIFICATE-----",
    ] {
        let body = serde_json::json!({"data": {"type": "saml-settings", "attributes": {"idp-cert": cert}}});
        let (st, v) =
            Http::new(w.sim.url()).api("PATCH", "/api/v2/admin/saml-settings", &admin, &body);
        assert_eq!(st, 200, "{v}");
    }
}

fn methods_to(w: &World, path: &str) -> Vec<(String, u16)> {
    w.requests()
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| (r.method, r.status))
        .collect()
}

#[test]
fn todays_tfe_gets_post_and_customization_settings() {
    let w = endpoints_world("2.0.1");
    assert_code(&w.run(&["run"]), 0);
    let s = w.snapshot();
    assert_eq!(
        s["settings"]["customization"]["support-email-address"],
        "help@example.com"
    );
    assert!(
        s["settings"]["general"]
            .get("support-email-address")
            .is_none(),
        "today's general settings have no such attribute"
    );
    assert_eq!(s["test-sms"].as_array().unwrap().len(), 1);
    assert_eq!(
        methods_to(&w, "/api/v2/admin/twilio-settings/verify"),
        [("POST".to_string(), 200)]
    );
    plant_old_cert(&w);
    assert_code(&w.run(&["saml", "revoke-old-cert"]), 0);
    assert_eq!(
        methods_to(
            &w,
            "/api/v2/admin/saml-settings/actions/revoke-old-certificate"
        ),
        [("POST".to_string(), 200)]
    );
}

#[test]
fn an_older_install_gets_put_patch_and_general_settings() {
    let w = endpoints_world(tfe_bootstrap::sim::tfe::PTFE_SETTINGS_PAGE);
    // That shape has no token TTL policies either.
    w.write_config(&without_ttl(&w.config_text()));
    assert_code(&w.run(&["run"]), 0);
    let s = w.snapshot();
    assert_eq!(
        s["settings"]["general"]["support-email-address"],
        "help@example.com"
    );
    assert_eq!(
        methods_to(&w, "/api/v2/admin/customization-settings"),
        [("PATCH".to_string(), 404)]
    );
    // One SMS: the 404 to POST sent nothing, the PATCH sent it.
    assert_eq!(s["test-sms"].as_array().unwrap().len(), 1);
    assert_eq!(
        methods_to(&w, "/api/v2/admin/twilio-settings/verify"),
        [("POST".to_string(), 404), ("PATCH".to_string(), 200)]
    );
    plant_old_cert(&w);
    assert_code(&w.run(&["saml", "revoke-old-cert"]), 0);
    assert_eq!(
        methods_to(
            &w,
            "/api/v2/admin/saml-settings/actions/revoke-old-certificate"
        ),
        [("POST".to_string(), 404), ("PUT".to_string(), 200)]
    );
}

#[test]
fn a_setting_tfe_silently_drops_fails_the_step_naming_the_key() {
    let w = World::new(sim_opts());
    w.sim.add_fault(
        tfe_bootstrap::sim::faults::FaultRule::parse(
            "patch=/api/v2/admin/general-settings:ignore=api-rate-limit",
        )
        .unwrap(),
    );
    let r = w.run(&["run"]);
    assert_code(&r, 1);
    let err = r.stderr.clone();
    assert!(
        err.contains("step general")
            && err.contains("api-rate-limit")
            && err.contains("/api/v2/admin/general-settings")
            && err.contains("sent 60"),
        "{err}"
    );
    assert!(
        !r.stdout.contains("general       applied"),
        "never reported applied: {}",
        r.stdout
    );
    // Not checkpointed: the next run applies it again, and TFE takes it now.
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert_eq!(w.snapshot()["settings"]["general"]["api-rate-limit"], 60);
}

#[test]
fn a_transient_500_on_an_idempotent_patch_is_retried() {
    let w = World::new(sim_opts());
    for rule in [
        "patch=/api/v2/admin/general-settings:500",
        "patch=/api/v2/organizations/my-org:500*2",
        "patch=/api/v2/organizations/my-org/token-ttl-policies:500",
    ] {
        w.sim
            .add_fault(tfe_bootstrap::sim::faults::FaultRule::parse(rule).unwrap());
    }
    assert_code(&w.run(&["run"]), 0);
    let fives = w
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.status == 500)
        .count();
    assert_eq!(fives, 4, "every scripted 500 was met and retried");
    // The SMTP PATCH's 500 is the SMTP server's verdict: not retried.
    let w = World::new(sim_opts());
    w.sim.add_fault(
        tfe_bootstrap::sim::faults::FaultRule::parse("patch=/api/v2/admin/smtp-settings:500")
            .unwrap(),
    );
    assert_code(&w.run(&["run"]), 1);
    let patches = methods_to(&w, "/api/v2/admin/smtp-settings")
        .into_iter()
        .filter(|(m, _)| m == "PATCH")
        .count();
    assert_eq!(patches, 1);
    assert_eq!(w.snapshot()["test-mails"], Value::Array(vec![]));
}

#[test]
fn the_example_config_is_safe_to_copy_and_runs_end_to_end() {
    let w = World::new(sim_opts());
    let mut t = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml"),
    )
    .unwrap();
    let smtp_password = w.dir.path().join("smtp-password");
    std::fs::write(&smtp_password, format!("{SMTP_PASSWORD}\n")).unwrap();
    // Only what an operator must fill in: where TFE is, the IACT (the shipped
    // config names TFE_IACT_TOKEN), and where secrets and state live. Every other key stays as shipped.
    for (from, to) in [
        (
            "address = \"https://tfe.example.com\"",
            format!("address = \"{}\"\nallow_insecure_http = true", w.sim.url()),
        ),
        (
            "\ntoken = { env = \"TFE_IACT_TOKEN\" }",
            "\ntoken = { env = \"TFE_IACT_TOKEN\" }".to_string(),
        ),
        (
            "/run/secrets/smtp-password",
            smtp_password.display().to_string(),
        ),
        (
            "# dir = \"/var/lib/tfe-bootstrap\"",
            format!("dir = \"{}\"", w.state_dir().display()),
        ),
    ] {
        assert!(t.contains(from), "example.toml no longer has {from:?}");
        t = t.replacen(from, &to, 1);
    }
    w.write_config(&t);
    let run = |args: &[&str]| {
        let out = w
            .command(args)
            .env("TFE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("TFE_IACT_TOKEN", IACT)
            .output_timed()
            .unwrap();
        let r = to_run(out);
        w.assert_no_secrets(&r);
        r
    };
    let r = run(&["validate"]);
    assert_code(&r, 0);
    assert!(!r.stdout.contains("warning"), "{}", r.stdout);
    assert_code(&run(&["run"]), 0);
    // The shipped TTLs (user 30d, enforced) do not lock the admin out: the
    // next run that changes something still works.
    let http = Http::new(w.sim.url());
    let admin = std::fs::read_to_string(w.token_file()).unwrap();
    assert_eq!(
        http.get("/api/v2/organizations/my-org", Some(admin.trim()))
            .0,
        200
    );
    let t = w
        .config_text()
        .replace("api_rate_limit = 60", "api_rate_limit = 90");
    w.write_config(&t);
    assert_code(&run(&["run"]), 0);
    assert_eq!(w.snapshot()["settings"]["general"]["api-rate-limit"], 90);
}
