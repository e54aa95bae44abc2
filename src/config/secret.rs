//! Secrets: where they come from (`"literal"`, `{ env = "NAME" }`,
//! `{ file = "PATH" }`) and the resolved value, which never prints.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// `{ env = "NAME" }`
#[derive(Debug, Clone, PartialEq)]
pub struct EnvRef {
    pub env: String,
}

/// `{ file = "PATH" }`
#[derive(Debug, Clone, PartialEq)]
pub struct FileRef {
    pub file: PathBuf,
}

/// Where a secret (or a long text such as a certificate) comes from, as
/// written in the config: a string, `{ env = "NAME" }` or `{ file = "PATH" }`,
/// and nothing else. (A derived untagged enum would also take `["NAME"]` as
/// `{ env = "NAME" }`, since serde lets a struct come from a sequence.)
#[derive(Clone, Deserialize, PartialEq)]
#[serde(try_from = "RawSource")]
pub enum SecretSource {
    Literal(String),
    Env(EnvRef),
    File(FileRef),
}

/// The two shapes TOML may give: a string, or a table of strings.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a string, { env = \"NAME\" } or { file = \"PATH\" }"
)]
enum RawSource {
    Literal(String),
    Table(BTreeMap<String, String>),
}

impl TryFrom<RawSource> for SecretSource {
    type Error = String;
    fn try_from(r: RawSource) -> Result<Self, String> {
        let shape = "expected a string, { env = \"NAME\" } or { file = \"PATH\" }";
        match r {
            RawSource::Literal(v) => Ok(SecretSource::Literal(v)),
            RawSource::Table(t) => {
                let keys: Vec<&str> = t.keys().map(String::as_str).collect();
                match (keys.as_slice(), t.values().next()) {
                    (["env"], Some(v)) => Ok(SecretSource::Env(EnvRef { env: v.clone() })),
                    (["file"], Some(v)) => Ok(SecretSource::File(FileRef { file: v.into() })),
                    _ => Err(format!("{shape}, not a table with keys {keys:?}")),
                }
            }
        }
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Literal(_) => f.write_str("Literal(***)"),
            SecretSource::Env(e) => write!(f, "Env({})", e.env),
            SecretSource::File(p) => write!(f, "File({})", p.file.display()),
        }
    }
}

/// Why a secret's value could not be read; the message completes a
/// sentence that starts with the config key ("`[smtp] password` refers
/// to ..."), and never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// An inline value that is empty.
    #[error("is an empty string")]
    EmptyLiteral,
    /// `{ env = "X" }` and X is set but empty.
    #[error("refers to environment variable {0} which is empty")]
    EmptyEnv(String),
    /// `{ env = "X" }` and X is not set.
    #[error("refers to environment variable {0} which is not set")]
    UnsetEnv(String),
    /// `{ env = "X" }` and X is not UTF-8.
    #[error("refers to environment variable {0} which is not valid UTF-8")]
    NotUnicodeEnv(String),
    /// `{ file = "P" }` and P cannot be read (missing, unreadable, too big).
    #[error("refers to file {path} which cannot be read: {detail}")]
    Unreadable { path: String, detail: String },
    /// `{ file = "P" }` and P is empty (after its trailing newline).
    #[error("refers to file {0} which is empty")]
    EmptyFile(String),
}

impl SecretSource {
    /// Reads the value: env var or file must exist and be non-empty; a file's
    /// trailing newline (`\n` or `\r\n`) is stripped.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            SecretSource::Literal(v) if v.is_empty() => Err(SecretError::EmptyLiteral),
            SecretSource::Literal(v) => Ok(Secret::new(v.clone(), "inline")),
            SecretSource::Env(e) => match std::env::var(&e.env) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v, format!("env {}", e.env))),
                Ok(_) => Err(SecretError::EmptyEnv(e.env.clone())),
                Err(std::env::VarError::NotPresent) => Err(SecretError::UnsetEnv(e.env.clone())),
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(SecretError::NotUnicodeEnv(e.env.clone()))
                }
            },
            SecretSource::File(r) => {
                let path = &r.file;
                let mut v = crate::util::read_capped_text(path, crate::util::cap::SECRET_FILE)
                    .map_err(|e| SecretError::Unreadable {
                        path: path.display().to_string(),
                        detail: e.to_string(),
                    })?;
                if v.ends_with('\n') {
                    v.pop();
                    if v.ends_with('\r') {
                        v.pop();
                    }
                }
                if v.is_empty() {
                    return Err(SecretError::EmptyFile(path.display().to_string()));
                }
                Ok(Secret::new(v, format!("file {}", path.display())))
            }
        }
    }

    /// Whether the value is simply not there now (an unset or empty
    /// variable, a file that does not exist), as opposed to unusable. An
    /// operator removes a one-time secret once it is used: that is not an
    /// error until a step that sends it has to run.
    pub fn is_absent(&self) -> bool {
        match self {
            SecretSource::Literal(_) => false,
            SecretSource::Env(e) => std::env::var_os(&e.env).is_none_or(|v| v.is_empty()),
            SecretSource::File(f) => std::fs::symlink_metadata(&f.file)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound),
        }
    }

    pub fn is_literal(&self) -> bool {
        matches!(self, SecretSource::Literal(_))
    }
}

/// A resolved secret. `Debug` and `Display` show only where it came from.
#[derive(Clone, PartialEq)]
pub struct Secret {
    value: String,
    origin: String,
}

impl Secret {
    /// Also registers the value with the redactor, so it can never be printed.
    pub fn new(value: impl Into<String>, origin: impl Into<String>) -> Secret {
        let value = value.into();
        crate::redact::register(&value);
        Secret {
            value,
            origin: origin.into(),
        }
    }
    /// The secret itself: only for the wire, a 0600 token file, or a hash.
    pub fn expose(&self) -> &str {
        &self.value
    }
    /// Where it came from, e.g. `env TFE_ADMIN_PASSWORD` (safe to print).
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(*** from {})", self.origin)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "*** (from {})", self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("hunter2-very-secret", "inline");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        let src = SecretSource::Literal("hunter2-very-secret".into());
        assert!(!format!("{src:?}").contains("hunter2"));
    }

    #[test]
    fn file_strips_one_trailing_newline() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        std::fs::write(&p, "abc\r\n").unwrap();
        let s = SecretSource::File(FileRef { file: p.clone() })
            .resolve()
            .unwrap();
        assert_eq!(s.expose(), "abc");
        std::fs::write(&p, "\n").unwrap();
        let e = SecretSource::File(FileRef { file: p })
            .resolve()
            .unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn only_the_three_shapes_are_secrets() {
        #[derive(Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            s: SecretSource,
        }
        let ok = |t: &str| toml::from_str::<T>(t).is_ok();
        assert!(ok(r#"s = "x""#) && ok(r#"s = { env = "X" }"#) && ok(r#"s = { file = "/x" }"#));
        for bad in [
            r#"s = ["SECRET_NAME"]"#,
            r#"s = { env = "X", file = "/y" }"#,
            r#"s = { envv = "X" }"#,
            "s = 3",
            "s = {}",
        ] {
            let e = toml::from_str::<T>(bad).unwrap_err().message().to_string();
            assert!(e.to_string().contains("{ env = \"NAME\" }"), "{bad}: {e}");
            assert!(!e.to_string().contains("SECRET_NAME"), "{bad} echoed: {e}");
        }
    }

    #[test]
    fn missing_env_is_named() {
        let e = SecretSource::Env(EnvRef {
            env: "TFE_BOOTSTRAP_SURELY_UNSET_VAR".into(),
        })
        .resolve()
        .unwrap_err();
        assert!(
            e.to_string().contains("TFE_BOOTSTRAP_SURELY_UNSET_VAR")
                && e.to_string().contains("not set"),
            "{e}"
        );
    }
}
