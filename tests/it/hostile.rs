//! Hostile conditions (issue #11): slow relays, full disks, planted files,
//! echoed secrets, runaway commands, signals. Each test prints a
//! `RELIABILITY hostile-<case>` line that `scripts/reliability.sh` collects.

use std::time::Duration;

use tfe_bootstrap::sim::faults::FaultRule;

use crate::util::*;

/// A relay slower than `request_timeout`: TFE answers the SMTP PATCH only
/// after 6 s, the client gives up on each attempt at 5 s. After run and
/// rerun there is exactly one test mail, and the run ends with exit 0.
#[test]
fn slow_smtp_relay_gets_exactly_one_test_mail() {
    let w = World::new(sim_opts());
    w.edit_config("request_timeout = \"10s\"", "request_timeout = \"5s\"");
    w.sim
        .add_fault(FaultRule::parse("patch=/api/v2/admin/smtp-settings:stall=6s*8").unwrap());
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(
        r.stdout
            .contains("not repeated, so there was one test mail"),
        "{}",
        r.stdout
    );
    let r2 = w.run(&["run"]);
    assert_code(&r2, 0);
    let s = w.snapshot();
    assert_eq!(s["test-mails"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["settings"]["smtp"]["host"], "smtp.example.com");
    let patches = w
        .requests()
        .iter()
        .filter(|e| e.method == "PATCH" && e.path == "/api/v2/admin/smtp-settings")
        .count();
    assert_eq!(patches, 1, "the PATCH is never repeated");
    println!("RELIABILITY hostile-slow-smtp runs=2 patches={patches} test-mails=1 exit=0");
}

/// The relay is slower still: TFE holds nothing new when the read-back
/// gives up. The run fails without repeating; the rerun, finding its own
/// intent, reads back first and, TFE now holding the change, sends nothing.
#[test]
fn a_lost_smtp_answer_is_read_back_on_rerun_not_resent() {
    let w = World::new(sim_opts());
    w.edit_config("request_timeout = \"10s\"", "request_timeout = \"1s\"");
    w.sim
        .add_fault(FaultRule::parse("patch=/api/v2/admin/smtp-settings:stall=4s").unwrap());
    let r = w.run(&["run"]);
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("The PATCH is not repeated"),
        "{}",
        r.stderr
    );
    // TFE finishes the mail after the client gave up.
    let mails = || w.snapshot()["test-mails"].as_array().unwrap().len();
    assert!(wait_until(Duration::from_secs(30), || mails() == 1));
    let r2 = w.run(&["run"]);
    assert_code(&r2, 0);
    assert!(
        r2.stdout.contains("not sent again, so no second test mail"),
        "{}",
        r2.stdout
    );
    assert_eq!(mails(), 1);
    println!("RELIABILITY hostile-lost-smtp-answer runs=2 test-mails=1 exit=0");
}
