//! `tfe-bootstrap renew` (issue 23): the tokens the run wrote are replaced
//! before the TTL policies it set make them expire, never leaving a file
//! without a working token.

use std::path::PathBuf;

use std::time::Duration;

use crate::fleet::{Fleet, Node};
use crate::util::*;

/// A world with org, owners team and agent tokens, TTL policies of hours,
/// and `[renew] before` longer than them: everything is due at once.
fn due_world() -> World {
    let w = World::new(sim_opts()).with_service_tokens();
    let agent = w.dir.path().join("agent-token");
    w.edit_config(
        "[organization.token_ttl]\norganization = \"1y\"\nteam = \"90d\"\nuser = \"30d\"",
        &format!(
            "[organization.agent_token]\nfile = \"{}\"\n\n[organization.token_ttl]\norganization = \"6h\"\nteam = \"6h\"\nuser = \"6h\"",
            agent.display()
        ),
    );
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    w
}

fn files(w: &World) -> [PathBuf; 3] {
    [
        w.token_file(),
        w.dir.path().join("org-token"),
        w.dir.path().join("owners-token"),
    ]
}

/// Since request `from`, renew sent one read of TFE's clock (`GET
/// /api/v2/ping`) and nothing else: nothing was due.
#[track_caller]
fn assert_only_a_clock_read(w: &World, from: usize, out: &str) {
    let sent: Vec<String> = w.requests()[from..]
        .iter()
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert_eq!(
        sent,
        ["GET /api/v2/ping"],
        "nothing due: only TFE's clock is read\n{out}"
    );
}

fn set_before(w: &World, before: &str) {
    let t = w.config_text();
    w.write_config(&format!("{t}\n[renew]\nbefore = \"{before}\"\n"));
}

/// Every due token is replaced; each new file authenticates; the replaced
/// admin and team tokens are revoked (no `[store]`: no grace); the agent
/// token, which carries no expiry, stays. A second renew changes nothing
/// (it reads TFE's clock, nothing else).
#[test]
fn renew_replaces_every_due_token_and_a_second_renew_changes_nothing() {
    let w = due_world();
    // Not due yet under the default (a third of 6h): only the clock is read.
    let before = w.requests().len();
    let r = w.run(&["renew"]);
    assert_code(&r, 0);
    assert_only_a_clock_read(&w, before, &r.stdout);
    assert!(r.stdout.contains("renewed from"), "{}", r.stdout);

    // status says when each token expires and when renew replaces it.
    let st = w.run(&["status"]);
    assert_eq!(
        st.stdout
            .matches("`tfe-bootstrap renew` replaces it from")
            .count(),
        3,
        "{}",
        st.stdout
    );
    assert!(st.stdout.contains("agent-token token"), "{}", st.stdout);
    assert!(st.stdout.contains("does not expire"), "{}", st.stdout);

    set_before(&w, "1d");
    let old: Vec<String> = files(&w).iter().map(|f| w.token_at(f)).collect();
    let agent = w.token_at(&w.dir.path().join("agent-token"));
    let r = w.run(&["renew", "--dry-run"]);
    assert_code(&r, 0);
    assert_only_a_clock_read(&w, before + 1, &r.stdout);
    assert_eq!(r.stdout.matches("would renew").count(), 3, "{}", r.stdout);

    let r = w.run(&["renew"]);
    assert_code(&r, 0);
    for (f, o) in files(&w).iter().zip(&old) {
        let new = w.token_at(f);
        assert_ne!(&new, o, "{} was not renewed", f.display());
        assert!(w.authenticates(&new), "{} does not work", f.display());
        let rec = w.token_record(&new);
        assert!(
            rec["lifetime-ms"].as_u64().unwrap() <= 6 * 3_600_000,
            "{} outlives its policy: {rec}",
            f.display()
        );
        assert!(
            !w.authenticates(o),
            "the replaced {} still works\n{}",
            f.display(),
            r.stdout
        );
    }
    assert_eq!(w.token_at(&w.dir.path().join("agent-token")), agent);
    assert!(r.stdout.contains("revoked the replaced"), "{}", r.stdout);

    // Renewed tokens are not due for a while: a second renew sends nothing.
    w.edit_config("before = \"1d\"", "before = \"1h\"");
    let n = w.requests().len();
    let r = w.run(&["renew"]);
    assert_code(&r, 0);
    assert_only_a_clock_read(&w, n, &r.stdout);
    // The run after it agrees: every file works, nothing re-minted.
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert_eq!(w.assert_token_files_work(), 4);
}

/// No replaced token is revoked before its replacement is in its file:
/// while the revocation is parked, the file already holds a new token that
/// works.
#[test]
fn the_replaced_token_is_revoked_only_after_the_new_one_is_in_place() {
    let w = due_world();
    set_before(&w, "1d");
    let old = w.token_at(&w.token_file());
    let r = w.parked_during(
        &["renew"],
        "delete=/api/v2/authentication-tokens/*:pause",
        || {
            let now = w.token_at(&w.token_file());
            assert_ne!(now, old);
            assert!(w.authenticates(&now));
            let team = w.token_at(&w.dir.path().join("owners-token"));
            assert!(w.authenticates(&team));
        },
    );
    assert_code(&r, 0);
    assert!(!w.authenticates(&old));
}

/// SIGKILL at each request renew sends that changes something, then a
/// rerun: every token file works, whatever the kill interrupted.
#[test]
fn a_kill_at_any_renew_request_never_leaves_a_dead_token_file() {
    let probe = due_world();
    set_before(&probe, "1d");
    let start = probe.mutating().len();
    assert_code(&probe.run(&["renew"]), 0);
    let writes = probe.mutating().len() - start;
    assert!(writes >= 4, "renew sent {writes} writes");
    for k in 1..=writes {
        let w = due_world();
        set_before(&w, "1d");
        let at = w.mutating().len() + k;
        w.kill_during(&["renew"], &format!("mutating={at}:pause-after"));
        let r = w.run(&["renew"]);
        assert_code(&r, 0);
        for f in files(&w) {
            let t = w.token_at(&f);
            assert!(
                w.authenticates(&t),
                "after a kill at write {k}: {} does not work\n{}",
                f.display(),
                r.stdout
            );
        }
        let r = w.run(&["run"]);
        assert_code(&r, 0);
    }
}

/// `n` nodes through one `[store]`, with organization and owners team
/// tokens under TTL policies of `ttl` for every type and `extra` appended
/// to each config, after a first run on all of them at once.
fn renewing_fleet(n: usize, ttl: &str, extra: &str) -> (Fleet, Vec<Node>) {
    let mut f = Fleet::new(None, "30s");
    let nodes: Vec<_> = (0..n)
        .map(|_| {
            f.node_with(|f, root| {
                let mut text = f.base_config(root).replace(
                    "[organization.token_ttl]\norganization = \"1y\"\nteam = \"90d\"\nuser = \"30d\"",
                    &format!("[organization.token_ttl]\norganization = \"{ttl}\"\nteam = \"{ttl}\"\nuser = \"{ttl}\""),
                );
                text.push_str(&format!(
                    "\n[organization.service_token]\nfile = {:?}\n\n[organization.owners_team_token]\nfile = {:?}\n\n[store]\ncommand = {}\nwait = \"30s\"\n{extra}",
                    root.join("org-token").display().to_string(),
                    root.join("team-token").display().to_string(),
                    f.store_command()
                ));
                text
            })
        })
        .collect();
    for (r, _) in f.run_all(&nodes) {
        assert_code(&r, 0);
    }
    (f, nodes)
}

/// Four nodes due at once: one renews each token, the others take it from
/// `[store]`; every node ends with the same working tokens.
#[test]
fn in_a_fleet_one_node_renews_and_the_others_take_the_new_tokens() {
    let (f, nodes) = renewing_fleet(4, "6h", "\n[renew]\nbefore = \"1d\"\ngrace = \"0s\"\n");
    let posts = |f: &Fleet, suffix: &str| {
        f.sim
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(suffix) && r.status < 300)
            .count()
    };
    let user0 = posts(&f, "/authentication-tokens");
    let org0 = posts(&f, "/my-org/authentication-token");
    let children: Vec<_> = nodes
        .iter()
        .map(|n| f.command_for(n, "renew").spawn().unwrap())
        .collect();
    for (n, c) in nodes.iter().zip(children) {
        assert_code(&f.wait_node(n, c), 0);
    }
    assert_eq!(
        posts(&f, "/authentication-tokens") - user0,
        2,
        "one admin and one owners token minted for the fleet"
    );
    assert_eq!(posts(&f, "/my-org/authentication-token") - org0, 1);
    let http = Http::new(f.sim.url());
    for get in [
        |n: &crate::fleet::Node| n.admin_token(),
        |n: &crate::fleet::Node| n.org_token(),
        |n: &crate::fleet::Node| n.team_token(),
    ] {
        let values: Vec<String> = nodes
            .iter()
            .map(|n| std::fs::read_to_string(get(n)).unwrap().trim().to_string())
            .collect();
        assert!(values.windows(2).all(|p| p[0] == p[1]), "{values:?}");
        let (st, _) = http.get("/api/v2/organizations/my-org", Some(&values[0]));
        assert_eq!(st, 200);
    }
}

/// The host's clock falls behind TFE's after the run (an RTC reset at a
/// reboot, NTP not yet synced): five hours pass for TFE while this host's
/// clock stands still. `renew` must judge what is due by TFE's clock, not
/// by the offset it saw last time, or the tokens die unrenewed. Checked
/// where the user would: after the old tokens' expiry, every file works.
#[test]
fn a_host_clock_fallen_behind_after_the_run_still_renews_in_time() {
    let w = due_world();
    let old: Vec<String> = files(&w).iter().map(|f| w.token_at(f)).collect();
    // Policies of 6h, renewed from 4h (a third before): due at 5h.
    w.sim.advance_clock(Duration::from_secs(5 * 3600));
    let r = w.run(&["renew", "--dry-run"]);
    assert_code(&r, 0);
    assert_eq!(r.stdout.matches("would renew").count(), 3, "{}", r.stdout);
    let r = w.run(&["renew"]);
    assert_code(&r, 0);
    w.assert_no_secrets(&r);
    for (f, o) in files(&w).iter().zip(&old) {
        assert_ne!(
            &w.token_at(f),
            o,
            "{} was not renewed:\n{}",
            f.display(),
            r.stdout
        );
    }
    // Two more hours: the old tokens would have expired; the files work.
    w.sim.advance_clock(Duration::from_secs(2 * 3600));
    for (f, o) in files(&w).iter().zip(&old) {
        assert!(
            !w.authenticates(o),
            "{}: the old token still works",
            f.display()
        );
    }
    assert_eq!(w.assert_token_files_work(), 4);
    println!("RELIABILITY renew-host-clock-behind offset=5h renewed=3 token-files-working=4");
}

/// With `[store]` and no `[renew]` section, a replaced admin or owners
/// token is kept for the default grace of 2 days, so every node's daily
/// renew takes the new one from the store before the old one stops
/// working; after the grace, a renew revokes it. TFE's clock is moved, the
/// host's is not: the days pass for TFE only.
#[test]
fn in_a_fleet_replaced_tokens_live_out_the_default_two_day_grace() {
    let (f, nodes) = renewing_fleet(2, "30d", "");
    let (a, b) = (&nodes[0], &nodes[1]);
    let token = |p: PathBuf| token_in(&p);
    let works = |t: &str| {
        Http::new(f.sim.url())
            .get("/api/v2/organizations/my-org", Some(t))
            .0
            == 200
    };
    let old_admin = token(a.admin_token());
    let old_team = token(a.team_token());
    // Due from 20 days (a third of 30 before the expiry).
    f.sim.advance_clock(Duration::from_secs(21 * 86_400));
    let r = f.run_verb(a, "renew");
    assert_code(&r, 0);
    assert_ne!(token(a.admin_token()), old_admin, "{}", r.stdout);
    assert_ne!(token(a.team_token()), old_team, "{}", r.stdout);
    assert!(
        works(&old_admin) && works(&old_team),
        "revoked inside the grace:\n{}",
        r.stdout
    );
    // The other node's daily renew takes the new tokens from the store.
    let r = f.run_verb(b, "renew");
    assert_code(&r, 0);
    for get in [Node::admin_token, Node::org_token, Node::team_token] {
        assert_eq!(token(get(b)), token(get(a)), "{}", r.stdout);
        assert!(works(&token(get(b))));
    }
    assert!(works(&old_admin), "one day in: still in its grace");
    // Two days and an hour after the renewal: the next renew revokes them.
    f.sim.advance_clock(Duration::from_secs(2 * 86_400 + 3600));
    let r = f.run_verb(a, "renew");
    assert_code(&r, 0);
    assert!(r.stdout.contains("revoked the replaced"), "{}", r.stdout);
    assert!(!works(&old_admin) && !works(&old_team), "{}", r.stdout);
    for n in [a, b] {
        for get in [Node::admin_token, Node::org_token, Node::team_token] {
            assert!(works(&token(get(n))), "{} does not work", get(n).display());
        }
    }
    println!("RELIABILITY renew-fleet-default-grace kept=2d revoked-after=2d1h nodes=2");
}

/// TFE does not answer the clock read: renew goes on with the offset seen
/// last time, and says so in words that name what to check.
#[test]
fn a_ping_without_answer_is_said_and_the_last_offset_stands() {
    let w = due_world();
    w.sim.add_fault(
        tfe_bootstrap::sim::faults::FaultRule::parse("get=/api/v2/ping:drop*100").unwrap(),
    );
    let changes = w.mutating().len();
    let r = w.run(&["renew"]);
    assert_code(&r, 0);
    assert!(
        r.both().contains(
            "TFE did not answer a ping, so its clock is taken as this host's clock plus the offset seen last time"
        ) && r.both().contains("Check that TFE is reachable"),
        "{}",
        r.both()
    );
    assert_eq!(
        w.mutating().len(),
        changes,
        "nothing was due: nothing changed"
    );
    assert_eq!(w.assert_token_files_work(), 4);
}
