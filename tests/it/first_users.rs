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

/// A world whose config asks for an agent token in `agent-token`.
fn agent_token_world() -> (World, std::path::PathBuf) {
    let w = World::new(sim_opts());
    let file = w.dir.path().join("agent-token");
    w.edit_config(
        "[organization.token_ttl]",
        &format!(
            "[organization.agent_token]\nfile = \"{}\"\n\n[organization.token_ttl]",
            file.display()
        ),
    );
    (w, file)
}

/// `[organization.agent_token]` for the default pool: the run ends with a
/// token the simulator holds for that pool, the file (0600) holds its
/// value, and a rerun sends no request.
#[test]
fn an_agent_token_for_the_pool_is_minted_once() {
    let (w, file) = agent_token_world();
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

/// The agent token file changed behind the run's back (overwritten by
/// hand, by a config-management tool, a restore): the next run checks it
/// again, says the file no longer holds the token it wrote, and names the
/// fix, rather than exiting 0 over a file the agent cannot use. The fix
/// then leaves a file whose token the pool holds.
#[test]
fn an_agent_token_file_changed_behind_the_run_is_caught() {
    let (w, file) = agent_token_world();
    assert_code(&w.run(&["run"]), 0);
    let planted = "AbCdEfGhIjKlMn.atlasv1.planted-by-hand-0123456789";
    std::fs::write(&file, format!("{planted}\n")).unwrap();
    let r = w.run(&["run"]);
    assert_code(&r, 1);
    assert!(
        r.stderr.contains(&file.display().to_string())
            && r.stderr.contains("changed")
            && r.stderr.contains("--force agent-token"),
        "{}",
        r.stderr
    );
    w.assert_no_secrets(&r);
    assert!(
        !r.both().contains(planted),
        "the file's content is not shown"
    );
    let r = w.run(&["run", "--force", "agent-token"]);
    assert_code(&r, 0);
    assert_ne!(w.token_at(&file), planted);
    w.assert_token_files_work();
    assert_code(&w.run(&["run"]), 0);
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

/// `[customization]` and the organization's security settings, as an
/// operator sets them on day one: TFE holds each one afterwards (read back
/// from the simulator), a rerun sends nothing, and a change sends one PATCH.
#[test]
fn customization_and_org_security_settings_are_applied_and_confirmed() {
    let w = World::new(sim_opts());
    w.edit_config(
        "[organization]\n",
        "[customization]\nsupport_email_address = \"help@example.com\"\nlogin_help = \"Ask #platform\"\nfooter = \"Internal\"\nerror = \"Ask #platform\"\nnew_user = \"Welcome\"\n\n[organization]\ncollaborator_auth_policy = \"two_factor_mandatory\"\nsession_timeout = \"8h\"\nsession_remember = \"7d\"\n",
    );
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("customization"), "{}", r.stdout);
    let s = w.snapshot();
    let c = &s["settings"]["customization"];
    assert_eq!(c["support-email-address"], "help@example.com");
    assert_eq!(c["login-help"], "Ask #platform");
    assert_eq!(c["footer"], "Internal");
    assert_eq!(c["error"], "Ask #platform");
    assert_eq!(c["new-user"], "Welcome");
    let admin = w.token_at(&w.token_file());
    let (_, org) = Http::new(w.sim.url()).get("/api/v2/organizations/my-org", Some(&admin));
    let a = &org["data"]["attributes"];
    assert_eq!(a["collaborator-auth-policy"], "two_factor_mandatory");
    assert_eq!(a["session-timeout"], 480);
    assert_eq!(a["session-remember"], 10080);

    let before = w.requests().len();
    assert_code(&w.run(&["run"]), 0);
    assert_eq!(w.requests().len(), before, "a rerun sends no request");

    let m = w.mutating().len();
    w.edit_config("session_timeout = \"8h\"", "session_timeout = \"12h\"");
    assert_code(&w.run(&["run"]), 0);
    let writes: Vec<String> = w.mutating()[m..]
        .iter()
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert_eq!(writes, ["PATCH /api/v2/organizations/my-org"], "{writes:?}");
    let (_, org) = Http::new(w.sim.url()).get("/api/v2/organizations/my-org", Some(&admin));
    assert_eq!(org["data"]["attributes"]["session-timeout"], 720);
}

/// `[general] support_email_address` still works, with a warning that it
/// moved; a session timeout TFE cannot hold (not whole minutes) and an
/// unknown policy are refused before anything is sent.
#[test]
fn the_old_support_email_key_warns_and_bad_security_values_are_refused() {
    let w = World::new(sim_opts());
    w.edit_config(
        "api_rate_limit = 60\n",
        "api_rate_limit = 60\nsupport_email_address = \"help@example.com\"\n",
    );
    let r = w.run(&["validate"]);
    assert_code(&r, 0);
    assert!(
        r.both()
            .contains("[general] support_email_address is deprecated: move it to [customization]"),
        "{}",
        r.both()
    );
    assert_code(&w.run(&["run"]), 0);
    assert_eq!(
        w.snapshot()["settings"]["customization"]["support-email-address"],
        "help@example.com"
    );

    let w = World::new(sim_opts());
    w.edit_config(
        "[organization]\n",
        "[organization]\nsession_timeout = \"90s\"\ncollaborator_auth_policy = \"sms\"\n",
    );
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("[organization] session_timeout")
            && r.stderr.contains("whole number of minutes")
            && r.stderr.contains("[organization] collaborator_auth_policy"),
        "{}",
        r.stderr
    );
    assert!(w.requests().is_empty(), "nothing sent");
}

/// `reset --step X` says what the next run will do, and the next run does
/// exactly that: smtp reads TFE first and sends nothing (no second mail);
/// org-token keeps its file.
#[test]
fn reset_says_what_the_next_run_really_does() {
    let w = World::new(sim_opts()).with_service_tokens();
    assert_code(&w.run(&["run"]), 0);
    let r = w.run(&["reset", "--step", "smtp,org-token"]);
    assert_code(&r, 0);
    assert!(
        r.stdout
            .contains("smtp          next run: reads TFE first and sends nothing"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("org-token     next run: keeps the token file when it exists"),
        "{}",
        r.stdout
    );
    let token = w.token_at(&w.dir.path().join("org-token"));
    let m = w.mutating().len();
    assert_code(&w.run(&["run"]), 0);
    assert_eq!(w.mutating().len(), m, "the next run sent a change");
    assert_eq!(w.snapshot()["test-mails"].as_array().unwrap().len(), 1);
    assert_eq!(w.token_at(&w.dir.path().join("org-token")), token);
}
