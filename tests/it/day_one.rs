//! Day one (issue 34): the hand-off to Terraform. With `[terraform]`, the
//! run writes this TFE's entry of a `credentials.tfrc.json` (Terraform CLI
//! config docs, "Credentials"), keeps every other entry, and keeps it
//! current when the token in it changes.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::util::*;

/// The world's config with a `[terraform]` section for `file`, plus `more`.
fn with_terraform(w: &World, file: &std::path::Path, more: &str) {
    let mut t = w.config_text();
    t.push_str(&format!(
        "\n[terraform]\ncredentials_file = \"{}\"\n{more}",
        file.display()
    ));
    w.write_config(&t);
}

fn credentials(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_run_hands_terraform_the_owners_token_and_keeps_other_hosts() {
    let w = World::new(sim_opts()).with_service_tokens();
    let file = w.dir.path().join("home/.terraform.d/credentials.tfrc.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        r#"{"credentials": {"app.terraform.io": {"token": "someone-elses"}}, "extra": 1}"#,
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    with_terraform(&w, &file, "");
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("terraform-credentials"), "{}", r.stdout);
    let host = w.sim.url().trim_start_matches("http://").to_string();
    let owners = w.token_at(&w.dir.path().join("owners-token"));
    let v = credentials(&file);
    assert_eq!(v["credentials"][&host]["token"], owners.as_str(), "{v}");
    assert_eq!(
        v["credentials"]["app.terraform.io"],
        json!({"token": "someone-elses"})
    );
    assert_eq!(v["extra"], 1, "other keys are kept");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(w.authenticates(&owners), "the token handed over works");
    // Nothing to do: nothing sent.
    let n = w.requests().len();
    assert_code(&w.run(&["run"]), 0);
    assert_eq!(w.requests().len(), n, "a rerun sends nothing");
    // The entry changed behind the run's back: the next run puts it back.
    let mut v = credentials(&file);
    v["credentials"][&host]["token"] = json!("edited");
    std::fs::write(&file, v.to_string()).unwrap();
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert_eq!(
        credentials(&file)["credentials"][&host]["token"],
        owners.as_str()
    );
}

#[test]
fn a_token_choice_the_config_does_not_write_is_refused_by_name() {
    let w = World::new(sim_opts());
    with_terraform(
        &w,
        std::path::Path::new("/tmp/x.json"),
        "token = \"owners_team\"\n",
    );
    let r = w.run(&["validate"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("[terraform] token")
            && r.stderr.contains("[organization.owners_team_token]"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_credentials_file_that_is_not_terraforms_is_left_alone() {
    let w = World::new(sim_opts());
    let file = w.dir.path().join("credentials.tfrc.json");
    std::fs::write(&file, "not json").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    with_terraform(&w, &file, "");
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("left as it is"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not json");
}

/// Issue 34, day two in monitoring: `[metrics] textfile` holds each
/// token's expiry and the last run's and renew's outcome and time, in the
/// format node_exporter's textfile collector reads; `promtool check
/// metrics` (Debian's `prometheus` package) accepts it. A run that fails
/// says 0 and keeps the renew's lines.
#[test]
fn the_metrics_textfile_says_what_monitoring_needs() {
    let w = World::new(sim_opts()).with_service_tokens();
    let file = w.dir.path().join("textfile/tfe-bootstrap.prom");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let mut t = w.config_text();
    t.push_str(&format!("\n[metrics]\ntextfile = \"{}\"\n", file.display()));
    w.write_config(&t);
    assert_code(&w.run(&["run"]), 0);
    assert_code(&w.run(&["renew"]), 0);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o644,
        "the collector runs as another user"
    );
    for want in [
        "tfe_bootstrap_last_run_success{command=\"run\"} 1",
        "tfe_bootstrap_last_run_success{command=\"renew\"} 1",
        "tfe_bootstrap_token_expiry_timestamp_seconds{token=\"admin\"",
        "tfe_bootstrap_token_expiry_timestamp_seconds{token=\"org-token\"",
        "tfe_bootstrap_token_expiry_timestamp_seconds{token=\"team-token\"",
    ] {
        assert!(text.contains(want), "{want} not in:\n{text}");
    }
    // The expiries are status's.
    let r = w.run(&["status", "--output", "json"]);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    for tok in v["tokens"].as_array().unwrap() {
        let Some(at) = tok["expires"].as_str() else {
            continue;
        };
        let secs = tfe_bootstrap::util::parse_rfc3339_ms(at).unwrap() / 1000;
        assert!(
            text.contains(&format!("token=\"{}\"", tok["step"].as_str().unwrap()))
                && text.contains(&format!("}} {secs}\n")),
            "{tok} in:\n{text}"
        );
    }
    if tools_present(
        &["promtool"],
        "TFE_BOOTSTRAP_REQUIRE_PROMTOOL",
        "apt-get install prometheus",
    ) {
        let out = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&file).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        println!("SKIPPED promtool check metrics: promtool is not installed");
    }
    // A failed run says so, and keeps what renew said.
    let r = to_run(
        w.command(&["run", "--force", "smtp"])
            .env_remove("T_SMTP_PASSWORD")
            .output_timed()
            .unwrap(),
    );
    assert_code(&r, 2);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("tfe_bootstrap_last_run_success{command=\"run\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("tfe_bootstrap_last_run_success{command=\"renew\"} 1"),
        "{text}"
    );
}
