//! Reading tar and gzipped-tar archives from someone else, within bounds.
//!
//! Every archive cnbx reads (buildpack and lifecycle archives, `.cnb` buildpackages,
//! buildpackage layers) may be hostile. [`read_entries`] reads one with
//! [`crate::tarread::TarReader`], which sees exactly the entries Go's `archive/tar` sees (the
//! reader of every tool that unpacks images, and of pack), and enforces, whatever the archive
//! says:
//!
//! * at most [`limits::max_unpacked_size`] bytes after decompression (a small gzip stream can
//!   expand to terabytes);
//! * at most [`limits::max_archive_entries`] entries;
//! * at most [`MAX_HEADER_BYTES`] bytes read for the headers of one entry, extension headers
//!   included, so that one entry with a huge "long name" cannot take all the memory there is.
//!
//! [`read_verbatim_entries`] reads a layer that will be reused byte for byte, with the stricter
//! rules of [`Use::Verbatim`].

use std::io::{self, BufRead, BufReader, Read};

use cnbx_fs::limits;

use crate::tarball::TarEntry;
use crate::tarread::{ReadError, TarReader, Use};

pub use crate::tarread::MAX_HEADER_BYTES;

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
    /// The limit error inside `e`, if `e` is one.
    pub fn find(e: &io::Error) -> Option<&ArchiveLimit> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<ArchiveLimit>())
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

/// `e` as it may be shown: bounds, operating-system errors, truncation and the tar reader's
/// own errors (which quote names only as excerpts) are described; anything else (a gzip
/// decoder's message, for one) becomes "not a valid tar stream".
pub fn safe_io(e: io::Error) -> io::Error {
    if is_limit(&e) || e.raw_os_error().is_some() || ReadError::find(&e).is_some() {
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

/// Reads every entry of the tar stream `stream` (already decompressed, see [`decompressed`])
/// as Go reads it, within the bounds of this module, for re-encoding ([`Use::Reencode`]):
/// calls `each` on each entry in order with its header and a reader of its content. `each`
/// may read the content or not; what it leaves unread is skipped before the next entry is
/// read. Errors from `each` are returned as they are; a malformed or ambiguous archive or an
/// exceeded bound is an [`io::Error`] ([`is_limit`] tells which; the message never quotes
/// the archive, see [`safe_io`]), given to `io_err` to make an `E`.
pub fn read_entries<E>(
    stream: impl Read,
    each: impl FnMut(TarEntry, &mut dyn Read) -> Result<(), E>,
    io_err: impl Fn(io::Error) -> E,
) -> Result<(), E> {
    read_with(stream, Use::Reencode, each, io_err)
}

/// [`read_entries`] for an archive that will be reused byte for byte ([`Use::Verbatim`]).
/// The stream is read to its end (anything after the end of the archive must be zeros).
pub fn read_verbatim_entries<E>(
    stream: impl Read,
    each: impl FnMut(TarEntry, &mut dyn Read) -> Result<(), E>,
    io_err: impl Fn(io::Error) -> E,
) -> Result<(), E> {
    read_with(stream, Use::Verbatim, each, io_err)
}

fn read_with<E>(
    stream: impl Read,
    rules: Use,
    mut each: impl FnMut(TarEntry, &mut dyn Read) -> Result<(), E>,
    io_err: impl Fn(io::Error) -> E,
) -> Result<(), E> {
    let io_err = |e: io::Error| io_err(safe_io(e));
    let mut reader = TarReader::new(stream, rules);
    while let Some(entry) = reader.next_entry().map_err(io_err)? {
        each(entry, &mut reader.content())?;
    }
    Ok(())
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
            |e, _| {
                out.push(e.path);
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
