//! `man`: one self-contained page, tfe-bootstrap(1): NAME, SYNOPSIS,
//! DESCRIPTION, OPTIONS and COMMANDS from the clap definitions (each
//! command with its own options, so there is no page to refer to that does
//! not exist), then STEPS from the machine's order, FILES, ENVIRONMENT and
//! EXIT STATUS.

use std::io::Write;

use crate::cli::Cli;
use crate::machine::ORDER;

/// Escapes text for roff (backslashes, and a leading dot or quote).
fn roff(text: &str) -> String {
    let t = text.replace('\\', "\\\\").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

pub(super) fn render() -> std::io::Result<Vec<u8>> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut w = Vec::new();
    man.render_title(&mut w)?;
    man.render_name_section(&mut w)?;
    man.render_synopsis_section(&mut w)?;
    man.render_description_section(&mut w)?;
    man.render_options_section(&mut w)?;
    commands_section(&mut w, &cmd)?;
    steps_section(&mut w)?;
    files_section(&mut w)?;
    environment_section(&mut w)?;
    exit_section(&mut w)?;
    man.render_version_section(&mut w)?;
    Ok(w)
}

/// Every subcommand with its own options.
fn commands_section(w: &mut Vec<u8>, cmd: &clap::Command) -> std::io::Result<()> {
    writeln!(w, ".SH COMMANDS")?;
    for sub in cmd.get_subcommands() {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        writeln!(w, ".TP\n\\fB{}\\fR", roff(sub.get_name()))?;
        writeln!(w, "{}", roff(&about))?;
        for arg in sub.get_arguments().filter(|a| !a.is_global_set()) {
            let Some(long) = arg.get_long() else { continue };
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            writeln!(
                w,
                ".RS\n.TP\n\\fB\\-\\-{}\\fR\n{}\n.RE",
                roff(long),
                roff(&help)
            )?;
        }
        for s in sub.get_subcommands() {
            let about = s.get_about().map(|a| a.to_string()).unwrap_or_default();
            writeln!(
                w,
                ".RS\n.TP\n\\fB{} {}\\fR\n{}\n.RE",
                roff(sub.get_name()),
                roff(s.get_name()),
                roff(&about)
            )?;
        }
    }
    Ok(())
}

/// The steps, in order, and what renewal does.
fn steps_section(w: &mut Vec<u8>) -> std::io::Result<()> {
    writeln!(w, ".SH STEPS")?;
    writeln!(
        w,
        "In this order; each finished step is checkpointed, and a rerun skips it while its config is unchanged. \
         Names for \\fB\\-\\-skip\\fR, \\fB\\-\\-only\\fR, \\fB\\-\\-force\\fR and \\fBreset \\-\\-step\\fR:"
    )?;
    for step in ORDER {
        writeln!(w, ".IP \\(bu 2\n{}", roff(step.name().as_str()))?;
    }
    writeln!(w, ".SH RENEWAL")?;
    writeln!(
        w,
        "\\fBrenew\\fR replaces each token the run wrote (the admin token_file, the organization and owners team \
         tokens) once less than [renew] before is left of it (default: a third of its lifetime), within the token \
         type's TTL policy: the new token is written atomically, checked against TFE and published to [store] \
         before the replaced one is revoked, and with [store] only after [renew] grace (default 2d; 0s without \
         [store]). The organization token cannot wait: TFE holds one, so whatever reads its file must read it \
         again. Agent tokens carry no expiry and are never due. What is due is judged by TFE's clock, read first \
         with one GET /api/v2/ping; when nothing is due, that read is all that is sent; \
         \\fB\\-\\-dry\\-run\\fR says what would be done. In a fleet one node renews each token and the others \
         take it from [store]. tfe\\-bootstrap\\-renew.timer runs it daily; \\fBstatus\\fR shows each token's \
         expiry and when it is renewed."
    )?;
    Ok(())
}

/// The files the run reads and writes.
fn files_section(w: &mut Vec<u8>) -> std::io::Result<()> {
    writeln!(w, ".SH FILES")?;
    for (path, what) in [
        (
            "/etc/tfe-bootstrap/config.toml",
            "The config when neither \\-\\-config nor TFE_BOOTSTRAP_CONFIG names one.",
        ),
        (
            "<state dir>/state.json",
            "Checkpoints (0600), written atomically. State dir: [state] dir, \\-\\-state\\-dir, else /var/lib/tfe\\-bootstrap as root, $XDG_STATE_HOME/tfe\\-bootstrap otherwise.",
        ),
        ("<state dir>/lock", "Advisory lock held for the whole run."),
        (
            "<state dir>/public-fingerprints.json",
            "For each done step whose config holds a secret, a salted fingerprint of the rest of its config: a change is seen while the secret is absent (the run then stops, exit 2).",
        ),
        (
            "$HOME/.terraform.d/credentials.tfrc.json",
            "With [terraform]: this TFE's entry (the host, with its port) holds the chosen token; other entries are kept. The default [terraform] credentials_file.",
        ),
        (
            "[metrics] textfile",
            "A Prometheus textfile (0644) for node_exporter's textfile collector: each token's expiry, the last run's and renew's outcome and time.",
        ),
        (
            "<state dir>/admin-token",
            "The admin's API token (0600), the default [admin] token_file.",
        ),
        (
            "<state dir>/admin-token.rescue",
            "Where the admin token is kept when token_file cannot be written; the next run moves it into place.",
        ),
        (
            "<state dir>/org-token.rescue, <state dir>/team-token.rescue, <state dir>/agent-token.rescue",
            "The same for the organization, owners team and agent tokens.",
        ),
        (
            "/usr/lib/systemd/system/tfe\\-bootstrap\\-renew.service, tfe\\-bootstrap\\-renew.timer",
            "The daily renewal (packages; scripts/systemd in the source).",
        ),
        (
            "<token_file>.stale-<time>",
            "A saved admin token moved aside by reset \\-\\-step admin (after a TFE reinstall); never deleted.",
        ),
    ] {
        writeln!(w, ".TP\n\\fI{}\\fR\n{}", roff(path), what)?;
    }
    Ok(())
}

/// The variables it reads, and what its commands get.
fn environment_section(w: &mut Vec<u8>) -> std::io::Result<()> {
    writeln!(w, ".SH ENVIRONMENT")?;
    for (var, what) in [
        ("TFE_BOOTSTRAP_CONFIG", "The config file, as \\-\\-config."),
        (
            "NO_COLOR",
            "When set and not empty, no colour in text output.",
        ),
        (
            "SSL_CERT_FILE",
            "A CA bundle to use as the system trust store (default: the first of /etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt, /etc/ssl/cert.pem). Its roots are always trusted; [tfe] ca_bundle adds to them.",
        ),
        (
            "TFE_BOOTSTRAP_ADDRESS",
            "Set for the [store] command: the TFE address, to namespace its keys. The [store] and [iact] commands \
             get only PATH, HOME, LANG, LC_ALL, LC_CTYPE, TZ, TMPDIR, USER, LOGNAME, this variable and what \
             [store] env / [iact] env name; never a variable a secret of the config comes from.",
        ),
        (
            "XDG_STATE_HOME",
            "Base of the default state dir when not running as root.",
        ),
    ] {
        writeln!(w, ".TP\n\\fB{var}\\fR\n{what}")?;
    }
    writeln!(
        w,
        "Secrets given as {{ env = \"NAME\" }} in the config are read from the environment too. \
         A secret that is absent (an unset variable, a missing file) is needed only while a step that sends it \
         still has to run: once the admin exists, the IACT and the admin password may be removed."
    )?;
    Ok(())
}

/// The contract's exit codes.
fn exit_section(w: &mut Vec<u8>) -> std::io::Result<()> {
    writeln!(w, ".SH \"EXIT STATUS\"")?;
    for (code, what) in [
        (
            "0",
            "Every configured step is done (including nothing to do).",
        ),
        (
            "1",
            "A step failed; the message names the step, the HTTP status and TFE's error text.",
        ),
        (
            "2",
            "Usage, config or environment error; nothing was sent and nothing on disk changed.",
        ),
        (
            "3",
            "TFE did not become ready within [wait] timeout (validate \\-\\-preflight: TFE unreachable).",
        ),
        (
            "4",
            "No initial admin could be created, and no admin token to resume with \
             (validate \\-\\-preflight: TFE refuses this host the IACT, and the refusal names the address \
             this host asks from and TFE_IACT_TRUSTED_PROXIES when a load balancer stands between).",
        ),
        (
            "5",
            "Another tfe\\-bootstrap holds the state directory's lock.",
        ),
        (
            "130, 143",
            "Stopped by SIGINT or SIGTERM at a safe point; checkpoints are saved.",
        ),
    ] {
        writeln!(w, ".TP\n\\fB{code}\\fR\n{what}")?;
    }
    Ok(())
}
