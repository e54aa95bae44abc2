//! HCP Terraform (`[tfe] platform = "hcp"`) against `tfe-sim --hcp`, and an
//! organization owner's token on Terraform Enterprise: the per-organization
//! half of the bootstrap, with no site admin.

use std::path::Path;

use tfe_bootstrap::sim::SimOptions;

use crate::util::*;

/// An organization owner's user token (it may create organizations).
const OWNER: &str = "hcpOwnerToken1.atlasv1.ownerownerownerownerownerownerownerownerownerowner";
/// A user who owns nothing.
const STRANGER: &str = "hcpStranger123.atlasv1.strangerstrangerstrangerstrangerstrangerstrang";

fn hcp_world(opts: SimOptions) -> World {
    let w = World::new(SimOptions {
        hcp: true,
        iact: None,
        iact_subnets: vec![],
        ..opts
    });
    w.write_config(&hcp_config(w.sim.url(), &w.state_dir(), w.dir.path()));
    w
}

/// `config/hcp.toml` as shipped, pointed at the simulator and the test's
/// directories.
fn hcp_config(url: &str, state: &Path, dir: &Path) -> String {
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/hcp.toml"))
            .unwrap();
    assert!(shipped.contains("platform = \"hcp\""));
    shipped
        .replacen(
            "\nplatform = \"hcp\"\n",
            &format!("\nplatform = \"hcp\"\naddress = \"{url}\"\nallow_insecure_http = true\n"),
            1,
        )
        .replace(
            "/var/lib/tfe-bootstrap/org-token",
            &dir.join("org-token").display().to_string(),
        )
        + &format!("\n[state]\ndir = {:?}\n", state.display().to_string())
}

fn run_with(w: &World, token: &str, args: &[&str]) -> Run {
    let r = to_run(
        w.command(args)
            .env("TFE_TOKEN", token)
            .output_timed()
            .unwrap(),
    );
    w.assert_no_secrets(&r);
    assert!(!r.both().contains(token), "the token leaked");
    r
}

#[test]
fn a_full_per_org_run_on_hcp_then_a_rerun_that_sends_nothing() {
    let w = hcp_world(SimOptions {
        user_tokens: vec![OWNER.into()],
        ..sim_opts()
    });
    let r = run_with(&w, OWNER, &["run"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("GET /api/v2/ping"), "{}", r.stdout);
    for skipped in ["iact", "admin"] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with(skipped) && l.contains("not on HCP Terraform")),
            "{}",
            r.stdout
        );
    }
    let s = w.snapshot();
    let org = &s["organizations"][0];
    assert_eq!(org["name"], "my-org");
    assert_eq!(org["default-execution-mode"], "agent");
    assert_eq!(org["default-agent-pool"], "default-pool");
    assert_eq!(org["max-ttl-enabled"], true);
    let day = 86_400_000u64;
    assert_eq!(org["token-ttl-policies"]["organization"], 365 * day);
    assert_eq!(org["token-ttl-policies"]["team"], 90 * day);
    // Nothing TFE-only was asked for.
    assert!(
        w.requests().iter().all(|e| !e.path.starts_with("/admin")
            && !e.path.starts_with("/api/v2/admin")
            && !e.path.starts_with("/api/v1/health")),
        "a TFE-only endpoint was called"
    );
    // The org token works after max-TTL enforcement.
    let token = std::fs::read_to_string(w.dir.path().join("org-token")).unwrap();
    let (st, _) = Http::new(w.sim.url()).get("/api/v2/organizations/my-org", Some(token.trim()));
    assert_eq!(st, 200);

    let before = w.requests().len();
    let r = run_with(&w, OWNER, &["run"]);
    assert_code(&r, 0);
    assert_eq!(w.requests().len(), before, "a rerun sent requests");
}

#[test]
fn a_tfe_only_section_is_refused_with_no_request() {
    let w = hcp_world(SimOptions {
        user_tokens: vec![OWNER.into()],
        ..sim_opts()
    });
    for (section, text) in [
        ("[smtp]", "\n[smtp]\nenabled = false\n"),
        ("[general]", "\n[general]\napi_rate_limit = 60\n"),
        (
            "[iact]",
            "\n[iact]\nsource = \"token\"\ntoken = { env = \"T_IACT\" }\n",
        ),
    ] {
        let base = hcp_config(w.sim.url(), &w.state_dir(), w.dir.path());
        w.write_config(&format!("{base}{text}"));
        let r = run_with(&w, OWNER, &["run"]);
        assert_code(&r, 2);
        assert!(
            r.stderr.contains(section) && r.stderr.contains("Terraform Enterprise only"),
            "{section}: {}",
            r.stderr
        );
    }
    let base = hcp_config(w.sim.url(), &w.state_dir(), w.dir.path());
    w.write_config(&base.replace(
        "token = { env = \"TFE_TOKEN\" }",
        "token = { env = \"TFE_TOKEN\" }\nusername = \"admin\"",
    ));
    let r = run_with(&w, OWNER, &["run"]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("[admin] username"), "{}", r.stderr);
    assert!(w.requests().is_empty(), "a refused config sent requests");
    assert!(!w.state_dir().exists(), "a refused config wrote state");
}

#[test]
fn a_token_without_the_rights_gets_a_clear_error() {
    // The organization exists, owned by someone else: invisible to this
    // token, and its name is taken.
    let w = hcp_world(SimOptions {
        user_tokens: vec![STRANGER.into()],
        owned_orgs: vec![("my-org".into(), OWNER.into())],
        ..sim_opts()
    });
    let r = run_with(&w, STRANGER, &["run"]);
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("step organization")
            && r.stderr.contains("exists but this token cannot see it")
            && r.stderr.contains("owners"),
        "{}",
        r.stderr
    );
    assert!(
        w.mutating().iter().all(|e| e.status >= 400),
        "nothing changed"
    );
    // A token TFE does not know at all.
    let r = run_with(&w, "unknownTokenXYZ.atlasv1.nopenopenopenopenope", &["run"]);
    assert_code(&r, 4);
    assert!(r.stderr.contains("TFE refused"), "{}", r.stderr);
}

/// An organization that exists and is owned by this token is ensured, not
/// created: the run goes on with it.
#[test]
fn an_existing_owned_organization_is_used() {
    let w = hcp_world(SimOptions {
        owned_orgs: vec![("my-org".into(), OWNER.into())],
        ..sim_opts()
    });
    let r = run_with(&w, OWNER, &["run"]);
    assert_code(&r, 0);
    assert!(
        !w.requests()
            .iter()
            .any(|e| e.method == "POST" && e.path == "/api/v2/organizations"),
        "it tried to create an organization that exists"
    );
    assert_eq!(w.snapshot()["organizations"].as_array().unwrap().len(), 1);
}

/// On Terraform Enterprise, an organization owner's token with no admin
/// sections runs the per-organization steps; a site-admin-only step given
/// such a token says so and changes nothing.
#[test]
fn an_org_owner_token_on_enterprise_runs_the_org_steps() {
    // The sim limits organization creation to site admins (TFE's
    // limit-user-organization-creation), as an install does by default: the
    // owner's organization exists.
    let w = World::new(SimOptions {
        owned_orgs: vec![("my-org".into(), OWNER.into())],
        ..sim_opts()
    });
    let org_only = |extra: &str| {
        format!(
            r#"
[tfe]
address = "{}"
allow_insecure_http = true

[admin]
token = {{ env = "TFE_TOKEN" }}
{extra}
[organization]
name = "my-org"
email = "platform@example.com"
default_execution_mode = "remote"

[state]
dir = {:?}
"#,
            w.sim.url(),
            w.state_dir().display().to_string()
        )
    };
    w.write_config(&org_only("\n[smtp]\nenabled = false\n"));
    let r = run_with(&w, OWNER, &["run"]);
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("step smtp")
            && r.stderr.contains("needs a site admin's token")
            && r.stderr.contains("remove [smtp]"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("only the organization steps can run"),
        "{}",
        r.stdout
    );
    assert!(w.mutating().is_empty(), "a refused step changed something");

    w.write_config(&org_only(""));
    let r = run_with(&w, OWNER, &["run"]);
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("every token authenticates"),
        "{}",
        r.stdout
    );
    let s = w.snapshot();
    assert_eq!(s["organizations"][0]["default-execution-mode"], "remote");
    assert_eq!(
        s["users"].as_array().unwrap().len(),
        1,
        "no admin was created"
    );
}

/// `tfe-sim --hcp` answers as HCP Terraform: ping with its app name, and
/// no admin API, IACT or health endpoints, even for a token that exists.
#[test]
fn the_simulator_in_hcp_mode_has_no_tfe_only_endpoints() {
    let w = hcp_world(SimOptions {
        user_tokens: vec![OWNER.into()],
        ..sim_opts()
    });
    let ping = ureq::get(format!("{}/api/v2/ping", w.sim.url()))
        .call()
        .unwrap();
    assert_eq!(ping.status().as_u16(), 204);
    assert_eq!(
        ping.headers()
            .get("TFP-AppName")
            .and_then(|v| v.to_str().ok()),
        Some("HCP Terraform")
    );
    let h = Http::new(w.sim.url());
    for path in [
        "/api/v1/health/readiness",
        "/_health_check",
        "/admin/retrieve-iact",
        "/api/v2/admin/general-settings",
    ] {
        let (st, _) = h.get(path, Some(OWNER));
        assert_eq!(st, 404, "{path}");
    }
    let (st, _, _) = h.req(
        "POST",
        "/admin/initial-admin-user",
        None,
        Some(&serde_json::json!({})),
        "application/json",
    );
    assert_eq!(st, 404);
    let (st, body) = h.get("/api/v2/account/details", Some(OWNER));
    assert_eq!(st, 200);
    assert_eq!(body["data"]["attributes"]["is-site-admin"], false);
}

/// With `platform = "hcp"` the address defaults to HCP Terraform's.
#[test]
fn hcp_defaults_to_app_terraform_io() {
    let w = World::new(sim_opts());
    w.write_config(
        "[tfe]\nplatform = \"hcp\"\n\n[admin]\ntoken = { env = \"TFE_TOKEN\" }\n\n[organization]\nname = \"my-org\"\nemail = \"platform@example.com\"\n",
    );
    let r = run_with(&w, OWNER, &["validate", "--output", "json"]);
    assert_code(&r, 0);
    assert!(
        r.stdout
            .contains("\"address\":\"https://app.terraform.io\"")
            && r.stdout.contains("\"platform\":\"hcp\""),
        "{}",
        r.stdout
    );
    // And a platform that is neither is refused with the choices.
    w.write_config("[tfe]\nplatform = \"cloud\"\naddress = \"https://x.example.com\"\n");
    let r = run_with(&w, OWNER, &["validate"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("[tfe] platform") && r.stderr.contains("enterprise, hcp"),
        "{}",
        r.stderr
    );
}

/// An enterprise config against HCP Terraform, and an HCP config against
/// Terraform Enterprise: `run` and `validate --preflight` each say which
/// platform answered and exit 2 within seconds, not at `[wait] timeout`.
#[test]
fn a_platform_mismatch_fails_fast_naming_the_platform() {
    // Enterprise config, HCP answering.
    let hcp = World::new(SimOptions {
        hcp: true,
        ..sim_opts()
    });
    for args in [&["run"][..], &["validate", "--preflight"]] {
        let r = to_run(
            hcp.command(args)
                .output_within(std::time::Duration::from_secs(10))
                .unwrap(),
        );
        assert_code(&r, 2);
        assert!(
            r.both().contains("HCP Terraform") && r.both().contains("platform"),
            "{}",
            r.both()
        );
    }
    // HCP config, Terraform Enterprise answering.
    let tfe = World::new(sim_opts());
    tfe.write_config(&hcp_config(tfe.sim.url(), &tfe.state_dir(), tfe.dir.path()));
    for args in [&["run"][..], &["validate", "--preflight"]] {
        let r = to_run(
            tfe.command(args)
                .env("TFE_TOKEN", STRANGER)
                .output_within(std::time::Duration::from_secs(10))
                .unwrap(),
        );
        assert_code(&r, 2);
        assert!(
            r.both().contains("Terraform Enterprise") && r.both().contains("platform"),
            "{}",
            r.both()
        );
    }
}
