//! Tokens and secrets under attack (issue 21): secrets that JSON or URL
//! encoding changes, echoed by TFE or a proxy in JSON and in plain text at
//! every offset around the client's cut, in text, JSON and `-v` output.

use tfe_bootstrap::sim::faults::FaultRule;

use crate::util::*;

/// A password with every character that an encoder rewrites: `"`, `\`,
/// tab, newline, `%`, `+`, `&`, space and non-ASCII.
const HOSTILE: &str = "Qx\"9\\Vb\tK%w+J&\u{fc}7\nRz 3Lp";

/// Every 5-character window of `secret`, raw and JSON-escaped: any of them
/// in an output is (part of) a leak.
fn windows(secret: &str) -> Vec<String> {
    let mut out = vec![];
    for form in [
        secret.to_string(),
        serde_json::to_string(secret)
            .unwrap()
            .trim_matches('"')
            .to_string(),
        serde_json::to_string(&serde_json::to_string(secret).unwrap())
            .unwrap()
            .trim_matches('"')
            .to_string(),
    ] {
        let chars: Vec<char> = form.chars().collect();
        for w in chars.windows(5) {
            let w: String = w.iter().collect();
            if !w.chars().all(|c| c.is_ascii_alphanumeric())
                || w.chars().any(|c| c.is_ascii_digit())
            {
                out.push(w);
            }
        }
    }
    out
}

#[track_caller]
fn assert_no_piece(out: &str, secret: &str, what: &str) {
    for w in windows(secret) {
        assert!(
            !out.contains(&w),
            "{what}: a piece of the secret ({w:?}) leaked:\n{out}"
        );
    }
}

fn run_with_password(w: &World, args: &[&str], password: &str) -> Run {
    let out = w
        .command(args)
        .env("T_ADMIN_PASSWORD", password)
        .output()
        .expect("run tfe-bootstrap");
    to_run(out)
}

/// TFE (or a proxy) echoes the request as JSON: the password arrives
/// JSON-escaped in the error, and the JSON output escapes it once more.
/// Neither form, nor any piece of either, reaches text, JSON or `-v`.
#[test]
fn an_echoed_hostile_password_never_leaks_in_any_format() {
    let w = World::new(sim_opts());
    let formats: [&[&str]; 3] = [
        &["--output", "text", "run"],
        &["--output", "json", "run"],
        &["--output", "json", "-v", "run"],
    ];
    w.sim
        .add_fault(FaultRule::parse("post=/admin/initial-admin-user:echo=422*3").unwrap());
    for args in formats {
        let r = run_with_password(&w, args, HOSTILE);
        assert_code(&r, 1);
        assert!(r.both().contains("[redacted]"), "{}", r.both());
        assert_no_piece(&r.both(), HOSTILE, &args.join(" "));
    }
}

/// A proxy's plain-text error page quotes the request, with the password
/// at every offset around the point where the client cuts a long body
/// (200 characters): no prefix of it survives the cut.
#[test]
fn a_plain_text_echo_cut_through_the_password_leaks_no_prefix() {
    let w = World::new(sim_opts());
    // The JSON-escaped password is about 26 characters and starts 44 to 67
    // characters into the body (the key order is the client's): these pads
    // put its start on every offset from 150 to 210.
    let pads: Vec<usize> = (83..=166).collect();
    let formats: [&[&str]; 3] = [
        &["--output", "text", "run"],
        &["--output", "json", "run"],
        &["--output", "json", "-v", "run"],
    ];
    let mut runs = 0;
    for (i, pad) in pads.iter().enumerate() {
        let args = formats[i % 3];
        w.sim.add_fault(
            FaultRule::parse(&format!(
                "post=/admin/initial-admin-user:echo-text=502+{pad}"
            ))
            .unwrap(),
        );
        let r = run_with_password(&w, args, HOSTILE);
        assert_ne!(r.code, 0, "{}", r.both());
        assert_no_piece(
            &r.both(),
            HOSTILE,
            &format!("pad {pad}, {}", args.join(" ")),
        );
        runs += 1;
    }
    println!("RELIABILITY secrets-cut-echo runs={runs} leaked=0");
}
