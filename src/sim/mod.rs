//! `tfe-sim`: a faithful stand-in for a freshly installed Terraform Enterprise.
//!
//! Terraform Enterprise cannot run on the machines that build and test this
//! project, so every integration test, the benchmarks and the demo run the
//! real `tfe-bootstrap` binary against this simulator. It is usable two ways:
//!
//! * as the `tfe-sim` binary (`src/bin/tfe-sim.rs`), which prints its base URL
//!   as the first line of stdout;
//! * in-process, through [`Sim::start`], so Rust tests can inject faults,
//!   park a request while they kill the client, and read the state directly.
//!
//! Layout: [`http`] is the socket layer, [`tfe`] the simulated install (data
//! and endpoints), [`faults`] the fault injection. This file ties them
//! together: the request counter, the request log, faults, and `/_sim/*`.

pub mod faults;
pub mod http;
pub mod tfe;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde_json::{Value, json};

use faults::{Action, FaultRule, RandomFaults};
use http::{Handler, Reply, Request, Response};
pub use tfe::Tfe;

/// Everything that shapes one simulated install. Defaults: loopback, plain
/// HTTP, ready at once, a random IACT, no IACT subnets, 60-minute IACT
/// window, no faults.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub listen: SocketAddr,
    /// PEM certificate chain and private key: serve HTTPS.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// Host name to print in the base URL (default: the listen IP).
    pub hostname: Option<String>,
    pub listen_after: Duration,
    pub ready_after: Duration,
    pub legacy_health: bool,
    pub iact: Option<String>,
    pub iact_subnets: Vec<IpNet>,
    /// Proxies whose `X-Forwarded-For` TFE believes for the IACT subnet
    /// check (as TFE_IACT_TRUSTED_PROXIES; see `tfe::boot`).
    pub iact_trusted_proxies: Vec<IpNet>,
    pub iact_time_limit: Option<Duration>,
    pub existing_admin_token: Option<String>,
    pub user_tokens: Vec<String>,
    pub smtp_fail: Option<u16>,
    pub faults: Vec<FaultRule>,
    pub fault_rate: f64,
    pub seed: u64,
    pub stall: Duration,
    pub version: String,
    /// Behave as HCP Terraform: no admin API, no IACT, no health endpoints.
    pub hcp: bool,
    /// Enforce TFE's per-user API rate limit (the general settings'
    /// `api-rate-limit`, 30 by default).
    pub rate_limit: bool,
    /// Organizations that exist at start, each owned by the (non-admin)
    /// user holding the token: `(org, token)`.
    pub owned_orgs: Vec<(String, String)>,
    /// A site admin counts as an owner of every organization for the
    /// token TTL policies (unconfirmed; see `tfe::Tfe::handle`).
    pub site_admin_owner: bool,
    /// The tokens given at start carry no expiry (an install upgraded from
    /// 1.x; see `tfe::NO_EXPIRY`).
    pub tokens_without_expiry: bool,
    /// Boot held by the test: not ready (503) until [`Sim::release_ready`],
    /// whatever `ready_after` says.
    pub hold_ready: bool,
    /// Port closed (connection refused) until [`Sim::open_port`].
    pub hold_port: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
            hostname: None,
            listen_after: Duration::ZERO,
            ready_after: Duration::ZERO,
            legacy_health: false,
            iact: None,
            iact_subnets: vec![],
            iact_trusted_proxies: vec![],
            iact_time_limit: Some(Duration::from_secs(60 * 60)),
            existing_admin_token: None,
            user_tokens: vec![],
            smtp_fail: None,
            faults: vec![],
            fault_rate: 0.0,
            seed: 0,
            stall: Duration::from_secs(2),
            hcp: false,
            rate_limit: false,
            owned_orgs: vec![],
            site_admin_owner: false,
            tokens_without_expiry: false,
            hold_ready: false,
            hold_port: false,
            version: "2.0.1".into(),
        }
    }
}

/// One line of the request log (never holds bodies or query strings).
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub seq: u64,
    pub method: String,
    pub path: String,
    /// 0 when the connection was dropped or the answer withheld.
    pub status: u16,
    pub fault: Option<String>,
    /// When the request arrived, measured from the simulator's start (its
    /// boot: `--ready-after` counts from the same instant).
    pub at: Duration,
}

impl LogEntry {
    pub fn is_mutating(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
}

/// A request parked by a `pause` / `pause-after` fault.
#[derive(Debug, Clone)]
pub struct Parked {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub acted: bool,
}

#[derive(Default)]
struct PauseState {
    parked: Option<Parked>,
    releases: u64,
}

struct Shared {
    /// The port held closed until the test opens it (`hold_port`).
    port_held: Mutex<bool>,
    port_cv: Condvar,
    tfe: Mutex<Tfe>,
    faults: Mutex<Vec<FaultRule>>,
    random: Mutex<Option<RandomFaults>>,
    log: Mutex<Vec<LogEntry>>,
    counters: Mutex<(u64, u64)>,
    pause: Mutex<PauseState>,
    pause_cv: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler thread must not take the whole simulator down.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running simulator. Dropping it stops the server.
pub struct Sim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    url: String,
    stop: Arc<AtomicBool>,
}

impl Sim {
    /// Binds (or, with `listen_after`, reserves) the port and starts serving.
    pub fn start(opts: SimOptions) -> std::io::Result<Sim> {
        let iact = opts.iact.clone().unwrap_or_else(|| {
            let mut r = fastrand::Rng::new();
            (0..64)
                .map(|_| char::from_digit(r.u32(..16), 16).unwrap_or('0'))
                .collect()
        });
        let behaviour = tfe::Behaviour {
            ready_after: opts.ready_after,
            legacy_health: opts.legacy_health,
            iact,
            iact_subnets: opts.iact_subnets.clone(),
            iact_trusted_proxies: opts.iact_trusted_proxies.clone(),
            iact_time_limit: opts.iact_time_limit,
            smtp_fail: opts.smtp_fail,
            version: opts.version.clone(),
            hcp: opts.hcp,
            rate_limit: opts.rate_limit,
            site_admin_owner: opts.site_admin_owner,
            tokens_without_expiry: opts.tokens_without_expiry,
        };
        let mut state = Tfe::new(behaviour, opts.seed);
        state.ready_held = opts.hold_ready;
        if let Some(t) = &opts.existing_admin_token {
            state.add_user("existing-admin", true, Some(t.clone()));
        }
        for (i, t) in opts.user_tokens.iter().enumerate() {
            state.add_user(&format!("user{}", i + 1), false, Some(t.clone()));
        }
        for (i, (org, token)) in opts.owned_orgs.iter().enumerate() {
            let owner = match state.user_of(token) {
                Some(id) => id,
                None => {
                    state.add_user(&format!("owner{}", i + 1), false, Some(token.clone()));
                    state.user_of(token).unwrap_or_default()
                }
            };
            state.insert_org(
                org,
                &format!("owner{}@example.com", i + 1),
                "remote",
                false,
                &owner,
            );
        }
        let random = (opts.fault_rate > 0.0)
            .then(|| RandomFaults::new(opts.fault_rate, opts.seed, opts.stall));
        let shared = Arc::new(Shared {
            port_held: Mutex::new(opts.hold_port),
            port_cv: Condvar::new(),
            tfe: Mutex::new(state),
            faults: Mutex::new(opts.faults.clone()),
            random: Mutex::new(random),
            log: Mutex::new(vec![]),
            counters: Mutex::new((0, 0)),
            pause: Mutex::new(PauseState::default()),
            pause_cv: Condvar::new(),
        });
        let tls = match &opts.tls {
            Some((cert, key)) => Some(server_tls(cert, key)?),
            None => None,
        };
        let listener = TcpListener::bind(opts.listen)?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let host = opts
            .hostname
            .clone()
            .unwrap_or_else(|| addr.ip().to_string());
        let url = format!("{scheme}://{host}:{}", addr.port());
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<dyn Handler> = Arc::new(SimHandler(Arc::clone(&shared)));
        let stop2 = Arc::clone(&stop);
        let listen_after = opts.listen_after;
        // With listen_after or hold_port, the port is closed (connection
        // refused) before `start` returns, and re-opened later on the same
        // port: after the time, or when the test opens it.
        let early = if listen_after.is_zero() && !opts.hold_port {
            Some(listener)
        } else {
            drop(listener);
            None
        };
        let gate = Arc::clone(&shared);
        thread::spawn(move || {
            let listener = if let Some(l) = early {
                l
            } else {
                thread::sleep(listen_after);
                let mut held = lock(&gate.port_held);
                while *held && !stop2.load(Ordering::SeqCst) {
                    held = gate.port_cv.wait(held).unwrap_or_else(|e| e.into_inner());
                }
                drop(held);
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    match TcpListener::bind(addr) {
                        Ok(l) => break l,
                        Err(e) if Instant::now() > deadline => {
                            eprintln!("tfe-sim: cannot re-bind {addr}: {e}");
                            return;
                        }
                        Err(_) => thread::sleep(Duration::from_millis(50)),
                    }
                }
            };
            http::serve(listener, tls, handler, stop2);
        });
        Ok(Sim {
            shared,
            addr,
            url,
            stop,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The state as `/_sim/state` shows it.
    pub fn snapshot(&self) -> Value {
        state_json(&self.shared)
    }

    /// Direct access to the simulated install (e.g. to change a setting by hand).
    pub fn with_tfe<R>(&self, f: impl FnOnce(&mut Tfe) -> R) -> R {
        f(&mut lock(&self.shared.tfe))
    }

    pub fn requests(&self) -> Vec<LogEntry> {
        lock(&self.shared.log).clone()
    }

    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.shared.faults).push(rule);
    }

    /// Waits until a `pause` fault has parked a request, up to `timeout`.
    pub fn wait_parked(&self, timeout: Duration) -> Option<Parked> {
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.shared.pause);
        loop {
            if let Some(p) = &st.parked {
                return Some(p.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            st = self
                .shared
                .pause_cv
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Ends a boot held by `hold_ready`: from now on TFE answers ready.
    pub fn release_ready(&self) {
        lock(&self.shared.tfe).ready_held = false;
    }

    /// Moves TFE's clock `by` ahead of this host's: as if that much time had
    /// passed for TFE (tokens minted before now look older, and may have
    /// expired) while the client's clock stood still (a host clock that
    /// fell behind after the run recorded TFE's offset).
    pub fn advance_clock(&self, by: std::time::Duration) {
        lock(&self.shared.tfe).clock_ahead_ms += by.as_millis() as u64;
    }

    /// Opens a port held closed by `hold_port`.
    pub fn open_port(&self) {
        *lock(&self.shared.port_held) = false;
        self.shared.port_cv.notify_all();
    }

    /// Lets a parked request go on.
    pub fn release(&self) {
        let mut st = lock(&self.shared.pause);
        st.parked = None;
        st.releases += 1;
        self.shared.pause_cv.notify_all();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.release();
        self.shared.port_cv.notify_all();
        let _ = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
    }
}

fn server_tls(cert: &[u8], key: &[u8]) -> std::io::Result<Arc<rustls::ServerConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {e}"))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| bad("TLS certificate", &e))?;
    if certs.is_empty() {
        return Err(bad("TLS certificate", &"no CERTIFICATE block in the PEM"));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| bad("TLS key", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("TLS certificate/key", &e))?;
    Ok(Arc::new(cfg))
}

fn state_json(shared: &Shared) -> Value {
    let mut v = lock(&shared.tfe).snapshot();
    let log: Vec<Value> = lock(&shared.log)
        .iter()
        .map(|e| json!({"seq": e.seq, "method": e.method, "path": e.path, "status": e.status, "fault": e.fault,
                        "at_ms": e.at.as_secs_f64() * 1000.0}))
        .collect();
    v["requests"] = Value::Array(log);
    v
}

struct SimHandler(Arc<Shared>);

impl SimHandler {
    fn log(&self, seq: u64, req: &Request, status: u16, fault: Option<&Action>, arrived: Instant) {
        let at = arrived.saturating_duration_since(lock(&self.0.tfe).boot);
        lock(&self.0.log).push(LogEntry {
            seq,
            method: req.method.clone(),
            path: req.path.clone(),
            status,
            fault: fault.map(|a| a.to_string()),
            at,
        });
    }

    fn park(&self, seq: u64, req: &Request, acted: bool) {
        let mut st = lock(&self.0.pause);
        let gen_ = st.releases;
        st.parked = Some(Parked {
            seq,
            method: req.method.clone(),
            path: req.path.clone(),
            acted,
        });
        self.0.pause_cv.notify_all();
        while st.releases == gen_ {
            st = self.0.pause_cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn internal(&self, req: &Request) -> Response {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/_sim/state") => Response::plain_json(200, &state_json(&self.0)),
            // The in-container view of the token (`tfectl admin token`), loopback only.
            ("GET", "/_sim/iact") if req.peer.is_loopback() => {
                Response::new(200, "text/plain", lock(&self.0.tfe).behaviour.iact.clone())
            }
            ("POST", "/_sim/faults") => {
                let text = String::from_utf8_lossy(&req.body);
                let mut added = 0;
                for line in text
                    .split([',', '\n'])
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                {
                    match FaultRule::parse(line) {
                        Ok(r) => {
                            lock(&self.0.faults).push(r);
                            added += 1;
                        }
                        Err(e) => {
                            return Response::plain_json(400, &json!({"error": e.to_string()}));
                        }
                    }
                }
                Response::plain_json(200, &json!({"added": added}))
            }
            ("POST", "/_sim/release") => {
                let mut st = lock(&self.0.pause);
                st.parked = None;
                st.releases += 1;
                self.0.pause_cv.notify_all();
                Response::empty(204)
            }
            _ => Response::plain_json(404, &json!({"error": "unknown /_sim endpoint"})),
        }
    }
}

impl Handler for SimHandler {
    fn handle(&self, req: &Request) -> Reply {
        if req.path.starts_with("/_sim/") {
            return Reply::Send(self.internal(req));
        }
        let arrived = Instant::now();
        let (seq, mseq) = {
            let mut c = lock(&self.0.counters);
            c.0 += 1;
            if req.is_mutating() {
                c.1 += 1;
            }
            (c.0, req.is_mutating().then_some(c.1))
        };
        let scripted = {
            let mut rules = lock(&self.0.faults);
            let hit = rules
                .iter_mut()
                .find(|r| r.remaining > 0 && r.matches(seq, mseq, &req.method, &req.path));
            hit.map(|r| {
                r.remaining -= 1;
                r.action.clone()
            })
        };
        let fault = scripted.or_else(|| {
            lock(&self.0.random)
                .as_mut()
                .and_then(|r| r.draw(&req.method, &req.path))
        });
        match &fault {
            Some(Action::Status(code)) => {
                self.log(seq, req, *code, fault.as_ref(), arrived);
                let detail = "injected fault";
                return Reply::Send(Response::json(
                    *code,
                    &json!({"errors": [{"status": code.to_string(), "title": "injected", "detail": detail}]}),
                ));
            }
            Some(Action::Echo(code)) => {
                self.log(seq, req, *code, fault.as_ref(), arrived);
                let query: Vec<String> =
                    req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let detail = format!(
                    "could not handle {} {}?{} (authorization: {}) with body {}",
                    req.method,
                    req.path,
                    query.join("&"),
                    req.header("authorization").unwrap_or("-"),
                    String::from_utf8_lossy(&req.body)
                );
                return Reply::Send(Response::json(
                    *code,
                    &json!({"errors": [{"status": code.to_string(), "title": "echo", "detail": detail}]}),
                ));
            }
            Some(Action::EchoText { status, pad }) => {
                self.log(seq, req, *status, fault.as_ref(), arrived);
                let text = format!(
                    "{}{} <- could not handle {} {}",
                    "x".repeat(*pad),
                    String::from_utf8_lossy(&req.body),
                    req.method,
                    req.path
                );
                return Reply::Send(Response::new(*status, "text/plain", text));
            }
            Some(Action::RateLimit(secs)) => {
                self.log(seq, req, 429, fault.as_ref(), arrived);
                let body = json!({"errors": [{"detail": "You have exceeded the API's rate limit.", "status": 429, "title": "Too many requests"}]});
                return Reply::Send(
                    Response::json(429, &body).with_header("X-RateLimit-Reset", &format!("{secs}")),
                );
            }
            Some(Action::Drop) => {
                self.log(seq, req, 0, fault.as_ref(), arrived);
                return Reply::Drop;
            }
            Some(Action::Stall(d)) => thread::sleep(*d),
            Some(Action::Pause) => self.park(seq, req, false),
            Some(Action::PauseThenDrop) => {
                self.park(seq, req, false);
                self.log(seq, req, 0, fault.as_ref(), arrived);
                return Reply::Drop;
            }
            Some(Action::PauseAfterAct) | Some(Action::IgnoreAttr(_)) | None => {}
        }
        let resp = match &fault {
            Some(Action::IgnoreAttr(attr)) => {
                let mut body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                if let Some(a) = body["data"]["attributes"].as_object_mut() {
                    a.remove(attr);
                }
                let stripped = Request {
                    body: body.to_string().into_bytes(),
                    ..req.clone()
                };
                lock(&self.0.tfe).handle(&stripped)
            }
            _ => lock(&self.0.tfe).handle(req),
        };
        if matches!(fault, Some(Action::PauseAfterAct)) {
            self.log(seq, req, 0, fault.as_ref(), arrived);
            self.park(seq, req, true);
            return Reply::Drop;
        }
        self.log(seq, req, resp.status, fault.as_ref(), arrived);
        Reply::Send(resp)
    }
}
