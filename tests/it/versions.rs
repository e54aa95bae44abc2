//! Each TFE release the simulator models (`--tfe-version`, issue 24): the
//! client learns the release, sends the form that release's docs give
//! first (no 404/405 round trip on a change), converges, and refuses a
//! step the release lacks before anything is changed.

use tfe_bootstrap::sim::SimOptions;

use crate::util::*;

/// The documented releases the simulator follows.
const RELEASES: &[&str] = &["2.0.1", "2.0.0", "1.1.0", "v202309-1"];

fn world(version: &str, ttl: bool) -> World {
    let w = World::new(SimOptions {
        version: version.into(),
        ..sim_opts()
    });
    let mut t = w.config_text().replace(
        "api_rate_limit = 60\n",
        "api_rate_limit = 60\n\n[customization]\nsupport_email_address = \"help@example.com\"\n",
    );
    if !ttl {
        t = t.replace("max_ttl_enabled = true\n", "");
        let start = t.find("[organization.token_ttl]").unwrap();
        let end = t[start..].find("\n\n").map(|e| start + e).unwrap();
        t.replace_range(start..end, "");
    }
    w.write_config(&(t + TWILIO_SECTION));
    w
}

#[test]
fn every_modelled_release_gets_its_documented_forms_first_and_converges() {
    for v in RELEASES {
        let ttl = *v == "2.0.1";
        let w = world(v, ttl);
        let r = w.run(&["run"]);
        assert_code(&r, 0);
        let refused: Vec<String> = w
            .mutating()
            .iter()
            .filter(|q| matches!(q.status, 404 | 405))
            .map(|q| format!("{} {} {}", q.method, q.path, q.status))
            .collect();
        assert!(
            refused.is_empty(),
            "{v}: a change was refused first: {refused:?}"
        );
        let s = w.snapshot();
        assert_eq!(
            s["settings"]["customization"]["support-email-address"], "help@example.com",
            "{v}"
        );
        assert_eq!(s["test-sms"].as_array().unwrap().len(), 1, "{v}");
        assert!(
            w.requests().iter().any(|q| q.method == "POST"
                && q.path == "/api/v2/admin/twilio-settings/verify"
                && q.status == 200),
            "{v}: Twilio verified with POST"
        );
        assert!(w.assert_token_files_work() >= 1, "{v}");
        // The release is recorded and shown.
        let st = w.run(&["status"]);
        assert!(
            st.stdout.contains(v),
            "{v}: status shows it:\n{}",
            st.stdout
        );
    }
}

#[test]
fn a_ttl_step_against_a_release_without_ttl_policies_exits_2_with_nothing_changed() {
    for v in ["1.1.0", "2.0.0", "v202309-1"] {
        let w = world(v, true);
        let r = w.run(&["run"]);
        assert_code(&r, 2);
        assert!(
            r.stderr
                .contains(&format!("TFE {v} has no token TTL policies"))
                && r.stderr.contains("[organization.token_ttl]")
                && r.stderr.contains("Nothing was changed"),
            "{v}: {}",
            r.stderr
        );
        assert!(w.mutating().is_empty(), "{v}: {:?}", w.mutating());
        assert!(w.snapshot()["users"].as_array().unwrap().is_empty(), "{v}");
    }
}

/// The undocumented older shape (the PTFE "Settings API" page) reports no
/// version: the client meets it through its fallbacks and still converges.
#[test]
fn an_unknown_release_is_met_through_the_fallbacks() {
    let w = world(tfe_bootstrap::sim::tfe::PTFE_SETTINGS_PAGE, false);
    let t = w.config_text().replace(
        "\n[customization]\nsupport_email_address",
        "support_email_address",
    );
    w.write_config(&t);
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert_eq!(
        w.snapshot()["settings"]["general"]["support-email-address"],
        "help@example.com"
    );
}
