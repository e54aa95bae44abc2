//! Ready for first users (issue 23): what the run claims is what happened.

use crate::util::*;

/// With SMTP disabled TFE sends no test mail (go-tfe's integration test
/// patches `enabled = false` with a test address and expects success).
/// validate warns that the address does nothing, the run's report never
/// claims a mail, and the simulator records none.
#[test]
fn a_test_address_with_smtp_disabled_sends_and_claims_no_mail() {
    let w = World::new(sim_opts());
    w.edit_config("[smtp]\nenabled = true", "[smtp]\nenabled = false");
    let r = w.run(&["validate"]);
    assert_code(&r, 0);
    assert!(
        r.stdout
            .contains("test_email_address does nothing while enabled = false"),
        "{}",
        r.stdout
    );
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(!r.stdout.contains("TFE sent a test mail"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("no test mail to ops@example.com: SMTP is disabled"),
        "{}",
        r.stdout
    );
    assert_eq!(w.snapshot()["test-mails"].as_array().unwrap().len(), 0);
    assert_eq!(w.snapshot()["settings"]["smtp"]["enabled"], false);
}

/// `[organization.agent_token]` for the default pool: the run ends with a
/// token the simulator holds for that pool, the file (0600) holds its
/// value, and a rerun sends no request.
#[test]
fn an_agent_token_for_the_pool_is_minted_once() {
    let w = World::new(sim_opts());
    let file = w.dir.path().join("agent-token");
    w.edit_config(
        "[organization.token_ttl]",
        &format!(
            "[organization.agent_token]\nfile = \"{}\"\n\n[organization.token_ttl]",
            file.display()
        ),
    );
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    let s = w.snapshot();
    let pool = s["agent-pools"][0]["id"].as_str().unwrap().to_string();
    let tokens = s["agent-tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "{s}");
    assert_eq!(tokens[0]["pool"], pool.as_str());
    assert_eq!(tokens[0]["description"], "tfe-bootstrap");
    assert_eq!(w.token_at(&file), tokens[0]["token"].as_str().unwrap());
    assert!(r.stdout.contains("agent token"), "{}", r.stdout);
    let before = w.requests().len();
    assert_code(&w.run(&["run"]), 0);
    assert_eq!(w.requests().len(), before, "a rerun sends no request");
    // Revoked on TFE: verify-tokens says so on the next run that checks.
    let id = tokens[0]["id"].as_str().unwrap();
    let admin = w.token_at(&w.token_file());
    let (st, _, _) = Http::new(w.sim.url()).req(
        "DELETE",
        &format!("/api/v2/authentication-tokens/{id}"),
        Some(&admin),
        None,
        "application/vnd.api+json",
    );
    assert_eq!(st, 204);
    w.edit_config("api_rate_limit = 60", "api_rate_limit = 61");
    let r = w.run(&["run"]);
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("no longer in pool") && r.stderr.contains("--force agent-token"),
        "{}",
        r.stderr
    );
}

/// `saml revoke-old-cert` with no previous IdP certificate on TFE reads
/// first, says there is nothing to revoke, and sends no POST.
#[test]
fn revoking_with_no_previous_certificate_sends_nothing() {
    let w = World::new(sim_opts());
    assert_code(&w.run(&["run"]), 0);
    let before = w.mutating().len();
    let r = w.run(&["saml", "revoke-old-cert"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("nothing to revoke"), "{}", r.stdout);
    assert_eq!(w.mutating().len(), before, "no POST");
}
