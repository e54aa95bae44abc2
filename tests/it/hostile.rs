//! Hostile conditions (issue #11): slow relays, full disks, planted files,
//! echoed secrets, runaway commands, signals. Each test prints a
//! `RELIABILITY hostile-<case>` line that `scripts/reliability.sh` collects.

use std::time::Duration;

use tfe_bootstrap::sim::faults::FaultRule;

use crate::util::*;

/// A relay slower than `request_timeout`: TFE answers the SMTP PATCH only
/// after 6 s, the client gives up on each attempt at 5 s. After run and
/// rerun there is exactly one test mail, and the run ends with exit 0.
#[test]
fn slow_smtp_relay_gets_exactly_one_test_mail() {
    let w = World::new(sim_opts());
    w.edit_config("request_timeout = \"10s\"", "request_timeout = \"5s\"");
    w.sim
        .add_fault(FaultRule::parse("patch=/api/v2/admin/smtp-settings:stall=6s*8").unwrap());
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(
        r.stdout
            .contains("not repeated, so there was one test mail"),
        "{}",
        r.stdout
    );
    let r2 = w.run(&["run"]);
    assert_code(&r2, 0);
    let s = w.snapshot();
    assert_eq!(s["test-mails"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["settings"]["smtp"]["host"], "smtp.example.com");
    let patches = w
        .requests()
        .iter()
        .filter(|e| e.method == "PATCH" && e.path == "/api/v2/admin/smtp-settings")
        .count();
    assert_eq!(patches, 1, "the PATCH is never repeated");
    println!("RELIABILITY hostile-slow-smtp runs=2 patches={patches} test-mails=1 exit=0");
}

/// The relay is slower still: TFE holds nothing new when the read-back
/// gives up. The run fails without repeating; the rerun, finding its own
/// intent, reads back first and, TFE now holding the change, sends nothing.
#[test]
fn a_lost_smtp_answer_is_read_back_on_rerun_not_resent() {
    let w = World::new(sim_opts());
    w.edit_config("request_timeout = \"10s\"", "request_timeout = \"1s\"");
    w.sim
        .add_fault(FaultRule::parse("patch=/api/v2/admin/smtp-settings:stall=4s").unwrap());
    let r = w.run(&["run"]);
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("The PATCH is not repeated"),
        "{}",
        r.stderr
    );
    // TFE finishes the mail after the client gave up.
    let mails = || w.snapshot()["test-mails"].as_array().unwrap().len();
    assert!(wait_until(Duration::from_secs(30), || mails() == 1));
    let r2 = w.run(&["run"]);
    assert_code(&r2, 0);
    assert!(
        r2.stdout.contains("TFE already holds") && r2.stdout.contains("nothing sent"),
        "{}",
        r2.stdout
    );
    assert_eq!(mails(), 1);
    println!("RELIABILITY hostile-lost-smtp-answer runs=2 test-mails=1 exit=0");
}

/// A small tmpfs, mounted for one test (needs root and CAP_SYS_ADMIN).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts it, or says why not. With `TFE_BOOTSTRAP_REQUIRE_ROOT=1` (CI)
    /// a test that would skip fails instead.
    fn mount(kib: u32) -> Result<Tmpfs, String> {
        let r = Self::try_mount(kib);
        let why = r.as_ref().err().cloned().unwrap_or_default();
        external("tmpfs (root)", r.is_ok(), &why);
        if let Err(why) = &r {
            assert!(
                std::env::var("TFE_BOOTSTRAP_REQUIRE_ROOT").as_deref() != Ok("1"),
                "this test needs root and a tmpfs here, and would skip: {why}"
            );
        }
        r
    }

    fn try_mount(kib: u32) -> Result<Tmpfs, String> {
        if !is_root() {
            return Err("not running as root".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output_timed()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a filler file until the file system is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let chunk = vec![7u8; 1024];
        while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Points `[admin] token_file` at `path`.
fn token_file_at(w: &World, path: &std::path::Path) {
    w.edit_config(
        "rotate_token = true\n",
        &format!("rotate_token = true\ntoken_file = \"{}\"\n", path.display()),
    );
}

/// The one-time admin token must never be received with nowhere to keep it.
/// A full file system under token_file is found before the POST: exit 2,
/// nothing sent; once space is freed the rerun completes.
#[test]
fn a_full_disk_is_found_before_the_admin_is_created() {
    let fs = match Tmpfs::mount(64) {
        Ok(fs) => fs,
        Err(why) => {
            println!("SKIPPED a_full_disk_is_found_before_the_admin_is_created: {why}");
            return;
        }
    };
    let w = World::new(sim_opts());
    let token_file = fs.path().join("admin-token");
    token_file_at(&w, &token_file);
    fs.fill();
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains(&token_file.display().to_string())
            && r.stderr.contains("nothing was sent")
            && r.stderr.contains("No space left"),
        "{}",
        r.stderr
    );
    assert!(
        !w.requests()
            .iter()
            .any(|e| e.path == "/admin/initial-admin-user"),
        "the admin POST was sent"
    );
    assert_eq!(w.snapshot()["users"].as_array().unwrap().len(), 0);
    fs.free();
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    let tok = std::fs::read_to_string(&token_file).unwrap();
    assert!(w.is_site_admin(tok.trim()));
    println!("RELIABILITY hostile-full-disk-before-post exit=2 admin-posts=0 then exit=0");
}

/// The disk fills up while TFE creates the admin: the token goes into the
/// space claimed before the POST, and it authenticates.
#[test]
fn a_disk_that_fills_during_the_admin_post_keeps_the_token() {
    let fs = match Tmpfs::mount(64) {
        Ok(fs) => fs,
        Err(why) => {
            println!("SKIPPED a_disk_that_fills_during_the_admin_post_keeps_the_token: {why}");
            return;
        }
    };
    let w = World::new(sim_opts());
    let token_file = fs.path().join("admin-token");
    token_file_at(&w, &token_file);
    let r = w.run_while_parked("post=/admin/initial-admin-user:pause", || fs.fill());
    // Rotation later in the run needs new space and may fail; the token
    // TFE showed once is kept either way.
    let tok = std::fs::read_to_string(&token_file).unwrap();
    assert!(
        w.is_site_admin(tok.trim()),
        "token file holds {tok:?}\n{}",
        r.both()
    );
    fs.free();
    assert_code(&w.run(&["run"]), 0);
    assert_eq!(w.snapshot()["users"].as_array().unwrap().len(), 1);
    println!(
        "RELIABILITY hostile-disk-full-during-post token-kept=yes first-exit={} then exit=0",
        r.code
    );
}

/// token_file cannot be written after TFE created the admin (here its
/// claim vanished): the token goes to the second place in the state dir,
/// the error says where, and the rerun moves it into place.
#[test]
fn an_unwritable_token_file_after_the_post_rescues_the_token() {
    let w = World::new(sim_opts());
    let dir = w.dir.path().join("tokens");
    std::fs::create_dir(&dir).unwrap();
    let token_file = dir.join("admin-token");
    token_file_at(&w, &token_file);
    let r = w.run_while_parked("post=/admin/initial-admin-user:pause", || {
        std::fs::remove_file(dir.join(".admin-token.tfe-bootstrap-claim")).unwrap()
    });
    assert_code(&r, 1);
    let rescue = w.state_dir().join("admin-token.rescue");
    assert!(
        r.stderr.contains(&rescue.display().to_string()) && r.stderr.contains("safe in"),
        "{}",
        r.stderr
    );
    let kept = std::fs::read_to_string(&rescue).unwrap();
    assert!(w.is_site_admin(kept.trim()));
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("moved the admin token"), "{}", r.stdout);
    assert!(!rescue.exists());
    assert_eq!(w.snapshot()["users"].as_array().unwrap().len(), 1);
    println!("RELIABILITY hostile-token-file-unwritable-after-post rescued=yes then exit=0");
}

/// Runs `cmd` to its end, or kills it at `deadline` and fails the test: a
/// hang is a finding, not a slow test.
fn run_within(mut cmd: std::process::Command, deadline: Duration) -> Run {
    to_run(cmd.output_within(deadline).unwrap())
}

/// Planted files in the state dir: a `lock` symlink to a victim is refused
/// without touching the victim; a FIFO named `lock` is refused at once, not
/// waited on. Both exit 2 with nothing sent.
#[test]
fn planted_lock_files_are_refused_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new(sim_opts());
    let state = w.state_dir();
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = w.dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(&victim, state.join("lock")).unwrap();
    let r = run_within(w.command(&["run"]), Duration::from_secs(60));
    assert_code(&r, 2);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "the victim was chmod'ed");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    std::fs::remove_file(state.join("lock")).unwrap();
    let c = std::ffi::CString::new(state.join("lock").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let r = run_within(w.command(&["run"]), Duration::from_secs(60));
    assert_code(&r, 2);
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
    assert!(w.requests().is_empty(), "something was sent");
    println!(
        "RELIABILITY hostile-planted-lock symlink=exit-2-victim-untouched fifo=exit-2-no-hang"
    );
}

/// A state dir that others could write to, or that belongs to another
/// user, is refused as OpenSSH's StrictModes would, naming the fix; a
/// read-only one is exit 2 (which systemd does not retry), found before
/// anything is sent.
#[test]
fn unsafe_or_unwritable_state_dirs_exit_2_before_sending() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new(sim_opts());
    let state = w.state_dir();
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("chmod go-w"), "{}", r.stderr);
    let mut cases = 1;
    let root = is_root();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    if root {
        std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
        let r = w.run(&["run"]);
        assert_code(&r, 2);
        assert!(r.stderr.contains("owned by uid 65534"), "{}", r.stderr);
        std::os::unix::fs::chown(&state, Some(0), Some(0)).unwrap();
        cases += 1;
        // Root writes through modes: a read-only mount is what stops it.
        let ro = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=64k,mode=0700", "tmpfs"])
            .arg(&state)
            .status();
        if ro.is_ok_and(|s| s.success()) {
            let r = w.run(&["run"]);
            let _ = std::process::Command::new("umount").arg(&state).status();
            assert_code(&r, 2);
            assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
            cases += 1;
        } else {
            external(
                "read-only tmpfs (root)",
                false,
                "cannot mount a read-only tmpfs",
            );
        }
    } else {
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o500)).unwrap();
        let r = w.run(&["run"]);
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_code(&r, 2);
        cases += 1;
    }
    assert!(w.requests().is_empty(), "something was sent");
    assert_code(&w.run(&["run"]), 0);
    println!("RELIABILITY hostile-unsafe-state-dir cases={cases} all=exit-2-nothing-sent");
}

/// A token file others can read is tightened to 0600 with a warning; one
/// owned by another user is refused with exit 2.
#[test]
fn loose_token_files_are_tightened_foreign_ones_refused() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new(sim_opts());
    assert_code(&w.run(&["run"]), 0);
    let tf = w.token_file();
    std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o644)).unwrap();
    w.edit_config(
        "host = \"smtp.example.com\"",
        "host = \"smtp2.example.com\"",
    );
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("tightened to 0600"), "{}", r.stdout);
    let mode = std::fs::metadata(&tf).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    if is_root() {
        std::os::unix::fs::chown(&tf, Some(65534), None).unwrap();
        w.edit_config(
            "host = \"smtp2.example.com\"",
            "host = \"smtp3.example.com\"",
        );
        let r = w.run(&["run"]);
        assert_code(&r, 2);
        assert!(r.stderr.contains("owned by uid 65534"), "{}", r.stderr);
    } else {
        external("chown (root)", false, "not root, cannot chown");
    }
    println!("RELIABILITY hostile-loose-token-file 0644=tightened-with-warning foreign=exit-2");
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// Sets `[iact]` to run `script` under `sh -c` with `timeout`.
fn iact_command(w: &World, script: &str, timeout: &str) {
    w.edit_config(
        "source = \"auto\"\nsubnets = [\"127.0.0.0/8\"]",
        &format!(
            "source = \"command\"\ncommand = [\"sh\", \"-c\", {script:?}]\ncommand_timeout = \"{timeout}\""
        ),
    );
}

/// A command that prints the IACT and exits, leaving a background child
/// holding stdout, is not waited for: the group is killed when the command
/// exits. One that runs past `command_timeout` is killed with its children.
#[test]
fn iact_command_children_cannot_stretch_the_deadline() {
    let w = World::new(sim_opts());
    let pidfile = w.dir.path().join("grandchild.pid");
    iact_command(
        &w,
        &format!("sleep 300 & echo $! > {}; echo {IACT}", pidfile.display()),
        "3s",
    );
    let r = run_within(w.command(&["run"]), Duration::from_secs(60));
    w.assert_no_secrets(&r);
    assert_code(&r, 0);
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || process_gone(pid)),
        "the background child {pid} survived the command"
    );

    let w = World::new(sim_opts());
    let pidfile = w.dir.path().join("grandchild.pid");
    iact_command(
        &w,
        &format!(
            "sleep 300 & echo $! > {}; sleep 300; echo {IACT}",
            pidfile.display()
        ),
        "2s",
    );
    let r = run_within(w.command(&["run"]), Duration::from_secs(60));
    w.assert_no_secrets(&r);
    assert_code(&r, 4);
    assert!(
        r.stderr.contains("command_timeout (2s)") && r.stderr.contains("children were killed"),
        "{}",
        r.stderr
    );
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || process_gone(pid)),
        "the command's child {pid} survived the timeout"
    );
    println!("RELIABILITY hostile-iact-command background-child=killed timeout=group-killed");
}

/// A failing IACT command that prints the IACT on stderr: the error shows
/// the line, without the token.
#[test]
fn iact_command_stderr_never_shows_a_token() {
    let w = World::new(sim_opts());
    iact_command(
        &w,
        &format!("echo \"debug: token {IACT} rejected\" >&2; exit 3"),
        "5s",
    );
    let r = w.run(&["run"]);
    assert_code(&r, 4);
    assert!(
        r.stderr.contains("debug: token [redacted] rejected"),
        "{}",
        r.stderr
    );
    println!("RELIABILITY hostile-iact-stderr token=redacted");
}

/// A server (or proxy) that echoes the whole request into its error: the
/// password, the IACT in the query, the Authorization header, the SMTP
/// password. No secret reaches the output, in text or JSON; each becomes
/// `[redacted]`.
#[test]
fn echoed_secrets_are_redacted_in_text_and_json() {
    let w = World::new(sim_opts());
    w.sim
        .add_fault(FaultRule::parse("post=/admin/initial-admin-user:echo=422*2").unwrap());
    let mut redacted = 0;
    for format in ["text", "json"] {
        let r = w.run(&["--output", format, "run"]);
        assert_code(&r, 1);
        assert!(
            r.both().contains("with body"),
            "the echo reached the output:\n{}",
            r.both()
        );
        redacted += r.both().matches("[redacted]").count();
    }
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    w.sim
        .add_fault(FaultRule::parse("patch=/api/v2/admin/smtp-settings:echo=422*2").unwrap());
    w.edit_config(
        "host = \"smtp.example.com\"",
        "host = \"smtp2.example.com\"",
    );
    for format in ["text", "json"] {
        let r = w.run(&["--output", format, "run"]);
        assert_code(&r, 1);
        assert!(
            r.both().contains("authorization: Bearer [redacted]"),
            "{}",
            r.both()
        );
        redacted += r.both().matches("[redacted]").count();
    }
    println!("RELIABILITY hostile-echoed-secrets runs=4 secrets-redacted={redacted} leaked=0");
}

/// Starts `cmd` with stdout piped and returns the child and a channel of
/// its stdout lines (read on a thread, so waiting has a deadline).
fn spawn_lines(
    cmd: std::process::Command,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    spawn_lines_of(cmd, false)
}

/// [`spawn_lines`] for stdout, or with `stderr` for stderr.
fn spawn_lines_of(
    mut cmd: std::process::Command,
    stderr: bool,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    use std::process::Stdio;
    // The stream not read goes nowhere, so it can never fill its pipe.
    let (o, e) = if stderr {
        (Stdio::null(), Stdio::piped())
    } else {
        (Stdio::piped(), Stdio::null())
    };
    let mut child = cmd.stdout(o).stderr(e).spawn().unwrap();
    let out: Box<dyn std::io::Read + Send> = if stderr {
        Box::new(child.stderr.take().unwrap())
    } else {
        Box::new(child.stdout.take().unwrap())
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// SIGTERM and SIGINT during the readiness wait: the JSON stream ends with
/// `finished` and exit 143 / 130, the state is consistent, and a rerun
/// completes.
#[test]
fn sigterm_and_sigint_end_with_finished_and_128_plus_signal() {
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        let w = World::new(tfe_bootstrap::sim::SimOptions {
            ready_after: Duration::from_secs(3600),
            ..sim_opts()
        });
        w.edit_config("timeout = \"20s\"", "timeout = \"10m\"");
        let (mut child, lines) = spawn_lines(w.command(&["--output", "json", "run"]));
        let mut seen = vec![];
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !seen.iter().any(|l: &String| l.contains("\"wait_poll\"")) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match lines.recv_timeout(left) {
                Ok(l) => seen.push(l),
                Err(_) => panic!("no wait_poll event: {seen:?}"),
            }
        }
        // SAFETY: signalling our own child by pid.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        let exited = wait_until(Duration::from_secs(30), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        assert!(exited, "still running after the signal");
        let status = child.wait().unwrap();
        seen.extend(lines.iter());
        let last: serde_json::Value = serde_json::from_str(seen.last().unwrap()).unwrap();
        assert_eq!(status.code(), Some(code), "{seen:?}");
        assert_eq!(last["event"], "finished", "{seen:?}");
        assert_eq!(last["exit_code"], code);
        assert!(
            last["error"].as_str().unwrap().contains("stopped by SIG"),
            "{last}"
        );
        if let Ok(t) = std::fs::read_to_string(w.state_dir().join("state.json")) {
            serde_json::from_str::<serde_json::Value>(&t).expect("state.json stays valid");
        }
    }
    println!("RELIABILITY hostile-signals SIGTERM=exit-143-finished SIGINT=exit-130-finished");
}

/// `https://` pointed at a plain-HTTP port fails at once, naming the
/// address and the fix, instead of waiting out `[wait] timeout`.
#[test]
fn https_to_a_plain_http_port_fails_fast() {
    let w = World::new(sim_opts());
    let plain = w.sim.url().to_string();
    let https = plain.replace("http://", "https://");
    w.edit_config(
        &format!("address = \"{plain}\""),
        &format!("address = \"{https}\""),
    );
    w.edit_config("timeout = \"20s\"", "timeout = \"30m\"");
    let r = run_within(w.command(&["run"]), Duration::from_secs(60));
    w.assert_no_secrets(&r);
    // Exit 2 (waiting cannot fix it), not 3 after a 30-minute wait.
    assert_code(&r, 2);
    assert!(
        r.stderr.contains(&https) && r.stderr.contains("plain HTTP, not TLS"),
        "{}",
        r.stderr
    );
    println!(
        "RELIABILITY hostile-https-on-plain-port exit={} waited=no",
        r.code
    );
}

/// A reader that went away (a closed pipe on stdout and stderr) never
/// turns into a panic and SIGABRT: the exit code is still the contract's.
#[test]
fn broken_stdout_and_stderr_never_abort() {
    use std::os::unix::process::ExitStatusExt;
    let w = World::new(sim_opts());
    for args in [&["validate"][..], &["run"], &["status"]] {
        // Both pipes' read ends are closed before the child writes.
        let mut child = w
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        drop(child.stderr.take());
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            None,
            "{args:?} died of a signal: {status:?}"
        );
        assert_eq!(status.code(), Some(0), "{args:?}");
    }
    // An error (exit 2) printed to a closed stderr.
    w.edit_config("[smtp]", "[smpt]");
    let mut child = w
        .command(&["run"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), None, "{status:?}");
    assert_eq!(status.code(), Some(2));
    println!("RELIABILITY hostile-closed-output commands=4 aborts=0");
}

/// One request that never gets an answer ends within `[tfe]
/// request_deadline`, retries included, and says so.
#[test]
fn a_hanging_get_ends_within_the_request_deadline() {
    let w = World::new(sim_opts());
    w.edit_config(
        "request_timeout = \"10s\"",
        "request_timeout = \"1s\"\nrequest_deadline = \"3s\"",
    );
    w.sim
        .add_fault(FaultRule::parse("get=/api/v2/organizations/my-org:stall=5s*50").unwrap());
    let r = run_within(w.command(&["run"]), Duration::from_secs(120));
    w.assert_no_secrets(&r);
    assert_code(&r, 1);
    let said = r
        .stderr
        .split("gave up after ")
        .nth(1)
        .unwrap_or_else(|| panic!("{}", r.stderr));
    // "N attempts in Ss ([tfe] request_deadline)"
    let secs: u64 = said
        .split(" in ")
        .nth(1)
        .and_then(|s| s.split('s').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(secs <= 3, "{said}");
    assert!(said.contains("([tfe] request_deadline)"), "{said}");
    println!("RELIABILITY hostile-hanging-get request_deadline=3s gave-up-after={secs}s");
}

/// Inputs that would take unbounded memory are refused with the file named:
/// a huge config, a secret file that never ends, a huge state.json, a huge
/// token file.
#[test]
fn oversized_inputs_are_refused_by_name() {
    let w = World::new(sim_opts());
    let huge = w.dir.path().join("huge.toml");
    let mut text = w.config_text();
    text.push_str(&format!("# {}\n", "x".repeat(2 << 20)));
    std::fs::write(&huge, text).unwrap();
    let r = to_run(
        std::process::Command::new(bin())
            .args(["validate", "--config"])
            .arg(&huge)
            .output_timed()
            .unwrap(),
    );
    assert_code(&r, 2);
    assert!(r.stderr.contains("larger than 1024 KiB"), "{}", r.stderr);

    let t = w.config_text();
    w.write_config(&t.replace(
        "password = { env = \"T_SMTP_PASSWORD\" }",
        "password = { file = \"/dev/zero\" }",
    ));
    let r = run_within(w.command(&["validate"]), Duration::from_secs(60));
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("/dev/zero is larger than"),
        "{}",
        r.stderr
    );
    w.write_config(&t);

    std::fs::create_dir_all(w.state_dir()).unwrap();
    let state = w.state_dir().join("state.json");
    std::fs::write(&state, format!("{{\"format\":{}}}", " ".repeat(5 << 20))).unwrap();
    let r = w.run(&["run"]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("larger than 4096 KiB"), "{}", r.stderr);
    assert!(w.requests().is_empty());
    std::fs::remove_file(&state).unwrap();

    std::fs::write(w.token_file(), "t".repeat(100 << 10)).unwrap();
    let r = w.run(&["run"]);
    assert_code(&r, 4);
    assert!(r.stderr.contains("larger than 64 KiB"), "{}", r.stderr);
    println!(
        "RELIABILITY hostile-oversized-inputs config=refused secret-file=refused state=refused token-file=refused"
    );
}

/// A secret is a string, `{ env }` or `{ file }`: `["X"]` is refused and X
/// is not echoed; zero durations are refused where they mean nothing.
#[test]
fn odd_secret_shapes_and_zero_durations_are_refused() {
    let w = World::new(sim_opts());
    let t = w.config_text();
    w.write_config(&t.replace(
        "password = { env = \"T_SMTP_PASSWORD\" }",
        "password = [\"Sm7pSecretValue\"]",
    ));
    let r = w.run(&["validate"]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("{ env = \"NAME\" }"), "{}", r.stderr);
    assert!(!r.both().contains("Sm7pSecretValue"), "{}", r.both());
    for (from, to, key) in [
        (
            "request_timeout = \"10s\"",
            "request_timeout = \"0s\"",
            "[tfe] request_timeout",
        ),
        ("timeout = \"20s\"", "timeout = \"0s\"", "[wait] timeout"),
        (
            "max_interval = \"200ms\"",
            "max_interval = \"0ms\"",
            "[wait] max_interval",
        ),
    ] {
        w.write_config(&t.replace(from, to));
        let r = w.run(&["validate"]);
        assert_code(&r, 2);
        assert!(
            r.stderr.contains(key) && r.stderr.contains("longer than zero"),
            "{key}: {}",
            r.stderr
        );
    }
    assert!(w.requests().is_empty());
    println!("RELIABILITY hostile-config-shapes list-secret=refused zero-durations=refused");
}

/// The verification SMS is a witness too: TFE sent it but its answer was
/// lost. The run fails without repeating it; the rerun finds its intent and
/// does not send a second SMS.
#[test]
fn a_lost_twilio_verify_answer_sends_no_second_sms() {
    let w = World::new(sim_opts());
    w.write_config(&format!("{}{TWILIO_SECTION}", w.config_text()));
    w.edit_config("request_timeout = \"10s\"", "request_timeout = \"2s\"");
    let r = w.run_while_parked(
        "post=/api/v2/admin/twilio-settings/verify:pause-after",
        || {},
    );
    assert_code(&r, 1);
    assert!(r.stderr.contains("will not send it again"), "{}", r.stderr);
    let sms = || w.snapshot()["test-sms"].as_array().unwrap().len();
    assert_eq!(sms(), 1);
    let r = w.run(&["run"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("nothing sent"), "{}", r.stdout);
    assert_eq!(sms(), 1, "a second SMS");
    println!("RELIABILITY hostile-lost-twilio-answer runs=2 sms=1 exit=0");
}

/// The disk under the token files fills up while TFE mints each token (the
/// admin token's rotation, the organization token, the owners team token):
/// the token goes into the room claimed before the POST, so it is kept and
/// works. Once space is freed, the rerun finishes with every file working.
#[test]
fn a_disk_that_fills_during_each_token_mint_keeps_the_token() {
    for (rule, file) in [
        (
            "post=/api/v2/users/*/authentication-tokens:pause",
            "admin-token",
        ),
        (
            "post=/api/v2/organizations/my-org/authentication-token:pause",
            "org-token",
        ),
        (
            "post=/api/v2/teams/*/authentication-token:pause",
            "owners-token",
        ),
    ] {
        let fs = match Tmpfs::mount(64) {
            Ok(fs) => fs,
            Err(why) => {
                println!("SKIPPED a_disk_that_fills_during_each_token_mint_keeps_the_token: {why}");
                return;
            }
        };
        let w = World::new(sim_opts()).with_service_tokens();
        let t = w
            .config_text()
            .replace(
                &w.dir.path().join("org-token").display().to_string(),
                &fs.path().join("org-token").display().to_string(),
            )
            .replace(
                &w.dir.path().join("owners-token").display().to_string(),
                &fs.path().join("owners-token").display().to_string(),
            );
        w.write_config(&t);
        token_file_at(&w, &fs.path().join("admin-token"));
        let r = w.run_while_parked(rule, || fs.fill());
        let kept = std::fs::read_to_string(fs.path().join(file)).unwrap();
        assert!(
            w.authenticates(kept.trim()),
            "{rule}: {file} does not hold the minted token\n{}",
            r.both()
        );
        fs.free();
        assert_code(&w.run(&["run"]), 0);
        for f in ["admin-token", "org-token", "owners-token"] {
            let t = w.token_at(&fs.path().join(f));
            assert!(w.authenticates(&t), "{rule}: {f} does not work at the end");
        }
        println!(
            "RELIABILITY hostile-disk-full-during-mint rule={rule} kept=yes first-exit={} then exit=0",
            r.code
        );
    }
}

/// The same as a fleet's duty holder: the holder's token file system fills
/// while TFE answers its organization token POST. The token is kept in the
/// claimed room and published; once space is freed, every node ends with
/// the same working token.
#[test]
fn a_fleet_holder_whose_disk_fills_during_the_mint_keeps_and_publishes_it() {
    let fs = match Tmpfs::mount(64) {
        Ok(fs) => fs,
        Err(why) => {
            println!("SKIPPED a_fleet_holder_whose_disk_fills_during_the_mint: {why}");
            return;
        }
    };
    let mut f = crate::fleet::Fleet::new(None, "60s");
    let holder = f.node();
    let on_tmpfs = fs.path().join("org-token");
    let t = std::fs::read_to_string(&holder.config).unwrap().replace(
        &holder.org_token().display().to_string(),
        &on_tmpfs.display().to_string(),
    );
    std::fs::write(&holder.config, t).unwrap();
    f.sim.add_fault(
        FaultRule::parse("post=/api/v2/organizations/my-org/authentication-token:pause").unwrap(),
    );
    let child = f.spawn(&holder);
    assert!(
        f.sim.wait_parked(Duration::from_secs(60)).is_some(),
        "never parked"
    );
    fs.fill();
    f.sim.release();
    let first = to_run(child.wait_timed().unwrap());
    let kept = std::fs::read_to_string(&on_tmpfs).unwrap();
    assert!(
        Http::new(f.sim.url())
            .get("/api/v2/organizations/my-org", Some(kept.trim()))
            .0
            == 200,
        "the holder did not keep the token:\n{}",
        first.both()
    );
    fs.free();
    let others: Vec<crate::fleet::Node> = (0..3).map(|_| f.node()).collect();
    for (r, _) in f.run_all(&others) {
        assert_code(&r, 0);
    }
    let r = to_run(f.spawn(&holder).wait_timed().unwrap());
    assert_code(&r, 0);
    for n in &others {
        assert_eq!(
            std::fs::read_to_string(n.org_token()).unwrap().trim(),
            kept.trim()
        );
    }
    println!(
        "RELIABILITY hostile-fleet-holder-disk-full-during-mint kept=yes published=yes nodes=1+3 exit=0"
    );
}

/// Issue 34: Ctrl-C during a slow request is acknowledged at once, while
/// the request is still held (it then finishes, and the run stops at the
/// next safe point with exit 130), not only when the request returns.
#[test]
fn a_stop_during_a_held_request_is_acknowledged_at_once() {
    let w = World::new(sim_opts());
    w.sim.add_fault(
        tfe_bootstrap::sim::faults::FaultRule::parse("patch=/api/v2/admin/general-settings:pause")
            .unwrap(),
    );
    let (mut child, rx) = spawn_lines_of(w.command(&["run"]), true);
    assert!(
        w.sim.wait_parked(Duration::from_secs(60)).is_some(),
        "the PATCH never arrived"
    );
    // SAFETY: signalling our own child by pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let said = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("nothing said while the request is held");
    assert!(said.contains("stopping"), "{said}");
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "said while the run still waits for the held request"
    );
    w.sim.release();
    let out = child.wait_timed().unwrap();
    assert_eq!(out.status.code(), Some(130));
}
