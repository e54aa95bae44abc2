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
