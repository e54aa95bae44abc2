//! Runs an operator-supplied command (`[iact] command`, `[store] command`):
//! argv without a shell, in its own process group, values on stdin and
//! stdout only, under one deadline that covers the command and the reading
//! of its output. When the command exits, or at the deadline, the whole
//! group is killed, so a background child left holding a pipe cannot
//! stretch the wait.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a finished command left.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Why a command gave no answer.
#[derive(Debug)]
pub enum Failure {
    /// It could not be started (not found, not executable).
    Spawn(std::io::Error),
    /// It (or the reading of its output) outlasted the deadline; its group
    /// was killed.
    TimedOut,
    /// Waiting on it failed.
    Wait(std::io::Error),
}

/// Output beyond this is not read (a value, a token, an error line).
const OUTPUT_CAP: u64 = 1024 * 1024;

/// What a command's environment is: nothing of this process's but the
/// basics every program expects ([`BASE_ENV`]), the variables the config
/// names for it (`pass`: names, or prefixes ending in `*`), and `add`.
/// Never a variable a config secret comes from (`deny`), even when `pass`
/// names it: the command sees no password, IACT or token it was not given.
pub struct Env<'a> {
    pub pass: &'a [String],
    pub deny: &'a [String],
    pub add: &'a [(&'a str, &'a str)],
}

/// Passed to every command when set: where programs are, whose home, the
/// locale and time zone, the temp dir.
pub const BASE_ENV: &[&str] = &[
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME",
];

impl Env<'_> {
    fn apply(&self, cmd: &mut Command) {
        cmd.env_clear();
        for (name, value) in std::env::vars_os() {
            let Some(n) = name.to_str() else { continue };
            let wanted = BASE_ENV.contains(&n)
                || self.pass.iter().any(|p| match p.strip_suffix('*') {
                    Some(prefix) => n.starts_with(prefix),
                    None => p == n,
                });
            if wanted && !self.deny.iter().any(|d| d == n) {
                cmd.env(name, value);
            }
        }
        for (k, v) in self.add {
            cmd.env(k, v);
        }
    }
}

/// Runs `argv` with `input` on stdin (or /dev/null), the environment `env`
/// describes, and `timeout` for all of it.
pub fn run(
    argv: &[String],
    input: Option<&[u8]>,
    env: &Env<'_>,
    timeout: Duration,
) -> Result<Finished, Failure> {
    let deadline = Instant::now() + timeout;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    env.apply(&mut cmd);
    let mut child = cmd.spawn().map_err(Failure::Spawn)?;
    let group = child.id() as libc::pid_t;
    let kill_group = || {
        // SAFETY: kill(2) with a negative pid signals that process group;
        // the group is the child's own (process_group(0) above).
        unsafe { libc::kill(-group, libc::SIGKILL) };
    };
    if let (Some(mut stdin), Some(bytes)) = (child.stdin.take(), input) {
        let bytes = bytes.to_vec();
        // A thread, so a helper that never reads cannot block us past the
        // deadline; a closed pipe (it exited first) is its business.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let (tx, rx) = mpsc::channel::<(bool, String)>();
    for (is_out, pipe) in [
        (
            true,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            false,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(OUTPUT_CAP).read_to_end(&mut buf);
            }
            let _ = tx.send((is_out, String::from_utf8_lossy(&buf).into_owned()));
        });
    }
    // The child is observed exiting without being reaped (WNOWAIT): until
    // it is reaped its pid, which is also its group's id, cannot be reused,
    // so the kill below can only reach what the command left in its group.
    let status = loop {
        match exited_unreaped(group) {
            Ok(true) => {
                // What the command left running in its group is not
                // wanted: killing it closes the pipes it may still hold.
                kill_group();
                break child.wait().map_err(Failure::Wait)?;
            }
            Ok(false) if Instant::now() >= deadline => {
                kill_group();
                let _ = child.wait();
                return Err(Failure::TimedOut);
            }
            Ok(false) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                kill_group();
                let _ = child.wait();
                return Err(Failure::Wait(e));
            }
        }
    };
    let (mut out, mut err) = (None, None);
    while out.is_none() || err.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.max(Duration::from_millis(200))) {
            Ok((true, s)) => out = Some(s),
            Ok((false, s)) => err = Some(s),
            Err(_) => return Err(Failure::TimedOut),
        }
    }
    Ok(Finished {
        status,
        stdout: out.unwrap_or_default(),
        stderr: err.unwrap_or_default(),
    })
}

/// Whether child `pid` has exited, leaving it unreaped (a zombie) so that
/// its pid stays taken.
fn exited_unreaped(pid: libc::pid_t) -> std::io::Result<bool> {
    // SAFETY: siginfo_t is plain data; all-zero is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable siginfo_t; P_PID names our own
    // child; WNOWAIT leaves it waitable, WNOHANG returns at once.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: waitid filled `info` (si_pid is 0 when nothing changed).
    Ok(unsafe { info.si_pid() } != 0)
}

/// "`what` failed (exit status): its last stderr line", the line with
/// token-like words hidden ([`last_line`]).
pub fn failed(what: &str, done: &Finished) -> String {
    let last = last_line(&done.stderr);
    format!(
        "{what} failed ({}){}",
        done.status,
        if last.is_empty() {
            String::new()
        } else {
            format!(": {last}")
        }
    )
}

/// The last non-empty line of `stderr`, with token-like words hidden and
/// cut to 200 characters: what an error message may quote of a command.
pub fn last_line(stderr: &str) -> String {
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    // Known secrets first (whole, before any cut), then unknown token-like words.
    let hidden = hide_tokens(&crate::redact::scrub(last));
    crate::redact::scrub_and_cut(&hidden, 200)
}

/// A failing command's stderr is shown to help the operator, but it may
/// hold a token this run never learned (so the redactor cannot know it):
/// every run of 16 or more token characters with both letters and digits
/// becomes `[redacted]`. Words, paths and messages survive.
pub fn hide_tokens(line: &str) -> String {
    let is_tok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '=');
    let mut out = String::with_capacity(line.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let secret_like = word.len() >= 16
            && word.chars().any(|c| c.is_ascii_digit())
            && word.chars().any(|c| c.is_ascii_alphabetic());
        out.push_str(if secret_like {
            crate::redact::REDACTED
        } else {
            word
        });
        word.clear();
    };
    for c in line.chars() {
        if is_tok(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_command_stderr_are_hidden() {
        assert_eq!(
            hide_tokens(
                "Error: no such container: terraform-enterprise (token iact-5e1f0c7b9a2d4e6f8a0b)"
            ),
            "Error: no such container: terraform-enterprise (token [redacted])"
        );
        assert_eq!(
            hide_tokens("/usr/bin/docker exited 125"),
            "/usr/bin/docker exited 125"
        );
    }
}
