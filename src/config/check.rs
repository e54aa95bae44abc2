//! The validation toolkit the sections share: a [`Checker`] that collects
//! every problem (so one run of `validate` names them all), duration, secret,
//! e-mail and required-key rules, the address and TTL parsers, and the
//! "did you mean" hints for misspelled keys.

use std::fmt;
use std::time::Duration;

use super::duration::parse_duration;
use super::raw::TtlValue;
use super::secret::{Secret, SecretSource};

/// Does this look like an e-mail address (`local@domain.tld`, no spaces)?
pub fn looks_like_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((l, d))
        if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
            && !d.contains('@') && !s.contains(char::is_whitespace))
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate within a small edit distance.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Turns a toml/serde error into one line: where, which table, what, and a hint.
pub(super) fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let msg = err.message().trim().to_string();
    let (line, table) = match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let table = before
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| l.starts_with('[') && !l.starts_with("[["))
                .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
            (Some(line), table)
        }
        None => (None, None),
    };
    let mut out = String::new();
    if let Some(l) = line {
        out.push_str(&format!("line {l}: "));
    }
    if let Some(t) = &table {
        out.push_str(&format!("[{t}] "));
    }
    // serde: "unknown field `hots`, expected one of `host`, `port`" / "expected `a` or `b`"
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once('`')
    {
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        // At the top level the "fields" are the sections.
        let top = candidates.contains(&"tfe") && candidates.contains(&"admin");
        if top {
            out = line.map(|l| format!("line {l}: ")).unwrap_or_default();
            out.push_str(&format!("unknown section [{field}]"));
        } else {
            out.push_str(&format!("unknown key {field:?}"));
        }
        match did_you_mean(field, candidates.iter().copied()) {
            Some(s) if top => out.push_str(&format!(": did you mean [{s}]?")),
            Some(s) => out.push_str(&format!(": did you mean {s:?}?")),
            None if !candidates.is_empty() => out.push_str(&format!(
                "; {} {}",
                if top {
                    "sections are:"
                } else {
                    "this table takes:"
                },
                candidates.join(", ")
            )),
            None => {}
        }
        return out;
    }
    // serde: "invalid type: string \"60\", expected i64": name the key (the
    // one the span's line sets) and the type in the config's words.
    if let Some(kind) = msg.strip_prefix("invalid type: ")
        && let Some((found, expected)) = kind.split_once(", expected ")
    {
        let key = err
            .span()
            .and_then(|sp| text[..sp.start.min(text.len())].lines().last())
            .and_then(|l| l.split_once('='))
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
            .filter(|k| !k.is_empty() && !k.starts_with('['));
        if let Some(k) = key {
            out.push_str(&format!("{k}: "));
        }
        let wanted = match expected.trim() {
            "i64" | "u64" | "i32" | "u32" => "a whole number".to_string(),
            "u16" => "a whole number from 0 to 65535".to_string(),
            "a boolean" | "bool" => "true or false".to_string(),
            other => other.to_string(),
        };
        out.push_str(&format!("{found} is not {wanted}"));
        return out;
    }
    out.push_str(&msg);
    out
}

/// No duration in the config may exceed this (keeps deadline arithmetic safe).
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

pub(super) struct Checker {
    pub(super) problems: Vec<String>,
    /// Secrets whose source is absent now (key → why): a problem only for a
    /// step that still has to send them (see [`super::Config::absent`]).
    pub(super) absent: std::collections::BTreeMap<String, String>,
    /// The variables `{ env = "NAME" }` secrets come from.
    pub(super) secret_envs: Vec<String>,
    /// Findings that are not errors (shown by validate and run).
    pub(super) warnings: Vec<String>,
}

impl Checker {
    pub(super) fn fail(&mut self, key: &str, msg: impl fmt::Display) {
        self.problems.push(format!("{key}: {msg}"));
    }
    /// A finding that does not stop the config (`validate` and `run` print it).
    pub(super) fn warn(&mut self, msg: impl Into<String>) {
        self.warnings.push(msg.into());
    }
    pub(super) fn duration(&mut self, key: &str, v: Option<&String>, default: &str) -> Duration {
        let text = v.map(String::as_str).unwrap_or(default);
        match parse_duration(text) {
            Ok(d) if d > MAX_DURATION => {
                self.fail(key, format!("{text:?} is longer than 100 years"));
                Duration::ZERO
            }
            // Every duration in the config is a timeout, an interval or a
            // window: zero would mean "fail at once" or "spin", never intended.
            Ok(d) if d.is_zero() => {
                self.fail(key, format!("{text:?} must be longer than zero"));
                Duration::ZERO
            }
            Ok(d) => d,
            Err(e) => {
                self.fail(key, e);
                Duration::ZERO
            }
        }
    }
    pub(super) fn secret(&mut self, key: &str, v: Option<&SecretSource>) -> Option<Secret> {
        let v = v?;
        if let SecretSource::Env(e) = v {
            self.secret_envs.push(e.env.clone());
        }
        match v.resolve() {
            Ok(s) => Some(s),
            Err(e) if v.is_absent() => {
                self.absent.insert(key.to_string(), e.to_string());
                None
            }
            Err(e) => {
                self.fail(
                    key,
                    format!("{e}: provide it, or point the key at another source"),
                );
                None
            }
        }
    }
    pub(super) fn email(&mut self, key: &str, v: Option<&String>) {
        if let Some(e) = v
            && !looks_like_email(e)
        {
            self.fail(key, format!("{e:?} does not look like an e-mail address"));
        }
    }
    pub(super) fn required<'a>(
        &mut self,
        key: &str,
        v: Option<&'a String>,
        why: &str,
    ) -> Option<&'a String> {
        match v {
            Some(s) if !s.trim().is_empty() => Some(s),
            _ => {
                self.fail(key, format!("is required {why}"));
                None
            }
        }
    }
}

pub(super) fn parse_address(
    c: &mut Checker,
    raw: Option<&String>,
    allow_http: bool,
) -> (String, bool, String, u16) {
    let Some(a) = raw.filter(|a| !a.trim().is_empty()) else {
        c.fail(
            "[tfe] address",
            "is required, e.g. address = \"https://tfe.example.com\"",
        );
        return (String::new(), true, String::new(), 443);
    };
    let a = a.trim().trim_end_matches('/');
    let (https, rest) = if let Some(r) = a.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = a.strip_prefix("http://") {
        (false, r)
    } else {
        c.fail(
            "[tfe] address",
            format!("{a:?} must start with https:// (or http:// with allow_insecure_http = true)"),
        );
        return (String::new(), true, String::new(), 443);
    };
    if !https && !allow_http {
        c.fail(
            "[tfe] address",
            format!("{a:?} is plain http://: the admin password and tokens would cross the network in clear text; use https:// or set [tfe] allow_insecure_http = true (lab use only)"),
        );
    }
    if rest.contains('@') {
        // Not echoed: what precedes '@' may be a password.
        c.fail(
            "[tfe] address",
            "must not hold a user or password (user:pass@host); tfe-bootstrap authenticates with tokens",
        );
        return (String::new(), https, String::new(), 0);
    }
    if rest.contains(['/', '?', '#']) || rest.is_empty() {
        c.fail(
            "[tfe] address",
            format!("{a:?} must be scheme://host[:port] with no path or query"),
        );
        return (a.into(), https, String::new(), 0);
    }
    let default_port = if https { 443 } else { 80 };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, "")) => (h.to_string(), Some(default_port)),
            Some((h, p)) => (
                h.to_string(),
                p.strip_prefix(':').and_then(|p| p.parse().ok()),
            ),
            None => (String::new(), None),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()),
            None => (rest.to_string(), Some(default_port)),
        }
    };
    match port {
        Some(p) if p > 0 && !host.is_empty() => (a.to_string(), https, host, p),
        _ => {
            c.fail(
                "[tfe] address",
                format!("{a:?} has an invalid host or port"),
            );
            (a.into(), https, host, 0)
        }
    }
}

pub(super) fn parse_ttl(c: &mut Checker, key: &str, v: &TtlValue) -> Option<u64> {
    let ms = match v {
        TtlValue::Millis(n) if *n > 0 => *n as u64,
        TtlValue::Millis(n) => {
            c.fail(
                key,
                format!("{n} must be a positive number of milliseconds"),
            );
            return None;
        }
        TtlValue::Text(t) => match parse_duration(t) {
            Ok(d) if d > MAX_DURATION => {
                c.fail(key, format!("{t:?} is longer than 100 years"));
                return None;
            }
            Ok(d) => d.as_millis() as u64,
            Err(e) => {
                c.fail(key, e);
                return None;
            }
        },
    };
    if ms == 0 {
        c.fail(key, "must be positive");
        return None;
    }
    Some(ms)
}
