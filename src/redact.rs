//! The one redactor in front of every output. Every secret value the run
//! learns (config secrets, the IACT, every token TFE hands out) is
//! registered here the moment it exists; [`scrub`] replaces each, in its raw,
//! JSON-escaped and percent-encoded forms, with `[redacted]`. The reporter
//! passes every line it prints (text, JSON, errors, warnings) through it, so
//! a secret that reaches a message by an unforeseen path (an error body that
//! echoes the request, a command's stderr) still never leaves the process.
//!
//! Values shorter than [`MIN_LEN`] are not registered: replacing every
//! `abc` in the output would garble it and hide nothing worth hiding.

use std::borrow::Cow;
use std::sync::Mutex;

/// What a secret becomes in any output.
pub const REDACTED: &str = "[redacted]";

/// Shorter values are left alone (see the module docs).
pub const MIN_LEN: usize = 6;

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn secrets() -> std::sync::MutexGuard<'static, Vec<String>> {
    SECRETS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The forms a secret takes on its way out: raw; JSON-escaped as serde
/// writes it, as an ASCII-only writer writes it (`\u00f8`, and Rails'
/// `\u0026` for `&`, `<`, `>`), and escaped twice (a JSON body quoted inside
/// another); percent-encoded with upper- and lower-case hex, and as a form
/// (`+` for a space).
fn forms(value: &str) -> Vec<String> {
    let json = json_inner(value);
    let twice = json_inner(&json);
    let ascii: String = value
        .chars()
        .map(|c| match c {
            c if !c.is_ascii() => {
                let mut buf = [0u16; 2];
                c.encode_utf16(&mut buf)
                    .iter()
                    .map(|u| format!("\\u{u:04x}"))
                    .collect()
            }
            '&' | '<' | '>' => format!("\\u{:04x}", c as u32),
            c => json_inner(&c.to_string()),
        })
        .collect();
    let pct = crate::util::percent_encode(value);
    let lower = lower_hex(&pct);
    let form = crate::util::percent_encode(&value.replace(' ', "\u{0}")).replace("%00", "+");
    let mut out = vec![value.to_string(), json, twice, ascii, pct, lower, form];
    out.sort();
    out.dedup();
    out
}

/// `value` as it stands between the quotes of a JSON string.
fn json_inner(value: &str) -> String {
    let json = serde_json::to_string(value).unwrap_or_default();
    json.strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(value)
        .to_string()
}

/// `%2F` → `%2f`: some encoders write lower-case hex.
fn lower_hex(pct: &str) -> String {
    let mut out = String::with_capacity(pct.len());
    let mut hex_left = 0;
    for c in pct.chars() {
        if c == '%' {
            hex_left = 2;
            out.push(c);
        } else if hex_left > 0 {
            hex_left -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Remembers `value` (and its escaped and encoded forms) for [`scrub`].
pub fn register(value: &str) {
    if value.chars().count() < MIN_LEN {
        return;
    }
    let mut s = secrets();
    for form in forms(value) {
        if !s.contains(&form) {
            s.push(form);
        }
    }
    // Longest first, so a secret that contains another is replaced whole.
    s.sort_by_key(|v| std::cmp::Reverse(v.len()));
}

/// `text` with every registered secret replaced by [`REDACTED`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let s = secrets();
    if !s.iter().any(|v| text.contains(v.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for v in s.iter() {
        if out.contains(v.as_str()) {
            out = out.replace(v.as_str(), REDACTED);
        }
    }
    Cow::Owned(out)
}

/// Scrubs every string in `v` (keys too) *before* it is serialized: once a
/// value is written as JSON, a secret holding `"`, `\\` or a control
/// character no longer looks like itself, so scrubbing the line afterwards
/// would miss it.
pub fn scrub_value(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            if let Cow::Owned(clean) = scrub(s) {
                *s = clean;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub_value),
        Value::Object(o) => {
            let dirty: Vec<String> = o
                .keys()
                .filter(|k| matches!(scrub(k), Cow::Owned(_)))
                .cloned()
                .collect();
            for k in dirty {
                if let Some(val) = o.remove(&k) {
                    o.insert(scrub(&k).into_owned(), val);
                }
            }
            o.values_mut().for_each(scrub_value);
        }
        _ => {}
    }
}

/// Scrubs `text`, then cuts it to `max` characters: never the other way
/// round, or a cut through a secret leaves its prefix unmatched.
pub fn scrub_and_cut(text: &str, max: usize) -> String {
    let clean = scrub(text);
    if clean.chars().count() <= max {
        return clean.into_owned();
    }
    let mut cut: String = clean.chars().take(max).collect();
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_replaced() {
        register("pa ss\"w/rd-93");
        let t = scrub(r#"a pa ss"w/rd-93 b "pa ss\"w/rd-93" c ?token=pa%20ss%22w%2Frd-93"#);
        assert_eq!(t, "a [redacted] b \"[redacted]\" c ?token=[redacted]");
        register("x\"y\\z\tw%+& øq");
        for leak in [
            "x\"y\\z\tw%+& øq",
            r#"x\"y\\z\tw%+& øq"#,
            r#"x\\\"y\\\\z\\tw%+& øq"#,
            r#"x\"y\\z\tw%+\u0026 \u00f8q"#,
            "x%22y%5Cz%09w%25%2B%26%20%C3%B8q",
            "x%22y%5cz%09w%25%2b%26%20%c3%b8q",
            "x%22y%5Cz%09w%25%2B%26+%C3%B8q",
        ] {
            assert_eq!(scrub(&format!("<{leak}>")), "<[redacted]>", "{leak}");
        }
        let mut v = serde_json::json!({"a": ["x\"y\\z\tw%+& øq"], "x\"y\\z\tw%+& øq": 1});
        scrub_value(&mut v);
        assert_eq!(v.to_string(), r#"{"[redacted]":1,"a":["[redacted]"]}"#);
        assert_eq!(
            scrub_and_cut("0123456789x\"y\\z\tw%+& øq", 14),
            "0123456789[red..."
        );
        register("abc");
        assert_eq!(scrub("abc"), "abc", "short values are not registered");
    }
}
