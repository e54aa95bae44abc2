//! The IACT behind a load balancer (issue 34, item 3). TFE decides the
//! IACT subnet on the address it sees; behind a balancer that is the
//! balancer's, unless TFE trusts it (TFE_IACT_TRUSTED_PROXIES, see
//! `tfe_bootstrap::sim` `tfe::boot::iact_client` for the sources). Here the
//! balancer listens on 127.0.0.2 and connects to tfe-sim from 127.0.0.2,
//! as a real one connects from its own address, adding the client's
//! address in `X-Forwarded-For`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::FromRawFd;

use super::util::*;
use tfe_bootstrap::sim::SimOptions;

/// The balancer's own address, front and back.
const LB: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A TCP connection to `to` from `from` (bind before connect, which std
/// cannot do: without it the kernel picks 127.0.0.1 for any loopback
/// destination).
fn connect_from(from: Ipv4Addr, to: SocketAddrV4) -> std::io::Result<TcpStream> {
    let sockaddr = |a: SocketAddrV4| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, owned by the TcpStream from here on (closed
    // on drop); the sockaddr_in values outlive the calls that read them.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let src = sockaddr(SocketAddrV4::new(from, 0));
        if libc::bind(fd, (&src as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let dst = sockaddr(to);
        if libc::connect(fd, (&dst as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// Starts the balancer in front of `upstream`; returns its URL.
fn balancer(upstream: &str) -> String {
    let SocketAddr::V4(to) = upstream
        .trim_start_matches("http://")
        .parse::<SocketAddr>()
        .expect("the sim listens on an IPv4 address")
    else {
        panic!("IPv4 upstream expected: {upstream}");
    };
    let listener = TcpListener::bind((LB, 0)).expect("bind 127.0.0.2");
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            std::thread::spawn(move || forward(client, to));
        }
    });
    url
}

/// One client connection: each request's head gains `X-Forwarded-For`
/// (the client's address), its body follows by Content-Length; answers
/// flow back untouched.
fn forward(client: TcpStream, to: SocketAddrV4) {
    let Ok(mut up) = connect_from(LB, to) else {
        return;
    };
    let from = client.peer_addr().map(|a| a.ip().to_string()).unwrap();
    let (mut back, mut down) = (up.try_clone().unwrap(), client.try_clone().unwrap());
    std::thread::spawn(move || std::io::copy(&mut back, &mut down));
    let mut reader = BufReader::new(client);
    loop {
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = up.shutdown(std::net::Shutdown::Write);
                return;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                head.push_str(&format!("X-Forwarded-For: {from}\r\n\r\n"));
                break;
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err()
            || up.write_all(head.as_bytes()).is_err()
            || up.write_all(&body).is_err()
        {
            return;
        }
    }
}

/// A world whose config reaches tfe-sim through the balancer, asking for
/// the IACT over the API from this host's 127.0.0.1, the one address TFE
/// allows (TFE_IACT_SUBNETS=127.0.0.1/32).
fn behind_balancer(trusted: &[&str]) -> World {
    let w = World::new(SimOptions {
        iact_subnets: vec!["127.0.0.1/32".parse().unwrap()],
        iact_trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
        ..sim_opts()
    });
    let lb = balancer(w.sim.url());
    w.edit_config(
        &format!("address = \"{}\"", w.sim.url()),
        &format!("address = \"{lb}\""),
    );
    w.edit_config(
        "source = \"auto\"\nsubnets = [\"127.0.0.0/8\"]",
        "source = \"api\"\nsubnets = [\"127.0.0.1/32\"]",
    );
    w
}

#[test]
fn an_untrusted_balancer_is_named_with_the_setting_to_change() {
    let w = behind_balancer(&[]);
    let want = |text: &str| {
        for words in [
            "This host asks from 127.0.0.1",
            "a load balancer or proxy at 127.0.0.2",
            "TFE_IACT_TRUSTED_PROXIES",
        ] {
            assert!(text.contains(words), "{words:?} missing in:\n{text}");
        }
    };
    // validate --preflight says it before anything is created.
    let p = w.run(&["validate", "--preflight"]);
    assert_code(&p, 4);
    want(&p.both());
    assert!(p.stdout.contains("tfe"), "{}", p.stdout);
    // The run stops at the IACT with the same words, and no admin exists.
    let r = w.run(&["run"]);
    assert_code(&r, 4);
    want(&r.stderr);
    assert_eq!(w.snapshot()["users"].as_array().unwrap().len(), 0);
    w.assert_no_secrets(&p);
    w.assert_no_secrets(&r);
}

/// What this shows is the client working through a proxy that TFE trusts;
/// that TFE then judges the `X-Forwarded-For` address is tfe-sim's model
/// (unconfirmed, see `iact_client`), not something this test can prove.
#[test]
fn a_trusted_balancer_passes_this_hosts_address_through() {
    let w = behind_balancer(&["127.0.0.2/32"]);
    let p = w.run(&["validate", "--preflight"]);
    assert_code(&p, 0);
    assert!(
        p.stdout.contains("asked from 127.0.0.1"),
        "preflight names the address TFE judged:\n{}",
        p.stdout
    );
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(
        r.both().contains("obtained from the HTTP API"),
        "{}",
        r.both()
    );
    assert_eq!(w.snapshot()["users"].as_array().unwrap().len(), 1);
    assert!(w.assert_token_files_work() >= 1);
    w.assert_no_secrets(&r);
}

/// The model itself (its sources at `iact_client`): `X-Forwarded-For` from
/// an untrusted peer is ignored, and a client cannot slip an address in
/// ahead of the one the trusted proxy appended.
#[test]
fn the_sim_believes_x_forwarded_for_only_from_a_trusted_proxy() {
    let status = |trusted: &[&str], forwarded: &str| {
        let sim = tfe_bootstrap::sim::Sim::start(SimOptions {
            iact_subnets: vec!["10.0.0.0/8".parse().unwrap()],
            iact_trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
            ..sim_opts()
        })
        .unwrap();
        let mut conn = TcpStream::connect(sim.url().trim_start_matches("http://")).unwrap();
        write!(
            conn,
            "GET /admin/retrieve-iact HTTP/1.1\r\nHost: tfe\r\nX-Forwarded-For: {forwarded}\r\n\
             Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        answer.split(' ').nth(1).unwrap_or("").to_string()
    };
    assert_eq!(
        status(&[], "10.1.2.3"),
        "401",
        "untrusted peer: its own address counts"
    );
    assert_eq!(
        status(&["127.0.0.1/32"], "10.1.2.3"),
        "200",
        "trusted proxy"
    );
    assert_eq!(
        status(&["127.0.0.1/32"], "10.1.2.3, 192.168.1.1"),
        "401",
        "the rightmost untrusted entry counts"
    );
}

/// In a fleet a refusal is not the end: another node may create the admin
/// and share its token through the store, so preflight says so and passes
/// (the refusal's words still name the balancer).
#[test]
fn a_fleet_node_behind_an_untrusted_balancer_is_told_not_failed() {
    let w = behind_balancer(&[]);
    let store = w.dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let mut t = w.config_text();
    t.push_str(&format!(
        "\n[store]\ncommand = [\"{}\", \"{}\"]\n",
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts/store/file")
            .display(),
        store.display()
    ));
    w.write_config(&t);
    let p = w.run(&["validate", "--preflight"]);
    assert_code(&p, 0);
    assert!(
        p.stdout.contains("TFE_IACT_TRUSTED_PROXIES")
            && p.stdout.contains("another node may create the admin"),
        "{}",
        p.stdout
    );
}
