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
    through_file_and_etcd("rollback", rollback);
}

/// Runs `case` through the file helper, then through a real etcd (skipped,
/// saying so, when etcd is not installed and CI does not require it).
fn through_file_and_etcd(what: &str, case: fn(Option<crate::fleet::Backend>, &str)) {
    case(None, "file");
    let Some(etcd) = crate::fleet::Etcd::start() else {
        println!("SKIPPED {what} through etcd: etcd/etcdctl not installed");
        return;
    };
    case(
        Some(crate::fleet::Backend::Etcd(etcd.endpoint.clone())),
        "etcd",
    );
}

fn rollback(backend: Option<crate::fleet::Backend>, name: &str) {
    let mut f = Fleet::new(backend, "60s");
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
    assert_eq!(
        f.count("test-mails"),
        3,
        "{name}: one mail per applied change"
    );
    println!("RELIABILITY fleet-rollback store={name} nodes=8 changes=3 test-mails=3");
}

/// The store's `put done-smtp-...` fails, so the node that applied the SMTP
/// change cannot tell the others. They take the duty over after the wait,
/// find TFE already holding the change, and send nothing: one mail.
#[test]
fn a_failing_done_put_sends_no_second_mail() {
    through_file_and_etcd("failing put", failing_put);
}

fn failing_put(backend: Option<crate::fleet::Backend>, name: &str) {
    let mut f = Fleet::new(backend.clone(), crate::fleet::TAKEOVER_WAIT);
    let nodes: Vec<Node> = (0..8).map(|_| f.node()).collect();
    all_exit_0(&f.run_all(&nodes), "first round");
    assert_eq!(f.count("test-mails"), 1);
    // A helper that refuses to record that the SMTP duty is done.
    let inner = match &backend {
        Some(crate::fleet::Backend::Etcd(_)) => format!("{:?}", helper("etcd")),
        _ => format!(
            "{:?} {:?}",
            helper("file"),
            f.dir.path().join("store").display().to_string()
        ),
    };
    let wrapper = f.dir.path().join("failing-put");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$1 $2\" in \"put done-smtp-\"*) echo 'put refused' >&2; exit 1 ;; esac\nexec {inner} \"$@\"\n"
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
    assert_eq!(
        f.count("test-mails"),
        2,
        "{name}: one mail for the one change"
    );
    assert_eq!(
        f.snapshot()["settings"]["smtp"]["host"],
        "smtp-c.example.com"
    );
    println!(
        "RELIABILITY fleet-failing-done-put store={name} nodes=8 test-mails-for-the-change=1 failed-nodes={failed}"
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
    let r = f.run_node(&n);
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(
        r.stderr.contains("[store] wait") && r.stderr.contains("[tfe] request_deadline"),
        "{}",
        r.stderr
    );
    assert!(f.sim.requests().is_empty());
}

/// No key name in the store confirms a guessed secret: an attacker who can
/// list the store and read its salt, and who knows the non-secret config,
/// tries the plain salted hash of each guess (the true SMTP and Twilio
/// secrets among them) against every key name, and matches none. The duty
/// keys themselves are found with the slow derivation (a positive control).
#[test]
fn no_key_name_confirms_a_guessed_secret() {
    use tfe_bootstrap::step::{Desired, Step};
    let mut f = Fleet::new(None, "60s");
    let nodes: Vec<Node> = (0..2).map(|_| f.node()).collect();
    all_exit_0(&f.run_all(&nodes), "fleet");
    let ns = f.dir.path().join("store");
    let keys: Vec<String> = crate::util::files_under(&ns)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let salt_file = crate::util::files_under(&ns)
        .into_iter()
        .find(|p| p.ends_with("salt"))
        .expect("the store has a salt");
    let salt = std::fs::read_to_string(salt_file)
        .unwrap()
        .trim()
        .to_string();
    // The attacker's view of the config: everything but the secrets.
    let text = std::fs::read_to_string(&nodes[0].config)
        .unwrap()
        .replace(
            "{ env = \"T_SMTP_PASSWORD\" }",
            &format!("{SMTP_PASSWORD:?}"),
        )
        .replace("{ env = \"T_TWILIO_TOKEN\" }", &format!("{TWILIO_TOKEN:?}"))
        .replace(
            "{ env = \"T_ADMIN_PASSWORD\" }",
            &format!("{ADMIN_PASSWORD:?}"),
        );
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = tfe_bootstrap::config::Config::load(&path, None).unwrap();
    let mut tried = 0;
    for step in [
        &tfe_bootstrap::steps::smtp::Smtp as &dyn Step,
        &tfe_bootstrap::steps::twilio::Twilio,
    ] {
        let want = step.shared(&cfg).wanted().unwrap();
        let real = want.duty_fingerprint(&salt);
        assert!(
            keys.iter().any(|k| k.contains(&real[..16])),
            "{}: the duty key is not where the test looks",
            step.name()
        );
        for guess in [SMTP_PASSWORD, TWILIO_TOKEN, "password", "hunter2-secret"] {
            let d = Desired {
                value: want.value.clone(),
                secrets: vec![tfe_bootstrap::config::secret::Secret::new(guess, "guess")],
            };
            let fast = d.fingerprint(&salt);
            assert!(
                !keys.iter().any(|k| k.contains(&fast[..16])),
                "{}: a key name confirms a guessed secret",
                step.name()
            );
            tried += 1;
        }
    }
    println!(
        "RELIABILITY fleet-key-names-vs-guesses keys={} guesses={tried} matches=0",
        keys.len()
    );
}

/// Two TFEs whose fleets share one store (a directory, and a real etcd
/// when installed): each converges alone, with its own admin and tokens
/// that work on it.
#[test]
fn two_tfes_sharing_one_store_each_converge_alone() {
    let shared = tempfile::tempdir().unwrap();
    let etcd = crate::fleet::Etcd::start();
    let mut backends = vec![crate::fleet::Backend::Dir(shared.path().join("store"))];
    if let Some(e) = &etcd {
        backends.push(crate::fleet::Backend::Etcd(e.endpoint.clone()));
    }
    for backend in backends {
        let mut a = Fleet::new(Some(backend.clone()), "60s");
        let mut b = Fleet::new(Some(backend), "60s");
        let na: Vec<Node> = (0..2).map(|_| a.node()).collect();
        let nb: Vec<Node> = (0..2).map(|_| b.node()).collect();
        all_exit_0(&a.run_all(&na), "TFE A");
        all_exit_0(&b.run_all(&nb), "TFE B");
        for (f, nodes) in [(&a, &na), (&b, &nb)] {
            assert_eq!(f.snapshot()["users"].as_array().unwrap().len(), 1);
            assert_eq!(f.count("test-mails"), 1);
            let h = Http::new(f.sim.url());
            for n in nodes {
                for file in [n.admin_token(), n.org_token()] {
                    let t = std::fs::read_to_string(&file).unwrap();
                    assert_eq!(
                        h.get("/api/v2/organizations/my-org", Some(t.trim())).0,
                        200,
                        "{} does not work on its own TFE",
                        file.display()
                    );
                }
            }
        }
    }
    println!(
        "RELIABILITY fleet-two-tfes-one-store stores={} each-converged=yes",
        if etcd.is_some() { 2 } else { 1 }
    );
}

/// Organizations `team-a` and `team_a` on one TFE, their fleets sharing
/// one store: distinct store keys, so each fleet's token works for its own
/// organization and the two differ.
#[test]
fn team_a_and_team_underscore_a_are_distinct_orgs() {
    let mut f = Fleet::new(None, "60s");
    let mut org_nodes = vec![];
    for org in ["team-a", "team_a"] {
        let nodes: Vec<Node> = (0..2)
            .map(|_| {
                let n = f.node();
                let t = std::fs::read_to_string(&n.config)
                    .unwrap()
                    .replace("name = \"my-org\"", &format!("name = \"{org}\""));
                std::fs::write(&n.config, t).unwrap();
                n
            })
            .collect();
        all_exit_0(&f.run_all(&nodes), org);
        org_nodes.push((org, nodes));
    }
    let h = Http::new(f.sim.url());
    let mut tokens = vec![];
    for (org, nodes) in &org_nodes {
        let t = std::fs::read_to_string(nodes[0].org_token())
            .unwrap()
            .trim()
            .to_string();
        for n in nodes {
            assert_eq!(std::fs::read_to_string(n.org_token()).unwrap().trim(), t);
        }
        assert_eq!(
            h.get(&format!("/api/v2/organizations/{org}"), Some(&t)).0,
            200,
            "{org}"
        );
        tokens.push(t);
    }
    assert_ne!(tokens[0], tokens[1], "each organization has its own token");
}

/// Child processes get a minimal environment: a store helper and an
/// `[iact] command` that dump theirs show no secret of the config (admin
/// and SMTP passwords, Twilio token, the IACT variable), while the
/// variables the config names for them (`[store] env`) do arrive.
#[test]
fn helpers_and_the_iact_command_see_no_secret() {
    let mut f = Fleet::new(None, "60s");
    let dumps = f.dir.path().join("dumps");
    std::fs::create_dir(&dumps).unwrap();
    let wrapper = f.dir.path().join("dumping-helper");
    let iact = f.dir.path().join("dumping-iact");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nenv > {:?}/store.$$\nexec {:?} {:?} \"$@\"\n",
            dumps.display().to_string(),
            helper("file"),
            f.dir.path().join("store").display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        &iact,
        format!(
            "#!/bin/sh\nenv > {:?}/iact.$$\necho {IACT}\n",
            dumps.display().to_string()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    for p in [&wrapper, &iact] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let n = f.node();
    let t = std::fs::read_to_string(&n.config)
        .unwrap()
        .replace(
            &f.store_command(),
            &format!("[{:?}]", wrapper.display().to_string()),
        )
        .replace(
            "subnets = [\"127.0.0.0/8\"]",
            &format!(
                "source = \"command\"\ncommand = [{:?}]\nenv = [\"T_VISIBLE\"]",
                iact.display().to_string()
            ),
        )
        .replace("source = \"auto\"\n", "");
    std::fs::write(&n.config, t).unwrap();
    let out = f
        .command(&n)
        .env("T_VISIBLE", "visible-value")
        .env("T_IACT", IACT)
        .output_timed()
        .unwrap();
    let r = to_run(out);
    assert_eq!(r.code, 0, "{}", r.both());
    let files = crate::util::files_under(&dumps);
    assert!(
        files.iter().any(|p| p.to_string_lossy().contains("iact.")),
        "the IACT command ran"
    );
    assert!(files.len() > 10, "the helper ran: {}", files.len());
    for file in &files {
        let env = std::fs::read_to_string(file).unwrap();
        for secret in [ADMIN_PASSWORD, SMTP_PASSWORD, TWILIO_TOKEN] {
            assert!(
                !env.contains(secret),
                "{} holds a secret:\n{env}",
                file.display()
            );
        }
        for var in [
            "T_ADMIN_PASSWORD",
            "T_SMTP_PASSWORD",
            "T_TWILIO_TOKEN",
            "T_IACT",
        ] {
            assert!(
                !env.contains(&format!("{var}=")),
                "{} has {var}",
                file.display()
            );
        }
        assert!(env.contains("PATH="), "{}", file.display());
        if file.to_string_lossy().contains("iact.") {
            assert!(
                env.contains("T_VISIBLE=visible-value"),
                "[iact] env is passed"
            );
        } else {
            assert!(env.contains("TFE_BOOTSTRAP_ADDRESS="), "{}", file.display());
        }
    }
    println!(
        "RELIABILITY fleet-helper-env dumps={} secrets-seen=0",
        files.len()
    );
}

/// `[store] env` naming a variable that holds one of the config's secrets
/// (directly or by a prefix) is refused before anything is sent.
#[test]
fn store_env_cannot_pass_a_secret_variable() {
    let mut f = Fleet::new(None, "60s");
    let n = f.node();
    for env in ["\"T_SMTP_PASSWORD\"", "\"T_*\""] {
        let t = std::fs::read_to_string(&n.config).unwrap();
        let t = t.replace(
            "env = [\"ETCDCTL_*\", \"AWS_*\"]",
            &format!("env = [{env}]"),
        );
        std::fs::write(&n.config, &t).unwrap();
        let r = to_run(f.command(&n).output_timed().unwrap());
        assert_eq!(r.code, 2, "{}", r.both());
        assert!(
            r.stderr.contains("[store] env") && r.stderr.contains("holds a secret"),
            "{}",
            r.stderr
        );
        std::fs::write(
            &n.config,
            t.replace(
                &format!("env = [{env}]"),
                "env = [\"ETCDCTL_*\", \"AWS_*\"]",
            ),
        )
        .unwrap();
    }
    assert!(f.sim.requests().is_empty());
}

/// Wording: a helper that cannot start is named with "check [store]
/// command" once, not twice; the unsafe-permission error has no run of
/// spaces in it.
#[test]
fn wording_says_each_thing_once() {
    let mut f = Fleet::new(None, "60s");
    let n = f.node();
    let t = std::fs::read_to_string(&n.config)
        .unwrap()
        .replace(&f.store_command(), "[\"/nonexistent/store-helper\"]");
    std::fs::write(&n.config, t).unwrap();
    let out = std::process::Command::new(bin())
        .args(["validate", "--preflight", "--config"])
        .arg(&n.config)
        .env("T_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("T_SMTP_PASSWORD", SMTP_PASSWORD)
        .env("T_TWILIO_TOKEN", TWILIO_TOKEN)
        .output_timed()
        .unwrap();
    let r = to_run(out);
    assert_eq!(r.code, 2, "{}", r.both());
    assert_eq!(
        r.both().matches("check [store] command").count(),
        1,
        "{}",
        r.both()
    );

    let w = World::new(sim_opts());
    std::fs::create_dir(w.state_dir()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(w.state_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("what is kept there") && !r.stderr.contains("  "),
        "{}",
        r.stderr
    );
}

/// 64 nodes at once against a TFE that enforces its per-user rate limit
/// (30 requests per second, as TFE's default): every node uses the one
/// admin user, meets 429s, waits as TFE says, and finishes. Every node
/// exits 0, with one admin and one test mail.
#[test]
fn sixty_four_nodes_under_the_rate_limit_all_finish() {
    let opts = tfe_bootstrap::sim::SimOptions {
        rate_limit: true,
        ..sim_opts()
    };
    let mut f = Fleet::with_sim(opts, None, "2m");
    let nodes: Vec<Node> = (0..64)
        .map(|_| {
            let n = f.node();
            let t = std::fs::read_to_string(&n.config)
                .unwrap()
                .replace("api_rate_limit = 60", "api_rate_limit = 30");
            std::fs::write(&n.config, t).unwrap();
            n
        })
        .collect();
    let started = std::time::Instant::now();
    let runs = f.run_all(&nodes);
    let took = started.elapsed();
    all_exit_0(&runs, "64 nodes");
    let s = f.snapshot();
    assert_eq!(s["users"].as_array().unwrap().len(), 1, "one admin");
    assert_eq!(f.count("test-mails"), 1, "one test mail");
    let limited = s["rate-limited"].as_u64().unwrap();
    let requests = f.sim.requests().len();
    println!(
        "RELIABILITY fleet-64-rate-limited nodes=64 requests={requests} answers-429={limited} failed=0 seconds={:.1}",
        took.as_secs_f64()
    );
}

/// A stale `org-token-ORG` in the store (a token TFE no longer holds, as
/// after a reinstall) is never taken: the node refuses it, naming the key
/// and how to replace it, and never exits 0 with a dead file; `--force
/// org-token` on one node mints a new one and replaces the key, and then
/// every node works.
#[test]
fn a_stale_service_token_in_the_store_is_refused_then_replaced() {
    let mut f = Fleet::new(None, "60s");
    let store_dir = f.dir.path().join("store");
    let ns = f.sim.url().trim_start_matches("http://").replace(':', "_");
    std::fs::create_dir_all(store_dir.join(&ns)).unwrap();
    std::fs::write(
        store_dir.join(&ns).join("org-token-my-org"),
        "stale-token-value-0123456789",
    )
    .unwrap();
    let nodes: Vec<Node> = (0..2).map(|_| f.node()).collect();
    let runs = f.run_all(&nodes);
    for (r, _) in &runs {
        assert_ne!(
            r.code,
            0,
            "a stale store value must not end green:\n{}",
            r.both()
        );
        assert!(
            r.stderr.contains("org-token-my-org") && r.stderr.contains("--force org-token"),
            "{}",
            r.stderr
        );
    }
    let r = to_run(
        f.command(&nodes[0])
            .arg("--force")
            .arg("org-token")
            .output_timed()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{}", r.both());
    let r = to_run(f.command(&nodes[1]).output_timed().unwrap());
    assert_eq!(r.code, 0, "{}", r.both());
    let h = Http::new(f.sim.url());
    for n in &nodes {
        let t = std::fs::read_to_string(n.org_token()).unwrap();
        assert_eq!(h.get("/api/v2/organizations/my-org", Some(t.trim())).0, 200);
    }
}

/// A stale `admin-token` in the store (a previous install's, as after a
/// TFE reinstall): the error says the store may be stale and gives the
/// helper command that replaces the key.
#[test]
fn a_stale_admin_token_in_the_store_names_the_key_and_the_command() {
    let mut f = Fleet::new(None, "60s");
    let ns = f.sim.url().trim_start_matches("http://").replace(':', "_");
    let dir = f.dir.path().join("store").join(ns);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("admin-token"),
        "old-install-admin-token-0123456789",
    )
    .unwrap();
    let n = f.node();
    let r = f.run_node(&n);
    assert_eq!(r.code, 4, "{}", r.both());
    assert!(
        r.stderr.contains("admin-token")
            && r.stderr.contains("previous install")
            && r.stderr.contains("put admin-token")
            && r.stderr.contains("TFE_BOOTSTRAP_ADDRESS="),
        "{}",
        r.stderr
    );
}

/// Four nodes with `[organization.agent_token]`: one mints it, the others
/// take it from the store; every node's file holds the same token, and the
/// pool has exactly one.
#[test]
fn four_nodes_share_one_agent_token() {
    let mut f = Fleet::new(None, "60s");
    let nodes: Vec<Node> = (0..4)
        .map(|_| {
            let n = f.node();
            let file = n.root.join("agent-token");
            let t = std::fs::read_to_string(&n.config).unwrap().replace(
                "[organization.token_ttl]",
                &format!(
                    "[organization.agent_token]\nfile = {:?}\n\n[organization.token_ttl]",
                    file.display().to_string()
                ),
            );
            std::fs::write(&n.config, t).unwrap();
            n
        })
        .collect();
    all_exit_0(&f.run_all(&nodes), "agent token");
    let s = f.snapshot();
    let tokens = s["agent-tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "minted once: {s}");
    for n in &nodes {
        let t = std::fs::read_to_string(n.root.join("agent-token")).unwrap();
        assert_eq!(t.trim(), tokens[0]["token"].as_str().unwrap());
    }
    println!("RELIABILITY fleet-agent-token nodes=4 minted=1 identical=yes");
}

/// The requests one node sent, from its `-v` lines (`  -> METHOD PATH ...`).
fn sent(r: &Run) -> Vec<String> {
    r.stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("-> "))
        .map(str::to_string)
        .collect()
}

fn mutates(line: &str) -> bool {
    !line.starts_with("GET ")
}

/// Nodes that only follow read no more than they need to confirm what the
/// fleet did (issue 22: at most 6 requests per follower once the work is
/// done). 8 nodes start at once: each that sent nothing mutating sent at
/// most 6 requests. Then 4 more join the finished fleet: each sends at most
/// 6, none mutating, and every node's token files work.
#[test]
fn followers_send_at_most_six_requests() {
    let mut f = Fleet::new(None, "60s");
    let nodes: Vec<Node> = (0..8).map(|_| f.node()).collect();
    let spawn_all = |f: &Fleet, nodes: &[Node]| -> Vec<Run> {
        let children: Vec<_> = nodes
            .iter()
            .map(|n| f.command(n).arg("-v").spawn().unwrap())
            .collect();
        children
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                to_run(wait_child(
                    c,
                    std::time::Duration::from_secs(120),
                    &format!("node {}", i + 1),
                ))
            })
            .collect()
    };
    let runs = spawn_all(&f, &nodes);
    let mut counts = vec![];
    for (i, r) in runs.iter().enumerate() {
        let lines = sent(r);
        if !lines.iter().any(|l| mutates(l)) {
            assert!(
                lines.len() <= 6,
                "follower node {} sent {} requests:\n{}",
                i + 1,
                lines.len(),
                lines.join("\n")
            );
        }
        counts.push(lines.len());
    }
    let joiners: Vec<Node> = (0..4).map(|_| f.node()).collect();
    let late = spawn_all(&f, &joiners);
    for (i, r) in late.iter().enumerate() {
        let lines = sent(r);
        assert!(
            lines.len() <= 6 && !lines.iter().any(|l| mutates(l)),
            "joining node {} sent {} requests:\n{}",
            i + 1,
            lines.len(),
            lines.join("\n")
        );
        assert!(
            r.stdout.contains("applied-general"),
            "a joiner takes the fleet's word:\n{}",
            r.stdout
        );
    }
    let mut all = nodes;
    all.extend(joiners);
    let mut every = runs;
    every.extend(late.iter().map(|r| Run {
        code: r.code,
        stdout: r.stdout.clone(),
        stderr: r.stderr.clone(),
    }));
    f.assert_converged(&all, &every);
    println!(
        "RELIABILITY fleet-followers nodes=8 requests-per-node={counts:?} joiners=4 joiner-requests={:?}",
        late.iter().map(|r| sent(r).len()).collect::<Vec<_>>()
    );
}
