//! The shipped examples work as written: every file an example names
//! exists in the repository, is written by the example itself, or is an
//! input it documents as a variable; every config an example carries
//! passes `validate`. (Packer itself cannot run here; the cloud-init
//! configs also run against tfe-sim in `ops.rs` and `fleet.rs`.)

use std::path::Path;

use crate::util::*;

fn repo(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn read(p: &str) -> String {
    std::fs::read_to_string(repo(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// `validate` on `text` as a config file, with no secret in the
/// environment (as in an image build): exit 0.
fn validates(text: &str, what: &str) {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("config.toml");
    std::fs::write(&cfg, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = std::process::Command::new(bin())
        .args(["validate", "--config"])
        .arg(&cfg)
        .env_remove("TFE_BOOTSTRAP_CONFIG")
        .output_timed()
        .unwrap();
    let r = to_run(out);
    assert_code(&r, 0);
    assert!(r.stdout.contains("is valid"), "{what}: {}", r.both());
}

/// Every `config/*.toml` passes `validate` as shipped.
#[test]
fn every_example_config_validates_as_shipped() {
    let mut n = 0;
    for e in std::fs::read_dir(repo("config")).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "toml") {
            validates(
                &std::fs::read_to_string(&p).unwrap(),
                &p.display().to_string(),
            );
            n += 1;
        }
    }
    assert!(n >= 5, "only {n} configs");
    // The Kubernetes ConfigMap's config (its indented block), without the
    // tools tests/it/kubernetes.rs needs.
    let yaml = read("scripts/kubernetes/config.yaml");
    let start = yaml
        .find("tfe-bootstrap.toml: |")
        .expect("the ConfigMap's config");
    let toml: Vec<&str> = yaml[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .map(|l| l.strip_prefix("    ").unwrap_or(""))
        .collect();
    validates(&toml.join("\n"), "scripts/kubernetes/config.yaml");
}

/// The Packer template: every variable it uses is declared with a
/// description, every source it builds is defined, every file it uploads is
/// a variable whose default exists in the repository or is what
/// `scripts/release.sh` builds, and the config it bakes in validates.
#[test]
fn the_packer_template_names_only_files_that_exist_or_are_inputs() {
    let hcl = read("scripts/packer/tfe-bootstrap.pkr.hcl");
    // Variables: declared, described.
    let declared: Vec<String> = hcl
        .lines()
        .filter_map(|l| l.trim().strip_prefix("variable \""))
        .map(|r| r.split('"').next().unwrap().to_string())
        .collect();
    for (i, _) in hcl.match_indices("var.") {
        let name: String = hcl[i + 4..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            declared.contains(&name),
            "var.{name} is used but not declared"
        );
    }
    for v in &declared {
        let block = &hcl[hcl.find(&format!("variable \"{v}\"")).unwrap()..];
        let block = &block[..block.find("\n}").unwrap()];
        assert!(
            block.contains("description"),
            "variable {v} has no description"
        );
    }
    // Sources: every one built is defined.
    for (i, _) in hcl.match_indices("source.amazon-ebs.") {
        let name: String = hcl[i + 18..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        assert!(
            hcl.contains(&format!("source \"amazon-ebs\" \"{name}\"")),
            "source.amazon-ebs.{name} is built but not defined"
        );
    }
    // Uploaded files: only variables and locals, never a literal path.
    let build = &hcl[hcl.find("\nbuild {").expect("a build block")..];
    for l in build
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("source "))
    {
        let v = l.split('=').nth(1).unwrap_or("").trim();
        assert!(
            v.starts_with("var.") || v.starts_with("local."),
            "a file provisioner uploads a literal path: {l}"
        );
    }
    // The defaults: the config exists and validates; the package is what
    // release.sh writes.
    let default = |v: &str| -> String {
        let block = &hcl[hcl.find(&format!("variable \"{v}\"")).unwrap()..];
        let line = block
            .lines()
            .find(|l| l.trim().starts_with("default"))
            .unwrap();
        line.split('"').nth(1).unwrap().to_string()
    };
    let config = default("config_file");
    validates(&read(&config), &config);
    assert!(hcl.contains("\"dist/tfe-bootstrap-${var.version}-1.${var.arch}.rpm\""));
    let release = read("scripts/release.sh");
    assert!(
        release.contains("tfe-bootstrap-\"$version\"-1.\"$arch\".rpm"),
        "release.sh no longer writes the .rpm the template installs"
    );
    assert_eq!(default("version"), env!("CARGO_PKG_VERSION"));
    // The unit it enables (through provision.sh, the script both the AMI
    // build and the tests' null build run) is the one the packages install.
    assert!(read("scripts/packer/provision.sh").contains("systemctl enable tfe-bootstrap.service"));
    assert!(repo("scripts/systemd/tfe-bootstrap.service").exists());
}

/// The cloud-init examples: every file their config reads (the CA, the
/// store helper, the env file) is written by the example itself, the
/// binary is installed from a release tarball checked against SHA256SUMS,
/// and the config validates.
#[test]
fn the_cloud_init_examples_write_every_file_they_name() {
    for name in ["user-data.yaml", "fleet-user-data.yaml"] {
        let yaml = read(&format!("scripts/cloud-init/{name}"));
        assert!(yaml.starts_with("#cloud-config\n"), "{name}");
        assert!(!yaml.contains('\t'), "{name}: YAML has a tab");
        let toml_text = cloud_init_toml(&yaml);
        // Files the config reads, and how the example writes each.
        let mut reads: Vec<String> = vec![];
        for l in toml_text.lines() {
            let l = l.trim();
            if let Some(p) = l.strip_prefix("ca_bundle = ") {
                reads.push(p.trim_matches('"').to_string());
            }
            if let Some(c) = l.strip_prefix("command = [") {
                reads.push(c.split('"').nth(1).unwrap().to_string());
            }
        }
        for p in &reads {
            let dir = Path::new(p).parent().unwrap().display().to_string();
            let written = yaml.contains(&format!("> {p}"))
                || yaml.contains(&format!("path: {p}"))
                || (p.contains("/store/") && yaml.contains(&format!("/store/* {dir}/")));
            assert!(written, "{name}: nothing writes {p}");
        }
        for l in yaml.lines().filter(|l| l.contains("ETCDCTL_CACERT=")) {
            let p = l.split('=').nth(1).unwrap().trim();
            assert!(
                yaml.contains(&format!("> {p}")),
                "{name}: nothing writes {p}"
            );
        }
        // The binary: installed from the release, verified.
        for must in [
            "TFE_BOOTSTRAP_BASE_URL=",
            "sha256sum -c --ignore-missing SHA256SUMS",
            "install -m 0755 \"$tmp/$name/tfe-bootstrap\" /usr/local/bin/tfe-bootstrap",
            "/usr/local/bin/tfe-bootstrap run --config /etc/tfe-bootstrap/config.toml",
        ] {
            assert!(yaml.contains(must), "{name} lacks {must:?}");
        }
        // The tarball holds what the example installs from it.
        let release = read("scripts/release.sh");
        assert!(release.contains("install -m 0755 scripts/store/* \"$d/store/\""));
        // The config validates (its CA replaced by one that exists here).
        let d = tempfile::tempdir().unwrap();
        let ca = d.path().join("ca.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["tfe.example.com".into()]).unwrap();
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        let text = toml_text.replace("/etc/tfe-bootstrap/ca.pem", &ca.display().to_string());
        validates(&text, name);
    }
}

/// The renew unit runs `renew` with the run unit's hardening, line for
/// line, and its timer fires daily with a randomized delay.
#[test]
fn the_renew_units_share_the_run_units_hardening() {
    let hardening = |text: &str| {
        let from = text.find("# Root, without capabilities").unwrap();
        let to = text.find("[Install]").unwrap_or(text.len());
        text[from..to].trim().to_string()
    };
    let run = read("scripts/systemd/tfe-bootstrap.service");
    let renew = read("scripts/systemd/tfe-bootstrap-renew.service");
    assert_eq!(hardening(&run), hardening(&renew));
    assert!(renew.contains(
        "ExecStart=/usr/local/bin/tfe-bootstrap renew --config /etc/tfe-bootstrap/config.toml"
    ));
    let timer = read("scripts/systemd/tfe-bootstrap-renew.timer");
    for must in ["OnCalendar=daily", "RandomizedDelaySec=", "Persistent=true"] {
        assert!(timer.contains(must), "timer lacks {must}");
    }
}

/// The unit's exposure as `systemd-analyze security` scores it stays at
/// what README reports (1.7 "OK"; at most 2.0), and it still runs the
/// binary the way the contract says.
#[test]
fn the_systemd_unit_is_hardened() {
    let unit = read("scripts/systemd/tfe-bootstrap.service");
    assert!(unit.contains("EnvironmentFile=-/etc/tfe-bootstrap/env"));
    assert!(unit.contains("CapabilityBoundingSet=\n"));
    if !tools_present(
        &["systemd-analyze"],
        "TFE_BOOTSTRAP_REQUIRE_SYSTEMD",
        "apt-get install systemd",
    ) {
        println!("SKIPPED the_systemd_unit_is_hardened: systemd-analyze is not installed");
        return;
    }
    let exposure = |unit: &str| -> f64 {
        let out = std::process::Command::new("systemd-analyze")
            .args(["security", "--offline=true"])
            .arg(repo(&format!("scripts/systemd/{unit}")))
            .output_timed()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.split(&format!("{unit}: ")).nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no overall exposure for {unit} in:\n{text}"))
    };
    let score = exposure("tfe-bootstrap.service");
    assert!(score <= 2.0, "exposure {score}");
    let renew = exposure("tfe-bootstrap-renew.service");
    assert!(
        renew <= score,
        "the renew unit's exposure {renew} exceeds {score}"
    );
    assert!(
        read("README.md").contains(&format!("exposure {score:.1}")),
        "README reports another exposure than {score:.1}"
    );
}

/// The two cloud-init user-data files, executed by cloud-init itself
/// (`scripts/cloud-init/run-example.sh`: NoCloud seed, the init, config
/// and final stages, in throwaway network and mount namespaces) against
/// tfe-sim, with the release served over HTTPS, secrets from a Secrets
/// Manager emulator and the fleet's store in a real etcd. Root only.
#[test]
fn the_cloud_init_user_data_runs_under_cloud_init() {
    if !as_root()
        || !tools_present(
            &[
                "cloud-init",
                "etcd",
                "aws",
                "moto_server",
                "openssl",
                "curl",
            ],
            "TFE_BOOTSTRAP_REQUIRE_CLOUD_INIT",
            "apt-get install cloud-init etcd-server etcd-client; pip install awscli 'moto[server]'",
        )
    {
        return;
    }
    runner_says(
        "scripts/cloud-init/run-example.sh",
        &[
            "user-data.yaml: installed, config 0600, bootstrap done",
            "user-data.yaml: a second boot of the same instance does nothing",
            "fleet-user-data.yaml: two instances at once against one etcd",
            "fleet-user-data.yaml: a second boot of the same instance does nothing",
        ],
    );
}

/// `packer validate` of the shipped template, with Debian's Packer (1.6):
/// the template beside the tests' null build (symlinks, not copies: see
/// scripts/packer/README.md), as scripts/packer/run-example.sh builds it
/// (that build needs the release's .deb: scripts/release-check.sh runs it).
#[test]
fn the_packer_template_validates_with_packer_itself() {
    if !tools_present(
        &["packer"],
        "TFE_BOOTSTRAP_REQUIRE_PACKER",
        "apt-get install packer",
    ) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    for f in [
        "scripts/packer/tfe-bootstrap.pkr.hcl",
        "tests/fixtures/packer/null.pkr.hcl",
    ] {
        let name = Path::new(f).file_name().unwrap();
        std::os::unix::fs::symlink(repo(f), d.path().join(name)).unwrap();
    }
    // The package is an input (scripts/release.sh builds it; a clean
    // checkout has no dist/): validate checks that the file exists.
    let package = d.path().join("tfe-bootstrap.deb");
    std::fs::write(&package, "").unwrap();
    let out = std::process::Command::new("packer")
        .args([
            "validate",
            "-var",
            "source_ami=ami-0123456789abcdef0",
            "-var",
        ])
        .arg(format!("package={}", package.display()))
        .arg(d.path())
        .current_dir(repo(""))
        .output_timed()
        .unwrap();
    let r = to_run(out);
    assert_code(&r, 0);
    // The provisioning is one script both builds run, and it exists.
    let shipped = read("scripts/packer/tfe-bootstrap.pkr.hcl");
    let null = read("tests/fixtures/packer/null.pkr.hcl");
    for hcl in [&shipped, &null] {
        assert!(hcl.contains("script           = \"scripts/packer/provision.sh\""));
    }
    assert!(repo("scripts/packer/provision.sh").exists());
    assert!(read("scripts/packer/plugins.pkr.hcl").contains("github.com/hashicorp/amazon"));
}

/// The shipped units' ExecStart lines as written, with their
/// EnvironmentFile, StateDirectory and UMask, against tfe-sim on
/// https://tfe.example.com (`scripts/units-check.sh`, throwaway root; no
/// systemd runs here, so each line is read from its unit and run). Root only.
#[test]
fn the_units_execstart_lines_run_as_written() {
    if !as_root()
        || !tools_present(
            &["openssl", "curl", "unshare"],
            "TFE_BOOTSTRAP_REQUIRE_ROOT",
            "apt-get install openssl curl util-linux",
        )
    {
        return;
    }
    runner_says(
        "scripts/units-check.sh",
        &[
            "ExecStart as written bootstrapped TFE",
            "the next boot sends nothing",
            "tfe-bootstrap-renew.service: ExecStart as written exits 0",
            "with the one-time secrets removed, a boot still exits 0",
        ],
    );
}

/// Runs a sandboxed example runner (scripts/lib/sandbox.sh) with this
/// build's binaries: it exits 0 and says every check in `says` passed.
fn runner_says(script: &str, says: &[&str]) {
    let bins = Path::new(bin()).parent().unwrap();
    let out = std::process::Command::new(repo(script))
        .arg("--bin-dir")
        .arg(bins)
        .output_timed()
        .unwrap();
    let r = to_run(out);
    assert_code(&r, 0);
    for said in says {
        assert!(r.stdout.contains(said), "{said:?} not said:\n{}", r.both());
    }
}

/// Whether this test runs as root (namespaces, mounts), recorded for the
/// summary scripts/test.sh prints.
fn as_root() -> bool {
    external("root", is_root(), "not root: namespaces and mounts")
}
