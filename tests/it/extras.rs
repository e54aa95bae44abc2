//! Beyond the first admin (issue #6): SAML, Twilio, the organization and
//! owners-team service-account tokens, and token safety under TTL policies.

use crate::util::*;

const SAML_KEY: &str = "-----BEGIN PRIVATE KEY-----\nsaml-sp-key-Zq81\n-----END PRIVATE KEY-----";

fn saml_world() -> World {
    let w = World::new(sim_opts());
    let cert = w.dir.path().join("idp.pem");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nIDP-CERT-ONE\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let t = w.config_text()
        + &format!(
            r#"
[saml]
enabled = true
idp_cert = {{ file = "{}" }}
private_key = {{ env = "T_SAML_KEY" }}
sso_endpoint_url = "https://idp.example.com/sso"
slo_endpoint_url = "https://idp.example.com/slo"
attr_groups = "Groups"
site_admin_role = "tfe-admins"
sso_api_token_session_timeout = "8h"
signature_signing_method = "SHA256"
"#,
            cert.display()
        );
    w.write_config(&t);
    w
}

fn run_saml(w: &World, args: &[&str]) -> Run {
    let r = to_run(
        w.command(args)
            .env("T_SAML_KEY", SAML_KEY)
            .output_timed()
            .unwrap(),
    );
    w.assert_no_secrets(&r);
    assert!(
        !r.both().contains("saml-sp-key-Zq81"),
        "the SAML private key leaked:\n{}",
        r.both()
    );
    r
}

#[test]
fn saml_is_applied_once_reapplied_on_change_and_rotated() {
    let w = saml_world();
    assert_code(&run_saml(&w, &["run"]), 0);
    let saml = &w.snapshot()["settings"]["saml"];
    assert_eq!(saml["enabled"], true);
    assert!(saml["idp-cert"].as_str().unwrap().contains("IDP-CERT-ONE"));
    assert_eq!(saml["attr-groups"], "Groups");
    assert_eq!(saml["site-admin-role"], "tfe-admins");
    assert_eq!(saml["sso-api-token-session-timeout"], 8 * 3600);
    assert_eq!(saml["private-key-set"], true);
    for f in files_under(&w.state_dir()) {
        assert!(
            !std::fs::read_to_string(&f)
                .unwrap_or_default()
                .contains("saml-sp-key"),
            "{}",
            f.display()
        );
    }
    // No-op rerun.
    let n = w.mutating().len();
    assert_code(&run_saml(&w, &["run"]), 0);
    assert_eq!(w.mutating().len(), n);
    // A new IdP certificate (the file changed): re-applied; TFE keeps the old one for rotation.
    std::fs::write(
        w.dir.path().join("idp.pem"),
        "-----BEGIN CERTIFICATE-----\nIDP-CERT-TWO\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert_code(&run_saml(&w, &["run"]), 0);
    let new: Vec<String> = w
        .mutating()
        .iter()
        .skip(n)
        .map(|e| e.path.clone())
        .collect();
    assert_eq!(new, vec!["/api/v2/admin/saml-settings"]);
    assert!(
        w.snapshot()["settings"]["saml"]["old-idp-cert"]
            .as_str()
            .unwrap()
            .contains("IDP-CERT-ONE")
    );
    // Once the new one works: revoke the old.
    let r = run_saml(&w, &["saml", "revoke-old-cert"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("revoked"), "{}", r.stdout);
    assert!(w.snapshot()["settings"]["saml"]["old-idp-cert"].is_null());
}

#[test]
fn saml_validation_names_the_missing_keys() {
    let w = saml_world();
    w.edit_config("sso_endpoint_url = \"https://idp.example.com/sso\"\n", "");
    let r = run_saml(&w, &["run"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("[saml] sso_endpoint_url") && r.stderr.contains("enabled = true"),
        "{}",
        r.stderr
    );
    w.edit_config(
        "signature_signing_method = \"SHA256\"",
        "signature_signing_method = \"MD5\"",
    );
    let r = run_saml(&w, &["run"]);
    assert!(
        r.stderr.contains("[saml] signature_signing_method"),
        "{}",
        r.stderr
    );
    assert!(w.requests().is_empty());
}

fn twilio_world() -> World {
    let w = World::new(sim_opts());
    let t = w.config_text() + TWILIO_SECTION;
    w.write_config(&t);
    w
}

#[test]
fn twilio_sends_one_sms_only_when_applied() {
    let w = twilio_world();
    assert_code(&w.run(&["run"]), 0);
    let s = w.snapshot();
    assert_eq!(s["settings"]["twilio"]["account-sid"], "AC0123456789");
    assert_eq!(s["settings"]["twilio"]["auth-token-set"], true);
    assert_eq!(s["test-sms"], serde_json::json!(["+15555550199"]));
    assert_code(&w.run(&["run"]), 0);
    assert_eq!(
        w.snapshot()["test-sms"].as_array().unwrap().len(),
        1,
        "no SMS on a no-op rerun"
    );
    w.edit_config(
        "from_number = \"+15555550100\"",
        "from_number = \"+15555550111\"",
    );
    assert_code(&w.run(&["run"]), 0);
    let s = w.snapshot();
    assert_eq!(s["settings"]["twilio"]["from-number"], "+15555550111");
    assert_eq!(
        s["test-sms"].as_array().unwrap().len(),
        2,
        "one SMS for the re-applied settings"
    );
}

#[test]
fn twilio_validation() {
    let w = twilio_world();
    w.edit_config("auth_token = { env = \"T_TWILIO_TOKEN\" }\n", "");
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("[twilio] auth_token"), "{}", r.stderr);
    w.write_config(&twilio_world_text(&w).replace(
        "enabled = true\naccount_sid",
        "enabled = false\naccount_sid",
    ));
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("[twilio] test_number"), "{}", r.stderr);
    assert!(w.requests().is_empty());
}

fn twilio_world_text(w: &World) -> String {
    w.config_text().replace(
        "[twilio]\n",
        "[twilio]\nauth_token = { env = \"T_TWILIO_TOKEN\" }\n",
    )
}

fn tokens_world() -> World {
    let w = World::new(sim_opts()).with_service_tokens();
    // TTLs the minted tokens' 24 months fit in, so they stay usable here.
    w.edit_config("organization = \"1y\"", "organization = \"2y\"");
    w.edit_config("team = \"90d\"", "team = \"2y\"");
    w
}

fn read_token(w: &World, name: &str) -> String {
    w.token_at(&w.dir.path().join(name))
}

#[test]
fn service_tokens_are_minted_once_and_only_regenerated_on_force() {
    let w = tokens_world();
    assert_code(&w.run(&["run"]), 0);
    let org = read_token(&w, "org-token");
    let team = read_token(&w, "owners-token");
    assert!(w.authenticates(&org) && w.authenticates(&team));
    // Rerun: nothing regenerated, both still valid.
    let n = w.mutating().len();
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert_eq!(w.mutating().len(), n);
    assert_eq!(read_token(&w, "org-token"), org);
    // Even when the step is re-run (reset), an existing file is kept.
    assert_code(&w.run(&["reset", "--step", "org-token,team-token"]), 0);
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("not regenerated"), "{}", r.stdout);
    assert_eq!(w.mutating().len(), n);
    assert!(w.authenticates(&org));
    // --force mints a new one: the old is invalid from then on.
    assert_code(&w.run(&["run", "--force", "org-token"]), 0);
    let org2 = read_token(&w, "org-token");
    assert_ne!(org2, org);
    assert!(w.authenticates(&org2) && !w.authenticates(&org));
    assert!(w.authenticates(&team), "the team token is untouched");
}

#[test]
fn a_crash_around_the_org_token_mint_never_loses_the_file_silently() {
    let (_, log) = {
        let w = tokens_world();
        assert_code(&w.run(&["run"]), 0);
        ((), w.requests())
    };
    let mint = log
        .iter()
        .find(|e| e.path == "/api/v2/organizations/my-org/authentication-token")
        .unwrap();
    for rule in [
        format!("seq={}:pause-after", mint.seq), // minted, answer lost
        format!("seq={}:pause-drop", mint.seq + 1), // answered, killed before the next request
    ] {
        let w = tokens_world();
        w.kill_at(&rule);
        let r = w.run(&["run"]);
        assert_code(&r, 0);
        let org = read_token(&w, "org-token");
        assert!(
            w.authenticates(&org),
            "{rule}: the file holds the organization's valid token"
        );
        let org_tokens = w.snapshot()["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"]["organization"].is_string() && t["kind"]["team"].is_null())
            .count();
        assert_eq!(org_tokens, 1, "{rule}: one valid organization token");
    }
}

#[test]
fn service_token_tables_need_a_file() {
    let w = tokens_world();
    let t = w.config_text();
    let i = t.find("[organization.service_token]\nfile = ").unwrap();
    let end = t[i..].find("\n\n").unwrap();
    w.write_config(&(t[..i].to_string() + "[organization.service_token]" + &t[i + end..]));
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("[organization.service_token] file"),
        "{}",
        r.stderr
    );
}

#[test]
fn rotation_is_the_default_and_turning_it_off_under_a_short_user_ttl_is_refused() {
    // Default: rotate_token is on, so the 30d user TTL cannot lock the admin out.
    let w = World::new(sim_opts());
    w.edit_config("rotate_token = true\n", "");
    assert_code(&w.run(&["run"]), 0);
    let kept = std::fs::read_to_string(w.token_file()).unwrap();
    let first = w.issued_tokens()[0].clone();
    assert_ne!(
        kept.trim(),
        first,
        "the initial two-year token was replaced"
    );
    let http = crate::util::Http::new(w.sim.url());
    assert_eq!(
        http.get("/api/v2/organizations/my-org", Some(kept.trim()))
            .0,
        200
    );

    // Turned off explicitly: refused before any request, naming the key.
    let w = World::new(sim_opts());
    w.edit_config("rotate_token = true", "rotate_token = false");
    for cmd in ["validate", "run"] {
        let r = w.run(&[cmd]);
        assert_code(&r, 2);
        assert!(
            r.stderr.contains("[admin] rotate_token") && r.stderr.contains("30d"),
            "{}",
            r.stderr
        );
    }
    assert!(w.requests().is_empty(), "nothing sent");
    assert!(!w.state_dir().exists(), "nothing written");

    // "2y" is shorter than TFE's two-year default (730.49 days): still refused.
    w.edit_config("user = \"30d\"", "user = \"2y\"");
    assert_code(&w.run(&["validate"]), 2);
    // A policy longer than the default lifetime cannot refuse the token.
    w.edit_config("user = \"2y\"", "user = \"3y\"");
    assert_code(&w.run(&["validate"]), 0);
}

#[test]
fn a_moved_token_file_carries_the_token_and_another_orgs_file_is_refused() {
    let w = tokens_world();
    assert_code(&w.run(&["run"]), 0);
    let org = read_token(&w, "org-token");
    let n = w.mutating().len();
    let old = format!("file = \"{}\"", w.dir.path().join("org-token").display());
    let new = format!(
        "file = \"{}\"",
        w.dir.path().join("moved-org-token").display()
    );
    w.edit_config(&old, &new);
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("not regenerated"), "{}", r.stdout);
    assert_eq!(
        read_token(&w, "moved-org-token"),
        org,
        "the same token, carried over"
    );
    assert_eq!(w.mutating().len(), n, "nothing minted");
    assert!(w.authenticates(&org), "the token in use stays valid");

    // The organization is renamed in the config: the file still holds my-org's token.
    w.edit_config("name = \"my-org\"", "name = \"other-org\"");
    let r = w.run(&["run"]);
    assert_code(&r, 1);
    assert!(
        r.stderr
            .contains("holds the organization token of organization \"my-org\"")
            && r.stderr.contains("--force org-token"),
        "{}",
        r.stderr
    );
    assert_eq!(
        read_token(&w, "moved-org-token"),
        org,
        "the file is left alone"
    );
}
