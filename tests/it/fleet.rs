//! Many nodes, one TFE: N real `tfe-bootstrap` processes with their own
//! state dirs and one `[store]` (README, "Many nodes"),
//! through `scripts/store/file` and, when etcd is installed, through
//! `scripts/store/etcd` against a real etcd on loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tfe_bootstrap::sim::Sim;

use crate::util::*;

/// `[store] wait` for the tests that wait out a silent holder: long enough
/// that a live holder on a starved machine is not taken for dead (which
/// would send a second test mail), short enough to keep the suite quick.
pub const TAKEOVER_WAIT: &str = "8s";

/// How the nodes reach their store.
#[derive(Clone)]
pub enum Backend {
    /// `scripts/store/file DIR`.
    Dir(PathBuf),
    /// `scripts/store/etcd` with these endpoints.
    Etcd(String),
    /// `scripts/store/aws-ssm` (the real AWS CLI) against this SSM endpoint.
    Ssm(String),
}

/// One TFE (a simulator), one store, and nodes that each have a state dir.
pub struct Fleet {
    pub sim: Sim,
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    /// `[store] wait`.
    pub wait: &'static str,
    next: usize,
}

/// One node's files.
pub struct Node {
    pub root: PathBuf,
    pub config: PathBuf,
}

impl Node {
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }
    pub fn admin_token(&self) -> PathBuf {
        self.state().join("admin-token")
    }
    pub fn org_token(&self) -> PathBuf {
        self.root.join("org-token")
    }
    pub fn team_token(&self) -> PathBuf {
        self.root.join("team-token")
    }
    #[track_caller]
    fn read(p: &Path) -> String {
        token_in(p)
    }
}

pub fn helper(name: &str) -> String {
    format!("{}/scripts/store/{name}", env!("CARGO_MANIFEST_DIR"))
}

impl Fleet {
    pub fn new(backend: Option<Backend>, wait: &'static str) -> Fleet {
        Fleet::with_sim(sim_opts(), backend, wait)
    }

    /// A fleet whose simulator starts with `opts`.
    pub fn with_sim(
        opts: tfe_bootstrap::sim::SimOptions,
        backend: Option<Backend>,
        wait: &'static str,
    ) -> Fleet {
        let sim = Sim::start(opts).expect("start sim");
        let dir = tempfile::tempdir().unwrap();
        let backend = backend.unwrap_or_else(|| Backend::Dir(dir.path().join("store")));
        Fleet {
            sim,
            dir,
            backend,
            wait,
            next: 0,
        }
    }

    /// `[store] timeout`: the aws CLI (a Python program) starts slowly,
    /// and on a starved machine one call can take many seconds.
    pub fn helper_timeout(&self) -> &'static str {
        match self.backend {
            Backend::Ssm(_) => "2m",
            _ => "30s",
        }
    }

    /// The `[store] command` line's value for this fleet's backend.
    pub fn store_command(&self) -> String {
        match &self.backend {
            Backend::Dir(d) => format!("[{:?}, {:?}]", helper("file"), d.display().to_string()),
            Backend::Etcd(_) => format!("[{:?}]", helper("etcd")),
            Backend::Ssm(_) => format!("[{:?}]", helper("aws-ssm")),
        }
    }

    /// A new node whose config `text_for` writes, given the node's root.
    pub fn node_with(&mut self, text_for: impl FnOnce(&Self, &Path) -> String) -> Node {
        self.next += 1;
        let root = self.dir.path().join(format!("node{}", self.next));
        std::fs::create_dir_all(&root).unwrap();
        let text = text_for(self, &root);
        let config = root.join("config.toml");
        std::fs::write(&config, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        Node { root, config }
    }

    /// `full_config` for this fleet: a `[store] wait` shorter than the
    /// default request deadline needs a deadline within it (validate
    /// refuses a wait a request may outlast).
    pub fn base_config(&self, root: &Path) -> String {
        let text = full_config(self.sim.url(), &root.join("state"));
        let wait = tfe_bootstrap::config::duration::parse_duration(self.wait).unwrap();
        if wait < Duration::from_secs(120) {
            text.replace(
                "request_timeout = \"10s\"",
                &format!(
                    "request_timeout = \"{w}\"\nrequest_deadline = \"{w}\"",
                    w = if wait < Duration::from_secs(10) {
                        self.wait
                    } else {
                        "10s"
                    }
                ),
            )
            .replace(
                "request_deadline = \"10s\"",
                &format!("request_deadline = \"{}\"", self.wait),
            )
        } else {
            text
        }
    }

    /// A new node: the shared config with this node's own paths.
    pub fn node(&mut self) -> Node {
        self.node_with(|f, root| {
            format!(
                "{}{TWILIO_SECTION}
[organization.service_token]
file = {:?}

[organization.owners_team_token]
file = {:?}

[store]
command = {command}
env = [\"ETCDCTL_*\", \"AWS_*\"]
wait = {:?}
timeout = {:?}
",
                f.base_config(root),
                root.join("org-token").display().to_string(),
                root.join("team-token").display().to_string(),
                f.wait,
                f.helper_timeout(),
                command = f.store_command(),
            )
        })
    }

    pub fn command(&self, n: &Node) -> Command {
        self.command_for(n, "run")
    }

    /// The command line for `verb` (`run`, `renew`, ...) on node `n`.
    pub fn command_for(&self, n: &Node, verb: &str) -> Command {
        let mut c = bootstrap_command(&[verb], &n.config);
        // The cloud-init example's names.
        c.env("TFE_IACT_TOKEN", IACT)
            .env("TFE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SMTP_PASSWORD", SMTP_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Backend::Etcd(ep) = &self.backend {
            c.env("ETCDCTL_ENDPOINTS", ep);
        }
        if let Backend::Ssm(ep) = &self.backend {
            Moto::client_env(&mut c, ep);
        }
        c
    }

    pub fn spawn(&self, n: &Node) -> Child {
        self.command(n).spawn().expect("start tfe-bootstrap")
    }

    /// How long one node's run may take before its test fails, naming the
    /// node. A run calls the store helper about 50 times; through the aws
    /// CLI (a Python program, about a second of CPU a call) four nodes at
    /// once need minutes of CPU, many more on a starved machine
    /// (`scripts/stress.sh`), so that backend gets a longer deadline.
    pub fn deadline(&self) -> Duration {
        match self.backend {
            Backend::Ssm(_) => Duration::from_secs(900),
            _ => CHILD_DEADLINE,
        }
    }

    /// Waits for node `n`'s `child` within [`Fleet::deadline`].
    pub fn wait_node(&self, n: &Node, child: Child) -> Run {
        let what = format!("tfe-bootstrap run of node {}", n.root.display());
        to_run(wait_child(child, self.deadline(), &what))
    }

    /// Runs node `n` to its end (within [`Fleet::deadline`]).
    pub fn run_node(&self, n: &Node) -> Run {
        self.wait_node(n, self.spawn(n))
    }

    /// Runs `tfe-bootstrap VERB` (`renew`, ...) on node `n` to its end
    /// (within [`Fleet::deadline`]).
    pub fn run_verb(&self, n: &Node, verb: &str) -> Run {
        let child = self
            .command_for(n, verb)
            .spawn()
            .expect("start tfe-bootstrap");
        self.wait_node(n, child)
    }

    /// Runs `nodes` at once; each one's run and when it ended.
    pub fn run_all(&self, nodes: &[Node]) -> Vec<(Run, Instant)> {
        std::thread::scope(|s| {
            let waiters: Vec<_> = nodes
                .iter()
                .map(|n| (n, self.spawn(n)))
                .map(|(n, c)| s.spawn(move || (self.wait_node(n, c), Instant::now())))
                .collect();
            waiters.into_iter().map(|t| t.join().unwrap()).collect()
        })
    }

    pub fn snapshot(&self) -> Value {
        self.sim.snapshot()
    }

    pub fn mutating(&self) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.is_mutating())
            .count()
    }

    pub fn count(&self, key: &str) -> usize {
        self.snapshot()[key].as_array().unwrap().len()
    }

    fn posts_to(&self, suffix: &str) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(suffix) && r.status < 300)
            .count()
    }

    /// What every node's user depends on, after the fleet is done: one
    /// admin, one organization and pool, one mail and SMS, service tokens
    /// minted once and identical on every node, every token file working,
    /// and no secret in any output.
    pub fn assert_converged(&self, nodes: &[Node], runs: &[Run]) {
        let tokens: Vec<String> = self.snapshot()["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["token"].as_str().unwrap().to_string())
            .collect();
        for (i, r) in runs.iter().enumerate() {
            assert_eq!(r.code, 0, "node {}:\n{}", i + 1, r.both());
            if std::env::var_os("FLEET_DEBUG").is_some() {
                eprintln!("node {}:\n{}", i + 1, r.both());
            }
            for s in tokens.iter().map(String::as_str).chain([
                ADMIN_PASSWORD,
                SMTP_PASSWORD,
                IACT,
                TWILIO_TOKEN,
            ]) {
                assert!(!r.both().contains(s), "node {}: a secret leaked", i + 1);
            }
        }
        let s = self.snapshot();
        assert_eq!(s["users"].as_array().unwrap().len(), 1, "one admin");
        assert_eq!(self.posts_to("/initial-admin-user"), 1);
        assert_eq!(s["organizations"].as_array().unwrap().len(), 1);
        assert_eq!(self.posts_to("/organizations"), 1, "org created once");
        assert_eq!(self.posts_to("/agent-pools"), 1, "pool created once");
        assert_eq!(self.count("test-mails"), 1, "one test mail");
        assert_eq!(self.count("test-sms"), 1, "one SMS");
        assert_eq!(
            self.posts_to("/organizations/my-org/authentication-token"),
            1,
            "org token minted once"
        );
        assert_eq!(
            self.posts_to("/authentication-token")
                - self.posts_to("/organizations/my-org/authentication-token"),
            1,
            "team token minted once"
        );
        let h = Http::new(self.sim.url());
        let org_token = Node::read(&nodes[0].org_token());
        let team_token = Node::read(&nodes[0].team_token());
        for (i, n) in nodes.iter().enumerate() {
            assert_eq!(Node::read(&n.org_token()), org_token, "node {}", i + 1);
            assert_eq!(Node::read(&n.team_token()), team_token, "node {}", i + 1);
            let admin = Node::read(&n.admin_token());
            let (st, _) = h.get("/api/v2/account/details", Some(&admin));
            assert_eq!(st, 200, "node {}: its admin token_file works", i + 1);
            for t in [&org_token, &team_token] {
                let (st, _) = h.get("/api/v2/organizations/my-org", Some(t));
                assert_eq!(st, 200, "node {}: a service token works", i + 1);
            }
            use std::os::unix::fs::PermissionsExt;
            for f in [n.admin_token(), n.org_token(), n.team_token()] {
                let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", f.display());
            }
        }
    }
}

/// Runs `n` nodes at once, checks the fleet, then a replacement node.
/// Returns (convergence: last done minus first done, mutating requests).
pub fn fleet_round(backend: Option<Backend>, n: usize) -> (Duration, usize) {
    // A slow helper makes a live duty holder slow: wait long enough that it
    // is never taken for dead.
    let wait = match backend {
        Some(Backend::Ssm(_)) => "10m",
        _ => "60s",
    };
    let mut f = Fleet::new(backend, wait);
    let nodes: Vec<Node> = (0..n).map(|_| f.node()).collect();
    let done = f.run_all(&nodes);
    let runs: Vec<Run> = done
        .iter()
        .map(|(r, _)| Run {
            code: r.code,
            stdout: r.stdout.clone(),
            stderr: r.stderr.clone(),
        })
        .collect();
    f.assert_converged(&nodes, &runs);
    let first = done.iter().map(|(_, t)| *t).min().unwrap();
    let last = done.iter().map(|(_, t)| *t).max().unwrap();
    let mutating = f.mutating();
    if std::env::var_os("FLEET_DEBUG").is_some() {
        for r in f.sim.requests().iter().filter(|r| r.is_mutating()) {
            eprintln!("{} {} {}", r.method, r.path, r.status);
        }
    }

    // A replacement: empty state dir, same store, TFE already configured.
    let fresh = f.node();
    let r = f.run_node(&fresh);
    assert_eq!(r.code, 0, "replacement:\n{}", r.both());
    assert_eq!(
        f.mutating(),
        mutating,
        "replacement sent a mutating request:\n{}",
        r.stdout
    );
    assert_eq!(f.count("test-mails"), 1);
    let mut all = nodes;
    all.push(fresh);
    let mut runs = runs;
    runs.push(r);
    f.assert_converged(&all, &runs);
    (last - first, mutating)
}

#[test]
fn four_nodes_at_once_converge_with_one_of_everything() {
    let (spread, mutating) = fleet_round(None, 4);
    println!(
        "RELIABILITY fleet-file nodes=4 mutating={mutating} spread_ms={}",
        spread.as_millis()
    );
}

/// A single node's mutating requests: the fleet must not send more.
#[test]
fn a_fleet_sends_no_more_mutating_requests_than_one_node() {
    let (_, one) = fleet_round(None, 1);
    let (_, four) = fleet_round(None, 4);
    assert_eq!(four, one, "mutating requests grew with the number of nodes");
}

/// Without `[store]`, a second node that finds the admin already created
/// says how to add a store.
#[test]
fn without_a_store_the_already_has_users_error_names_the_store() {
    let w = World::new(sim_opts());
    assert_code(&w.run(&["run"]), 0);
    let other = tempfile::tempdir().unwrap();
    w.edit_config(
        &format!("dir = \"{}\"", w.state_dir().display()),
        &format!("dir = \"{}\"", other.path().join("state").display()),
    );
    let r = w.run(&["run"]);
    assert_code(&r, 4);
    assert!(
        r.stderr.contains("add a [store]") && r.stderr.contains("Many nodes"),
        "{}",
        r.stderr
    );
}

/// Without `[store]`, a node that finds an organization token on TFE that
/// it does not hold does not mint another (that would invalidate it).
#[test]
fn without_a_store_a_token_held_elsewhere_is_not_reminted() {
    let w = World::new(sim_opts());
    let file = w.dir.path().join("org-token");
    w.write_config(&format!(
        "{}\n[organization.service_token]\nfile = {:?}\n",
        w.config_text(),
        file.display().to_string()
    ));
    assert_code(&w.run(&["run"]), 0);
    let token = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert_code(&w.run(&["reset", "--step", "org-token"]), 0);
    let before = w.mutating().len();
    let r = w.run(&["run"]);
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("TFE already has the organization token")
            && r.stderr.contains("--force org-token"),
        "{}",
        r.stderr
    );
    assert_eq!(w.mutating().len(), before, "nothing minted");
    let h = Http::new(w.sim.url());
    let (st, _) = h.get("/api/v2/organizations/my-org", Some(token.trim()));
    assert_eq!(st, 200, "the token in use still works");
    // --force replaces it, as asked.
    assert_code(&w.run(&["run", "--force", "org-token"]), 0);
    let (st, _) = h.get("/api/v2/organizations/my-org", Some(token.trim()));
    assert_eq!(st, 401, "the old token was replaced");
}

/// Runs `node` until the simulator parks the request `rule` matches, then
/// SIGKILLs it and lets the simulator go on.
fn kill_node_at(f: &Fleet, node: &Node, rule: &str) {
    kill_when_parked(&f.sim, f.command(node), rule);
}

/// A node killed right after creating the admin (it published the token,
/// then died on its next request, the general settings it had taken on):
/// the others finish with that admin, one of them after `[store] wait`.
#[test]
fn a_node_killed_after_creating_the_admin_stops_nobody() {
    let mut f = Fleet::new(None, TAKEOVER_WAIT);
    let first = f.node();
    kill_node_at(
        &f,
        &first,
        "patch=/api/v2/admin/general-settings:pause-drop",
    );
    assert_eq!(f.snapshot()["users"].as_array().unwrap().len(), 1);
    let nodes: Vec<Node> = (0..4).map(|_| f.node()).collect();
    let runs: Vec<Run> = f.run_all(&nodes).into_iter().map(|(r, _)| r).collect();
    f.assert_converged(&nodes, &runs);
    println!("RELIABILITY fleet-killed-after-admin nodes=1+4 admins=1 exit=0");
}

/// A node killed while holding the SMTP duty (its PATCH never reached TFE):
/// after `[store] wait` one of the others takes the duty over and says so;
/// every node finishes, with one test mail.
#[test]
fn a_node_killed_holding_a_duty_is_taken_over_after_the_wait() {
    let mut f = Fleet::new(None, TAKEOVER_WAIT);
    let first = f.node();
    kill_node_at(&f, &first, "patch=/api/v2/admin/smtp-settings:pause-drop");
    assert_eq!(f.count("test-mails"), 0);
    let nodes: Vec<Node> = (0..4).map(|_| f.node()).collect();
    let runs: Vec<Run> = f.run_all(&nodes).into_iter().map(|(r, _)| r).collect();
    assert!(
        runs.iter()
            .any(|r| r.both().contains("did not finish it within [store] wait")),
        "no node said it took over"
    );
    f.assert_converged(&nodes, &runs);
    println!("RELIABILITY fleet-killed-holding-duty nodes=1+4 test-mails=1 exit=0");
}

/// A store helper that fails is named with its verb and key, never a value,
/// and stops the run before any request (exit 2).
#[test]
fn a_failing_store_is_named_by_verb_and_key() {
    let mut f = Fleet::new(Some(Backend::Dir(PathBuf::from("/proc/no-such-dir"))), "3s");
    let n = f.node();
    let r = f.run_node(&n);
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(
        r.stderr.contains("[store] command") && r.stderr.contains("get salt"),
        "{}",
        r.stderr
    );
    assert!(
        f.sim.requests().is_empty(),
        "nothing is sent before the store answers"
    );
}

/// A real etcd on loopback, for as long as the test holds it.
pub struct Etcd {
    child: Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Etcd {
    /// Starts etcd when it is installed (Debian `etcd-server`,
    /// `etcd-client`); `None` otherwise.
    pub fn start() -> Option<Etcd> {
        if !tools_present(
            &["etcd", "etcdctl"],
            "TFE_BOOTSTRAP_REQUIRE_ETCD",
            "apt-get install etcd-server etcd-client",
        ) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let child = Command::new("etcd")
            .args(["--name", "t", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .args(["--initial-cluster", &format!("t=http://127.0.0.1:{peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let e = Etcd {
            child,
            endpoint,
            _dir: dir,
        };
        let healthy = wait_until(Duration::from_secs(30), || {
            Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .args(["--endpoints", &e.endpoint, "endpoint", "health"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(healthy, "etcd did not become healthy on {}", e.endpoint);
        Some(e)
    }
}

#[test]
fn four_nodes_through_a_real_etcd() {
    let Some(etcd) = Etcd::start() else {
        println!("SKIPPED: etcd/etcdctl not installed (apt-get install etcd-server etcd-client)");
        return;
    };
    let (spread, mutating) = fleet_round(Some(Backend::Etcd(etcd.endpoint.clone())), 4);
    println!(
        "RELIABILITY fleet-etcd nodes=4 mutating={mutating} spread_ms={}",
        spread.as_millis()
    );
}

/// `scripts/cloud-init/fleet-user-data.yaml`'s config, as four nodes would
/// run it, through the etcd helper against a real etcd.
#[test]
fn the_fleet_cloud_init_example_runs_on_four_nodes_through_etcd() {
    let Some(etcd) = Etcd::start() else {
        println!("SKIPPED: etcd/etcdctl not installed (apt-get install etcd-server etcd-client)");
        return;
    };
    let yaml = std::fs::read_to_string(format!(
        "{}/scripts/cloud-init/fleet-user-data.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let example = cloud_init_toml(&yaml);
    for must in [
        "address = \"https://tfe.example.com\"",
        "command = [\"/usr/local/lib/tfe-bootstrap/store/etcd\"]",
        "file = \"/var/lib/tfe-bootstrap/org-token\"",
    ] {
        assert!(
            example.contains(must),
            "the example changed ({must}); update this test"
        );
    }
    let mut f = Fleet::new(Some(Backend::Etcd(etcd.endpoint.clone())), "10m");
    let nodes: Vec<Node> = (0..4)
        .map(|_| {
            f.node_with(|f, root| {
                example
                    .replace(
                        "address = \"https://tfe.example.com\"",
                        &format!("address = \"{}\"\nallow_insecure_http = true", f.sim.url()),
                    )
                    .replace(
                        "command = [\"/usr/local/lib/tfe-bootstrap/store/etcd\"]",
                        &format!("command = {}", f.store_command()),
                    )
                    .replace(
                        "\"/var/lib/tfe-bootstrap/org-token\"",
                        &format!("{:?}", root.join("org-token").display().to_string()),
                    )
                    + &format!(
                        "\n[state]\ndir = {:?}\n",
                        root.join("state").display().to_string()
                    )
            })
        })
        .collect();
    let runs: Vec<Run> = f.run_all(&nodes).into_iter().map(|(r, _)| r).collect();
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r.code, 0, "node {}:\n{}", i + 1, r.both());
    }
    let s = f.snapshot();
    assert_eq!(s["users"].as_array().unwrap().len(), 1);
    assert_eq!(f.count("test-mails"), 1);
    assert_eq!(s["organizations"][0]["name"], "platform");
    let h = Http::new(f.sim.url());
    let token = Node::read(&nodes[0].org_token());
    for n in &nodes {
        assert_eq!(Node::read(&n.org_token()), token);
        let (st, _) = h.get(
            "/api/v2/account/details",
            Some(&Node::read(&n.admin_token())),
        );
        assert_eq!(st, 200);
    }
    let (st, _) = h.get("/api/v2/organizations/platform", Some(&token));
    assert_eq!(st, 200);
}

/// Every helper in scripts/store/ parses as POSIX sh (the cloud ones cannot
/// run here), takes its value on stdin, and answers 3 for "absent".
#[test]
fn every_store_helper_is_valid_sh_and_follows_the_protocol() {
    let dir = format!("{}/scripts/store", env!("CARGO_MANIFEST_DIR"));
    let mut names = vec![];
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let st = Command::new("sh").arg("-n").arg(&p).status().unwrap();
        assert!(st.success(), "{} does not parse", p.display());
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("exit 3"), "{}: no exit 3", p.display());
        names.push(p.file_name().unwrap().to_string_lossy().into_owned());
    }
    names.sort();
    assert_eq!(
        names,
        ["aws-ssm", "etcd", "file", "kubernetes", "vault-kv2"]
    );
}

/// Values pass only on stdin and stdout: a helper that logs its argv and
/// environment sees keys and the TFE address, never a secret.
#[test]
fn store_values_never_pass_through_argv() {
    let mut f = Fleet::new(None, "60s");
    let log = f.dir.path().join("argv.log");
    let wrapper = f.dir.path().join("logging-store");
    let Backend::Dir(store) = f.backend.clone() else {
        unreachable!()
    };
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$* address=$TFE_BOOTSTRAP_ADDRESS\" >> {log:?}\nexec {:?} {store:?} \"$@\"\n",
            helper("file")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let nodes: Vec<Node> = (0..2).map(|_| f.node()).collect();
    for n in &nodes {
        let text = std::fs::read_to_string(&n.config).unwrap();
        let text = text.replace(
            &f.store_command(),
            &format!("[{:?}]", wrapper.display().to_string()),
        );
        std::fs::write(&n.config, text).unwrap();
    }
    let runs: Vec<Run> = f.run_all(&nodes).into_iter().map(|(r, _)| r).collect();
    f.assert_converged(&nodes, &runs);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("create admin-token") || logged.contains("put admin-token"),
        "{logged}"
    );
    assert!(
        logged.contains(&format!("address={}", f.sim.url())),
        "{logged}"
    );
    let s = f.snapshot();
    for t in s["tokens"].as_array().unwrap() {
        let t = t["token"].as_str().unwrap();
        assert!(!logged.contains(t), "a token was passed in argv");
    }
    for secret in [ADMIN_PASSWORD, SMTP_PASSWORD, IACT] {
        assert!(!logged.contains(secret));
    }
}

/// A helper that never answers is killed at `[store] timeout`, and the run
/// stops before sending anything, naming the verb, the key and the timeout.
#[test]
fn a_hanging_store_helper_is_cut_off_at_its_timeout() {
    let mut f = Fleet::new(None, "60s");
    let hang = f.dir.path().join("hanging-store");
    std::fs::write(&hang, "#!/bin/sh\nsleep 300\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hang, std::fs::Permissions::from_mode(0o755)).unwrap();
    let n = f.node();
    let text = std::fs::read_to_string(&n.config)
        .unwrap()
        .replace(
            &f.store_command(),
            &format!("[{:?}]", hang.display().to_string()),
        )
        .replace("timeout = \"30s\"", "timeout = \"1s\"");
    std::fs::write(&n.config, text).unwrap();
    let r = f.run_node(&n);
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(
        r.stderr.contains("get salt") && r.stderr.contains("[store] timeout (1s)"),
        "{}",
        r.stderr
    );
    assert!(f.sim.requests().is_empty());
}

/// The duty holder is killed right after TFE answered a token-minting POST
/// (the organization token, the owners team token, the admin token's
/// rotation), before it wrote or published the token: nobody holds that
/// token. After `[store] wait` another node takes the duty over and mints
/// again; every node ends with the same working tokens.
#[test]
fn a_holder_killed_after_minting_a_token_delays_only_by_the_wait() {
    for rule in [
        "post=/api/v2/organizations/my-org/authentication-token:pause-after",
        "post=/api/v2/teams/*/authentication-token:pause-after",
        "post=/api/v2/users/*/authentication-tokens:pause-after",
    ] {
        let mut f = Fleet::new(None, TAKEOVER_WAIT);
        let first = f.node();
        kill_node_at(&f, &first, rule);
        let nodes: Vec<Node> = (0..4).map(|_| f.node()).collect();
        let runs: Vec<Run> = f.run_all(&nodes).into_iter().map(|(r, _)| r).collect();
        for (i, r) in runs.iter().enumerate() {
            assert_eq!(r.code, 0, "{rule}: node {}:\n{}", i + 1, r.both());
        }
        let h = Http::new(f.sim.url());
        for file in ["org-token", "team-token"] {
            let tokens: Vec<String> = nodes
                .iter()
                .map(|n| {
                    std::fs::read_to_string(n.root.join(file))
                        .unwrap()
                        .trim()
                        .to_string()
                })
                .collect();
            assert!(
                tokens.windows(2).all(|w| w[0] == w[1]),
                "{rule}: every node holds the same {file}"
            );
            assert_eq!(
                h.get("/api/v2/organizations/my-org", Some(&tokens[0])).0,
                200,
                "{rule}: {file}"
            );
        }
        for n in &nodes {
            let t = std::fs::read_to_string(n.root.join("state/admin-token")).unwrap();
            assert_eq!(
                h.get("/api/v2/organizations/my-org", Some(t.trim())).0,
                200,
                "{rule}: admin token"
            );
        }
        assert_eq!(
            f.snapshot()["users"].as_array().unwrap().len(),
            1,
            "one admin"
        );
        println!(
            "RELIABILITY fleet-holder-killed-after-mint rule={rule} nodes=1+4 exit=0 same-working-tokens=yes"
        );
    }
}

/// Finding 9: a fleet that starts from a given `[admin] token`. One node
/// rotates it under the user TTL policy (TFE then refuses the given one);
/// another node takes the rotated token from the store and must record the
/// rotation, so that its next run after a config change uses token_file,
/// not the refused given token.
#[test]
fn a_node_that_adopts_the_rotated_admin_token_keeps_using_it() {
    const GIVEN: &str = "given-admin-token-0123456789abcdef";
    let opts = tfe_bootstrap::sim::SimOptions {
        existing_admin_token: Some(GIVEN.into()),
        ..sim_opts()
    };
    let mut f = Fleet::with_sim(opts, None, "5s");
    let given = |f: &mut Fleet| {
        let n = f.node();
        let t = std::fs::read_to_string(&n.config).unwrap().replace(
            "password = { env = \"T_ADMIN_PASSWORD\" }",
            "token = { env = \"T_GIVEN\" }",
        );
        std::fs::write(&n.config, t).unwrap();
        n
    };
    let a = given(&mut f);
    let b = given(&mut f);
    let run = |f: &Fleet, n: &Node| {
        let out = f.command(n).env("T_GIVEN", GIVEN).output_timed().unwrap();
        to_run(out)
    };
    let r = run(&f, &a);
    assert_eq!(r.code, 0, "node a:\n{}", r.both());
    let r = run(&f, &b);
    assert_eq!(r.code, 0, "node b:\n{}", r.both());
    for n in [&a, &b] {
        let t = std::fs::read_to_string(n.config.parent().unwrap().join("config.toml")).unwrap();
        std::fs::write(
            &n.config,
            t.replace("api_rate_limit = 60", "api_rate_limit = 61"),
        )
        .unwrap();
    }
    let r = run(&f, &b);
    assert_eq!(r.code, 0, "node b after a change:\n{}", r.both());
    let r = run(&f, &b);
    assert_eq!(r.code, 0, "node b again:\n{}", r.both());
    println!("RELIABILITY fleet-given-admin-token-rotated nodes=2 change-run-exit=0");
}

/// An SSM emulator on loopback (PyPI `moto[server]`), for the `aws-ssm`
/// helper run with the real AWS CLI (PyPI `awscli`), for as long as the
/// test holds it.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts `moto_server` when it and `aws` are on PATH; `None` otherwise
    /// (a failure instead with `TFE_BOOTSTRAP_REQUIRE_SSM=1`, as in CI).
    pub fn start() -> Option<Moto> {
        if !tools_present(
            &["aws", "moto_server"],
            "TFE_BOOTSTRAP_REQUIRE_SSM",
            "pip install awscli 'moto[server]'",
        ) {
            return None;
        }
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let m = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let up = wait_until(Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "moto_server did not listen on {}", m.endpoint);
        Some(m)
    }

    /// What the AWS CLI needs to talk to the emulator (fake credentials).
    pub fn client_env(c: &mut Command, endpoint: &str) {
        c.env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    }
}

/// The same four nodes as through etcd, through `scripts/store/aws-ssm` and
/// the real AWS CLI against an SSM emulator: one admin, one mail, identical
/// working tokens on every node, and a replacement that sends nothing.
#[test]
fn four_nodes_through_aws_ssm() {
    let Some(moto) = Moto::start() else {
        println!("SKIPPED: aws / moto_server not installed (pip install awscli 'moto[server]')");
        return;
    };
    let (spread, mutating) = fleet_round(Some(Backend::Ssm(moto.endpoint.clone())), 4);
    println!(
        "RELIABILITY fleet-aws-ssm nodes=4 mutating={mutating} spread_ms={}",
        spread.as_millis()
    );
}
