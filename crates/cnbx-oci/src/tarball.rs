//! pack-compatible tar encoding: one header encoder, used by every tar cnbx writes.
//!
//! Layer diffIDs are the sha256 of the uncompressed tar, so two tools produce the same
//! diffID only if they produce the same bytes. pack writes every layer with Go's
//! `archive/tar`, and this module reproduces that encoding exactly (docs/pack-compatibility.md,
//! *Tar encoding*):
//!
//! * names are kept as given (absolute, `/cnb/...`), directories without a trailing slash;
//! * USTAR whenever the entry fits (name ≤ 100 bytes, or split at a `/` into a ≤ 155-byte
//!   prefix and a ≤ 100-byte name, ASCII only; numbers in octal fields);
//! * otherwise PAX, written the way Go writes it: a type `x` entry named
//!   `<dir>/PaxHeaders.0/<base>` with mode, uid, gid and mtime 0, holding the records
//!   sorted by key as `"<len> key=value\n"`, followed by a main header that keeps what fits
//!   (ASCII-filtered, truncated names; 0 for numbers that do not fit);
//! * GNU headers (`././@LongLink`) only for entries re-encoded from a GNU-format source
//!   archive, because that is what Go does with a header read from such an archive
//!   ([`HeaderFormat`]);
//! * content padded to 512 bytes, and the archive ends with exactly two zero blocks (no
//!   10 KiB record padding).
//!
//! Why not the `tar` crate's `Builder`: it writes GNU `././@LongLink` records for long
//! names where Go writes PAX, its PAX headers have an empty name, `HeaderMode::Deterministic`
//! forces its own mtime (2006) and modes, and `append_path` uses GNU magic. Any of these
//! changes diffIDs. Archives are read with [`crate::tarread`], which reads them as Go does.
//!
//! The rules below follow Go's `archive/tar` (`Writer.WriteHeader`, `Header.allowedFormats`,
//! `formatPAXRecord`, `splitUSTARPath`), re-derived and written for this crate:
//!
//! * A header whose [`HeaderFormat`] is unspecified (everything cnbx creates itself) has its
//!   mtime rounded to the second and its atime/ctime ignored, then uses the first of USTAR,
//!   PAX, GNU that can encode it.
//! * A header carried over from a source archive keeps the format Go's reader would report,
//!   and Go honours it: atime/ctime and sub-second times are written, PAX records carried
//!   from the source are written (non-standard keys always; standard keys such as `path` or
//!   `mtime` only while they still match the header), and an entry from a GNU archive is
//!   written as GNU.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};

use crate::tarread::{GNU, PAX, USTAR, field};

/// pack's normalised modification time, 1980-01-01T00:00:01Z, in seconds since the epoch.
pub const NORMALIZED_MTIME: i64 = 315_532_801;

/// Size of a tar block.
pub const BLOCK_SIZE: usize = 512;

/// Longest name that fits the USTAR `name` field.
const NAME_SIZE: usize = 100;
/// Longest prefix that fits the USTAR `prefix` field.
const PREFIX_SIZE: usize = 155;
/// Largest PAX or GNU long-name payload Go writes (and libarchive reads).
const MAX_SPECIAL_FILE_SIZE: usize = 1 << 20;
/// Size of the buffer used to copy entry content.
const COPY_BUFFER_SIZE: usize = 128 * 1024;

/// PAX keys Go maps onto header fields; carried records with these keys are written only
/// while they still agree with the header.
const BASIC_PAX_KEYS: &[&str] =
    &["path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime"];

/// Errors from encoding or re-encoding tar entries.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    /// The header cannot be represented (the reason says which field, and why).
    #[error("cannot encode tar entry `{}`: {reason}", cnbx_fs::excerpt(path))]
    Unencodable {
        /// Entry name.
        path: String,
        /// What does not fit.
        reason: String,
    },
    /// Fewer content bytes were supplied than the header's size.
    #[error(
        "tar entry `{}`: the header says {expected} bytes of content but only {actual} were supplied (did the file change while it was read?)",
        cnbx_fs::excerpt(path)
    )]
    ContentTooShort {
        /// Entry name.
        path: String,
        /// Size in the header.
        expected: u64,
        /// Bytes supplied.
        actual: u64,
    },
    /// More content bytes were supplied than the header's size.
    #[error(
        "tar entry `{}`: more than the {expected} bytes of content the header announces were supplied (did the file change while it was read?)",
        cnbx_fs::excerpt(path)
    )]
    ContentTooLong {
        /// Entry name.
        path: String,
        /// Size in the header.
        expected: u64,
    },
    /// An entry of a source archive cannot be carried over.
    #[error("tar entry `{}` of the source archive cannot be re-encoded: {reason}", cnbx_fs::excerpt(path))]
    Unsupported {
        /// Entry name, lossily decoded.
        path: String,
        /// Why.
        reason: String,
    },
    /// Reading a source archive's header failed.
    #[error("reading a tar header of the source archive")]
    SourceHeader(#[source] io::Error),
    /// Reading an entry's content failed.
    #[error("reading the content of tar entry `{}`", cnbx_fs::excerpt(path))]
    Read {
        /// Entry name.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Writing the archive failed.
    #[error("writing tar entry `{}`", cnbx_fs::excerpt(path))]
    Write {
        /// Entry name (empty for the end-of-archive blocks).
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// A timestamp as tar stores it: seconds since the epoch plus nanoseconds (only PAX records
/// keep the nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TarTime {
    secs: i64,
    nanos: u32,
}

impl TarTime {
    /// pack's normalised time, 1980-01-01T00:00:01Z.
    pub const NORMALIZED: Self = Self::from_secs(NORMALIZED_MTIME);

    /// A whole-second time.
    pub const fn from_secs(secs: i64) -> Self {
        Self { secs, nanos: 0 }
    }

    /// `secs` plus `nanos` (which must be below one second).
    pub fn new(secs: i64, nanos: u32) -> Option<Self> {
        (nanos < 1_000_000_000).then_some(Self { secs, nanos })
    }

    /// Whole seconds, rounded towards negative infinity.
    pub fn secs(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds past [`TarTime::secs`].
    pub fn nanos(&self) -> u32 {
        self.nanos
    }

    /// Rounds to the nearest second, halves up (what Go does to unspecified-format headers).
    fn rounded(self) -> Self {
        if self.nanos >= 500_000_000 {
            Self::from_secs(self.secs.saturating_add(1))
        } else {
            Self::from_secs(self.secs)
        }
    }

    /// Parses a PAX time record (`1700000000`, `1700000000.5`, `-1.25`), as Go does: the
    /// fraction is truncated to nanoseconds, and a negative time counts the fraction
    /// backwards.
    pub fn parse_pax(s: &str) -> Option<Self> {
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let secs: i64 = whole.parse().ok()?;
        if frac.is_empty() {
            return Some(Self::from_secs(secs));
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut digits = [b'0'; 9];
        for (d, b) in digits.iter_mut().zip(frac.bytes()) {
            *d = b;
        }
        let nanos = digits.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        if whole.starts_with('-') && nanos != 0 {
            Some(Self { secs: secs.checked_sub(1)?, nanos: 1_000_000_000 - nanos })
        } else {
            Some(Self { secs, nanos })
        }
    }

    /// Formats as a PAX time record: whole seconds, or `secs.fraction` without trailing
    /// zeros.
    pub fn to_pax(&self) -> String {
        if self.nanos == 0 {
            return self.secs.to_string();
        }
        let s = if self.secs < 0 {
            // -(secs + 1) cannot overflow, even for i64::MIN.
            format!("-{}.{:09}", -(self.secs + 1), 1_000_000_000 - self.nanos)
        } else {
            format!("{}.{:09}", self.secs, self.nanos)
        };
        s.trim_end_matches('0').to_owned()
    }
}

impl From<i64> for TarTime {
    fn from(secs: i64) -> Self {
        Self::from_secs(secs)
    }
}

/// What kind of entry a header describes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file (typeflag `0`).
    File,
    /// A directory (typeflag `5`).
    Dir,
    /// A symbolic link (typeflag `2`); the target is kept verbatim.
    Symlink {
        /// Link target.
        target: String,
    },
    /// A hard link (typeflag `1`) to an earlier entry of the same archive.
    Hardlink {
        /// Name of the earlier entry.
        target: String,
    },
    /// Any other typeflag carried over from a source archive (devices, FIFOs, contiguous
    /// files, vendor types). Content follows the header unless the type is header-only
    /// (`3`, `4`, `6`).
    Other {
        /// The typeflag byte.
        typeflag: u8,
        /// The header's link name, usually empty.
        linkname: String,
    },
}

impl EntryKind {
    /// The typeflag byte written for this kind.
    pub fn typeflag(&self) -> u8 {
        match self {
            Self::File => b'0',
            Self::Dir => b'5',
            Self::Symlink { .. } => b'2',
            Self::Hardlink { .. } => b'1',
            Self::Other { typeflag, .. } => *typeflag,
        }
    }

    /// The link name written in the header (empty for files and directories).
    pub fn link_name(&self) -> &str {
        match self {
            Self::File | Self::Dir => "",
            Self::Symlink { target } | Self::Hardlink { target } => target,
            Self::Other { linkname, .. } => linkname,
        }
    }
}

/// Whether content never follows a header of this type, whatever its size field says.
fn is_header_only(typeflag: u8) -> bool {
    matches!(typeflag, b'1'..=b'6')
}

/// The header format Go's `archive/tar` reader reports for an entry, which decides how Go
/// (and so pack) writes that header back out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HeaderFormat {
    /// Created from scratch, or read from a V7/STAR/non-conforming header: the first of
    /// USTAR, PAX, GNU that fits; mtime rounded to the second; atime/ctime dropped.
    #[default]
    Unspecified,
    /// Read from a plain USTAR header: must be written as USTAR.
    Ustar,
    /// Read from a header preceded by a PAX `x` header: USTAR or PAX, with sub-second times,
    /// atime/ctime and carried records.
    Pax,
    /// Read from a GNU header: written as GNU (`././@LongLink` for long names).
    Gnu,
}

/// One tar entry's header, in the terms pack's encoder uses.
///
/// Build one with [`TarEntry::file`], [`TarEntry::dir`], [`TarEntry::symlink`] or
/// [`TarEntry::hardlink`] (pack's defaults: uid/gid 0, empty user/group names, mtime
/// [`NORMALIZED_MTIME`]), or read one from an existing archive with
/// [`crate::tarread::TarReader`], then adjust the public fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// Entry name, kept exactly as given (`/cnb/buildpacks/x`, no trailing slash).
    pub path: String,
    /// Type, with the link target for links.
    pub kind: EntryKind,
    /// Permission bits (and setuid/setgid/sticky, or whatever a source archive had).
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Owner user name (pack writes it empty).
    pub uname: String,
    /// Owner group name (pack writes it empty).
    pub gname: String,
    /// Modification time.
    pub mtime: TarTime,
    /// Access time (written only for PAX/GNU-format source entries).
    pub atime: Option<TarTime>,
    /// Change time (written only for PAX/GNU-format source entries).
    pub ctime: Option<TarTime>,
    /// The header's size field; for files, the number of content bytes that follow.
    pub size: u64,
    /// Device major number (character and block devices).
    pub devmajor: u64,
    /// Device minor number.
    pub devminor: u64,
    /// PAX records carried from a source archive, every key of its `x` header. Which of them
    /// are written out is decided as Go decides it (see the module docs).
    pub pax_records: BTreeMap<String, String>,
    /// How Go's reader classified the source header; [`HeaderFormat::Unspecified`] for
    /// entries cnbx creates.
    pub format: HeaderFormat,
}

impl TarEntry {
    /// An entry of `kind` with pack's defaults: mode 0755 for directories and 0644 otherwise,
    /// uid/gid 0, empty user/group names, mtime [`NORMALIZED_MTIME`], size 0.
    pub fn new(path: impl Into<String>, kind: EntryKind) -> Self {
        let mode = if kind == EntryKind::Dir { 0o755 } else { 0o644 };
        Self {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            mtime: TarTime::NORMALIZED,
            atime: None,
            ctime: None,
            size: 0,
            devmajor: 0,
            devminor: 0,
            pax_records: BTreeMap::new(),
            format: HeaderFormat::Unspecified,
        }
    }

    /// A regular file of `size` bytes, mode 0644.
    pub fn file(path: impl Into<String>, size: u64) -> Self {
        let mut e = Self::new(path, EntryKind::File);
        e.size = size;
        e
    }

    /// A directory, mode 0755.
    pub fn dir(path: impl Into<String>) -> Self {
        Self::new(path, EntryKind::Dir)
    }

    /// A symbolic link to `target`, mode 0644.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Self {
        Self::new(path, EntryKind::Symlink { target: target.into() })
    }

    /// A hard link to the earlier entry `target`, mode 0644.
    pub fn hardlink(path: impl Into<String>, target: impl Into<String>) -> Self {
        Self::new(path, EntryKind::Hardlink { target: target.into() })
    }

    /// Sets the mode.
    #[must_use]
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Sets uid and gid.
    #[must_use]
    pub fn with_owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Sets the modification time.
    #[must_use]
    pub fn with_mtime(mut self, mtime: impl Into<TarTime>) -> Self {
        self.mtime = mtime.into();
        self
    }

    /// Number of content bytes that follow this header: the size, or 0 for header-only
    /// types (links, directories, devices, FIFOs) whatever their size field says.
    pub fn data_len(&self) -> u64 {
        if is_header_only(self.kind.typeflag()) { 0 } else { self.size }
    }
}

/// Whether `s` is an ASCII C string (no byte ≥ 0x80, no NUL).
fn is_c_ascii(s: &str) -> bool {
    s.bytes().all(|b| b != 0 && b < 0x80)
}

/// Best-effort ASCII: drops non-ASCII bytes and NULs (Go's `toASCII`).
fn to_ascii(s: &str) -> Vec<u8> {
    s.bytes().filter(|&b| b != 0 && b < 0x80).collect()
}

/// Splits a long ASCII name into a USTAR prefix (≤ 155) and name (≤ 100) at a `/`, as Go's
/// `splitUSTARPath` does.
fn split_ustar_path(name: &str) -> Option<(&str, &str)> {
    let len = name.len();
    if len <= NAME_SIZE || !is_c_ascii(name) {
        return None;
    }
    let mut limit = len;
    if limit > PREFIX_SIZE + 1 {
        limit = PREFIX_SIZE + 1;
    } else if name.as_bytes()[limit - 1] == b'/' {
        limit -= 1;
    }
    let i = name[..limit].rfind('/')?;
    let suffix_len = len - i - 1;
    if i == 0 || suffix_len > NAME_SIZE || suffix_len == 0 || i > PREFIX_SIZE {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

/// Lexically cleans a slash-separated path exactly as Go's `path.Clean` does: repeated
/// slashes collapsed, `.` removed, `..` resolved (dropped at the root), trailing slash
/// removed, `"."` for an empty result.
pub fn clean_path(path: &str) -> String {
    let p = path.as_bytes();
    if p.is_empty() {
        return ".".to_owned();
    }
    let rooted = p[0] == b'/';
    let n = p.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0, 0);
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        if p[r] == b'/' || (p[r] == b'.' && (r + 1 == n || p[r + 1] == b'/')) {
            // Empty or `.` component.
            r += 1;
        } else if p[r] == b'.' && p[r + 1] == b'.' && (r + 2 == n || p[r + 2] == b'/') {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && p[r] != b'/' {
                out.push(p[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return ".".to_owned();
    }
    // Only whole components between ASCII slashes were copied, so this stays UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Joins path elements as Go's `path.Join`: empty leading elements are skipped, the rest
/// joined with `/`, the result cleaned.
fn join_path(elems: &[&str]) -> String {
    if elems.iter().all(|e| e.is_empty()) {
        return String::new();
    }
    let mut buf = String::new();
    for e in elems {
        if !buf.is_empty() || !e.is_empty() {
            if !buf.is_empty() {
                buf.push('/');
            }
            buf.push_str(e);
        }
    }
    clean_path(&buf)
}

/// Name of the PAX `x` header for an entry named `path`: `<dir>/PaxHeaders.0/<base>`.
fn pax_header_name(path: &str) -> String {
    let (dir, file) = match path.rfind('/') {
        Some(i) => path.split_at(i + 1),
        None => ("", path),
    };
    join_path(&[dir, "PaxHeaders.0", file])
}

/// One PAX record, `"<len> key=value\n"`, where `<len>` counts the whole record including
/// itself.
fn pax_record(key: &str, value: &str) -> String {
    let base = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut size = base + base.to_string().len();
    if size.to_string().len() + base != size {
        size = size.to_string().len() + base;
    }
    format!("{size} {key}={value}\n")
}

/// Whether Go accepts a PAX record.
fn valid_pax_record(key: &str, value: &str) -> bool {
    if key.is_empty() || key.contains('=') {
        return false;
    }
    match key {
        "path" | "linkpath" | "uname" | "gname" => !value.contains('\0'),
        _ => !key.contains('\0'),
    }
}

fn fits_octal(width: usize, x: i128) -> bool {
    let bits = (width - 1) * 3;
    x >= 0 && (width >= 22 || x < 1i128 << bits)
}

fn fits_base256(width: usize, x: i128) -> bool {
    let bits = (width - 1) * 8;
    width >= 9 || (x >= -(1i128 << bits) && x < 1i128 << bits)
}

/// Copies `s` into a NUL-padded field; when `s` is longer than the field and the copy ends
/// with `/`, the trailing slashes are cut with a NUL (Go's `formatString`, so buggy readers
/// do not mistake a truncated file name for a directory).
fn put_str(f: &mut [u8], s: &[u8]) {
    let n = s.len().min(f.len());
    f[..n].copy_from_slice(&s[..n]);
    if s.len() < f.len() {
        f[s.len()] = 0;
    }
    if s.len() > f.len() && f[f.len() - 1] == b'/' {
        let kept = s[..f.len() - 1].iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
        f[kept] = 0;
    }
}

/// Zero-padded octal with a NUL terminator; 0 when the value does not fit.
fn put_octal(f: &mut [u8], x: i128) {
    let x = if fits_octal(f.len(), x) { x } else { 0 };
    let digits = format!("{x:o}");
    let s = format!("{digits:0>width$}", width = (f.len() - 1).max(digits.len()));
    put_str(f, s.as_bytes());
}

/// GNU numeric field: octal when it fits, else base-256 (two's complement, marker bit set).
fn put_numeric(f: &mut [u8], x: i128) {
    if fits_octal(f.len(), x) {
        put_octal(f, x);
    } else if fits_base256(f.len(), x) {
        let mut v = x;
        for b in f.iter_mut().rev() {
            *b = (v & 0xff) as u8;
            v >>= 8;
        }
        f[0] |= 0x80;
    } else {
        put_octal(f, 0);
    }
}

/// Writes the magic and version for `format`, then the checksum.
fn seal(block: &mut [u8; BLOCK_SIZE], format: u8) {
    if format == GNU {
        block[field::MAGIC].copy_from_slice(b"ustar ");
        block[field::VERSION].copy_from_slice(b" \0");
    } else {
        block[field::MAGIC].copy_from_slice(b"ustar\0");
        block[field::VERSION].copy_from_slice(b"00");
    }
    block[field::CHKSUM].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    put_octal(&mut block[field::CHKSUM.start..field::CHKSUM.end - 1], i128::from(sum));
    block[field::CHKSUM.end - 1] = b' ';
}

/// Bytes of zero padding after `len` bytes of content.
fn padding(len: u64) -> usize {
    // The remainder is below 512, so the cast is lossless.
    ((BLOCK_SIZE as u64 - len % BLOCK_SIZE as u64) % BLOCK_SIZE as u64) as usize
}

/// A minimal header for a metadata pseudo-file (PAX `x` header, GNU long name): the name
/// made ASCII, cut to 100 bytes and stripped of trailing slashes; mode, uid, gid and mtime
/// 0; empty user/group names and device numbers.
fn raw_file_header(name: &str, len: usize, typeflag: u8, format: u8) -> [u8; BLOCK_SIZE] {
    let mut name = to_ascii(name);
    name.truncate(NAME_SIZE);
    while name.last() == Some(&b'/') {
        name.pop();
    }
    let mut b = [0u8; BLOCK_SIZE];
    b[field::TYPEFLAG] = typeflag;
    put_str(&mut b[field::NAME], &name);
    put_octal(&mut b[field::MODE], 0);
    put_octal(&mut b[field::UID], 0);
    put_octal(&mut b[field::GID], 0);
    put_octal(&mut b[field::SIZE], len as i128);
    put_octal(&mut b[field::MTIME], 0);
    seal(&mut b, format);
    b
}

/// Appends a pseudo-file (header, payload, padding) to `out`.
fn push_raw_file(out: &mut Vec<u8>, name: &str, payload: &[u8], typeflag: u8, format: u8) {
    out.extend_from_slice(&raw_file_header(name, payload.len(), typeflag, format));
    out.extend_from_slice(payload);
    out.resize(out.len() + padding(payload.len() as u64), 0);
}

/// How one header will be written.
struct Plan {
    format: u8,
    pax: BTreeMap<String, String>,
    mtime: TarTime,
    atime: Option<TarTime>,
    ctime: Option<TarTime>,
}

/// Works out which formats can encode a header and which PAX records it needs (Go's
/// `allowedFormats`).
struct Checker<'a> {
    allowed: u8,
    prefer_pax: bool,
    pax: BTreeMap<String, String>,
    carried: &'a BTreeMap<String, String>,
    why_not: Vec<String>,
}

impl Checker<'_> {
    fn deny(&mut self, formats: u8, why: String) {
        if self.allowed & formats != 0 {
            self.why_not.push(why);
        }
        self.allowed &= !formats;
    }

    fn keep_if_carried(&mut self, key: &str, value: &str) {
        if self.carried.get(key).is_some_and(|v| v == value) {
            self.pax.insert(key.to_owned(), value.to_owned());
        }
    }

    fn string(&mut self, name: &str, s: &str, width: usize, key: &str) {
        let too_long = s.len() > width;
        let long_ok_in_gnu = key == "path" || key == "linkpath";
        if s.contains('\0') || (too_long && !long_ok_in_gnu) {
            self.deny(GNU, format!("GNU cannot encode {name} {s:?}"));
        }
        if !is_c_ascii(s) || too_long {
            if key != "path" || split_ustar_path(s).is_none() {
                self.deny(USTAR, format!("USTAR cannot encode {name} {s:?}"));
            }
            self.pax.insert(key.to_owned(), s.to_owned());
        }
        self.keep_if_carried(key, s);
    }

    fn numeric(&mut self, name: &str, n: i128, width: usize, key: Option<&str>) {
        if !fits_base256(width, n) {
            self.deny(GNU, format!("GNU cannot encode {name} {n}"));
        }
        if !fits_octal(width, n) {
            self.deny(USTAR, format!("USTAR cannot encode {name} {n}"));
            match key {
                None => self.deny(PAX, format!("PAX cannot encode {name} {n}")),
                Some(k) => {
                    self.pax.insert(k.to_owned(), n.to_string());
                }
            }
        }
        if let Some(k) = key {
            self.keep_if_carried(k, &n.to_string());
        }
    }

    fn time(&mut self, name: &str, t: Option<TarTime>, key: &str) {
        let Some(t) = t else { return };
        let width = field::MTIME.len();
        let secs = i128::from(t.secs);
        if !fits_base256(width, secs) {
            self.deny(GNU, format!("GNU cannot encode {name} {}", t.to_pax()));
        }
        let is_mtime = key == "mtime";
        let fits = fits_octal(width, secs);
        if !is_mtime || !fits {
            self.deny(USTAR, format!("USTAR cannot encode {name} {}", t.to_pax()));
        }
        if !is_mtime || !fits || t.nanos != 0 {
            self.prefer_pax = true;
            self.pax.insert(key.to_owned(), t.to_pax());
        }
        self.keep_if_carried(key, &t.to_pax());
    }
}

fn plan(e: &TarEntry) -> Result<Plan, String> {
    let (mtime, atime, ctime) = match e.format {
        HeaderFormat::Unspecified => (e.mtime.rounded(), None, None),
        _ => (e.mtime, e.atime, e.ctime),
    };
    let typeflag = e.kind.typeflag();
    let mut c = Checker {
        allowed: USTAR | PAX | GNU,
        prefer_pax: false,
        pax: BTreeMap::new(),
        carried: &e.pax_records,
        why_not: Vec::new(),
    };
    c.string("name", &e.path, NAME_SIZE, "path");
    c.string("link name", e.kind.link_name(), field::LINKNAME.len(), "linkpath");
    c.string("user name", &e.uname, field::UNAME.len(), "uname");
    c.string("group name", &e.gname, field::GNAME.len(), "gname");
    c.numeric("mode", i128::from(e.mode), field::MODE.len(), None);
    c.numeric("uid", i128::from(e.uid), field::UID.len(), Some("uid"));
    c.numeric("gid", i128::from(e.gid), field::GID.len(), Some("gid"));
    c.numeric("size", i128::from(e.size), field::SIZE.len(), Some("size"));
    c.numeric("device major", i128::from(e.devmajor), field::DEVMAJOR.len(), None);
    c.numeric("device minor", i128::from(e.devminor), field::DEVMINOR.len(), None);
    c.time("mtime", Some(mtime), "mtime");
    c.time("atime", atime, "atime");
    c.time("ctime", ctime, "ctime");

    match typeflag {
        b'0' | b'3' | b'4' | b'6' | b'S' if e.path.ends_with('/') => {
            return Err("a file name may not end with a slash".into());
        }
        b'x' | b'L' | b'K' => return Err("PAX and GNU extension headers are written by the encoder, not given".into()),
        b'g' => return Err("PAX global headers are not supported".into()),
        _ => {}
    }

    if !e.pax_records.is_empty() {
        for (k, v) in &e.pax_records {
            if !c.pax.contains_key(k) && !BASIC_PAX_KEYS.contains(&k.as_str()) && !k.starts_with("GNU.sparse.") {
                c.pax.insert(k.clone(), v.clone());
            }
        }
        if c.allowed & PAX == 0 {
            c.why_not.push("only PAX can carry PAX records".into());
        }
        c.allowed &= PAX;
    }
    if let Some((k, v)) = c.pax.iter().find(|(k, v)| !valid_pax_record(k, v)) {
        return Err(format!("invalid PAX record {k:?} = {v:?}"));
    }

    let wanted = match e.format {
        HeaderFormat::Unspecified => USTAR | PAX | GNU,
        HeaderFormat::Ustar => USTAR,
        HeaderFormat::Pax if c.prefer_pax => PAX,
        HeaderFormat::Pax => PAX | USTAR,
        HeaderFormat::Gnu => GNU,
    };
    if c.allowed & wanted == 0 && c.allowed != 0 {
        c.why_not.push(format!("the source archive's {:?} format cannot hold it", e.format));
    }
    c.allowed &= wanted;
    let format = if c.allowed & USTAR != 0 {
        USTAR
    } else if c.allowed & PAX != 0 {
        PAX
    } else if c.allowed & GNU != 0 {
        GNU
    } else {
        return Err(c.why_not.join("; "));
    };
    Ok(Plan { format, pax: c.pax, mtime, atime, ctime })
}

/// Fills the fields every format shares.
fn template(
    e: &TarEntry,
    plan: &Plan,
    name: &[u8],
    link: &[u8],
    uname: &[u8],
    gname: &[u8],
    num: fn(&mut [u8], i128),
) -> [u8; BLOCK_SIZE] {
    let mut b = [0u8; BLOCK_SIZE];
    b[field::TYPEFLAG] = e.kind.typeflag();
    put_str(&mut b[field::NAME], name);
    put_str(&mut b[field::LINKNAME], link);
    num(&mut b[field::MODE], i128::from(e.mode));
    num(&mut b[field::UID], i128::from(e.uid));
    num(&mut b[field::GID], i128::from(e.gid));
    num(&mut b[field::SIZE], i128::from(e.size));
    num(&mut b[field::MTIME], i128::from(plan.mtime.secs));
    put_str(&mut b[field::UNAME], uname);
    put_str(&mut b[field::GNAME], gname);
    num(&mut b[field::DEVMAJOR], i128::from(e.devmajor));
    num(&mut b[field::DEVMINOR], i128::from(e.devminor));
    b
}

/// Encodes the header blocks of one entry: the main header, preceded by a PAX `x` header
/// or GNU long-name records when needed. Content and its padding are not included.
///
/// This is the only tar header encoder in cnbx; [`TarWriter`] and every layer use it.
pub fn encode_header(e: &TarEntry) -> Result<Vec<u8>, TarError> {
    let plan = plan(e).map_err(|reason| TarError::Unencodable { path: e.path.clone(), reason })?;
    let link = e.kind.link_name();
    let mut out = Vec::with_capacity(BLOCK_SIZE);
    match plan.format {
        USTAR => {
            let (prefix, name) = split_ustar_path(&e.path).unwrap_or(("", e.path.as_str()));
            let mut b =
                template(e, &plan, name.as_bytes(), link.as_bytes(), e.uname.as_bytes(), e.gname.as_bytes(), put_octal);
            put_str(&mut b[field::PREFIX], prefix.as_bytes());
            seal(&mut b, USTAR);
            out.extend_from_slice(&b);
        }
        PAX => {
            if !plan.pax.is_empty() {
                let records: String = plan.pax.iter().map(|(k, v)| pax_record(k, v)).collect();
                if records.len() > MAX_SPECIAL_FILE_SIZE {
                    return Err(TarError::Unencodable {
                        path: e.path.clone(),
                        reason: format!("its PAX records take {} bytes, more than the 1 MiB limit", records.len()),
                    });
                }
                push_raw_file(&mut out, &pax_header_name(&e.path), records.as_bytes(), b'x', PAX);
            }
            let mut b = template(
                e,
                &plan,
                &to_ascii(&e.path),
                &to_ascii(link),
                &to_ascii(&e.uname),
                &to_ascii(&e.gname),
                put_octal,
            );
            seal(&mut b, PAX);
            out.extend_from_slice(&b);
        }
        _ => {
            for (value, typeflag) in [(e.path.as_str(), b'L'), (link, b'K')] {
                if value.len() > NAME_SIZE {
                    let mut payload = value.as_bytes().to_vec();
                    payload.push(0);
                    push_raw_file(&mut out, "././@LongLink", &payload, typeflag, GNU);
                }
            }
            let mut b = template(
                e,
                &plan,
                e.path.as_bytes(),
                link.as_bytes(),
                e.uname.as_bytes(),
                e.gname.as_bytes(),
                put_numeric,
            );
            if let Some(t) = plan.atime {
                put_numeric(&mut b[field::GNU_ATIME], i128::from(t.secs));
            }
            if let Some(t) = plan.ctime {
                put_numeric(&mut b[field::GNU_CTIME], i128::from(t.secs));
            }
            seal(&mut b, GNU);
            out.extend_from_slice(&b);
        }
    }
    Ok(out)
}

/// Writes a tar archive entry by entry with [`encode_header`].
///
/// Content is streamed through a fixed 128 KiB buffer, so memory use does not depend on
/// entry sizes. Call [`TarWriter::finish`] to write the two end-of-archive blocks; a writer
/// dropped without it leaves an unterminated archive.
pub struct TarWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> fmt::Debug for TarWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TarWriter").finish_non_exhaustive()
    }
}

impl<W: Write> TarWriter<W> {
    /// Starts an archive written to `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner, buf: Vec::new() }
    }

    /// Appends one entry: its header, then exactly [`TarEntry::data_len`] bytes read from
    /// `data`, then padding. Fails if `data` ends early or has more bytes than that.
    /// Returns the number of content bytes written.
    pub fn append<R: Read>(&mut self, entry: &TarEntry, mut data: R) -> Result<u64, TarError> {
        let header = encode_header(entry)?;
        let write_err = |source| TarError::Write { path: entry.path.clone(), source };
        self.inner.write_all(&header).map_err(write_err)?;
        let expected = entry.data_len();
        if self.buf.is_empty() {
            self.buf = vec![0; COPY_BUFFER_SIZE];
        }
        let mut done = 0u64;
        while done < expected {
            let want = usize::try_from(expected - done).unwrap_or(usize::MAX).min(self.buf.len());
            let n = match data.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(TarError::ContentTooShort { path: entry.path.clone(), expected, actual: done });
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(TarError::Read { path: entry.path.clone(), source }),
            };
            self.inner.write_all(&self.buf[..n]).map_err(write_err)?;
            done += n as u64;
        }
        // The source must be exhausted too: a longer file means it changed since it was
        // measured, and the header would be wrong.
        loop {
            match data.read(&mut self.buf[..1]) {
                Ok(0) => break,
                Ok(_) => return Err(TarError::ContentTooLong { path: entry.path.clone(), expected }),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(TarError::Read { path: entry.path.clone(), source }),
            }
        }
        self.inner.write_all(&ZERO_BLOCK[..padding(expected)]).map_err(write_err)?;
        Ok(expected)
    }

    /// Appends an entry whose content is `data` (which must be [`TarEntry::data_len`]
    /// bytes long).
    pub fn append_bytes(&mut self, entry: &TarEntry, data: &[u8]) -> Result<(), TarError> {
        self.append(entry, data).map(|_| ())
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The underlying writer, mutably (bytes written through it bypass the archive).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Writes the two zero blocks that end an archive, flushes, and returns the writer.
    pub fn finish(mut self) -> Result<W, TarError> {
        let write_err = |source| TarError::Write { path: String::new(), source };
        self.inner.write_all(&ZERO_BLOCK).map_err(write_err)?;
        self.inner.write_all(&ZERO_BLOCK).map_err(write_err)?;
        self.inner.flush().map_err(write_err)?;
        Ok(self.inner)
    }
}

static ZERO_BLOCK: [u8; BLOCK_SIZE] = [0; BLOCK_SIZE];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tarread::{c_string, parse_numeric};

    fn one(entry: &TarEntry, data: &[u8]) -> Vec<u8> {
        let mut w = TarWriter::new(Vec::new());
        w.append_bytes(entry, data).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn ustar_header_fields_match_go() {
        let e = TarEntry::dir("/layers").with_owner(1000, 1000);
        let h = encode_header(&e).unwrap();
        assert_eq!(h.len(), 512);
        assert_eq!(&h[0..8], b"/layers\0");
        assert_eq!(&h[100..108], b"0000755\0");
        assert_eq!(&h[108..116], b"0001750\0");
        assert_eq!(&h[116..124], b"0001750\0");
        assert_eq!(&h[124..136], b"00000000000\0");
        assert_eq!(&h[136..148], b"02263523001\0");
        assert_eq!(h[156], b'5');
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert!(h[265..329].iter().all(|&b| b == 0), "uname/gname must be empty");
        assert_eq!(&h[329..345], b"0000000\x000000000\0");
        assert_eq!(h[154], 0);
        assert_eq!(h[155], b' ');
        let mut sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        sum -= h[148..156].iter().map(|&b| u32::from(b)).sum::<u32>();
        sum += 8 * u32::from(b' ');
        assert_eq!(parse_numeric(&h[148..156]).unwrap(), i64::from(sum));
    }

    #[test]
    fn archive_ends_with_two_zero_blocks_only() {
        let bytes = TarWriter::new(Vec::new()).finish().unwrap();
        assert_eq!(bytes, vec![0; 1024]);
        let bytes = one(&TarEntry::file("/a", 3), b"abc");
        assert_eq!(bytes.len(), 512 + 512 + 1024);
    }

    #[test]
    fn long_ascii_names_split_into_prefix() {
        let dir = "/cnb/buildpacks/".to_owned() + &"d".repeat(90);
        let name = format!("{dir}/{}", "f".repeat(50));
        let h = encode_header(&TarEntry::file(&name, 0)).unwrap();
        assert_eq!(h.len(), 512, "no PAX header for a splittable name");
        assert_eq!(c_string(&h[0..100]), "f".repeat(50).as_bytes());
        assert_eq!(c_string(&h[345..500]), dir.as_bytes());
    }

    #[test]
    fn split_rules_follow_go() {
        assert_eq!(split_ustar_path("short"), None);
        let only_root = format!("/{}", "x".repeat(120));
        assert_eq!(split_ustar_path(&only_root), None, "splitting at the leading slash is not allowed");
        let long_last = format!("a/{}", "x".repeat(101));
        assert_eq!(split_ustar_path(&long_last), None);
        let dir_with_slash = format!("{}/{}/", "a".repeat(60), "b".repeat(60));
        assert_eq!(
            split_ustar_path(&dir_with_slash),
            Some(("a".repeat(60).as_str(), format!("{}/", "b".repeat(60)).as_str()))
        );
    }

    #[test]
    fn pax_for_unsplittable_names() {
        let name = format!("/{}", "n".repeat(199));
        let h = encode_header(&TarEntry::file(&name, 0)).unwrap();
        assert_eq!(h.len(), 512 * 3, "x header, its records, main header");
        // x header: name, zero mode/uid/gid/mtime, typeflag x, ustar magic, empty devs.
        let x_name = format!("/PaxHeaders.0/{}", "n".repeat(86));
        assert_eq!(c_string(&h[0..100]), x_name.as_bytes(), "cut to 100 bytes");
        assert_eq!(&h[100..108], b"0000000\0");
        assert_eq!(&h[136..148], b"00000000000\0");
        assert_eq!(h[156], b'x');
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert!(h[329..345].iter().all(|&b| b == 0));
        let record = pax_record("path", &name);
        assert_eq!(parse_numeric(&h[124..136]).unwrap(), record.len() as i64);
        assert_eq!(&h[512..512 + record.len()], record.as_bytes());
        assert!(record.starts_with("210 path=/nnn"), "{record}");
        // Main header keeps the first 100 bytes of the name.
        assert_eq!(&h[1024..1124], &name.as_bytes()[..100]);
        assert_eq!(h[1024 + 156], b'0');
    }

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("path", "a"), "9 path=a\n");
        assert_eq!(pax_record("uid", "2097152"), "15 uid=2097152\n");
        // 3 + 4 + 90 = 97 + "97".len() = 99: fits in two digits.
        assert_eq!(pax_record("path", &"x".repeat(90)).len(), 99);
        // 3 + 4 + 91 = 98 + 2 = 100: needs three digits, 101 in total.
        let r = pax_record("path", &"x".repeat(91));
        assert!(r.starts_with("101 "), "{r}");
        assert_eq!(r.len(), 101);
    }

    #[test]
    fn pax_header_names() {
        assert_eq!(pax_header_name("/cnb/a/b"), "/cnb/a/PaxHeaders.0/b");
        assert_eq!(pax_header_name("b"), "PaxHeaders.0/b");
        assert_eq!(pax_header_name("a/b/"), "a/b/PaxHeaders.0");
        assert_eq!(pax_header_name("/x"), "/PaxHeaders.0/x");
    }

    #[test]
    fn clean_matches_go_path_clean() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("abc", "abc"),
            ("abc/", "abc"),
            ("a//b", "a/b"),
            ("./a/./b/", "a/b"),
            ("a/../..", ".."),
            ("../../a", "../../a"),
            ("/../a", "/a"),
            ("a/b/../c", "a/c"),
            ("/a/b/../../..", "/"),
            ("..", ".."),
            (".", "."),
        ] {
            assert_eq!(clean_path(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn times_round_trip_pax_text() {
        for (s, secs, nanos, back) in [
            ("1700000000", 1_700_000_000, 0, "1700000000"),
            ("1700000000.5", 1_700_000_000, 500_000_000, "1700000000.5"),
            ("1.0000000019", 1, 1, "1.000000001"),
            ("-1.25", -2, 750_000_000, "-1.25"),
            ("-0.5", -1, 500_000_000, "-0.5"),
            ("5.", 5, 0, "5"),
        ] {
            let t = TarTime::parse_pax(s).unwrap();
            assert_eq!((t.secs(), t.nanos()), (secs, nanos), "{s}");
            assert_eq!(t.to_pax(), back);
        }
        assert!(TarTime::parse_pax("1.x").is_none());
        assert_eq!(TarTime::new(1, 500_000_000).unwrap().rounded(), TarTime::from_secs(2));
        assert_eq!(TarTime::new(1, 499_999_999).unwrap().rounded(), TarTime::from_secs(1));
    }

    #[test]
    fn octal_and_base256_fields() {
        let mut f = [0u8; 8];
        put_octal(&mut f, 0o7777777);
        assert_eq!(&f, b"7777777\0");
        put_octal(&mut f, 0o10000000);
        assert_eq!(&f, b"0000000\0", "Go writes 0 when a number does not fit");
        let mut g = [0u8; 8];
        put_numeric(&mut g, 0o10000000);
        assert_eq!(g, [0x80, 0, 0, 0, 0, 0x20, 0, 0]);
        assert_eq!(parse_numeric(&g), Some(0o10000000));
        let mut neg = [0u8; 12];
        put_numeric(&mut neg, -1);
        assert_eq!(parse_numeric(&neg), Some(-1));
    }

    #[test]
    fn big_uid_goes_to_pax() {
        let e = TarEntry::file("/f", 0).with_owner(1 << 21, 7);
        let h = encode_header(&e).unwrap();
        assert_eq!(h.len(), 512 * 3);
        assert!(String::from_utf8_lossy(&h[512..1024]).starts_with("15 uid=2097152\n"));
        assert_eq!(&h[1024 + 108..1024 + 116], b"0000000\0");
        assert_eq!(&h[1024 + 116..1024 + 124], b"0000007\0");
    }

    #[test]
    fn unspecified_format_rounds_mtime_and_drops_atime() {
        let mut e = TarEntry::file("/f", 0);
        e.mtime = TarTime::new(10, 600_000_000).unwrap();
        e.atime = Some(TarTime::from_secs(5));
        let h = encode_header(&e).unwrap();
        assert_eq!(h.len(), 512);
        assert_eq!(parse_numeric(&h[136..148]), Some(11));
        // The same header from a PAX source keeps both.
        e.format = HeaderFormat::Pax;
        let h = encode_header(&e).unwrap();
        let records = String::from_utf8_lossy(&h[512..1024]);
        assert!(records.starts_with("11 atime=5\n14 mtime=10.6\n"), "{records}");
        assert_eq!(parse_numeric(&h[1024 + 136..1024 + 148]), Some(10));
    }

    #[test]
    fn carried_records() {
        let mut e = TarEntry::file("/f", 0);
        e.format = HeaderFormat::Pax;
        e.pax_records.insert("path".into(), "/old".into());
        e.pax_records.insert("SCHILY.xattr.user.x".into(), "1".into());
        e.pax_records.insert("GNU.sparse.major".into(), "1".into());
        let h = encode_header(&e).unwrap();
        let records = String::from_utf8_lossy(&h[512..1024]);
        assert!(records.starts_with("25 SCHILY.xattr.user.x=1\n"), "{records}");
        assert!(!records.contains("path="), "a stale path record is dropped");
        assert!(!records.contains("GNU.sparse"));
        e.path = "/old".into();
        let h = encode_header(&e).unwrap();
        assert!(String::from_utf8_lossy(&h[512..1024]).contains("13 path=/old\n"), "a matching path record is kept");
    }

    #[test]
    fn gnu_sources_stay_gnu() {
        let mut e = TarEntry::file(format!("/{}", "g".repeat(120)), 0);
        e.format = HeaderFormat::Gnu;
        let h = encode_header(&e).unwrap();
        assert_eq!(h[156], b'L');
        assert_eq!(c_string(&h[0..100]), b"././@LongLink");
        assert_eq!(&h[257..265], b"ustar  \0");
        assert_eq!(&h[1024 + 257..1024 + 265], b"ustar  \0");
        assert_eq!(h.len(), 512 * 3);
    }

    #[test]
    fn ustar_source_that_no_longer_fits_is_an_error() {
        let mut e = TarEntry::file(format!("/{}", "u".repeat(120)), 0);
        e.format = HeaderFormat::Ustar;
        let err = encode_header(&e).unwrap_err().to_string();
        assert!(err.contains("USTAR cannot encode name"), "{err}");
    }

    #[test]
    fn content_size_is_checked() {
        let mut w = TarWriter::new(Vec::new());
        let err = w.append(&TarEntry::file("/f", 4), &b"abc"[..]).unwrap_err();
        assert!(matches!(err, TarError::ContentTooShort { actual: 3, .. }), "{err}");
        let mut w = TarWriter::new(Vec::new());
        let err = w.append(&TarEntry::file("/f", 2), &b"abc"[..]).unwrap_err();
        assert!(matches!(err, TarError::ContentTooLong { .. }), "{err}");
        // Header-only types take no content whatever their size says.
        let mut w = TarWriter::new(Vec::new());
        let mut d = TarEntry::dir("/d");
        d.size = 10;
        assert_eq!(w.append(&d, io::empty()).unwrap(), 0);
    }

    #[test]
    fn trailing_slash_on_file_is_rejected() {
        let err = encode_header(&TarEntry::file("/f/", 0)).unwrap_err().to_string();
        assert!(err.contains("may not end with a slash"), "{err}");
    }

    #[test]
    fn reads_back_with_the_reader_and_the_tar_crate() {
        let mut w = TarWriter::new(Vec::new());
        w.append_bytes(&TarEntry::dir("/cnb").with_owner(1, 2), b"").unwrap();
        w.append_bytes(&TarEntry::file("/cnb/x", 5).with_mode(0o755), b"hello").unwrap();
        w.append_bytes(&TarEntry::symlink("/lifecycle", "/cnb/lifecycle"), b"").unwrap();
        w.append_bytes(&TarEntry::hardlink("/cnb/y", "/cnb/x"), b"").unwrap();
        let bytes = w.finish().unwrap();
        // An independent reader sees the same names.
        let mut ar = tar::Archive::new(&bytes[..]);
        let names: Vec<String> =
            ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["/cnb", "/cnb/x", "/lifecycle", "/cnb/y"]);
        let mut reader = crate::tarread::TarReader::new(&bytes[..], crate::tarread::Use::Verbatim);
        let mut seen = Vec::new();
        while let Some(t) = reader.next_entry().unwrap() {
            let mut content = Vec::new();
            reader.content().read_to_end(&mut content).unwrap();
            seen.push((t, content));
        }
        assert_eq!(seen.len(), 4);
        let (dir, _) = &seen[0];
        assert_eq!((dir.path.as_str(), dir.uid, dir.gid, dir.format), ("/cnb", 1, 2, HeaderFormat::Ustar));
        assert_eq!(seen[1].1, b"hello");
        assert_eq!(seen[1].0.mode, 0o755);
        assert_eq!(seen[2].0.kind, EntryKind::Symlink { target: "/cnb/lifecycle".into() });
        assert_eq!(seen[3].0.kind, EntryKind::Hardlink { target: "/cnb/x".into() });
        // Re-encoding what was read gives the same bytes.
        let mut again = TarWriter::new(Vec::new());
        for (t, c) in &seen {
            again.append_bytes(t, c).unwrap();
        }
        assert_eq!(again.finish().unwrap(), bytes);
    }
}
