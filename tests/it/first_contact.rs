//! First contact (issue #15): what a new operator meets with nothing but
//! README.md: reset and status that find the state, preflight, an honest
//! plan, a starter config, wording.

use std::process::Command;

use crate::util::*;

/// `reset` and `status` find the state dir the way `run` does (here the
/// config comes from TFE_BOOTSTRAP_CONFIG, no `--config`); asked to reset
/// what is not there, `reset` fails and says where it looked.
#[test]
fn reset_and_status_find_the_configured_state_dir() {
    let w = World::new(sim_opts());
    assert_code(&w.run(&["run"]), 0);
    let bare = |args: &[&str]| {
        to_run(
            Command::new(bin())
                .args(args)
                .env("TFE_BOOTSTRAP_CONFIG", &w.config)
                .env("T_ADMIN_PASSWORD", ADMIN_PASSWORD)
                .env("T_SMTP_PASSWORD", SMTP_PASSWORD)
                .output_timed()
                .unwrap(),
        )
    };
    let r = bare(&["status"]);
    assert_code(&r, 0);
    assert!(
        r.stdout.contains(&w.state_dir().display().to_string()),
        "{}",
        r.stdout
    );
    let r = bare(&["reset", "--step", "smtp"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("forgot smtp"), "{}", r.stdout);
    // Again: nothing left to forget is a failure, not a silent success.
    let r = bare(&["reset", "--step", "smtp"]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("nothing was reset"), "{}", r.stderr);
    // A state dir with no checkpoints: the error says where it looked.
    let empty = w.dir.path().join("empty");
    let r = to_run(
        Command::new(bin())
            .args(["reset", "--all", "--state-dir"])
            .arg(&empty)
            .env_remove("TFE_BOOTSTRAP_CONFIG")
            .output_timed()
            .unwrap(),
    );
    assert_code(&r, 2);
    assert!(
        r.stderr.contains(&empty.display().to_string()) && r.stderr.contains("--state-dir"),
        "{}",
        r.stderr
    );
}

/// A state dir that cannot be created is exit 2 before anything is sent,
/// naming `[state] dir` and `--state-dir`; `validate --preflight` reports
/// the same check as failed.
#[test]
fn an_uncreatable_state_dir_is_exit_2_naming_the_keys() {
    let w = World::new(sim_opts());
    let t = w.config_text();
    let dir_line = format!("dir = \"{}\"", w.state_dir().display());
    w.write_config(&t.replace(&dir_line, "dir = \"/proc/tfe-bootstrap-nope\""));
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("/proc") && r.stderr.contains("[state] dir or --state-dir"),
        "{}",
        r.stderr
    );
    assert!(w.requests().is_empty());
    let r = w.run(&["validate", "--preflight"]);
    assert_code(&r, 2);
    assert!(r.stdout.contains("FAIL state dir"), "{}", r.stdout);
}

/// A wrong port: `validate --preflight` says so in a second (exit 3,
/// naming `[tfe] address`); `run`'s wait names the address and the cause,
/// once.
#[test]
fn a_wrong_port_is_named_by_preflight_and_by_the_wait() {
    let w = World::new(sim_opts());
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let good = w.sim.url().to_string();
    let wrong = format!("http://127.0.0.1:{closed}");
    w.edit_config(
        &format!("address = \"{good}\""),
        &format!("address = \"{wrong}\""),
    );
    let r = w.run(&["validate", "--preflight"]);
    assert_code(&r, 3);
    assert!(
        r.stdout.contains("FAIL port") && r.stdout.contains("[tfe] address"),
        "{}",
        r.stdout
    );
    w.edit_config("timeout = \"20s\"", "timeout = \"1s\"");
    let r = w.run(&["run"]);
    assert_code(&r, 3);
    let both = r.both();
    assert!(
        both.contains(&format!("nothing listens on 127.0.0.1:{closed}"))
            && both.contains("Check [tfe] address"),
        "{both}"
    );
    assert_eq!(both.matches("did not become ready").count(), 1, "{both}");
    w.edit_config(
        &format!("address = \"{wrong}\""),
        &format!("address = \"{good}\""),
    );
    let r = w.run(&["validate", "--preflight"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("preflight passed"), "{}", r.stdout);
}

/// `plan` against an unreachable TFE is an error with the reason; its count
/// agrees with the lines it lists; a value it cannot read says so plainly.
#[test]
fn plan_is_honest() {
    let w = World::new(sim_opts());
    let good = w.sim.url().to_string();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    w.edit_config(
        &format!("address = \"{good}\""),
        &format!("address = \"http://127.0.0.1:{closed}\""),
    );
    let r = w.run(&["plan"]);
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("cannot plan") && r.stderr.contains("[tfe] address"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("will apply"), "{}", r.stdout);
    w.edit_config(
        &format!("address = \"http://127.0.0.1:{closed}\""),
        &format!("address = \"{good}\""),
    );
    assert_code(&w.run(&["run"]), 0);
    w.edit_config(
        "host = \"smtp.example.com\"",
        "host = \"smtp2.example.com\"",
    );
    let r = w.run(&["plan"]);
    assert_code(&r, 0);
    let listed = r
        .stdout
        .lines()
        .filter(|l| {
            l.contains("will apply")
                || l.contains("config changed")
                || l.contains("needs admin token")
        })
        .count();
    assert!(
        r.stdout.contains(&format!("{listed} step(s) pending")),
        "{listed} listed:\n{}",
        r.stdout
    );
    // A live value TFE will not show: the plan says so plainly.
    w.sim.add_fault(
        tfe_bootstrap::sim::faults::FaultRule::parse("get=/api/v2/admin/smtp-settings:403*5")
            .unwrap(),
    );
    let r = w.run(&["plan"]);
    assert!(
        r.stdout
            .contains("live values could not be read: TFE answered 403"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("-> desired null"), "{}", r.stdout);
}

/// `init` prints a starter config that validates as it is (with its
/// secrets in the environment) and sets nothing that could lock anyone out.
#[test]
fn init_prints_a_safe_starter_config() {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(bin()).arg("init").output_timed().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let settings: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for risky in [
        "max_ttl",
        "enforce",
        "limit_user_organization_creation",
        "[saml]",
        "token_ttl",
    ] {
        assert!(!settings.contains(risky), "starter sets {risky}");
    }
    let f = d.path().join("config.toml");
    std::fs::write(&f, &text).unwrap();
    let r = to_run(
        Command::new(bin())
            .args(["validate", "--config"])
            .arg(&f)
            .env("TFE_IACT_TOKEN", "iact-token-for-validate")
            .env("TFE_ADMIN_PASSWORD", "a-password-for-validate")
            .output_timed()
            .unwrap(),
    );
    assert_code(&r, 0);
}

/// Wording: an unknown top-level table is an unknown section; a required
/// secret's error does not suggest removing the key.
#[test]
fn wording_of_common_mistakes() {
    let w = World::new(sim_opts());
    let t = w.config_text();
    w.write_config(&t.replacen("[smtp]", "[smpt]", 1));
    let r = w.run(&["validate"]);
    assert_code(&r, 2);
    assert!(
        r.stderr
            .contains("unknown section [smpt]: did you mean [smtp]?"),
        "{}",
        r.stderr
    );
    w.write_config(&t);
    // An absent secret that the next run needs: a warning from validate
    // (the config may be checked before secrets exist), exit 2 from
    // validate --preflight and from run.
    let r = to_run(
        w.command(&["validate"])
            .env_remove("T_ADMIN_PASSWORD")
            .output_timed()
            .unwrap(),
    );
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("T_ADMIN_PASSWORD") && !r.stdout.contains("remove the key"),
        "{}",
        r.stdout
    );
    for args in [&["validate", "--preflight"][..], &["run"]] {
        let r = to_run(
            w.command(args)
                .env_remove("T_ADMIN_PASSWORD")
                .output_timed()
                .unwrap(),
        );
        assert_code(&r, 2);
        assert!(r.stderr.contains("T_ADMIN_PASSWORD"), "{}", r.stderr);
    }
}

/// Help lists only flags that mean something for the command: `init`,
/// `man` and `completions` read no config and send nothing, so their help
/// leaves the global flags out; `run` keeps them and lists the steps.
#[test]
fn subcommand_help_lists_only_flags_that_mean_something_there() {
    let help = |args: &[&str]| {
        let out = Command::new(bin()).args(args).output_timed().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for cmd in ["init", "man", "completions"] {
        let h = help(&[cmd, "--help"]);
        for flag in [
            "--config",
            "--state-dir",
            "--output",
            "--verbose",
            "--quiet",
        ] {
            assert!(!h.contains(flag), "`{cmd} --help` lists {flag}:\n{h}");
        }
        assert!(h.contains(&format!("Usage: tfe-bootstrap {cmd}")), "{h}");
    }
    assert!(help(&["completions", "--help"]).contains("bash"));
    let run = help(&["run", "--help"]);
    for must in ["--config", "--state-dir", "--force", "token-ttl"] {
        assert!(run.contains(must), "`run --help` lacks {must}:\n{run}");
    }
    // The global flags are still accepted there (scripts may pass them).
    let out = Command::new(bin())
        .args(["--output", "json", "init"])
        .output_timed()
        .unwrap();
    assert!(out.status.success());
}

/// `plan` says what `run` would do for a step with no checkpoint: "in sync"
/// when TFE already holds it (run would send nothing), "will apply" when
/// it does not.
#[test]
fn plan_tells_in_sync_from_will_apply_for_a_step_without_checkpoint() {
    let w = World::new(sim_opts());
    assert_code(&w.run(&["run"]), 0);
    assert_code(&w.run(&["reset", "--step", "smtp"]), 0);
    let r = w.run(&["plan", "--detailed-exitcode"]);
    assert_code(&r, 0);
    let smtp = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("smtp"))
        .unwrap();
    assert!(smtp.contains("in sync"), "{}", r.stdout);
    assert!(r.stdout.contains("0 step(s) pending"), "{}", r.stdout);
    let before = w.requests().len();
    assert_code(&w.run(&["run"]), 0);
    assert!(
        w.requests()[before..].iter().all(|e| !e.is_mutating()),
        "plan said in sync, run sent a change"
    );
    // TFE changed by hand, checkpoint forgotten: now it will apply.
    let tok = std::fs::read_to_string(w.token_file()).unwrap();
    let (st, _) = Http::new(w.sim.url()).api(
        "PATCH",
        "/api/v2/admin/smtp-settings",
        tok.trim(),
        &serde_json::json!({"data": {"type": "smtp-settings", "attributes": {"port": 25}}}),
    );
    assert_eq!(st, 200);
    assert_code(&w.run(&["reset", "--step", "smtp"]), 0);
    let r = w.run(&["plan", "--detailed-exitcode"]);
    assert_code(&r, 2);
    assert!(
        r.stdout.contains("port: live 25 -> desired 587"),
        "{}",
        r.stdout
    );
}

/// The test harness itself: a child that hangs fails its test within the
/// deadline, naming the process, instead of wedging the suite.
#[test]
fn a_hanging_child_fails_its_test_naming_it() {
    let started = std::time::Instant::now();
    let caught = std::panic::catch_unwind(|| {
        let mut c = std::process::Command::new("sleep");
        c.arg("600");
        c.output_within(std::time::Duration::from_secs(1))
    });
    let msg = caught
        .err()
        .and_then(|e| e.downcast_ref::<String>().cloned())
        .expect("the hang must fail the test");
    assert!(
        msg.contains("\"sleep\"") && msg.contains("still running"),
        "{msg}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

/// First contact: the config `init` prints, with only what an operator
/// must fill in (TFE's address, the subnet line uncommented), passes
/// `validate --preflight` against a TFE that answers, and `run` finishes
/// with it. `TFE_IACT_TOKEN` is not set: with `source = "auto"` the token
/// source falls through to the HTTP API, as the starter's comment says.
#[test]
fn the_init_config_passes_preflight_and_runs_as_printed() {
    let w = World::new(sim_opts());
    let out = Command::new(bin()).arg("init").output_timed().unwrap();
    let text = String::from_utf8(out.stdout)
        .unwrap()
        .replace(
            "address = \"https://tfe.example.com\"",
            &format!("address = \"{}\"\nallow_insecure_http = true", w.sim.url()),
        )
        .replace(
            "# subnets = [\"10.0.0.0/16\"]",
            "subnets = [\"127.0.0.0/8\"]",
        );
    w.write_config(&text);
    let state = w.state_dir();
    let state = state.to_str().unwrap();
    let cmd = |args: &[&str]| {
        let mut c = w.command(args);
        c.args(["--state-dir", state])
            .env_remove("TFE_IACT_TOKEN")
            .env("TFE_ADMIN_PASSWORD", ADMIN_PASSWORD);
        let r = to_run(c.output_timed().unwrap());
        w.assert_no_secrets(&r);
        r
    };
    let r = cmd(&["validate", "--preflight"]);
    assert_code(&r, 0);
    assert!(w.mutating().is_empty(), "preflight changes nothing");
    let r = cmd(&["run"]);
    assert_code(&r, 0);
    assert_eq!(w.snapshot()["users"].as_array().unwrap().len(), 1);
    assert!(w.authenticates(&w.token_at(&w.token_file())));
}

/// A web server that answers 404 to everything, as any other server on the
/// wrong port does; it serves until the test ends.
fn not_tfe_server() -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            // One thread a connection: a client may hold one open idle.
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                let _ = c.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
                );
            });
        }
    });
    format!("http://{addr}")
}

/// Issue 34: preflight and `run` against another web server (the wrong
/// port) say it is not TFE at that address, instead of "not ready yet"
/// and a wait of the whole `[wait] timeout` (exit 3).
#[test]
fn a_web_server_that_is_not_tfe_is_named_as_such() {
    let w = World::new(sim_opts());
    let url = not_tfe_server();
    let t = w.config_text();
    let old = t
        .lines()
        .find(|l| l.starts_with("address = "))
        .unwrap()
        .to_string();
    w.edit_config(&old, &format!("address = \"{url}\""));
    let r = w.run(&["validate", "--preflight"]);
    assert_code(&r, 2);
    assert!(
        r.stdout.contains("is not TFE") && r.stdout.contains("[tfe] address"),
        "{}",
        r.both()
    );
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("is not TFE") && r.stderr.contains("[tfe] address"),
        "{}",
        r.both()
    );
    assert!(w.requests().is_empty(), "the simulator was never asked");
}

/// Issue 34: bash completion completes after a subcommand: its flags
/// (`run --f<TAB>`) and the step names `--force` takes. Drives the
/// completion function the script defines, as bash does on TAB.
#[test]
fn bash_completion_completes_after_a_subcommand() {
    let out = std::process::Command::new(bin())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let d = tempfile::tempdir().unwrap();
    let script = d.path().join("tfe-bootstrap.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let complete = |words: &[&str]| -> String {
        let cword = words.len() - 1;
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let prog = format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
             _tfe__bootstrap tfe-bootstrap '{}' '{}'; echo \"${{COMPREPLY[@]}}\"",
            script.display(),
            quoted.join(" "),
            words.join(" "),
            words[cword],
            words[cword - 1],
        );
        let o = std::process::Command::new("bash")
            .args(["-c", &prog])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(complete(&["tfe-bootstrap", "re"]), "renew reset");
    let flags = complete(&["tfe-bootstrap", "run", "--f"]);
    assert_eq!(flags, "--force", "run --f<TAB>");
    let steps = complete(&["tfe-bootstrap", "run", "--force", "verify"]);
    assert_eq!(
        steps, "verify-tokens",
        "--force <TAB> offers the step names"
    );
}

/// Issue 34: a run that ended well says what to do next: where to sign in,
/// as whom, where the token is, and how Terraform gets a token for a host
/// with a port (no TF_TOKEN_* then).
#[test]
fn a_finished_run_says_what_to_do_next() {
    let w = World::new(sim_opts());
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    let next: Vec<&str> = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("next:"))
        .collect();
    let text = next.join("\n");
    assert!(
        text.contains(&format!("sign in at {}", w.sim.url()))
            && text.contains("\"tfe-admin\"")
            && text.contains(&w.token_file().display().to_string()),
        "{}",
        r.stdout
    );
    let host = w.sim.url().trim_start_matches("http://").to_string();
    assert!(text.contains(&format!("terraform login {host}")), "{text}");
    assert!(
        text.contains("TF_TOKEN_* cannot name a host with a port"),
        "{text}"
    );
    // Not in JSON output: the event stream stays as it is.
    let r = w.run(&["--output", "json", "run"]);
    assert!(!r.stdout.contains("next:"), "{}", r.stdout);
}

/// Issue 34: a value of the wrong type names its key and the type wanted,
/// not serde's `expected i64`.
#[test]
fn a_type_error_names_the_key() {
    let w = World::new(sim_opts());
    w.edit_config("api_rate_limit = 60", "api_rate_limit = \"sixty\"");
    let r = w.run(&["validate"]);
    assert_code(&r, 2);
    assert!(
        r.stderr
            .contains("[general] api_rate_limit: string \"sixty\" is not a whole number"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("i64"), "{}", r.stderr);
}
