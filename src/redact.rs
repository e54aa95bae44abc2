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

/// Remembers `value` (and its escaped forms) for [`scrub`].
pub fn register(value: &str) {
    if value.chars().count() < MIN_LEN {
        return;
    }
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(value)
        .to_string();
    let pct = crate::util::percent_encode(value);
    let mut s = secrets();
    for form in [value.to_string(), json, pct] {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_replaced() {
        register("pa ss\"w/rd-93");
        let t = scrub(r#"a pa ss"w/rd-93 b "pa ss\"w/rd-93" c ?token=pa%20ss%22w%2Frd-93"#);
        assert_eq!(t, "a [redacted] b \"[redacted]\" c ?token=[redacted]");
        register("abc");
        assert_eq!(scrub("abc"), "abc", "short values are not registered");
    }
}
