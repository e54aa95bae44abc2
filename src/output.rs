//! The one place that prints. Steps and the machine emit [`Event`]s; the
//! [`Reporter`] renders them as text lines (cloud-init friendly: no ANSI
//! when stdout is not a terminal or `NO_COLOR` is set, a spinner only on a
//! terminal) or as one JSON object per line. Events never carry secrets.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::step::{Outcome, Progress, StepName};
use crate::tfe::RequestEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Something worth telling the operator.
#[derive(Debug)]
pub enum Event<'a> {
    RunStarted {
        command: &'a str,
        address: &'a str,
        state_dir: &'a str,
        /// `[tfe] platform`.
        platform: &'a str,
        /// The TFE version an earlier run recorded, if any.
        tfe_version: Option<&'a str>,
    },
    StepStarted {
        step: StepName,
    },
    StepFinished {
        step: StepName,
        outcome: Outcome,
        elapsed: Duration,
        detail: &'a str,
    },
    WaitPoll {
        attempt: u32,
        status: &'a str,
        elapsed: Duration,
    },
    Request(&'a RequestEvent),
    Warning {
        step: Option<StepName>,
        message: &'a str,
    },
    Finished {
        exit_code: u8,
        error: Option<&'a str>,
        counts: [usize; 4],
        /// The TFE version the run knows (`X-TFE-Current-Version`).
        tfe_version: Option<&'a str>,
    },
}

struct Live {
    spinner: Option<indicatif::ProgressBar>,
    last_plain_poll: Option<Instant>,
}

/// Renders events to stdout (and the final error to stderr).
pub struct Reporter {
    format: Format,
    verbosity: Verbosity,
    color: bool,
    tty: bool,
    started: Instant,
    live: Mutex<Live>,
    /// A `finished` event went out: the command's end is said once.
    finished: std::sync::atomic::AtomicBool,
}

/// How often a plain (non-terminal) wait prints a progress line.
const PLAIN_POLL_EVERY: Duration = Duration::from_secs(15);

impl Reporter {
    pub fn new(format: Format, verbosity: Verbosity) -> Reporter {
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Reporter {
            format,
            verbosity,
            color: tty && !no_color && format == Format::Text,
            tty: tty && format == Format::Text && verbosity != Verbosity::Quiet,
            started: Instant::now(),
            live: Mutex::new(Live {
                spinner: None,
                last_plain_poll: None,
            }),
            finished: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether a `finished` event was emitted.
    pub fn has_finished(&self) -> bool {
        self.finished.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether text meant for a person is printed (text output, not `-q`).
    pub fn speaks(&self) -> bool {
        self.format == Format::Text && self.verbosity != Verbosity::Quiet
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Prints one line to stdout (above the spinner, if one runs), through
    /// the redactor. A closed or broken stdout is ignored: it never panics.
    pub fn print(&self, s: &str) {
        let s = &*crate::redact::scrub(s);
        let live = self.live();
        match &live.spinner {
            Some(sp) => sp.println(s),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{s}");
                let _ = out.flush();
            }
        }
    }

    /// Prints a JSON value as one line on stdout, through the redactor:
    /// every string is scrubbed before serialization (escaping would hide
    /// a secret from the redactor), and the line once more after it.
    pub fn print_json(&self, mut v: Value) {
        crate::redact::scrub_value(&mut v);
        let line = v.to_string();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", crate::redact::scrub(&line));
        let _ = out.flush();
    }

    /// Prints one line to stderr, through the redactor. Unlike `eprintln!`,
    /// a closed or broken stderr is ignored (a panic there would abort).
    pub fn print_err(&self, s: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", crate::redact::scrub(s));
        let _ = err.flush();
    }

    fn stop_spinner(&self) {
        if let Some(sp) = self.live().spinner.take() {
            sp.finish_and_clear();
        }
    }

    pub fn emit(&self, e: Event<'_>) {
        if matches!(e, Event::Finished { .. }) {
            self.finished
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if self.format == Format::Json {
            if let Some(v) = self.to_json(&e) {
                self.print_json(v);
            }
            if let Event::Finished {
                error: Some(err), ..
            } = e
            {
                self.print_err(&format!("error: {err}"));
            }
            return;
        }
        match e {
            Event::RunStarted {
                command,
                address,
                state_dir,
                tfe_version,
                ..
            } => {
                if self.verbosity >= Verbosity::Normal {
                    let seen = tfe_version
                        .map(|v| format!(", TFE {v} last time"))
                        .unwrap_or_default();
                    self.print(&format!(
                        "tfe-bootstrap {command}: {address} (state {state_dir}{seen})"
                    ));
                }
            }
            Event::StepStarted { step } => self.text_step_started(step),
            Event::WaitPoll {
                attempt,
                status,
                elapsed,
            } => self.text_wait_poll(attempt, status, elapsed),
            Event::StepFinished {
                step,
                outcome,
                elapsed,
                detail,
            } => self.text_step_finished(step, outcome, elapsed, detail),
            Event::Request(r) => self.text_request(r),
            Event::Warning { step, message } => {
                self.stop_spinner();
                let prefix = step
                    .map(|s| format!("[{}] ", s.as_str()))
                    .unwrap_or_default();
                if self.verbosity >= Verbosity::Normal {
                    self.print(&format!(
                        "{} {prefix}{message}",
                        self.paint("warning:", "33")
                    ));
                } else {
                    self.print_err(&format!("warning: {prefix}{message}"));
                }
            }
            Event::Finished {
                exit_code,
                error,
                counts,
                ..
            } => self.text_finished(exit_code, error, counts),
        }
    }

    /// On a terminal every running step shows a spinner; the wait's message
    /// is updated by each poll.
    fn text_step_started(&self, step: StepName) {
        if !self.tty {
            return;
        }
        let sp = indicatif::ProgressBar::new_spinner();
        sp.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        sp.enable_steady_tick(Duration::from_millis(100));
        let what = if step.as_str() == "wait" {
            "waiting for TFE to answer ready"
        } else {
            "running"
        };
        sp.set_message(format!("{:<13} {what}", step.as_str()));
        if let Some(old) = self.live().spinner.replace(sp) {
            old.finish_and_clear();
        }
    }

    fn text_wait_poll(&self, attempt: u32, status: &str, elapsed: Duration) {
        let msg = format!(
            "wait          waiting for TFE: {attempt} poll{}, last {status}, {:.0}s",
            if attempt == 1 { "" } else { "s" },
            elapsed.as_secs_f64()
        );
        let mut live = self.live();
        if let Some(sp) = &live.spinner {
            sp.set_message(crate::redact::scrub(&msg).into_owned());
        } else if self.verbosity >= Verbosity::Normal
            && live
                .last_plain_poll
                .is_none_or(|t| t.elapsed() >= PLAIN_POLL_EVERY)
        {
            live.last_plain_poll = Some(Instant::now());
            drop(live);
            self.print(&msg);
        }
    }

    fn text_step_finished(
        &self,
        step: StepName,
        outcome: Outcome,
        elapsed: Duration,
        detail: &str,
    ) {
        self.stop_spinner();
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let word = match outcome {
            Outcome::Applied => self.paint("applied  ", "32"),
            Outcome::Unchanged => self.paint("unchanged", "2"),
            Outcome::Skipped => self.paint("skipped  ", "2"),
            Outcome::Failed => self.paint("failed   ", "31;1"),
        };
        let ms = elapsed.as_millis();
        let time = if outcome == Outcome::Applied || outcome == Outcome::Failed {
            format!(" ({ms} ms)")
        } else {
            String::new()
        };
        // A failure's message is the `error:` line that ends the run;
        // printing it here too would say it twice in one log.
        let detail = if outcome == Outcome::Failed {
            "see the error below"
        } else {
            detail
        };
        self.print(&format!("{:<13} {word} {detail}{time}", step.as_str()));
    }

    fn text_request(&self, r: &RequestEvent) {
        if self.verbosity != Verbosity::Verbose {
            return;
        }
        let status = r
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "---".into());
        let retry = if r.attempt > 1 {
            format!(" (attempt {})", r.attempt)
        } else {
            String::new()
        };
        let err = r
            .error
            .as_deref()
            .map(|e| format!(" {e}"))
            .unwrap_or_default();
        self.print(&format!(
            "  -> {} {} {status} {} ms{retry}{err}",
            r.method,
            r.path,
            r.elapsed.as_millis()
        ));
    }

    fn text_finished(&self, exit_code: u8, error: Option<&str>, counts: [usize; 4]) {
        self.stop_spinner();
        if let Some(err) = error {
            let red = if std::io::stderr().is_terminal() && self.color {
                "\x1b[31;1merror:\x1b[0m"
            } else {
                "error:"
            };
            self.print_err(&format!("{red} {err}"));
        }
        if self.verbosity >= Verbosity::Normal && counts.iter().sum::<usize>() > 0 {
            let [a, u, s, f] = counts;
            let total = self.started.elapsed().as_secs_f64();
            let word = if exit_code == 0 { "done" } else { "stopped" };
            self.print(&format!(
                "{word}: {a} applied, {u} unchanged, {s} skipped, {f} failed in {total:.1}s (exit {exit_code})"
            ));
        }
    }

    fn to_json(&self, e: &Event<'_>) -> Option<Value> {
        Some(match e {
            Event::RunStarted {
                command,
                address,
                state_dir,
                platform,
                tfe_version,
            } => {
                json!({"event": "run_started", "command": command, "address": address, "state_dir": state_dir,
                       "version": env!("CARGO_PKG_VERSION"), "platform": platform, "tfe_version": tfe_version})
            }
            Event::StepStarted { step } => json!({"event": "step_started", "step": step.as_str()}),
            Event::StepFinished {
                step,
                outcome,
                elapsed,
                detail,
            } => json!({
                "event": "step_finished", "step": step.as_str(), "outcome": outcome.as_str(),
                "elapsed_ms": elapsed.as_millis() as u64, "detail": detail}),
            Event::WaitPoll {
                attempt,
                status,
                elapsed,
            } => json!({
                "event": "wait_poll", "step": "wait", "attempt": attempt, "status": status,
                "elapsed_ms": elapsed.as_millis() as u64}),
            Event::Request(r) => {
                if self.verbosity != Verbosity::Verbose {
                    return None;
                }
                json!({"event": "request", "method": r.method.as_str(), "path": r.path, "status": r.status,
                       "elapsed_ms": r.elapsed.as_millis() as u64, "attempt": r.attempt, "error": r.error})
            }
            Event::Warning { step, message } => {
                json!({"event": "warning", "step": step.map(|s| s.as_str()), "message": message})
            }
            Event::Finished {
                exit_code,
                error,
                counts,
                tfe_version,
            } => json!({
                "event": "finished", "exit_code": exit_code, "error": error,
                "applied": counts[0], "unchanged": counts[1], "skipped": counts[2], "failed": counts[3],
                "elapsed_ms": self.started.elapsed().as_millis() as u64, "tfe_version": tfe_version}),
        })
    }
}

impl Progress for Reporter {
    fn warning(&self, step: Option<StepName>, message: &str) {
        self.emit(Event::Warning { step, message });
    }
    fn wait_poll(&self, attempt: u32, status: &str, elapsed: Duration) {
        self.emit(Event::WaitPoll {
            attempt,
            status,
            elapsed,
        });
    }
}
