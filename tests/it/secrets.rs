//! Tokens and secrets under attack (issue 21): secrets that JSON or URL
//! encoding changes, echoed by TFE or a proxy in JSON and in plain text at
//! every offset around the client's cut, in text, JSON and `-v` output.

use tfe_bootstrap::sim::faults::FaultRule;

use crate::util::*;

/// A password with every character that an encoder rewrites: `"`, `\`,
/// tab, newline, `%`, `+`, `&`, space and non-ASCII.
const HOSTILE: &str = "Qx\"9\\Vb\tK%w+J&\u{fc}7\nRz 3Lp";

/// Every 5-character window of `secret`, raw and JSON-escaped: any of them
/// in an output is (part of) a leak.
fn windows(secret: &str) -> Vec<String> {
    let mut out = vec![];
    for form in [
        secret.to_string(),
        serde_json::to_string(secret)
            .unwrap()
            .trim_matches('"')
            .to_string(),
        serde_json::to_string(&serde_json::to_string(secret).unwrap())
            .unwrap()
            .trim_matches('"')
            .to_string(),
    ] {
        let chars: Vec<char> = form.chars().collect();
        for w in chars.windows(5) {
            let w: String = w.iter().collect();
            if !w.chars().all(|c| c.is_ascii_alphanumeric())
                || w.chars().any(|c| c.is_ascii_digit())
            {
                out.push(w);
            }
        }
    }
    out
}

#[track_caller]
fn assert_no_piece(out: &str, secret: &str, what: &str) {
    for w in windows(secret) {
        assert!(
            !out.contains(&w),
            "{what}: a piece of the secret ({w:?}) leaked:\n{out}"
        );
    }
}

fn run_with_password(w: &World, args: &[&str], password: &str) -> Run {
    let out = w
        .command(args)
        .env("T_ADMIN_PASSWORD", password)
        .output_timed()
        .expect("run tfe-bootstrap");
    to_run(out)
}

/// TFE (or a proxy) echoes the request as JSON: the password arrives
/// JSON-escaped in the error, and the JSON output escapes it once more.
/// Neither form, nor any piece of either, reaches text, JSON or `-v`.
#[test]
fn an_echoed_hostile_password_never_leaks_in_any_format() {
    let w = World::new(sim_opts());
    let formats: [&[&str]; 3] = [
        &["--output", "text", "run"],
        &["--output", "json", "run"],
        &["--output", "json", "-v", "run"],
    ];
    w.sim
        .add_fault(FaultRule::parse("post=/admin/initial-admin-user:echo=422*3").unwrap());
    for args in formats {
        let r = run_with_password(&w, args, HOSTILE);
        assert_code(&r, 1);
        assert!(r.both().contains("[redacted]"), "{}", r.both());
        assert_no_piece(&r.both(), HOSTILE, &args.join(" "));
    }
}

/// A proxy's plain-text error page quotes the request, with the password
/// at every offset around the point where the client cuts a long body
/// (200 characters): no prefix of it survives the cut.
#[test]
fn a_plain_text_echo_cut_through_the_password_leaks_no_prefix() {
    let w = World::new(sim_opts());
    // The JSON-escaped password is about 26 characters and starts 44 to 67
    // characters into the body (the key order is the client's): these pads
    // put its start on every offset from 150 to 210.
    let pads: Vec<usize> = (83..=166).collect();
    let formats: [&[&str]; 3] = [
        &["--output", "text", "run"],
        &["--output", "json", "run"],
        &["--output", "json", "-v", "run"],
    ];
    let mut runs = 0;
    for (i, pad) in pads.iter().enumerate() {
        let args = formats[i % 3];
        // Twice: a 502 on the initial-admin POST is sent once more (TFE
        // refuses a second initial admin, issue 33), and the run must end
        // on the echo for the error path to be read.
        w.sim.add_fault(
            FaultRule::parse(&format!(
                "post=/admin/initial-admin-user:echo-text=502+{pad}*2"
            ))
            .unwrap(),
        );
        let r = run_with_password(&w, args, HOSTILE);
        assert_ne!(r.code, 0, "{}", r.both());
        assert_no_piece(
            &r.both(),
            HOSTILE,
            &format!("pad {pad}, {}", args.join(" ")),
        );
        runs += 1;
    }
    println!("RELIABILITY secrets-cut-echo runs={runs} leaked=0");
}

/// The client's clock 3 hours fast: every token it mints must still end
/// inside its policy by TFE's clock, so every token file works at the end.
#[test]
fn a_client_clock_hours_fast_mints_tokens_tfe_accepts() {
    let Some(lib) = faketime_lib() else { return };
    let w = World::new(sim_opts()).with_service_tokens();
    let mut cmd = w.command(&["run"]);
    with_clock(&mut cmd, &lib, "+3h");
    let r = to_run(cmd.output_timed().unwrap());
    w.assert_no_secrets(&r);
    assert_code(&r, 0);
    let files = w.assert_token_files_work();
    assert_eq!(files, 3);
    println!("RELIABILITY secrets-clock-fast offset=+3h token-files-working={files}");
}

/// The client's clock 29 days slow: the rotated admin token must live its
/// 30-day policy (less a margin) by TFE's clock, not one day.
#[test]
fn a_client_clock_days_slow_still_gets_full_lifetimes() {
    let Some(lib) = faketime_lib() else { return };
    let w = World::new(sim_opts()).with_service_tokens();
    let mut cmd = w.command(&["run"]);
    with_clock(&mut cmd, &lib, "-29d");
    let r = to_run(cmd.output_timed().unwrap());
    w.assert_no_secrets(&r);
    assert_code(&r, 0);
    w.assert_token_files_work();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let admin = w.token_record(&w.token_at(&w.token_file()));
    let left_days = (admin["expires-unix"].as_u64().unwrap() - now) / 86_400;
    assert!(
        left_days >= 29,
        "the rotated admin token lives {left_days} days: {admin}"
    );
    let org = w.token_record(&w.token_at(&w.dir.path().join("org-token")));
    let org_days = (org["expires-unix"].as_u64().unwrap() - now) / 86_400;
    assert!(
        org_days >= 360,
        "the organization token lives {org_days} days: {org}"
    );
    println!("RELIABILITY secrets-clock-slow offset=-29d admin-token-days={left_days}");
}

/// A 500, 502 or 504 on a token-minting POST (the admin token's rotation,
/// the organization and the owners team token) is retried: a duplicate is
/// harmless there. The run converges and every token file works.
#[test]
fn token_mints_are_retried_after_a_server_error() {
    let w = World::new(sim_opts()).with_service_tokens();
    for rule in [
        "post=/api/v2/users/*/authentication-tokens:500",
        "post=/api/v2/organizations/my-org/authentication-token:502",
        "post=/api/v2/teams/*/authentication-token:504",
    ] {
        w.sim.add_fault(FaultRule::parse(rule).unwrap());
    }
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert_eq!(w.assert_token_files_work(), 3);
    let failed = w
        .requests()
        .iter()
        .filter(|e| [500, 502, 504].contains(&e.status))
        .count();
    assert_eq!(failed, 3, "each fault fired once");
    println!("RELIABILITY secrets-mint-retry server-errors={failed} exit=0");
}

/// Finding 3: a token file this node minted holds garbage after a change.
/// The next run re-mints it (nobody else holds it) and ends with every
/// token file working; no run exits 0 with a dead file.
#[test]
fn a_dead_token_file_this_node_minted_is_reminted_never_exit_0_dead() {
    let w = World::new(sim_opts()).with_service_tokens();
    assert_code(&w.run(&["run"]), 0);
    let org_file = w.dir.path().join("org-token");
    std::fs::write(&org_file, "garbage-not-a-token\n").unwrap();
    w.edit_config("api_rate_limit = 60", "api_rate_limit = 61");
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("minted a new one"), "{}", r.stdout);
    assert_eq!(w.assert_token_files_work(), 3);
    // Garbage again, with nothing else to do: the changed file alone makes
    // verify-tokens run.
    std::fs::write(&org_file, "garbage-again\n").unwrap();
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert_eq!(w.assert_token_files_work(), 3);
    let before = w.requests().len();
    assert_code(&w.run(&["run"]), 0);
    assert_eq!(
        w.requests().len(),
        before,
        "a rerun with nothing to do sends nothing"
    );
}

/// A token file this node did not mint (it was there before the first
/// run) that TFE refuses: every run fails, naming the file and the remedy,
/// and none exits 0.
#[test]
fn a_dead_token_file_someone_else_wrote_fails_every_run() {
    let w = World::new(sim_opts()).with_service_tokens();
    let org_file = w.dir.path().join("org-token");
    std::fs::write(&org_file, "someone-elses-dead-token\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&org_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    for _ in 0..3 {
        let r = w.run(&["run"]);
        assert_code(&r, 1);
        assert!(
            r.stderr.contains(&org_file.display().to_string())
                && r.stderr.contains("--force org-token"),
            "{}",
            r.stderr
        );
    }
}

/// A token file replaced behind the run's back while it works (by a link
/// to a working copy, or by a directory): verify-tokens reads the disk, so
/// the run does not say "every token authenticates".
#[test]
fn token_files_swapped_mid_run_are_caught_from_disk() {
    let w = World::new(sim_opts()).with_service_tokens();
    let admin_file = w.token_file();
    // Parked on the TTL-policy PATCH: after the admin token's rotation, the
    // last write to token_file.
    let r = w.run_while_parked(
        "path=/api/v2/organizations/my-org/token-ttl-policies:pause",
        || {
            let copy = w.dir.path().join("copy");
            std::fs::copy(&admin_file, &copy).unwrap();
            std::fs::remove_file(&admin_file).unwrap();
            std::os::unix::fs::symlink(&copy, &admin_file).unwrap();
        },
    );
    assert_ne!(r.code, 0, "{}", r.both());
    assert!(
        !r.stdout.contains("every token authenticates"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    // Put the real file back: the rerun checks again and passes.
    let copy = std::fs::read(w.dir.path().join("copy")).unwrap();
    std::fs::remove_file(&admin_file).unwrap();
    std::fs::write(&admin_file, copy).unwrap();
    std::fs::set_permissions(
        &admin_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    assert_code(&w.run(&["run"]), 0);
    assert_eq!(w.assert_token_files_work(), 3);

    let owners = w.dir.path().join("owners-token");
    std::fs::remove_file(&owners).unwrap();
    std::fs::create_dir(&owners).unwrap();
    let r = w.run(&["run"]);
    assert_ne!(r.code, 0, "a directory is no token file: {}", r.both());
    assert!(
        r.stderr.contains(&owners.display().to_string()),
        "{}",
        r.stderr
    );
}

/// Finding 4: SIGKILL right after TFE answered a token-minting POST (the
/// admin token's rotation, the organization token, the owners team token),
/// before the file was written. The rerun mints again (this node's own
/// intent says nobody holds the lost token) and ends with working files.
#[test]
fn a_kill_after_each_token_mint_does_not_block_the_rerun() {
    for rule in [
        "post=/api/v2/users/*/authentication-tokens:pause-after",
        "post=/api/v2/organizations/my-org/authentication-token:pause-after",
        "post=/api/v2/teams/*/authentication-token:pause-after",
    ] {
        let w = World::new(sim_opts()).with_service_tokens();
        w.kill_at(rule);
        let r = w.run(&["run"]);
        assert_code(&r, 0);
        assert_eq!(w.assert_token_files_work(), 3, "{rule}");
        println!(
            "RELIABILITY secrets-kill-after-mint rule={rule} rerun-exit=0 token-files-working=3"
        );
    }
}

/// Finding 8: the saved admin token is refused (as after a reinstall). The
/// error says so and names the remedy; `reset --step admin` moves
/// token_file aside, and the next run goes back to the IACT.
#[test]
fn a_refused_admin_token_points_at_reset_which_moves_it_aside() {
    let w = World::new(sim_opts());
    assert_code(&w.run(&["run"]), 0);
    std::fs::write(w.token_file(), "old-install-token-0123456789\n").unwrap();
    w.edit_config("api_rate_limit = 60", "api_rate_limit = 61");
    let r = w.run(&["run"]);
    assert_code(&r, 4);
    assert!(
        r.stderr.contains("reinstalled") && r.stderr.contains("reset --step admin"),
        "{}",
        r.stderr
    );
    let r = w.run(&["reset", "--step", "admin"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("moved aside"), "{}", r.stdout);
    assert!(!w.token_file().exists());
    let stale: Vec<_> = std::fs::read_dir(w.state_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("admin-token.stale-")
        })
        .collect();
    assert_eq!(stale.len(), 1, "the old token is kept aside");
    let posts = |w: &World| {
        w.requests()
            .iter()
            .filter(|e| e.method == "POST" && e.path == "/admin/initial-admin-user")
            .count()
    };
    let before = posts(&w);
    let _ = w.run(&["run"]);
    assert_eq!(posts(&w), before + 1, "the next run goes back to the IACT");
}

fn run_without(w: &World, args: &[&str], gone: &[&str]) -> Run {
    let mut c = w.command(args);
    for v in gone {
        c.env_remove(v);
    }
    let r = to_run(c.output_timed().unwrap());
    w.assert_no_secrets(&r);
    r
}

/// Finding 7: once the admin exists, the consumed IACT and the admin
/// password may be removed. run, plan, validate and status all still work
/// (run sends nothing); validate says they are no longer needed. An absent
/// SMTP password leaves the done smtp step as it was, with a warning.
#[test]
fn used_secrets_can_be_removed_once_their_steps_are_done() {
    let w = World::new(sim_opts());
    assert_code(&w.run(&["run"]), 0);
    let gone = ["T_ADMIN_PASSWORD", "T_IACT"];
    for args in [&["run"][..], &["plan"], &["status"], &["validate"]] {
        let n = w.requests().len();
        let r = run_without(&w, args, &gone);
        assert_code(&r, 0);
        if args == ["run"] {
            assert_eq!(w.requests().len(), n, "the run sends nothing");
        }
        if args == ["validate"] {
            assert!(
                r.stdout.contains("[admin] password: absent, not needed"),
                "{}",
                r.stdout
            );
        }
    }
    let before = w.requests().len();
    let r = run_without(&w, &["run"], &["T_ADMIN_PASSWORD", "T_SMTP_PASSWORD"]);
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("[smtp] password") && r.stdout.contains("stays as it was applied"),
        "{}",
        r.stdout
    );
    assert_eq!(w.requests().len(), before, "the run sends nothing");
    assert_eq!(w.snapshot()["test-mails"].as_array().unwrap().len(), 1);
}

/// An absent secret that a step still has to send stops the run before
/// anything is sent or written, naming the key and the variable.
#[test]
fn an_absent_secret_a_step_still_needs_stops_before_anything() {
    let w = World::new(sim_opts());
    let r = run_without(&w, &["run"], &["T_SMTP_PASSWORD"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("[smtp] password") && r.stderr.contains("T_SMTP_PASSWORD"),
        "{}",
        r.stderr
    );
    assert!(w.requests().is_empty());
    assert!(!w.state_dir().exists());
    // validate (as in an image build, before the secrets exist) warns;
    // validate --preflight (this machine, now) refuses.
    let r = run_without(&w, &["validate"], &["T_ADMIN_PASSWORD"]);
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("[admin] password") && r.stdout.contains("still has to send"),
        "{}",
        r.stdout
    );
    let r = run_without(&w, &["validate", "--preflight"], &["T_ADMIN_PASSWORD"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("[admin] password") && r.stderr.contains("still has to send"),
        "{}",
        r.stderr
    );
}

/// The same for the SMTP password: TFE echoes the SMTP PATCH, in JSON and
/// in plain text, and no piece of the password reaches any output.
#[test]
fn an_echoed_hostile_smtp_password_never_leaks() {
    let w = World::new(sim_opts());
    for (i, args) in [
        &["--output", "text", "run"][..],
        &["--output", "json", "run"],
        &["--output", "json", "-v", "run"],
    ]
    .iter()
    .enumerate()
    {
        let fault = if i % 2 == 0 {
            "echo=422"
        } else {
            "echo-text=422+150"
        };
        w.sim.add_fault(
            FaultRule::parse(&format!("patch=/api/v2/admin/smtp-settings:{fault}")).unwrap(),
        );
        let out = w
            .command(args)
            .env("T_SMTP_PASSWORD", HOSTILE)
            .output_timed()
            .unwrap();
        let r = to_run(out);
        assert_code(&r, 1);
        assert_no_piece(&r.both(), HOSTILE, &args.join(" "));
    }
}

/// `status --output json`'s row for `step`, run without the variables `gone`.
fn status_of(w: &World, step: &str, gone: &[&str]) -> serde_json::Value {
    let r = run_without(w, &["status", "--output", "json"], gone);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == step)
        .unwrap_or_else(|| panic!("no {step} in {v}"))
        .clone()
}

/// Issue 33: a changed key is never skipped. After a complete run, the
/// SMTP password's variable is unset and `[smtp] host` changed: the change
/// cannot be applied without the password, so `run` stops before sending
/// anything (exit 2, naming the key and the variable), `plan` counts it
/// pending (`--detailed-exitcode` 2), and `status` says the config changed.
/// With the host put back, the run is unchanged again and sends nothing.
#[test]
fn a_changed_key_whose_step_needs_an_absent_secret_stops_the_run() {
    let w = World::new(sim_opts());
    assert_code(&w.run(&["run"]), 0);
    w.edit_config(
        "host = \"smtp.example.com\"",
        "host = \"smtp2.example.com\"",
    );
    let before = w.requests().len();
    let r = run_without(&w, &["run"], &["T_SMTP_PASSWORD"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("[smtp] password")
            && r.stderr.contains("T_SMTP_PASSWORD")
            && r.stderr.contains("changed"),
        "{}",
        r.stderr
    );
    assert_eq!(w.requests().len(), before, "nothing was sent");
    assert_eq!(
        w.snapshot()["settings"]["smtp"]["host"],
        "smtp.example.com",
        "TFE keeps the old host until the run can send the change"
    );
    let r = run_without(&w, &["plan", "--detailed-exitcode"], &["T_SMTP_PASSWORD"]);
    assert_code(&r, 2);
    assert!(r.stdout.contains("needs secret"), "{}", r.stdout);
    let smtp = status_of(&w, "smtp", &["T_SMTP_PASSWORD"]);
    assert_eq!(smtp["config_changed"], true, "{smtp}");
    // The same config as applied: unchanged, nothing sent, and status agrees.
    w.edit_config(
        "host = \"smtp2.example.com\"",
        "host = \"smtp.example.com\"",
    );
    let before = w.requests().len();
    let r = run_without(&w, &["run"], &["T_SMTP_PASSWORD"]);
    assert_code(&r, 0);
    assert_eq!(w.requests().len(), before, "the run sends nothing");
    let smtp = status_of(&w, "smtp", &["T_SMTP_PASSWORD"]);
    assert_eq!(
        smtp["config_changed"], false,
        "status agrees with run: {smtp}"
    );
    // With the password back, the change goes through with one more mail.
    w.edit_config(
        "host = \"smtp.example.com\"",
        "host = \"smtp2.example.com\"",
    );
    assert_code(&w.run(&["run"]), 0);
    assert_eq!(
        w.snapshot()["settings"]["smtp"]["host"],
        "smtp2.example.com"
    );
    assert_eq!(w.snapshot()["test-mails"].as_array().unwrap().len(), 2);
}

/// Issue 33: after removing a used one-time secret, as README says one may,
/// `status` agrees with `run` (the admin step is unchanged), and its JSON
/// facts carry the admin token's expiry and the token files the run wrote.
#[test]
fn status_agrees_with_run_once_a_used_secret_is_gone() {
    let w = World::new(sim_opts()).with_service_tokens();
    assert_code(&w.run(&["run"]), 0);
    let gone = ["T_ADMIN_PASSWORD", "T_IACT"];
    let r = run_without(&w, &["run"], &gone);
    assert_code(&r, 0);
    assert!(r.stdout.contains("admin") && r.stdout.contains("unchanged"));
    let admin = status_of(&w, "admin", &gone);
    assert_ne!(admin["config_changed"], true, "{admin}");
    let r = run_without(&w, &["status", "--output", "json"], &gone);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let facts = &v["facts"];
    assert!(facts["admin_token_expires"].is_string(), "{facts}");
    let files = facts["token_files"].as_array().unwrap();
    assert!(
        files.iter().any(|f| f["step"] == "admin"),
        "the admin token file is among the token files: {facts}"
    );
    assert!(files.len() >= 3, "{facts}");
    let r = run_without(&w, &["status"], &gone);
    assert!(!r.stdout.contains("config changed since"), "{}", r.stdout);
}
