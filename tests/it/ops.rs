//! Operator experience (issue #5): plan with drift and no mutation, status,
//! reset, --skip/--only/--force, a terminal session, the shipped cloud-init
//! and systemd examples run against tfe-sim, completions and man page.

use std::time::Duration;

use serde_json::{Value, json};
use tfe_bootstrap::config::Config;
use tfe_bootstrap::sim::SimOptions;
use tfe_bootstrap::tfe::api::SettingsKind;
use tfe_bootstrap::tfe::{Client, TfeError};

use crate::util::*;

fn token(w: &World) -> String {
    std::fs::read_to_string(w.token_file())
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn plan_before_anything_sends_nothing_and_says_what_will_happen() {
    let w = World::new(sim_opts());
    let r = w.run(&["plan"]);
    assert_code(&r, 0);
    // Without a token plan has nothing to read but whether TFE answers.
    let sent: Vec<String> = w
        .requests()
        .iter()
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert_eq!(sent, ["GET /api/v1/health/readiness"], "{sent:?}");
    assert!(
        r.stdout.contains("admin         will apply"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("smtp          needs admin token"),
        "{}",
        r.stdout
    );
    assert_code(&w.run(&["plan", "--detailed-exitcode"]), 2);
    assert!(
        !w.state_dir().join("state.json").exists(),
        "plan writes no state"
    );
}

#[test]
fn plan_shows_hand_made_drift_and_never_mutates() {
    let w = World::new(sim_opts());
    // A user TTL the admin token survives, so plan can read the organization.
    w.edit_config("user = \"30d\"", "user = \"2y\"");
    assert_code(&w.run(&["run"]), 0);
    let r = w.run(&["plan", "--detailed-exitcode"]);
    assert_code(&r, 0);
    assert!(!r.stdout.contains("drifted"), "{}", r.stdout);

    // Someone changes things by hand.
    let http = Http::new(w.sim.url());
    let t = token(&w);
    let (s, _) = http.api(
        "PATCH",
        "/api/v2/admin/general-settings",
        &t,
        &json!({"data": {"attributes": {"api-rate-limit": 99}}}),
    );
    assert_eq!(s, 200);
    let (s, _) = http.api("PATCH", "/api/v2/organizations/my-org", &t,
        &json!({"data": {"type": "organizations", "attributes": {"default-execution-mode": "remote"}}}));
    assert_eq!(s, 200);
    let mutating = w.mutating().len();

    let r = w.run(&["plan"]);
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("general       done, drifted"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("api-rate-limit: live 99 -> desired 60"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("default-execution-mode: live \"remote\" -> desired \"agent\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("password: live \"write-only\""),
        "write-only keys are named: {}",
        r.stdout
    );
    assert_eq!(w.mutating().len(), mutating, "plan sent a mutating request");

    let r = w.run(&["plan", "--output", "json"]);
    let events: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let general = events.iter().find(|e| e["step"] == "general").unwrap();
    assert_eq!(general["action"], "done, drifted");
    assert_eq!(
        general["drift"][0],
        json!({"key": "api-rate-limit", "live": 99, "desired": 60})
    );
    assert_eq!(events.last().unwrap()["event"], "finished");

    // --force re-applies what drifted.
    assert_code(&w.run(&["run", "--force", "general,org-defaults"]), 0);
    let s = w.snapshot();
    assert_eq!(s["settings"]["general"]["api-rate-limit"], 60);
    assert_eq!(s["organizations"][0]["default-execution-mode"], "agent");
}

#[test]
fn read_only_client_refuses_writes_before_sending() {
    let w = World::new(sim_opts());
    // Build the client from [tfe] alone (the other sections need secrets from the environment).
    let raw: tfe_bootstrap::config::raw::RawConfig = toml::from_str(&format!(
        "[tfe]\naddress = \"{}\"\nallow_insecure_http = true\n[admin]\ntoken = \"x\"\n",
        w.sim.url()
    ))
    .unwrap();
    let tfe = Config::from_raw(raw, &w.config, Some(&w.state_dir()), false)
        .unwrap_or_else(|e| panic!("{e}"))
        .tfe;
    let c = Client::new(&tfe).unwrap().read_only();
    let e = c
        .patch_settings(SettingsKind::General, &serde_json::Map::new())
        .unwrap_err();
    assert!(matches!(e, TfeError::ReadOnly { .. }), "{e}");
    assert!(
        w.requests().is_empty(),
        "the refused write never left the process"
    );
}

#[test]
fn status_reset_skip_only_and_force() {
    let w = World::new(sim_opts());
    let r = w.run(&["status"]);
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("no step has finished yet")
            && r.stdout.contains(&w.state_dir().display().to_string()),
        "{}",
        r.stdout
    );

    // --skip leaves a step pending; a later run applies it.
    let r = w.run(&["run", "--skip", "smtp"]);
    assert_code(&r, 0);
    assert!(
        r.stdout
            .contains("smtp          skipped   excluded by --skip"),
        "{}",
        r.stdout
    );
    assert!(w.snapshot()["test-mails"].as_array().unwrap().is_empty());
    let r = w.run(&["status"]);
    assert!(r.stdout.contains("smtp          not done"), "{}", r.stdout);
    assert_code(&w.run(&["run"]), 0);
    assert_eq!(w.snapshot()["test-mails"].as_array().unwrap().len(), 1);

    // A config change shows in status; --only applies just that step.
    w.edit_config("api_rate_limit = 60", "api_rate_limit = 70");
    w.edit_config(
        "host = \"smtp.example.com\"",
        "host = \"smtp9.example.com\"",
    );
    let r = w.run(&["status", "--output", "json"]);
    let v: Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    let changed: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["config_changed"] == true)
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(changed, vec!["general", "smtp"]);
    let before = w.mutating().len();
    assert_code(&w.run(&["run", "--only", "general"]), 0);
    let new: Vec<String> = w
        .mutating()
        .iter()
        .skip(before)
        .map(|e| e.path.clone())
        .collect();
    assert_eq!(new, vec!["/api/v2/admin/general-settings"]);
    let r = w.run(&["status"]);
    assert!(
        r.stdout.contains("(config changed since)") && r.stdout.contains("smtp"),
        "{}",
        r.stdout
    );

    // Facts the run learned show too: the rotated admin token's expiry,
    // when renew replaces it, and the pool id.
    let r = w.run(&["status"]);
    assert!(
        r.stdout.contains(&format!(
            "admin token {}: expires ",
            w.token_file().display()
        )) && r.stdout.contains("`tfe-bootstrap renew` replaces it from"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("default agent pool id: apool-"),
        "{}",
        r.stdout
    );

    // reset --step: that step runs again, nothing else. It reads TFE first
    // and, TFE holding every readable setting, sends nothing: the detail
    // says so and names --force for the write-only values.
    assert_code(&w.run(&["run"]), 0);
    let before = w.mutating().len();
    let r = w.run(&["reset", "--step", "smtp"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("forgot smtp"), "{}", r.stdout);
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("TFE already holds") && r.stdout.contains("--force smtp re-sends"),
        "{}",
        r.stdout
    );
    assert_eq!(w.mutating().len(), before, "nothing re-sent after reset");
    // After a hand edit on TFE, the reset step re-applies.
    let h = Http::new(w.sim.url());
    let tok = std::fs::read_to_string(w.token_file()).unwrap();
    let (st, _) = h.api(
        "PATCH",
        "/api/v2/admin/smtp-settings",
        tok.trim(),
        &serde_json::json!({"data": {"type": "smtp-settings", "attributes": {"port": 25}}}),
    );
    assert_eq!(st, 200);
    let before = w.mutating().len();
    assert_code(&w.run(&["reset", "--step", "smtp"]), 0);
    assert_code(&w.run(&["run"]), 0);
    let new: Vec<String> = w
        .mutating()
        .iter()
        .skip(before)
        .map(|e| e.path.clone())
        .collect();
    assert_eq!(new, vec!["/api/v2/admin/smtp-settings"]);

    // --force: re-run a done step.
    let before = w.mutating().len();
    assert_code(&w.run(&["run", "--force", "smtp"]), 0);
    assert_eq!(w.mutating().len(), before + 1);

    // reset --all keeps the admin token; the next run re-applies everything with it.
    assert_code(&w.run(&["reset", "--all"]), 0);
    assert!(w.token_file().exists());
    assert!(!w.state_dir().join("state.json").exists());
    assert_code(&w.run(&["run"]), 0);
    assert_eq!(w.snapshot()["users"].as_array().unwrap().len(), 1);

    // A step name that does not exist.
    let r = w.run(&["run", "--skip", "smpt"]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("did you mean \"smtp\""), "{}", r.stderr);
    let r = w.run(&["reset"]);
    assert_code(&r, 2);
}

/// Runs the binary under a pseudo-terminal (`script`), as an operator would see it.
#[test]
fn terminal_session_shows_a_spinner_and_a_clean_summary() {
    let w = World::new(SimOptions {
        ready_after: Duration::from_millis(1500),
        ..sim_opts()
    });
    let cmd = format!("{} run --config {}", bin(), w.config.display());
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env("T_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("T_SMTP_PASSWORD", SMTP_PASSWORD)
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .output_timed()
        .expect("script(1) from util-linux runs the binary under a pty");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{screen}");
    assert!(
        screen.contains("waiting for TFE"),
        "no spinner message: {screen}"
    );
    assert!(
        screen.contains('\u{1b}'),
        "a terminal gets colour: {screen}"
    );
    assert!(
        ["⠁", "⠂", "⠄", "⡀", "⢀", "⠠", "⠐", "⠈"]
            .iter()
            .any(|c| screen.contains(c)),
        "no spinner frame: {screen}"
    );
    assert!(
        screen.contains("done: 10 applied, 0 unchanged, 7 skipped, 0 failed"),
        "{screen}"
    );
    // NO_COLOR is honoured even on a terminal.
    let w2 = World::new(sim_opts());
    let cmd = format!("{} run --config {}", bin(), w2.config.display());
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("NO_COLOR", "1")
        .env("T_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("T_SMTP_PASSWORD", SMTP_PASSWORD)
        .stdin(std::process::Stdio::null())
        .output_timed()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        !screen.contains("\u{1b}[3"),
        "colour despite NO_COLOR: {screen}"
    );
}

fn repo_file(p: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap()
}

#[test]
fn cloud_init_example_config_runs_against_the_sim() {
    let yaml = repo_file("scripts/cloud-init/user-data.yaml");
    let toml_text = cloud_init_toml(&yaml);
    let w = World::new(SimOptions {
        iact_subnets: vec![],
        ..sim_opts()
    });
    let text = toml_text
        .replace(
            "address = \"https://tfe.example.com\"",
            &format!("address = \"{}\"\nallow_insecure_http = true", w.sim.url()),
        )
        .replace("ca_bundle = \"/etc/tfe-bootstrap/ca.pem\"\n", "")
        .replace(
            "token_file = \"/var/lib/tfe-bootstrap/admin-token\"",
            &format!("token_file = \"{}\"", w.token_file().display()),
        )
        + &format!("\n[state]\ndir = \"{}\"\n", w.state_dir().display());
    assert!(
        text.contains(w.sim.url()),
        "the example's address line changed; update this test"
    );
    w.write_config(&text);
    let r = to_run(
        w.command(&["run"])
            .env("TFE_IACT_TOKEN", IACT)
            .env("TFE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SMTP_PASSWORD", SMTP_PASSWORD)
            .output_timed()
            .unwrap(),
    );
    w.assert_no_secrets(&r);
    assert_code(&r, 0);
    let s = w.snapshot();
    assert_eq!(s["organizations"][0]["name"], "platform");
    assert_eq!(s["settings"]["smtp"]["username"], "tfe-mailer");
    assert!(
        yaml.contains("/usr/local/bin/tfe-bootstrap run --config /etc/tfe-bootstrap/config.toml")
    );
}

#[test]
fn systemd_unit_command_is_safe_on_every_boot() {
    let unit = repo_file("scripts/systemd/tfe-bootstrap.service");
    for must in [
        "Type=oneshot",
        "RestartPreventExitStatus=2 4 5",
        "UMask=0077",
        "StateDirectoryMode=0700",
    ] {
        assert!(unit.contains(must), "unit lacks {must}");
    }
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let argv: Vec<String> = exec
        .split_whitespace()
        .map(|a| a.replace("/usr/local/bin/tfe-bootstrap", bin()))
        .collect();
    let w = World::new(sim_opts());
    let boot = || {
        let args: Vec<String> = argv[1..]
            .iter()
            .map(|a| {
                if a == "/etc/tfe-bootstrap/config.toml" {
                    w.config.display().to_string()
                } else {
                    a.clone()
                }
            })
            .collect();
        let out = std::process::Command::new(&argv[0])
            .args(&args)
            .env("T_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("T_SMTP_PASSWORD", SMTP_PASSWORD)
            .output_timed()
            .unwrap();
        to_run(out)
    };
    assert_code(&boot(), 0);
    let n = w.requests().len();
    for _ in 0..2 {
        assert_code(&boot(), 0);
    }
    assert_eq!(w.requests().len(), n, "later boots send nothing");
}

#[test]
fn completions_and_man_page_come_from_the_cli_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(bin())
            .args(["completions", shell])
            .output_timed()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        let force = if shell == "fish" {
            "-l force"
        } else {
            "--force"
        };
        assert!(
            text.contains(force) && text.contains("reset"),
            "{shell} completions lack commands"
        );
        // Step names are offered for --skip/--only/--force/--step.
        assert!(
            text.contains("verify-tokens") && text.contains("agent-pool"),
            "{shell} completions lack the step names"
        );
    }
    let out = std::process::Command::new(bin())
        .arg("man")
        .output_timed()
        .unwrap();
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(
        man.contains(".TH tfe-bootstrap 1") && man.contains("state\\-dir"),
        "{man}"
    );
    // One self-contained page: every section an operator looks for, every
    // step, and no reference to a page that does not exist.
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH COMMANDS",
        ".SH STEPS",
        ".SH FILES",
        ".SH ENVIRONMENT",
        ".SH \"EXIT STATUS\"",
    ] {
        assert!(man.contains(section), "man page lacks {section}");
    }
    for step in ["wait", "token\\-ttl", "verify\\-tokens"] {
        assert!(man.contains(step), "man page lacks step {step}");
    }
    assert!(
        !man.contains("bootstrap\\-run(1)") && !man.contains("bootstrap-run(1)"),
        "dangling reference"
    );
    let help = std::process::Command::new(bin())
        .args(["run", "--help"])
        .output_timed()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("verify-tokens"),
        "run --help lists the steps: {help}"
    );
}

#[test]
fn quiet_prints_only_errors_and_verbose_text_leaks_nothing() {
    let w = World::new(sim_opts());
    // -v text: one line per request, secrets audited by World::run.
    let r = w.run(&["run", "-v"]);
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("-> POST /admin/initial-admin-user 200"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("token="),
        "no query string: {}",
        r.stdout
    );
    let r = w.run(&["run", "-q"]);
    assert_code(&r, 0);
    assert_eq!(r.stdout, "", "-q prints nothing on success");
    assert_eq!(r.stderr, "");
    let r = w.run(&["run", "-q", "--skip", "nope"]);
    assert_code(&r, 2);
    assert!(
        r.stdout.is_empty() && r.stderr.contains("unknown step"),
        "{}",
        r.both()
    );
}

#[test]
fn literal_secrets_in_a_readable_file_are_warned_about() {
    let w = World::new(sim_opts());
    w.write_config(&w.config_text().replace(
        "{ env = \"T_SMTP_PASSWORD\" }",
        &format!("\"{SMTP_PASSWORD}\""),
    ));
    let r = w.run(&["validate"]);
    assert_code(&r, 0);
    assert!(
        !r.both().contains("warning"),
        "0600 file: no warning: {}",
        r.both()
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&w.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = w.run(&["validate"]);
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("warning:")
            && r.stdout.contains("[smtp] password")
            && r.stdout.contains("chmod 600"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("*** (from inline)"),
        "the value stays masked: {}",
        r.stdout
    );
}

/// `reset` with nothing to forget is exit 2 in text and in JSON alike.
#[test]
fn reset_of_nothing_is_exit_2_in_every_format() {
    let w = World::new(sim_opts());
    assert_code(&w.run(&["run"]), 0);
    assert_code(&w.run(&["reset", "--step", "saml"]), 2);
    assert_code(&w.run(&["--output", "json", "reset", "--step", "saml"]), 2);
}
