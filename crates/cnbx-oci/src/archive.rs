//! Reading tar and gzipped-tar archives from someone else, within bounds.
//!
//! Every archive cnbx reads (buildpack and lifecycle archives, `.cnb` buildpackages,
//! buildpackage and base image layers) may be hostile. [`read_entries`] reads one with the
//! `tar` crate and enforces, whatever the archive says:
//!
//! * at most [`limits::max_unpacked_size`] bytes after decompression (a small gzip stream can
//!   expand to terabytes);
//! * at most [`limits::max_archive_entries`] entries;
//! * at most [`MAX_HEADER_BYTES`] bytes read for the headers of one entry, extension headers
//!   included: the `tar` crate keeps PAX and GNU long-name records in memory, so without this
//!   one entry with a huge "long name" could take all the memory there is.
//!
//! The header budget works because the `tar` crate reads sequentially: while it looks for the
//! next entry it reads only the padding of the previous one (whose content the caller has
//! already consumed, see [`read_entries`]), then headers and extension records.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cnbx_fs::limits;

/// The most bytes read while locating one entry: its extension headers (PAX records or GNU
/// long names, [`limits::MAX_TAR_HEADER`] in all, which is also the most cnbx writes) and its
/// header blocks.
pub const MAX_HEADER_BYTES: u64 = limits::MAX_TAR_HEADER + 64 * 1024;

/// Size of the read buffer in front of the decompressor.
const READ_BUFFER: usize = 128 * 1024;

/// An archive went over one of the bounds.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveLimit {
    /// More bytes than [`limits::max_unpacked_size`] after decompression.
    #[error(
        "it unpacks to more than {limit} bytes; if it is genuine, raise the limit with {}=<bytes>",
        limits::MAX_UNPACKED_SIZE_ENV
    )]
    Unpacked {
        /// The limit.
        limit: u64,
    },
    /// More entries than [`limits::max_archive_entries`].
    #[error(
        "it has more than {limit} entries; if it is genuine, raise the limit with {}=<count>",
        limits::MAX_ARCHIVE_ENTRIES_ENV
    )]
    Entries {
        /// The limit.
        limit: u64,
    },
    /// An entry's headers are larger than [`MAX_HEADER_BYTES`].
    #[error("an entry's headers (long names or PAX records) are larger than {limit} bytes")]
    Header {
        /// The limit.
        limit: u64,
    },
}

impl ArchiveLimit {
    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    /// The limit error inside `e`, if `e` is one.
    pub fn find(e: &io::Error) -> Option<&ArchiveLimit> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<ArchiveLimit>())
    }
}

/// Shared counters of a [`Guard`].
#[derive(Debug)]
struct GuardState {
    total: AtomicU64,
    header: AtomicU64,
    in_header: AtomicBool,
    max_total: u64,
}

/// The reader under the `tar` crate in [`read_entries`]: counts what passes through and
/// fails past the bounds.
#[derive(Debug)]
pub struct Guard<R> {
    inner: R,
    state: Arc<GuardState>,
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let n64 = n as u64;
        let total = self.state.total.fetch_add(n64, Ordering::Relaxed) + n64;
        if total > self.state.max_total {
            return Err(ArchiveLimit::Unpacked { limit: self.state.max_total }.into_io());
        }
        if self.state.in_header.load(Ordering::Relaxed) {
            let header = self.state.header.fetch_add(n64, Ordering::Relaxed) + n64;
            if header > MAX_HEADER_BYTES {
                return Err(ArchiveLimit::Header { limit: MAX_HEADER_BYTES }.into_io());
            }
        }
        Ok(n)
    }
}

/// A source stream: plain tar, or gzip (detected by its magic bytes `1f 8b`).
pub type ArchiveStream = Box<dyn Read + Send>;

/// `reader` as an uncompressed tar stream: gunzipped when it starts with the gzip magic
/// (every member of a multi-member stream), as it is otherwise.
pub fn decompressed(reader: impl Read + Send + 'static) -> io::Result<ArchiveStream> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, reader);
    let gzipped = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzipped { Box::new(flate2::read::MultiGzDecoder::new(reader)) } else { Box::new(reader) })
}

/// `e` as it may be shown: the `tar` crate's messages quote header bytes (the start of a
/// file that is not a tar, which may be a secret), so only bounds, operating-system errors
/// and truncation are described; anything else becomes "not a valid tar stream".
pub fn safe_io(e: io::Error) -> io::Error {
    if is_limit(&e) || e.raw_os_error().is_some() {
        return e;
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return io::Error::new(io::ErrorKind::UnexpectedEof, "the archive ends in the middle of an entry");
    }
    io::Error::new(e.kind(), "it is not a valid tar or gzipped tar stream")
}

/// Whether `e` (from [`read_entries`]) is a bound being exceeded, rather than a malformed
/// archive or an I/O error.
pub fn is_limit(e: &io::Error) -> bool {
    ArchiveLimit::find(e).is_some()
}

/// Reads every entry of the tar stream `stream` (already decompressed, see
/// [`decompressed`]) within the bounds of this module, calling `each` on each entry in
/// order. `each` may read the entry's content or not; what it leaves unread is skipped
/// before the next entry is read. Errors from `each` are returned as they are; a malformed
/// archive or an exceeded bound is an [`io::Error`] ([`is_limit`] tells which; the message
/// never quotes the archive, see [`safe_io`]), given to `io_err` to make an `E`.
pub fn read_entries<E>(
    stream: impl Read,
    mut each: impl FnMut(&mut tar::Entry<'_, Guard<&mut dyn Read>>) -> Result<(), E>,
    io_err: impl Fn(io::Error) -> E,
) -> Result<(), E> {
    let mut stream = stream;
    let state = Arc::new(GuardState {
        total: AtomicU64::new(0),
        header: AtomicU64::new(0),
        in_header: AtomicBool::new(false),
        max_total: limits::max_unpacked_size(),
    });
    let max_entries = limits::max_archive_entries();
    let guard = Guard { inner: &mut stream as &mut dyn Read, state: Arc::clone(&state) };
    let mut archive = tar::Archive::new(guard);
    let io_err = |e: io::Error| io_err(safe_io(e));
    let mut entries = archive.entries().map_err(io_err)?;
    let mut count: u64 = 0;
    loop {
        state.header.store(0, Ordering::Relaxed);
        state.in_header.store(true, Ordering::Relaxed);
        let next = entries.next();
        state.in_header.store(false, Ordering::Relaxed);
        let Some(entry) = next else { return Ok(()) };
        let mut entry = entry.map_err(io_err)?;
        count += 1;
        if count > max_entries {
            return Err(io_err(ArchiveLimit::Entries { limit: max_entries }.into_io()));
        }
        each(&mut entry)?;
        // Skip what `each` left, outside the header budget.
        io::copy(&mut entry, &mut io::sink()).map_err(io_err)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tarball::{TarEntry, TarWriter};

    fn tar_of(entries: &[(TarEntry, &[u8])]) -> Vec<u8> {
        let mut w = TarWriter::new(Vec::new());
        for (e, data) in entries {
            w.append(e, *data).unwrap();
        }
        w.finish().unwrap()
    }

    fn names(bytes: &[u8]) -> Result<Vec<String>, io::Error> {
        let mut out = Vec::new();
        read_entries(
            decompressed(std::io::Cursor::new(bytes.to_vec()))?,
            |e| {
                out.push(String::from_utf8_lossy(&e.path_bytes()).into_owned());
                Ok(())
            },
            |e| e,
        )?;
        Ok(out)
    }

    #[test]
    fn reads_plain_and_gzipped_tars() {
        let tar = tar_of(&[(TarEntry::file("/a", 3), b"abc"), (TarEntry::dir("/d"), b"")]);
        assert_eq!(names(&tar).unwrap(), ["/a", "/d"]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        assert_eq!(names(&gz.finish().unwrap()).unwrap(), ["/a", "/d"]);
    }

    /// A PAX header of `records_len` bytes, then an empty file: written with the tar crate's
    /// raw headers, since cnbx's writer never writes records that large.
    fn tar_with_pax_records(records_len: usize) -> Vec<u8> {
        let record = {
            let body = format!("path=/{}\n", "n".repeat(records_len));
            // "<len> " prefix: the length counts itself.
            let mut len = body.len() + 2;
            while format!("{len} {body}").len() != len {
                len += 1;
            }
            format!("{len} {body}")
        };
        let mut out = Vec::new();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_path("PaxHeaders.0/x").unwrap();
        h.set_size(record.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(record.as_bytes());
        out.resize(out.len().div_ceil(512) * 512, 0);
        let mut f = tar::Header::new_ustar();
        f.set_path("x").unwrap();
        f.set_size(0);
        f.set_cksum();
        out.extend_from_slice(f.as_bytes());
        out.extend_from_slice(&[0; 1024]);
        out
    }

    #[test]
    fn a_huge_long_name_is_refused_before_it_is_held_in_memory() {
        assert_eq!(names(&tar_with_pax_records(1000)).unwrap().len(), 1);
        let tar = tar_with_pax_records(3 * 1024 * 1024);
        let err = names(&tar).unwrap_err();
        assert!(matches!(ArchiveLimit::find(&err), Some(ArchiveLimit::Header { .. })), "{err}");
        assert!(is_limit(&err));
    }

    #[test]
    fn large_content_that_the_caller_skips_is_not_a_header() {
        let data = vec![7u8; 3 * 1024 * 1024];
        let tar = tar_of(&[(TarEntry::file("/big", data.len() as u64), &data), (TarEntry::file("/b", 0), b"")]);
        assert_eq!(names(&tar).unwrap(), ["/big", "/b"]);
    }
}
