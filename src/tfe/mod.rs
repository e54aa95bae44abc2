//! The TFE API client. [`Client`] is the transport: one `ureq` agent for the
//! whole run (keep-alive), TLS through rustls with an optional private CA,
//! timeouts, retries, and a read-only switch that `plan` relies on. The
//! endpoint functions live in [`api`]. Nothing in this module knows about
//! steps or checkpoints.
//!
//! Retry policy, by what a request may safely repeat ([`Replay`]):
//!
//! | answer / failure            | `Safe` (GET) | `Idempotent` (PATCH/PUT) | `Regenerate` (token POST) | `SideEffect` | `IfNotProcessed` (POST) | `Once` |
//! |-----------------------------|--------------|--------------------------|---------------------------|--------------|-------------------------|--------|
//! | connection refused / DNS    | retry        | retry                    | retry                     | retry        | retry                   | no     |
//! | 429 (`X-RateLimit-Reset`)   | retry        | retry                    | retry                     | retry        | retry                   | no     |
//! | 503                         | retry        | retry                    | retry                     | retry        | retry                   | no     |
//! | 502                         | retry        | retry                    | retry                     | ambiguous → error | ambiguous → error  | no     |
//! | 504                         | retry        | retry                    | retry                     | no           | ambiguous → error       | no     |
//! | 500                         | retry        | retry                    | retry                     | no           | no                      | no     |
//! | reset / timeout after send  | retry        | retry                    | retry                     | ambiguous → error | ambiguous → error  | no     |
//! | TLS failure, or not TLS     | no           | no                       | no                        | no           | no                      | no     |
//!
//! `Regenerate` is for the POSTs that mint a token (a user token, the
//! organization token, a team token): repeating one is harmless. A user may
//! hold many tokens, and nobody holds the one whose answer was lost (it
//! expires unused within its policy); an organization or team token is
//! replaced by each mint, so the newest answer is the one valid token.
//!
//! `SideEffect` is for a PATCH with a witness: TFE sends a test mail while it
//! handles the SMTP PATCH, and its 500/504 mean something about the SMTP
//! server ("SMTP server error" / "SMTP server timed out"). Nothing that may
//! have reached TFE is repeated: a slow relay would otherwise get a test mail
//! per attempt. The step reads the settings back instead.
//!
//! Every request, retries and waits included, ends within the retry
//! policy's `deadline` (`[tfe] request_deadline`, 2 minutes by default):
//! each attempt's timeout is cut to what is left of it.
//!
//! 429 and 503 mean TFE did not act, so even a one-time POST may repeat. A
//! 429 waits `X-RateLimit-Reset` (or `Retry-After`) and does not count
//! against the attempts: only the deadline ends a rate-limited request. After
//! an *ambiguous* failure a POST is never re-sent blindly: the caller decides
//! (re-read and retry for organizations and pools; never for the initial
//! admin, whose IACT is one-time).

pub mod api;
mod error;
pub mod version;

/// The HTTP methods the client sends: a typed value, so that no string can
/// name one it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use crate::util::percent_encode;
pub use error::{TfeError, error_detail};

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use serde_json::Value;

use crate::config::TfeConfig;
use crate::config::secret::Secret;

/// What a request may safely repeat; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    Safe,
    Idempotent,
    /// A POST that mints a token: a duplicate is harmless (see the table).
    Regenerate,
    SideEffect,
    IfNotProcessed,
    Once,
}

/// A request body.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    None,
    /// `application/vnd.api+json` (every `/api/v2` write).
    JsonApi(&'a Value),
    /// Plain `application/json` (`/admin/initial-admin-user`).
    Json(&'a Value),
}

/// One HTTP exchange, reported to the observer (never holds bodies or query strings).
#[derive(Debug, Clone)]
pub struct RequestEvent {
    pub method: Method,
    pub path: String,
    pub status: Option<u16>,
    pub elapsed: Duration,
    pub attempt: u32,
    /// Short description of a transport failure.
    pub error: Option<String>,
}

/// A response as the steps see it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
    pub rate_limit_reset: Option<Duration>,
    /// `TFP-AppName`: "Terraform Enterprise" or "HCP Terraform" (go-tfe
    /// `tfe.go` tells the two apart by it).
    pub app_name: Option<String>,
    /// `X-TFE-Current-Version` (Terraform Enterprise only).
    pub tfe_version: Option<String>,
}

impl Response {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// Retry limits. Defaults: 8 attempts, 100 ms doubling to 5 s with jitter,
/// 2 minutes in all (attempts and waits), 60 s at most for one 429.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// The whole request, every attempt and wait included, ends within this.
    pub deadline: Duration,
    pub max_rate_limit_wait: Duration,
}

/// `[tfe] request_deadline`'s default.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            deadline: DEFAULT_DEADLINE,
            max_rate_limit_wait: Duration::from_secs(60),
        }
    }
}

pub type Observer = Arc<dyn Fn(&RequestEvent) + Send + Sync>;

/// The transport. Cheap to clone (the agent is shared).
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<Secret>,
    read_only: bool,
    observer: Option<Observer>,
    /// `[tfe] request_timeout`: one attempt's limit.
    request_timeout: Duration,
    /// Overrides `request_timeout` for this client's requests.
    timeout: Option<Duration>,
    pub retry: RetryPolicy,
    /// TFE's clock: seconds its `Date` header was ahead of this host's
    /// clock in the latest answer (shared by every clone of the client).
    clock: Arc<std::sync::Mutex<Option<i64>>>,
}

/// System trust store locations, first existing wins (`SSL_CERT_FILE` first).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

fn system_roots() -> Vec<ureq::tls::Certificate<'static>> {
    let env = std::env::var("SSL_CERT_FILE").ok();
    let candidates = env
        .iter()
        .map(String::as_str)
        .chain(SYSTEM_BUNDLES.iter().copied());
    for path in candidates {
        if let Ok(pem) = std::fs::read(path) {
            return pem_certs(&pem);
        }
    }
    vec![]
}

fn pem_certs(pem: &[u8]) -> Vec<ureq::tls::Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|i| match i {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect()
}

/// Why the client could not be built from `[tfe]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// `[tfe] ca_bundle` (this path) holds no certificate that parses.
    #[error("[tfe] ca_bundle: {0} holds no certificate that can be parsed")]
    NoCertificate(String),
}

impl Client {
    /// Builds the agent from `[tfe]`. Fails when `ca_bundle` holds no usable certificate.
    pub fn new(cfg: &TfeConfig) -> Result<Client, ClientError> {
        use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
        let mut tls = TlsConfig::builder().provider(TlsProvider::Rustls);
        // The system's trust store, plus ca_bundle (interface: "trusted in
        // addition to the system roots"). Only a host with no store at all
        // (a scratch image) falls back to the Mozilla roots built in.
        let mut roots = system_roots();
        if let Some((path, pem)) = &cfg.ca_bundle {
            let extra = pem_certs(pem);
            if extra.is_empty() {
                return Err(ClientError::NoCertificate(path.display().to_string()));
            }
            roots.extend(extra);
        }
        if !roots.is_empty() {
            tls = tls.root_certs(RootCerts::new_with_certs(&roots));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(!cfg.allow_insecure_http)
            .max_redirects(0)
            .timeout_global(Some(cfg.request_timeout))
            .timeout_connect(Some(cfg.request_timeout.min(Duration::from_secs(10))))
            .user_agent(format!("tfe-bootstrap/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Client {
            agent,
            base: cfg.address.clone(),
            token: None,
            read_only: false,
            observer: None,
            request_timeout: cfg.request_timeout,
            timeout: None,
            retry: RetryPolicy {
                deadline: cfg.request_deadline,
                ..RetryPolicy::default()
            },
            clock: Arc::default(),
        })
    }

    /// TFE's time now, in Unix seconds: this host's clock corrected by the
    /// `Date` of TFE's latest answer. A token's `expired-at` is judged by
    /// TFE's clock, so a host clock hours fast or days slow must not decide
    /// it. This host's clock until TFE has answered.
    pub fn tfe_now(&self) -> u64 {
        let offset = self.clock.lock().map(|o| o.unwrap_or(0)).unwrap_or(0);
        crate::util::unix_now().saturating_add_signed(offset)
    }

    /// TFE's clock minus this host's, in seconds, once TFE has answered
    /// with a `Date` (kept in the state so `renew` can judge expiries by
    /// TFE's clock without sending a request).
    pub fn clock_offset(&self) -> Option<i64> {
        self.clock.lock().ok().and_then(|o| *o)
    }

    pub fn with_token(mut self, token: Secret) -> Client {
        self.token = Some(token);
        self
    }
    pub fn token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }
    /// From now on every non-GET request fails with [`TfeError::ReadOnly`]
    /// before it leaves the process.
    pub fn read_only(mut self) -> Client {
        self.read_only = true;
        self
    }
    pub fn with_observer(mut self, o: Observer) -> Client {
        self.observer = Some(o);
        self
    }
    /// A client whose requests time out after `t` (e.g. the time a wait has left).
    pub fn with_timeout(&self, t: Duration) -> Client {
        let mut c = self.clone();
        c.timeout = Some(t);
        c
    }
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request with retries per `replay`. `query` values are
    /// percent-encoded and never appear in events or errors.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Body<'_>,
        replay: Replay,
    ) -> Result<Response, TfeError> {
        if self.read_only && method != Method::Get {
            return Err(TfeError::ReadOnly {
                method,
                path: path.into(),
            });
        }
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.retry.max_attempts.saturating_sub(1))
            .build();
        let begun = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let started = Instant::now();
            let left = self.retry.deadline.saturating_sub(begun.elapsed());
            let limit = self
                .timeout
                .unwrap_or(self.request_timeout)
                .min(left)
                .max(Duration::from_millis(1));
            // Query values (the IACT) must never reach an event or an error,
            // whatever the lower layers put in their messages.
            let result = self
                .once(method, path, query, &body, limit)
                .map_err(|f| f.scrubbed(query));
            if let Some(o) = &self.observer {
                o(&RequestEvent {
                    method,
                    path: path.into(),
                    status: result.as_ref().ok().map(|r| r.status),
                    elapsed: started.elapsed(),
                    attempt,
                    error: result.as_ref().err().map(Failure::text),
                });
            }
            let (err, wait) = match self.judge(method, path, replay, result) {
                Judged::Return(r) => return r,
                Judged::Retry(err, wait) => (err, wait),
            };
            if replay == Replay::Once {
                return Err(err);
            }
            // A 429 says when to come back: it waits that long and does not
            // count against the attempts (a fleet sharing one user's limit
            // meets many), only against the request's deadline.
            let wait = match wait {
                Some(w) => w,
                None => match delays.next() {
                    Some(b) => b,
                    None => return Err(err),
                },
            };
            if begun.elapsed() + wait >= self.retry.deadline {
                return Err(err.gave_up(begun.elapsed(), attempt));
            }
            if !crate::stop::sleep(wait) {
                return Err(err);
            }
        }
    }

    /// What one attempt's result means for `replay`: the end of the
    /// request, or an error to retry after (for a 429) the wait TFE asked.
    fn judge(
        &self,
        method: Method,
        path: &str,
        replay: Replay,
        result: Result<Response, Failure>,
    ) -> Judged {
        let status_error = |resp: &Response| TfeError::Status {
            method,
            path: path.into(),
            status: resp.status,
            detail: error_detail(&resp.body),
            ambiguous: gateway_ambiguous(method, resp.status),
        };
        let transport = |detail: String, ambiguous: bool| TfeError::Transport {
            method,
            path: path.into(),
            detail,
            ambiguous,
        };
        match result {
            Ok(resp) => match decide(resp.status, replay) {
                Decision::Done => Judged::Return(Ok(resp)),
                Decision::Fail => Judged::Return(Err(status_error(&resp))),
                Decision::Retry => {
                    let wait = (resp.status == 429).then(|| {
                        resp.rate_limit_reset
                            .unwrap_or(Duration::from_secs(1))
                            .min(self.retry.max_rate_limit_wait)
                            + Duration::from_millis(fastrand::u64(20..120))
                    });
                    Judged::Retry(status_error(&resp), wait)
                }
            },
            Err(Failure::NotSent(detail)) if replay != Replay::Once => {
                Judged::Retry(transport(detail, false), None)
            }
            Err(Failure::NotSent(detail)) => Judged::Return(Err(transport(detail, false))),
            Err(Failure::MaybeSent(detail)) => {
                let err = transport(
                    detail,
                    matches!(replay, Replay::IfNotProcessed | Replay::SideEffect),
                );
                if matches!(
                    replay,
                    Replay::IfNotProcessed | Replay::SideEffect | Replay::Once
                ) {
                    return Judged::Return(Err(err));
                }
                Judged::Retry(err, None)
            }
            Err(Failure::Tls(detail)) => Judged::Return(Err(TfeError::Tls { detail })),
            Err(Failure::TooLarge(detail)) => Judged::Return(Err(TfeError::Decode {
                method,
                path: path.into(),
                detail,
            })),
        }
    }

    fn once(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: &Body<'_>,
        limit: Duration,
    ) -> Result<Response, Failure> {
        let url = self.url(path, query);
        let accept = if path.starts_with("/api/v2") {
            "application/vnd.api+json"
        } else {
            "application/json"
        };
        let auth = self
            .token
            .as_ref()
            .map(|t| format!("Bearer {}", t.expose()));
        macro_rules! common {
            ($rb:expr) => {{
                let mut rb = $rb
                    .header("Accept", accept)
                    .config()
                    .timeout_global(Some(limit))
                    .build();
                if let Some(a) = &auth {
                    rb = rb.header("Authorization", a.as_str());
                }
                rb
            }};
        }
        let result = match (method, body) {
            (Method::Get, _) => common!(self.agent.get(&url)).call(),
            // go-tfe sends its JSON:API content type on every request.
            (Method::Delete, _) => common!(self.agent.delete(&url))
                .header("Content-Type", "application/vnd.api+json")
                .call(),
            (m @ (Method::Post | Method::Put | Method::Patch), b) => {
                let rb = match m {
                    Method::Post => self.agent.post(&url),
                    Method::Put => self.agent.put(&url),
                    _ => self.agent.patch(&url),
                };
                let rb = common!(rb);
                match b {
                    Body::None => rb
                        .header("Content-Type", "application/vnd.api+json")
                        .send_empty(),
                    Body::JsonApi(v) => rb
                        .header("Content-Type", "application/vnd.api+json")
                        .send(v.to_string().as_bytes()),
                    Body::Json(v) => rb
                        .header("Content-Type", "application/json")
                        .send(v.to_string().as_bytes()),
                }
            }
        };
        self.answer(result.map_err(classify)?)
    }

    /// `base` + `path`, with the query values percent-encoded.
    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}{}", self.base, path);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&percent_encode(k));
            url.push('=');
            url.push_str(&percent_encode(v));
        }
        url
    }

    /// Reads an answer: its status, the headers the client uses (TFE's
    /// clock, app name, release, rate-limit reset) and its body, capped.
    fn answer(&self, mut resp: ureq::http::Response<ureq::Body>) -> Result<Response, Failure> {
        let status = resp.status().as_u16();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if let Some(tfe) = header("date")
            .as_deref()
            .and_then(crate::util::parse_http_date)
            && let Ok(mut clock) = self.clock.lock()
        {
            *clock = Some(tfe as i64 - crate::util::unix_now() as i64);
        }
        // The provider's `RemoteTFEVersion()`: the numbered header first,
        // then the monthly one.
        let (app_name, tfe_version) = (
            header("tfp-appname"),
            header("x-tfe-current-version").or_else(|| header("x-tfe-version")),
        );
        let reset = header("retry-after")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .or_else(|| header("x-ratelimit-reset").and_then(|v| v.trim().parse::<f64>().ok()))
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(3600.0)));
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| match e {
                // Not a fault that a retry mends: the answer is not TFE's.
                ureq::Error::BodyExceedsLimit(_) => Failure::TooLarge(format!(
                    "the answer is larger than {} MiB, which no TFE answer is: \
                     check that [tfe] address points at TFE",
                    MAX_BODY >> 20
                )),
                other => classify(other),
            })?;
        Ok(Response {
            status,
            body,
            rate_limit_reset: reset,
            app_name,
            tfe_version,
        })
    }
}

/// The largest answer read (the largest TFE page is far smaller).
const MAX_BODY: u64 = 8 << 20;

/// One attempt, judged ([`Client::judge`]).
enum Judged {
    /// The request ends here, with this answer or error.
    Return(Result<Response, TfeError>),
    /// Try again (unless the attempts or the deadline are spent), after the
    /// wait a 429 asked for when there is one.
    Retry(TfeError, Option<Duration>),
}

enum Decision {
    Done,
    Retry,
    Fail,
}

impl Failure {
    /// Replaces every query value (raw or percent-encoded) in the message with `***`.
    fn scrubbed(self, query: &[(&str, &str)]) -> Failure {
        let scrub = |mut t: String| {
            for (_, v) in query.iter().filter(|(_, v)| !v.is_empty()) {
                t = t.replace(v, "***").replace(&percent_encode(v), "***");
            }
            t
        };
        match self {
            Failure::NotSent(t) => Failure::NotSent(scrub(t)),
            Failure::MaybeSent(t) => Failure::MaybeSent(scrub(t)),
            Failure::Tls(t) => Failure::Tls(scrub(t)),
            Failure::TooLarge(t) => Failure::TooLarge(scrub(t)),
        }
    }

    fn text(&self) -> String {
        match self {
            Failure::NotSent(t)
            | Failure::MaybeSent(t)
            | Failure::Tls(t)
            | Failure::TooLarge(t) => t.clone(),
        }
    }
}

/// Whether a failed answer leaves it open that TFE acted: a 502 or 504
/// comes from a gateway that may have passed the request on, and only a
/// request that changes something makes that matter. A 502 to a PATCH is
/// counted, a 504 to a PATCH not: the client re-reads after a PATCH it
/// cannot confirm. The one place this is decided.
fn gateway_ambiguous(method: Method, status: u16) -> bool {
    matches!(
        (method, status),
        (Method::Post, 502 | 504) | (Method::Patch, 502)
    )
}

fn decide(status: u16, replay: Replay) -> Decision {
    match status {
        200..=299 => Decision::Done,
        _ if replay == Replay::Once => Decision::Fail,
        429 | 503 => Decision::Retry,
        _ if replay == Replay::Regenerate && matches!(status, 500 | 502 | 504) => Decision::Retry,
        502 if matches!(replay, Replay::Safe | Replay::Idempotent) => Decision::Retry,
        504 if matches!(replay, Replay::Safe | Replay::Idempotent) => Decision::Retry,
        // A 500 on a GET or an idempotent PATCH/PUT is repeated: sending the
        // same values again is harmless. Not on a `SideEffect` PATCH (SMTP:
        // the 500 is the SMTP server's verdict) nor on a creating POST.
        500 if matches!(replay, Replay::Safe | Replay::Idempotent) => Decision::Retry,
        _ => Decision::Fail,
    }
}

enum Failure {
    /// The request never left (connect refused, DNS, connect timeout).
    NotSent(String),
    /// It may have reached the server.
    MaybeSent(String),
    Tls(String),
    /// The answer exceeds [`MAX_BODY`].
    TooLarge(String),
}

/// Finds a certificate-verification failure in ureq's error and explains it.
fn tls_explanation(e: &ureq::Error) -> Option<String> {
    let rustls_err: Option<&rustls::Error> = match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    // Only a failed certificate verification is final: waiting cannot fix
    // it. Other TLS trouble (an alert, a handshake cut short while TFE's
    // proxy boots) is an ordinary transport failure. Match on the Debug form
    // (variant names are stable), show the Display form.
    let (text, kind) = match rustls_err {
        Some(r @ rustls::Error::InvalidCertificate(_)) => (r.to_string(), format!("{r:?}")),
        // The first bytes back were not a TLS record at all: a plain-HTTP
        // server on this port. Waiting will not make it speak TLS.
        Some(r @ rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            return Some(format!(
                "the server answered in plain HTTP, not TLS ({r}): [tfe] address names the wrong port or \
                 scheme. Use TFE's HTTPS port, or http:// with allow_insecure_http = true for a lab"
            ));
        }
        Some(_) => return None,
        None => {
            let t = e.to_string();
            if !t.contains("invalid peer certificate") {
                return None;
            }
            (t.clone(), t)
        }
    };
    let has = |v: &str| kind.contains(v) || text.contains(v);
    let fix = if has("CaUsedAsEndEntity") {
        "the server's certificate is itself a CA certificate (what a plain `openssl req -x509` makes); \
         rustls refuses a CA certificate used as a server certificate even when it is trusted. \
         Issue a leaf certificate for the TFE host name from a CA, serve that leaf, and put the CA in [tfe] ca_bundle"
    } else if has("UnknownIssuer") {
        "the server's certificate is not signed by a trusted CA: set [tfe] ca_bundle to the PEM file of the CA that issued it, or add that CA to the system trust store"
    } else if has("NotValidForName") {
        "the server's certificate does not cover the host name in [tfe] address: use the name the certificate was issued for"
    } else if has("Expired") {
        "the server's certificate has expired (or this machine's clock is wrong)"
    } else if has("NotValidYet") {
        "the server's certificate is not valid yet (check this machine's clock)"
    } else {
        "the TLS handshake failed; check [tfe] address and [tfe] ca_bundle"
    };
    Some(format!("{fix} ({text})"))
}

/// How a transport error that outlived `[tfe] request_timeout` begins
/// ([`TfeError::timed_out`]).
pub(crate) const TIMED_OUT: &str = "timed out waiting for TFE";

fn classify(e: ureq::Error) -> Failure {
    use std::io::ErrorKind as K;
    if let Some(t) = tls_explanation(&e) {
        return Failure::Tls(t);
    }
    match &e {
        ureq::Error::HostNotFound => {
            Failure::NotSent(format!("the host name does not resolve ({e})"))
        }
        ureq::Error::ConnectionFailed => Failure::NotSent(e.to_string()),
        ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
            Failure::NotSent(format!("connect timed out ({e})"))
        }
        ureq::Error::Timeout(_) => Failure::MaybeSent(format!(
            "{TIMED_OUT} ({e}); raise [tfe] request_timeout if TFE is slow"
        )),
        // getaddrinfo's failure reaches us as an I/O error with this text.
        ureq::Error::Io(io) if io.to_string().contains("failed to lookup address") => {
            Failure::NotSent(format!("the host name does not resolve ({io})"))
        }
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                K::ConnectionRefused | K::AddrNotAvailable | K::NotFound
            ) =>
        {
            Failure::NotSent(format!("connection refused ({io})"))
        }
        ureq::Error::RequireHttpsOnly(_) => Failure::Tls(
            "refusing plain http:// (set [tfe] allow_insecure_http = true for a lab)".into(),
        ),
        _ => Failure::MaybeSent(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_decisions_follow_the_table() {
        assert!(matches!(
            decide(200, Replay::IfNotProcessed),
            Decision::Done
        ));
        assert!(matches!(
            decide(429, Replay::IfNotProcessed),
            Decision::Retry
        ));
        assert!(matches!(
            decide(502, Replay::IfNotProcessed),
            Decision::Fail
        ));
        assert!(matches!(decide(502, Replay::Idempotent), Decision::Retry));
        assert!(matches!(decide(500, Replay::Idempotent), Decision::Retry));
        assert!(matches!(decide(500, Replay::SideEffect), Decision::Fail));
        assert!(matches!(decide(500, Replay::Safe), Decision::Retry));
        assert!(matches!(decide(504, Replay::SideEffect), Decision::Fail));
        assert!(matches!(decide(502, Replay::SideEffect), Decision::Fail));
        assert!(matches!(decide(503, Replay::Once), Decision::Fail));
        assert!(matches!(decide(422, Replay::Safe), Decision::Fail));
    }

    #[test]
    fn query_values_are_scrubbed_from_failures() {
        let f =
            Failure::MaybeSent("POST http://x/admin/initial-admin-user?token=a%2Fb failed".into());
        let t = f.scrubbed(&[("token", "a/b")]).text();
        assert_eq!(t, "POST http://x/admin/initial-admin-user?token=*** failed");
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(percent_encode("a b/c+d=e&f"), "a%20b%2Fc%2Bd%3De%26f");
    }
}
