//! Test harness: an in-process simulator, a temp dir with a config, the real
//! `tfe-bootstrap` binary run as a subprocess, and the secrets audit.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tfe_bootstrap::sim::{LogEntry, Sim, SimOptions};

/// Distinctive secret values: any of them in an output is a leak.
pub const ADMIN_PASSWORD: &str = "adm1n-Pa55word-q7Zx";
pub const SMTP_PASSWORD: &str = "smtp-Pa55word-k2Vw";
pub const IACT: &str = "iact-5e1f0c7b9a2d4e6f8a0b";
pub const TWILIO_TOKEN: &str = "twilio-auth-Tk9Qm3";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tfe-bootstrap")
}

pub fn sim_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tfe-sim")
}

/// Simulator options every test starts from: the known IACT, API retrieval
/// allowed from loopback.
pub fn sim_opts() -> SimOptions {
    SimOptions {
        iact: Some(IACT.into()),
        iact_subnets: vec!["127.0.0.0/8".parse().unwrap()],
        ..SimOptions::default()
    }
}

/// The full config used by most tests: every step of the contract the
/// core run covers.
pub fn full_config(url: &str, state: &Path) -> String {
    format!(
        r#"
[tfe]
address = "{url}"
allow_insecure_http = true
request_timeout = "10s"

[wait]
timeout = "20s"
max_interval = "200ms"

[iact]
source = "auto"
subnets = ["127.0.0.0/8"]

[admin]
username = "tfe-admin"
email = "platform@example.com"
password = {{ env = "T_ADMIN_PASSWORD" }}
rotate_token = true

[general]
limit_user_organization_creation = true
api_rate_limiting_enabled = true
api_rate_limit = 60

[smtp]
enabled = true
host = "smtp.example.com"
port = 587
sender = "noreply@example.com"
auth = "login"
username = "smtp-bot"
password = {{ env = "T_SMTP_PASSWORD" }}
test_email_address = "ops@example.com"

[organization]
name = "my-org"
email = "platform@example.com"
default_execution_mode = "agent"
default_agent_pool = "default-pool"
max_ttl_enabled = true

[organization.token_ttl]
organization = "1y"
team = "90d"
user = "30d"
audit_trails = "2y"

[state]
dir = "{}"
"#,
        state.display()
    )
}

/// A `[twilio]` section with one verification SMS, its token from the env.
pub const TWILIO_SECTION: &str = r#"
[twilio]
enabled = true
account_sid = "AC0123456789"
auth_token = { env = "T_TWILIO_TOKEN" }
from_number = "+15555550100"
test_number = "+15555550199"
"#;

/// One test's world: a simulator, a temp dir, a config file.
pub struct World {
    pub sim: Sim,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn both(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl World {
    pub fn new(opts: SimOptions) -> World {
        let sim = Sim::start(opts).expect("start sim");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tfe-bootstrap.toml");
        let w = World { sim, dir, config };
        w.write_config(&full_config(w.sim.url(), &w.state_dir()));
        w
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn token_file(&self) -> PathBuf {
        self.state_dir().join("admin-token")
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.config, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config).unwrap()
    }

    /// Replaces `from` with `to` in the config (must be present).
    pub fn edit_config(&self, from: &str, to: &str) {
        let t = self.config_text();
        assert!(t.contains(from), "config has no {from:?}");
        self.write_config(&t.replacen(from, to, 1));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = bootstrap_command(args, &self.config);
        c.env_remove("NO_COLOR");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self
            .command(args)
            .output_timed()
            .expect("run tfe-bootstrap");
        let r = to_run(out);
        self.assert_no_secrets(&r);
        r
    }

    /// Starts `run` with a fault `rule` that parks a request, SIGKILLs the
    /// client once the request is parked, then lets the simulator go on.
    pub fn kill_at(&self, rule: &str) {
        self.kill_during(&["run"], rule)
    }

    /// [`World::kill_at`] for any command line.
    pub fn kill_during(&self, args: &[&str], rule: &str) {
        let out = kill_when_parked(&self.sim, self.command(args), rule);
        self.assert_no_secrets(&to_run(out));
    }

    /// Runs `run` with the request matched by `rule` parked; once it is
    /// parked, calls `during`, lets the request go on, and returns the
    /// audited run.
    pub fn run_while_parked(&self, rule: &str, during: impl FnOnce()) -> Run {
        self.parked_during(&["run"], rule, during)
    }

    /// [`World::run_while_parked`] for any command line.
    pub fn parked_during(&self, args: &[&str], rule: &str, during: impl FnOnce()) -> Run {
        self.sim
            .add_fault(tfe_bootstrap::sim::faults::FaultRule::parse(rule).unwrap());
        let child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(
            self.sim.wait_parked(Duration::from_secs(30)).is_some(),
            "{rule}: never parked"
        );
        during();
        self.sim.release();
        let r = to_run(child.wait_timed().unwrap());
        self.assert_no_secrets(&r);
        r
    }

    /// The config with `[organization.service_token]` and
    /// `[organization.owners_team_token]` files (`org-token`,
    /// `owners-token` in the temp dir) and TTL policies they fit in.
    pub fn with_service_tokens(self) -> World {
        let t = self.config_text().replace(
            "[organization.token_ttl]",
            &format!(
                "[organization.service_token]\nfile = \"{}\"\n\n[organization.owners_team_token]\nfile = \"{}\"\n\n[organization.token_ttl]",
                self.dir.path().join("org-token").display(),
                self.dir.path().join("owners-token").display()
            ),
        );
        self.write_config(&t);
        self
    }

    /// The token in `path` (a file this run wrote): see [`token_in`].
    #[track_caller]
    pub fn token_at(&self, path: &Path) -> String {
        token_in(path)
    }

    /// Whether `token` may read organization my-org on the simulator now.
    pub fn authenticates(&self, token: &str) -> bool {
        Http::new(self.sim.url())
            .get("/api/v2/organizations/my-org", Some(token))
            .0
            == 200
    }

    /// Whether `token` authenticates as a site admin.
    pub fn is_site_admin(&self, token: &str) -> bool {
        let (status, v) = Http::new(self.sim.url()).get("/api/v2/account/details", Some(token));
        status == 200 && v["data"]["attributes"]["is-site-admin"] == true
    }

    /// What a user checks at the end of a run: every token file the config
    /// names exists (0600) and its token works. Returns how many.
    #[track_caller]
    pub fn assert_token_files_work(&self) -> usize {
        let mut files = vec![self.token_file()];
        for name in ["org-token", "owners-token", "agent-token"] {
            let p = self.dir.path().join(name);
            if self.config_text().contains(&p.display().to_string()) {
                files.push(p);
            }
        }
        let agents = self.snapshot()["agent-tokens"].clone();
        for f in &files {
            let t = self.token_at(f);
            if f.ends_with("agent-token") {
                let held = agents
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["token"] == t.as_str());
                assert!(
                    held,
                    "the agent token in {} is not in its pool",
                    f.display()
                );
                continue;
            }
            assert!(
                self.authenticates(&t),
                "the token in {} does not authenticate",
                f.display()
            );
        }
        files.len()
    }

    /// The simulator's record of `token` (lifetime, expiry, kind).
    pub fn token_record(&self, token: &str) -> Value {
        self.snapshot()["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["token"] == token)
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub fn snapshot(&self) -> Value {
        self.sim.snapshot()
    }

    pub fn requests(&self) -> Vec<LogEntry> {
        self.sim.requests()
    }

    pub fn mutating(&self) -> Vec<LogEntry> {
        self.requests()
            .into_iter()
            .filter(|r| r.is_mutating())
            .collect()
    }

    /// Every token the simulator ever issued.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.snapshot()["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["token"].as_str().unwrap().to_string())
            .collect()
    }

    /// No secret value in stdout, stderr, or any file under the state dir
    /// except the admin token file itself and its rescue copy (both 0600).
    pub fn assert_no_secrets(&self, r: &Run) {
        let mut secrets: Vec<String> = vec![
            ADMIN_PASSWORD.into(),
            SMTP_PASSWORD.into(),
            IACT.into(),
            TWILIO_TOKEN.into(),
        ];
        secrets.extend(self.issued_tokens());
        let text = r.both();
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "secret {s:?} leaked into the output:\n{text}"
            );
        }
        for f in files_under(&self.state_dir()) {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            if f == self.token_file() || name.ends_with(".rescue") || name.contains(".stale-") {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{} has mode {mode:o}", f.display());
                continue;
            }
            let content =
                String::from_utf8_lossy(&std::fs::read(&f).unwrap_or_default()).into_owned();
            for s in &secrets {
                assert!(
                    !content.contains(s.as_str()),
                    "secret {s:?} leaked into {}",
                    f.display()
                );
            }
        }
    }
}

pub fn to_run(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// libfaketime's preload library, to run the client (only) with a wrong
/// clock. `None` (with a note) when Debian's `faketime` is not installed;
/// a panic instead when `TFE_BOOTSTRAP_REQUIRE_FAKETIME=1` (CI).
pub fn faketime_lib() -> Option<PathBuf> {
    let found = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ]
    .iter()
    .map(|d| Path::new(d).join("faketime/libfaketime.so.1"))
    .find(|p| p.exists());
    external("libfaketime", found.is_some(), "apt-get install faketime");
    if found.is_none() {
        assert!(
            std::env::var("TFE_BOOTSTRAP_REQUIRE_FAKETIME").as_deref() != Ok("1"),
            "libfaketime is required here (apt-get install faketime)"
        );
        println!("SKIPPED: libfaketime not installed (apt-get install faketime)");
    }
    found
}

/// Makes `cmd` see a clock `offset` away (libfaketime syntax: `+3h`, `-29d`).
pub fn with_clock(cmd: &mut Command, lib: &Path, offset: &str) {
    cmd.env("LD_PRELOAD", lib)
        .env("FAKETIME", offset)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env("FAKETIME_NO_CACHE", "1");
}

/// Asserts a run's exit code, showing its output when it differs.
#[track_caller]
pub fn assert_code(r: &Run, code: i32) {
    assert_eq!(
        r.code, code,
        "exit code {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    );
}

/// Polls `cond` until it holds or `timeout` passes (a deadline, not a sleep).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A plain HTTP client for talking to the simulator directly.
pub struct Http {
    agent: ureq::Agent,
    pub base: String,
}

impl Http {
    pub fn new(base: &str) -> Http {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Http {
            agent,
            base: base.into(),
        }
    }

    /// Sends a request; `ct` is the Content-Type for bodies.
    pub fn req(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        ct: &str,
    ) -> (u16, Value, String) {
        let url = format!("{}{}", self.base, path);
        let auth = token.map(|t| format!("Bearer {t}"));
        let result = match method {
            "DELETE" => {
                let mut rb = self.agent.delete(&url);
                if let Some(a) = &auth {
                    rb = rb.header("Authorization", a.as_str());
                }
                if !ct.is_empty() {
                    rb = rb.header("Content-Type", ct);
                }
                rb.call()
            }
            "GET" => {
                let mut rb = self.agent.get(&url);
                if let Some(a) = &auth {
                    rb = rb.header("Authorization", a.as_str());
                }
                rb.call()
            }
            m => {
                let mut rb = match m {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    _ => self.agent.patch(&url),
                };
                if let Some(a) = &auth {
                    rb = rb.header("Authorization", a.as_str());
                }
                if !ct.is_empty() {
                    rb = rb.header("Content-Type", ct);
                }
                match body {
                    Some(b) => rb.send(b.to_string().as_bytes()),
                    None => rb.send_empty(),
                }
            }
        };
        let mut resp = result.expect("request");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, json, text)
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let (s, v, _) = self.req("GET", path, token, None, "");
        (s, v)
    }

    pub fn api(&self, method: &str, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let (s, v, _) = self.req(
            method,
            path,
            Some(token),
            Some(body),
            "application/vnd.api+json",
        );
        (s, v)
    }
}

/// The TOML of a cloud-init example's first write_files entry: the indented
/// block after its first `content: |`.
pub fn cloud_init_toml(yaml: &str) -> String {
    let start = yaml.find("content: |").unwrap();
    yaml[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("      ") || l.trim().is_empty())
        .map(|l| l.strip_prefix("      ").unwrap_or(l.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How long any child process of a test may run before the test fails,
/// naming it: far beyond any healthy run on a loaded 2-core machine, far
/// short of CI's limit, so one hang cannot wedge the whole suite.
pub const CHILD_DEADLINE: Duration = Duration::from_secs(300);

/// `Command::output` and `Child::wait_with_output` with a deadline: the
/// pipes are drained on threads (a chatty child never blocks on a full
/// pipe), the child is killed at the deadline, and the test fails naming
/// the process and showing what it printed.
pub trait Within {
    fn output_within(&mut self, deadline: Duration) -> std::io::Result<Output>;
    /// [`Within::output_within`] with [`CHILD_DEADLINE`].
    fn output_timed(&mut self) -> std::io::Result<Output> {
        self.output_within(CHILD_DEADLINE)
    }
}

impl Within for Command {
    fn output_within(&mut self, deadline: Duration) -> std::io::Result<Output> {
        let what = format!("{:?}", self);
        let child = self.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        Ok(wait_child(child, deadline, &what))
    }
}

/// Waits for `child` (stdout and stderr piped) within `deadline`.
pub fn wait_child(mut child: std::process::Child, deadline: Duration, what: &str) -> Output {
    use std::io::Read;
    let drain = |p: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = vec![];
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let finished = wait_until(deadline, || matches!(child.try_wait(), Ok(Some(_))));
    if !finished {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait for the child");
    let (stdout, stderr) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    assert!(
        finished,
        "{what} was still running after {deadline:?}: killed.\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    Output {
        status,
        stdout,
        stderr,
    }
}

/// `Child::wait_with_output` with [`CHILD_DEADLINE`] (stdout and stderr
/// must be piped).
pub trait ChildWithin {
    fn wait_timed(self) -> std::io::Result<Output>;
}

impl ChildWithin for std::process::Child {
    fn wait_timed(self) -> std::io::Result<Output> {
        let what = format!("process {}", self.id());
        Ok(wait_child(self, CHILD_DEADLINE, &what))
    }
}

/// Records that the running test used an external tool (`present`) or
/// skipped for want of it (`missing`: how to get it), for the summary
/// `scripts/test.sh` prints at the end (the file it names in
/// `TFE_BOOTSTRAP_TOOL_REPORT`); a passing test's own output is not shown.
/// Returns `present`.
pub fn external(tool: &str, present: bool, missing: &str) -> bool {
    use std::io::Write;
    if let Some(path) = std::env::var_os("TFE_BOOTSTRAP_TOOL_REPORT") {
        let test = std::thread::current().name().unwrap_or("?").to_string();
        let line = if present {
            format!("ran\t{test}\t{tool}\n")
        } else {
            format!("SKIPPED\t{test}\t{tool}: {missing}\n")
        };
        // One short O_APPEND write per line: whole across test threads.
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }
    present
}

/// Whether the tests run as root (tmpfs, chown, namespaces). Where
/// root-only cases must run (CI: TFE_BOOTSTRAP_REQUIRE_ROOT=1), a test
/// never skips them quietly.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert!(
        uid == 0 || std::env::var("TFE_BOOTSTRAP_REQUIRE_ROOT").as_deref() != Ok("1"),
        "TFE_BOOTSTRAP_REQUIRE_ROOT=1, but the tests do not run as root: the root-only cases would skip"
    );
    uid == 0
}

/// Whether every program in `tools` runs (`--version`). When one does not
/// and the variable `require` is set (CI sets it), the test fails saying
/// how to install them, instead of skipping quietly.
pub fn tools_present(tools: &[&str], require: &str, install: &str) -> bool {
    let runs = |b: &&str| {
        Command::new(b)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    let ok = tools.iter().all(runs);
    external(&tools.join(", "), ok, install);
    assert!(
        ok || std::env::var_os(require).is_none(),
        "{require} is set but {} are not all installed ({install})",
        tools.join(", ")
    );
    ok
}

/// A run whose JSON events the test reads as they come, so it can act on
/// what the run has seen (open a held port once a poll was refused,
/// release a held boot once a poll saw 503) rather than on time.
pub struct EventStream {
    child: std::process::Child,
    rx: std::sync::mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl EventStream {
    /// Waits for an event `pred` accepts, within `deadline`; fails naming
    /// what it waited for and what it saw.
    #[track_caller]
    pub fn wait_for(
        &mut self,
        what: &str,
        deadline: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = std::time::Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("no {what} within {deadline:?}; events: {:#?}", self.seen);
                }
            }
        }
    }

    /// Waits for the run to end (within [`CHILD_DEADLINE`]): its exit code
    /// and every event it printed.
    pub fn finish(mut self) -> (i32, Vec<Value>) {
        let ended = wait_until(CHILD_DEADLINE, || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !ended {
            let _ = self.child.kill();
        }
        let status = self.child.wait().expect("wait for the run");
        assert!(
            ended,
            "the run was still going after {CHILD_DEADLINE:?}: killed"
        );
        while let Ok(v) = self.rx.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(v);
        }
        (status.code().unwrap_or(-1), self.seen)
    }
}

impl World {
    /// Starts `tfe-bootstrap ARGS --output json` and streams its events.
    pub fn events(&self, args: &[&str]) -> EventStream {
        use std::io::BufRead;
        let mut child = self
            .command(args)
            .args(["--output", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tfe-bootstrap");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        EventStream {
            child,
            rx,
            seen: vec![],
        }
    }
}

/// A `wait_poll` event whose status contains `text`.
pub fn poll_saw(text: &'static str) -> impl Fn(&Value) -> bool {
    move |v: &Value| {
        v["event"] == "wait_poll" && v["status"].as_str().is_some_and(|s| s.contains(text))
    }
}

/// `tfe-bootstrap ARGS --config CONFIG` with the secrets the test configs
/// name in its environment (and no stray config from the caller's), stdin
/// closed. Every test spawns the tool through here.
pub fn bootstrap_command(args: &[&str], config: &Path) -> Command {
    let mut c = Command::new(bin());
    c.args(args)
        .arg("--config")
        .arg(config)
        .env("T_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("T_SMTP_PASSWORD", SMTP_PASSWORD)
        .env("T_TWILIO_TOKEN", TWILIO_TOKEN)
        .env("T_IACT", IACT)
        .env_remove("TFE_BOOTSTRAP_CONFIG")
        .stdin(Stdio::null());
    c
}

/// The token in `path`, a file the run wrote: a regular file, not a link,
/// mode 0600; its content without the trailing newline.
#[track_caller]
pub fn token_in(path: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(meta.is_file(), "{} is not a regular file", path.display());
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "{} mode",
        path.display()
    );
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

/// Starts `cmd` with a fault `rule` that parks a request, SIGKILLs it once
/// the request is parked, then lets the simulator go on. What it printed.
#[track_caller]
pub fn kill_when_parked(sim: &Sim, mut cmd: Command, rule: &str) -> Output {
    sim.add_fault(tfe_bootstrap::sim::faults::FaultRule::parse(rule).unwrap());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let parked = sim.wait_parked(Duration::from_secs(60));
    // SIGKILL, then collect what the killed run had printed.
    child.kill().unwrap(); // std sends SIGKILL on Unix
    let out = child.wait_timed().unwrap();
    sim.release();
    assert!(
        parked.is_some(),
        "{rule}: the run never reached the parked request"
    );
    out
}

/// `text` (the full config) without the token TTL policies and their
/// enforcement: for installs that have none.
pub fn without_ttl(text: &str) -> String {
    let mut t = text.replace("max_ttl_enabled = true\n", "");
    let start = t
        .find("[organization.token_ttl]")
        .expect("a [organization.token_ttl] table");
    let end = t[start..].find("\n\n").map_or(t.len(), |e| start + e);
    t.replace_range(start..end, "");
    t
}
