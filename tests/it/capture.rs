//! README's "What it looks like" is a real run (issue 34): the demo config
//! against tfe-sim booting for a second, under a terminal (`script(1)`),
//! its final screen compared with the README's block. What varies from run
//! to run (times, poll counts, ids, expiry, the temp dir) is masked on both
//! sides; every step, outcome, word and count must match. After a change
//! to what a run prints, `TFE_BOOTSTRAP_BLESS=1 cargo test --test it
//! capture` rewrites the block from a fresh run.

use std::path::Path;
use std::time::Duration;

use tfe_bootstrap::sim::SimOptions;

use super::util::*;

const BEGIN: &str = "<!-- capture: the final screen, written by tests/it/capture.rs -->\n```text\n";

/// What a terminal shows at the end: per line, what follows the last
/// carriage return, without escape sequences.
fn final_screen(raw: &str) -> String {
    let mut out = vec![];
    for line in raw.split('\n') {
        let shown = line.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("");
        let mut text = String::new();
        let mut chars = shown.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // CSI: ESC [ parameters final-byte.
                if chars.next_if_eq(&'[').is_some() {
                    for n in chars.by_ref() {
                        if ('@'..='~').contains(&n) {
                            break;
                        }
                    }
                }
                continue;
            }
            text.push(c);
        }
        let text = text.trim_end();
        if !text.is_empty() {
            out.push(text.to_string());
        }
    }
    out.join("\n") + "\n"
}

/// Masks, after each `prefix`, the run of characters `keep` accepts.
fn mask(s: &str, prefix: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(prefix) {
        out.push_str(&rest[..i + prefix.len()]);
        rest = &rest[i + prefix.len()..];
        let end = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        if end > 0 {
            out.push('#');
        }
        rest = &rest[end..];
    }
    out + rest
}

fn masked(screen: &str) -> String {
    let digit = |c: char| c.is_ascii_digit();
    let s = mask(screen, "(", digit);
    let s = mask(&s, "after ", digit);
    let s = mask(&s, " in ", |c| digit(c) || c == '.');
    let s = mask(&s, "expires ", |c| digit(c) || "-T:Z".contains(c));
    mask(&s, "apool-", |c| c.is_ascii_alphanumeric())
}

#[test]
fn readme_what_it_looks_like_is_a_real_run() {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let start = readme.find(BEGIN).expect("README marks its capture") + BEGIN.len();
    let end = start + readme[start..].find("```\n").unwrap();

    let w = World::new(SimOptions {
        ready_after: Duration::from_secs(1),
        ..sim_opts()
    });
    let demo =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml"))
            .unwrap()
            .replace("http://127.0.0.1:18800", w.sim.url());
    w.write_config(&demo);
    let cap = w.dir.path().join("cap");
    let cmd = format!(
        "{} run --config {} --state-dir {}",
        bin(),
        w.config.display(),
        cap.join("st").display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env("NO_COLOR", "1")
        .env("TFE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("SMTP_PASSWORD", SMTP_PASSWORD)
        .env("COLUMNS", "200")
        .stdin(std::process::Stdio::null())
        .output_timed()
        .expect("script(1) from util-linux (scripts/test.sh requires it)");
    let raw = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{raw}");
    // The demo's own address and paths, for the ones this run happened on.
    let screen = final_screen(&raw)
        .replace(cap.to_str().unwrap(), "/tmp/cap")
        .replace(w.sim.url().trim_start_matches("http://"), "127.0.0.1:18800");
    assert!(!screen.contains(ADMIN_PASSWORD) && !screen.contains(IACT));
    if std::env::var_os("TFE_BOOTSTRAP_BLESS").is_some() {
        let text = format!("{}{}{}", &readme[..start], screen, &readme[end..]);
        std::fs::write(&readme_path, text).unwrap();
        return;
    }
    assert_eq!(
        masked(&readme[start..end]),
        masked(&screen),
        "README's \"What it looks like\" is stale: rerun with TFE_BOOTSTRAP_BLESS=1 to rewrite it"
    );
}
