//! `tfe-sim`: a simulated fresh Terraform Enterprise install on loopback.
//! Prints its base URL as the first line of stdout, then serves until killed.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ipnet::IpNet;
use tfe_bootstrap::config::duration::parse_duration;
use tfe_bootstrap::sim::faults::FaultRule;
use tfe_bootstrap::sim::{Sim, SimOptions};

/// A faithful stand-in for a freshly installed Terraform Enterprise, for tests,
/// benchmarks and demos of tfe-bootstrap. Listens on loopback only.
///
/// Introspection: GET /_sim/state (settings, users, organizations, pools, TTL
/// policies, test mails, request log); POST /_sim/faults (rules, one per line);
/// POST /_sim/release (let a paused request go on).
#[derive(Parser, Debug)]
#[command(name = "tfe-sim", version, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,

    /// Address to listen on; must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// PEM certificate chain: serve HTTPS (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Host name to print in the base URL instead of the listen IP.
    #[arg(long)]
    hostname: Option<String>,
    /// Keep the port closed (connection refused) for this long, e.g. "3s".
    #[arg(long, value_parser = dur, default_value = "0s")]
    listen_after: Duration,
    /// Answer readiness with 503 (and the API with 503) for this long after start.
    #[arg(long, value_parser = dur, default_value = "0s")]
    ready_after: Duration,
    /// Behave like TFE < 1.2: /api/v1/health/readiness is 404, /_health_check answers 200/502.
    #[arg(long)]
    legacy_health: bool,
    /// The Initial Admin Creation Token (as TFE_IACT_TOKEN); random when not given.
    #[arg(long, env = "TFE_SIM_IACT", hide_env_values = true)]
    iact: Option<String>,
    /// CIDRs allowed to GET /admin/retrieve-iact (as TFE_IACT_SUBNETS), comma-separated.
    #[arg(long, value_delimiter = ',')]
    iact_subnets: Vec<IpNet>,
    /// Proxy addresses (CIDRs) whose X-Forwarded-For is believed for the
    /// IACT subnet check (as TFE_IACT_TRUSTED_PROXIES), comma-separated.
    #[arg(long, value_delimiter = ',')]
    iact_trusted_proxies: Vec<IpNet>,
    /// Minutes after start during which /admin/retrieve-iact answers, or "unlimited".
    #[arg(long, default_value = "60")]
    iact_time_limit: String,
    /// Start with a site-admin user that has this API token (an install that already has users).
    #[arg(long)]
    existing_admin_token: Option<String>,
    /// Add a non-admin user with this API token (repeatable).
    #[arg(long)]
    user_token: Vec<String>,
    /// Behave as HCP Terraform: /api/v2/ping answers, no admin API, no IACT,
    /// no health endpoints; organizations belong to the tokens of --org.
    #[arg(long)]
    hcp: bool,

    /// Enforce TFE's per-user API rate limit (general settings'
    /// api-rate-limit, 30 requests per second by default): 429 with
    /// X-RateLimit-Limit and X-RateLimit-Reset past it.
    #[arg(long)]
    rate_limit: bool,
    /// Let a site admin read and set every organization's token TTL
    /// policies (unconfirmed; by default only the owners team may).
    #[arg(long)]
    site_admin_owns_orgs: bool,
    /// The tokens given at start (--admin-token, --user-token, --org) carry
    /// no expiry, as after an upgrade from TFE 1.x.
    #[arg(long)]
    tokens_without_expiry: bool,
    /// An organization that exists at start, owned by the user holding
    /// TOKEN (created as a non-admin user when new): ORG=TOKEN (repeatable).
    #[arg(long = "org", value_parser = org_owner)]
    orgs: Vec<(String, String)>,
    /// Make every SMTP test mail fail with this status: 401 (bad credentials), 500 or 504.
    #[arg(long)]
    smtp_fail: Option<u16>,
    /// Scripted fault `KIND=ARG:ACTION[*COUNT]` (repeatable). KIND: seq, mutating, path, get,
    /// post, patch, put. ACTION: a status code, 429=SECS, drop, stall=DUR, pause, pause-drop, pause-after.
    /// Example: --fault mutating=2:drop --fault path=/api/v2/ping:503*3
    #[arg(long = "fault", value_parser = FaultRule::parse)]
    faults: Vec<FaultRule>,
    /// Fail this fraction of requests with a random transient fault (0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Seed for --fault-rate and generated ids.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How long a "stall" fault holds a request.
    #[arg(long, value_parser = dur, default_value = "2s")]
    stall: Duration,
    /// The release to follow, by its docs: 2.0.1 (today), 2.0.0, 1.x,
    /// vYYYYMM-N (monthly, e.g. v202309-1), or ptfe-settings-page (the
    /// undocumented older settings shape; no version header). README has
    /// the table.
    #[arg(long, default_value = "2.0.1")]
    tfe_version: String,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Print the IACT of a running simulator, like `tfectl admin token` does
    /// inside a TFE container (for the `command` IACT source).
    Iact {
        /// Base URL of the simulator (plain HTTP, loopback).
        #[arg(long)]
        url: String,
    },
}

fn dur(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Cmd::Iact { url }) = args.cmd {
        return print_iact(&url);
    }
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "tfe-sim: --listen must be a loopback address (got {})",
            args.listen
        );
        return ExitCode::from(2);
    }
    if !(0.0..=1.0).contains(&args.fault_rate) {
        eprintln!("tfe-sim: --fault-rate must be between 0.0 and 1.0");
        return ExitCode::from(2);
    }
    let iact_time_limit = if args.iact_time_limit == "unlimited" {
        None
    } else {
        match args.iact_time_limit.parse::<u64>() {
            Ok(m) => Some(Duration::from_secs(m * 60)),
            Err(_) => {
                eprintln!("tfe-sim: --iact-time-limit takes minutes or \"unlimited\"");
                return ExitCode::from(2);
            }
        }
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => match (std::fs::read(c), std::fs::read(k)) {
            (Ok(c), Ok(k)) => Some((c, k)),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("tfe-sim: cannot read the TLS certificate or key: {e}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    let opts = SimOptions {
        listen: args.listen,
        tls,
        hostname: args.hostname,
        listen_after: args.listen_after,
        ready_after: args.ready_after,
        legacy_health: args.legacy_health,
        iact: args.iact,
        iact_subnets: args.iact_subnets,
        iact_trusted_proxies: args.iact_trusted_proxies,
        iact_time_limit,
        existing_admin_token: args.existing_admin_token,
        user_tokens: args.user_token,
        hcp: args.hcp,
        rate_limit: args.rate_limit,
        site_admin_owner: args.site_admin_owns_orgs,
        tokens_without_expiry: args.tokens_without_expiry,
        // Held boots are for in-process tests, which release them.
        hold_ready: false,
        hold_port: false,
        owned_orgs: args.orgs,
        smtp_fail: args.smtp_fail,
        faults: args.faults,
        fault_rate: args.fault_rate,
        seed: args.seed,
        stall: args.stall,
        version: args.tfe_version,
    };
    let sim = match Sim::start(opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tfe-sim: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    println!("{}", sim.url());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}

/// The `tfectl admin token` stand-in: reads the IACT through /_sim/state's
/// sibling endpoint on loopback and prints only the token.
fn print_iact(url: &str) -> ExitCode {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    match agent
        .get(format!("{}/_sim/iact", url.trim_end_matches('/')))
        .call()
    {
        Ok(mut r) if r.status() == 200 => match r.body_mut().read_to_string() {
            Ok(t) => {
                println!("{t}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tfe-sim iact: {e}");
                ExitCode::from(1)
            }
        },
        Ok(r) => {
            eprintln!("tfe-sim iact: the simulator answered {}", r.status());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("tfe-sim iact: cannot reach {url}: {e}");
            ExitCode::from(1)
        }
    }
}

/// `ORG=TOKEN` for `--org`.
fn org_owner(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((org, token)) if !org.is_empty() && !token.is_empty() => {
            Ok((org.to_string(), token.to_string()))
        }
        _ => Err(format!("{s:?} is not ORG=TOKEN")),
    }
}
