//! `tfe-bootstrap run` end to end against tfe-sim (issue #3): final server
//! state, files on disk, exit codes, the words of the errors.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{Value, json};
use tfe_bootstrap::sim::SimOptions;

use crate::util::*;

/// The configured parts of the simulator's state, key by key.
fn assert_fully_configured(w: &World) {
    let s = w.snapshot();
    let users = s["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "exactly one admin: {users:?}");
    assert_eq!(users[0]["username"], "tfe-admin");
    assert_eq!(users[0]["email"], "platform@example.com");
    assert_eq!(users[0]["site-admin"], true);
    let g = &s["settings"]["general"];
    assert_eq!(g["limit-user-organization-creation"], true);
    assert_eq!(g["api-rate-limiting-enabled"], true);
    assert_eq!(g["api-rate-limit"], 60);
    let m = &s["settings"]["smtp"];
    assert_eq!(m["enabled"], true);
    assert_eq!(m["host"], "smtp.example.com");
    assert_eq!(m["port"], 587);
    assert_eq!(m["sender"], "noreply@example.com");
    assert_eq!(m["auth"], "login");
    assert_eq!(m["username"], "smtp-bot");
    assert_eq!(m["password-set"], true);
    assert_eq!(s["test-mails"], json!(["ops@example.com"]));
    let orgs = s["organizations"].as_array().unwrap();
    assert_eq!(orgs.len(), 1, "exactly one organization");
    let o = &orgs[0];
    assert_eq!(o["name"], "my-org");
    assert_eq!(o["email"], "platform@example.com");
    assert_eq!(o["default-execution-mode"], "agent");
    assert_eq!(o["default-agent-pool"], "default-pool");
    assert_eq!(o["max-ttl-enabled"], true);
    let ttl = &o["token-ttl-policies"];
    assert_eq!(ttl["organization"], 365u64 * 86_400_000);
    assert_eq!(ttl["team"], 90u64 * 86_400_000);
    assert_eq!(ttl["user"], 30u64 * 86_400_000);
    assert_eq!(ttl["audit_trails"], 730u64 * 86_400_000);
    assert_eq!(
        s["agent-pools"].as_array().unwrap().len(),
        1,
        "exactly one pool"
    );
}

/// The configured state without ids, tokens and logs: equal across runs.
pub fn config_view(s: &Value) -> Value {
    let orgs: Vec<Value> = s["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let mut o = o.clone();
            o.as_object_mut().unwrap().remove("default-agent-pool-id");
            o
        })
        .collect();
    json!({
        "users": s["users"].as_array().unwrap().iter().map(|u| json!([u["username"], u["email"], u["site-admin"]])).collect::<Vec<_>>(),
        "settings": s["settings"], "organizations": orgs,
        "pools": s["agent-pools"].as_array().unwrap().iter().map(|p| p["name"].clone()).collect::<Vec<_>>(),
    })
}

#[test]
fn full_run_configures_everything_and_keeps_the_token_safe() {
    let w = World::new(sim_opts());
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert_fully_configured(&w);
    // The token file holds the newest issued token (rotated within the 30-day
    // user-token TTL before enforcement), mode 0600, directory 0700.
    let token = std::fs::read_to_string(w.token_file()).unwrap();
    let tokens = w.snapshot()["tokens"].as_array().unwrap().clone();
    assert_eq!(
        tokens.len(),
        2,
        "the initial admin's token and the rotated one"
    );
    assert_eq!(token.trim(), tokens[1]["token"].as_str().unwrap());
    assert!(
        tokens[1]["lifetime-ms"].as_u64().unwrap() <= 30 * 86_400_000,
        "{:?}",
        tokens[1]
    );
    assert!(r.stdout.contains("admin token rotated"), "{}", r.stdout);
    // The rotated token is still accepted for the organization once the policy is enforced.
    let http = Http::new(w.sim.url());
    assert_eq!(
        http.get("/api/v2/organizations/my-org", Some(token.trim()))
            .0,
        200
    );
    assert_eq!(
        http.get(
            "/api/v2/organizations/my-org",
            Some(tokens[0]["token"].as_str().unwrap())
        )
        .0,
        401
    );
    assert_eq!(
        std::fs::metadata(w.token_file())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(w.state_dir())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let state = w.state_dir().join("state.json");
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let st: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    for step in [
        "wait",
        "iact",
        "admin",
        "general",
        "smtp",
        "organization",
        "agent-pool",
        "org-defaults",
        "token-ttl",
    ] {
        assert_eq!(
            st["steps"][step]["status"], "done",
            "{step} not checkpointed"
        );
    }
    for step in ["saml", "twilio", "org-token"] {
        assert!(st["steps"].get(step).is_none());
        assert!(
            r.stdout.contains(&format!("{step:<13} skipped")),
            "{step} not reported skipped:\n{}",
            r.stdout
        );
    }
    assert!(
        !r.stdout.contains('\x1b'),
        "no ANSI codes when stdout is not a terminal"
    );
}

#[test]
fn second_run_sends_nothing_and_a_changed_key_reapplies_only_its_step() {
    let w = World::new(sim_opts());
    assert_code(&w.run(&["run"]), 0);
    let before = w.requests().len();
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert_eq!(
        w.requests().len(),
        before,
        "a rerun with nothing to do sends no request"
    );
    assert!(r.stdout.contains("0 applied"), "{}", r.stdout);

    w.edit_config(
        "host = \"smtp.example.com\"",
        "host = \"smtp2.example.com\"",
    );
    let mutating_before = w.mutating().len();
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    let new: Vec<_> = w.mutating().into_iter().skip(mutating_before).collect();
    assert_eq!(new.len(), 1, "exactly one mutating request: {new:?}");
    assert_eq!(
        (new[0].method.as_str(), new[0].path.as_str()),
        ("PATCH", "/api/v2/admin/smtp-settings")
    );
    let s = w.snapshot();
    assert_eq!(s["settings"]["smtp"]["host"], "smtp2.example.com");
    assert_eq!(
        s["test-mails"].as_array().unwrap().len(),
        2,
        "one more test mail"
    );
    assert!(r.stdout.contains("config changed"), "{}", r.stdout);
}

#[test]
fn a_changed_secret_reapplies_its_step() {
    let w = World::new(sim_opts());
    assert_code(&w.run(&["run"]), 0);
    let before = w.mutating().len();
    let out = w
        .command(&["run"])
        .env("T_SMTP_PASSWORD", "another-smtp-Pa55")
        .output_timed()
        .unwrap();
    assert_code(&to_run(out), 0);
    let new: Vec<_> = w.mutating().into_iter().skip(before).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0].path, "/api/v2/admin/smtp-settings");
}

/// Every rule of the contract: exit 2, the key named, nothing sent, nothing written.
#[test]
fn every_validation_rule_exits_2_naming_the_key_before_any_request() {
    let w = World::new(sim_opts());
    let base = w.config_text();
    let cases: &[(&str, &str, &str)] = &[
        (
            "default_execution_mode = \"agent\"",
            "default_execution_mode = \"remote\"",
            "default_agent_pool",
        ),
        (
            "api_rate_limit = 60",
            "api_rate_limit = 29",
            "api_rate_limit",
        ),
        ("auth = \"login\"", "auth = \"oauth\"", "[smtp] auth"),
        ("username = \"smtp-bot\"\n", "", "[smtp] username"),
        ("port = 587", "port = 70000", "[smtp] port"),
        (
            "sender = \"noreply@example.com\"",
            "sender = \"noreply\"",
            "[smtp] sender",
        ),
        (
            "test_email_address = \"ops@example.com\"",
            "test_email_address = \"ops at example\"",
            "test_email_address",
        ),
        (
            "[organization.token_ttl]\norganization = \"1y\"\nteam = \"90d\"\nuser = \"30d\"\naudit_trails = \"2y\"",
            "[organization.token_ttl]",
            "[organization.token_ttl]",
        ),
        (
            "user = \"30d\"",
            "user = \"30 days\"",
            "[organization.token_ttl] user",
        ),
        (
            "user = \"30d\"",
            "user = -5",
            "[organization.token_ttl] user",
        ),
        (
            "user = \"30d\"",
            "user = \"0d\"",
            "[organization.token_ttl] user",
        ),
        (
            "email = \"platform@example.com\"\npassword",
            "email = \"platform\"\npassword",
            "[admin] email",
        ),
        (
            "subnets = [\"127.0.0.0/8\"]",
            "subnets = [\"127.0.0.0/99\"]",
            "[iact] subnets",
        ),
        (
            "source = \"auto\"",
            "source = \"command\"",
            "[iact] command",
        ),
        ("source = \"auto\"", "source = \"token\"", "[iact] token"),
        ("source = \"auto\"", "source = \"magic\"", "[iact] source"),
        (
            "allow_insecure_http = true",
            "allow_insecure_http = false",
            "[tfe] address",
        ),
        (
            "request_timeout = \"10s\"",
            "request_timeout = \"10\"",
            "[tfe] request_timeout",
        ),
        (
            "request_timeout = \"10s\"",
            "ca_bundle = \"/nonexistent/ca.pem\"",
            "[tfe] ca_bundle",
        ),
        (
            "name = \"my-org\"",
            "name = \"my org\"",
            "[organization] name",
        ),
        ("timeout = \"20s\"", "timeout = \"soon\"", "[wait] timeout"),
        (
            "address = \"http://",
            "address = \"http://ops:Hunter2-secret@",
            "user or password",
        ),
        (
            "host = \"smtp.example.com\"",
            "hots = \"smtp.example.com\"",
            "did you mean \"host\"",
        ),
        (
            "[general]",
            "[generel]",
            "unknown section [generel]: did you mean [general]?",
        ),
    ];
    for (from, to, key) in cases {
        assert!(base.contains(from), "test case needs {from:?}");
        w.write_config(&base.replacen(from, to, 1));
        let r = w.run(&["run"]);
        assert_eq!(r.code, 2, "case {to:?}: exit {}\n{}", r.code, r.both());
        assert!(
            r.stderr.contains(key),
            "case {to:?}: error does not name {key:?}:\n{}",
            r.stderr
        );
        assert!(
            !r.stderr.contains("Hunter2-secret"),
            "case {to:?}: a password in the address was echoed"
        );
        assert!(w.requests().is_empty(), "case {to:?}: a request was sent");
        assert!(
            !w.state_dir().exists(),
            "case {to:?}: the state dir was created"
        );
    }
    // Secrets: a missing env var, a too-short password, an empty file.
    w.write_config(&base);
    let r = to_run(
        w.command(&["run"])
            .env_remove("T_SMTP_PASSWORD")
            .output_timed()
            .unwrap(),
    );
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("[smtp] password") && r.stderr.contains("T_SMTP_PASSWORD"),
        "{}",
        r.stderr
    );
    let r = to_run(
        w.command(&["run"])
            .env("T_ADMIN_PASSWORD", "short")
            .output_timed()
            .unwrap(),
    );
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("[admin] password") && r.stderr.contains("10 characters"),
        "{}",
        r.stderr
    );
    let empty = w.dir.path().join("empty-secret");
    std::fs::write(&empty, "\n").unwrap();
    w.write_config(&base.replace(
        "{ env = \"T_SMTP_PASSWORD\" }",
        &format!("{{ file = \"{}\" }}", empty.display()),
    ));
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("[smtp] password") && r.stderr.contains("empty"),
        "{}",
        r.stderr
    );
    // Several problems are reported together.
    w.write_config(
        &base
            .replace("api_rate_limit = 60", "api_rate_limit = 1")
            .replace("auth = \"login\"", "auth = \"x\""),
    );
    let r = w.run(&["validate"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("api_rate_limit") && r.stderr.contains("[smtp] auth"),
        "{}",
        r.stderr
    );
    assert!(w.requests().is_empty());
    assert!(!w.state_dir().exists());
}

#[test]
fn validate_prints_a_masked_summary() {
    let w = World::new(sim_opts());
    let r = w.run(&["validate"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("is valid"));
    assert!(
        r.stdout.contains("env T_ADMIN_PASSWORD") && r.stdout.contains("***"),
        "{}",
        r.stdout
    );
    assert!(w.requests().is_empty(), "validate sends nothing");
    let r = w.run(&["validate", "--output", "json"]);
    let v: Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["event"], "validated");
    assert_eq!(v["summary"]["smtp"]["host"], "smtp.example.com");
}

#[test]
fn iact_from_a_pre_seeded_token() {
    let w = World::new(SimOptions {
        iact_subnets: vec![],
        ..sim_opts()
    });
    w.edit_config(
        "source = \"auto\"\nsubnets = [\"127.0.0.0/8\"]",
        "source = \"token\"\ntoken = { env = \"T_IACT\" }",
    );
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("pre-seeded"), "{}", r.stdout);
    assert!(
        !w.requests()
            .iter()
            .any(|e| e.path == "/admin/retrieve-iact")
    );
}

#[test]
fn iact_from_a_command() {
    let w = World::new(SimOptions {
        iact_subnets: vec![],
        ..sim_opts()
    });
    let cmd = format!(
        "source = \"command\"\ncommand = [\"{}\", \"iact\", \"--url\", \"{}\"]",
        sim_bin(),
        w.sim.url()
    );
    w.edit_config("source = \"auto\"\nsubnets = [\"127.0.0.0/8\"]", &cmd);
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("the command"), "{}", r.stdout);
}

#[test]
fn auto_falls_through_from_a_refused_api_to_the_command() {
    // TFE only allows 10.0.0.0/8, the config believes loopback is allowed.
    let w = World::new(SimOptions {
        iact_subnets: vec!["10.0.0.0/8".parse().unwrap()],
        ..sim_opts()
    });
    let cmd = format!(
        "subnets = [\"127.0.0.0/8\"]\ncommand = [\"{}\", \"iact\", \"--url\", \"{}\"]",
        sim_bin(),
        w.sim.url()
    );
    w.edit_config("subnets = [\"127.0.0.0/8\"]", &cmd);
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(
        w.requests()
            .iter()
            .any(|e| e.path == "/admin/retrieve-iact" && e.status == 401)
    );
    assert!(r.stdout.contains("the command"), "{}", r.stdout);
}

#[test]
fn api_source_is_not_tried_from_outside_the_subnets_and_exit_4_when_nothing_works() {
    let w = World::new(sim_opts());
    w.edit_config(
        "subnets = [\"127.0.0.0/8\"]",
        "subnets = [\"10.0.0.0/8\"]\ncommand = [\"false\"]",
    );
    let r = w.run(&["run"]);
    assert_code(&r, 4);
    assert!(
        !w.requests()
            .iter()
            .any(|e| e.path == "/admin/retrieve-iact"),
        "no request from outside the subnets"
    );
    assert!(r.stderr.contains("outside [iact] subnets"), "{}", r.stderr);
    assert!(r.stderr.contains("\"false\" failed"), "{}", r.stderr);
    assert!(w.snapshot()["users"].as_array().unwrap().is_empty());
}

#[test]
fn iact_window_passed_is_exit_4() {
    let w = World::new(SimOptions {
        iact_time_limit: Some(Duration::ZERO),
        ..sim_opts()
    });
    let r = w.run(&["run"]);
    assert_code(&r, 4);
    assert!(
        r.stderr.contains("Initial Admin Creation Token") && r.stderr.contains("refused"),
        "{}",
        r.stderr
    );
}

#[test]
fn readiness_timeout_is_exit_3() {
    let w = World::new(SimOptions {
        ready_after: Duration::from_secs(3600),
        ..sim_opts()
    });
    w.edit_config("timeout = \"20s\"", "timeout = \"1s\"");
    let r = w.run(&["run"]);
    assert_code(&r, 3);
    assert!(
        r.stderr.contains("did not become ready within 1s") && r.stderr.contains("[wait] timeout"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("503"),
        "the last status is named: {}",
        r.stderr
    );
}

#[test]
fn late_port_and_slow_readiness_still_complete() {
    // The port opens only once the run has met it closed, and TFE turns
    // ready only once the run has seen it booting: no time window.
    let w = World::new(SimOptions {
        hold_port: true,
        hold_ready: true,
        ..sim_opts()
    });
    let mut run = w.events(&["run"]);
    run.wait_for(
        "a refused poll",
        Duration::from_secs(60),
        poll_saw("connection refused"),
    );
    w.sim.open_port();
    run.wait_for(
        "a poll that saw 503",
        Duration::from_secs(60),
        poll_saw("503"),
    );
    w.sim.release_ready();
    let (code, _) = run.finish();
    assert_eq!(code, 0);
    assert_fully_configured(&w);
    assert!(
        w.requests()
            .iter()
            .any(|e| e.path == "/api/v1/health/readiness" && e.status == 503)
    );
}

#[test]
fn legacy_install_is_waited_for_through_health_check() {
    let w = World::new(SimOptions {
        legacy_health: true,
        hold_ready: true,
        ..sim_opts()
    });
    let mut run = w.events(&["run"]);
    run.wait_for(
        "a poll that saw 502",
        Duration::from_secs(60),
        poll_saw("502"),
    );
    w.sim.release_ready();
    let (code, events) = run.finish();
    assert_eq!(code, 0, "{events:#?}");
    assert!(
        events.iter().any(|e| e["event"] == "step_finished"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("legacy /_health_check"))),
        "{events:#?}"
    );
    assert!(
        w.requests()
            .iter()
            .any(|e| e.path == "/_health_check" && e.status == 502)
    );
}

#[test]
fn existing_users_exit_4_with_advice_then_resume_with_admin_token() {
    let w = World::new(SimOptions {
        existing_admin_token: Some("existing-site-admin-tok".into()),
        ..sim_opts()
    });
    let r = w.run(&["run"]);
    assert_code(&r, 4);
    assert!(
        r.stderr.contains("already has users") && r.stderr.contains("[admin] token"),
        "{}",
        r.stderr
    );
    assert!(!w.token_file().exists());
    // Resume with the existing token.
    let t = w
        .config_text()
        .replace("rotate_token = true\n", "")
        .replace(
            "password = { env = \"T_ADMIN_PASSWORD\" }",
            "password = { env = \"T_ADMIN_PASSWORD\" }\ntoken = { env = \"T_EXISTING\" }",
        );
    w.write_config(&t);
    let r = to_run(
        w.command(&["run"])
            .env("T_EXISTING", "existing-site-admin-tok")
            .output_timed()
            .unwrap(),
    );
    assert_code(&r, 0);
    assert!(!r.both().contains("existing-site-admin-tok"));
    let s = w.snapshot();
    assert_eq!(s["users"].as_array().unwrap().len(), 1, "no second admin");
    assert_eq!(s["organizations"][0]["name"], "my-org");
    // The given token is never copied to disk. The user-token TTL (30d)
    // would refuse it once enforced, so the run rotated a new admin token,
    // within the policy, into token_file, and that one authenticates.
    let rotated = std::fs::read_to_string(w.token_file()).unwrap();
    assert_ne!(rotated.trim(), "existing-site-admin-tok");
    let http = crate::util::Http::new(w.sim.url());
    assert_eq!(
        http.get("/api/v2/organizations/my-org", Some(rotated.trim()))
            .0,
        200
    );
}

#[test]
fn second_concurrent_run_exits_5_and_the_first_completes() {
    let w = World::new(sim_opts());
    // While the first run's readiness poll is parked, a second run starts.
    let out = w.run_while_parked("get=/api/v1/health/readiness:pause", || {
        let r = w.run(&["run"]);
        assert_code(&r, 5);
        assert!(r.stderr.contains("lock"), "{}", r.stderr);
        // It did not wait for the lock: the first run is still parked.
        assert!(
            w.sim.wait_parked(Duration::ZERO).is_some(),
            "exit 5 must come while the first run holds the lock"
        );
    });
    assert_code(&out, 0);
    assert_eq!(w.snapshot()["users"].as_array().unwrap().len(), 1);
}

#[test]
fn json_output_is_one_event_per_line_ending_with_finished() {
    let w = World::new(sim_opts());
    let r = w.run(&["run", "--output", "json", "-v"]);
    assert_code(&r, 0);
    let events: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line parses"))
        .collect();
    assert_eq!(events[0]["event"], "run_started");
    let last = events.last().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["exit_code"].as_i64()),
        (Some("finished"), Some(0))
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "request" && e["path"] == "/admin/initial-admin-user")
    );
    let smtp = events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == "smtp")
        .unwrap();
    assert_eq!(smtp["outcome"], "applied");
    assert!(smtp["elapsed_ms"].is_u64());
    for e in &events {
        if let Some(p) = e["path"].as_str() {
            assert!(
                !p.contains('?'),
                "query strings (the IACT) never appear: {p}"
            );
        }
    }
}

#[test]
fn smtp_server_failures_are_explained_and_not_retried() {
    for (code, words) in [
        (401, "refused [smtp] username/password"),
        (500, "answered the test mail with an error"),
        (504, "could not reach the SMTP server"),
    ] {
        let w = World::new(SimOptions {
            smtp_fail: Some(code),
            ..sim_opts()
        });
        let r = w.run(&["run"]);
        assert_code(&r, 1);
        assert!(
            r.stderr.contains("step smtp") && r.stderr.contains(words),
            "{code}: {}",
            r.stderr
        );
        let patches = w
            .requests()
            .iter()
            .filter(|e| e.method == "PATCH" && e.path == "/api/v2/admin/smtp-settings")
            .count();
        assert_eq!(
            patches, 1,
            "{code}: TFE's verdict on the SMTP server is not retried"
        );
        assert!(w.snapshot()["test-mails"].as_array().unwrap().is_empty());
    }
}

#[test]
fn a_loose_pre_existing_state_dir_is_tightened_to_0700() {
    let w = World::new(sim_opts());
    std::fs::create_dir_all(w.state_dir()).unwrap();
    std::fs::set_permissions(w.state_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_code(&w.run(&["run"]), 0);
    assert_eq!(
        std::fs::metadata(w.state_dir())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
}
