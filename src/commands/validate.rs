//! `validate`: check the config and every referenced secret, offline, and
//! print a summary with secrets masked.

use serde_json::{Value, json};

use super::load;
use crate::cli::Cli;
use crate::error::{Error, exit};
use crate::output::{Event, Format, Reporter};

pub(super) fn validate(cli: &Cli, report: &Reporter) -> Result<u8, Error> {
    let cfg = load(cli)?;
    for w in &cfg.warnings {
        report.emit(Event::Warning {
            step: None,
            message: w,
        });
    }
    let summary = cfg.summary();
    if report.format() == Format::Json {
        report.print_json(json!({"event": "validated", "config": cfg.file.display().to_string(), "summary": summary}));
        return Ok(exit::OK);
    }
    report.print(&format!("config {} is valid", cfg.file.display()));
    let mut lines = vec![];
    flatten("", &summary, &mut lines);
    for l in lines {
        report.print(&format!("  {l}"));
    }
    Ok(exit::OK)
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        Value::Null => {}
        other => out.push(format!("{prefix} = {other}")),
    }
}
