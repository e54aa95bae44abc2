//! Stamps the binary with what `--version` prints besides the version: the
//! target triple it was built for and the git commit it was built from
//! (`TFE_BOOTSTRAP_COMMIT` overrides it, e.g. for a build from a tarball).

use std::process::Command;

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=TFE_BOOTSTRAP_TARGET={target}");
    let commit = std::env::var("TFE_BOOTSTRAP_COMMIT").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        let dirty = Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .output()
            .ok()
            .is_some_and(|o| !o.stdout.is_empty());
        out.status.success().then(|| {
            let c = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if dirty { format!("{c}-dirty") } else { c }
        })
    });
    println!(
        "cargo:rustc-env=TFE_BOOTSTRAP_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
    println!("cargo:rerun-if-env-changed=TFE_BOOTSTRAP_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD")
        && let Some(r) = head.strip_prefix("ref: ")
    {
        println!("cargo:rerun-if-changed=.git/{}", r.trim());
    }
}
