//! Small helpers shared by the product and the simulator: timestamps, hex,
//! hashing and atomic file writes.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// Formats a time as RFC 3339 in UTC, e.g. `2026-11-24T18:20:34Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// [`rfc3339`] of Unix seconds.
pub fn rfc3339_unix(secs: u64) -> String {
    rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` to Unix milliseconds.
pub fn parse_rfc3339_ms(t: &str) -> Option<u64> {
    let t = t.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut h = time.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000).max(0)).ok()
}

/// Parses an HTTP `Date` (IMF-fixdate, RFC 9110 section 5.6.7:
/// `Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds.
pub fn parse_http_date(t: &str) -> Option<u64> {
    let mut p = t.split_whitespace();
    let (_, day, mon, year, time, zone) = (
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
    );
    if zone != "GMT" || p.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| *x == mon)? + 1;
    let day: u32 = day.parse().ok()?;
    parse_rfc3339_ms(&format!("{year}-{m:02}-{day:02}T{time}Z")).map(|ms| ms / 1000)
}

/// Formats Unix seconds as an HTTP `Date` (IMF-fixdate).
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let r = rfc3339_unix(secs);
    let (y, m, d) = (&r[0..4], &r[5..7], &r[8..10]);
    let m: usize = m.parse().unwrap_or(1);
    format!(
        "{}, {d} {} {y} {} GMT",
        DAYS[(secs / 86_400 % 7) as usize],
        MONTHS[m.clamp(1, 12) - 1],
        &r[11..19]
    )
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Lower-case hex of SHA-256 over the given parts (each length-prefixed, so
/// `["ab","c"]` and `["a","bc"]` differ).
pub fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `dir` (and parents) with mode 0700 when it does not exist.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes `bytes` to `path` atomically with mode 0600: a temporary file in the
/// same directory, fsync, rename over the target, fsync of the directory. A
/// crash leaves either the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    ensure_private_dir(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tfe-bootstrap-")
        .tempfile_in(dir)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()
}

/// Percent-encodes a query component (RFC 3986 unreserved characters kept).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Opens `path` read-write as a regular file of mode 0600 (created when
/// missing), refusing to follow a symbolic link at its last component and
/// never blocking on a FIFO or a device: a planted `lock -> /etc/shadow`
/// or FIFO is an error, not a chmod or a hang. Mode changes go through the
/// open descriptor (`fchmod`), never through a path.
pub fn open_regular(path: &Path, truncate: bool) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = fs::OpenOptions::new();
    opts.read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .mode(0o600);
    open_no_link(&mut opts, path, "remove it").map(|(f, _)| f)
}

/// Opens with `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC` and insists on a regular
/// file; `fix` ends the errors (what the operator should do).
fn open_no_link(
    opts: &mut fs::OpenOptions,
    path: &Path,
    fix: &str,
) -> io::Result<(fs::File, fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = opts
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::other(format!(
                    "{} is a symbolic link; refusing to follow it ({fix})",
                    path.display()
                ))
            } else {
                e
            }
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file ({fix})",
            path.display()
        )));
    }
    Ok((file, meta))
}

/// Reads at most `cap` bytes from `r` (the file at `path`) as UTF-8 text; a
/// longer input is an error naming it, and nothing past the cap is read.
fn read_text_capped(r: impl io::Read, path: &Path, cap: u64) -> io::Result<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    r.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(io::Error::other(format!(
            "{} is larger than {} KiB: not the file meant here",
            path.display(),
            cap / 1024
        )));
    }
    String::from_utf8(buf).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not UTF-8 text", path.display()),
        )
    })
}

/// Proves that `dir` takes a new file: a temporary file is written,
/// fsynced and removed (nothing is left behind).
pub fn probe_write(dir: &Path) -> io::Result<()> {
    let mut t = tempfile::Builder::new()
        .prefix(".tfe-bootstrap-probe-")
        .tempfile_in(dir)?;
    t.write_all(b"probe")?;
    t.as_file().sync_all()
}

/// Caps on what is read from disk: a planted `/dev/zero` or a huge file is
/// an error naming the file, not gigabytes of memory.
pub mod cap {
    /// The config file.
    pub const CONFIG: u64 = 1 << 20;
    /// A `{ file = "..." }` secret, a certificate, a CA bundle.
    pub const SECRET_FILE: u64 = 1 << 20;
    /// `state.json`.
    pub const STATE: u64 = 4 << 20;
    /// A token file.
    pub const TOKEN_FILE: u64 = 64 << 10;
}

/// Reads at most `cap` bytes of `path`; a longer file is an error that
/// names it (nothing past the cap is read).
pub fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    fs::File::open(path)?.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(io::Error::other(format!(
            "{} is larger than {} KiB: not the file meant here",
            path.display(),
            cap / 1024
        )));
    }
    Ok(buf)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_capped_text(path: &Path, cap: u64) -> io::Result<String> {
    read_text_capped(fs::File::open(path)?, path, cap)
}

/// Reads a token file this tool keeps secrets in: not through a symbolic
/// link, only a regular file, owned by this user or root and not writable
/// by group or others ([`unsafe_owner_or_mode`]), at most
/// [`cap::TOKEN_FILE`]. A file readable by group or others is tightened to
/// 0600 through its descriptor; the second value then says so, for a warning.
pub fn read_private(path: &Path) -> io::Result<(String, Option<String>)> {
    let (file, meta) = open_no_link(
        fs::OpenOptions::new().read(true),
        path,
        "point the config at the real file",
    )?;
    if let Some(why) = unsafe_owner_or_mode(path, &meta) {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    }
    let mode = meta.permissions().mode() & 0o777;
    let warning = if mode & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        Some(format!(
            "{} was readable by others (mode {mode:04o}); tightened to 0600. Anyone who read it holds a working token: revoke it if in doubt",
            path.display()
        ))
    } else {
        None
    };
    Ok((read_text_capped(file, path, cap::TOKEN_FILE)?, warning))
}

/// PBKDF2-HMAC-SHA256 (RFC 8018), one 32-byte block: slow on purpose, for
/// values derived from a secret that others may see. The HMAC key's inner
/// and outer pads are absorbed once, so each round costs two compressions.
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 32] {
    let mut k = [0u8; 64];
    if password.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(password));
    } else {
        k[..password.len()].copy_from_slice(password);
    }
    let (mut ipad, mut opad) = ([0x36u8; 64], [0x5cu8; 64]);
    for i in 0..64 {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha256::new().chain_update(ipad);
    let outer = Sha256::new().chain_update(opad);
    let mac = |msg: &[u8]| -> [u8; 32] {
        let i = inner.clone().chain_update(msg).finalize();
        outer.clone().chain_update(i).finalize().into()
    };
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = mac(&first);
    let mut out = u;
    for _ in 1..rounds {
        u = mac(&u);
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    out
}

/// This process's effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Why `path` (already stat'ed as `meta`) is not safe to keep secrets in,
/// as OpenSSH's StrictModes judges: owned by someone other than this user
/// or root, or writable by group or others. `None` when it is safe.
pub fn unsafe_owner_or_mode(path: &Path, meta: &fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let me = euid();
    if meta.uid() != me && meta.uid() != 0 {
        return Some(format!(
            "{} is owned by uid {}, not by this user (uid {me}) or root: another user could read or replace what is kept there. Use a path this user owns (`chown {me} {}`)",
            path.display(),
            meta.uid(),
            path.display()
        ));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Some(format!(
            "{} is writable by group or others (mode {mode:04o}): another user could replace what is kept there. Run `chmod go-w {}`",
            path.display(),
            path.display()
        ));
    }
    None
}

/// Space claimed on disk for a file that must not be lost, before the only
/// copy of its content exists (the admin token: TFE shows it once). The
/// claim is a file of zero bytes of the final size, fsynced; filling it
/// later overwrites blocks already allocated, so a full disk in between
/// cannot make the write fail (on ext4, xfs and tmpfs; a copy-on-write
/// file system may still need new blocks).
pub struct Reservation {
    path: PathBuf,
    file: fs::File,
}

impl Reservation {
    /// Claims `size` bytes at `path` (0600, replacing a leftover claim).
    pub fn claim(path: &Path, size: usize) -> io::Result<Reservation> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            ensure_private_dir(dir)?;
        }
        let mut file = open_regular(path, true)?;
        let result = file
            .set_permissions(fs::Permissions::from_mode(0o600))
            .and_then(|()| file.write_all(&vec![0u8; size]))
            .and_then(|()| file.sync_all());
        if let Err(e) = result {
            let _ = fs::remove_file(path);
            return Err(e);
        }
        Ok(Reservation {
            path: path.to_path_buf(),
            file,
        })
    }

    fn fill(&mut self, bytes: &[u8]) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(bytes)?;
        self.file.set_len(bytes.len() as u64)?;
        self.file.sync_all()
    }

    /// Writes `bytes` into the claimed space and renames it over `target`
    /// (then fsyncs the directory): atomic, like [`write_atomic`].
    pub fn fill_into(mut self, bytes: &[u8], target: &Path) -> io::Result<()> {
        self.fill(bytes)?;
        fs::rename(&self.path, target)?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        fs::File::open(dir)?.sync_all()
    }

    /// Writes `bytes` into the claimed space and keeps it where it is.
    pub fn fill_in_place(mut self, bytes: &[u8]) -> io::Result<PathBuf> {
        self.fill(bytes)?;
        Ok(self.path.clone())
    }

    /// Gives the space back.
    pub fn discard(self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_544_434);
        assert_eq!(rfc3339(t), "2026-11-24T18:20:34Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn http_dates_round_trip() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }

    #[test]
    fn pbkdf2_matches_rfc_7914_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1).
        let out = pbkdf2_sha256(b"passwd", b"salt", 1);
        assert_eq!(
            out.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    #[test]
    fn hashes_are_length_prefixed() {
        assert_ne!(sha256_hex(&[b"ab", b"c"]), sha256_hex(&[b"a", b"bc"]));
        assert_eq!(sha256_hex(&[b"x"]).len(), 64);
    }

    #[test]
    fn links_and_fifos_are_not_opened() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, "x").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
        let link = d.path().join("lock");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = open_regular(&link, false).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let mode = fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "the link's target is untouched");
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_regular(&fifo, false).unwrap_err().to_string();
        assert!(
            e.contains("not a regular file") || e.contains("No such device"),
            "{e}"
        );
    }

    #[test]
    fn a_reservation_is_filled_in_place_and_renamed() {
        let d = tempfile::tempdir().unwrap();
        let claim = d.path().join(".t.reserve");
        let r = Reservation::claim(&claim, 4096).unwrap();
        assert_eq!(fs::metadata(&claim).unwrap().len(), 4096);
        let target = d.path().join("t");
        r.fill_into(b"tok\n", &target).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"tok\n");
        assert!(!claim.exists());
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn atomic_write_sets_mode_0600() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/f");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(p.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
}
