//! Reading tar archives exactly as Go's `archive/tar` reads them.
//!
//! Whatever unpacks an image later (containerd, Docker, umoci, the lifecycle) reads its layers
//! with Go's `archive/tar`, and pack reads module archives with it too. A reader that sees
//! other entries than Go does is a hole: a layer it calls confined can write anywhere once Go
//! unpacks it (two PAX `path` records, where one reader takes the first and Go the last; a
//! link whose size field is not 0, whose "content" Go reads as the next header; a GNU long
//! name with a NUL in it, which Go cuts). So this module re-derives Go's reader (its `Next`:
//! header parsing, checksums, formats, PAX and GNU extension headers, old GNU sparse files,
//! the end of the archive), and [`TarReader`] reports for every entry the name, link name,
//! type and size Go would report, with the content boundary Go would use.
//!
//! Where Go's answer is not the only one a reader could give, the archive is refused instead
//! of guessed ([`ReadError`] names the entry and why), in every [`Use`]:
//!
//! * a PAX header with the same key twice, two PAX headers or two GNU long names (or long link
//!   names) for one entry, a GNU long name and a PAX `path` record (or long link name and
//!   `linkpath`) for one entry;
//! * an empty PAX `path`, `linkpath` or `size` record (Go then keeps the header's field);
//! * any `GNU.sparse.*` PAX record (GNU sparse files in PAX form rename and resize entries);
//! * a GNU long name or link name with anything after a NUL, or empty;
//! * a PAX record whose length is not plain decimal digits without leading zeros;
//! * extension headers that no entry follows;
//! * names and link names that are not UTF-8, negative ids.
//!
//! An archive reused byte for byte ([`Use::Verbatim`], buildpackage layers) must also leave
//! nothing to readers that are not quite Go (other versions of it included):
//!
//! * no link, directory, device or FIFO whose size is not 0 (Go reads no content for them,
//!   other readers skip that many bytes);
//! * no PAX `size` record that differs from a non-zero size field;
//! * no sparse file (`S`), no PAX global header (`g`: readers disagree on whether it applies
//!   to later entries), no STAR header, no GNU header whose times do not parse (Go then reads
//!   a name prefix there), no `ustar\0` header with another version than `00` and a name
//!   prefix (Go uses the prefix, others do not);
//! * nothing but zero bytes after the end of the archive.
//!
//! Every read is bounded: bytes after decompression ([`limits::max_unpacked_size`]), entries
//! ([`limits::max_archive_entries`]) and the headers of one entry ([`MAX_HEADER_BYTES`]),
//! as [`ArchiveLimit`] errors.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::ops::Range;

use cnbx_fs::limits;

use crate::archive::ArchiveLimit;
use crate::tarball::{EntryKind, HeaderFormat, TarEntry, TarTime};

/// Size of a tar block.
const BLOCK: usize = 512;

/// The most bytes read while locating one entry: its extension headers (PAX records or GNU
/// long names; Go reads at most 1 MiB of each) and its header blocks.
pub const MAX_HEADER_BYTES: u64 = limits::MAX_TAR_HEADER + 64 * 1024;

/// The largest PAX header or GNU long name Go reads (`maxSpecialFileSize`).
const MAX_SPECIAL_FILE: u64 = limits::MAX_TAR_HEADER;

/// Header field offsets (POSIX ustar; GNU and STAR reuse the prefix area).
pub(crate) mod field {
    use std::ops::Range;

    pub(crate) const NAME: Range<usize> = 0..100;
    pub(crate) const MODE: Range<usize> = 100..108;
    pub(crate) const UID: Range<usize> = 108..116;
    pub(crate) const GID: Range<usize> = 116..124;
    pub(crate) const SIZE: Range<usize> = 124..136;
    pub(crate) const MTIME: Range<usize> = 136..148;
    pub(crate) const CHKSUM: Range<usize> = 148..156;
    pub(crate) const TYPEFLAG: usize = 156;
    pub(crate) const LINKNAME: Range<usize> = 157..257;
    pub(crate) const MAGIC: Range<usize> = 257..263;
    pub(crate) const VERSION: Range<usize> = 263..265;
    pub(crate) const UNAME: Range<usize> = 265..297;
    pub(crate) const GNAME: Range<usize> = 297..329;
    pub(crate) const DEVMAJOR: Range<usize> = 329..337;
    pub(crate) const DEVMINOR: Range<usize> = 337..345;
    pub(crate) const PREFIX: Range<usize> = 345..500;
    pub(crate) const GNU_ATIME: Range<usize> = 345..357;
    pub(crate) const GNU_CTIME: Range<usize> = 357..369;
    pub(crate) const GNU_SPARSE: usize = 386;
    pub(crate) const GNU_REAL_SIZE: Range<usize> = 483..495;
    pub(crate) const STAR_PREFIX: Range<usize> = 345..476;
    pub(crate) const STAR_ATIME: Range<usize> = 476..488;
    pub(crate) const STAR_CTIME: Range<usize> = 488..500;
    pub(crate) const STAR_TRAILER: Range<usize> = 508..512;
}

/// Go's format bits (`Format`): what a header block, or a whole entry, may be.
pub(crate) const USTAR: u8 = 1;
pub(crate) const PAX: u8 = 2;
pub(crate) const GNU: u8 = 4;

/// What the archive is read for, which decides how much is refused (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// cnbx re-encodes the entries (module and lifecycle archives, `.cnb` files, buildpackage
    /// layers that are split or mended): Go's reading, ambiguous headers refused.
    Reencode,
    /// The archive is reused byte for byte (a buildpackage layer): also refused, anything a
    /// reader other than this version of Go could read differently.
    Verbatim,
}

/// Why an archive cannot be read as Go reads it. The message never quotes header bytes:
/// names are excerpts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ReadError {
    /// What is wrong, as far as it is known: `entry '<name>'`, `the PAX header '<name>'`, ...
    /// (names as excerpts).
    pub subject: Option<String>,
    /// Where the entry's first header starts in the uncompressed archive.
    pub offset: u64,
    /// What is wrong.
    pub problem: Problem,
}

impl ReadError {
    fn describe(&self) -> String {
        if self.offset == 0 && self.problem == Problem::NotAHeader {
            // The start of a file that is not a tar at all.
            return "it is not a valid tar or gzipped tar stream".to_owned();
        }
        match &self.subject {
            Some(subject) => format!("{subject} (header at byte {}): {}", self.offset, self.problem),
            None => format!("the tar header at byte {}: {}", self.offset, self.problem),
        }
    }

    /// Whether `e` is a [`ReadError`].
    pub fn find(e: &io::Error) -> Option<&ReadError> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<ReadError>())
    }
}

/// What is wrong with a header, for [`ReadError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The checksum does not match (Go: `ErrHeader`).
    #[error("it is not a valid tar header (its checksum does not match)")]
    NotAHeader,
    /// A numeric field Go cannot parse.
    #[error("its {0} field is not a number")]
    BadNumber(&'static str),
    /// A negative size (Go: `ErrHeader`).
    #[error("its size is negative")]
    NegativeSize,
    /// A zero block followed by a header (Go: `ErrHeader`).
    #[error("a zero block is followed by another header; the archive ended there for other readers")]
    ZeroBlockThenHeader,
    /// A PAX header Go cannot parse.
    #[error("its PAX header is malformed ({0})")]
    BadPax(&'static str),
    /// A PAX record value Go cannot parse.
    #[error("its PAX record '{0}' is not valid")]
    BadPaxValue(String),
    /// The same PAX key twice: the key and both values (excerpts).
    #[error("it has two '{0}' records, '{1}' and '{2}' (Go uses the last, other readers the first)")]
    DuplicatePaxKey(String, String, String),
    /// Two extension headers of one kind for one entry.
    #[error("it has two {0} (Go uses the last, other readers the first)")]
    RepeatedExtension(&'static str),
    /// A GNU long name and a PAX record for the same field.
    #[error("it has both a GNU long {0} and a PAX '{1}' record (readers disagree on which applies)")]
    LongAndPax(&'static str, &'static str),
    /// An empty `path`, `linkpath` or `size` record.
    #[error("its PAX '{0}' record is empty (Go then keeps the header's field, other readers do not)")]
    EmptyPaxValue(String),
    /// A `GNU.sparse.*` record.
    #[error(
        "it has the PAX record '{0}' = '{1}': GNU sparse files in PAX form can rename and resize entries, and cnbx does not read them"
    )]
    SparsePax(String, String),
    /// A NUL inside a GNU long name or link name (and the name, an excerpt).
    #[error("its GNU long {0} '{1}' has a NUL byte inside it (Go cuts the name there, other readers do not)")]
    NulInLongName(&'static str, String),
    /// An empty GNU long name or link name.
    #[error("its GNU long {0} is empty (Go then keeps the header's field, other readers do not)")]
    EmptyLongName(&'static str),
    /// Extension headers with no entry after them.
    #[error("its extension headers (PAX or GNU long names) are not followed by an entry")]
    DanglingExtension,
    /// Extension headers before a PAX global header.
    #[error("extension headers (PAX or GNU long names) precede a PAX global header")]
    ExtensionBeforeGlobal,
    /// A name or link name that is not UTF-8.
    #[error("its {0} is not UTF-8")]
    NotUtf8(&'static str),
    /// A PAX record key or value that is not UTF-8.
    #[error("a PAX record is not UTF-8")]
    PaxNotUtf8,
    /// A number that does not fit what cnbx keeps.
    #[error("its {0} is out of range")]
    OutOfRange(&'static str),
    /// An old GNU sparse header Go refuses.
    #[error("its GNU sparse map is invalid")]
    BadSparse,
    /// Content ends before the header's size.
    #[error("the archive ends in the middle of its content")]
    Truncated,
    /// A header-only type with a size (verbatim).
    #[error(
        "it is a link, directory, device or FIFO whose size field says {0} bytes (Go reads no content for it, other readers skip that many bytes)"
    )]
    SizedHeaderOnly(i64),
    /// A PAX size that differs from the header's (verbatim).
    #[error("its PAX size record ({0}) differs from its header's size ({1})")]
    PaxSizeDiffers(i64, i64),
    /// An old GNU sparse file (verbatim).
    #[error("it is a GNU sparse file, which a layer reused as it is may not hold")]
    Sparse,
    /// A PAX global header (verbatim).
    #[error("it is a PAX global header (readers disagree on whether it applies to later entries)")]
    Global,
    /// A STAR header, a GNU header read with a name prefix, or a `ustar\0` header with an
    /// unusual version and a prefix (verbatim).
    #[error("its header is {0}, whose name readers other than Go read differently")]
    OddFormat(&'static str),
    /// Bytes after the end of the archive (verbatim).
    #[error("there are bytes other than zeros after the end of the archive (other readers may read on)")]
    TrailingData,
}

/// The bytes of a NUL-terminated field up to its first NUL (Go's `parseString`).
pub(crate) fn c_string(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |i| &b[..i])
}

/// Parses a numeric header field as Go's `parseNumeric` does: base-256 (two's complement,
/// big-endian, after the marker bit) when the high bit is set, else octal with leading and
/// trailing spaces and NULs trimmed and cut at the first NUL. `None` where Go fails.
pub(crate) fn parse_numeric(b: &[u8]) -> Option<i64> {
    if b.first().is_some_and(|&c| c & 0x80 != 0) {
        let inv: u8 = if b[0] & 0x40 != 0 { 0xff } else { 0 };
        let mut x: u64 = 0;
        for (i, &c) in b.iter().enumerate() {
            let c = if i == 0 { (c ^ inv) & 0x7f } else { c ^ inv };
            if x >> 56 > 0 {
                return None;
            }
            x = x << 8 | u64::from(c);
        }
        let x = i64::try_from(x).ok()?;
        return Some(if inv == 0xff { !x } else { x });
    }
    parse_octal(b)
}

/// Go's `parseOctal`: trims spaces and NULs on both sides, cuts at the first NUL, then only
/// octal digits (no sign) that fit 64 bits.
pub(crate) fn parse_octal(b: &[u8]) -> Option<i64> {
    let start = b.iter().position(|&c| c != b' ' && c != 0).unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ' && c != 0).map_or(start, |i| i + 1);
    let digits = c_string(&b[start..end]);
    if digits.is_empty() {
        return Some(0);
    }
    let mut x: u64 = 0;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) || x >> 61 != 0 {
            return None;
        }
        x = x << 3 | u64::from(d - b'0');
    }
    // Go converts with int64(x), wrapping; only fields of 22 or more digits can get there.
    Some(x as i64)
}

/// Go's `computeChecksum`: the unsigned and the signed sum of the block, the checksum field
/// counted as spaces.
fn checksums(b: &[u8; BLOCK]) -> (i64, i64) {
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &c) in b.iter().enumerate() {
        let c = if field::CHKSUM.contains(&i) { b' ' } else { c };
        unsigned += i64::from(c);
        signed += i64::from(c as i8);
    }
    (unsigned, signed)
}

/// The format of one header block, as Go's `getFormat` guesses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockFormat {
    V7,
    UstarPax,
    Gnu,
    Star,
}

fn block_format(b: &[u8; BLOCK]) -> Option<BlockFormat> {
    let value = parse_octal(&b[field::CHKSUM])?;
    let (unsigned, signed) = checksums(b);
    if value != unsigned && value != signed {
        return None;
    }
    let magic = &b[field::MAGIC];
    Some(if magic == b"ustar\0" && &b[field::STAR_TRAILER] == b"tar\0" {
        BlockFormat::Star
    } else if magic == b"ustar\0" {
        BlockFormat::UstarPax
    } else if magic == b"ustar " && &b[field::VERSION] == b" \0" {
        BlockFormat::Gnu
    } else {
        BlockFormat::V7
    })
}

/// One header block as Go's `readHeader` reads it, before extension headers are applied.
#[derive(Debug, Clone)]
struct RawHeader {
    typeflag: u8,
    name: Vec<u8>,
    link: Vec<u8>,
    size: i64,
    mode: i64,
    uid: i64,
    gid: i64,
    mtime: i64,
    uname: Vec<u8>,
    gname: Vec<u8>,
    devmajor: i64,
    devminor: i64,
    atime: Option<i64>,
    ctime: Option<i64>,
    /// Go's `hdr.Format` for this block (0 for V7, STAR and non-conforming blocks).
    format: u8,
    block_format: BlockFormat,
    /// A GNU block whose times did not parse, read with a name prefix (Go's pre-1.8 fallback).
    gnu_prefix_fallback: bool,
    /// A `ustar\0` block with another version than `00` whose prefix was used.
    odd_ustar_prefix: bool,
}

/// Go's `readHeader` on a block that is not all zeros.
fn parse_header(b: &[u8; BLOCK]) -> Result<RawHeader, Problem> {
    let block_format = block_format(b).ok_or(Problem::NotAHeader)?;
    let num = |r: Range<usize>, name: &'static str| parse_numeric(&b[r]).ok_or(Problem::BadNumber(name));
    let mut h = RawHeader {
        typeflag: b[field::TYPEFLAG],
        name: c_string(&b[field::NAME]).to_vec(),
        link: c_string(&b[field::LINKNAME]).to_vec(),
        size: num(field::SIZE, "size")?,
        mode: num(field::MODE, "mode")?,
        uid: num(field::UID, "uid")?,
        gid: num(field::GID, "gid")?,
        mtime: num(field::MTIME, "mtime")?,
        uname: Vec::new(),
        gname: Vec::new(),
        devmajor: 0,
        devminor: 0,
        atime: None,
        ctime: None,
        format: 0,
        block_format,
        gnu_prefix_fallback: false,
        odd_ustar_prefix: false,
    };
    if block_format == BlockFormat::V7 {
        return Ok(h);
    }
    h.uname = c_string(&b[field::UNAME]).to_vec();
    h.gname = c_string(&b[field::GNAME]).to_vec();
    h.devmajor = num(field::DEVMAJOR, "device major")?;
    h.devminor = num(field::DEVMINOR, "device minor")?;
    let mut prefix: &[u8] = &[];
    match block_format {
        BlockFormat::UstarPax => {
            prefix = c_string(&b[field::PREFIX]);
            let ascii = b.iter().all(|&c| c < 0x80);
            let nul_terminated =
                [field::SIZE, field::MODE, field::UID, field::GID, field::MTIME, field::DEVMAJOR, field::DEVMINOR]
                    .into_iter()
                    .all(|r| b[r.end - 1] == 0);
            h.format = if ascii && nul_terminated { USTAR | PAX } else { 0 };
            h.odd_ustar_prefix = &b[field::VERSION] != b"00" && !prefix.is_empty();
        }
        BlockFormat::Star => {
            prefix = c_string(&b[field::STAR_PREFIX]);
            h.atime = Some(num(field::STAR_ATIME, "atime")?);
            h.ctime = Some(num(field::STAR_CTIME, "ctime")?);
        }
        BlockFormat::Gnu => {
            h.format = GNU;
            let time = |r: Range<usize>| if b[r.start] == 0 { Some(None) } else { parse_numeric(&b[r]).map(Some) };
            match (time(field::GNU_ATIME), time(field::GNU_CTIME)) {
                (Some(a), Some(c)) => (h.atime, h.ctime) = (a, c),
                _ => {
                    // Go takes the field for a name prefix written by its old, buggy writer.
                    let p = c_string(&b[field::PREFIX]);
                    if p.iter().all(|&c| c < 0x80) {
                        prefix = p;
                    }
                    h.format = 0;
                    h.gnu_prefix_fallback = true;
                }
            }
        }
        BlockFormat::V7 => {}
    }
    if !prefix.is_empty() {
        let mut name = prefix.to_vec();
        name.push(b'/');
        name.extend_from_slice(&h.name);
        h.name = name;
    }
    Ok(h)
}

/// Whether Go reads no content for this type, whatever the size says (`isHeaderOnlyType`).
fn is_header_only(typeflag: u8) -> bool {
    matches!(typeflag, b'1'..=b'6')
}

/// Parses the records of a PAX header as Go's `parsePAX` does, refusing what is ambiguous
/// (see the module docs).
fn parse_pax(mut s: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, Problem> {
    let mut records = BTreeMap::new();
    while !s.is_empty() {
        let sp = s.iter().position(|&c| c == b' ').ok_or(Problem::BadPax("a record has no length"))?;
        let digits = &s[..sp];
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || (digits[0] == b'0') {
            return Err(Problem::BadPax("a record length is not plain decimal digits"));
        }
        let n = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse::<usize>().ok())
            .filter(|&n| n >= 5 && n <= s.len() && n > sp + 1)
            .ok_or(Problem::BadPax("a record length is out of range"))?;
        let (record, rest) = s.split_at(n);
        let Some((b'\n', body)) = record[sp + 1..].split_last() else {
            return Err(Problem::BadPax("a record does not end with a newline"));
        };
        let eq = body.iter().position(|&c| c == b'=').ok_or(Problem::BadPax("a record has no '='"))?;
        let (key, value) = (&body[..eq], &body[eq + 1..]);
        let valid = !key.is_empty()
            && match key {
                b"path" | b"linkpath" | b"uname" | b"gname" => !value.contains(&0),
                _ => !key.contains(&0),
            };
        if !valid {
            return Err(Problem::BadPax("a record has an empty key or a NUL byte"));
        }
        let text = |b: &[u8]| cnbx_fs::excerpt(&String::from_utf8_lossy(b));
        let shown = || text(key);
        if key.starts_with(b"GNU.sparse.") {
            return Err(Problem::SparsePax(shown(), text(value)));
        }
        if value.is_empty() && matches!(key, b"path" | b"linkpath" | b"size") {
            return Err(Problem::EmptyPaxValue(shown()));
        }
        if let Some(first) = records.insert(key.to_vec(), value.to_vec()) {
            return Err(Problem::DuplicatePaxKey(shown(), text(&first), text(value)));
        }
        s = rest;
    }
    Ok(records)
}

/// The content of the current entry of an old GNU sparse file: its data fragments (offset,
/// length, in order), read from the archive, and zeros between them.
#[derive(Debug)]
struct Sparse {
    fragments: Vec<(u64, u64)>,
    /// The next fragment not yet read to its end.
    next: usize,
    /// Logical position.
    pos: u64,
    /// Logical size.
    size: u64,
}

/// Where the reader is in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between entries or in one.
    Reading,
    /// Past the end of the archive.
    Ended,
}

/// Reads a tar stream (already decompressed) entry by entry, as Go's `archive/tar` does.
///
/// [`TarReader::next_entry`] skips what is left of the previous entry's content, reads the
/// next entry's headers and returns it; [`TarReader::content`] reads its content (for old
/// GNU sparse files, expanded as Go expands them).
pub struct TarReader<R> {
    inner: R,
    rules: Use,
    /// Bytes read from `inner`.
    offset: u64,
    max_total: u64,
    max_entries: u64,
    entries: u64,
    /// Content bytes of the current entry not yet read from `inner`.
    data_left: u64,
    /// Padding after the current entry's content.
    pad: u64,
    sparse: Option<Sparse>,
    /// Bytes read for the headers of the entry being located.
    header_bytes: u64,
    state: State,
    /// Zeros produced by sparse files so far (counted against the unpacked-size bound).
    expanded: u64,
}

impl<R> fmt::Debug for TarReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TarReader").field("offset", &self.offset).field("entries", &self.entries).finish()
    }
}

fn limit(e: ArchiveLimit) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn unexpected_eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the archive ends in the middle of an entry")
}

impl<R: Read> TarReader<R> {
    /// A reader of `inner` for `rules`, with the bounds of [`limits`].
    pub fn new(inner: R, rules: Use) -> Self {
        Self {
            inner,
            rules,
            offset: 0,
            max_total: limits::max_unpacked_size(),
            max_entries: limits::max_archive_entries(),
            entries: 0,
            data_left: 0,
            pad: 0,
            sparse: None,
            header_bytes: 0,
            state: State::Reading,
            expanded: 0,
        }
    }

    /// The underlying stream (positioned after the end of the archive once
    /// [`TarReader::next_entry`] has returned `None`).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads from `inner`, counting against the unpacked-size bound.
    fn raw_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r?,
            }
        };
        self.offset += n as u64;
        if self.offset.saturating_add(self.expanded) > self.max_total {
            return Err(limit(ArchiveLimit::Unpacked { limit: self.max_total }));
        }
        Ok(n)
    }

    /// Fills `buf`; returns how many bytes were read before the end of the stream.
    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.raw_read(&mut buf[done..])?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Reads and drops `n` bytes; returns how many there were before the end of the stream.
    fn skip(&mut self, mut n: u64) -> io::Result<u64> {
        let mut buf = [0u8; 8 * 1024];
        let mut done = 0;
        while n > 0 {
            let want = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
            let got = self.raw_read(&mut buf[..want])?;
            if got == 0 {
                break;
            }
            done += got as u64;
            n -= got as u64;
        }
        Ok(done)
    }

    /// Counts `n` more bytes of headers for the entry being located.
    fn header_budget(&mut self, n: u64) -> io::Result<()> {
        self.header_bytes = self.header_bytes.saturating_add(n);
        if self.header_bytes > MAX_HEADER_BYTES {
            return Err(limit(ArchiveLimit::Header { limit: MAX_HEADER_BYTES }));
        }
        Ok(())
    }

    /// Reads one header block: `Ok(None)` at the end of the stream before any byte of it.
    fn read_block(&mut self) -> io::Result<Option<[u8; BLOCK]>> {
        let mut b = [0u8; BLOCK];
        match self.read_full(&mut b)? {
            0 => Ok(None),
            BLOCK => Ok(Some(b)),
            _ => Err(unexpected_eof()),
        }
    }

    /// The content (payload) of an extension header: `size` bytes and their padding.
    fn read_special(&mut self, size: i64) -> io::Result<Vec<u8>> {
        let size = u64::try_from(size).unwrap_or(u64::MAX);
        if size > MAX_SPECIAL_FILE {
            return Err(limit(ArchiveLimit::Header { limit: MAX_HEADER_BYTES }));
        }
        self.header_budget(size)?;
        let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0)];
        if self.read_full(&mut buf)? != buf.len() {
            return Err(unexpected_eof());
        }
        let pad = padding(size);
        // Go reads the padding lazily, where the end of the stream is no error.
        self.skip(pad)?;
        Ok(buf)
    }

    /// Skips what is left of the current entry's content and its padding. The end of the
    /// stream inside the padding ends the archive, as in Go.
    fn finish_entry(&mut self) -> io::Result<()> {
        let left = self.data_left;
        self.sparse = None;
        self.data_left = 0;
        if self.skip(left)? != left {
            return Err(unexpected_eof());
        }
        let pad = std::mem::take(&mut self.pad);
        if self.skip(pad)? != pad {
            self.state = State::Ended;
        }
        Ok(())
    }

    /// After the end of the archive: for [`Use::Verbatim`], everything left must be zeros.
    fn end(&mut self, offset: u64) -> io::Result<Option<TarEntry>> {
        self.state = State::Ended;
        if self.rules == Use::Verbatim {
            let mut buf = [0u8; 8 * 1024];
            loop {
                let n = self.raw_read(&mut buf)?;
                if n == 0 {
                    break;
                }
                if buf[..n].iter().any(|&b| b != 0) {
                    return Err(bad(None, offset, Problem::TrailingData));
                }
            }
        }
        Ok(None)
    }

    /// The next entry, as Go's `Reader.Next` returns it; `None` at the end of the archive.
    pub fn next_entry(&mut self) -> io::Result<Option<TarEntry>> {
        if self.state == State::Ended {
            return Ok(None);
        }
        self.finish_entry()?;
        if self.state == State::Ended {
            return Ok(None);
        }
        self.header_bytes = 0;
        let start = self.offset;
        let mut pax: Option<BTreeMap<Vec<u8>, Vec<u8>>> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut format = USTAR | PAX | GNU;
        let pending =
            |pax: &Option<_>, name: &Option<_>, link: &Option<_>| pax.is_some() || name.is_some() || link.is_some();
        loop {
            let offset = self.offset;
            self.header_budget(BLOCK as u64)?;
            let Some(block) = self.read_block()? else {
                if pending(&pax, &long_name, &long_link) {
                    return Err(bad(None, start, Problem::DanglingExtension));
                }
                return self.end(offset);
            };
            if block.iter().all(|&b| b == 0) {
                match self.read_block()? {
                    Some(next) if next.iter().any(|&b| b != 0) => {
                        return Err(bad(None, offset, Problem::ZeroBlockThenHeader));
                    }
                    _ => {}
                }
                if pending(&pax, &long_name, &long_link) {
                    return Err(bad(None, start, Problem::DanglingExtension));
                }
                return self.end(offset);
            }
            let h = parse_header(&block).map_err(|p| bad(None, offset, p))?;
            let what = match h.typeflag {
                b'x' => Some("PAX header"),
                b'g' => Some("PAX global header"),
                b'L' => Some("GNU long name header"),
                b'K' => Some("GNU long link name header"),
                _ => None,
            };
            let err = |p: Problem| bad(subject(what, &h.name), offset, p);
            if h.size < 0 && !is_header_only(h.typeflag) {
                return Err(err(Problem::NegativeSize));
            }
            format &= h.format;
            match h.typeflag {
                b'x' | b'g' => {
                    format &= PAX;
                    let data = self.read_special(h.size)?;
                    let records = parse_pax(&data).map_err(err)?;
                    if h.typeflag == b'g' {
                        if pending(&pax, &long_name, &long_link) {
                            return Err(err(Problem::ExtensionBeforeGlobal));
                        }
                        if self.rules == Use::Verbatim {
                            return Err(bad(subject(None, &h.name), offset, Problem::Global));
                        }
                        return self.global(h, records, format, offset).map(Some);
                    }
                    if pax.replace(records).is_some() {
                        return Err(err(Problem::RepeatedExtension("PAX headers")));
                    }
                }
                b'L' | b'K' => {
                    format &= GNU;
                    let data = self.read_special(h.size)?;
                    let (what, slot) =
                        if h.typeflag == b'L' { ("name", &mut long_name) } else { ("link name", &mut long_link) };
                    let value = c_string(&data);
                    if data[value.len()..].iter().any(|&b| b != 0) {
                        let all = cnbx_fs::excerpt(&String::from_utf8_lossy(&data));
                        return Err(err(Problem::NulInLongName(what, all.trim_end_matches("\\u{0}").to_owned())));
                    }
                    if value.is_empty() {
                        return Err(err(Problem::EmptyLongName(what)));
                    }
                    if slot.replace(value.to_vec()).is_some() {
                        return Err(err(Problem::RepeatedExtension(if h.typeflag == b'L' {
                            "GNU long names"
                        } else {
                            "GNU long link names"
                        })));
                    }
                }
                _ => {
                    return self.entry(&block, h, pax, long_name, long_link, format, start).map(Some);
                }
            }
        }
    }

    /// A PAX global header, returned as Go returns it: its name (the `path` record applied),
    /// typeflag `g`, no content.
    fn global(
        &mut self,
        h: RawHeader,
        records: BTreeMap<Vec<u8>, Vec<u8>>,
        format: u8,
        offset: u64,
    ) -> io::Result<TarEntry> {
        let mut name = h.name.clone();
        if let Some(path) = records.get(b"path".as_slice()) {
            name.clone_from(path);
        }
        let shown = subject(None, &name);
        let err = |p: Problem| bad(shown.clone(), offset, p);
        // Go stops applying a global header's records at the first one it cannot parse, in
        // map order, which is random: whether `path` was applied would be up to chance.
        for (k, v) in records.iter().filter(|(_, v)| !v.is_empty()) {
            let ok = match k.as_slice() {
                b"uid" | b"gid" | b"size" => std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()).is_some(),
                b"mtime" | b"atime" | b"ctime" => std::str::from_utf8(v).ok().and_then(TarTime::parse_pax).is_some(),
                _ => true,
            };
            if !ok {
                return Err(err(Problem::BadPaxValue(String::from_utf8_lossy(k).into_owned())));
            }
        }
        let path = String::from_utf8(name).map_err(|_| err(Problem::NotUtf8("name")))?;
        let mut e = TarEntry::new(path, EntryKind::Other { typeflag: b'g', linkname: String::new() });
        e.mode = 0;
        e.mtime = TarTime::from_secs(0);
        e.pax_records = utf8_records(records).map_err(err)?;
        e.format = header_format(format);
        self.count_entry()?;
        Ok(e)
    }

    fn count_entry(&mut self) -> io::Result<()> {
        self.entries += 1;
        if self.entries > self.max_entries {
            return Err(limit(ArchiveLimit::Entries { limit: self.max_entries }));
        }
        Ok(())
    }

    /// The entry of header `h` after its extension headers (Go's `mergePAX`, the GNU long
    /// names, the legacy regular-file type, old GNU sparse files).
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        block: &[u8; BLOCK],
        h: RawHeader,
        pax: Option<BTreeMap<Vec<u8>, Vec<u8>>>,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
        mut format: u8,
        start: u64,
    ) -> io::Result<TarEntry> {
        let pax = pax.unwrap_or_default();
        let mut name = h.name.clone();
        let mut link = h.link.clone();
        let (mut uname, mut gname) = (h.uname.clone(), h.gname.clone());
        let (mut uid, mut gid, mut size) = (h.uid, h.gid, h.size);
        let mut mtime = TarTime::from_secs(h.mtime);
        let mut atime = h.atime.map(TarTime::from_secs);
        let mut ctime = h.ctime.map(TarTime::from_secs);
        let shown = {
            let n = long_name.as_deref().or(pax.get(b"path".as_slice()).map(Vec::as_slice)).unwrap_or(&h.name);
            subject(None, n)
        };
        let err = |p: Problem| bad(shown.clone(), start, p);
        let int = |key: &str, v: &[u8]| {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| err(Problem::BadPaxValue(key.to_owned())))
        };
        let time = |key: &str, v: &[u8]| {
            std::str::from_utf8(v)
                .ok()
                .and_then(TarTime::parse_pax)
                .ok_or_else(|| err(Problem::BadPaxValue(key.to_owned())))
        };
        for (k, v) in &pax {
            if v.is_empty() {
                continue;
            }
            match k.as_slice() {
                b"path" => name.clone_from(v),
                b"linkpath" => link.clone_from(v),
                b"uname" => uname.clone_from(v),
                b"gname" => gname.clone_from(v),
                b"uid" => uid = int("uid", v)?,
                b"gid" => gid = int("gid", v)?,
                b"size" => size = int("size", v)?,
                b"mtime" => mtime = time("mtime", v)?,
                b"atime" => atime = Some(time("atime", v)?),
                b"ctime" => ctime = Some(time("ctime", v)?),
                _ => {}
            }
        }
        if let Some(n) = long_name {
            if pax.contains_key(b"path".as_slice()) {
                return Err(err(Problem::LongAndPax("name", "path")));
            }
            name = n;
        }
        if let Some(l) = long_link {
            if pax.contains_key(b"linkpath".as_slice()) {
                return Err(err(Problem::LongAndPax("link name", "linkpath")));
            }
            link = l;
        }
        let mut typeflag = h.typeflag;
        if typeflag == 0 {
            typeflag = if name.ends_with(b"/") { b'5' } else { b'0' };
        }
        if size < 0 && !is_header_only(typeflag) {
            return Err(err(Problem::NegativeSize));
        }
        let physical = if is_header_only(typeflag) { 0 } else { u64::try_from(size).unwrap_or(0) };

        if self.rules == Use::Verbatim {
            if is_header_only(typeflag) && size != 0 {
                return Err(err(Problem::SizedHeaderOnly(size)));
            }
            if pax.contains_key(b"size".as_slice()) && h.size != 0 && h.size != size {
                return Err(err(Problem::PaxSizeDiffers(size, h.size)));
            }
            if typeflag == b'S' {
                return Err(err(Problem::Sparse));
            }
            if h.block_format == BlockFormat::Star {
                return Err(err(Problem::OddFormat("a STAR header")));
            }
            if h.gnu_prefix_fallback {
                return Err(err(Problem::OddFormat("a GNU header whose time fields do not parse")));
            }
            if h.odd_ustar_prefix {
                return Err(err(Problem::OddFormat("a 'ustar' header of another version than 00 with a name prefix")));
            }
        }

        // Old GNU sparse files: the map in the header and in extension blocks after it.
        let mut sparse = None;
        if typeflag == b'S' {
            let (real, fragments) = self.read_sparse_map(block).map_err(|e| match e {
                SparseErr::Io(e) => e,
                SparseErr::Bad => err(Problem::BadSparse),
            })?;
            let total: u64 = fragments.iter().map(|&(_, l)| l).sum();
            // Go reports the mismatch only while the content is read; cnbx reads it anyway.
            if total != physical {
                return Err(err(Problem::BadSparse));
            }
            self.expanded = self.expanded.saturating_add(real.saturating_sub(physical));
            if self.offset.saturating_add(self.expanded) > self.max_total {
                return Err(limit(ArchiveLimit::Unpacked { limit: self.max_total }));
            }
            size = i64::try_from(real).map_err(|_| err(Problem::BadSparse))?;
            sparse = Some(Sparse { fragments, next: 0, pos: 0, size: real });
        }

        if format & USTAR != 0 && format & PAX != 0 {
            format = USTAR;
        }
        let path = String::from_utf8(name).map_err(|_| err(Problem::NotUtf8("name")))?;
        let link = String::from_utf8(link).map_err(|_| err(Problem::NotUtf8("link name")))?;
        let kind = match typeflag {
            b'0' | b'S' => EntryKind::File,
            b'5' => EntryKind::Dir,
            b'2' => EntryKind::Symlink { target: link },
            b'1' => EntryKind::Hardlink { target: link },
            other => EntryKind::Other { typeflag: other, linkname: link },
        };
        let unsigned = |v: i64, what: &'static str| u64::try_from(v).map_err(|_| err(Problem::OutOfRange(what)));
        let entry = TarEntry {
            path,
            kind,
            mode: u32::try_from(h.mode).map_err(|_| err(Problem::OutOfRange("mode")))?,
            uid: unsigned(uid, "uid")?,
            gid: unsigned(gid, "gid")?,
            uname: String::from_utf8_lossy(&uname).into_owned(),
            gname: String::from_utf8_lossy(&gname).into_owned(),
            mtime,
            atime,
            ctime,
            size: unsigned(size, "size")?,
            devmajor: unsigned(h.devmajor, "device major number")?,
            devminor: unsigned(h.devminor, "device minor number")?,
            pax_records: utf8_records(pax).map_err(err)?,
            format: header_format(format),
        };
        self.count_entry()?;
        self.data_left = physical;
        self.pad = padding(physical);
        self.sparse = sparse;
        Ok(entry)
    }

    /// Go's `readOldGNUSparseMap` and `validateSparseEntries`: the logical size and the data
    /// fragments (offset, length) in order, without empty ones. The map starts in the header
    /// (four entries) and goes on in 512-byte extension blocks (21 entries each) while the
    /// byte after the entries is not 0.
    fn read_sparse_map(&mut self, header: &[u8; BLOCK]) -> Result<(u64, Vec<(u64, u64)>), SparseErr> {
        // Only a GNU block holds a sparse map (a STAR one has another layout).
        if block_format(header) != Some(BlockFormat::Gnu) {
            return Err(SparseErr::Bad);
        }
        let real = parse_numeric(&header[field::GNU_REAL_SIZE]).ok_or(SparseErr::Bad)?;
        let real = u64::try_from(real).map_err(|_| SparseErr::Bad)?;
        let mut fragments = Vec::new();
        let mut block = *header;
        let mut area = field::GNU_SPARSE..field::GNU_SPARSE + 4 * 24 + 1;
        let mut end = 0u64;
        loop {
            let entries = (area.end - area.start) / 24;
            for i in 0..entries {
                let at = area.start + i * 24;
                if block[at] == 0 {
                    break;
                }
                let offset = parse_numeric(&block[at..at + 12]).ok_or(SparseErr::Bad)?;
                let length = parse_numeric(&block[at + 12..at + 24]).ok_or(SparseErr::Bad)?;
                let (Ok(offset), Ok(length)) = (u64::try_from(offset), u64::try_from(length)) else {
                    return Err(SparseErr::Bad);
                };
                let stop = offset.checked_add(length).filter(|&s| s <= real && offset >= end).ok_or(SparseErr::Bad)?;
                if i64::try_from(stop).is_err() {
                    return Err(SparseErr::Bad);
                }
                end = stop;
                if length > 0 {
                    fragments.push((offset, length));
                }
            }
            if block[area.start + entries * 24] == 0 {
                return Ok((real, fragments));
            }
            self.header_budget(BLOCK as u64)?;
            block = self.read_block()?.ok_or_else(unexpected_eof)?;
            area = 0..BLOCK;
        }
    }

    /// Reads content of the current entry (at most what is left of it).
    fn read_content(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.sparse.is_some() {
            return self.read_sparse(buf);
        }
        if self.data_left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.data_left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.raw_read(&mut buf[..want])?;
        if n == 0 {
            return Err(unexpected_eof());
        }
        self.data_left -= n as u64;
        Ok(n)
    }

    fn read_sparse(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(sp) = self.sparse.as_mut() else { return Ok(0) };
        if sp.pos >= sp.size || buf.is_empty() {
            return Ok(0);
        }
        let left = sp.size - sp.pos;
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        match sp.fragments.get(sp.next).copied() {
            Some((off, len)) if sp.pos >= off => {
                let in_fragment = off + len - sp.pos;
                let want = usize::try_from(in_fragment).unwrap_or(usize::MAX).min(want);
                let n = self.raw_read(&mut buf[..want])?;
                if n == 0 {
                    return Err(unexpected_eof());
                }
                self.data_left -= n as u64;
                let sp = self.sparse.as_mut().unwrap_or_else(|| unreachable!());
                sp.pos += n as u64;
                if sp.pos == off + len {
                    sp.next += 1;
                }
                Ok(n)
            }
            next => {
                let hole_end = next.map_or(sp.size, |(off, _)| off);
                let n = usize::try_from(hole_end - sp.pos).unwrap_or(usize::MAX).min(want);
                buf[..n].fill(0);
                sp.pos += n as u64;
                Ok(n)
            }
        }
    }

    /// A reader of the current entry's content (what [`TarReader::next_entry`] returned
    /// last): exactly [`TarEntry::data_len`] bytes, or the logical size of a sparse file.
    pub fn content(&mut self) -> Content<'_, R> {
        Content { reader: self }
    }
}

/// Why an old GNU sparse map cannot be used.
enum SparseErr {
    Io(io::Error),
    Bad,
}

impl From<io::Error> for SparseErr {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// The content of the current entry of a [`TarReader`].
pub struct Content<'a, R> {
    reader: &'a mut TarReader<R>,
}

impl<R: Read> Read for Content<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read_content(buf)
    }
}

fn bad(subject: Option<String>, offset: u64, problem: Problem) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, ReadError { subject, offset, problem })
}

/// `entry '<name>'`, or `the <what> '<name>'` for an extension header, `name` as an excerpt.
fn subject(what: Option<&str>, name: &[u8]) -> Option<String> {
    let name = cnbx_fs::excerpt(&String::from_utf8_lossy(name));
    Some(match what {
        None => format!("entry '{name}'"),
        Some(what) => format!("the {what} '{name}'"),
    })
}

fn padding(len: u64) -> u64 {
    (BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64
}

fn header_format(format: u8) -> HeaderFormat {
    if format & USTAR != 0 {
        HeaderFormat::Ustar
    } else if format & PAX != 0 {
        HeaderFormat::Pax
    } else if format & GNU != 0 {
        HeaderFormat::Gnu
    } else {
        HeaderFormat::Unspecified
    }
}

fn utf8_records(records: BTreeMap<Vec<u8>, Vec<u8>>) -> Result<BTreeMap<String, String>, Problem> {
    records
        .into_iter()
        .map(|(k, v)| match (String::from_utf8(k), String::from_utf8(v)) {
            (Ok(k), Ok(v)) => Ok((k, v)),
            _ => Err(Problem::PaxNotUtf8),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnbx_testkit::oddtar::{Block, Magic, Numbers, extension, padded, pax_header, pax_record};

    /// What a reader reported: (name, kind, content) per entry, or the error.
    type Outcome = Result<Vec<(String, EntryKind, Vec<u8>)>, String>;

    /// What a reader for `rules` reports.
    fn read(bytes: &[u8], rules: Use) -> Outcome {
        let mut r = TarReader::new(bytes, rules);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry().map_err(|e| e.to_string())? {
            let mut content = Vec::new();
            r.content().read_to_end(&mut content).map_err(|e| e.to_string())?;
            out.push((e.path, e.kind, content));
        }
        Ok(out)
    }

    fn both(bytes: &[u8]) -> [Outcome; 2] {
        [read(bytes, Use::Reencode), read(bytes, Use::Verbatim)]
    }

    fn file(name: &str, data: &[u8]) -> Vec<u8> {
        let mut out = Block::new(name.as_bytes(), b'0', data.len() as u64).encode().to_vec();
        out.extend(padded(data));
        out
    }

    fn end() -> Vec<u8> {
        vec![0; 1024]
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn names(r: &Outcome) -> Vec<&str> {
        r.as_ref().unwrap().iter().map(|(n, _, _)| n.as_str()).collect()
    }

    fn refused(r: &Outcome, text: &str) {
        let e = r.as_ref().unwrap_err();
        assert!(e.contains(text), "{e}");
    }

    #[test]
    fn plain_archives_read_as_written() {
        let tar = cat(&[&file("a", b"abc"), &Block::new(b"d", b'5', 0).encode(), &end()]);
        for r in both(&tar) {
            let r = r.unwrap();
            assert_eq!(r[0], ("a".into(), EntryKind::File, b"abc".to_vec()));
            assert_eq!(r[1], ("d".into(), EntryKind::Dir, Vec::new()));
        }
        // The end: no zero blocks, one, or a 10 KiB record are all ends for Go.
        for tail in [&[][..], &[0; 512][..], &[0; 10240][..]] {
            for r in both(&cat(&[&file("a", b"x"), tail])) {
                assert_eq!(names(&r), ["a"]);
            }
        }
        // The stream ending inside the padding ends the archive too.
        let cut = file("a", b"x");
        for r in both(&cut[..600]) {
            assert_eq!(names(&r), ["a"]);
        }
    }

    #[test]
    fn ambiguous_extension_headers_are_refused_in_every_use() {
        let evil = file("e", b"x");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                pax_header(&[(b"path", b"ok"), (b"path", b"etc/passwd")]),
                "it has two 'path' records, 'ok' and 'etc/passwd'",
            ),
            (pax_header(&[(b"size", b"1"), (b"size", b"1")]), "it has two 'size' records"),
            (pax_header(&[(b"linkpath", b"a"), (b"linkpath", b"b")]), "it has two 'linkpath' records"),
            (pax_header(&[(b"GNU.sparse.name", b"etc/passwd")]), "'GNU.sparse.name' = 'etc/passwd'"),
            (pax_header(&[(b"GNU.sparse.major", b"1")]), "'GNU.sparse.major'"),
            (pax_header(&[(b"path", b"")]), "its PAX 'path' record is empty"),
            (pax_header(&[(b"size", b"")]), "its PAX 'size' record is empty"),
            (cat(&[&pax_header(&[(b"path", b"a")]), &pax_header(&[(b"mtime", b"1")])]), "it has two PAX headers"),
            (
                cat(&[&extension(b'L', b"././@LongLink", b"a\0"), &extension(b'L', b"././@LongLink", b"b\0")]),
                "two GNU long names",
            ),
            (
                extension(b'L', b"././@LongLink", b"lib\0/x\0"),
                "its GNU long name 'lib\\u{0}/x' has a NUL byte inside it",
            ),
            (
                extension(b'K', b"././@LongLink", b"/etc\0x"),
                "its GNU long link name '/etc\\u{0}x' has a NUL byte inside it",
            ),
            (extension(b'L', b"././@LongLink", b"\0"), "its GNU long name is empty"),
            (
                cat(&[&extension(b'L', b"././@LongLink", b"a\0"), &pax_header(&[(b"path", b"b")])]),
                "both a GNU long name and a PAX 'path'",
            ),
        ];
        for (pre, message) in cases {
            let tar = cat(&[&pre, &evil, &end()]);
            for r in both(&tar) {
                refused(&r, message);
            }
        }
        // Malformed records Go would refuse, and lengths Go would read otherwise.
        for records in [&b"05 a=b\n"[..], b"+6 a=b\n", b"6 a=b\r", b"5 =b\n", b"6 ab\n\n", b"99 a=b\n"] {
            let tar = cat(&[&extension(b'x', b"PaxHeaders.0/e", records), &evil, &end()]);
            for r in both(&tar) {
                refused(&r, "its PAX header is malformed");
            }
        }
        // Extension headers that nothing follows.
        for r in both(&cat(&[&pax_header(&[(b"path", b"a")]), &end()])) {
            refused(&r, "not followed by an entry");
        }
    }

    #[test]
    fn extension_headers_apply_as_in_go() {
        // PAX path, linkpath and size; a GNU long name whose trailing NULs are padding.
        let mut link = Block::new(b"decoy", b'2', 0);
        link.link = b"decoy".to_vec();
        let tar = cat(&[
            &pax_header(&[(b"path", b"real"), (b"size", b"2"), (b"comment", b"x")]),
            &Block::new(b"decoy", b'0', 0).encode(),
            &padded(b"hi"),
            &extension(b'L', b"././@LongLink", b"long\0\0\0"),
            &pax_header(&[(b"linkpath", b"target")]),
            &link.encode(),
            &end(),
        ]);
        for r in both(&tar) {
            let r = r.unwrap();
            assert_eq!(r[0], ("real".into(), EntryKind::File, b"hi".to_vec()));
            assert_eq!(r[1], ("long".into(), EntryKind::Symlink { target: "target".into() }, Vec::new()));
        }
    }

    #[test]
    fn header_fields_are_read_as_in_go() {
        // A 'ustar\0' block of any version uses its prefix; GNU and V7 blocks do not.
        let mut b = Block::new(b"n", b'0', 0);
        b.prefix = b"pre".to_vec();
        for (magic, name) in [
            (Magic::Ustar, "pre/n"),
            (Magic::UstarVersion(*b"\0\0"), "pre/n"),
            (Magic::Gnu, "n"),
            (Magic::V7, "n"),
            (Magic::Star, "pre/n"),
            (Magic::GnuPrefix, "pre/n"),
        ] {
            b.magic = magic.clone();
            let tar = cat(&[&b.encode(), &end()]);
            assert_eq!(names(&read(&tar, Use::Reencode)), [name], "{magic:?}");
            let verbatim = read(&tar, Use::Verbatim);
            match magic {
                Magic::Ustar | Magic::Gnu | Magic::V7 => assert_eq!(names(&verbatim), [name]),
                _ => refused(&verbatim, "whose name readers other than Go read differently"),
            }
        }
        // Numbers: spaces, no NUL, base-256, a signed checksum; a name field cut at its NUL.
        for numbers in [Numbers::Octal, Numbers::Spaced, Numbers::NoNul, Numbers::Base256] {
            let mut b = Block::new(b"f", b'0', 3);
            b.numbers = numbers;
            b.size_numbers = numbers;
            b.signed_checksum = true;
            b.name_garbage = b"etc/passwd".to_vec();
            for r in both(&cat(&[&b.encode(), &padded(b"abc"), &end()])) {
                assert_eq!(r.unwrap(), [("f".to_owned(), EntryKind::File, b"abc".to_vec())], "{numbers:?}");
            }
        }
        assert_eq!(parse_octal(b"  644 \0"), Some(0o644));
        assert_eq!(parse_octal(b"\x00\x00644\x00"), Some(0o644));
        assert_eq!(parse_octal(b"644\0junk"), Some(0o644));
        assert_eq!(parse_octal(b"+644"), None, "Go's ParseUint takes no sign");
        assert_eq!(parse_octal(b"\t644"), None);
        assert_eq!(parse_octal(b"649"), None);
        assert_eq!(parse_numeric(&[0xff; 8]), Some(-1));
        // The legacy regular-file type: a directory when the name ends with '/'.
        let tar = cat(&[&Block::new(b"d/", 0, 0).encode(), &Block::new(b"f", 0, 0).encode(), &end()]);
        for r in both(&tar) {
            let kinds: Vec<EntryKind> = r.unwrap().into_iter().map(|(_, k, _)| k).collect();
            assert_eq!(kinds, [EntryKind::Dir, EntryKind::File]);
        }
        // A checksum that matches neither sum is no header.
        let mut bad = Block::new(b"f", b'0', 0).encode();
        bad[0] = b'g';
        for r in both(&cat(&[&file("a", b""), &bad, &end()])) {
            refused(&r, "the tar header at byte 512: it is not a valid tar header");
        }
        for r in both(&cat(&[&bad, &end()])) {
            refused(&r, "it is not a valid tar or gzipped tar stream");
        }
    }

    #[test]
    fn what_other_readers_read_otherwise_is_refused_for_reuse() {
        // A link whose size says 1024: Go reads the "content" as the next header.
        let mut link = Block::new(b"l", b'2', 1024);
        link.link = b"/etc".to_vec();
        let tar = cat(&[&link.encode(), &file("l/passwd", b"evil"), &end()]);
        assert_eq!(names(&read(&tar, Use::Reencode)), ["l", "l/passwd"]);
        refused(
            &read(&tar, Use::Verbatim),
            "entry 'l' (header at byte 0): it is a link, directory, device or FIFO whose size field says 1024 bytes",
        );
        // A PAX size that disagrees with the header's.
        let tar =
            cat(&[&pax_header(&[(b"size", b"3")]), &Block::new(b"f", b'0', 1536).encode(), &padded(b"abc"), &end()]);
        assert_eq!(read(&tar, Use::Reencode).unwrap()[0].2, b"abc");
        refused(&read(&tar, Use::Verbatim), "its PAX size record (3) differs from its header's size (1536)");
        // Bytes after the end.
        let tar = cat(&[&file("a", b""), &end(), &file("etc/passwd", b"evil")]);
        assert_eq!(names(&read(&tar, Use::Reencode)), ["a"]);
        refused(&read(&tar, Use::Verbatim), "bytes other than zeros after the end");
        // A global header: an entry for Go, with its path record applied.
        let tar = cat(&[&extension(b'g', b"pax_global_header", &pax_record(b"path", b"g")), &file("a", b""), &end()]);
        let r = read(&tar, Use::Reencode).unwrap();
        assert_eq!(r[0].1, EntryKind::Other { typeflag: b'g', linkname: String::new() });
        assert_eq!(names(&Ok(r)), ["g", "a"]);
        refused(&read(&tar, Use::Verbatim), "entry 'pax_global_header' (header at byte 0): it is a PAX global header");
        // A zero block, then a header: Go fails there.
        for r in both(&cat(&[&[0; 512], &file("a", b""), &end()])) {
            refused(&r, "a zero block is followed by another header");
        }
    }

    /// A GNU sparse file: data "abc" at 0 and "de" at 10, 15 bytes in all.
    fn sparse_tar() -> Vec<u8> {
        let mut b = Block::new(b"s", b'S', 5);
        b.magic = Magic::Gnu;
        let mut h = b.encode();
        let put = |h: &mut [u8; 512], at: usize, v: u64| {
            let s = format!("{v:011o}\0");
            h[at..at + 12].copy_from_slice(s.as_bytes());
        };
        put(&mut h, 386, 0);
        put(&mut h, 398, 3);
        put(&mut h, 410, 10);
        put(&mut h, 422, 2);
        put(&mut h, 483, 15);
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&c| u32::from(c)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        cat(&[&h, &padded(b"abcde"), &file("after", b"z"), &end()])
    }

    #[test]
    fn old_gnu_sparse_files_are_expanded_for_reencoding_and_refused_for_reuse() {
        let r = read(&sparse_tar(), Use::Reencode).unwrap();
        assert_eq!(r[0], ("s".into(), EntryKind::File, b"abc\0\0\0\0\0\0\0de\0\0\0".to_vec()));
        assert_eq!(r[1].0, "after");
        refused(&read(&sparse_tar(), Use::Verbatim), "entry 's' (header at byte 0): it is a GNU sparse file");
    }

    #[test]
    fn bounds_hold() {
        // One extension header larger than Go reads.
        let big = vec![b'a'; (MAX_SPECIAL_FILE + 1) as usize];
        let tar = cat(&[&extension(b'L', b"././@LongLink", &big), &file("a", b""), &end()]);
        for r in both(&tar) {
            refused(&r, "headers (long names or PAX records) are larger than");
        }
    }
}
