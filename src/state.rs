//! The checkpoint store: `<state dir>/state.json` (0600, directory 0700),
//! written atomically, and the advisory lock `<state dir>/lock` that keeps a
//! second run out, behind the small [`CheckpointStore`] trait. These are one
//! node's checkpoints; what the nodes of a fleet share goes through
//! `[store]` ([`crate::fleet`]).
//!
//! The file holds, per step, when it finished and a fingerprint of the
//! config it applied; and a few non-secret facts later steps need (the time
//! TFE first answered ready, the agent pool id). Secrets never enter it: they
//! reach a fingerprint only through a salted hash.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::util::{
    ensure_private_dir, open_regular, probe_write, unsafe_owner_or_mode, write_atomic,
};

/// The `format` value this version reads and writes.
pub const FORMAT: &str = "tfe-bootstrap/state/v1";

/// One finished step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Always `"done"` for now.
    pub status: String,
    /// RFC 3339 UTC.
    pub at: String,
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Non-secret facts learned on the way.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// Unix seconds when TFE first answered ready (start of the IACT API window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_ready_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_pool_id: Option<String>,
    /// Unix seconds when the admin token in token_file expires, when this
    /// tool minted it (rotation); unknown for the initial admin's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_expires_unix: Option<u64>,
    /// When this tool minted the admin token in token_file, and its id on
    /// TFE (so `renew` can revoke it once a replacement is in place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_minted_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_id: Option<String>,
    /// Where each service-account token step last wrote its token, and for
    /// which organization (step name → record). Never the token itself.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub token_files: BTreeMap<String, TokenFile>,
    /// Side effects with a witness (a test mail, an SMS) that were sent, or
    /// may have been, for a change not yet checkpointed: step name → the
    /// change's fingerprint. Written before the request leaves.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub witnesses: BTreeMap<String, String>,
    /// Service tokens this node is minting (step name → organization),
    /// written before the POST and cleared once the token is kept: after a
    /// crash or a full disk in between, nobody holds the token TFE made, so
    /// the rerun may mint again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mint_intents: BTreeMap<String, String>,
    /// Each token file as it was when `verify-tokens` last passed (path →
    /// [`crate::tokens::stamp`]: inode, size, mtime; never the content). A
    /// file changed since, or a failed check, makes it run again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub verified: BTreeMap<String, String>,
    /// The TFE version the install last reported (`X-TFE-Current-Version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tfe_version: Option<String>,
    /// The agent token this node wrote: its id on TFE (never the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_token: Option<AgentTokenRecord>,
    /// Replaced tokens `renew` revokes once their grace has passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retiring: Vec<Retiring>,
    /// TFE's clock minus this host's (seconds), as last seen in a `Date`
    /// header: `renew` judges expiries by TFE's clock without a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tfe_clock_offset: Option<i64>,
}

/// An agent token written to a file: where, for which pool, its id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentTokenRecord {
    pub path: PathBuf,
    pub pool_id: String,
    pub token_id: String,
    /// This node minted it (not taken from `[store]`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub minted_here: bool,
    /// [`crate::tokens::digest`] of the token written to the file (never
    /// the token): `verify-tokens` tells a file changed by hand from the
    /// one written. Absent in states of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A service-account token file this tool wrote.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    pub path: PathBuf,
    pub organization: String,
    /// Unix seconds when this tool minted it, and when it expires (what a
    /// max-TTL policy compares); absent for files written by older versions,
    /// whose tokens carry TFE's two-year default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minted_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_unix: Option<u64>,
    /// This node minted it (not taken from `[store]` or copied): when it
    /// stops working, this node may mint a replacement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub minted_here: bool,
    /// Its id on TFE, when it is a described team token `renew` minted
    /// (one of many the team may hold, revoked by id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

/// A replaced token waiting to be revoked by `renew`: never before its
/// replacement is in every node's file (`[renew] grace` after it was
/// published).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Retiring {
    /// Which token (a step name: `admin`, `team-token`, ...), for messages.
    pub what: String,
    /// `DELETE /authentication-tokens/ID` when set ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// ... else the legacy token of this team (`DELETE
    /// /teams/ID/authentication-token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_team_id: Option<String>,
    /// Not before this (Unix seconds).
    pub not_before_unix: u64,
}

/// The whole state file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format: String,
    pub tfe_address: String,
    /// Random, per state file: salts the fingerprints.
    pub salt: String,
    #[serde(default)]
    pub steps: BTreeMap<String, Checkpoint>,
    #[serde(default)]
    pub facts: Facts,
    /// Per step whose config holds a secret: the fingerprint of its config
    /// without the secrets ([`crate::step::Desired::public_fingerprint`]),
    /// kept beside the state file in `public-fingerprints.json`, not in it
    /// (whose fields stay as 0.1.0 reads them). Empty for states written
    /// before it existed.
    #[serde(skip)]
    pub public: BTreeMap<String, String>,
}

/// The file beside `state.json` that holds [`State::public`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicFingerprints {
    format: String,
    steps: BTreeMap<String, String>,
}

const PUBLIC_FORMAT: &str = "tfe-bootstrap/public-fingerprints/v1";

impl State {
    pub fn new(tfe_address: &str) -> State {
        let mut rng = fastrand::Rng::new();
        State {
            format: FORMAT.into(),
            tfe_address: tfe_address.into(),
            salt: (0..32)
                .map(|_| char::from_digit(rng.u32(..16), 16).unwrap_or('0'))
                .collect(),
            steps: BTreeMap::new(),
            facts: Facts::default(),
            public: BTreeMap::new(),
        }
    }
}

/// Why the state could not be used.
#[derive(Debug)]
pub enum StateError {
    /// Reading, writing, syncing or renaming the state file (or its
    /// directory) failed mid-run: a disk that filled up, a directory
    /// removed behind the run's back (exit 1: a rerun once fixed goes on).
    Io { path: PathBuf, error: io::Error },
    /// Not JSON, truncated, or not our format.
    Corrupt { path: PathBuf, detail: String },
    /// Ours, but for another TFE.
    Foreign { path: PathBuf, detail: String },
    /// Another run holds the lock.
    Locked { path: PathBuf },
    /// The directory cannot be used at all (unwritable, unsafe, a planted
    /// file): an environment error, found before anything is sent.
    Unusable { path: PathBuf, detail: String },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            StateError::Corrupt { path, detail } => write!(
                f,
                "state file {} is damaged ({detail}); it was left as it is. Move it aside, or run \
                 `tfe-bootstrap reset --all` to start the checkpoints afresh (the admin token file is kept)",
                path.display()
            ),
            StateError::Foreign { path, detail } => write!(
                f,
                "state file {} {detail}; it was left as it is. Use another --state-dir for this TFE, or run \
                 `tfe-bootstrap reset --all` if the old install is gone",
                path.display()
            ),
            StateError::Locked { path } => write!(
                f,
                "another tfe-bootstrap holds the lock {}; wait for it to finish",
                path.display()
            ),
            StateError::Unusable { path, detail } => write!(
                f,
                "state directory {}: {detail}. Nothing was sent. Fix it, or choose another \
                 directory with [state] dir or --state-dir",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StateError {}

/// Where checkpoints live.
pub trait CheckpointStore {
    /// `Ok(None)` when nothing was saved yet.
    fn load(&self) -> Result<Option<State>, StateError>;
    fn save(&self, state: &State) -> Result<(), StateError>;
    /// Forgets everything (`reset --all`).
    fn clear(&self) -> Result<(), StateError>;
    /// For messages, e.g. the file path.
    fn location(&self) -> String;
}

/// The local-directory store.
pub struct DirStore {
    dir: PathBuf,
}

impl DirStore {
    pub fn new(dir: &Path) -> DirStore {
        DirStore {
            dir: dir.to_path_buf(),
        }
    }
    pub fn file(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    /// `public-fingerprints.json`, beside the state file ([`State::public`]).
    pub fn public_file(&self) -> PathBuf {
        self.dir.join("public-fingerprints.json")
    }

    /// [`State::public`] as saved; empty when the file is absent or not
    /// ours (a change of a step's keys is then seen once its secret is
    /// back, as before this file existed).
    fn load_public(&self) -> BTreeMap<String, String> {
        crate::util::read_capped(&self.public_file(), crate::util::cap::STATE)
            .ok()
            .and_then(|t| serde_json::from_slice::<PublicFingerprints>(&t).ok())
            .filter(|p| p.format == PUBLIC_FORMAT)
            .map(|p| p.steps)
            .unwrap_or_default()
    }

    fn save_public(&self, state: &State) -> Result<(), StateError> {
        let path = self.public_file();
        if state.public.is_empty() && !path.exists() {
            return Ok(());
        }
        let p = PublicFingerprints {
            format: PUBLIC_FORMAT.into(),
            steps: state.public.clone(),
        };
        let mut bytes = serde_json::to_vec_pretty(&p).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        bytes.push(b'\n');
        write_atomic(&path, &bytes).map_err(|error| StateError::Io { path, error })
    }

    /// Takes the advisory lock for the lifetime of the guard. Creates the
    /// directory (0700) when needed, and refuses one that is not safe to keep
    /// checkpoints in (see [`crate::util::unsafe_owner_or_mode`]) or that
    /// cannot be written, before anything is sent. The lock file is opened
    /// without following links and without blocking on odd file types.
    pub fn lock(&self) -> Result<LockGuard, StateError> {
        let path = self.dir.join("lock");
        let unusable = |detail: String| StateError::Unusable {
            path: self.dir.clone(),
            detail,
        };
        ensure_private_dir(&self.dir).map_err(|e| unusable(format!("cannot be created: {e}")))?;
        let meta = std::fs::metadata(&self.dir).map_err(|e| unusable(e.to_string()))?;
        if !meta.is_dir() {
            return Err(unusable("is not a directory".into()));
        }
        if let Some(why) = unsafe_owner_or_mode(&self.dir, &meta) {
            return Err(unusable(why));
        }
        // A directory made beforehand (by a package, say) may be readable by
        // others: the contract is 0700, so tighten it (it is ours: checked).
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| unusable(format!("cannot be made private (chmod 700): {e}")))?;
        }
        let file = open_regular(&path, false)
            .map_err(|e| unusable(format!("its lock file cannot be opened: {e}")))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| unusable(format!("its lock file: {e}")))?;
        let guard = match file.try_lock() {
            Ok(()) => LockGuard { _file: file },
            Err(std::fs::TryLockError::WouldBlock) => return Err(StateError::Locked { path }),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(unusable(format!("its lock file cannot be locked: {e}")));
            }
        };
        // Checkpoints are written as a temporary file renamed into place:
        // prove that works now, not after TFE has acted.
        probe_write(&self.dir).map_err(|e| unusable(format!("cannot be written: {e}")))?;
        Ok(guard)
    }

    /// Checks that a loaded state belongs to `address`.
    pub fn check_owner(&self, state: &State, address: &str) -> Result<(), StateError> {
        if state.tfe_address != address {
            return Err(StateError::Foreign {
                path: self.file(),
                detail: format!(
                    "belongs to {} but [tfe] address is {address}",
                    state.tfe_address
                ),
            });
        }
        Ok(())
    }
}

/// Held while a run works; dropping it releases the lock.
pub struct LockGuard {
    _file: File,
}

impl CheckpointStore for DirStore {
    fn load(&self) -> Result<Option<State>, StateError> {
        let path = self.file();
        let text = match crate::util::read_capped(&path, crate::util::cap::STATE) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Other => {
                return Err(StateError::Corrupt {
                    detail: e.to_string(),
                    path,
                });
            }
            Err(error) => return Err(StateError::Io { path, error }),
        };
        let value: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| StateError::Corrupt {
                path: path.clone(),
                detail: format!("not valid JSON: {e}"),
            })?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(StateError::Foreign {
                    path,
                    detail: format!(
                        "has format {other:?}, which this version ({FORMAT}) does not read"
                    ),
                });
            }
            None => {
                return Err(StateError::Corrupt {
                    path,
                    detail: "no \"format\" field: not a tfe-bootstrap state file".into(),
                });
            }
        }
        let mut state: State = serde_json::from_value(value).map_err(|e| StateError::Corrupt {
            path,
            detail: e.to_string(),
        })?;
        state.public = self.load_public();
        Ok(Some(state))
    }

    fn save(&self, state: &State) -> Result<(), StateError> {
        let path = self.file();
        let mut bytes = serde_json::to_vec_pretty(state).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        bytes.push(b'\n');
        write_atomic(&path, &bytes).map_err(|error| StateError::Io { path, error })?;
        self.save_public(state)
    }

    fn clear(&self) -> Result<(), StateError> {
        let _ = std::fs::remove_file(self.public_file());
        let path = self.file();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(StateError::Io { path, error }),
        }
    }

    fn location(&self) -> String {
        self.file().display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let d = tempfile::tempdir().unwrap();
        let store = DirStore::new(&d.path().join("st"));
        assert!(store.load().unwrap().is_none());
        let mut s = State::new("https://tfe.example.com");
        s.steps.insert(
            "smtp".into(),
            Checkpoint {
                status: "done".into(),
                at: "2026-01-01T00:00:00Z".into(),
                fingerprint: "ab".into(),
                detail: None,
            },
        );
        store.save(&s).unwrap();
        assert_eq!(store.load().unwrap().unwrap(), s);
        let mode = std::fs::metadata(store.file())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(store.file(), "{\"format\":").unwrap();
        assert!(matches!(store.load(), Err(StateError::Corrupt { .. })));
        std::fs::write(store.file(), "{\"format\":\"other/v9\"}").unwrap();
        assert!(matches!(store.load(), Err(StateError::Foreign { .. })));
    }

    #[test]
    fn second_lock_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let store = DirStore::new(d.path());
        let _g = store.lock().unwrap();
        assert!(matches!(store.lock(), Err(StateError::Locked { .. })));
    }
}
