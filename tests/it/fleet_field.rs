//! Many nodes in the field (issue 22): 8 nodes at once, configs rolled
//! back, a store whose `put` fails, a `[store] wait` shorter than a request.
//! What a user counts: test mails against applied changes, exit codes.

use crate::fleet::{Fleet, Node, helper};
use crate::util::*;

/// Rewrites every node's config.
fn edit_all(nodes: &[Node], from: &str, to: &str) {
    for n in nodes {
        let t = std::fs::read_to_string(&n.config).unwrap();
        assert!(t.contains(from), "config has no {from:?}");
        std::fs::write(&n.config, t.replacen(from, to, 1)).unwrap();
    }
}

#[track_caller]
fn all_exit_0(runs: &[(Run, std::time::Instant)], what: &str) {
    for (i, (r, _)) in runs.iter().enumerate() {
        assert_eq!(r.code, 0, "{what}: node {}:\n{}", i + 1, r.both());
    }
}

/// A config rolled out A, then B, then back to A across 8 nodes: three
/// applied changes, three test mails (the old done key of A must not let
/// every node apply A again on its own).
#[test]
fn a_rollback_across_eight_nodes_sends_one_mail_per_change() {
    let mut f = Fleet::new(None, "60s");
    let nodes: Vec<Node> = (0..8).map(|_| f.node()).collect();
    all_exit_0(&f.run_all(&nodes), "A");
    assert_eq!(f.count("test-mails"), 1);
    edit_all(
        &nodes,
        "host = \"smtp.example.com\"",
        "host = \"smtp-b.example.com\"",
    );
    all_exit_0(&f.run_all(&nodes), "B");
    assert_eq!(f.count("test-mails"), 2);
    edit_all(
        &nodes,
        "host = \"smtp-b.example.com\"",
        "host = \"smtp.example.com\"",
    );
    all_exit_0(&f.run_all(&nodes), "A again");
    let s = f.snapshot();
    assert_eq!(s["settings"]["smtp"]["host"], "smtp.example.com");
    assert_eq!(f.count("test-mails"), 3, "one mail per applied change");
    println!("RELIABILITY fleet-rollback nodes=8 changes=3 test-mails=3");
}

/// The store's `put done-smtp-...` fails, so the node that applied the SMTP
/// change cannot tell the others. They take the duty over after the wait,
/// find TFE already holding the change, and send nothing: one mail.
#[test]
fn a_failing_done_put_sends_no_second_mail() {
    let mut f = Fleet::new(None, "3s");
    let nodes: Vec<Node> = (0..8).map(|_| f.node()).collect();
    all_exit_0(&f.run_all(&nodes), "first round");
    assert_eq!(f.count("test-mails"), 1);
    // A helper that refuses to record that the SMTP duty is done.
    let store = f.dir.path().join("store");
    let wrapper = f.dir.path().join("failing-put");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$1 $2\" in \"put done-smtp-\"*) echo 'put refused' >&2; exit 1 ;; esac\nexec {:?} {:?} \"$@\"\n",
            helper("file"),
            store.display().to_string()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    edit_all(
        &nodes,
        &f.store_command(),
        &format!("[{:?}]", wrapper.display().to_string()),
    );
    edit_all(
        &nodes,
        "host = \"smtp.example.com\"",
        "host = \"smtp-c.example.com\"",
    );
    let runs = f.run_all(&nodes);
    let failed = runs.iter().filter(|(r, _)| r.code != 0).count();
    assert!(failed <= 1, "only the node whose put failed may fail");
    assert_eq!(f.count("test-mails"), 2, "one mail for the one change");
    assert_eq!(
        f.snapshot()["settings"]["smtp"]["host"],
        "smtp-c.example.com"
    );
    println!(
        "RELIABILITY fleet-failing-done-put nodes=8 test-mails-for-the-change=1 failed-nodes={failed}"
    );
}

/// A `[store] wait` shorter than what one request may take is refused
/// before anything is sent, naming both keys.
#[test]
fn a_store_wait_shorter_than_a_request_is_refused() {
    let mut f = Fleet::new(None, "60s");
    let n = f.node();
    let t = std::fs::read_to_string(&n.config)
        .unwrap()
        .replace("wait = \"60s\"", "wait = \"1s\"");
    std::fs::write(&n.config, t).unwrap();
    let r = to_run(f.spawn(&n).wait_with_output().unwrap());
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(
        r.stderr.contains("[store] wait") && r.stderr.contains("[tfe] request_deadline"),
        "{}",
        r.stderr
    );
    assert!(f.sim.requests().is_empty());
}
