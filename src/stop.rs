//! SIGTERM and SIGINT: a request to stop, honoured at the next safe point.
//! The handler only records the signal; the machine checks [`requested`]
//! between steps, and every wait in the run (readiness polls, retry
//! backoff, read-backs) sleeps through [`sleep`], which returns early once
//! a stop is requested. A request already on the wire finishes within its
//! timeout (system calls restart), so the step that sent it can record what
//! it did; the run then emits `finished` and exits 128 + the signal number
//! (130 for SIGINT, 143 for SIGTERM), with its checkpoints saved.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Said on stderr when the first stop request arrives, so that a Ctrl-C
/// during a slow request is acknowledged at once.
const STOPPING: &[u8] = b"tfe-bootstrap: stopping: the request under way finishes first (within [tfe] request_timeout), then the run saves its checkpoints and ends\n";

extern "C" fn record(sig: libc::c_int) {
    // An atomic swap and one write(2): both async-signal-safe. Said once:
    // a second signal finds the first recorded.
    if SIGNAL.swap(sig, Ordering::SeqCst) == 0 {
        // SAFETY: write(2) on stderr with a static buffer and its length.
        let _ = unsafe { libc::write(2, STOPPING.as_ptr().cast(), STOPPING.len()) };
    }
}

/// Installs the handlers for SIGTERM and SIGINT (with `SA_RESTART`, which
/// a request on the wire relies on). A handler the system refuses is said
/// on stderr: the run then goes on, and that signal stops it at once, as
/// if there were no handler. (signal-hook's `flag::register` would do the
/// same without `unsafe`; a second crate for two calls is not worth it.)
pub fn install() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction is a valid starting point; the handler
        // is an `extern "C" fn(c_int)` that only stores to an atomic, and
        // sigaction is given valid pointers.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            eprintln!(
                "warning: cannot handle {} ({}): it will stop the run at once, without a checkpoint of the step under way",
                name(sig),
                std::io::Error::last_os_error()
            );
        }
    }
}

/// The signal that asked the run to stop, if one did.
pub fn requested() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The signal's name, for messages.
pub fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "a signal",
    }
}

/// Sleeps for `d`, waking early when a stop is requested. Returns false
/// when it was cut short.
pub fn sleep(d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if requested().is_some() {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}
