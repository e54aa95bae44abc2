//! `[metrics] textfile`: day two in monitoring. At the end of every `run`
//! and `renew`, a Prometheus textfile for node_exporter's textfile
//! collector (the Prometheus text exposition format: `# HELP`, `# TYPE`,
//! `name{labels} value`): when each token the run wrote expires, and the
//! last run's and the last renew's outcome and time. The other command's
//! lines are kept from the file as it was. Written atomically (a temporary
//! file in the same directory, fsynced, renamed) at 0644, so the collector,
//! which runs as another user, can read it; it holds no secret.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::config::Config;
use crate::output::{Event, Reporter};

const EXPIRY: &str = "tfe_bootstrap_token_expiry_timestamp_seconds";
const LAST: &str = "tfe_bootstrap_last_run_timestamp_seconds";
const SUCCESS: &str = "tfe_bootstrap_last_run_success";

/// Records that `command` (`run` or `renew`) ended, `ok` or not. A file
/// that cannot be written is a warning: monitoring never fails the run.
pub(super) fn record(report: &Reporter, cfg: &Config, command: &str, ok: bool) {
    let Some(file) = cfg.metrics_textfile.as_deref() else {
        return;
    };
    if let Err(e) = write(cfg, file, command, ok) {
        report.emit(Event::Warning {
            step: None,
            message: &format!(
                "[metrics] textfile {} could not be written ({e}); the run itself is not affected",
                file.display()
            ),
        });
    }
}

/// A label value, escaped as the exposition format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn write(cfg: &Config, file: &Path, command: &str, ok: bool) -> std::io::Result<()> {
    let state = crate::session::load_state(&cfg.state_dir, None)
        .ok()
        .flatten();
    let held = state
        .as_ref()
        .map(|s| crate::tokens::renew::held(cfg, s))
        .unwrap_or_default();
    // The other command's lines, as the file had them.
    let other = if command == "run" { "renew" } else { "run" };
    let keep: Vec<String> = std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            (l.starts_with(LAST) || l.starts_with(SUCCESS))
                && l.contains(&format!("{{command=\"{other}\"}}"))
        })
        .map(str::to_string)
        .collect();
    let now = crate::util::unix_now();
    let mut out = String::new();
    out.push_str(&format!(
        "# HELP {EXPIRY} When each token tfe-bootstrap wrote expires, by TFE's clock (Unix seconds).\n# TYPE {EXPIRY} gauge\n"
    ));
    for h in held.iter().filter(|h| h.expires.is_some()) {
        out.push_str(&format!(
            "{EXPIRY}{{token=\"{}\",file=\"{}\"}} {}\n",
            label(h.step.as_str()),
            label(&h.file.display().to_string()),
            h.expires.unwrap_or(0)
        ));
    }
    let mut runs: Vec<String> = keep;
    runs.push(format!("{LAST}{{command=\"{command}\"}} {now}"));
    runs.push(format!(
        "{SUCCESS}{{command=\"{command}\"}} {}",
        u8::from(ok)
    ));
    runs.sort();
    out.push_str(&format!(
        "# HELP {LAST} When tfe-bootstrap run or renew last ended (Unix seconds).\n# TYPE {LAST} gauge\n"
    ));
    for l in runs.iter().filter(|l| l.starts_with(LAST)) {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&format!(
        "# HELP {SUCCESS} Whether the last run or renew ended with exit 0 (1) or not (0).\n# TYPE {SUCCESS} gauge\n"
    ));
    for l in runs.iter().filter(|l| l.starts_with(SUCCESS)) {
        out.push_str(l);
        out.push('\n');
    }
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tfe-bootstrap-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.write_all(out.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(file).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}
