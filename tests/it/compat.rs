//! What an earlier release left behind still works (issue 32): a state
//! directory and a `[store]` written by tfe-bootstrap 0.1.0 at commit
//! 8ea05cb (`tests/fixtures/compat-0.1.0`, made by
//! `scripts/compat-fixture.sh` with that release's binaries).
//!
//! - Each node's state resumes with no request at all: the state file's
//!   field names still parse, and every checkpoint fingerprint still
//!   matches the config.
//! - A fresh run under the same salts checkpoints the same fingerprints
//!   and writes the same `[store]` keys, with values of the same form: old
//!   and new nodes name every duty alike during a rolling upgrade.
//!
//! The fixture was made under fixed paths and a fixed loopback address,
//! because token file paths and the TFE address enter the fingerprints;
//! a lock keeps two runs of this test apart.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tfe_bootstrap::sim::{Sim, SimOptions};

use crate::util::{Within, assert_code, bootstrap_command, sim_opts, to_run};

const BASE: &str = "/tmp/tfe-bootstrap-compat";
const ADDRESS: &str = "127.0.0.77:18080";
const NODES: [&str; 2] = ["node1", "node2"];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compat-0.1.0")
}

fn private(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The fixture's config for `node`, as `scripts/compat-fixture.sh` wrote it.
fn write_configs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmpl = std::fs::read_to_string(root.join("tests/fixtures/compat.toml.in")).unwrap();
    for n in NODES {
        let text = tmpl.replace("@BASE@", BASE).replace("@NODE@", n).replace(
            "@STORE@",
            &root.join("scripts/store/file").display().to_string(),
        );
        let f = Path::new(BASE).join(format!("{n}.toml"));
        std::fs::write(&f, text).unwrap();
        private(&f, 0o600);
    }
}

fn start_sim() -> Sim {
    Sim::start(SimOptions {
        listen: ADDRESS.parse().unwrap(),
        iact: Some("compat-iact".into()),
        ..sim_opts()
    })
    .unwrap_or_else(|e| panic!("tfe-sim cannot listen on {ADDRESS} ({e}): is it taken?"))
}

fn run(node: &str) -> crate::util::Run {
    let mut c = bootstrap_command(&["run"], &Path::new(BASE).join(format!("{node}.toml")));
    c.env("T_ADMIN_PASSWORD", "compat-admin-pw")
        .env("T_SMTP_PASSWORD", "compat-smtp-pw");
    to_run(c.output_timed().unwrap())
}

fn state_of(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap()).unwrap()
}

fn store_dir(root: &Path) -> PathBuf {
    root.join("store").join(ADDRESS.replace(':', "_"))
}

/// Every `[store]` key with its value.
fn store(root: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(store_dir(root))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let v = std::fs::read_to_string(e.path()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), v)
        })
        .collect()
}

/// The form of a `[store]` value, with what differs from run to run (tokens,
/// ids, times, pids) left out.
fn form(key: &str, value: &str) -> String {
    let words: Vec<&str> = value.split_whitespace().collect();
    let shape = |w: &str| -> &'static str {
        if w.chars().all(|c| c.is_ascii_digit()) {
            "N"
        } else if w == "-" {
            "-"
        } else if w.len() == 16 && w.chars().all(|c| c.is_ascii_hexdigit()) {
            "HEX16"
        } else if w.contains(".atlasv1.") {
            "TOKEN"
        } else if w.starts_with("at-") {
            "ID"
        } else {
            "W"
        }
    };
    if key.starts_with("applied-") || key.starts_with("done-") {
        return value.to_string();
    }
    if key.starts_with("duty-") {
        // `HOST pid PID at TIME`
        return format!("{} {} {}", words[1], shape(words[2]), words[3]);
    }
    if key == "salt" {
        return "SALT".into();
    }
    words.iter().map(|w| shape(w)).collect::<Vec<_>>().join(" ")
}

/// Lays the fixture out where it was made. `whole`: the state files and
/// the store as the release left them; otherwise only their salts (a
/// first run under the same salts).
fn lay_out(whole: bool) {
    let _ = std::fs::remove_dir_all(BASE);
    let fx = fixture();
    for n in NODES {
        let state = Path::new(BASE).join(n).join("state");
        std::fs::create_dir_all(&state).unwrap();
        private(&state, 0o700);
        let mut st = state_of(&fx.join(n));
        if whole {
            for f in ["admin-token", "org-token", "owners-token", "agent-token"] {
                let to = Path::new(BASE).join(n).join(f);
                std::fs::copy(fx.join(n).join(f), &to).unwrap();
                private(&to, 0o600);
            }
            // The files stand where the release left them: a copy is a new
            // inode, so their stamps are taken again (the stamp itself is
            // the release's, `tokens::stamp`).
            let verified = st["facts"]["verified"].as_object_mut().unwrap();
            for (path, stamp) in verified.iter_mut() {
                *stamp = Value::String(tfe_bootstrap::tokens::stamp(Path::new(path)));
            }
        } else {
            st = serde_json::json!({
                "format": st["format"],
                "tfe_address": st["tfe_address"],
                "salt": st["salt"],
                "steps": {},
            });
        }
        let f = state.join("state.json");
        std::fs::write(&f, serde_json::to_string_pretty(&st).unwrap()).unwrap();
        private(&f, 0o600);
    }
    let to = store_dir(Path::new(BASE));
    std::fs::create_dir_all(&to).unwrap();
    private(to.parent().unwrap(), 0o700);
    private(&to, 0o700);
    for (k, v) in store(&fx) {
        if whole || k == "salt" {
            std::fs::write(to.join(&k), v).unwrap();
        }
    }
    write_configs();
}

/// One lock for both phases: the fixture's paths are fixed.
fn exclusive() -> std::fs::File {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::create("/tmp/tfe-bootstrap-compat.lock").unwrap();
    // SAFETY: flock on a descriptor this function owns and keeps open.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock /tmp/tfe-bootstrap-compat.lock");
    f
}

#[test]
fn a_state_and_store_of_the_last_release_resume_with_no_request_and_the_same_names() {
    let _lock = exclusive();
    let fx = fixture();

    // 1. Resume: both nodes, as the release left them, send nothing.
    lay_out(true);
    let sim = start_sim();
    for n in NODES {
        let r = run(n);
        assert_code(&r, 0);
        assert!(
            r.stdout.contains("0 applied"),
            "{n}: a resumed node applies nothing:\n{}",
            r.both()
        );
        assert!(
            sim.requests().is_empty(),
            "{n}: a resumed node sends no request, sent {:?}",
            sim.requests()
        );
    }
    drop(sim);

    // 2. The same names: a first run under the release's salts (two nodes,
    // one store) checkpoints the release's fingerprints and writes its keys.
    lay_out(false);
    let sim = start_sim();
    for n in NODES {
        let r = run(n);
        assert_code(&r, 0);
        let old = state_of(&fx.join(n));
        let new = state_of(&Path::new(BASE).join(n).join("state"));
        let fps = |s: &Value| -> BTreeMap<String, String> {
            s["steps"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, c)| (k.clone(), c["fingerprint"].as_str().unwrap().to_string()))
                .collect()
        };
        assert_eq!(fps(&new), fps(&old), "{n}: checkpoint fingerprints");
    }
    let forms = |root: &Path| -> BTreeMap<String, String> {
        store(root)
            .into_iter()
            .map(|(k, v)| {
                let f = form(&k, &v);
                (k, f)
            })
            .collect()
    };
    assert_eq!(
        forms(Path::new(BASE)),
        forms(&fx),
        "[store] keys and the form of their values"
    );
    // One admin, one organization: the second node followed the first.
    let snap = sim.snapshot();
    assert_eq!(snap["organizations"].as_array().map(Vec::len), Some(1));
    drop(sim);
    let _ = std::fs::remove_dir_all(BASE);
}
