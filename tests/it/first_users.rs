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
