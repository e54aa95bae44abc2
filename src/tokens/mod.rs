//! The one token lifecycle. Every token the run writes to a file (the
//! admin token, created or rotated; the organization token; the owners
//! team token) goes through the same operations, so no kind has a weaker
//! copy of them:
//!
//! 1. **claim** room beside its file and a second place in the state
//!    directory ([`Claim::make`]), before the request that mints it: a full
//!    disk is found while nothing has been sent;
//! 2. **mint** (the caller's request; the client retries where a duplicate
//!    is harmless, see `tfe::Replay::Regenerate`);
//! 3. **keep** it: into the claim, renamed over the file atomically at
//!    0600; failing that, into the rescue place ([`Claim::keep`]);
//! 4. on the next run, **promote** a rescued token into its file
//!    ([`promote_rescued`]);
//! 5. **read** it back from disk for every check, never through a link
//!    ([`read`]), and know when a file changed since it was last verified
//!    ([`stamp`]).
//!
//! Publishing to and adopting from `[store]` stay with the steps that own
//! the store keys; they call [`read`] and [`Claim`] like everyone else.

use std::io;
use std::path::{Path, PathBuf};

use crate::util::{Reservation, write_atomic};

pub mod admin;
pub mod agent;
pub mod companion;
pub mod credentials;
pub mod kind;
pub mod renew;
pub mod service;

pub use kind::TokenKind;

/// Bytes claimed for a token file before the mint: TFE tokens are about
/// 90 characters, so 4 KiB always holds one.
const TOKEN_CLAIM: usize = 4096;

/// Where the claim for `file` is made: beside it, so the rename that
/// installs the token stays within one directory.
pub fn claim_path(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "token".into());
    file.with_file_name(format!(".{name}.tfe-bootstrap-claim"))
}

/// Room for one token, claimed before it exists.
pub struct Claim {
    file: PathBuf,
    primary: Reservation,
    rescue: Reservation,
}

/// Which of the two places could not be claimed.
#[derive(Debug)]
pub enum ClaimError {
    /// Beside the token file.
    File(io::Error),
    /// The rescue place in the state directory.
    Rescue(io::Error),
}

/// Where a token that could not reach its file went.
#[derive(Debug)]
pub enum KeepError {
    /// The file could not be written (the error); the token is safe in the
    /// rescue path.
    Rescued(io::Error, PathBuf),
    /// Neither place could be written: the token is lost.
    Lost(io::Error, io::Error),
}

impl Claim {
    /// Claims room beside `file` and at `rescue` (in the state directory).
    pub fn make(file: &Path, rescue: &Path) -> Result<Claim, ClaimError> {
        let primary =
            Reservation::claim(&claim_path(file), TOKEN_CLAIM).map_err(ClaimError::File)?;
        match Reservation::claim(rescue, TOKEN_CLAIM) {
            Ok(r) => Ok(Claim {
                file: file.to_path_buf(),
                primary,
                rescue: r,
            }),
            Err(e) => {
                primary.discard();
                Err(ClaimError::Rescue(e))
            }
        }
    }

    /// Keeps `token`: into the claim, renamed over the file; failing that,
    /// into the rescue place.
    pub fn keep(self, token: &str) -> Result<(), KeepError> {
        let bytes = format!("{}\n", token.trim());
        let err = match self.primary.fill_into(bytes.as_bytes(), &self.file) {
            Ok(()) => {
                self.rescue.discard();
                return Ok(());
            }
            Err(e) => e,
        };
        let _ = std::fs::remove_file(claim_path(&self.file));
        match self.rescue.fill_in_place(bytes.as_bytes()) {
            Ok(at) => Err(KeepError::Rescued(err, at)),
            Err(e2) => Err(KeepError::Lost(err, e2)),
        }
    }

    /// Gives both places back (the mint did not happen).
    pub fn discard(self) {
        self.primary.discard();
        self.rescue.discard();
    }
}

impl Claim {
    /// Keeps a replacement whose predecessor still works (a rotated or
    /// renewed user token, a described team token): when the file cannot
    /// be written, the file keeps the working token and the rescued copy
    /// is dropped (the unused new one expires within its policy). The
    /// error says why the file could not be written.
    pub fn keep_or_drop(self, token: &str) -> Result<(), io::Error> {
        self.keep(token).map_err(|e| match e {
            KeepError::Rescued(err, at) => {
                let _ = std::fs::remove_file(&at);
                err
            }
            KeepError::Lost(err, _) => err,
        })
    }
}

/// A rescued token waiting at `rescue` (not an empty or zero-filled claim
/// left by a crash).
pub fn rescued(rescue: &Path) -> Option<String> {
    let (text, _) = crate::util::read_private(rescue).ok()?;
    let t = text.trim();
    (!t.is_empty() && !t.contains('\0')).then(|| t.to_string())
}

/// Moves a rescued token into `file` (atomically, 0600) and removes the
/// rescue copy. `Ok(false)`: nothing was rescued there.
pub fn promote_rescued(rescue: &Path, file: &Path) -> io::Result<bool> {
    let Some(token) = rescued(rescue) else {
        return Ok(false);
    };
    write_atomic(file, format!("{token}\n").as_bytes())?;
    let _ = std::fs::remove_file(rescue);
    Ok(true)
}

/// The token in `file`, read from disk: a regular file that is not a link,
/// owned safely (a loose mode is tightened, with the warning returned).
pub fn read(file: &Path) -> io::Result<(String, Option<String>)> {
    let (text, warning) = crate::util::read_private(file)?;
    let t = text.trim();
    if t.is_empty() || t.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "holds no token (it is empty)",
        ));
    }
    Ok((t.to_string(), warning))
}

/// A short SHA-256 of a token (16 hex digits): enough to tell two tokens
/// apart, never enough to recover one (tokens carry hundreds of bits).
pub fn digest(token: &str) -> String {
    crate::util::sha256_hex(&[token.trim().as_bytes()])[..16].to_string()
}

/// What a token file is on disk now (device, inode, size, mtime, type),
/// never its content: a change since the last verification means the token
/// must be checked again.
pub fn stamp(file: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::symlink_metadata(file) {
        Ok(m) => format!(
            "{}:{}:{}:{}.{}:{:o}",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.mode()
        ),
        Err(_) => "missing".into(),
    }
}

/// Unix seconds at which a token minted now lives for at most `ttl_ms`, by
/// TFE's clock (`client`'s [`crate::tfe::Client::tfe_now`]): this host's clock may be
/// hours fast or days slow, and TFE judges `expired-at` by its own. The
/// margin scales with the lifetime: a hundredth of it, at least a minute
/// (the time between TFE's `Date` and its check) and at most a day, and
/// never more than half the lifetime.
pub fn expiry_within(client: &crate::tfe::Client, ttl_ms: u64) -> u64 {
    let ttl_s = ttl_ms / 1000;
    let margin_s = (ttl_s / 100).clamp(60, 86_400).min(ttl_s / 2);
    client.tfe_now() + ttl_s - margin_s
}

/// A lifetime in ms, in the config's words (`90d`).
pub fn human_ms(ms: u64) -> String {
    crate::config::duration::format_duration(std::time::Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_keeps_the_token_in_the_file_and_promotes_a_rescue() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("t");
        let rescue = d.path().join("t.rescue");
        let c = Claim::make(&file, &rescue).unwrap();
        c.keep("tok-123\n").unwrap();
        assert_eq!(read(&file).unwrap().0, "tok-123");
        assert!(!rescue.exists() && !claim_path(&file).exists());
        write_atomic(&rescue, b"tok-456\n").unwrap();
        std::fs::remove_file(&file).unwrap();
        assert!(promote_rescued(&rescue, &file).unwrap());
        assert_eq!(read(&file).unwrap().0, "tok-456");
        assert!(!rescue.exists());
        assert!(!promote_rescued(&rescue, &file).unwrap());
    }

    #[test]
    fn a_stamp_changes_with_the_file() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("t");
        assert_eq!(stamp(&file), "missing");
        write_atomic(&file, b"a\n").unwrap();
        let one = stamp(&file);
        write_atomic(&file, b"b\n").unwrap();
        assert_ne!(one, stamp(&file), "a rename gives a new inode");
    }
}
