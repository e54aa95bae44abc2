//! Why a request to TFE failed ([`TfeError`]), and TFE's error text read
//! from every body shape it is documented to send ([`error_detail`]).

use std::fmt;

use serde_json::Value;

use super::Method;

/// Why a request failed.
#[derive(Debug, Clone)]
pub enum TfeError {
    /// TFE answered, but not with success. `ambiguous`: the answer came
    /// from a gateway in front of TFE (502/504 to a request that changes
    /// something), so TFE may have acted; decided where the request is sent.
    Status {
        method: Method,
        path: String,
        status: u16,
        detail: String,
        ambiguous: bool,
    },
    /// No usable answer. `ambiguous`: the request may have reached TFE.
    Transport {
        method: Method,
        path: String,
        detail: String,
        ambiguous: bool,
    },
    /// The TLS handshake failed; `detail` says why and what to do.
    Tls { detail: String },
    /// The answer could not be understood.
    Decode {
        method: Method,
        path: String,
        detail: String,
    },
    /// TFE answered success but does not hold what was sent: each key with
    /// the value sent and the value TFE holds.
    NotKept {
        method: Method,
        path: String,
        keys: Vec<(String, Value, Value)>,
    },
    /// A mutating request was attempted by a read-only client (`plan`).
    ReadOnly { method: Method, path: String },
}

impl TfeError {
    pub fn status(&self) -> Option<u16> {
        match self {
            TfeError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
    /// Whether TFE may have acted on the request although it failed (see
    /// the variants' `ambiguous`).
    /// The answer did not come within `[tfe] request_timeout`: unlike a
    /// dropped connection, the request may still be on its way through TFE.
    pub fn timed_out(&self) -> bool {
        matches!(self, TfeError::Transport { detail, .. } if detail.starts_with(super::TIMED_OUT))
    }

    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            TfeError::Transport {
                ambiguous: true,
                ..
            } | TfeError::Status {
                ambiguous: true,
                ..
            }
        )
    }
}

impl TfeError {
    /// The error that ended a request's retries at its deadline, saying so.
    pub(super) fn gave_up(mut self, after: std::time::Duration, attempts: u32) -> TfeError {
        if let TfeError::Status { detail, .. } | TfeError::Transport { detail, .. } = &mut self {
            detail.push_str(&format!(
                "; gave up after {attempts} attempts in {:.0}s ([tfe] request_deadline)",
                after.as_secs_f64()
            ));
        }
        self
    }
}

impl fmt::Display for TfeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TfeError::Status {
                method,
                path,
                status,
                detail,
                ..
            } => {
                write!(f, "TFE answered {status} to {method} {path}")?;
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            TfeError::Transport {
                method,
                path,
                detail,
                ambiguous,
            } => {
                write!(f, "{method} {path} failed: {detail}")?;
                if *ambiguous {
                    write!(f, " (the request may have reached TFE)")?;
                }
                Ok(())
            }
            TfeError::Tls { detail } => write!(f, "TLS: {detail}"),
            TfeError::Decode {
                method,
                path,
                detail,
            } => {
                write!(f, "unexpected answer to {method} {path}: {detail}")
            }
            TfeError::NotKept { method, path, keys } => {
                let short = |v: &Value| {
                    let mut v = v.clone();
                    crate::redact::scrub_value(&mut v);
                    crate::redact::scrub_and_cut(&v.to_string(), 57)
                };
                let list: Vec<String> = keys
                    .iter()
                    .map(|(k, sent, held)| {
                        format!("{k} (sent {}, TFE holds {})", short(sent), short(held))
                    })
                    .collect();
                write!(
                    f,
                    "TFE accepted {method} {path} but did not keep {}: this TFE ignores the setting there, or keeps it elsewhere",
                    list.join(", ")
                )
            }
            TfeError::ReadOnly { method, path } => {
                write!(f, "refusing {method} {path}: this command only reads")
            }
        }
    }
}

impl std::error::Error for TfeError {}

/// Extracts TFE's error text from a body: JSON:API `errors` (with `status`
/// as a string or a number), a plain `{"errors": ["..."]}`, or the
/// initial-admin-user form `{"status": "error", "error": "..."}`. HTML is not echoed.
pub fn error_detail(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        let t = body.trim();
        if t.is_empty() || t.starts_with('<') {
            return String::new();
        }
        // Redacted before the cut: a cut through an echoed secret would
        // leave a prefix the redactor no longer recognises.
        return crate::redact::scrub_and_cut(t, 200);
    };
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        return e.to_string();
    }
    let Some(errs) = v.get("errors").and_then(Value::as_array) else {
        return String::new();
    };
    errs.iter()
        .filter_map(|e| match e {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => {
                let title = o.get("title").and_then(Value::as_str).unwrap_or("");
                let detail = o.get("detail").and_then(Value::as_str).unwrap_or("");
                match (title.is_empty(), detail.is_empty()) {
                    (_, false) if !title.is_empty() => Some(format!("{title}: {detail}")),
                    (_, false) => Some(detail.to_string()),
                    (false, true) => Some(title.to_string()),
                    (true, true) => None,
                }
            }
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_detail_reads_every_documented_shape() {
        assert_eq!(
            error_detail(
                r#"{"errors":[{"status":"422","title":"invalid attribute","detail":"Name has already been taken"}]}"#
            ),
            "invalid attribute: Name has already been taken"
        );
        assert_eq!(
            error_detail(
                r#"{"errors":[{"detail":"You have exceeded the API's rate limit.","status":429,"title":"Too many requests"}]}"#
            ),
            "Too many requests: You have exceeded the API's rate limit."
        );
        assert_eq!(error_detail(r#"{"errors":["a","b"]}"#), "a; b");
        assert_eq!(
            error_detail(r#"{"status":"error","error":"bad token"}"#),
            "bad token"
        );
        assert_eq!(error_detail("<html>401</html>"), "");
        assert_eq!(
            error_detail(r#"{"errors":[{"status":"404","title":"not found"}]}"#),
            "not found"
        );
    }
}
