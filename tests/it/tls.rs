//! TLS: a private CA generated here (rcgen) and trusted through `ca_bundle`;
//! the failures an operator meets, each explained before any HTTP request
//! is served.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tfe_bootstrap::sim::SimOptions;

use crate::util::*;

struct Pki {
    ca_pem: String,
    leaf_pem: String,
    leaf_key: String,
}

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "tfe-bootstrap test CA");
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// A CA and a leaf for `names`, issued by it.
fn pki(names: &[&str]) -> Pki {
    let ca = ca();
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    let leaf = p.signed_by(&key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf_pem: leaf.pem(),
        leaf_key: key.serialize_pem(),
    }
}

fn tls_world(cert: &str, key: &str) -> World {
    let opts = SimOptions {
        tls: Some((cert.as_bytes().to_vec(), key.as_bytes().to_vec())),
        ..sim_opts()
    };
    let w = World::new(opts);
    assert!(
        w.sim.url().starts_with("https://127.0.0.1:"),
        "{}",
        w.sim.url()
    );
    // Plain https: no insecure-http switch.
    w.edit_config("allow_insecure_http = true\n", "");
    w
}

fn trust(w: &World, ca_pem: &str) {
    let path = w.dir.path().join("ca.pem");
    std::fs::write(&path, ca_pem).unwrap();
    w.edit_config(
        "[tfe]\n",
        &format!("[tfe]\nca_bundle = \"{}\"\n", path.display()),
    );
}

#[test]
fn private_ca_through_ca_bundle_works() {
    let p = pki(&["127.0.0.1", "localhost"]);
    let w = tls_world(&p.leaf_pem, &p.leaf_key);
    trust(&w, &p.ca_pem);
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    let s = w.snapshot();
    assert_eq!(s["organizations"][0]["default-agent-pool"], "default-pool");
    assert_eq!(s["users"].as_array().unwrap().len(), 1);
}

/// The contract: ca_bundle is trusted "in addition to the system roots",
/// so the system store alone must do for a CA installed there
/// (update-ca-certificates, an image's baked-in corporate CA). Executing
/// the fleet cloud-init user-data, which sets no ca_bundle, showed the
/// client trusting only its bundled Mozilla roots without one.
#[test]
fn a_ca_in_the_system_trust_store_is_trusted_without_ca_bundle() {
    let p = pki(&["127.0.0.1", "localhost"]);
    let w = tls_world(&p.leaf_pem, &p.leaf_key);
    let store = w.dir.path().join("system-store.pem");
    std::fs::write(&store, &p.ca_pem).unwrap();
    let out = w
        .command(&["run"])
        .env("SSL_CERT_FILE", &store)
        .output_timed()
        .unwrap();
    let r = to_run(out);
    assert_code(&r, 0);
    assert_eq!(w.snapshot()["users"].as_array().unwrap().len(), 1);
}

#[test]
fn untrusted_ca_fails_before_any_request_naming_ca_bundle() {
    let p = pki(&["127.0.0.1"]);
    let w = tls_world(&p.leaf_pem, &p.leaf_key);
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("not signed by a trusted CA") && r.stderr.contains("[tfe] ca_bundle"),
        "{}",
        r.stderr
    );
    assert!(
        w.requests().is_empty(),
        "no HTTP request may be served over an unverified connection"
    );
}

#[test]
fn hostname_mismatch_is_refused() {
    let p = pki(&["tfe.other.example"]);
    let w = tls_world(&p.leaf_pem, &p.leaf_key);
    trust(&w, &p.ca_pem);
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("does not cover the host name"),
        "{}",
        r.stderr
    );
    assert!(w.requests().is_empty());
}

#[test]
fn self_signed_ca_certificate_as_server_cert_is_explained() {
    // What a plain `openssl req -x509` makes: a CA certificate served as the leaf.
    let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    let w = tls_world(&cert.pem(), &key.serialize_pem());
    trust(&w, &cert.pem());
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("itself a CA certificate") && r.stderr.contains("leaf"),
        "{}",
        r.stderr
    );
    assert!(w.requests().is_empty());
}

#[test]
fn ca_bundle_without_a_certificate_is_a_config_error() {
    let p = pki(&["127.0.0.1"]);
    let w = tls_world(&p.leaf_pem, &p.leaf_key);
    trust(&w, "not a certificate\n");
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("[tfe] ca_bundle") && r.stderr.contains("no PEM certificate"),
        "{}",
        r.stderr
    );
}

#[test]
fn tls_trouble_other_than_the_certificate_counts_as_not_ready() {
    // A port that accepts and hangs up before any TLS (a proxy still
    // booting): the handshake fails, but waiting may fix it. (A port that
    // answers in plain HTTP cannot become TLS by waiting: see
    // `hostile::https_to_a_plain_http_port_fails_fast`.)
    let w = World::new(sim_opts());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    w.edit_config(
        &format!(
            "address = \"{}\"\nallow_insecure_http = true\n",
            w.sim.url()
        ),
        &format!("address = \"https://127.0.0.1:{port}\"\n"),
    );
    w.edit_config("timeout = \"20s\"", "timeout = \"1s\"");
    let r = w.run(&["run"]);
    assert_code(&r, 3);
    assert!(
        r.stderr.contains("did not become ready") && r.stderr.contains("last:"),
        "{}",
        r.stderr
    );
}

/// Terraform CLI itself, where it is installed: it starts from the
/// discovery document, follows `tfe.v2` over TLS (the private CA through
/// SSL_CERT_FILE) and authenticates with the admin token the run wrote;
/// `terraform init` with a `cloud` block creates its workspace. Without a
/// `terraform` binary the test says it skipped (CI does not require it).
#[test]
fn terraform_cli_starts_from_the_discovery_document_over_tls() {
    let found = std::process::Command::new("terraform")
        .arg("version")
        .output();
    let Ok(out) = found else {
        external("terraform", false, "no terraform binary on PATH");
        return;
    };
    external("terraform", true, "");
    assert!(out.status.success());
    let w = localhost_tls_world();
    assert_code(&w.run(&["run"]), 0);
    let (host, work) = cloud_workdir(&w, "demo");
    let admin = w.token_at(&w.token_file());
    let rc = w.dir.path().join("terraform.rc");
    std::fs::write(
        &rc,
        format!("credentials \"{host}\" {{\n  token = \"{admin}\"\n}}\n"),
    )
    .unwrap();
    let mut init = terraform_init(&w, &work);
    init.env("TF_CLI_CONFIG_FILE", &rc);
    let (ok, text) = output_of(init);
    assert!(ok, "terraform init:\n{text}");
    assert!(text.contains("successfully initialized"), "{text}");
    let paths: Vec<(String, String, u16)> = w
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path, r.status))
        .collect();
    for want in [
        ("GET", "/.well-known/terraform.json", 200),
        ("GET", "/api/v2/organizations/my-org/entitlement-set", 200),
        ("POST", "/api/v2/organizations/my-org/workspaces", 201),
    ] {
        assert!(
            paths
                .iter()
                .any(|(m, p, s)| (m.as_str(), p.as_str(), *s) == want),
            "{want:?} not in {paths:#?}"
        );
    }
    assert_eq!(w.snapshot()["workspaces"][0]["name"], "demo");
}

/// Issue 34: the hand-off to Terraform, with the real Terraform CLI where
/// it is installed. `[terraform]` writes the owners team token into
/// `$HOME/.terraform.d/credentials.tfrc.json`, and `terraform init` with
/// that HOME and a `cloud` block (no other CLI config) creates its
/// workspace. Without a `terraform` binary the test says it skipped; the
/// file's format is checked against the docs by `day_one.rs` either way.
#[test]
fn terraform_init_works_with_the_credentials_the_run_handed_over() {
    let found = std::process::Command::new("terraform")
        .arg("version")
        .output()
        .is_ok();
    if !external("terraform", found, "no terraform binary on PATH") {
        return;
    }
    let w = localhost_tls_world().with_service_tokens();
    let home = w.dir.path().join("home");
    let mut t = w.config_text();
    t.push_str(&format!(
        "\n[terraform]\ncredentials_file = \"{}\"\n",
        home.join(".terraform.d/credentials.tfrc.json").display()
    ));
    w.write_config(&t);
    assert_code(&w.run(&["run"]), 0);
    let (_, work) = cloud_workdir(&w, "handed-over");
    let mut init = terraform_init(&w, &work);
    init.env("HOME", &home).env_remove("TF_CLI_CONFIG_FILE");
    let (ok, text) = output_of(init);
    assert!(ok, "terraform init:\n{text}");
    assert_eq!(w.snapshot()["workspaces"][0]["name"], "handed-over");
}

/// `terraform init` in `work`, trusting the world's CA, with no token from
/// the environment: the caller says where the credentials come from.
fn terraform_init(w: &World, work: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new("terraform");
    c.args(["init", "-input=false", "-no-color"])
        .current_dir(work)
        .env("SSL_CERT_FILE", w.dir.path().join("ca.pem"))
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .env_remove("TF_TOKEN_localhost")
        .stdin(std::process::Stdio::null());
    c
}

/// Whether `c` succeeded, and its stdout and stderr.
fn output_of(mut c: std::process::Command) -> (bool, String) {
    let out = c.output_timed().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A Terraform working directory with a `cloud` block for the world's TFE,
/// organization my-org and `workspace`; the host it names.
fn cloud_workdir(w: &World, workspace: &str) -> (String, std::path::PathBuf) {
    let host = w.sim.url().trim_start_matches("https://").to_string();
    let work = w.dir.path().join("tf");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("main.tf"),
        format!(
            "terraform {{\n  cloud {{\n    hostname = \"{host}\"\n    organization = \"my-org\"\n    workspaces {{ name = \"{workspace}\" }}\n  }}\n}}\n"
        ),
    )
    .unwrap();
    (host, work)
}

/// A world whose TFE serves HTTPS as `localhost`, with a certificate of a
/// private CA the config trusts (Terraform CLI trusts it through
/// SSL_CERT_FILE).
fn localhost_tls_world() -> World {
    let pki = pki(&["localhost"]);
    let w = World::new(SimOptions {
        tls: Some((
            pki.leaf_pem.as_bytes().to_vec(),
            pki.leaf_key.as_bytes().to_vec(),
        )),
        hostname: Some("localhost".into()),
        ..sim_opts()
    });
    w.edit_config("allow_insecure_http = true\n", "");
    trust(&w, &pki.ca_pem);
    w
}
